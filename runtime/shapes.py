"""Shape rules: the output shape of an op from its input shapes and arguments.

Specs name one of these rules (`shape: broadcast(self, other)`), or `infer` where the shape
comes from the ONNX graph itself. Each rule takes the shapes of tensor arguments and the values
of the others, and returns the output shape, or a list of shapes for ops that return a list of
tensors. A size is an int or, for a dynamic dimension, a sympy expression (`d0_1`,
`d0_1 + d1_1`). As in torch.export, which specialises sizes 0 and 1, a symbolic size is never
0 or 1: that is what decides `broadcast` of `s0` and `s1` (both are the same size) and
`squeeze` of a symbolic dim (kept). Tests check every rule against eager PyTorch on the
spec's samples, with static and with symbolic sizes.

sympy is imported where a rule meets a symbolic size: codegen reads the rules' names and
arities without loading it.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import sympy

Dim: TypeAlias = "int | sympy.Expr"
Shape: TypeAlias = "tuple[Dim, ...]"


class ShapeError(ValueError):
    """The arguments have no output shape under this rule (or it depends on a dynamic size)."""


def _dim(dim: int, rank: int) -> int:
    if not -max(rank, 1) <= dim < max(rank, 1):
        raise ShapeError(f"dim {dim} is out of range for rank {rank}")
    return dim % max(rank, 1)


def _static(size: Dim) -> int | None:
    """`size` as an int, or None when it depends on a dynamic size."""
    if isinstance(size, int):
        return size
    # sympy folds numbers as it builds expressions: no simplify (slow) is needed to see one
    return int(size) if size.is_Integer else None


def _is(size: Dim, value: int) -> bool:
    """Whether `size` is `value`; a dynamic size is never 0 or 1 (see the module doc)."""
    static = _static(size)
    return static == value if static is not None else False


def _prod(sizes: Sequence[Dim]) -> Dim:
    out: Dim = 1
    for s in sizes:
        out = out * s
    if isinstance(out, int):
        return out
    import sympy

    return sympy.expand(out)


def same(x: Shape) -> Shape:
    return tuple(x)


def broadcast(*shapes: Shape) -> Shape:
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(rank):
        sizes = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]
        kept = [s for s in sizes if not _is(s, 1)]
        static = {_static(s) for s in kept} - {None}
        if len(static) > 1:
            raise ShapeError(f"shapes {shapes} do not broadcast")
        # sizes other than 1 are all the same (torch checks it where they are dynamic): take a
        # static one where there is one
        out.append(static.pop() if static else (kept[0] if kept else 1))
    return tuple(out)


def reduce(x: Shape, dims: int | Sequence[int] | None, keepdim: bool) -> Shape:
    if dims is None or (not isinstance(dims, int) and len(dims) == 0):
        axes = set(range(len(x)))
    else:
        axes = {_dim(d, len(x)) for d in ([dims] if isinstance(dims, int) else dims)}
    if keepdim:
        return tuple(1 if i in axes else s for i, s in enumerate(x))
    return tuple(s for i, s in enumerate(x) if i not in axes)


def reduce_listed(x: Shape, dims: Sequence[int] | None, keepdim: bool) -> Shape:
    """reduce, where only None means every dim: an empty list reduces none (any.dims)."""
    return x if dims is not None and len(dims) == 0 else reduce(x, dims, keepdim)


def matmul(a: Shape, b: Shape) -> Shape:
    a2 = (1, *a) if len(a) == 1 else tuple(a)
    b2 = (*b, 1) if len(b) == 1 else tuple(b)
    out = (*broadcast(a2[:-2], b2[:-2]), a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


def linear(input: Shape, weight: Shape) -> Shape:
    return (*input[:-1], weight[0]) if len(weight) == 2 else tuple(input[:-1])


def permute(x: Shape, dims: Sequence[int]) -> Shape:
    return tuple(x[_dim(d, len(x))] for d in dims)


def transpose(x: Shape, dim0: int, dim1: int) -> Shape:
    out = list(x)
    if x:
        a, b = _dim(dim0, len(x)), _dim(dim1, len(x))
        out[a], out[b] = out[b], out[a]
    return tuple(out)


def unsqueeze(x: Shape, dim: int) -> Shape:
    d = dim % (len(x) + 1)
    return (*x[:d], 1, *x[d:])


def squeeze(x: Shape, dims: int | Sequence[int] | None = None) -> Shape:
    if dims is None:
        return tuple(s for s in x if not _is(s, 1))
    axes = {_dim(d, len(x)) for d in ([dims] if isinstance(dims, int) else dims)}
    return tuple(s for i, s in enumerate(x) if not (i in axes and _is(s, 1)))


def view(x: Shape, size: Sequence[int]) -> Shape:
    total = _prod(x)
    known = math.prod(s for s in size if s != -1)
    if isinstance(total, int):
        inferred: Dim = total // known if known else 0
    else:
        inferred = total / known
    return tuple(inferred if s == -1 else s for s in size)


def select(x: Shape, dim: int) -> Shape:
    d = _dim(dim, len(x))
    return tuple(x[:d] + x[d + 1 :])


def _bound(value: int | None, size: Dim, default: Dim) -> Dim:
    """A slice bound clamped to [0, size], as Python and ATen clamp it."""
    if value is None:
        return default
    if isinstance(size, int):
        return min(max(value + size if value < 0 else value, 0), size)
    import sympy

    return sympy.Max(value + size, 0) if value < 0 else sympy.Min(value, size)


def slice_(x: Shape, dim: int, start: int | None, end: int | None, step: int) -> Shape:
    d = _dim(dim, len(x))
    n = x[d]
    if isinstance(n, int):
        length: Dim = len(range(n)[start:end:step])
    else:
        import sympy

        first, last = _bound(start, n, 0), _bound(end, n, n)
        length = sympy.Max(sympy.ceiling((last - first) / step), 0)
    return (*x[:d], length, *x[d + 1 :])


def cat(tensors: Sequence[Shape], dim: int) -> Shape:
    shapes = [s for s in tensors if tuple(s) != (0,)]  # legacy empty tensors are left out
    d = _dim(dim, len(shapes[0]))
    total = sum((s[d] for s in shapes), start=0)
    return (*shapes[0][:d], total, *shapes[0][d + 1 :])


def split(x: Shape, split_size_or_sizes: int | Sequence[int], dim: int) -> list[Shape]:
    d = _dim(dim, len(x))
    if isinstance(split_size_or_sizes, int):
        n, size = split_size_or_sizes, _static(x[d])
        if size is None:
            raise ShapeError(
                f"the number of pieces of a split of size {n} depends on the dynamic size {x[d]}"
            )
        sizes = [min(n, size - i) for i in range(0, size, n)] or [0]
    else:
        sizes = list(split_size_or_sizes)
    return [(*x[:d], s, *x[d + 1 :]) for s in sizes]


def expand(x: Shape, size: Sequence[int]) -> Shape:
    lead = len(size) - len(x)
    return tuple(x[i - lead] if s == -1 else s for i, s in enumerate(size))


def topk(x: Shape, k: Dim, dim: int) -> Shape:
    """`x` with `k` elements along `dim` (a 0-d `x` stays 0-d)."""
    if not x:
        return ()
    d = _dim(dim, len(x))
    return (*x[:d], k, *x[d + 1 :])


def flatten(x: Shape, start_dim: int, end_dim: int) -> Shape:
    if not x:
        return (1,)
    a, b = _dim(start_dim, len(x)), _dim(end_dim, len(x))
    return (*x[:a], _prod(x[a : b + 1]), *x[b + 1 :])


RULES: dict[str, Callable[..., Shape | list[Shape]]] = {
    f.__name__.rstrip("_"): f
    for f in (
        same,
        broadcast,
        reduce,
        reduce_listed,
        matmul,
        linear,
        permute,
        transpose,
        unsqueeze,
        squeeze,
        view,
        select,
        slice_,
        cat,
        split,
        expand,
        flatten,
        topk,
    )
}
# `infer`: no rule; the shape comes from the graph (shape inference) and is not checked here.
INFER = "infer"

_RULE = re.compile(r"\s*(\w+)\s*(?:\((.*)\))?\s*")


def arity(rule: str) -> tuple[int, int | None]:
    """How many arguments a rule takes: (least, most); most is None for any number."""
    params = inspect.signature(RULES[rule]).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return 1, None
    least = sum(1 for p in params if p.default is inspect.Parameter.empty)
    return least, len(params)


def parse(text: str) -> tuple[str, tuple[str, ...]]:
    """A rule's name and the argument names it is given: `broadcast(self, other)`."""
    match = _RULE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a shape rule: {text!r}")
    args = tuple(a.strip() for a in match.group(2).split(",")) if match.group(2) else ()
    return match.group(1), args


def evaluate(text: str, args: Mapping[str, Any]) -> Shape | list[Shape] | None:
    """The output shape(s) a spec's rule gives for a call; None for `infer`.

    `args` holds the call's arguments by name, with each tensor argument replaced by its
    shape (a tuple of sizes; a list of them for a list of tensors).
    """
    name, names = parse(text)
    if name == INFER:
        return None
    return RULES[name](*(args[n] for n in names))
