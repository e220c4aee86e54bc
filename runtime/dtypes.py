"""Data types by name, and ATen type promotion.

Specs, generated code and errors name data types the way torch does (`float32`, `int64`,
`bfloat16`, ...). This module maps those names to torch and ONNX types, and computes the
dtype an elementwise ATen op computes in (its type promotion), for both export paths and for
codegen: it is the one copy of these rules. It imports no generated code, and imports torch and
onnx_ir only when asked for their types, so that codegen runs without loading either.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx_ir as ir
    import torch

# The vocabulary of dtype names, in the order tables list them, with the number of each in
# ONNX's TensorProto.DataType (fixed by the ONNX standard; onnx_ir.DataType uses the same).
_ONNX: dict[str, int] = {
    "bool": 9,
    "uint8": 2,
    "int8": 3,
    "int16": 5,
    "int32": 6,
    "int64": 7,
    "uint16": 4,
    "uint32": 12,
    "uint64": 13,
    "float16": 10,
    "bfloat16": 16,
    "float32": 1,
    "float64": 11,
    "complex64": 14,
    "complex128": 15,
}
DTYPE_NAMES: tuple[str, ...] = tuple(_ONNX)

# How onnx.defs type constraints spell each dtype (`tensor(float)`), where it differs.
_ONNX_SPELLING = {"float32": "float", "float64": "double"}
_ONNX_TYPE_STR = {name: f"tensor({_ONNX_SPELLING.get(name, name)})" for name in DTYPE_NAMES}

# ATen's ScalarType numbering, in which TorchScript graphs carry dtype arguments.
_SCALAR_TYPES: dict[int, str] = {
    0: "uint8",
    1: "int8",
    2: "int16",
    3: "int32",
    4: "int64",
    5: "float16",
    6: "float32",
    7: "float64",
    9: "complex64",
    10: "complex128",
    11: "bool",
    15: "bfloat16",
    27: "uint16",
    28: "uint32",
    29: "uint64",
}

_NAME_OF_ONNX: dict[int, str] = {number: name for name, number in _ONNX.items()}

FLOATING = frozenset({"float16", "bfloat16", "float32", "float64"})
COMPLEX = frozenset({"complex64", "complex128"})
INTEGRAL = frozenset({"uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64"})

# Promotion kinds, as torch's reference implementations name them.
PROMOTION_KINDS = (
    "default",
    "int_to_float",
    "always_bool",
    "complex_to_float",
    "int_to_long",
    "python",  # Python's rules for the numbers of sizes: bool, then int64, then float64
)


@cache
def _torch_dtypes() -> dict[str, torch.dtype]:
    import torch  # here, not at the top: see the module's docstring

    return {name: getattr(torch, name) for name in DTYPE_NAMES}


@cache
def _torch_names() -> dict[torch.dtype, str]:
    return {dt: name for name, dt in _torch_dtypes().items()}


def torch_dtype(name: str) -> torch.dtype:
    return _torch_dtypes()[name]


def ir_dtype(name: str) -> ir.DataType:
    import onnx_ir as ir  # here, not at the top: see the module's docstring

    return ir.DataType(_ONNX[name])


def onnx_enum(dtype: str | torch.dtype | ir.DataType) -> int:
    """The `TensorProto.DataType` number of a dtype (the value of Cast's `to`)."""
    return _ONNX[name_of(dtype)]


def onnx_type_str(name: str) -> str:
    """How onnx.defs type constraints spell a dtype: `tensor(float)`."""
    return _ONNX_TYPE_STR[name]


def scalar_type_name(number: int) -> str:
    """The name of the dtype that ATen's ScalarType `number` stands for."""
    return _SCALAR_TYPES[number]


def name_of(dtype: str | torch.dtype | ir.DataType) -> str:
    """The name of a dtype given by name, torch dtype or ONNX IR dtype."""
    if isinstance(dtype, str):
        if dtype not in _ONNX:
            raise KeyError(f"unknown dtype {dtype!r}")
        return dtype
    # without torch (or onnx_ir) loaded, no value is one of its dtypes
    torch_module = sys.modules.get("torch")
    if torch_module is not None and isinstance(dtype, torch_module.dtype):
        return _torch_names()[dtype]
    ir_module = sys.modules.get("onnx_ir")
    if ir_module is not None and isinstance(dtype, ir_module.DataType):
        return _NAME_OF_ONNX[int(dtype)]
    raise TypeError(f"not a dtype: {dtype!r}")


def from_ir(dtype: ir.DataType) -> torch.dtype:
    return torch_dtype(name_of(dtype))


def is_floating(name: str) -> bool:
    return name in FLOATING


def real_of(name: str) -> str:
    """The real dtype of a complex dtype; other dtypes are their own."""
    return {"complex64": "float32", "complex128": "float64"}.get(name, name)


@dataclass(frozen=True)
class Operand:
    """What type promotion needs to know of one operand.

    `dtype` is the tensor's dtype, or for a Python number the dtype torch gives it
    (`bool`, `int64`, `float64` or `complex128`); `dim` is the tensor's rank, and None for
    a Python number.
    """

    dtype: str
    dim: int | None

    @staticmethod
    def scalar(value: bool | int | float | complex) -> Operand:
        if isinstance(value, bool):
            return Operand("bool", None)
        if isinstance(value, int):
            return Operand("int64", None)
        if isinstance(value, float):
            return Operand("float64", None)
        if isinstance(value, complex):
            return Operand("complex128", None)
        raise TypeError(f"not a Python number: {value!r}")


def _category(name: str) -> int:
    if name == "bool":
        return 0
    if name in INTEGRAL:
        return 1
    if name in FLOATING:
        return 2
    return 3


# The unsigned types ATen has only basic support for: they promote with themselves and with
# floating types, and nothing else (not even bool).
_BAREBONES_UNSIGNED = frozenset({"uint16", "uint32", "uint64"})
_BITS = {"float16": 16, "bfloat16": 16, "float32": 32, "float64": 64, "uint8": 8, "int8": 8}
_BITS.update({"int16": 16, "int32": 32, "int64": 64, "complex64": 32, "complex128": 64})


def promote_types(a: str, b: str) -> str:
    """The dtype two dtypes promote to (`torch.promote_types`); TypeError where ATen has none."""
    if a == b:
        return a
    if (a in _BAREBONES_UNSIGNED or b in _BAREBONES_UNSIGNED) and not (
        a in FLOATING or b in FLOATING
    ):
        raise TypeError(f"ATen does not promote {a} with {b}")
    low, high = sorted((a, b), key=_category)
    if _category(low) < _category(high):
        # a complex type widens to hold a float64: complex64 with float64 is complex128
        return "complex128" if high in COMPLEX and low == "float64" else high
    if high in COMPLEX:
        return "complex128"  # complex64 with complex128
    if high in FLOATING:
        # float16 and bfloat16 have no common 16-bit type
        return "float32" if _BITS[a] == _BITS[b] else max(a, b, key=_BITS.__getitem__)
    if (a == "uint8") != (b == "uint8"):
        signed = b if a == "uint8" else a
        return "int16" if signed == "int8" else signed
    return max(a, b, key=_BITS.__getitem__)


def _promote(a: str | None, b: str) -> str:
    return b if a is None else promote_types(a, b)


def _combine(higher: str | None, lower: str | None) -> str | None:
    """Combine the results of two tiers: a lower tier only wins with a higher category."""
    if higher is None:
        return lower
    if lower is None:
        return higher
    if higher in COMPLEX:
        return higher
    if lower in COMPLEX:
        return {"float64": "complex128"}.get(higher, "complex64") if higher in FLOATING else lower
    if higher in FLOATING:
        return higher
    if higher == "bool" or lower in FLOATING:
        return _promote(higher, lower)
    return higher


def default_float() -> str:
    """torch's default floating dtype (`torch.set_default_dtype`): what Python floats and the
    int_to_float promotion of integers give."""
    import torch

    return name_of(torch.get_default_dtype())


# The dtypes torch accepts as its default dtype: a plan made at codegen time covers each.
DEFAULT_FLOATS = tuple(d for d in DTYPE_NAMES if d in FLOATING)


def result_dtype(operands: Iterable[Operand], default: str | None = None) -> str:
    """The dtype ATen computes in for these operands (`torch.result_type`, generalised).

    Tensors with dimensions take precedence over zero-dim tensors, which take precedence
    over Python numbers, unless a lower tier holds a higher category (bool < integer <
    floating < complex). Python floats count as the default dtype: `default`, or torch's
    (`default_float()`) when None.
    """
    tiers: list[str | None] = [None, None, None]
    floating = default or default_float()
    for op in operands:
        if op.dim is None:
            dtype = op.dtype
            if dtype in FLOATING:
                dtype = floating
            elif dtype in COMPLEX:
                dtype = "complex128" if floating == "float64" else "complex64"
            tiers[2] = _promote(tiers[2], dtype)
        elif op.dim == 0:
            tiers[1] = _promote(tiers[1], op.dtype)
        else:
            tiers[0] = _promote(tiers[0], op.dtype)
    result = _combine(tiers[0], _combine(tiers[1], tiers[2]))
    if result is None:
        raise ValueError("type promotion needs at least one operand")
    return result


def compute_dtype(kind: str, operands: Sequence[Operand], default: str | None = None) -> str:
    """The dtype an op of promotion `kind` computes in (its inputs are cast to it); `default`
    is the default floating dtype (torch's when None)."""
    if kind == "python":
        return python_dtype(op.dtype for op in operands)
    dtype = result_dtype(operands, default)
    if kind == "int_to_float" and _category(dtype) < 2:
        return default or default_float()
    if kind == "int_to_long" and _category(dtype) < 2:
        return "int64"
    return dtype


def python_dtype(dtypes: Iterable[str]) -> str:
    """The dtype Python computes numbers of these dtypes in: any float makes a float64, any
    integer an int64; bools stay bool (SymInts are int64 in a graph, SymFloats float64)."""
    categories = {_category(d) for d in dtypes}
    if not categories:
        raise ValueError("type promotion needs at least one operand")
    return {0: "bool", 1: "int64"}.get(max(categories), "float64")


def compute_dtypes(kind: str | None, dtype: str) -> tuple[str, ...]:
    """Every dtype an op of promotion `kind` may compute in for a tensor of `dtype`, whatever
    the default dtype is when exporting (what codegen makes dtype plans for)."""
    if kind is None:
        return (dtype,)
    found = {compute_dtype(kind, [Operand(dtype, 1)], default) for default in DEFAULT_FLOATS}
    return tuple(d for d in DTYPE_NAMES if d in found)


def output_dtype(kind: str, compute: str) -> str:
    """The dtype of the op's result given the dtype it computes in."""
    if kind == "always_bool":
        return "bool"
    if kind == "complex_to_float":
        return real_of(compute)
    return compute


# ATen's Layout and MemoryFormat numbering (c10/core/Layout.h, MemoryFormat.h).
_LAYOUTS = {0: "strided", 1: "sparse_coo", 2: "sparse_csr", 3: "mkldnn"}
_MEMORY_FORMATS = {
    0: "contiguous_format",
    1: "preserve_format",
    2: "channels_last",
    3: "channels_last_3d",
}


def named_value(kind: str, value: Any) -> str:
    """A ScalarType, Layout, Device or MemoryFormat argument by name, whatever the export path
    gives (a torch object, ATen's number for it, or its name): `float32`, `strided`, `cpu`,
    `channels_last`."""
    if isinstance(value, str):
        return value
    if kind == "dtype":
        return scalar_type_name(value) if isinstance(value, int) else name_of(value)
    if kind == "layout" and isinstance(value, int):
        return _LAYOUTS[value]
    if kind == "memory_format" and isinstance(value, int):
        return _MEMORY_FORMATS[value]
    return str(value).removeprefix("torch.")
