"""What the specs say for people: the types of `generated/catalog.py`, and how to ask it.

The registry (`generated/registry.py`, types in `torchonnx.dispatch`) holds only what dispatch
reads. Everything else codegen knows of an entry is here: where the spec writes the entry, each
lowering, gap and sample (`file:line`), its doc string, the schema of each overload, the ONNX
ops each lowering emits, the text of conditions and reasons, and the samples tests run.
Tests, docs and error messages read it; exporting a model does not load it unless a message
needs it.

Registry records name their catalog counterparts by position: a `Lowering.index` is the
lowering's position in its entry (`EntryInfo.lowerings`; a block whose ONNX arguments change
form at some opset is one lowering per form), a `Gap.index` the gap's position
(`EntryInfo.gaps`), a `Limit.index` the limit's position in common.yaml (`limits()`), and the
last item of a dtype-plan segment indexes `EntryInfo.reasons`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LoweringInfo:
    """One lowering: a block over the opsets where it has one form, in the order the entry
    writes the blocks."""

    spec: str  # file:line of the block
    since: int
    until: int
    onnx_ops: tuple[str, ...]  # the ONNX operators it may emit
    when: str | None = None  # its condition, as written
    calls: tuple[str, ...] = ()  # the ATen overloads its body calls (`aten.X(...)`)


@dataclass(frozen=True, slots=True)
class GapInfo:
    """A declared gap: what is not supported, and why."""

    reason: str
    spec: str  # file:line
    dtypes: tuple[str, ...] = ()  # empty: every dtype
    opsets: tuple[int, int] | None = None  # None: every opset
    when: str | None = None  # its condition on the arguments, as written
    runtime: str | None = None  # the model exports, but this runtime cannot run it


@dataclass(frozen=True, slots=True)
class Sample:
    """Arguments to call the op with in tests, e.g. `t(2, 3), t(3), alpha=2` (see
    `torchonnx.testing`), where they apply."""

    args: str
    spec: str  # file:line
    opsets: tuple[int, int] | None = None  # None: every opset
    dtypes: tuple[str, ...] = ()  # empty: every dtype of the entry
    overload: str | None = None  # call this overload instead of the entry's key


@dataclass(frozen=True, slots=True)
class LimitInfo:
    """A limit of common.yaml: dtypes no graph can hold at some opsets, or that a runtime
    cannot always run (`runtime`), whatever the op."""

    dtypes: tuple[str, ...]
    opsets: tuple[int, int]
    reason: str
    spec: str  # file:line
    runtime: str | None = None


@dataclass(frozen=True, slots=True)
class EntryInfo:
    key: str
    spec: str  # file:line of the entry
    doc: str
    schemas: dict[str, str]  # every overload of the entry -> its ATen schema
    lowerings: tuple[LoweringInfo, ...]  # in the entry's order: `Lowering.index`
    gaps: tuple[GapInfo, ...] = ()  # in the entry's order: `Gap.index`
    reasons: tuple[str, ...] = ()  # why a dtype does not run somewhere: dtype plans index it
    samples: tuple[Sample, ...] = ()
    shape: str = "infer"  # the shape rule, as written
    indices: str | None = None  # how the last output, an index tensor, points into an input
    # why the output values are unspecified (torch.empty): only dtypes and shapes are compared
    unspecified_values: str | None = None


def entries() -> dict[str, EntryInfo]:
    """Every entry, by its key (the first overload it names)."""
    from torchonnx.generated.catalog import ENTRIES

    return ENTRIES


def entry(key: str) -> EntryInfo:
    """The entry whose key is `key` (KeyError if no spec has it)."""
    return entries()[key]


def samples(key: str) -> tuple[Sample, ...]:
    """The samples of entry `key`."""
    return entry(key).samples


def lowering(key: str, index: int) -> LoweringInfo:
    """Lowering `index` (`Lowering.index`) of entry `key`."""
    return entry(key).lowerings[index]


def gap(key: str, index: int) -> GapInfo:
    """Gap `index` (`Gap.index`) of entry `key`."""
    return entry(key).gaps[index]


def spec_location(key: str, *, lowering: int | None = None, gap: int | None = None) -> str:
    """`file:line` where the spec writes entry `key`, or its lowering or gap of that index."""
    info = entry(key)
    if lowering is not None:
        return info.lowerings[lowering].spec
    if gap is not None:
        return info.gaps[gap].spec
    return info.spec


def limits() -> tuple[LimitInfo, ...]:
    """common.yaml's limits, in its order (`Limit.index`)."""
    from torchonnx.generated.catalog import LIMITS

    return LIMITS


def runtime_limit(runtime: str, dtype: str, opset: int) -> LimitInfo | None:
    """The limit by which `runtime` cannot always run `dtype` at `opset`, or None."""
    for limit in limits():
        if (
            limit.runtime == runtime
            and dtype in limit.dtypes
            and limit.opsets[0] <= opset <= limit.opsets[1]
        ):
            return limit
    return None


def dropped() -> dict[str, str]:
    """Overloads whose calls are left out of the graph (the checks torch.export adds), and why."""
    from torchonnx.generated.catalog import DROPPED

    return DROPPED
