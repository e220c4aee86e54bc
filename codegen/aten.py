"""ATen schemas of the installed torch, as codegen sees them."""

from __future__ import annotations

import enum
import functools
import keyword
import re
from dataclasses import dataclass

import torch
from torchgen.model import FunctionSchema

from torchonnx.dtypes import name_of as dtype_name
from torchonnx.overloads import UnknownOverload, op_overload, split


class Kind(enum.Enum):
    """What a name in a lowering holds while the exporter runs."""

    TENSOR = "tensor"  # one graph value
    MAYBE_TENSOR = "tensor or None"  # `Tensor?`: a graph value or None
    TENSORS = "list of tensors"  # `Tensor[]`, or the outputs of a multi-output node
    VALUE = "Python value"  # known while exporting: int, float, bool, str, list, dtype
    NONE = "None"

    @property
    def is_tensor(self) -> bool:
        return self in (Kind.TENSOR, Kind.MAYBE_TENSOR, Kind.TENSORS)


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT = _NoDefault()

# How the Python type of a non-tensor argument is spelled for the body checker.
_PYTYPES = {
    "int": "int",
    "SymInt": "int",
    "float": "float",
    "bool": "bool",
    "str": "str",
    "number": "number",
    "Scalar": "number",
    "ScalarType": "dtype",
    "List[int]": "int[]",
    "List[SymInt]": "int[]",
    "List[float]": "float[]",
    "List[bool]": "bool[]",
}


@dataclass(frozen=True)
class Param:
    """One argument of an ATen overload (out arguments excluded)."""

    name: str  # as lowerings spell it: the schema name, `_` appended to Python keywords
    aten_name: str
    type: str  # the schema type, e.g. `Tensor?`, `int[]`, `ScalarType?`
    kind: Kind
    pytype: str  # for Kind.VALUE: int, float, bool, str, number, dtype, int[], float[], any
    optional: bool  # may be None
    default: object  # the Python default, or NO_DEFAULT
    kwarg_only: bool


@dataclass(frozen=True)
class AtenSchema:
    qualname: str  # aten::add.Tensor, aten::relu (the default overload has no suffix)
    name: str  # aten::add
    overload: str  # Tensor, or "" for the default overload
    schema: str  # the full schema string
    params: tuple[Param, ...]
    returns: tuple[str, ...]  # Tensor, Tensor[], ...
    mutates: bool  # in-place or out variant

    @property
    def packet(self) -> str:
        """The op name without namespace, e.g. `add` (the key of torch's symbolic registry)."""
        return self.name.split("::", 1)[1]

    @property
    def func_name(self) -> str:
        """A Python identifier for this overload, e.g. `add_Tensor`."""
        return self.packet + (f"_{self.overload}" if self.overload else "")

    @property
    def op_overload(self) -> torch._ops.OpOverload:
        return op_overload(self.qualname)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


# Overload names and OpOverloads are mapped by the runtime's one copy of that rule
# (torchonnx.overloads); a name the installed torch lacks is a spec error.
SchemaLookupError = UnknownOverload


def _param(arg: torch._C.Argument, spelled: str) -> Param:
    real = str(arg.real_type)
    optional = real.startswith("Optional[")
    inner = real[len("Optional[") : -1] if optional else real
    if inner == "Tensor":
        kind = Kind.MAYBE_TENSOR if optional else Kind.TENSOR
    elif inner in ("List[Tensor]", "List[Optional[Tensor]]"):
        kind = Kind.TENSORS
    else:
        kind = Kind.VALUE
    default = arg.default_value if arg.has_default_value() else NO_DEFAULT
    if isinstance(default, torch.dtype):
        default = dtype_name(default)
    name = arg.name + "_" if keyword.iskeyword(arg.name) else arg.name
    return Param(
        name=name,
        aten_name=arg.name,
        type=spelled,
        kind=kind,
        pytype=_PYTYPES.get(inner, "any") if kind is Kind.VALUE else "tensor",
        optional=optional,
        default=default,
        kwarg_only=arg.kwarg_only,
    )


def _spelled_types(schema: torch._C.FunctionSchema) -> dict[str, str]:
    """Argument types as the schema spells them (`int[1]?`, `ScalarType?`), by name."""
    # torch prints list defaults as `[1, 1]`; torchgen splits arguments at ", "
    text = re.sub(r"\[[^\]]*\]", lambda m: m.group(0).replace(" ", ""), str(schema))
    parsed = FunctionSchema.parse(text.split("::", 1)[1])
    return {a.name: str(a.type) for a in parsed.arguments.flat_all}


@functools.cache
def lookup(qualname: str) -> AtenSchema:
    """The schema of an overload of the installed torch; SchemaLookupError if it has none."""
    op = op_overload(qualname)
    schema = op._schema
    ns, name, overload = split(qualname)
    spelled = _spelled_types(schema)
    params = tuple(_param(a, spelled[a.name]) for a in schema.arguments if not a.is_out)
    mutates = any(a.alias_info is not None and a.alias_info.is_write for a in schema.arguments)
    return AtenSchema(
        qualname=qualname,
        name=f"{ns}::{name}",
        overload=overload,
        schema=str(schema),
        params=params,
        returns=tuple(_return_type(r) for r in schema.returns),
        mutates=mutates,
    )


def _return_type(ret: torch._C.Argument) -> str:
    real = str(ret.real_type)
    return "Tensor[]" if real == "List[Tensor]" else real
