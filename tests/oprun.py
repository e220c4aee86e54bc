"""Running one op sample through torchonnx, onnxruntime (or onnx's reference) and eager."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnx.reference
import onnxruntime as ort
import torch

from torchonnx import catalog
from torchonnx.build import GraphBuild
from torchonnx.capture import decomposition_table
from torchonnx.catalog import Sample
from torchonnx.dispatch import Entry
from torchonnx.errors import UnsupportedOperatorError
from torchonnx.optimize import finalize
from torchonnx.overloads import op_overload
from torchonnx.program import ONNXProgram, _from_numpy, _to_numpy
from torchonnx.testing import sample_args
from torchonnx.verify import compare


class OpModule(torch.nn.Module):
    """A module whose forward is one call of an ATen overload."""

    def __init__(
        self,
        op: torch._ops.OpOverload,
        positions: list[int | None],
        kwargs: dict[str, Any],
        constants: list[Any],
    ) -> None:
        super().__init__()
        self.op = op
        self.positions = positions  # per positional argument: index into forward's tensors
        self.kwargs = kwargs
        self.constants = constants

    def forward(self, *tensors: torch.Tensor) -> Any:
        args = [
            (
                self.constants[i]
                if p is None
                else (tensors[p] if not isinstance(p, list) else [tensors[j] for j in p])
            )
            for i, p in enumerate(self.positions)
        ]
        return self.op(*args, **self.kwargs)


def build_call(overload: str, text: str, dtype: str) -> tuple[OpModule, tuple[torch.Tensor, ...]]:
    """The module and inputs that make one call of `overload` with a sample's arguments."""
    args, kwargs = sample_args(text, dtype)
    tensors: list[torch.Tensor] = []
    positions: list[Any] = []
    for a in args:
        if isinstance(a, torch.Tensor):
            positions.append(len(tensors))
            tensors.append(a)
        elif isinstance(a, list) and a and all(isinstance(t, torch.Tensor) for t in a):
            positions.append(list(range(len(tensors), len(tensors) + len(a))))
            tensors.extend(a)
        else:
            positions.append(None)
    constants = [
        (
            None
            if isinstance(a, torch.Tensor)
            or (isinstance(a, list) and a and isinstance(a[0], torch.Tensor))
            else a
        )
        for a in args
    ]
    return OpModule(op_overload(overload), positions, kwargs, constants), tuple(tensors)


@dataclass
class Outcome:
    """What happened to one sample at one opset."""

    sample: Sample
    lowerings: list[tuple[str, str]] = field(default_factory=list)
    unsupported: str | None = None
    runner: str = "onnxruntime"


def _calls(program: torch.export.ExportedProgram, overload: str) -> bool:
    target = op_overload(overload)
    return any(node.target is target for node in program.graph.nodes)


@functools.cache
def _capture(
    overload: str, text: str, dtype: str
) -> tuple[OpModule, tuple[torch.Tensor, ...], Any]:
    """The sample's module, inputs and exported program, decomposed as export does it."""
    module, inputs = build_call(overload, text, dtype)
    raw = torch.export.export(module, inputs, strict=False)
    program = raw.run_decompositions(decomposition_table())
    if not _calls(program, overload) and _calls(raw, overload):
        # torch decomposes this overload whatever the table says (an aliasing composite op);
        # paths that meet it whole (TorchScript graphs) still need its lowering: test it whole.
        program = raw
    return module, inputs, program


def export_program(program: torch.export.ExportedProgram, opset: int) -> ONNXProgram:
    """What torchonnx.export does after capture, without optimizing."""
    build = GraphBuild(program, opset)
    model = build.run()
    finalize(model)
    result = ONNXProgram(model, program)
    result.used = build.backend.used
    result.gaps_met = build.backend.gaps_met
    return result


def runtime_limited(dtype: str, opset: int) -> str | None:
    limit = catalog.runtime_limit("onnxruntime", dtype, opset)
    return limit.reason if limit is not None else None


def run_reference(model: onnx.ModelProto, inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    session = onnx.reference.ReferenceEvaluator(model)
    names = [
        i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}
    ]
    outputs = session.run(None, {n: _to_numpy(t) for n, t in zip(names, inputs, strict=True)})
    dtypes = [o.type.tensor_type.elem_type for o in model.graph.output]
    import onnx_ir as ir

    return [
        _from_numpy(np.asarray(o), ir.DataType(d)) for o, d in zip(outputs, dtypes, strict=True)
    ]


def run_sample(entry: Entry, sample: Sample, opset: int, dtype: str) -> Outcome:
    """Export one sample at `opset`, check it, run it, compare with eager."""
    overload = sample.overload or entry.key
    module, inputs, program = _capture(overload, sample.args, dtype)
    outcome = Outcome(sample)
    try:
        onnx_program = export_program(program, opset)
    except UnsupportedOperatorError as err:
        outcome.unsupported = "\n".join(p.reason for p in err.problems)
        return outcome
    outcome.lowerings = onnx_program.lowerings
    proto = onnx_program.model_proto
    onnx.checker.check_model(proto, full_check=True)
    with torch.no_grad():
        expected = module(*inputs)
    expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)
    declared = next(
        (g.spec for _, g in onnx_program.runtime_gaps if g.runtime == "onnxruntime"), None
    )
    try:
        actual = onnx_program(*inputs)
    except ort.capi.onnxruntime_pybind11_state.NotImplemented:
        if declared is None and runtime_limited(dtype, opset) is None:
            raise
        outcome.runner = "onnx.reference"
        actual = run_reference(proto, inputs)
    else:
        assert declared is None, (
            f"{overload} in {dtype} at opset {opset} runs on onnxruntime, but a gap says it does "
            f"not ({declared}); remove the gap"
        )
    for check in compare(expected, actual):
        assert check.ok, (
            f"{overload}({sample.args}) at opset {opset} in {dtype}: output {check.index} differs "
            f"from eager by {check.max_abs_diff:.3g} ({outcome.runner}); spec {sample.spec}"
        )
    return outcome
