"""ONNX operator schemas of the installed onnx, per opset, as codegen checks them."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import onnx
import onnx.defs

_Option = onnx.defs.OpSchema.FormalParameterOption
_AttrType = onnx.defs.OpSchema.AttrType


@dataclass(frozen=True)
class Formal:
    """An input or output of an ONNX op."""

    name: str
    type_str: str  # a type variable (`T`) or a fixed type (`tensor(int64)`)
    optional: bool
    variadic: bool
    homogeneous: bool


@dataclass(frozen=True)
class OpSpec:
    """An ONNX op as one opset sees it."""

    name: str
    since: int
    inputs: tuple[Formal, ...]
    outputs: tuple[Formal, ...]
    min_inputs: int
    max_inputs: int
    min_outputs: int
    max_outputs: int
    attributes: dict[str, tuple[str, bool]]  # name -> (attribute type name, required)
    types: dict[str, frozenset[str]]  # type variable -> allowed type strings
    deprecated: bool

    def formal_input(self, position: int) -> Formal | None:
        if position < len(self.inputs):
            return self.inputs[position]
        if self.inputs and self.inputs[-1].variadic:
            return self.inputs[-1]
        return None

    def formal_output(self, position: int) -> Formal | None:
        if position < len(self.outputs):
            return self.outputs[position]
        if self.outputs and self.outputs[-1].variadic:
            return self.outputs[-1]
        return None

    def input_position(self, name: str) -> int | None:
        """The position of the input called `name`, or None."""
        return next((i for i, f in enumerate(self.inputs) if f.name == name), None)

    def allowed(self, type_str: str) -> frozenset[str]:
        """The type strings a formal of this type accepts."""
        return self.types.get(type_str, frozenset({type_str}))


def _formal(p: onnx.defs.OpSchema.FormalParameter) -> Formal:
    return Formal(
        name=p.name,
        type_str=p.type_str,
        optional=p.option == _Option.Optional,
        variadic=p.option == _Option.Variadic,
        homogeneous=p.is_homogeneous,
    )


@functools.cache
def op_at(name: str, opset: int) -> OpSpec | None:
    """The op `name` of the default domain as opset `opset` defines it, or None."""
    try:
        schema = onnx.defs.get_schema(name, opset, "")
    except onnx.defs.SchemaError:
        return None
    return OpSpec(
        name=name,
        since=schema.since_version,
        inputs=tuple(_formal(p) for p in schema.inputs),
        outputs=tuple(_formal(p) for p in schema.outputs),
        min_inputs=schema.min_input,
        max_inputs=schema.max_input,
        min_outputs=schema.min_output,
        max_outputs=schema.max_output,
        attributes={a.name: (a.type.name, a.required) for a in schema.attributes.values()},
        types={t.type_param_str: frozenset(t.allowed_type_strs) for t in schema.type_constraints},
        deprecated=schema.deprecated,
    )


def newest_opset() -> int:
    return onnx.defs.onnx_opset_version()


# Which Python value types an attribute of each ONNX attribute type takes.
ATTRIBUTE_PYTYPES: dict[str, frozenset[str]] = {
    "INT": frozenset({"int", "bool", "dtype"}),
    "FLOAT": frozenset({"float", "int", "number"}),
    "STRING": frozenset({"str", "dtype"}),
    "INTS": frozenset({"int[]", "bool[]"}),
    "FLOATS": frozenset({"float[]", "int[]"}),
    "STRINGS": frozenset({"str[]"}),
    "TENSOR": frozenset(),
    "GRAPH": frozenset(),
}

# The suffix torch's `g.op` wants on an attribute keyword of each type.
SYMBOLIC_SUFFIX: dict[str, str] = {
    "INT": "i",
    "FLOAT": "f",
    "STRING": "s",
    "INTS": "i",
    "FLOATS": "f",
    "STRINGS": "s",
    "TENSOR": "t",
    "GRAPH": "g",
}

# Attributes that became inputs of another name: (op, attribute) -> input. A body writes the
# attribute's name at every opset (`Pad(x, pads=p, value=v)`, `TopK(x, k=k)`).
INPUT_RENAMES: dict[tuple[str, str], str] = {
    ("Pad", "value"): "constant_value",
    ("TopK", "k"): "K",
}
