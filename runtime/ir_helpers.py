"""Helpers that generated onnxscript lowerings call as `_h.*` (torch.export path)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import onnx_ir as ir
import torch

from torchonnx.dispatch import NotLowerable, bind, lower
from torchonnx.dtypes import ir_dtype, name_of, onnx_enum
from torchonnx.meta import (
    bits,
    dtype_of,
    factory_dtype,
    is_floating,
    is_static,
    rank,
    static,
    static_size,
    static_sizes,
)

__all__ = [
    "as_list",
    "attrs",
    "bits",
    "const",
    "dtype_of",
    "factory_dtype",
    "floats",
    "is_floating",
    "is_static",
    "onnx_dtype",
    "rank",
    "size",
    "sizes",
    "static",
    "static_size",
    "static_sizes",
]


def sizes(op: Any, value: ir.Value) -> list[int | ir.Value]:
    """The sizes of a tensor: ints where static, 0-d int64 graph values where dynamic."""
    if value.shape is None:
        raise NotLowerable(f"the shape of {value.name} is not known")
    return [
        d if isinstance(d, int) else op.builder.dim(value, i) for i, d in enumerate(value.shape)
    ]


def size(op: Any, value: ir.Value, dim: int) -> int | ir.Value:
    """The size of dimension `dim`: an int where static, a 0-d int64 graph value where not."""
    if value.shape is None:
        raise NotLowerable(f"the shape of {value.name} is not known")
    d = value.shape[dim]
    return d if isinstance(d, int) else op.builder.dim(value, dim % len(value.shape))


def const(op: Any, value: Any, dtype: str | torch.dtype) -> ir.Value | None:
    """A constant of `dtype` holding `value` (a number or a nested list of numbers); a graph
    value is cast to `dtype` where it differs, a list mixing numbers and 0-d graph values
    (sizes) becomes a 1-D tensor, and None (an omitted input) stays None."""
    if value is None:
        return None
    return op.builder.constant(value, dtype)


def onnx_dtype(dtype: str | torch.dtype | ir.DataType) -> int:
    """The ONNX data type number of a dtype, as Cast's `to` takes it."""
    return onnx_enum(dtype)


def as_list(outputs: ir.Value | Sequence[ir.Value]) -> list[ir.Value]:
    """The outputs of a node with a number of outputs decided while exporting, as a list."""
    return [outputs] if isinstance(outputs, ir.Value) else list(outputs)


def floats(value: Any) -> Any:
    """A FLOAT or FLOATS attribute's value as floats (ints would make INT attributes); None
    stays None."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [float(v) for v in value]
    return float(value)


def attrs(**values: Any) -> Mapping[str, Any]:
    """Attributes whose value may be None: those that are None are left out."""
    return {k: v for k, v in values.items() if v is not None}


def typed(value: ir.Value, dtype: str | torch.dtype) -> ir.Value:
    """`value`, with the dtype codegen knows it has (for type promotion in `aten`)."""
    if value.dtype is None:
        value.dtype = ir_dtype(name_of(dtype))
    return value


def aten(op: Any, overload: str, *args: Any, **kwargs: Any) -> Any:
    """Lower a call of another spec's ATen overload at the target opset (`aten.amax(...)`)."""
    from torchonnx.generated.registry import OVERLOADS

    entry = OVERLOADS[overload]
    return lower(entry, overload, op.builder.backend, bind(entry.overloads[overload], args, kwargs))
