"""Dynamic dims: the user's declarations in torch.export's form, and the user's names for them.

Users declare dynamic dims as torch.export does (`dynamic_shapes` with `Dim` objects or hints),
as torch.onnx also allows (a string in place of a Dim: a dynamic dim with that name), or as the
TorchScript exporter did (`dynamic_axes`, keyed by input name). All become `dynamic_shapes` for
torch.export; the names become the ONNX dim names of inputs, outputs and intermediate values.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import sympy
import torch
from torch.export import Dim, ExportedProgram
from torch.export.graph_signature import InputKind
from torch.utils import _pytree as pytree

from torchonnx.errors import UnsupportedArgumentError


def for_torch_export(dynamic_shapes: Any) -> Any:
    """`dynamic_shapes` with each dim given as a string replaced by Dim.DYNAMIC."""
    if isinstance(dynamic_shapes, str):
        return Dim.DYNAMIC
    if isinstance(dynamic_shapes, Mapping):
        return {k: for_torch_export(v) for k, v in dynamic_shapes.items()}
    if isinstance(dynamic_shapes, (list, tuple)):
        return type(dynamic_shapes)(for_torch_export(v) for v in dynamic_shapes)
    return dynamic_shapes


def from_dynamic_axes(
    model: torch.nn.Module,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any] | None,
    dynamic_axes: Mapping[str, Mapping[int, str] | Sequence[int]],
    input_names: Sequence[str] | None,
    output_names: Sequence[str] | None,
) -> dict[str, Any]:
    """`dynamic_axes` (keyed by input name) as `dynamic_shapes` (keyed by forward's parameters).

    An input is named by `input_names` (in the order the arguments are given), else by its
    parameter. Entries for outputs are accepted and need nothing: their dims follow the inputs'.
    A list of axes names each dim `<input>_dynamic_axes_<k>`, as the TorchScript exporter did.
    """
    bound = _bind(model, args, kwargs)
    # Graph inputs follow the arguments as given (positional, then keywords in call order).
    given = {**inspect.signature(model.forward).bind_partial(*args).arguments, **(kwargs or {})}
    names = list(input_names or [])
    by_name: dict[str, str] = {}  # input name -> parameter
    index = 0
    for param, value in given.items():
        if isinstance(value, torch.Tensor):
            by_name[names[index] if index < len(names) else param] = param
        index += len(pytree.tree_leaves(value))
    unknown = sorted(set(dynamic_axes) - set(by_name) - set(output_names or []))
    if unknown:
        raise UnsupportedArgumentError(
            f"dynamic_axes names {', '.join(map(repr, unknown))}, which is neither a tensor "
            f"argument of forward ({', '.join(map(repr, by_name)) or 'none'}) nor in "
            "output_names; nested inputs take dynamic_shapes instead"
        )
    shapes: dict[str, Any] = {param: None for param in bound}
    for key, axes in dynamic_axes.items():
        if key not in by_name:
            continue  # an output
        if isinstance(axes, Mapping):
            shapes[by_name[key]] = {int(axis): str(name) for axis, name in axes.items()}
        else:
            shapes[by_name[key]] = {
                int(axis): f"{key}_dynamic_axes_{k}" for k, axis in enumerate(axes, start=1)
            }
    return shapes


def dim_names(
    program: ExportedProgram,
    model: Any,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any] | None,
    dynamic_shapes: Any,
) -> dict[sympy.Symbol, sympy.Symbol]:
    """torch's size symbols (s0, s1, ...) mapped to symbols named as the user named the dims.

    A symbol two names claim keeps the first (torch found the two dims equal); a dim the user
    left unnamed (Dim.AUTO, Dim.DYNAMIC) keeps torch's name.
    """
    if not dynamic_shapes or not isinstance(model, torch.nn.Module):
        return {}
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    leaves = [
        placeholders[s.arg.name]
        for s in program.graph_signature.input_specs
        if s.kind == InputKind.USER_INPUT
    ]
    node_args, node_kwargs = pytree.tree_unflatten(leaves, program.call_spec.in_spec)
    bound = _bind(model, node_args, node_kwargs)
    if isinstance(dynamic_shapes, Mapping):
        pairs = [(bound[k], v) for k, v in dynamic_shapes.items() if k in bound]
    else:
        pairs = list(zip(bound.values(), dynamic_shapes, strict=False))
    names: dict[sympy.Symbol, sympy.Symbol] = {}
    for nodes, spec in pairs:
        _collect(nodes, spec, names)
    return names


def torch_names(
    model: Any, args: Sequence[Any], kwargs: Mapping[str, Any] | None, dynamic_shapes: Any
) -> dict[str, str]:
    """torch.export's names for the dims the user named with a string (`L['x'].size()[0]` for
    `batch`): its messages know them by those only."""
    if not isinstance(model, torch.nn.Module) or dynamic_shapes is None:
        return {}
    try:
        bound = _bind(model, args, kwargs)
    except TypeError:
        return {}
    if isinstance(dynamic_shapes, Mapping):
        by_param = dict(dynamic_shapes)
    else:
        by_param = dict(zip(bound, dynamic_shapes, strict=False))
    names = {}
    for param, spec in by_param.items():
        if not isinstance(bound.get(param), torch.Tensor):
            continue  # nested inputs: torch names those dims by their paths
        axes = spec.items() if isinstance(spec, Mapping) else enumerate(spec or ())
        names.update(
            {f"L['{param}'].size()[{axis}]": dim for axis, dim in axes if isinstance(dim, str)}
        )
    return names


def _bind(model: Any, args: Sequence[Any], kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """forward's parameters given a value, in forward's order (*args stays one tuple)."""
    signature = inspect.signature(model.forward)
    return dict(signature.bind(*args, **(kwargs or {})).arguments)


def _collect(nodes: Any, spec: Any, names: dict[sympy.Symbol, sympy.Symbol]) -> None:
    if spec is None:
        return
    if isinstance(nodes, torch.fx.Node):
        axes = spec.items() if isinstance(spec, Mapping) else enumerate(spec)
        val = nodes.meta.get("val")
        for axis, dim in axes:
            name = dim if isinstance(dim, str) else getattr(dim, "__name__", None)
            size = val.shape[axis] if isinstance(val, torch.Tensor) else None
            expr = getattr(getattr(size, "node", None), "expr", None)
            if name and isinstance(expr, sympy.Symbol) and expr not in names:
                names[expr] = sympy.Symbol(name, **expr.assumptions0)
    elif isinstance(nodes, Mapping) and isinstance(spec, Mapping):
        for key, sub in spec.items():
            if key in nodes:
                _collect(nodes[key], sub, names)
    elif isinstance(nodes, (list, tuple)) and isinstance(spec, (list, tuple)):
        for sub_nodes, sub in zip(nodes, spec, strict=False):
            _collect(sub_nodes, sub, names)
