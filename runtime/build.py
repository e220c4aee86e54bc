"""Building the ONNX graph from an exported program: one pass over its FX graph.

Placeholders become graph inputs or initializers (weights are wrapped, not copied); every ATen
call goes through the generated registry; values take dtype and shape from the FX metadata.
Calls that cannot be lowered are collected, and all of them are reported at once.
"""

from __future__ import annotations

import operator
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import onnx
import onnx_ir as ir
import torch
from onnx_ir.tensor_adapters import TorchTensor
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind, OutputKind

from torchonnx import catalog
from torchonnx.builder import Builder, IRBackend, mark_number
from torchonnx.dispatch import Entry, NotLowerable, bind, lower
from torchonnx.dtypes import ir_dtype, name_of
from torchonnx.errors import Unsupported, UnsupportedOperatorError
from torchonnx.generated.registry import DROPPED, OVERLOADS
from torchonnx.overloads import target_name

PRODUCER = "torchonnx"


def ir_version_for(opset: int) -> int:
    """The oldest ONNX IR version that supports `opset` (what old runtimes need)."""
    for _, ir_version, ai_onnx, *_ in onnx.helper.VERSION_TABLE:
        if ai_onnx >= opset:
            return ir_version
    return onnx.IR_VERSION


def _shape(dims: Sequence[Any], names: Mapping[Any, Any]) -> ir.Shape:
    return ir.Shape([d if isinstance(d, int) else ir.SymbolicDim(_dim(d, names)) for d in dims])


def _dim(size: Any, names: Mapping[Any, Any]) -> str:
    """A symbolic size as text, with the user's Dim names in place of torch's s0, s1, ..."""
    expr = getattr(getattr(size, "node", None), "expr", None)
    if expr is None or not names:
        return str(size)
    return str(expr.xreplace(names))


def _set_type(value: ir.Value, meta: Any, names: Mapping[Any, Any]) -> None:
    if isinstance(meta, torch.Tensor):
        value.dtype = ir_dtype(name_of(meta.dtype))
        value.shape = _shape(meta.shape, names)
    elif isinstance(meta, (torch.SymInt, int)):
        value.dtype = ir.DataType.INT64
        value.shape = ir.Shape([])
    elif isinstance(meta, (torch.SymBool, bool)):
        value.dtype = ir.DataType.BOOL
        value.shape = ir.Shape([])
    elif isinstance(meta, (torch.SymFloat, float)):
        value.dtype = ir.DataType.DOUBLE  # a Python float
        value.shape = ir.Shape([])


def new_graph(opset: int) -> tuple[ir.Graph, Builder, IRBackend]:
    """An empty main graph at `opset`, the builder lowerings write into and the backend
    dispatch uses."""
    graph = ir.Graph([], [], nodes=[], opset_imports={"": opset}, name="main_graph")
    builder = Builder(graph)
    return graph, builder, IRBackend(builder, opset)


def new_model(graph: ir.Graph, opset: int) -> ir.Model:
    return ir.Model(
        graph,
        ir_version=ir_version_for(opset),
        producer_name=PRODUCER,
        producer_version=_version(),
    )


def lower_call(
    backend: IRBackend,
    entry: Entry,
    overload: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    name: str,
    meta: Any = None,
    named: set[str],
    dim_names: Mapping[Any, Any] | None = None,
) -> Any:
    """Lower one ATen call into the backend's graph, as the exporter does for each call.

    Binds the arguments (graph values for tensors, Python values for the rest) to the
    overload's parameters, lowers them at the backend's opset, and gives each new result
    `name` (`name_0`, `name_1`, ... for several) and the dtype and shape of `meta` (FX
    metadata: a tensor, or a list of them; None keeps what the builder inferred). `named`
    holds the names given so far, and is updated. Raises NotLowerable.
    """
    out = lower(entry, overload, backend, bind(entry.overloads[overload], args, dict(kwargs)))
    return _outputs(out, name, meta, named, dim_names or {})


def _outputs(out: Any, name: str, meta: Any, named: set[str], dim_names: Mapping[Any, Any]) -> Any:
    if isinstance(out, ir.Value):
        return _adopt(out, name, meta, named, dim_names)
    if isinstance(out, (list, tuple)):
        metas = meta if isinstance(meta, (list, tuple)) else [None] * len(out)
        return [
            _adopt(v, f"{name}_{i}", m, named, dim_names)
            for i, (v, m) in enumerate(zip(out, metas, strict=False))
        ]
    return out


