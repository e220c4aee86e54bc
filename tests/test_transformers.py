"""Hugging Face transformers models as their users export them: built from small configs with
random weights (nothing is downloaded), wrapped the usual way (the wrapper is left in training
mode, the model in eval mode), exported once with dynamic batch and sequence, and run with
padded attention masks at other sizes. Their masks, position ids and token types read sizes and
use ops nobody wrote these tests for (bitwise ands of masks, gather, cumsum, sdpa with masks,
topk routing to experts)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
import transformers as hf
from torch import nn

import torchonnx

SMALL = {"num_hidden_layers": 2, "vocab_size": 100, "max_position_embeddings": 64}
MODELS: dict[str, Callable[[], nn.Module]] = {
    "gpt2": lambda: hf.GPT2Model(
        hf.GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=100, n_positions=64)
    ),
    # BERT with position ids computed from the padding (cumsum)
    "roberta": lambda: hf.RobertaModel(
        hf.RobertaConfig(
            hidden_size=32,
            num_attention_heads=4,
            intermediate_size=64,
            **{**SMALL, "max_position_embeddings": 70},
        )
    ),
    "llama": lambda: hf.LlamaModel(
        hf.LlamaConfig(
            hidden_size=32,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=64,
            **SMALL,
        )
    ),
    # mixture of experts: a top-k router, experts gathered per token (the export-friendly
    # `batched_mm` implementation; `eager` loops over the experts a batch hits)
    "mixtral": lambda: hf.MixtralModel(
        hf.MixtralConfig(
            hidden_size=32,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=64,
            num_local_experts=4,
            num_experts_per_tok=2,
            experts_implementation="batched_mm",
            **SMALL,
        )
    ),
    "t5_encoder": lambda: hf.T5EncoderModel(
        hf.T5Config(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, vocab_size=100)
    ),
}


class LastHiddenState(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids, attention_mask=mask)[0]


def _inputs(batch: int, seq: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(0, 100, (batch, seq))
    mask = torch.ones(batch, seq, dtype=torch.int64)
    mask[0, seq // 2 :] = 0  # the first sequence is padded
    return ids, mask


@pytest.mark.parametrize("name", list(MODELS))
def test_exported_once_matches_at_other_sizes(name: str) -> None:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers' notes on the small configs
        model = LastHiddenState(MODELS[name]().eval())
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", min=2, max=60)
    program = torchonnx.export(
        model,
        _inputs(2, 7),
        opset_version=18,
        dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}),
    )
    assert [d for d in program.model.graph.inputs[0].shape] == ["batch", "seq"]
    if name == "mixtral":  # routed by TopK, not unrolled for the experts this batch hit
        assert "TopK" in {node.op_type for node in program.model.graph.all_nodes()}
    for sizes in ((2, 7), (3, 11), (1, 4)):
        args = _inputs(*sizes)
        with torch.no_grad():
            want = model(*args)
        (got,) = program(*args)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
