"""Running one op sample through a lowering, onnxruntime (or onnx's reference) and eager.

No capture: the sample's tensors become typed graph inputs (with symbolic dims for dynamic
runs), and the call goes through `torchonnx.build.lower_call`, the function the exporter calls
for every ATen call. The model is then finalized, checked, run and compared with the overload
called eagerly on the same arguments. What the specs declare (the lowering a call takes, its
refusals, runtime gaps, shape and index rules) is worked out here from the entry's data and
checked against what happened.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnx.reference
import onnx_ir as ir
import onnxruntime as ort
import onnxruntime.capi.onnxruntime_pybind11_state as ort_errors
import sympy
import torch

from torchonnx import catalog, shapes
from torchonnx import indices as index_rules
from torchonnx.build import add_output, lower_call, new_graph, new_model
from torchonnx.builder import IRBackend, mark_number
from torchonnx.catalog import Sample
from torchonnx.dispatch import Entry, Gap, Lowering, NotLowerable, bind, compute_dtype_for
from torchonnx.dtypes import ir_dtype, name_of, named_value
from torchonnx.optimize import finalize
from torchonnx.overloads import op_overload
from torchonnx.program import _from_numpy, _from_ort, _ort_value, _to_numpy
from torchonnx.testing import SymNumber, eager, sample_args
from torchonnx.verify import compare

# onnxruntime's errors for a model it cannot load or run (no kernel, a failing kernel); a
# declared runtime gap may stand for any of them.
ORT_ERRORS = (
    ort_errors.Fail,
    ort_errors.InvalidGraph,
    ort_errors.InvalidArgument,
    ort_errors.NotImplemented,
    ort_errors.RuntimeException,
    ort_errors.EPFail,
)


# -- the specs' data ------------------------------------------------------------------------
# Everything this module and test_ops.py read of the generated registry (what dispatch reads)
# and catalog (what people read: samples, spec locations, reasons, rules) is read here.


@functools.cache
def entries() -> dict[str, Entry]:
    from torchonnx.generated.registry import ENTRIES

    return ENTRIES


def samples_of(entry: Entry) -> tuple[Sample, ...]:
    return catalog.samples(entry.key)


def spec_of(entry: Entry, item: Lowering | Gap | Sample | None = None) -> str:
    """Where the specs write an entry, or a lowering, gap or sample of it: file:line."""
    if isinstance(item, Sample):
        return item.spec
    if isinstance(item, Lowering):
        return catalog.spec_location(entry.key, lowering=item.index)
    if isinstance(item, Gap):
        return catalog.spec_location(entry.key, gap=item.index)
    return catalog.spec_location(entry.key)


def gap_reason(entry: Entry, gap: Gap) -> str:
    return catalog.gap(entry.key, gap.index).reason


def plan_reason(entry: Entry, why: int | None) -> str | None:
    """The reason a dtype-plan segment gives (an index into the entry's reasons)."""
    return None if why is None else catalog.entry(entry.key).reasons[why]


def when_text(entry: Entry, lowering: Lowering) -> str | None:
    return catalog.lowering(entry.key, lowering.index).when


def dtype_gaps(entry: Entry) -> list[catalog.GapInfo]:
    """The entry's gaps by dtype and opset alone (codegen puts them in the dtype plans)."""
    return [g for g in catalog.entry(entry.key).gaps if g.when is None and g.runtime is None]


@functools.cache
def _entry_of_overload() -> dict[str, str]:
    return {name: e.key for e in entries().values() for name in e.overloads}


def called_entries(entry: Entry, lowering: Lowering) -> set[str]:
    """The keys of the entries a lowering's body calls (`aten.X(...)`), and theirs, and so on."""
    found: set[str] = set()
    todo = list(catalog.lowering(entry.key, lowering.index).calls)
    while todo:
        key = _entry_of_overload()[todo.pop()]
        if key not in found:
            found.add(key)
            todo.extend(c for lw in catalog.entry(key).lowerings for c in lw.calls)
    return found


def callee_refusal(entry: Entry, lowering: Lowering, reason: str | None, opset: int) -> bool:
    """Whether `reason` is what a limit, or a gap at `opset` of an entry the lowering calls,
    declares: codegen plans a callee's dtype refusals into its callers' plans, and a callee's
    conditional gap refuses while the caller's body runs."""
    if any(reason == r and lo <= opset <= hi for _, (lo, hi), r in limits()):
        return True
    return any(
        gap.reason == reason and (gap.opsets is None or gap.opsets[0] <= opset <= gap.opsets[1])
        for key in called_entries(entry, lowering)
        for gap in catalog.entry(key).gaps
    )


def shape_rule(entry: Entry) -> str:
    return catalog.entry(entry.key).shape


def index_rule(entry: Entry) -> str | None:
    return catalog.entry(entry.key).indices


@functools.cache
def limits() -> tuple[tuple[tuple[str, ...], tuple[int, int], str], ...]:
    """Dtypes no graph can hold at some opsets: (dtypes, (oldest, newest), reason)."""
    return tuple(
        (lim.dtypes, lim.opsets, lim.reason) for lim in catalog.limits() if not lim.runtime
    )


@functools.cache
def runtime_limit(dtype: str, opset: int) -> str | None:
    """Why onnxruntime may fail on any graph with `dtype` at `opset` (common.yaml), or None."""
    found = catalog.runtime_limit("onnxruntime", dtype, opset)
    return found.reason if found is not None else None


# -- what the specs say a call does ---------------------------------------------------------


def callable_of(name: str) -> Callable[..., Any]:
    """What an entry key names: an ATen overload, or a Python callable (`operator.add`)."""
    if "::" in name:
        return op_overload(name)
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def _tensors(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [v for v in value if v is not None]
    return [] if value is None else [value]


def _gap_applies(gap: Gap, compute: str | None, opset: int, args: dict[str, Any]) -> bool:
    return (
        (gap.opsets is None or gap.opsets[0] <= opset <= gap.opsets[1])
        and (not gap.dtypes or compute in gap.dtypes)
        and (gap.when is None or gap.when(**args))
    )


@dataclass
class Expected:
    """What the specs say of one call at one opset."""

    lowering: Lowering | None = None  # None: no lowering applies (never expected)
    compute: str | None = None
    refusal: str | None = None  # the declared reason the call is refused for
    refusal_spec: str | None = None  # the gap declaring it, where that is known
    runtime_gaps: tuple[Gap, ...] = ()
    problem: str | None = None  # the specs contradict themselves here


def declared_dtype_refusal(entry: Entry, compute: str, opset: int) -> str | None:
    """The declared reason `compute` does not run at `opset`: a common limit, else the first
    unconditional gap of the entry for that dtype and opset (as codegen plans them)."""
    for dtypes, (lo, hi), reason in limits():
        if compute in dtypes and lo <= opset <= hi:
            return reason
    for gap in dtype_gaps(entry):
        if (not gap.dtypes or compute in gap.dtypes) and (
            gap.opsets is None or gap.opsets[0] <= opset <= gap.opsets[1]
        ):
            return gap.reason
    return None


def expect(
    entry: Entry, overload: str, opset: int, args: dict[str, Any], backend: IRBackend
) -> Expected:
    """The lowering, compute dtype, refusal and runtime gaps the specs give this call, from the
    entry's data, in the order dispatch decides: input dtypes, the compute dtype, common limits
    on the arguments' dtypes, gaps with a condition, the lowering with the highest `since` not
    above `opset` whose `when` holds (or a gap of the dtype and opset where none does), and
    that lowering's dtype plan."""
    out = Expected()
    for param in entry.overloads[overload].params:  # dtypes by name, as dispatch has them
        if param.named is not None and args.get(param.name) is not None:
            args[param.name] = named_value(param.named, args[param.name])
    # the lowering the call takes, unless refused first: found before dispatch's refusals so
    # that a refused sample still counts for the plan segment it reaches (test_ops' coverage)
    for lowering in entry.lowerings:
        if lowering.since <= opset <= lowering.until:
            try:
                applies = lowering.when is None or lowering.when(**args)
            except NotLowerable:  # the condition reads what the call does not tell (sizes)
                return out
            if applies:
                out.lowering = lowering
                break
    for name, allowed in entry.input_dtypes.items():
        for tensor in _tensors(args.get(name)):
            if backend.dtype_of(tensor) not in allowed:
                out.problem = f"the sample gives {name} in a dtype `input_dtypes` leaves out"
                return out
    out.compute = compute = compute_dtype_for(entry, backend, args)
    for param in entry.overloads[overload].params:
        for tensor in _tensors(args[param.name]) if param.is_tensor else ():
            for dtypes, (lo, hi), reason in limits():
                if backend.dtype_of(tensor) in dtypes and lo <= opset <= hi:
                    out.refusal = reason
                    return out
    for gap in entry.gaps:
        if gap.when is not None and gap.runtime is None:
            if _gap_applies(gap, compute, opset, args):
                out.refusal, out.refusal_spec = gap_reason(entry, gap), spec_of(entry, gap)
                return out
    if out.lowering is None:  # where none applies, a gap of the dtype and opset may say why
        out.refusal = declared_dtype_refusal(entry, compute, opset) if compute else None
        return out
    out.runtime_gaps = tuple(
        g for g in entry.gaps if g.runtime and _gap_applies(g, compute, opset, args)
    )
    if compute is None:
        return out
    segment = next((s for s in out.lowering.dtypes.get(compute, ()) if s[0] <= opset <= s[1]), None)
    where = spec_of(entry, out.lowering)
    if segment is None:
        out.problem = f"the dtype plan of {where} has no {compute} at opset {opset}"
        return out
    if segment[2] is None:
        out.refusal = declared_dtype_refusal(entry, compute, opset)
        planned = plan_reason(entry, segment[3])
        if out.refusal is None and callee_refusal(entry, out.lowering, planned, opset):
            out.refusal = planned  # declared by an entry the lowering calls
        if planned is None or out.refusal != planned:
            out.problem = (
                f"the dtype plan of {where} refuses {compute} at opset {opset} "
                f"({planned}), but the specs declare {out.refusal!r} there"
            )
    return out


# -- one run --------------------------------------------------------------------------------


class SampleFailure(AssertionError):
    """One sample run did not do what the specs say."""


def _check(condition: Any, message: str) -> None:
    if not condition:
        raise SampleFailure(message)


@dataclass
class Outcome:
    """What happened to one sample at one opset, in one dtype, static or dynamic."""

    expected: Expected = field(default_factory=Expected)
    refused: NotLowerable | None = None
    runner: str = "onnxruntime"


@functools.cache
def eager_call(
    overload: str, text: str, dtype: str
) -> tuple[tuple, dict, list[torch.Tensor] | NotImplementedError]:
    """A sample's arguments and the outputs of the overload called eagerly on them (numbers
    the graph computes, `sym(n)`, as plain numbers; a number returned as a 0-d tensor of the
    dtype the graph holds it in: int64, float64 or bool). Where PyTorch has no kernel for the
    call, the error stands for the outputs: only a declared refusal may meet it."""
    args, kwargs = sample_args(text, dtype)
    try:
        with torch.no_grad():
            out = callable_of(overload)(*eager(args), **eager(kwargs))
    except NotImplementedError as err:
        return args, kwargs, err
    if isinstance(out, (bool, int, float)):
        kind = {bool: torch.bool, int: torch.int64, float: torch.float64}[type(out)]
        out = torch.tensor(out, dtype=kind)
    outputs = [out] if isinstance(out, torch.Tensor) else list(out)
    return args, kwargs, outputs


# The graph's dtype of a number it computes (a SymInt, SymFloat, SymBool).
NUMBER_DTYPES = {bool: "bool", int: "int64", float: "float64"}


def number_tensor(number: SymNumber) -> torch.Tensor:
    return torch.tensor(number.value, dtype=getattr(torch, NUMBER_DTYPES[type(number.value)]))


def _sizes(tensor: torch.Tensor, index: int, dynamic: bool) -> list[int | str]:
    """The dims of input `index`: symbolic `d<input>_<dim>` in a dynamic run, except sizes 0
    and 1, which torch.export specialises (a captured graph never has them dynamic)."""
    return [f"d{index}_{j}" if dynamic and s > 1 else s for j, s in enumerate(tensor.shape)]


class _Inputs:
    """Turns a sample's tensors and numbers the graph computes (`sym(n)`) into graph inputs,
    in the order they are met."""

    def __init__(self, graph: ir.Graph, dynamic: bool) -> None:
        self.graph = graph
        self.dynamic = dynamic
        self.tensors: list[torch.Tensor] = []

    def value(self, arg: Any) -> Any:
        if isinstance(arg, SymNumber):  # a 0-d input standing for a number, as a SymInt is
            value = self.value(number_tensor(arg))
            return mark_number(value)
        if isinstance(arg, torch.Tensor):
            i = len(self.tensors)
            dims = [
                ir.SymbolicDim(d) if isinstance(d, str) else d for d in _sizes(arg, i, self.dynamic)
            ]
            value = ir.Value(
                name=f"input_{i}",
                type=ir.TensorType(ir_dtype(name_of(arg.dtype))),
                shape=ir.Shape(dims),
            )
            self.graph.inputs.append(value)
            self.tensors.append(arg)
            return value
        if isinstance(arg, (list, tuple)) and any(
            isinstance(a, (torch.Tensor, SymNumber)) for a in arg
        ):
            return [self.value(a) for a in arg]
        return arg


def _flat(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def run_onnxruntime(
    proto: onnx.ModelProto, model: ir.Model, inputs: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    """The model's outputs in onnxruntime on CPU, as ONNXProgram runs it, on one thread (the
    tests run in parallel processes, and a tiny model gains nothing from a thread pool)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    graph = model.graph
    names = [v.name for v in graph.inputs if v.name not in graph.initializers]
    outputs = session.run_with_ort_values(
        None, {n: _ort_value(t) for n, t in zip(names, inputs, strict=True)}
    )
    return [_from_ort(o, v.dtype) for o, v in zip(outputs, graph.outputs, strict=True)]


def run_reference(model: onnx.ModelProto, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    session = onnx.reference.ReferenceEvaluator(model)
    initializers = {t.name for t in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in initializers]
    outputs = session.run(None, {n: _to_numpy(t) for n, t in zip(names, inputs, strict=True)})
    dtypes = [o.type.tensor_type.elem_type for o in model.graph.output]
    return [
        _from_numpy(np.asarray(o), ir.DataType(d)) for o, d in zip(outputs, dtypes, strict=True)
    ]


def run_sample(
    entry: Entry, sample: Sample, opset: int, dtype: str, *, dynamic: bool = False
) -> Outcome:
    """Lower one sample at `opset` as the exporter would, check the model, run it and compare
    it with eager; raises SampleFailure where it does not do what the specs say."""
    overload = sample.overload or entry.key
    args, kwargs, expected = eager_call(overload, sample.args, dtype)
    outcome = Outcome()
    where = (
        f"{overload}({sample.args}) in {dtype} at opset {opset}"
        f"{' with dynamic dims' if dynamic else ''} (sample {spec_of(entry, sample)})"
    )

    graph, builder, backend = new_graph(opset)
    inputs = _Inputs(graph, dynamic)
    graph_args = [inputs.value(a) for a in args]
    graph_kwargs = {k: inputs.value(v) for k, v in kwargs.items()}
    schema = entry.overloads[overload]
    outcome.expected = want = expect(
        entry, overload, opset, bind(schema, graph_args, graph_kwargs), backend
    )
    _check(want.problem is None, f"{where}: {want.problem}")
    if isinstance(expected, NotImplementedError):
        _check(
            want.refusal is not None,
            f"{where}: PyTorch has no kernel for it ({expected}), and the specs declare no "
            "refusal there",
        )
        expected = None  # nothing to compare: the call must be refused
    try:
        out = lower_call(
            backend,
            entry,
            overload,
            graph_args,
            graph_kwargs,
            name="out",
            meta=(
                None
                if dynamic or expected is None
                else (expected[0] if len(expected) == 1 else expected)
            ),
            named={v.name for v in graph.inputs if v.name},
        )
    except NotLowerable as err:
        outcome.refused = err
        if (
            want.refusal is None
            and want.lowering is not None
            and err.entry in called_entries(entry, want.lowering)
            and err.gap is not None
            and callee_refusal(entry, want.lowering, err.declared, opset)
        ):
            return outcome  # a called entry's gap, met while this body runs
        _check(
            want.refusal is not None,
            f"{where} was refused, and the specs declare no refusal there: {err.reason} "
            f"({err.spec})",
        )
        _check(
            err.declared == want.refusal
            and (want.refusal_spec is None or err.spec == want.refusal_spec),
            f"{where} was refused for {err.reason!r} ({err.spec}), but the refusal the specs "
            f"declare there is {want.refusal!r} ({want.refusal_spec or spec_of(entry)})",
        )
        return outcome
    _check(
        want.refusal is None,
        f"{where} exported, but the specs declare it refused: {want.refusal} "
        f"({want.refusal_spec or spec_of(entry)})",
    )
    assert want.lowering is not None
    took = backend.used[0] if backend.used else None
    _check(
        took == (overload, entry.key, want.lowering.index),
        f"{where} took the lowering at "
        f"{took and catalog.spec_location(took[1], lowering=took[2])}, the specs say "
        f"{spec_of(entry, want.lowering)}",
    )
    met = [index for o, key, index in backend.gaps_met if o == overload and key == entry.key]
    _check(
        met == [g.index for g in want.runtime_gaps],
        f"{where}: the exporter reports runtime gaps "
        f"{[catalog.spec_location(entry.key, gap=i) for i in met]}, the specs declare "
        f"{[spec_of(entry, g) for g in want.runtime_gaps]}",
    )

    values = _flat(out)
    _check(
        len(values) == len(expected),
        f"{where}: the lowering gives {len(values)} outputs, eager {len(expected)}",
    )
    for i, (value, tensor) in enumerate(zip(values, expected, strict=True)):
        added = add_output(builder, value, None if dynamic else tensor, f"output_{i}")
        # where shape inference gives nothing, what the exporter knows from FX metadata at
        # least: the dtype and the rank
        if added.dtype is None:
            added.dtype = ir_dtype(name_of(tensor.dtype))
        if added.shape is None:
            added.shape = ir.Shape([None] * tensor.dim())
    model = new_model(graph, opset)
    finalize(model)
    proto = ir.serde.serialize_model(model)
    onnx.checker.check_model(proto, full_check=True)

    actual = _run(entry, proto, model, inputs.tensors, want, dtype, opset, where, outcome)
    _compare(entry, schema, args, kwargs, expected, actual, where, outcome)
    _check_shapes(entry, schema, args, kwargs, inputs.tensors, expected, proto, dynamic, where)
    return outcome


def _run(
    entry: Entry,
    proto: onnx.ModelProto,
    model: ir.Model,
    tensors: list[torch.Tensor],
    want: Expected,
    dtype: str,
    opset: int,
    where: str,
    outcome: Outcome,
) -> list[torch.Tensor]:
    """onnxruntime's outputs; onnx's reference's where a declared gap or limit says
    onnxruntime fails, and it does."""
    gap = next((g for g in want.runtime_gaps if g.runtime == "onnxruntime"), None)
    try:
        actual = run_onnxruntime(proto, model, tensors)
    except ORT_ERRORS as err:
        limit = runtime_limit(dtype, opset)
        _check(
            gap is not None or limit is not None,
            f"{where}: onnxruntime fails, and no runtime gap or limit is declared for it: "
            f"{type(err).__name__}: {err}",
        )
        outcome.runner = "onnx.reference"
        return run_reference(proto, tensors)
    _check(
        gap is None,
        f"{where} runs on onnxruntime, but a gap says it does not ({gap and spec_of(entry, gap)}); "
        "remove the gap",
    )
    return actual


def _compare(
    entry: Entry,
    schema: Any,
    args: tuple,
    kwargs: dict,
    expected: list[torch.Tensor],
    actual: list[torch.Tensor],
    where: str,
    outcome: Outcome,
) -> None:
    """Outputs against eager; an index output (the last, where the entry has an index rule)
    by the elements it selects, so that equal elements (ties) may be picked either way."""
    if catalog.entry(entry.key).unspecified_values:
        for want, got in zip(expected, actual, strict=True):
            _check(
                want.dtype == got.dtype and want.shape == got.shape,
                f"{where}: gives {got.dtype} {tuple(got.shape)}, eager {want.dtype} "
                f"{tuple(want.shape)} ({outcome.runner}; spec {spec_of(entry)})",
            )
        return
    rule = index_rule(entry)
    plain = len(expected) - 1 if rule is not None else len(expected)
    for check in compare(expected[:plain], actual[:plain]):
        _check(
            check.ok,
            f"{where}: {check.describe()} ({outcome.runner}; spec {spec_of(entry)})",
        )
    if rule is None:
        return
    (check,) = compare(expected[plain:], actual[plain:])  # dtype and shape, and what differs
    if check.ok:
        return
    bound = bind(schema, args, kwargs)
    try:
        picked = index_rules.evaluate(rule, bound, actual[plain])
    except (IndexError, RuntimeError) as err:
        raise SampleFailure(f"{where}: output {plain} holds invalid indices: {err}") from None
    (check,) = compare([index_rules.evaluate(rule, bound, expected[plain])], [picked])
    _check(
        check.ok,
        f"{where}: output {plain} selects other elements than eager's indices "
        f"({rule}): {check.detail} ({outcome.runner}; spec {spec_of(entry)})",
    )


def _symbol(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, integer=True, positive=True)


def _rule_args(
    entry: Entry, schema: Any, args: tuple, kwargs: dict, dynamic: bool
) -> dict[str, Any]:
    """The call's arguments by name, each tensor replaced by its shape (symbolic dims in a
    dynamic run, named as the graph inputs'), and a number where the entry's first overload
    takes a tensor (`other` of eq.Scalar) by the shape of a 0-dim tensor."""
    count = iter(range(1 << 30))

    def shape(value: Any) -> Any:
        if isinstance(value, SymNumber):  # a graph input too: numbered, and its value
            next(count)
            return value.value
        if isinstance(value, torch.Tensor):
            i = next(count)
            return tuple(_symbol(d) if isinstance(d, str) else d for d in _sizes(value, i, dynamic))
        if isinstance(value, (list, tuple)) and any(
            isinstance(v, (torch.Tensor, SymNumber)) for v in value
        ):
            return [shape(v) for v in value]
        return value

    # number the tensors as _Inputs does: positional arguments first, then keywords
    shaped_args = [shape(a) for a in args]
    shaped_kwargs = {k: shape(v) for k, v in kwargs.items()}
    bound = bind(schema, shaped_args, shaped_kwargs)
    for param in entry.overloads[entry.key].params:  # the overload the rule is written for
        if param.is_tensor and isinstance(bound.get(param.name), (bool, int, float)):
            bound[param.name] = ()
    return bound


def _shapes_of(rule: str, result: Any, count: int, where: str) -> list[Any]:
    if isinstance(result, list):
        _check(
            len(result) == count,
            f"{where}: shape rule `{rule}` gives {len(result)} shapes for {count} outputs",
        )
        return result
    return [result] * count  # one shape for each output (max.dim's values and indices)


def _size(dim: Any, sizes: dict[sympy.Symbol, int]) -> int | None:
    """A size at the sample's sizes; None if it does not come to an integer."""
    if isinstance(dim, int):
        return dim
    value = dim.xreplace(sizes)
    if isinstance(value, int):
        return value
    value = sympy.simplify(value) if value.free_symbols else value
    return int(value) if value.is_Integer else None


def _check_shapes(
    entry: Entry,
    schema: Any,
    args: tuple,
    kwargs: dict,
    tensors: list[torch.Tensor],
    expected: list[torch.Tensor],
    proto: onnx.ModelProto,
    dynamic: bool,
    where: str,
) -> None:
    """The entry's shape rule against eager's output shapes, and in a dynamic run against the
    graph's output shapes where ONNX shape inference knows them (`tensors`: the graph inputs'
    values, whose sizes the symbolic dims stand for)."""
    rule = shape_rule(entry)
    try:
        result = shapes.evaluate(rule, _rule_args(entry, schema, args, kwargs, dynamic))
    except (ValueError, IndexError, TypeError) as err:
        raise SampleFailure(
            f"{where}: shape rule `{rule}` fails: {err} ({spec_of(entry)})"
        ) from None
    if result is None:  # `infer`
        return
    rules = _shapes_of(rule, result, len(expected), where)
    sizes = {
        _symbol(name): int(s)
        for i, tensor in enumerate(tensors)
        for name, s in zip(_sizes(tensor, i, dynamic), tensor.shape, strict=True)
        if isinstance(name, str)
    }
    for i, (shape, tensor) in enumerate(zip(rules, expected, strict=True)):
        got = tuple(_size(d, sizes) for d in shape)
        if got != tuple(tensor.shape):  # (messages with sympy sizes take time to make)
            raise SampleFailure(
                f"{where}: shape rule `{rule}` gives {_show(shape)} for output {i}, eager "
                f"{tuple(tensor.shape)} ({spec_of(entry)})"
            )
    if not dynamic:
        return
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True, data_prop=True)
    names = {str(s): s for s in sizes}
    for i, (shape, output) in enumerate(zip(rules, inferred.graph.output, strict=True)):
        tensor_type = output.type.tensor_type
        if not tensor_type.HasField("shape"):
            continue
        dims = tensor_type.shape.dim
        if len(dims) != len(shape):
            raise SampleFailure(
                f"{where}: shape rule `{rule}` gives {_show(shape)} for output {i}, the graph "
                f"{_graph_shape(dims)} ({spec_of(entry)})"
            )
        for j, (dim, want) in enumerate(zip(dims, shape, strict=True)):
            graph_dim = _graph_dim(dim, names)
            if graph_dim is None:
                continue  # shape inference does not know it
            rule_static = isinstance(want, int) or not want.free_symbols
            graph_static = isinstance(graph_dim, int)
            same = _size(graph_dim, sizes) == _size(want, sizes)
            if not same or (graph_static and not rule_static):
                raise SampleFailure(
                    f"{where}: shape rule `{rule}` gives {_show(shape)} for output {i}, the "
                    f"graph {_graph_shape(dims)} (dim {j}) ({spec_of(entry)})"
                )


def _graph_dim(dim: Any, names: dict[str, sympy.Symbol]) -> int | sympy.Expr | None:
    """A dim of an ONNX shape as an int or an expression of the inputs' dims; None when it is
    unknown or named by shape inference (`unk__0`)."""
    if dim.HasField("dim_value"):
        return int(dim.dim_value)
    if not dim.HasField("dim_param"):
        return None
    if dim.dim_param in names:
        return names[dim.dim_param]
    if not any(name in dim.dim_param for name in names):
        return None
    try:
        expr = sympy.sympify(dim.dim_param, locals=names)
    except (sympy.SympifyError, SyntaxError, TypeError):
        return None
    return expr if expr.free_symbols <= set(names.values()) else None


def _graph_shape(dims: Any) -> str:
    return "(" + ", ".join(d.dim_param or str(d.dim_value) for d in dims) + ")"


def _show(shape: Sequence[Any]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
