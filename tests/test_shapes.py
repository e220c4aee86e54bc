"""Shape rules with static and symbolic sizes (runtime/shapes.py); the op tests check every spec's
rule against eager on its samples."""

from __future__ import annotations

import pytest
import sympy

from torchonnx import shapes
from torchonnx.shapes import ShapeError

s0, s1, s2 = (sympy.Symbol(f"s{i}", integer=True, positive=True) for i in range(3))


def at(shape: tuple, **sizes: int) -> tuple[int, ...]:
    """A symbolic shape at given sizes."""
    values = {sympy.Symbol(k, integer=True, positive=True): v for k, v in sizes.items()}
    return tuple(int(sympy.simplify(sympy.sympify(d).xreplace(values))) for d in shape)


def test_broadcast() -> None:
    assert shapes.broadcast((2, 1, 4), (3, 1)) == (2, 3, 4)
    assert shapes.broadcast((s0, 1), (1, s1)) == (s0, s1)
    assert shapes.broadcast((s0, 3), (3,)) == (s0, 3)
    # two dynamic sizes other than 1 are the same size (torch checks it)
    assert shapes.broadcast((s0,), (s1,)) == (s0,)
    # a static size wins over a dynamic one it must equal
    assert shapes.broadcast((s0,), (4,)) == (4,)
    assert shapes.broadcast((), (s0, 2)) == (s0, 2)
    with pytest.raises(ShapeError, match="do not broadcast"):
        shapes.broadcast((2, 3), (4, 3))


def test_reduce_keeps_or_drops_dims() -> None:
    assert shapes.reduce((s0, s1, 4), [1], True) == (s0, 1, 4)
    assert shapes.reduce((s0, s1, 4), [0, -1], False) == (s1,)
    assert shapes.reduce((s0, s1), None, False) == ()
    with pytest.raises(ShapeError, match="dim 2 is out of range"):
        shapes.reduce((s0, s1), 2, False)
    assert shapes.reduce_listed((s0, s1), [], True) == (s0, s1)
    assert shapes.reduce_listed((s0, s1), None, True) == (1, 1)
    assert shapes.reduce_listed((s0, s1), [-1], False) == (s0,)


def test_matmul_and_linear() -> None:
    assert shapes.matmul((s0, 3), (3, s1)) == (s0, s1)
    assert shapes.matmul((s1,), (s0, s1, 4)) == (s0, 4)
    assert shapes.matmul((2, 1, s0, 3), (4, 3, 2)) == (2, 4, s0, 2)
    assert shapes.linear((s0, s1, 3), (2, 3)) == (s0, s1, 2)


def test_view_infers_the_missing_size() -> None:
    assert shapes.view((2, 3, 4), [6, -1]) == (6, 4)
    out = shapes.view((s0, s1, 4), [2, -1])
    assert out[0] == 2 and at(out, s0=3, s1=5) == (2, 30)
    assert shapes.view((s0, 4), [-1]) == (4 * s0,)


def test_slice_with_dynamic_sizes_clamps_like_python() -> None:
    for start, end, step in [(1, 9223372036854775807, 1), (-5, -1, 2), (None, 3, 1), (2, None, 3)]:
        out = shapes.slice_((s0, 3), 0, start, end, step)
        for n in (2, 4, 7, 10):
            expected = len(range(n)[start:end:step])
            assert at(out, s0=n) == (expected, 3), (start, end, step, n)


def test_cat_split_expand_flatten() -> None:
    assert shapes.cat([(s0, 3), (s1, 3), (0,)], 0) == (s0 + s1, 3)
    assert shapes.split((5, s0), 2, 0) == [(2, s0), (2, s0), (1, s0)]
    assert shapes.split((s0, 4), [1, 2], 0) == [(1, 4), (2, 4)]
    with pytest.raises(ShapeError, match="depends on the dynamic size s0"):
        shapes.split((s0, 4), 2, 0)
    assert shapes.expand((s0, 1), [2, -1, 4]) == (2, s0, 4)
    assert shapes.flatten((s0, s1, 4), 1, 2) == (s0, 4 * s1)
    assert shapes.flatten((), 0, -1) == (1,)


def test_squeeze_keeps_dynamic_dims() -> None:
    # torch.export specialises size 1: a dynamic size is never 1
    assert shapes.squeeze((1, s0, 1, s1)) == (s0, s1)
    assert shapes.squeeze((1, s0), [0, 1]) == (s0,)


def test_evaluate_names_arguments() -> None:
    args = {"self": (s0, 3), "other": (3,), "alpha": 2}
    assert shapes.evaluate("broadcast(self, other)", args) == (s0, 3)
    assert shapes.evaluate("infer", args) is None
    assert shapes.parse("reduce(self, dim, keepdim)") == ("reduce", ("self", "dim", "keepdim"))
