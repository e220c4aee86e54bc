"""The generated registry's types, and the dispatch that both export paths share.

`generated/registry.py` describes every spec entry with these types. `lower()` runs one ATen
call through its entry: it picks the lowering for the target opset (the highest `since` whose
condition holds), applies ATen type promotion, checks the dtype plan (native, widened, or a
declared gap), casts, calls the generated function and casts results back. What differs between
the torch.export and TorchScript paths (how a value's dtype is read, how a Cast is made) is a
`Backend`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from torchonnx.dtypes import Operand, compute_dtype, name_of

TENSOR = "tensor"
MAYBE_TENSOR = "tensor?"
TENSORS = "tensor[]"
VALUE = "value"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: str  # TENSOR, MAYBE_TENSOR, TENSORS or VALUE
    default: Any = REQUIRED
    kwarg_only: bool = False
    aten_name: str | None = None  # when it differs (Python keywords get a trailing _)

    @property
    def is_tensor(self) -> bool:
        return self.kind != VALUE


@dataclass(frozen=True, slots=True)
class Overload:
    name: str  # aten::add.Tensor
    schema: str
    params: tuple[Param, ...]
    returns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Lowering:
    since: int
    until: int
    spec: str  # file:line of the block
    fns: dict[str, Callable[..., Any]]  # overload -> onnxscript-builder function
    symbolic: dict[str, str]  # overload -> "symbolic_opsetN.function"
    dtypes: dict[str, tuple[tuple[int, int, str | None, str | None], ...]]
    cast_back: dict[str, tuple[bool, ...]]  # widened compute dtype -> per output: cast back
    onnx_ops: tuple[str, ...]
    when: Callable[..., bool] | None = None
    when_text: str | None = None

    def run_dtype(self, compute: str, opset: int) -> tuple[str | None, str | None]:
        """(dtype to run in, None) or (None, why not) for `compute` at `opset`; (None, None)
        where an earlier lowering always takes `compute`."""
        for lo, hi, run, reason in self.dtypes.get(compute, ()):
            if lo <= opset <= hi:
                return run, reason
        supported = ", ".join(self.dtypes)
        return None, f"{compute} is not among the dtypes of this op ({supported})"


@dataclass(frozen=True, slots=True)
class Gap:
    reason: str
    spec: str
    dtypes: tuple[str, ...] = ()
    opsets: tuple[int, int] | None = None
    when: Callable[..., bool] | None = None
    when_text: str | None = None
    runtime: str | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    args: str
    spec: str
    opsets: tuple[int, int] | None = None
    dtypes: tuple[str, ...] = ()
    overload: str | None = None


@dataclass(frozen=True, slots=True)
class RuntimeLimit:
    """Dtypes a runtime cannot always run, for any op (the exported model is still valid)."""

    runtime: str
    dtypes: tuple[str, ...]
    opsets: tuple[int, int]
    reason: str
    spec: str


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    spec: str
    family: str
    doc: str
    overloads: dict[str, Overload]
    dtypes: tuple[str, ...]  # input dtypes the entry declares
    lowerings: tuple[Lowering, ...]  # by `since`, highest first
    promote: str | None = None
    promote_args: tuple[str, ...] = ()
    group: tuple[str, ...] = ()  # tensor arguments cast to the compute dtype
    dtype_param: str | None = None
    input_dtypes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    gaps: tuple[Gap, ...] = ()
    samples: tuple[Sample, ...] = ()
    shape: str = "infer"
    indices: str | None = None  # the index rule of the last output (runtime/indices.py)

    @property
    def opsets(self) -> tuple[int, int]:
        return min(lw.since for lw in self.lowerings), max(lw.until for lw in self.lowerings)


class Backend(Protocol):
    """What dispatch needs from an export path."""

    opset: int

    @property
    def ctx(self) -> Any: ...  # what generated functions get first: `op` or `g`

    def dtype_of(self, value: Any) -> str | None: ...

    def rank_of(self, value: Any) -> int | None: ...

    def cast(self, value: Any, dtype: str) -> Any: ...

    def const(self, value: Any, dtype: str) -> Any: ...

    def lowered(self, overload: str, lowering: Lowering, runtime_gaps: tuple[Gap, ...]) -> None:
        """Told which lowering ran, and the declared runtime gaps that apply to the call."""


class NotLowerable(Exception):
    """This call cannot be lowered at this opset; `reason` says why, `opsets` what would work.

    `declared` is the reason the specs declare for it (a gap's, a limit's, that of a dtype
    plan's segment), word for word; None where no spec declares it (no lowering applies).
    """

    def __init__(
        self,
        reason: str,
        *,
        spec: str | None = None,
        opsets: list[int] | None = None,
        declared: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.spec = spec
        self.opsets = opsets or []
        self.declared = declared


def bind(overload: Overload, args: Sequence[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """ATen call arguments by parameter name, defaults filled in."""
    bound: dict[str, Any] = {}
    positional = [p for p in overload.params if not p.kwarg_only]
    if len(args) > len(positional):
        raise TypeError(
            f"{overload.name} takes {len(positional)} positional arguments, got {len(args)}"
        )
    for p, a in zip(positional, args, strict=False):
        bound[p.name] = a
    for p in overload.params:
        key = p.aten_name or p.name
        if key in kwargs:
            bound[p.name] = kwargs[key]
        elif p.name not in bound:
            if p.default is REQUIRED:
                raise TypeError(f"{overload.name} needs argument {key}")
            bound[p.name] = p.default
    return {p.name: bound[p.name] for p in overload.params}


def _tensors(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def select(entry: Entry, opset: int, args: dict[str, Any], cap: int | None = None) -> Lowering:
    """The lowering for this call at `opset`; NotLowerable if none applies.

    `cap` leaves out lowerings that begin after it (a symbolic function of opset `cap`).
    """
    for lowering in entry.lowerings:
        if cap is not None and lowering.since > cap:
            continue
        if lowering.since <= opset <= lowering.until and (
            lowering.when is None or lowering.when(**args)
        ):
            return lowering
    works = sorted(
        {
            o
            for lw in entry.lowerings
            if (cap is None or lw.since <= cap) and (lw.when is None or lw.when(**args))
            for o in range(lw.since, lw.until + 1)
        }
    )
    if not works:
        conditions = "; ".join(
            f"`{lw.when_text}` (from opset {lw.since})" for lw in entry.lowerings if lw.when_text
        )
        raise NotLowerable(
            f"no lowering applies to these arguments: each needs {conditions}", spec=entry.spec
        )
    lowest = min(works)
    reason = (
        f"supported from opset {lowest}"
        if opset < lowest
        else f"supported at opsets {_span(works)}"
    )
    raise NotLowerable(f"not supported at opset {opset}; {reason}", spec=entry.spec, opsets=works)


def _span(opsets: list[int]) -> str:
    return (
        f"{opsets[0]}..{opsets[-1]}"
        if opsets == list(range(opsets[0], opsets[-1] + 1))
        else ", ".join(map(str, opsets))
    )


def compute_dtype_for(entry: Entry, backend: Backend, args: dict[str, Any]) -> str | None:
    """The dtype the call computes in, by the entry's promotion rule."""
    if entry.dtype_param is not None and args.get(entry.dtype_param) is not None:
        return name_of(args[entry.dtype_param])
    if entry.promote is not None:
        operands = []
        for name in entry.promote_args:
            value = args[name]
            if value is None:
                continue
            if isinstance(value, (bool, int, float, complex)):
                operands.append(Operand.scalar(value))
                continue
            for tensor in _tensors(value):
                dtype = backend.dtype_of(tensor)
                if dtype is None:
                    raise NotLowerable(
                        f"the dtype of argument {name} is not known", spec=entry.spec
                    )
                operands.append(Operand(dtype, backend.rank_of(tensor)))
        return compute_dtype(entry.promote, operands)
    for name in entry.group:
        for tensor in _tensors(args.get(name)):
            return backend.dtype_of(tensor)
    return None


def _gap_applies(gap: Gap, compute: str | None, opset: int, args: dict[str, Any]) -> bool:
    if gap.opsets is not None and not gap.opsets[0] <= opset <= gap.opsets[1]:
        return False
    if gap.dtypes and compute not in gap.dtypes:
        return False
    return gap.when is None or gap.when(**args)


def runtime_gaps(
    entry: Entry, compute: str | None, opset: int, args: dict[str, Any]
) -> tuple[Gap, ...]:
    """The declared runtime gaps this call falls in (it exports; that runtime cannot run it)."""
    return tuple(g for g in entry.gaps if g.runtime and _gap_applies(g, compute, opset, args))


@functools.cache
def _limits() -> tuple[tuple[tuple[str, ...], tuple[int, int], str], ...]:
    from torchonnx.generated.registry import LIMITS

    return LIMITS


def limit(dtype: str, opset: int) -> str | None:
    """Why no graph can hold `dtype` at `opset` (common.yaml's limits), or None."""
    for dtypes, (lo, hi), reason in _limits():
        if dtype in dtypes and lo <= opset <= hi:
            return reason
    return None


def plan(
    entry: Entry,
    overload: str,
    opset: int,
    args: dict[str, Any],
    backend: Backend,
    cap: int | None = None,
) -> tuple[Lowering, str | None, str | None]:
    """(lowering, compute dtype, dtype to run in) for this call; NotLowerable if unsupported."""
    lowering = select(entry, opset, args, cap)
    for name, allowed in entry.input_dtypes.items():
        for tensor in _tensors(args.get(name)):
            dtype = backend.dtype_of(tensor)
            if dtype is not None and dtype not in allowed:
                raise NotLowerable(
                    f"argument {name} is {dtype}; supported: {', '.join(allowed)}", spec=entry.spec
                )
    compute = compute_dtype_for(entry, backend, args)
    for param in entry.overloads[overload].params:
        for tensor in _tensors(args.get(param.name)) if param.is_tensor else ():
            dtype = backend.dtype_of(tensor)
            reason = limit(dtype, opset) if dtype is not None else None
            if reason is not None:
                raise NotLowerable(
                    f"argument {param.name} is {dtype}: {reason}", spec=entry.spec, declared=reason
                )
    for gap in entry.gaps:
        # gaps without a condition are in the dtype plans; a runtime's gaps do not stop export
        if gap.when is not None and gap.runtime is None and _gap_applies(gap, compute, opset, args):
            raise NotLowerable(
                f"{gap.reason} (when {gap.when_text})", spec=gap.spec, declared=gap.reason
            )
    if compute is None:
        return lowering, None, None
    run, reason = lowering.run_dtype(compute, opset)
    if run is None:
        works = dtype_opsets(entry, compute)
        hint = f"; {compute} works at opsets {_span(works)}" if works else ""
        raise NotLowerable(
            f"{compute} at opset {opset}: {reason}{hint}",
            spec=lowering.spec,
            opsets=works,
            declared=reason if compute in lowering.dtypes else None,
        )
    return lowering, compute, run


def dtype_opsets(entry: Entry, compute: str) -> list[int]:
    """The opsets at which some lowering of the entry runs `compute` (conditions aside)."""
    return sorted(
        {
            opset
            for lowering in entry.lowerings
            for lo, hi, run, _ in lowering.dtypes.get(compute, ())
            if run is not None
            for opset in range(lo, hi + 1)
        }
    )


def lower(
    entry: Entry,
    overload: str,
    backend: Backend,
    args: dict[str, Any],
    *,
    pick: Callable[[Lowering, str], Callable[..., Any]] | None = None,
    cap: int | None = None,
) -> Any:
    """Emit the ONNX nodes for one ATen call; returns its output value(s).

    `pick` chooses the generated function of the lowering (the onnxscript one by default).
    """
    lowering, compute, run = plan(entry, overload, backend.opset, args, backend, cap)
    for param in entry.overloads[overload].params:
        value = args[param.name]
        if param.kind == VALUE or value is None:
            continue
        in_group = run is not None and param.name in entry.group
        if isinstance(value, (bool, int, float)):  # a number where ATen takes a tensor
            dtype = run if in_group else Operand.scalar(value).dtype
            args[param.name] = backend.const(value, dtype)
        elif in_group and isinstance(value, (list, tuple)):
            args[param.name] = [_cast(backend, v, run) for v in value]
        elif in_group:
            args[param.name] = _cast(backend, value, run)
    backend.lowered(overload, lowering, runtime_gaps(entry, compute, backend.opset, args))
    fn = pick(lowering, overload) if pick is not None else lowering.fns[overload]
    out = fn(backend.ctx, *args.values())
    if run is not None and compute is not None and run != compute:  # widened: cast back
        back = lowering.cast_back[compute]
        if isinstance(out, tuple):
            out = tuple(
                backend.cast(v, compute) if b else v for v, b in zip(out, back, strict=True)
            )
        elif isinstance(out, list):
            out = [backend.cast(v, compute) for v in out] if back[0] else out
        elif back[0]:
            out = backend.cast(out, compute)
    return out


def _cast(backend: Backend, value: Any, dtype: str) -> Any:
    return value if backend.dtype_of(value) == dtype else backend.cast(value, dtype)