def _adopt(
    value: ir.Value, name: str, meta: Any, named: set[str], dim_names: Mapping[Any, Any]
) -> ir.Value:
    """Give a lowering's result the call's name and type, unless it is not new."""
    if value.producer() is None or value.name in named:
        return value  # an input, initializer or earlier result passed through
    value.name = name
    named.add(name)
    if meta is not None:
        _set_type(value, meta, dim_names)
    if isinstance(meta, (torch.SymInt, torch.SymFloat, torch.SymBool, int, float, bool)):
        mark_number(value)  # a number the graph computes: promoted as torch promotes numbers
    return value


def add_output(
    builder: Builder,
    value: ir.Value,
    meta: Any,
    name: str | None = None,
    dim_names: Mapping[Any, Any] | None = None,
) -> ir.Value:
    """Make `value` an output of the builder's graph, named `name` when given."""
    graph = builder.graph
    if value.name in graph.initializers or value in graph.inputs or value in graph.outputs:
        value = builder.op.Identity(value)  # an output must be a value of its own
        if meta is not None:
            _set_type(value, meta, dim_names or {})
    if name is not None:
        value.name = name
    graph.outputs.append(value)
    return value


_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<fn>\S+)\n\s*(?P<code>.*)')


_TORCH_DIR = str(Path(torch.__file__).resolve().parent) + os.sep


def user_source(node: torch.fx.Node) -> str | None:
    """file:line: code of the innermost frame outside torch that made this call: the model's
    own line, in a library (transformers) or in the user's script. When it is in an installed
    library, the innermost line of the user's own code follows it."""
    trace = node.meta.get("stack_trace")
    if not trace:
        return None
    frames = list(_FRAME.finditer(trace))
    if not frames:
        return None
    ours = [f for f in frames if not str(Path(f["file"]).resolve()).startswith(_TORCH_DIR)]
    inner = (ours or frames)[-1]
    text = f"{inner['file']}:{inner['line']}: {inner['code'].strip()}"
    if "site-packages" in Path(inner["file"]).parts:
        mine = [f for f in ours if "site-packages" not in Path(f["file"]).parts]
        if mine:
            text += (
                f"\n      from {mine[-1]['file']}:{mine[-1]['line']}: {mine[-1]['code'].strip()}"
            )
    return text


def module_path(node: torch.fx.Node) -> str | None:
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return None
    path, _ = list(stack.values())[-1]
    return (
        re.sub(r"^L\['self'\]\.?", "", path).replace("._modules['", ".").replace("']", "") or None
    )


