"""Index rules: how an op's index output points into one of its inputs.

Ops such as max.dim, argmax, sort, topk and max_pool2d_with_indices return the positions of
elements of an input. Where several elements are equal (a tie), any of their positions is
right, and runtimes need not pick the one eager PyTorch picks. A spec names the rule of its
index output (`indices: along(self, dim)`), and tests compare what the indices select from
the input instead of the indices themselves.

Each rule takes the index tensor, then the arguments the spec names (tensors as tensors), and
returns the elements of the input the indices select.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch  # the rules run on tensors; codegen reads their names and arities only

from torchonnx.shapes import parse


def along(indices: torch.Tensor, x: torch.Tensor, dim: int | None) -> torch.Tensor:
    """Indices along dim `dim` of `x` (into the flattened `x` when `dim` is None), with or
    without that dim kept (size 1, or k for topk)."""
    if dim is None or x.dim() == 0:
        return x.reshape(-1)[indices.reshape(-1)].reshape(indices.shape)
    d = dim % x.dim()
    picked = indices if indices.dim() == x.dim() else indices.unsqueeze(d)
    return x.gather(d, picked)


def window(indices: torch.Tensor, x: torch.Tensor, kernel_size: Sequence[int]) -> torch.Tensor:
    """Indices into the flattened spatial plane of `x` (its last len(kernel_size) dims), one per
    output position of a pooling window (max_pool2d_with_indices)."""
    k = len(kernel_size)
    flat = indices.flatten(-k)
    return x.flatten(-k).gather(-1, flat).reshape(indices.shape)


RULES: dict[str, Callable[..., torch.Tensor]] = {f.__name__: f for f in (along, window)}


def arity(rule: str) -> int:
    """How many arguments of the op a rule takes (the index tensor aside)."""
    return len(inspect.signature(RULES[rule]).parameters) - 1


def evaluate(text: str, args: Mapping[str, Any], indices: torch.Tensor) -> torch.Tensor:
    """The elements the index tensor selects under a spec's rule, from the call's `args` by
    name."""
    name, names = parse(text)
    return RULES[name](indices, *(args[n] for n in names))
