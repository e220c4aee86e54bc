"""Export time, graph size and onnxruntime latency: torchonnx against torch.onnx (dynamo=True),
both measured in this run on the same models. Ratios below 1 mean torchonnx is faster/smaller.

    make bench            # or: python benchmarks/export_time.py --repeat 5
"""

from __future__ import annotations

import argparse
import io
import logging
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import onnx
import onnxruntime as ort
import torch
from torch import nn

import torchonnx


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [nn.Linear(8, 8), nn.Linear(8, 4), nn.Linear(4, 2), nn.Linear(2, 2)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else torch.sigmoid(layer(x))
        return x


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.AvgPool2d(2),
            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Dropout(0.1), nn.Linear(32, 10),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class LastHiddenState(nn.Module):
    """A transformers model called with ids and an attention mask, as users export them."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids, attention_mask=mask)[0]


def _decoder(name: str) -> tuple[nn.Module, tuple[torch.Tensor, ...], Any]:
    """A small transformers decoder with random weights (nothing is downloaded), with dynamic
    batch and sequence."""
    import transformers as hf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "gpt2":
            config = hf.GPT2Config(
                n_embd=64, n_layer=2, n_head=4, vocab_size=1000, bos_token_id=0, eos_token_id=0
            )
            model = hf.GPT2Model(config)
        else:
            config = hf.LlamaConfig(
                hidden_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                intermediate_size=128,
                vocab_size=1000,
            )
            model = hf.LlamaModel(config)
    ids = torch.randint(0, 1000, (2, 16))
    mask = torch.ones(2, 16, dtype=torch.int64)
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", min=2, max=512)
    dims = {0: batch, 1: seq}
    return LastHiddenState(model.eval()), (ids, mask), (dims, dims)


MODELS: dict[str, Callable[[], tuple[nn.Module, tuple[torch.Tensor, ...], Any]]] = {
    "TransformerEncoderLayer": lambda: (
        nn.TransformerEncoderLayer(64, 4, 128, batch_first=True).eval(),
        (torch.randn(2, 16, 64),),
        None,
    ),
    "MLP": lambda: (MLP().eval(), (torch.rand(97, 8),), None),
    "CNN": lambda: (CNN().eval(), (torch.randn(2, 3, 32, 32),), None),
    "GPT-2 (dynamic)": lambda: _decoder("gpt2"),
    "Llama (dynamic)": lambda: _decoder("llama"),
}


def torchonnx_export(model: nn.Module, args: tuple, shapes: Any) -> onnx.ModelProto:
    return torchonnx.export(model, args, opset_version=18, dynamic_shapes=shapes).model_proto


def torch_onnx_export(model: nn.Module, args: tuple, shapes: Any) -> onnx.ModelProto:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.onnx.export(
            model, args, dynamo=True, opset_version=18, verbose=False, dynamic_shapes=shapes
        ).model_proto


def timed(fn: Callable[[], onnx.ModelProto], repeat: int) -> tuple[float, onnx.ModelProto]:
    fn()  # warm-up: first calls pay for imports and caches
    times, proto = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        proto = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), proto


def latency(proto: onnx.ModelProto, args: tuple, runs: int = 50) -> float:
    buffer = io.BytesIO()
    onnx.save(proto, buffer)
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    feeds = {i.name: a.numpy() for i, a in zip(session.get_inputs(), args, strict=True)}
    session.run(None, feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    torch.manual_seed(0)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # the peer's registry chatter
    print(
        f"median of {args.repeat} exports after one warm-up, opset 18, CPU; ratio = torchonnx / torch.onnx"
    )
    header = f"{'model':<24} {'export s':>16} {'ratio':>6} {'nodes':>9} {'ratio':>6} {'ort ms':>13} {'ratio':>6}"
    print(header)
    print(f"{'':<24} {'ours / theirs':>16} {'':>6} {'ours/thrs':>9} {'':>6} {'ours / theirs':>13}")
    for name in args.models:
        model, inputs, shapes = MODELS[name]()
        ours_t, ours = timed(
            lambda m=model, i=inputs, s=shapes: torchonnx_export(m, i, s), args.repeat
        )
        theirs_t, theirs = timed(
            lambda m=model, i=inputs, s=shapes: torch_onnx_export(m, i, s), args.repeat
        )
        ours_n, theirs_n = len(ours.graph.node), len(theirs.graph.node)
        ours_l, theirs_l = latency(ours, inputs) * 1e3, latency(theirs, inputs) * 1e3
        print(
            f"{name:<24} {ours_t:>7.3f} / {theirs_t:<7.3f}{ours_t / theirs_t:>6.2f} "
            f"{ours_n:>4}/{theirs_n:<4}{ours_n / theirs_n:>6.2f} "
            f"{ours_l:>6.3f}/{theirs_l:<6.3f}{ours_l / theirs_l:>6.2f}"
        )


if __name__ == "__main__":
    main()
