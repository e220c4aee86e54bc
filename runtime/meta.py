"""What lowerings may read of their arguments while exporting, on both export paths.

Generated code calls these as `_h.rank(x)`, `_h.is_static(size)`, ...; they accept onnx_ir
values (torch.export path) and TorchScript values (symbolic functions). Helpers that add nodes
(`sizes`, `size`) live in each path's helper module.
"""

from __future__ import annotations

from typing import Any

import onnx_ir as ir
import torch

from torchonnx.dispatch import NotLowerable
from torchonnx.dtypes import FLOATING, INTEGRAL, default_float, name_of, torch_dtype


class Dynamic:
    """A dynamic size as a `when` condition sees it: known to be computed, not computed yet."""

    def __repr__(self) -> str:
        return "Dynamic()"


def is_graph_value(value: Any) -> bool:
    """A value the graph computes (a tensor, or a SymInt/number as a 0-d tensor)."""
    return isinstance(value, (ir.Value, torch._C.Value, Dynamic))


def static_sizes(value: Any) -> list[int | Dynamic]:
    """The sizes of a tensor argument for a condition: ints, and Dynamic where not static."""
    return [Dynamic() if d is None else d for d in static_shape(value)]


def static_size(value: Any, dim: int) -> int | Dynamic:
    return static_sizes(value)[dim]


def static_shape(value: Any) -> list[int | None]:
    """The sizes of a tensor argument, None where a dimension is dynamic."""
    if isinstance(value, ir.Value):
        if value.shape is None:
            raise NotLowerable(f"the shape of {value.name} is not known")
        return [d if isinstance(d, int) else None for d in value.shape]
    sizes = value.type().varyingSizes()
    if sizes is None:
        raise NotLowerable(f"the shape of {value.debugName()} is not known")
    return list(sizes)


def rank(value: Any) -> int:
    if isinstance(value, (list, tuple)):
        return rank(value[0])
    return len(static_shape(value))


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


def is_static(*values: Any) -> bool:
    """Whether the values (and every element of lists) are known while exporting."""
    for value in values:
        if isinstance(value, (list, tuple)):
            if not is_static(*value):
                return False
        elif is_graph_value(value):
            return False
    return True


def static(value: Any, text: str) -> Any:
    """`value`, which the lowering needs known while exporting; NotLowerable where the graph
    computes it (a dynamic size, or a number the model computes)."""
    if not is_static(value):
        raise NotLowerable(
            f"`{text}` is computed in the graph (a dynamic size or a number of the model), and "
            "this lowering needs it known while exporting"
        )
    return value


def number_dtype(value: Any) -> str:
    """The dtype torch gives a number: a Python number, or a graph value standing for one."""
    if is_graph_value(value):
        dtype = dtype_of(value)
        if dtype == "bool":
            return "bool"
        return "int64" if dtype in INTEGRAL else default_float()
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, complex):
        return "complex128" if default_float() == "float64" else "complex64"
    return default_float()


def factory_dtype(dtype: str | None, *values: Any) -> str:
    """`dtype`, or when it is None the dtype torch's factories (full, arange, ...) give these
    values: bool for bools, int64 for integers, the default dtype where any is a float."""
    if dtype is not None:
        return dtype
    kinds = [number_dtype(v) for v in values if v is not None]
    for kind in ("complex128", "complex64", "float64", "float32", "float16", "bfloat16", "int64"):
        if kind in kinds:
            return kind
    return "bool"


def bits(dtype: str) -> int:
    """The width of an element of `dtype`, in bits."""
    return torch_dtype(dtype).itemsize * 8
