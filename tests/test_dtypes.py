"""torchonnx.dtypes, the one copy of dtype names and ATen type promotion that codegen and both
export paths use, held against torch: every pair of operands (tensors of every dtype with
dimensions or zero-dim, and Python bool, int, float and complex), under each default dtype,
for each promotion kind for which torch has a reference."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch._prims_common import ELEMENTWISE_TYPE_PROMOTION_KIND as KIND
from torch._prims_common import elementwise_dtypes

from torchonnx.dtypes import (
    DEFAULT_FLOATS,
    DTYPE_NAMES,
    PROMOTION_KINDS,
    Operand,
    compute_dtype,
    compute_dtypes,
    name_of,
    output_dtype,
    promote_types,
    scalar_type_name,
    torch_dtype,
)

# Our kinds that torch's reference implementations name the same way.
TORCH_KINDS = {
    "default": KIND.DEFAULT,
    "int_to_float": KIND.INT_TO_FLOAT,
    "always_bool": KIND.ALWAYS_BOOL,
    "complex_to_float": KIND.COMPLEX_TO_FLOAT,
}
SCALARS = (True, 3, 2.5, 1 + 2j)


def operands() -> list[tuple[Any, Operand]]:
    """(torch argument, our operand) for every form an argument of promotion takes."""
    out: list[tuple[Any, Operand]] = []
    for name in DTYPE_NAMES:
        out.append((torch.zeros(2, 3, dtype=torch_dtype(name)), Operand(name, 2)))
        out.append((torch.zeros((), dtype=torch_dtype(name)), Operand(name, 0)))
    out.extend((value, Operand.scalar(value)) for value in SCALARS)
    return out


@contextlib.contextmanager
def default_dtype(name: str) -> Iterator[None]:
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch_dtype(name))
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def torch_says(fn: Any, *args: Any) -> str | None:
    """torch's answer as a dtype name; None where torch refuses (uint16/32/64 promote with
    nothing but themselves and floats)."""
    try:
        dtype = fn(*args)
    except (RuntimeError, TypeError, ValueError):
        return None
    return name_of(dtype) if dtype in (torch_dtype(n) for n in DTYPE_NAMES) else "unnamed"


def ours(kind: str, ops: list[Operand], default: str) -> tuple[str, str] | None:
    try:
        compute = compute_dtype(kind, ops)
    except TypeError:
        return None
    # codegen passes the default explicitly; it must agree with reading torch's
    assert compute_dtype(kind, ops, default) == compute
    return compute, output_dtype(kind, compute)


def test_promote_types_matches_torch() -> None:
    """Our pairwise lattice (codegen uses it without importing torch) is torch's, refusals
    included."""
    wrong = []
    for a, b in itertools.product(DTYPE_NAMES, repeat=2):
        want = torch_says(torch.promote_types, torch_dtype(a), torch_dtype(b))
        try:
            got: str | None = promote_types(a, b)
        except TypeError:
            got = None
        if got != want:
            wrong.append(f"{a} with {b}: torch {want}, ours {got}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("default", DEFAULT_FLOATS)
def test_promotion_matches_torch(default: str) -> None:
    cases = [pair for pair in itertools.product(operands(), repeat=2)]
    cases += [(one,) for one in operands()]
    wrong: list[str] = []
    checked = 0
    with default_dtype(default):
        for case in cases:
            args = [a for a, _ in case]
            ops = [o for _, o in case]
            if all(not isinstance(a, torch.Tensor) for a in args):
                continue  # torch takes no promotion of Python numbers alone
            promoted = torch_says(torch.result_type, *args) if len(args) == 2 else None
            if len(args) == 1:
                promoted = name_of(args[0].dtype)
            for kind, torch_kind in TORCH_KINDS.items():
                want = torch_says(
                    lambda *a, k=torch_kind: elementwise_dtypes(*a, type_promotion_kind=k)[1],
                    *args,
                )
                if "unnamed" in (want, promoted):
                    continue  # complex32, of float16 and a complex: a dtype without a name here
                got = ours(kind, ops, default)
                if want is None or promoted is None:
                    if got is not None:
                        wrong.append(f"{kind}{tuple(args)!s:.80}: torch refuses, we give {got}")
                    continue
                # the dtype the op computes in is the promoted one, except int_to_float's
                compute = want if kind == "int_to_float" else promoted
                if got != (compute, want):
                    wrong.append(f"{kind} {ops}: torch ({compute}, {want}), ours {got}")
                checked += 1
    assert not wrong, "\n".join(wrong[:20])
    assert checked > 4 * 30 * 30


@pytest.mark.parametrize("default", DEFAULT_FLOATS)
def test_int_to_long_matches_sum(default: str) -> None:
    """int_to_long (sum, prod, cumsum) against torch.sum, its reference."""
    checked = 0
    with default_dtype(default):
        for tensor, op in operands():
            if not isinstance(tensor, torch.Tensor):
                continue
            want = torch_says(lambda t: torch.sum(t).dtype, tensor)
            if want is None:
                continue  # torch has no sum kernel for this dtype
            assert compute_dtype("int_to_long", [op]) == want, op
            checked += 1
    assert checked >= 20


def test_every_kind_is_checked() -> None:
    assert set(PROMOTION_KINDS) == {*TORCH_KINDS, "int_to_long", "python"}


def test_python_kind_follows_python_numbers() -> None:
    """`python` (sizes and numbers the graph computes) against Python's own arithmetic: the
    type of a + b for ints, floats and bools, as the graph's int64, float64 and bool."""
    graph = {bool: "bool", int: "int64", float: "float64"}
    for a, b in itertools.product([3, 2.5], [True, 4, 0.5]):
        ops = [Operand(graph[type(a)], None), Operand(graph[type(b)], 0)]
        assert compute_dtype("python", ops) == graph[type(a + b)], (a, b)
    # bools with bools stay bool: the graph's logic on SymBools (and_, or_, not_)
    assert compute_dtype("python", [Operand("bool", 0), Operand("bool", None)]) == "bool"


def test_codegen_plans_for_every_default_dtype() -> None:
    assert compute_dtypes("int_to_float", "int32") == DEFAULT_FLOATS
    assert compute_dtypes("int_to_float", "float64") == ("float64",)
    assert compute_dtypes("int_to_long", "bool") == ("int64",)
    assert compute_dtypes(None, "uint8") == ("uint8",)
    for default in DEFAULT_FLOATS:
        with default_dtype(default):
            for kind in PROMOTION_KINDS:
                for name in DTYPE_NAMES:
                    try:
                        runtime = compute_dtype(kind, [Operand(name, 1)])
                    except RuntimeError:
                        continue
                    assert runtime in compute_dtypes(kind, name), (kind, name, default)


def test_scalar_type_numbers_match_torchscript() -> None:
    """TorchScript graphs carry dtype arguments as ATen ScalarType numbers."""
    for name in DTYPE_NAMES:
        graph = torch.jit.trace(lambda x, n=name: x.to(torch_dtype(n)), torch.zeros(2)).graph
        numbers = [
            node.output().toIValue()
            for node in graph.nodes()
            if node.kind() == "prim::Constant" and node.output().type().kind() == "IntType"
        ]
        assert scalar_type_name(numbers[0]) == name
