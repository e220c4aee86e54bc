"""The graph builder generated lowerings write into, and the dispatch backend over it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import onnx_ir as ir
import torch
from onnxscript import GraphBuilder

from torchonnx.dispatch import Gap, Lowering
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

    def _dynamic(self, value: Any, dtype: str) -> ir.Value:
        if isinstance(value, ir.Value):
            return value if dtype == "int64" else self.op.Cast(value, to=onnx_enum(dtype))
        one = self.constant([1], "int64")
        parts = [
            self.op.Reshape(v, one) if isinstance(v, ir.Value) else self.constant([v], "int64")
            for v in value
        ]
        out = self.op.Concat(*parts, axis=0)
        return out if dtype == "int64" else self.op.Cast(out, to=onnx_enum(dtype))


class IRBackend:
    """Dispatch backend of the torch.export path: onnx_ir values, nodes via the builder."""

    def __init__(self, builder: Builder, opset: int) -> None:
        self.builder = builder
        self.opset = opset
        self.ctx = builder.op
        builder.backend = self  # for lowerings that call other lowerings (`aten.amax(...)`)
        self.used: list[tuple[str, str]] = []  # (overload, spec of the lowering) per call
        self.runtime_gaps: list[tuple[str, Gap]] = []  # declared gaps of runtimes, per call

    def lowered(self, overload: str, lowering: Lowering, runtime_gaps: tuple[Gap, ...]) -> None:
        self.used.append((overload, lowering.spec))
        self.runtime_gaps.extend((overload, gap) for gap in runtime_gaps)

    def dtype_of(self, value: Any) -> str | None:
        return (
            name_of(value.dtype)
            if isinstance(value, ir.Value) and value.dtype is not None
            else None
        )

    def rank_of(self, value: Any) -> int | None:
        return len(value.shape) if isinstance(value, ir.Value) and value.shape is not None else None

    def const(self, value: Any, dtype: str) -> ir.Value:
        return self.builder.constant(value, dtype)

    def cast(self, value: ir.Value, dtype: str) -> ir.Value:
        out = self.ctx.Cast(value, to=onnx_enum(dtype))
        out.dtype = ir_dtype(dtype)
        out.shape = value.shape
        return out
