"""Helpers of the generated symbolic functions (`_h.*`), for TorchScript graphs.

Symbolic functions receive a graph context `g` (torch's GraphContext, or ours) and
TorchScript values. `dispatch` is what the per-op-name functions call: it finds the overload,
turns constant inputs into Python values, and runs the shared dispatch with a TorchScript
backend, which calls the generated `g.op` lowering of the chosen opset.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from torchonnx.dispatch import (
    REQUIRED,
    VALUE,
    Entry,
    Lowering,
    NotLowerable,
    Overload,
    bind,
    lower,
)
from torchonnx.dtypes import name_of, onnx_enum, torch_dtype
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
    "aten",
    "attrs",
    "bits",
    "const",
    "dispatch",
    "dtype_of",
    "factory_dtype",
    "is_floating",
    "is_static",
    "onnx_dtype",
    "optional",
    "rank",
    "size",
    "sizes",
    "static",
    "static_size",
    "static_sizes",
    "typed",
]


def const(g: Any, value: Any, dtype: str | torch.dtype) -> torch._C.Value | None:
    """A constant of `dtype` holding `value`; a graph value is cast to `dtype`, a list mixing
    numbers and 0-d graph values (SymInts) becomes a 1-D tensor; None stays None."""
    name = name_of(dtype)
    if value is None:
        return None
    if isinstance(value, torch._C.Value):
        return _cast_to(g, value, name)
    if isinstance(value, (list, tuple)) and not is_static(value):
        one = g.op("Constant", value_t=torch.tensor([1], dtype=torch.int64))
        parts = [
            (
                _cast_to(g, g.op("Reshape", v, one), name)
                if isinstance(v, torch._C.Value)
                else const(g, [v], name)
            )
            for v in value
        ]
        return g.op("Concat", *parts, axis_i=0)
    return g.op("Constant", value_t=torch.tensor(value, dtype=torch_dtype(name)))


def _cast_to(g: Any, value: Any, dtype: str) -> Any:
    kind = value.type()
    if kind.kind() == "TensorType" and kind.dtype() is not None and name_of(kind.dtype()) == dtype:
        return value
    return g.op("Cast", value, to_i=onnx_enum(dtype))


def sizes(g: Any, value: Any) -> list[Any]:
    """The sizes of a tensor: ints where static, 0-d int64 values where dynamic."""
    shape = value.type().varyingSizes()
    if shape is None:
        raise NotLowerable(f"the shape of {value.debugName()} is not known")
    return [d if d is not None else size(g, value, i) for i, d in enumerate(shape)]


def size(g: Any, value: Any, dim: int) -> Any:
    shape = value.type().varyingSizes()
    if shape is None:
        raise NotLowerable(f"the shape of {value.debugName()} is not known")
    if shape[dim] is not None:
        return shape[dim]
    index = g.op("Constant", value_t=torch.tensor(dim % len(shape), dtype=torch.int64))
    return g.op("Gather", g.op("Shape", value), index, axis_i=0)


def onnx_dtype(dtype: str | torch.dtype) -> int:
    return onnx_enum(dtype)


def as_list(outputs: Any) -> list[Any]:
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def attrs(**values: Any) -> Mapping[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def optional(g: Any, value: Any) -> torch._C.Value:
    """`value`, or the empty input ONNX uses for an omitted optional input."""
    if value is not None:
        return value
    empty = g.op("prim::Constant")
    empty.setType(torch._C.OptionalType.ofTensor())
    return empty


class TorchScriptBackend:
    """Dispatch backend of TorchScript graphs."""

    def __init__(self, g: Any) -> None:
        self.g = g
        self.opset = g.opset
        self.ctx = g

    def dtype_of(self, value: Any) -> str | None:
        try:
            dtype = value.type().dtype()
        except (AttributeError, RuntimeError):
            return None
        return name_of(dtype) if dtype is not None else None

    def rank_of(self, value: Any) -> int | None:
        try:
            return value.type().dim()
        except (AttributeError, RuntimeError):
            return None

    def is_number(self, value: Any) -> bool:
        # TorchScript graphs carry numbers as ints/floats, or as 0-d tensors of aten::size
        return isinstance(value, torch._C.Value) and value.type().kind() in (
            "IntType",
            "FloatType",
            "BoolType",
        )

    def cast(self, value: Any, dtype: str) -> Any:
        out = self.g.op("Cast", value, to_i=onnx_enum(dtype))
        if value.type().kind() == "TensorType":
            out.setType(value.type().with_dtype(torch_dtype(dtype)))
        return out

    def const(self, value: Any, dtype: str) -> Any:
        return const(self.g, value, dtype)

    def lowered(
        self, entry: Entry, overload: str, lowering: Lowering, runtime_gaps: tuple[Any, ...]
    ) -> None:
        pass


def python_value(value: Any, name: str, dynamic: bool = False) -> Any:
    """The Python value of a constant TorchScript input; where `dynamic` (a SymInt or Scalar
    argument), a computed one stays a graph value (inside a list too)."""
    if not isinstance(value, torch._C.Value):
        return value
    node = value.node()
    kind = node.kind()
    if kind == "prim::Constant":
        if value.type().kind() == "NoneType":
            return None
        out = value.toIValue()
        return out.item() if isinstance(out, torch.Tensor) and out.dim() == 0 else out
    if kind == "onnx::Constant":
        tensor = node.t("value")
        return tensor.item() if tensor.dim() == 0 else tensor.tolist()
    if kind == "prim::ListConstruct":
        return [python_value(v, name, dynamic) for v in node.inputs()]
    if dynamic:
        return value
    raise NotLowerable(
        f"argument {name} must be known while exporting, but it is computed ({kind})"
    )


def _tensor_list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    node = value.node()
    if node.kind() != "prim::ListConstruct":
        raise NotLowerable(f"a list of tensors made by {node.kind()} cannot be unpacked")
    return list(node.inputs())


@functools.cache
def _packets() -> dict[str, list[tuple[Overload, Entry]]]:
    from torchonnx.generated.registry import OVERLOADS

    out: dict[str, list[tuple[Overload, Entry]]] = {}
    for name, entry in OVERLOADS.items():
        out.setdefault(name.split(".", 1)[0], []).append((entry.overloads[name], entry))
    return out


@functools.cache
def _symbolic(opset: int, name: str) -> Callable[..., Any]:
    return getattr(importlib.import_module(f"torchonnx.generated.symbolic_opset{opset}"), name)


def _pick(packet: str, g: Any, args: Sequence[Any]) -> tuple[Overload, Entry]:
    """The overload of this call: by the node's schema, else by what its arguments are."""
    candidates = _packets().get(packet, [])
    node = getattr(g, "original_node", None)
    schema = node.schema() if node is not None and hasattr(node, "schema") else ""
    qualname = schema.split("(", 1)[0] if schema and schema != "(no schema)" else ""
    for overload, entry in candidates:
        if overload.name == qualname:
            return overload, entry
    # traced graphs carry no schema: the best fit wins, numbers given as tensors fit Scalars
    scored = [(_fit(overload, args), i) for i, (overload, _) in enumerate(candidates)]
    best = max((s for s in scored if s[0] is not None), default=None)
    if best is None:
        raise NotLowerable(f"no spec covers {qualname or packet} with these arguments")
    return candidates[best[1]]


