"""Shape rules: the output shape of an op from its input shapes and arguments.

Specs name one of these rules (`shape: broadcast(self, other)`), or `infer` where the shape
comes from the ONNX graph itself. Each rule takes the shapes of tensor arguments (tuples of
ints) and the values of the others, and returns the output shape, or a list of shapes for ops
that return several tensors. Tests check every rule against eager PyTorch on the spec's samples.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence

Shape = tuple[int, ...]


def _dim(dim: int, rank: int) -> int:
    if not -max(rank, 1) <= dim < max(rank, 1):
        raise IndexError(f"dim {dim} is out of range for rank {rank}")
    return dim % max(rank, 1)


def same(x: Shape) -> Shape:
    return tuple(x)


def broadcast(*shapes: Shape) -> Shape:
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(rank):
        sizes = {s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0}
        sizes.discard(1)
        if len(sizes) > 1:
            raise ValueError(f"shapes {shapes} do not broadcast")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def reduce(x: Shape, dims: int | Sequence[int] | None, keepdim: bool) -> Shape:
    if dims is None or (not isinstance(dims, int) and len(dims) == 0):
        axes = set(range(len(x)))
    else:
        axes = {_dim(d, len(x)) for d in ([dims] if isinstance(dims, int) else dims)}
    if keepdim:
        return tuple(1 if i in axes else s for i, s in enumerate(x))
    return tuple(s for i, s in enumerate(x) if i not in axes)


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
        return tuple(s for s in x if s != 1)
    axes = {_dim(d, len(x)) for d in ([dims] if isinstance(dims, int) else dims)}
    return tuple(s for i, s in enumerate(x) if not (i in axes and s == 1))


def view(x: Shape, size: Sequence[int]) -> Shape:
    total = math.prod(x)
    known = math.prod(s for s in size if s != -1)
    return tuple(total // known if s == -1 else s for s in size)


def select(x: Shape, dim: int) -> Shape:
    d = _dim(dim, len(x))
    return tuple(x[:d] + x[d + 1 :])


def slice_(x: Shape, dim: int, start: int | None, end: int | None, step: int) -> Shape:
    d = _dim(dim, len(x))
    return (*x[:d], len(range(x[d])[start:end:step]), *x[d + 1 :])


def cat(tensors: Sequence[Shape], dim: int) -> Shape:
    shapes = [s for s in tensors if s != (0,)]
    d = _dim(dim, len(shapes[0]))
    return (*shapes[0][:d], sum(s[d] for s in shapes), *shapes[0][d + 1 :])


def split(x: Shape, split_size_or_sizes: int | Sequence[int], dim: int) -> list[Shape]:
    d = _dim(dim, len(x))
    if isinstance(split_size_or_sizes, int):
        n = split_size_or_sizes
        sizes = [min(n, x[d] - i) for i in range(0, x[d], n)] or [0]
    else:
        sizes = list(split_size_or_sizes)
    return [(*x[:d], s, *x[d + 1 :]) for s in sizes]


def expand(x: Shape, size: Sequence[int]) -> Shape:
    lead = len(size) - len(x)
    return tuple(x[i - lead] if s == -1 else s for i, s in enumerate(size))


def flatten(x: Shape, start_dim: int, end_dim: int) -> Shape:
    if not x:
        return (1,)
    a, b = _dim(start_dim, len(x)), _dim(end_dim, len(x))
    return (*x[:a], math.prod(x[a : b + 1]), *x[b + 1 :])


RULES: dict[str, Callable[..., Shape | list[Shape]]] = {
    f.__name__.rstrip("_"): f
    for f in (
        same,
        broadcast,
        reduce,
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
    )
}
# `infer`: no rule; the shape comes from the graph (shape inference) and is not checked here.
INFER = "infer"


def arity(rule: str) -> tuple[int, int | None]:
    """How many arguments a rule takes: (least, most); most is None for any number."""
    params = inspect.signature(RULES[rule]).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return 1, None
    least = sum(1 for p in params if p.default is inspect.Parameter.empty)
    return least, len(params)