class GraphBuild:
    """Turns one ExportedProgram into an onnx_ir Model at one opset."""

    def __init__(
        self,
        program: ExportedProgram,
        opset: int,
        input_names: Sequence[str] | None = None,
        output_names: Sequence[str] | None = None,
        dim_names: Mapping[Any, Any] | None = None,
    ) -> None:
        self.program = program
        self.opset = opset
        self.input_names = list(input_names or [])
        self.output_names = list(output_names or [])
        self.graph, self.builder, self.backend = new_graph(opset)
        self.values: dict[torch.fx.Node, Any] = {}
        self.problems: list[Unsupported] = []
        self._named: set[str] = set()  # names given to values so far
        self.dim_names = dict(dim_names or {})  # torch's size symbols -> the user's names

    # -- inputs ---------------------------------------------------------------------------
    def inputs(self) -> None:
        sig = self.program.graph_signature
        placeholders = {n.name: n for n in self.program.graph.nodes if n.op == "placeholder"}
        user_index = 0
        for spec in sig.input_specs:
            node = placeholders[spec.arg.name]
            if spec.kind == InputKind.USER_INPUT:
                meta = node.meta.get("val")
                name = (
                    self.input_names[user_index]
                    if user_index < len(self.input_names)
                    else node.name
                )
                user_index += 1
                if meta is None:  # a None input, or a constant torch.export dropped
                    self.values[node] = None
                    continue
                value = ir.Value(name=name)
                _set_type(value, meta, self.dim_names)
                self.graph.inputs.append(value)
                self.values[node] = value
            elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR):
                tensor = self._state(spec.target)
                self.values[node] = self.builder.initializer(
                    TorchTensor(tensor.detach(), name=spec.target), spec.target, qualify=False
                )
            else:
                raise NotImplementedError(f"inputs of kind {spec.kind.name} are not supported yet")
        if user_index < len(self.input_names):
            raise ValueError(
                f"input_names has {len(self.input_names)} names but the model takes {user_index} inputs"
            )

    def _state(self, target: str) -> torch.Tensor:
        if target in self.program.state_dict:
            return self.program.state_dict[target]
        return self.program.constants[target]

    # -- calls ----------------------------------------------------------------------------
    def _arg(self, arg: Any) -> Any:
        if isinstance(arg, torch.fx.Node):
            return self.values[arg]
        if isinstance(arg, (list, tuple)):
            return [self._arg(a) for a in arg]
        return arg

    def call(self, node: torch.fx.Node) -> None:
        target = node.target
        if target is operator.getitem:
            source, index = node.args
            self.values[node] = self.values[source][index]  # type: ignore[index]
            return
        meta = node.meta.get("val")
        name = target_name(target)
        if name in DROPPED:
            self.values[node] = None  # a check torch.export adds; it computes nothing
            return
        entry = OVERLOADS.get(name)
        if entry is None:
            self._unsupported(node, name, "no spec covers this operator")
            return
        args = [self._arg(a) for a in node.args]
        kwargs = {k: self._arg(v) for k, v in node.kwargs.items()}
        if any(v is _MISSING for v in _leaves((args, kwargs))):
            self._placeholder(node)  # an input comes from a call that failed: already reported
            return
        self.builder.namespace = module_path(node) or ""
        try:
            self.values[node] = lower_call(
                self.backend,
                entry,
                name,
                args,
                kwargs,
                name=node.name,
                meta=meta,
                named=self._named,
                dim_names=self.dim_names,
            )
        except NotLowerable as err:
            spec = err.spec or catalog.spec_location(entry.key)
            self._unsupported(node, name, err.reason, spec=spec, opsets=err.opsets)

    def _unsupported(
        self,
        node: torch.fx.Node,
        op: str,
        reason: str,
        *,
        spec: str | None = None,
        opsets: Sequence[int] = (),
    ) -> None:
        dtypes = tuple(
            name_of(a.meta["val"].dtype)
            for a in node.all_input_nodes
            if isinstance(a.meta.get("val"), torch.Tensor)
        )
        self.problems.append(
            Unsupported(
                op, reason, dtypes, user_source(node), module_path(node), spec, tuple(opsets)
            )
        )
        self._placeholder(node)

    def _placeholder(self, node: torch.fx.Node) -> None:
        meta = node.meta.get("val")
        self.values[node] = [_MISSING] * len(meta) if isinstance(meta, (list, tuple)) else _MISSING

    # -- outputs --------------------------------------------------------------------------
    def outputs(self, node: torch.fx.Node) -> None:
        sig = self.program.graph_signature
        user = [
            arg
            for arg, spec in zip(node.args[0], sig.output_specs, strict=True)
            if spec.kind == OutputKind.USER_OUTPUT
        ]
        for i, arg in enumerate(user):
            value = self.values[arg] if isinstance(arg, torch.fx.Node) else None
            if not isinstance(value, ir.Value):
                raise NotImplementedError(f"output {i} is {type(value).__name__}, not a tensor")
            name = self.output_names[i] if i < len(self.output_names) else None
            add_output(self.builder, value, arg.meta.get("val"), name, self.dim_names)

    def run(self) -> ir.Model:
        self.inputs()
        self._named.update(v.name for v in self.graph.inputs)
        self._named.update(self.graph.initializers)
        for node in self.program.graph.nodes:
            if node.op == "call_function":
                self.call(node)
            elif node.op == "output" and not self.problems:
                self.outputs(node)
        if self.problems:
            raise UnsupportedOperatorError(self.problems, self.opset)
        return new_model(self.graph, self.opset)


class _Missing:
    """The value of a call that could not be lowered."""


_MISSING = _Missing()


def _leaves(tree: Any) -> list[Any]:
    if isinstance(tree, (list, tuple)):
        return [leaf for item in tree for leaf in _leaves(item)]
    if isinstance(tree, dict):
        return _leaves(list(tree.values()))
    return [tree]


def _version() -> str:
    from torchonnx import __version__

    return __version__