def _fit(overload: Overload, args: Sequence[Any]) -> int | None:
    """How well the arguments fit the overload (None: they do not): one point per argument
    whose kind matches exactly."""
    # TorchScript nodes take every argument positionally, keyword-only ones included
    required = [p for p in overload.params if p.default is REQUIRED]
    if not len(required) <= len(args) <= len(overload.params):
        return None
    score = 0
    for p, a in zip(overload.params, args, strict=False):
        is_tensor = isinstance(a, torch._C.Value) and a.type().kind() == "TensorType"
        if p.kind == VALUE:
            if not _is_constant(a):
                return None
            score += not is_tensor
        elif p.kind == "tensor[]":
            if not (isinstance(a, torch._C.Value) and a.type().kind() == "ListType"):
                return None
            score += 1
        else:
            is_none = isinstance(a, torch._C.Value) and a.type().kind() == "NoneType"
            if not (is_tensor or (is_none and p.kind == "tensor?")):
                return None
            score += 1
    return score


def _is_constant(value: Any) -> bool:
    return not isinstance(value, torch._C.Value) or value.node().kind() in (
        "prim::Constant",
        "onnx::Constant",
        "prim::ListConstruct",
    )


def dispatch(g: Any, packet: str, opset: int, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """Lower one TorchScript call of `packet` with the lowerings that begin by `opset`."""
    overload, entry = _pick(packet, g, args)
    # TorchScript nodes pass every argument positionally (out variants `out` last)
    named = dict(zip((p.aten_name or p.name for p in overload.params), args, strict=False))
    bound = bind(overload, (), {**named, **kwargs})
    for p in overload.params:
        value = bound[p.name]
        if p.kind == VALUE:
            bound[p.name] = python_value(value, p.name, p.dynamic)
        elif p.kind == "tensor[]":
            bound[p.name] = _tensor_list(value)
        elif isinstance(value, torch._C.Value) and value.type().kind() == "NoneType":
            bound[p.name] = None
    return lower(entry, overload.name, TorchScriptBackend(g), bound, pick=_symbolic_fn, cap=opset)


def _symbolic_fn(lowering: Lowering, variant: int) -> Callable[..., Any]:
    """The symbolic function of a lowering: in the module of the opset it begins at, under
    the name of its onnxscript function."""
    return _symbolic(lowering.since, lowering.fns[variant].__name__)


def typed(value: Any, dtype: str | torch.dtype) -> Any:
    """`value`, with the dtype codegen knows it has (for type promotion in `aten`)."""
    kind = value.type()
    base = kind if kind.kind() == "TensorType" else torch._C.TensorType.get()
    if kind.kind() != "TensorType" or kind.dtype() is None:
        value.setType(base.with_dtype(torch_dtype(name_of(dtype))))
    return value


def aten(g: Any, overload: str, *args: Any, **kwargs: Any) -> Any:
    """Lower a call of another spec's ATen overload at the target opset (`aten.amax(...)`)."""
    from torchonnx.generated.registry import OVERLOADS

    entry = OVERLOADS[overload]
    bound = bind(entry.overloads[overload], args, kwargs)
    return lower(entry, overload, TorchScriptBackend(g), bound, pick=_symbolic_fn)
