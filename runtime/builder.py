"""The graph builder generated lowerings write into, and the dispatch backend over it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import onnx_ir as ir
import torch
from onnxscript import GraphBuilder

from torchonnx.dispatch import Entry, Gap, Lowering
from torchonnx.dtypes import ir_dtype, name_of, onnx_enum


def _freeze(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, float) and value != value:  # NaN is never equal to itself
        return ("nan",)
    return (type(value).__name__, value)


def _has_values(value: Any) -> bool:
    if isinstance(value, ir.Value):
        return True
    return isinstance(value, (list, tuple)) and any(_has_values(v) for v in value)


class Builder(GraphBuilder):
    """onnxscript's GraphBuilder, with shape inference per node but no schema-driven argument
    handling.

    Lowerings are checked against the ONNX schemas by codegen, so the builder does not sort
    or cast arguments. It infers each node's output types, so that a lowering that calls
    another (`aten.amax(scores, ...)`) can read the rank and dtype of a value it computed.
    Constants are initializers shared by value.
    """

    def __init__(self, graph: ir.Graph) -> None:
        super().__init__(graph)
        self._consts: dict[tuple[str, Any], ir.Value] = {}
        self._dims: dict[tuple[ir.Value, int], ir.Value] = {}
        self.namespace = ""  # the module path of the call being lowered
        self.backend: Any = None  # the IRBackend dispatching into this builder

    def call_op(
        self,
        op_type: str,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        /,
        domain: str = "",
        version: int | None = None,
        outputs: int | Sequence[str | ir.Value] = 1,
        name: str | None = None,
    ) -> ir.Value | Sequence[ir.Value]:
        """One node, its output types inferred (GraphBuilder.add_node). GraphBuilder's own
        call_op also partitions and casts the arguments by schema, which GraphBuilder's
        constructor cannot turn off (onnxscript 0.7.2 takes no `features` there) and which
        about doubles the build time."""
        inputs = list(args)
        while inputs and inputs[-1] is None:
            # An omitted optional input at the end is left out, not written as an empty name:
            # onnxscript's rewrite rules read `len(node.inputs)` as the inputs given.
            inputs.pop()
        count = self.graph.num_nodes()
        if isinstance(outputs, int):  # named as GraphBuilder names them
            outputs = [
                f"v_{op_type}_{count}" + (f"_{i}" if outputs > 1 else "") for i in range(outputs)
            ]
        values = [out if isinstance(out, ir.Value) else ir.Value(name=out) for out in outputs]
        node = ir.node(
            op_type,
            inputs,
            kwargs,
            domain=domain,
            version=version,
            outputs=values,
            name=name or f"{op_type}_node_{count}",
            metadata_props={"namespace": self.namespace} if self.namespace else None,
        )
        self.add_node(node)
        return node.outputs[0] if len(node.outputs) == 1 else node.outputs

    def constant(self, value: Any, dtype: str | torch.dtype | ir.DataType) -> ir.Value:
        """An initializer holding `value` in `dtype`; lists may hold graph values (sym ints)."""
        name = name_of(dtype)
        if _has_values(value):
            return self._dynamic(value, name)
        key = (name, _freeze(value))
        hit = self._consts.get(key)
        if hit is not None:
            return hit
        tensor = ir.tensor(value, dtype=ir_dtype(name), name=f"const_{len(self._consts)}_{name}")
        out = self.initializer(tensor, qualify=False)
        self._consts[key] = out
        return out

    def dim(self, value: ir.Value, axis: int) -> ir.Value:
        """Dimension `axis` of `value` as a 0-d int64 graph value (one node per dim)."""
        key = (value, axis)
        if key not in self._dims:
            out = self.op.Gather(self.op.Shape(value), self.constant(axis, "int64"), axis=0)
            out.dtype, out.shape = ir.DataType.INT64, ir.Shape([])
            mark_number(out)
            self._dims[key] = out
        return self._dims[key]

    def _dynamic(self, value: Any, dtype: str) -> ir.Value:
        """A tensor of `dtype` from a graph value, or a 1-D one from a list mixing numbers and
        0-d graph values (consecutive numbers make one constant)."""
        if isinstance(value, ir.Value):
            return self._cast(value, dtype)
        one = self.constant([1], "int64")
        parts: list[ir.Value] = []
        run: list[Any] = []
        for v in [*value, None]:
            if v is not None and not isinstance(v, ir.Value):
                run.append(v)
                continue
            if run:
                parts.append(self.constant(run, dtype))
                run = []
            if v is not None:
                parts.append(self._cast(self.op.Reshape(v, one), dtype))
        return parts[0] if len(parts) == 1 else self.op.Concat(*parts, axis=0)

    def _cast(self, value: ir.Value, dtype: str) -> ir.Value:
        if value.dtype is not None and name_of(value.dtype) == dtype:
            return value
        return self.op.Cast(value, to=onnx_enum(dtype))


_NUMBER = "torchonnx.number"


def mark_number(value: ir.Value) -> ir.Value:
    """Mark a 0-d value as standing for a Python number (a SymInt, or `item()` of a tensor):
    type promotion treats it as torch treats numbers."""
    value.meta[_NUMBER] = True
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, ir.Value) and bool(value.meta.get(_NUMBER))


class IRBackend:
    """Dispatch backend of the torch.export path: onnx_ir values, nodes via the builder."""

    def __init__(self, builder: Builder, opset: int) -> None:
        self.builder = builder
        self.opset = opset
        self.ctx = builder.op
        builder.backend = self  # for lowerings that call other lowerings (`aten.amax(...)`)
        # per call: (overload, its entry, the index of the lowering that ran)
        self.used: list[tuple[str, str, int]] = []
        # per call and declared gap of a runtime it falls in: (overload, entry, gap index)
        self.gaps_met: list[tuple[str, str, int]] = []

    def lowered(
        self, entry: Entry, overload: str, lowering: Lowering, runtime_gaps: tuple[Gap, ...]
    ) -> None:
        self.used.append((overload, entry.key, lowering.index))
        self.gaps_met.extend((overload, entry.key, gap.index) for gap in runtime_gaps)

    def dtype_of(self, value: Any) -> str | None:
        return (
            name_of(value.dtype)
            if isinstance(value, ir.Value) and value.dtype is not None
            else None
        )

    def rank_of(self, value: Any) -> int | None:
        return len(value.shape) if isinstance(value, ir.Value) and value.shape is not None else None

    def is_number(self, value: Any) -> bool:
        return is_number(value)

    def const(self, value: Any, dtype: str) -> ir.Value:
        return self.builder.constant(value, dtype)

    def cast(self, value: ir.Value, dtype: str) -> ir.Value:
        out = self.ctx.Cast(value, to=onnx_enum(dtype))
        out.dtype = ir_dtype(dtype)
        out.shape = value.shape
        return out
