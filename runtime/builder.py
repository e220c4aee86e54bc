"""The graph builder generated lowerings write into, and the dispatch backend over it."""

from __future__ import annotations

from typing import Any

import onnx_ir as ir
import torch
from onnxscript import BuilderFeature, GraphBuilder

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
    handling or folding.

    Lowerings are checked against the ONNX schemas by codegen, so the builder does not sort
    or cast arguments. It infers each node's output types, so that a lowering that calls
    another (`aten.amax(scores, ...)`) can read the rank and dtype of a value it computed.
    Constants are initializers shared by value.
    """

    def __init__(self, graph: ir.Graph) -> None:
        super().__init__(graph)
        self._features = BuilderFeature.INFER_SHAPES
        self._consts: dict[tuple[str, Any], ir.Value] = {}
        self.namespace = ""  # the module path of the call being lowered
        self.backend: Any = None  # the IRBackend dispatching into this builder

    def _annotate_node(self, node: ir.Node) -> None:
        if self.namespace:
            node.metadata_props["namespace"] = self.namespace

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

    def const(self, value: Any, dtype: str) -> ir.Value:
        return self.builder.constant(value, dtype)

    def cast(self, value: ir.Value, dtype: str) -> ir.Value:
        out = self.ctx.Cast(value, to=onnx_enum(dtype))
        out.dtype = ir_dtype(dtype)
        out.shape = value.shape
        return out
