"""Asking in code what the specs support."""

from __future__ import annotations

import torch

from torchonnx.dispatch import dtype_opsets
from torchonnx.dtypes import Operand, compute_dtype, name_of
from torchonnx.generated.registry import OVERLOADS
from torchonnx.overloads import normalize


def supported_opsets(
    op: str | torch._ops.OpOverload, dtype: str | torch.dtype | None = None
) -> list[int]:
    """The opsets at which `op` (e.g. "aten::add.Tensor" or torch.ops.aten.add.Tensor) lowers,
    for inputs of `dtype` if given (conditions on arguments aside)."""
    entry = OVERLOADS.get(normalize(op))
    if entry is None:
        return []
    if dtype is None:
        return sorted({o for lw in entry.lowerings for o in range(lw.since, lw.until + 1)})
    name = name_of(dtype)
    if name not in entry.dtypes:
        return []
    compute = compute_dtype(entry.promote, [Operand(name, 1)]) if entry.promote else name
    return dtype_opsets(entry, compute)


def is_supported(
    op: str | torch._ops.OpOverload, opset: int, dtype: str | torch.dtype | None = None
) -> bool:
    """Whether `op` lowers at `opset` (for `dtype`, if given)."""
    return opset in supported_opsets(op, dtype)
