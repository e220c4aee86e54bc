"""Models whose code reads sizes, exported once with dynamic dims and run at other sizes: the
ONNX graph must compute every size from its inputs (issue 7's models)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from dynamic_models import CNN, DecoderBlock, ReshapeIndex
from torch import nn

import torchonnx

OPSETS = [18, 28]

# name -> (model, example args, dynamic_shapes, args at other sizes)
CASES: dict[str, tuple[Callable[[], nn.Module], tuple, Any, list[tuple]]] = {
    "encoder": (
        lambda: nn.TransformerEncoderLayer(32, 4, 64, batch_first=True),
        (torch.randn(2, 7, 32),),
        ({0: "batch", 1: "seq"},),
        [(torch.randn(3, 5, 32),), (torch.randn(1, 12, 32),)],
    ),
    "decoder": (
        DecoderBlock,
        (torch.randn(2, 7, 32),),
        ({0: "batch", 1: "seq"},),
        [(torch.randn(3, 11, 32),), (torch.randn(1, 4, 32),)],
    ),
    "cnn": (
        CNN,
        (torch.randn(2, 3, 16, 16),),
        ({0: "batch", 2: "height", 3: "width"},),
        [(torch.randn(3, 3, 20, 24),), (torch.randn(1, 3, 9, 13),)],
    ),
    "reshape_index": (
        ReshapeIndex,
        (torch.randn(2, 6, 4), torch.tensor([0, 2, 3])),
        ({0: "batch"}, None),
        [
            (torch.randn(5, 6, 4), torch.tensor([1, 5, 0])),
            (torch.randn(3, 6, 4), torch.tensor([-1, 0, -6])),
        ],
    ),
}


def _dim_names(shapes: Any) -> set[str]:
    names: set[str] = set()
    for spec in shapes:
        names.update((spec or {}).values())
    return names


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", list(CASES))
def test_exported_once_runs_at_other_sizes(name: str, opset: int) -> None:
    make, args, shapes, others = CASES[name]
    torch.manual_seed(0)
    model = make().eval()
    program = torchonnx.export(model, args, dynamic_shapes=shapes, opset_version=opset, verify=True)
    # the graph's inputs carry the names given to their dynamic dims
    declared = {
        str(d) for v in program.model.graph.inputs for d in v.shape if not isinstance(d, int)
    }
    assert declared == _dim_names(shapes)
    for other in others:
        with torch.no_grad():
            expected = model(*other)
        expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)
        actual = program(*other)
        assert len(actual) == len(expected)
        for got, want in zip(actual, expected, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


class Views(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return x.view(x.shape[0], -1), x.flatten(1), x.reshape(-1, 12)


@pytest.mark.parametrize("opset", [7, 9, 13, 14])
def test_dynamic_views_at_old_opsets(opset: int) -> None:
    """Views of a dynamic batch, optimized with default options: Reshape gets no allowzero
    before opset 14, where ONNX has none, and the graph runs at another batch size."""
    program = torchonnx.export(
        Views(), (torch.randn(2, 3, 4),), dynamic_shapes=({0: "batch"},), opset_version=opset
    )
    for node in program.model.graph:
        if node.op_type == "Reshape" and opset < 14:
            assert "allowzero" not in node.attributes
    x = torch.randn(5, 3, 4)
    for got, want in zip(program(x), Views()(x), strict=True):
        assert torch.equal(got, want)


class LargeValues(nn.Module):
    """Factories whose values float32 cannot hold: 2**24 + 1 is not a float32, so a lowering that
    computes int64 or the float default through float32 is off by one or more."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n = x.shape[0]
        big = 2**24
        return (
            torch.arange(big - 3, big + n),
            torch.arange(big - 3, big + n, dtype=torch.float64),
            torch.arange(float(big - 3), big - 3.0 + n, dtype=torch.float64),
            torch.arange(big + n, big - 3, -1),
            torch.full((n,), big + 1),
            torch.full((2, n), float(big + 1), dtype=torch.int64),
            torch.full((n,), float(big + 1), dtype=torch.float64),
            x.new_full((n, 2), big + 1, dtype=torch.int64),
        )


@pytest.mark.parametrize("opset", [11, 18, 28])
def test_arange_and_full_exact_above_2_24(opset: int) -> None:
    """Issue 7: int and float arguments above 2**24 give exactly eager's values and dtypes, at
    the size exported and at others (the bounds are computed from a dynamic dim)."""
    program = torchonnx.export(
        LargeValues(), (torch.ones(5),), dynamic_shapes=({0: "n"},), opset_version=opset
    )
    for x in (torch.ones(5), torch.ones(9), torch.ones(1)):
        got, want = program(x), LargeValues()(x)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == w.dtype and torch.equal(g, w), (g, w)
