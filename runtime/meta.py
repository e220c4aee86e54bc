"""What lowerings may read of their tensor arguments while exporting: rank, sizes, dtype.

Generated code on both paths calls these (as `_h.rank(x)` ...); they accept an onnx_ir value
(torch.export path) or a TorchScript value (symbolic functions).
"""

from __future__ import annotations

from typing import Any

import onnx_ir as ir

from torchonnx.dispatch import NotLowerable
from torchonnx.dtypes import FLOATING, name_of


def _shape(value: Any) -> list[int | str | None]:
    if isinstance(value, ir.Value):
        if value.shape is None:
            raise NotLowerable(f"the shape of {value.name} is not known")
        return [d if isinstance(d, int) else str(d) for d in value.shape]
    sizes = value.type().varyingSizes()
    if sizes is None:
        raise NotLowerable(f"the shape of {value.debugName()} is not known")
    return list(sizes)


def rank(value: Any) -> int:
    if isinstance(value, (list, tuple)):
        return rank(value[0])
    return len(_shape(value))


def sizes(value: Any) -> list[int]:
    """Static sizes; NotLowerable where a dimension is dynamic."""
    shape = _shape(value)
    if not all(isinstance(d, int) for d in shape):
        raise NotLowerable(f"this lowering needs static sizes, and {shape} has dynamic dimensions")
    return shape  # type: ignore[return-value]


def size(value: Any, dim: int) -> int | None:
    """The static size of dimension `dim`, or None where it is dynamic."""
    shape = _shape(value)
    d = shape[dim]
    return d if isinstance(d, int) else None


def dtype_of(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return dtype_of(value[0])
    if isinstance(value, ir.Value):
        if value.dtype is None:
            raise NotLowerable(f"the dtype of {value.name} is not known")
        return name_of(value.dtype)
    dtype = value.type().dtype()
    if dtype is None:
        raise NotLowerable(f"the dtype of {value.debugName()} is not known")
    return name_of(dtype)


def is_floating(value: Any) -> bool:
    return dtype_of(value) in FLOATING
