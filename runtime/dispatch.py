"""The generated registry's types, and the dispatch that both export paths share.

`generated/registry.py` describes every spec entry with these types, holding only what
dispatch reads; what people read (docs, schema strings, spec locations, samples, the texts of
conditions and reasons) is in `generated/catalog.py`, read through `torchonnx.catalog`, which
dispatch consults only to word an error. `lower()` runs one ATen call through its entry: it
picks the lowering for the target opset (the highest `since` whose condition holds), applies
ATen type promotion, checks the dtype plan (native, widened, or a declared gap), casts, calls
the generated function and casts results back. What differs between the torch.export and
TorchScript paths (how a value's dtype is read, how a Cast is made) is a `Backend`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from torchonnx import catalog  # light: it loads the generated catalog only when asked
from torchonnx.dtypes import Operand, compute_dtype, named_value, python_dtype
from torchonnx.opsets import span

TENSOR = "tensor"
MAYBE_TENSOR = "tensor?"
TENSORS = "tensor[]"
VALUE = "value"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

# One segment of a dtype plan: over opsets `lo..hi`, the dtype the lowering runs in, or None
# where it does not; then why not, as an index into the entry's reasons in the catalog, or
# None where an earlier lowering always takes the dtype.
Segment = tuple[int, int, str | None, int | None]


@dataclass(frozen=True, slots=True)
class Plan:
    """How a lowering runs each dtype it may compute in, over its opsets. Lowerings whose
    plans are alike share one."""

    dtypes: dict[str, tuple[Segment, ...]]  # compute dtype -> its segments
    # a compute dtype run in a wider one -> per output of the lowering: cast back to it
    cast_back: dict[str, tuple[bool, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: str  # TENSOR, MAYBE_TENSOR, TENSORS or VALUE
    default: Any = REQUIRED
    kwarg_only: bool = False
    aten_name: str | None = None  # when it differs (Python keywords get a trailing _)
    named: str | None = None  # dtype, layout, device or memory_format: passed on by name
    dynamic: bool = False  # may be a value the graph computes (SymInt, Scalar)

    @property
    def is_tensor(self) -> bool:
        return self.kind != VALUE


@dataclass(frozen=True, slots=True)
class Overload:
    """An ATen overload, and the overloads lowered exactly like it (`also`: same parameters,
    same functions; in-place and `out` variants mostly). Its entry gives each name of `also`
    an Overload of its own with the same `variant`."""

    name: str  # aten::add.Tensor
    params: tuple[Param, ...]
    also: tuple[str, ...] = ()
    variant: int = 0  # which function of each lowering's `fns` it calls; set by its Entry


@dataclass(frozen=True, slots=True)
class Lowering:
    """One lowering block of a spec entry, over opsets since..until."""

    index: int  # its position in the entry's lowerings (a block may be several): the catalog's
    since: int
    until: int
    # per overload variant: the onnxscript-builder function. Its TorchScript counterpart is
    # the function of the same name in `generated/symbolic_opset<since>.py`.
    fns: tuple[Callable[..., Any], ...]
    plan: Plan
    when: Callable[..., bool] | None = None

    @property
    def dtypes(self) -> dict[str, tuple[Segment, ...]]:
        return self.plan.dtypes

    @property
    def cast_back(self) -> dict[str, tuple[bool, ...]]:
        return self.plan.cast_back

    def run_dtype(self, compute: str, opset: int) -> tuple[str | None, int | None] | None:
        """(dtype to run in, None), or (None, why not: an index into the entry's reasons), or
        (None, None) where an earlier lowering always takes `compute`; None when `compute`
        is not a dtype of this lowering at `opset`."""
        for lo, hi, run, why in self.dtypes.get(compute, ()):
            if lo <= opset <= hi:
                return run, why
        return None


@dataclass(frozen=True, slots=True)
class Gap:
    """A declared gap that dispatch decides per call: one with a condition on the arguments
    (`when`), or one of a runtime (the model exports; that runtime cannot run it). Gaps of
    dtypes and opsets alone are in the dtype plans."""

    index: int  # its position among the entry's gaps: how the catalog knows it
    dtypes: tuple[str, ...] = ()
    opsets: tuple[int, int] | None = None
    when: Callable[..., bool] | None = None
    runtime: str | None = None


@dataclass(frozen=True, slots=True)
class Limit:
    """Dtypes no graph can hold at some opsets, whatever the op (common.yaml)."""

    index: int  # its position among common.yaml's limits: how the catalog knows it
    dtypes: tuple[str, ...]
    opsets: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    variants: tuple[Overload, ...]  # overloads lowered differently, each with its `also`
    lowerings: tuple[Lowering, ...]  # by `since`, highest first
    dtypes: tuple[str, ...]  # input dtypes the entry declares
    promote: str | None = None
    promote_args: tuple[str, ...] = ()
    group: tuple[str, ...] = ()  # tensor arguments cast to the compute dtype
    dtype_param: str | None = None
    input_dtypes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    gaps: tuple[Gap, ...] = ()
    # every overload of the entry by name, `also` names included
    overloads: dict[str, Overload] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        overloads = {}
        for variant, o in enumerate(self.variants):
            for name in (o.name, *o.also):
                overloads[name] = Overload(name, o.params, variant=variant)
        object.__setattr__(self, "overloads", overloads)

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

    def is_number(self, value: Any) -> bool:
        """Whether a graph value stands for a Python number (a SymInt, `item()`)."""

    def cast(self, value: Any, dtype: str) -> Any: ...

    def const(self, value: Any, dtype: str) -> Any: ...

    def lowered(
        self, entry: Entry, overload: str, lowering: Lowering, runtime_gaps: tuple[Gap, ...]
    ) -> None:
        """Told which lowering ran, and the declared runtime gaps that apply to the call."""


class NotLowerable(Exception):
    """This call cannot be lowered at this opset; `reason` says why, `opsets` what would work.

    `entry` and the index of a `lowering` or `gap` of it say which part of a spec refuses;
    `spec` looks its file:line up in the catalog. `declared` is the reason the specs declare
    for it (a gap's, a limit's, that of a dtype plan's segment), word for word; None where no
    spec declares it (no lowering applies).
    """

    def __init__(
        self,
        reason: str,
        *,
        entry: str | None = None,
        lowering: int | None = None,
        gap: int | None = None,
        opsets: list[int] | None = None,
        declared: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.entry = entry
        self.lowering = lowering
        self.gap = gap
        self.opsets = opsets or []
        self.declared = declared

    @property
    def spec(self) -> str | None:
        if self.entry is None:
            return None
        return catalog.spec_location(self.entry, lowering=self.lowering, gap=self.gap)


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
            f"`{catalog.lowering(entry.key, lw.index).when}` (from opset {lw.since})"
            for lw in entry.lowerings
            if lw.when is not None
        )
        raise NotLowerable(
            f"no lowering applies to these arguments: each needs {conditions}", entry=entry.key
        )
    lowest = min(works)
    reason = (
        f"supported from opset {lowest}" if opset < lowest else f"supported at opsets {span(works)}"
    )
    raise NotLowerable(f"not supported at opset {opset}; {reason}", entry=entry.key, opsets=works)


def compute_dtype_for(entry: Entry, backend: Backend, args: dict[str, Any]) -> str | None:
    """The dtype the call computes in, by the entry's promotion rule."""
    if entry.dtype_param is not None and args.get(entry.dtype_param) is not None:
        return args[entry.dtype_param]
    if entry.promote is not None:
        operands = []
        for name in entry.promote_args:
            for value in _tensors(args[name]):
                if isinstance(value, (bool, int, float, complex)):
                    operands.append(Operand.scalar(value))
                elif backend.is_number(value):  # a number the graph computes: promoted as one
                    operands.append(Operand(python_dtype([backend.dtype_of(value)]), None))
                else:
                    dtype = backend.dtype_of(value)
                    if dtype is None:
                        raise NotLowerable(
                            f"the dtype of argument {name} is not known", entry=entry.key
                        )
                    operands.append(Operand(dtype, backend.rank_of(value)))
        if operands and all(op.dim is None for op in operands):
            # numbers only (a body's `aten.X` call on sizes): computed at their own precision,
            # as 0-d tensors of int64, float64, bool, not in the default dtype
            operands = [Operand(op.dtype, 0) for op in operands]
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
def _limits() -> tuple[Limit, ...]:
    from torchonnx.generated.registry import LIMITS

    return LIMITS


def limit(dtype: str, opset: int) -> Limit | None:
    """The limit of common.yaml by which no graph can hold `dtype` at `opset`, or None."""
    for lim in _limits():
        if dtype in lim.dtypes and lim.opsets[0] <= opset <= lim.opsets[1]:
            return lim
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
    for name, allowed in entry.input_dtypes.items():
        for tensor in _tensors(args.get(name)):
            dtype = backend.dtype_of(tensor)
            if dtype is not None and dtype not in allowed:
                raise NotLowerable(
                    f"argument {name} is {dtype}; supported: {', '.join(allowed)}", entry=entry.key
                )
    compute = compute_dtype_for(entry, backend, args)
    for param in entry.overloads[overload].params:
        for tensor in _tensors(args.get(param.name)) if param.is_tensor else ():
            dtype = backend.dtype_of(tensor)
            lim = limit(dtype, opset) if dtype is not None else None
            if lim is not None:
                reason = catalog.limits()[lim.index].reason
                raise NotLowerable(
                    f"argument {param.name} is {dtype}: {reason}", entry=entry.key, declared=reason
                )
    for gap in entry.gaps:
        # gaps without a condition are in the dtype plans; a runtime's gaps do not stop export
        if gap.when is not None and gap.runtime is None and _gap_applies(gap, compute, opset, args):
            info = catalog.gap(entry.key, gap.index)
            raise NotLowerable(
                f"{info.reason} (when {info.when})",
                entry=entry.key,
                gap=gap.index,
                declared=info.reason,
            )
    try:
        lowering = select(entry, opset, args, cap)  # after the gaps, whose reasons say more
    except NotLowerable as err:
        raise _dtype_gap(entry, compute, opset) or err from None
    if compute is None:
        return lowering, None, None
    status = lowering.run_dtype(compute, opset)
    run = status[0] if status is not None else None
    if run is None:
        declared = None
        if status is not None and status[1] is not None:
            reason = declared = catalog.entry(entry.key).reasons[status[1]]
        else:  # never picked where an earlier lowering takes the dtype; kept for safety
            reason = f"{compute} is not among the dtypes of this op ({', '.join(lowering.dtypes)})"
        raise _dtype_refusal(entry, compute, opset, reason, declared, lowering=lowering.index)
    return lowering, compute, run


def _dtype_refusal(
    entry: Entry, compute: str, opset: int, reason: str, declared: str | None, **where: int
) -> NotLowerable:
    """Why `compute` does not run at `opset`, and the opsets where it does; `where` names the
    lowering or gap of the entry that says so."""
    works = dtype_opsets(entry, compute)
    hint = f"; {compute} works at opsets {span(works)}" if works else ""
    return NotLowerable(
        f"{compute} at opset {opset}: {reason}{hint}",
        entry=entry.key,
        opsets=works,
        declared=declared,
        **where,
    )


def _dtype_gap(entry: Entry, compute: str | None, opset: int) -> NotLowerable | None:
    """Where no lowering applies, the entry's gap of this dtype and opset, if it declares one
    (such gaps live in the dtype plans of lowerings, and no lowering was picked)."""
    if compute is None:
        return None
    for index, gap in enumerate(catalog.entry(entry.key).gaps):
        if gap.when is None and gap.runtime is None and (not gap.dtypes or compute in gap.dtypes):
            if gap.opsets is None or gap.opsets[0] <= opset <= gap.opsets[1]:
                return _dtype_refusal(entry, compute, opset, gap.reason, gap.reason, gap=index)
    return None


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
    pick: Callable[[Lowering, int], Callable[..., Any]] | None = None,
    cap: int | None = None,
) -> Any:
    """Emit the ONNX nodes for one ATen call; returns its output value(s).

    `pick` chooses the generated function of the lowering for the overload's variant (the
    onnxscript one by default).
    """
    for param in entry.overloads[overload].params:
        if param.named is not None and args[param.name] is not None:
            args[param.name] = named_value(param.named, args[param.name])
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
            args[param.name] = [
                (
                    backend.const(v, run)
                    if isinstance(v, (bool, int, float))
                    else _cast(backend, v, run)
                )
                for v in value
            ]
        elif in_group:
            args[param.name] = _cast(backend, value, run)
    backend.lowered(entry, overload, lowering, runtime_gaps(entry, compute, backend.opset, args))
    variant = entry.overloads[overload].variant
    fn = pick(lowering, variant) if pick is not None else lowering.fns[variant]
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
