"""Ops that take sizes, called the way user code calls them, with dynamic dims: each model is
exported once (at the lowest opset its specs support, at 18 and at 28), checked by verify=True
on the example inputs, then run at other sizes and compared with eager PyTorch.

The lowest opsets are the specs': repeat (Tile) 7; slice with computed bounds 10; Pad with
computed pads 11, with static ones 7; nearest resize by integer factors 7 (Upsample), by other
factors or to computed sizes 11 (Range); bilinear 11; HardSwish 14 (a composition from 7);
Gather 7; ScatterND 11 (adding at repeated positions from 16).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torchonnx


@dataclass(frozen=True)
class Case:
    make: Callable[[], nn.Module]
    args: tuple  # example inputs
    shapes: tuple  # dynamic_shapes, by input
    others: list[tuple]  # inputs at other sizes
    lowest: int  # the lowest opset the specs support for this model
    # ONNX ops the graph must (and must not) hold at some opsets: (first, last, op)
    has: tuple[tuple[int, int, str], ...] = ()
    lacks: tuple[tuple[int, int, str], ...] = ()
    exact: bool = True  # compare exactly (indexing, copies) or with float tolerance
    refused: str = ""  # what the error names one opset below the lowest


class Repeat(nn.Module):
    def forward(self, x):
        # a computed repeat count, and a leading repeat that adds a dim
        return x.repeat(x.shape[0], 1), x.repeat(2, 1, 3)


class Narrow(nn.Module):
    def forward(self, x):
        # torch.export turns narrow into slice: computed start and length, and a negative start
        a = torch.narrow(x, 1, x.shape[0] - 2, 2)
        b = torch.narrow(x, 1, 1, x.shape[0])
        return a, b, torch.narrow(x, -1, -3, 2)


class PadStatic(nn.Module):
    def forward(self, x):
        return (
            F.pad(x, (1, -1, 2, 0), value=0.5),
            F.pad(x, (2, 1, 1, 2), mode="reflect"),
            F.pad(x, (1, 3, 0, 2), mode="replicate"),
            F.pad(x[0], (2, 1), mode="reflect"),  # 1-D padding of a 3-D input
        )


class PadComputed(nn.Module):
    def forward(self, x):
        n = x.shape[0]
        # F.pad takes its value as a Python float, which torch.export specializes: the
        # computed value reaches constant_pad_nd through torch's own function
        padded = torch.constant_pad_nd(x, (n, -1, 0, n - 1), n)
        return padded, F.pad(x, (n, 1, 1, n), mode="reflect"), F.pad(x[0], (1, n), mode="replicate")


class NearestToSize(nn.Module):
    """FPN's top-down step: the coarser map resized to the finer one's computed size."""

    def forward(self, coarse, fine):
        return fine + F.interpolate(coarse, size=fine.shape[-2:], mode="nearest")


class NearestByFactor(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x):
        return self.up(x), F.interpolate(x, scale_factor=(3, 1), mode="nearest")


class NearestFractional(nn.Module):
    def forward(self, x):
        return F.interpolate(x, scale_factor=(1.7, 0.5), mode="nearest")


class Bilinear(nn.Module):
    def forward(self, x, y):
        size = y.shape[-2:]
        return (
            F.interpolate(x, size=size, mode="bilinear", align_corners=False),
            F.interpolate(x, size=size, mode="bilinear", align_corners=True),
            F.interpolate(x, scale_factor=2, mode="bilinear"),
            # torch's output size floor(in * 2.3) in float64 (114 for 50, where float32 gives 115)
            F.interpolate(x, scale_factor=(0.7, 2.3), mode="bilinear"),
            F.interpolate(x, scale_factor=(1.15, 1.7), mode="bilinear", align_corners=True),
        )


class MobileNetV3Block(nn.Module):
    """An inverted residual with squeeze-excitation: hardswish and hardsigmoid."""

    def __init__(self, c=8, hidden=16):
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(c, hidden, 1, bias=False), nn.BatchNorm2d(hidden))
        self.dw = nn.Sequential(
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
        )
        self.se_reduce = nn.Conv2d(hidden, 4, 1)
        self.se_expand = nn.Conv2d(4, hidden, 1)
        self.project = nn.Sequential(nn.Conv2d(hidden, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        h = F.hardswish(self.expand(x))
        h = F.hardswish(self.dw(h))
        s = F.adaptive_avg_pool2d(h, 1)
        s = F.hardsigmoid(self.se_expand(F.relu(self.se_reduce(s))))
        return x + self.project(h * s)


class Lookup(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 4, padding_idx=0)

    def forward(self, tokens, idx):
        e = self.emb(tokens)
        return e, e.index_select(1, idx), e.index_select(-1, idx[:1])


class SetColumns(nn.Module):
    def forward(self, x, idx, v):
        x = x.clone()
        x[:, idx] = v  # index_put with a leading slice (None), written back by slice_scatter
        return x


class SetMasked(nn.Module):
    def forward(self, x):
        x = x.clone()
        x[x > 0.5] = 0.0  # index_put with a boolean mask
        return x


class AddRows(nn.Module):
    def forward(self, x, idx, v):
        return x.index_put((idx,), v, accumulate=True)  # repeated rows add up


CASES: dict[str, Case] = {
    "repeat": Case(
        Repeat,
        (torch.randn(3, 4),),
        ({0: "batch"},),
        [(torch.randn(5, 4),), (torch.randn(2, 4),)],
        lowest=7,
        has=((7, 28, "Tile"),),
    ),
    "narrow": Case(
        Narrow,
        (torch.randn(3, 8),),
        ({0: "batch"},),
        [(torch.randn(5, 8),), (torch.randn(2, 8),)],
        lowest=10,
        refused="aten::slice.Tensor(float32): ONNX Slice takes computed bounds",
    ),
    "pad_static": Case(
        PadStatic,
        (torch.randn(2, 3, 5, 6),),
        ({0: "batch", 2: "height", 3: "width"},),
        [(torch.randn(1, 3, 4, 9),), (torch.randn(3, 3, 7, 3),)],
        lowest=7,
        has=((7, 28, "Pad"),),
    ),
    "pad_computed": Case(
        PadComputed,
        (torch.randn(2, 3, 5, 6),),
        ({0: "batch"},),
        [(torch.randn(3, 3, 5, 6),), (torch.randn(4, 3, 5, 6),)],
        lowest=11,
        has=((11, 28, "Pad"),),
        refused="aten::constant_pad_nd(float32): ONNX Pad takes computed pads",
    ),
    "nearest_to_size": Case(
        NearestToSize,
        (torch.randn(2, 4, 4, 5), torch.randn(2, 4, 8, 10)),
        ({0: "batch", 2: "h", 3: "w"}, {0: "batch", 2: "h2", 3: "w2"}),
        [
            (torch.randn(1, 4, 7, 3), torch.randn(1, 4, 14, 6)),
            # ratios other than integers: onnxruntime's Resize would take 6 where torch takes 7
            (torch.randn(3, 4, 14, 9), torch.randn(3, 4, 2, 20)),
        ],
        lowest=11,
        lacks=((11, 28, "Resize"),),
        refused="aten::upsample_nearest2d.vec(float32): a computed output size needs ONNX Range",
    ),
    "nearest_by_factor": Case(
        NearestByFactor,
        (torch.randn(2, 3, 4, 5),),
        ({0: "batch", 2: "height", 3: "width"},),
        [(torch.randn(1, 3, 7, 3),), (torch.randn(3, 3, 2, 9),)],
        lowest=7,
        has=((7, 9, "Upsample"), (10, 28, "Resize")),
        lacks=((7, 28, "Gather"),),
    ),
    "nearest_fractional": Case(
        NearestFractional,
        (torch.randn(2, 3, 6, 8),),
        ({0: "batch", 2: "height", 3: "width"},),
        [(torch.randn(1, 3, 10, 7),), (torch.randn(2, 3, 3, 13),)],
        lowest=11,
        lacks=((11, 28, "Resize"),),
        refused="aten::upsample_nearest2d.vec(float32): a scale factor other than an integer",
    ),
    "bilinear": Case(
        Bilinear,
        (torch.randn(2, 3, 6, 8), torch.randn(1, 1, 9, 5)),
        ({0: "batch", 2: "h", 3: "w"}, {2: "h2", 3: "w2"}),
        [
            (torch.randn(1, 3, 10, 50), torch.randn(1, 1, 3, 17)),
            (torch.randn(3, 3, 90, 100), torch.randn(1, 1, 1, 30)),
        ],
        lowest=11,
        has=((11, 28, "Resize"),),
        exact=False,
        refused="aten::upsample_bilinear2d.vec(float32): float32 at opset 10: ONNX Upsample and Resize before opset 11 have neither",
    ),
    "mobilenetv3_block": Case(
        MobileNetV3Block,
        (torch.randn(2, 8, 9, 9),),
        ({0: "batch", 2: "height", 3: "width"},),
        [(torch.randn(1, 8, 5, 12),), (torch.randn(3, 8, 16, 7),)],
        lowest=7,
        has=((7, 28, "HardSigmoid"), (14, 28, "HardSwish")),
        lacks=((7, 13, "HardSwish"), (7, 28, "Clip"), (7, 28, "Div")),
        exact=False,
    ),
    "lookup": Case(
        Lookup,
        (torch.tensor([[1, 0, 4], [10, 2, 2]]), torch.tensor([2, 0, 1])),
        ({0: "batch", 1: "seq"}, {0: "picks"}),
        [
            (torch.tensor([[3, 1, 0, 7, 7]]), torch.tensor([3, 4])),
            (torch.randint(0, 11, (4, 2)), torch.tensor([1, 0, 1, 0, 1])),
        ],
        lowest=7,
        has=((7, 28, "Gather"),),
    ),
    "set_columns": Case(
        SetColumns,
        (torch.randn(3, 6), torch.tensor([0, 4]), torch.randn(3, 2)),
        ({0: "batch"}, {0: "picks"}, {0: "batch", 1: "picks"}),
        [
            (torch.randn(5, 6), torch.tensor([5, -1, 2]), torch.randn(5, 1)),
            (torch.randn(2, 6), torch.tensor([-6, 3, 1, 2]), torch.randn(2, 4)),
        ],
        lowest=11,
        has=((11, 28, "ScatterND"),),
        refused="aten::index_put(float32, int64, float32): float32 at opset 10: ONNX ScatterND arrives at opset 11",
    ),
    "set_masked": Case(
        SetMasked,
        (torch.randn(3, 4),),
        ({0: "batch", 1: "width"},),
        [(torch.randn(5, 7),), (torch.randn(2, 3),)],
        lowest=11,
        has=((11, 28, "ScatterND"), (11, 28, "NonZero")),
        refused="aten::index_put(float32, bool, float32): float32 at opset 10: ONNX ScatterND arrives at opset 11",
    ),
    "add_rows": Case(
        AddRows,
        (torch.randn(5, 3), torch.tensor([0, 4, 0]), torch.randn(3, 3)),
        ({0: "rows"}, {0: "picks"}, {0: "picks"}),
        [
            (torch.randn(7, 3), torch.tensor([6, 6, 6, -1, 2]), torch.randn(5, 3)),
            (torch.randn(4, 3), torch.tensor([1, -3]), torch.randn(2, 3)),
        ],
        lowest=16,
        has=((16, 28, "ScatterND"),),
        refused='ONNX ScatterND adds the values at repeated positions (reduction="add") from opset 16',
    ),
}


def _ops(program: torchonnx.ONNXProgram) -> set[str]:
    ops = set()
    for node in program.model.graph.all_nodes():
        ops.add(node.op_type)
    return ops


def _opsets(case: Case) -> list[int]:
    return sorted({case.lowest, 18, 28})


PARAMS = [
    pytest.param(name, opset, id=f"{name}-{opset}")
    for name, case in CASES.items()
    for opset in _opsets(case)
]


@pytest.mark.parametrize(("name", "opset"), PARAMS)
def test_exported_once_runs_at_other_sizes(name: str, opset: int) -> None:
    case = CASES[name]
    torch.manual_seed(0)
    model = case.make().eval()
    program = torchonnx.export(
        model, case.args, dynamic_shapes=case.shapes, opset_version=opset, verify=True
    )
    ops = _ops(program)
    for first, last, op in case.has:
        if first <= opset <= last:
            assert op in ops, f"{name} at opset {opset} has no {op}: {sorted(ops)}"
    for first, last, op in case.lacks:
        if first <= opset <= last:
            assert op not in ops, f"{name} at opset {opset} has {op}: {sorted(ops)}"
    for other in case.others:
        with torch.no_grad():
            expected = model(*other)
        expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)
        actual = program(*other)
        assert len(actual) == len(expected)
        for got, want in zip(actual, expected, strict=True):
            assert got.shape == want.shape
            if case.exact:
                assert torch.equal(got, want)
            else:
                torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.lowest > 7])
def test_refused_below_the_lowest_opset(name: str) -> None:
    """One opset below the lowest, the export fails and names the op and the reason (a declared
    gap, or no lowering there), never a wrong model."""
    case = CASES[name]
    model = case.make().eval()
    with pytest.raises(torchonnx.UnsupportedOperatorError) as err:
        torchonnx.export(
            model, case.args, dynamic_shapes=case.shapes, opset_version=case.lowest - 1
        )
    assert case.refused and case.refused in str(err.value)
