"""The spec model: what the YAML says, parsed once into frozen dataclasses.

Every object keeps the `Location` it was written at. Nothing here knows about torch or ONNX
schemas; `analyze` checks the model against them.
"""

from __future__ import annotations

from dataclasses import dataclass

from torchonnx.codegen.errors import Location
from torchonnx.opsets import span


@dataclass(frozen=True)
class OpsetRange:
    lo: int
    hi: int

    def __contains__(self, opset: object) -> bool:
        return isinstance(opset, int) and self.lo <= opset <= self.hi

    def __str__(self) -> str:
        return span(range(self.lo, self.hi + 1))

    def __iter__(self):
        return iter(range(self.lo, self.hi + 1))


@dataclass(frozen=True)
class Source:
    """Text of an `emit` body or a `when` condition, and where each of its lines sits."""

    text: str
    loc: Location  # of the first character of the text
    line_cols: tuple[int, ...]  # 1-based file column where each line of the text starts

    def where(self, line: int, col: int) -> Location:
        """Location of `col` (0-based) on `line` (1-based) of the text."""
        index = min(max(line, 1), len(self.line_cols)) - 1
        return Location(self.loc.file, self.loc.line + index, self.line_cols[index] + col)


@dataclass(frozen=True)
class Limit:
    """A dtype no lowering can handle at some opsets, for a reason that holds everywhere."""

    dtypes: tuple[str, ...]
    opsets: OpsetRange
    reason: str
    loc: Location
    runtime: str | None = None  # the model exports, but this runtime cannot always run it


@dataclass(frozen=True)
class Common:
    """specs/common.yaml: the opsets targeted, named dtype sets and global dtype limits."""

    oldest: int
    newest: int
    sets: dict[str, tuple[str, ...]]
    limits: tuple[Limit, ...]
    loc: Location


@dataclass(frozen=True)
class Call:
    """A `name(arg, ...)` rule such as `default(self, other)` or `broadcast(self, other)`."""

    name: str
    args: tuple[str, ...]
    text: str
    loc: Location


@dataclass(frozen=True)
class Gap:
    """A declared gap: what is not supported, and why."""

    reason: str
    loc: Location
    dtypes: tuple[str, ...] = ()  # empty: every dtype
    opsets: OpsetRange | None = None  # None: every opset
    when: Source | None = None  # decided while exporting
    runtime: str | None = None  # the model exports, but this runtime cannot run it


@dataclass(frozen=True)
class Block:
    """One lowering: from opset `since`, when `when` holds, emit `emit`."""

    since: int
    emit: Source
    loc: Location
    when: Source | None = None
    until: int | None = None  # the last opset, when the block says (a `when` block may)


@dataclass(frozen=True)
class Sample:
    """Arguments to call the op with in tests, e.g. `t(2, 3), t(3), alpha=2`."""

    text: str
    loc: Location
    opsets: OpsetRange | None = None
    dtypes: tuple[str, ...] = ()
    overload: str | None = None  # call this overload instead of the entry's first


@dataclass(frozen=True)
class Entry:
    """One spec entry: ATen overloads and how to lower them, per opset."""

    key: str
    loc: Location
    family: str  # the spec file's stem
    also: tuple[tuple[str, Location], ...]
    doc: str
    dtypes: tuple[str, ...]
    dtypes_text: str
    dtypes_loc: Location
    promote: Call | None
    input_dtypes: dict[str, tuple[str, ...]]
    widen: dict[str, str]
    shape: Call
    indices: Call | None  # how the last output, an index tensor, points into an input
    blocks: tuple[Block, ...]
    gaps: tuple[Gap, ...]
    samples: tuple[Sample, ...]
    compute_in: str | None = None  # a ScalarType argument that, when given, sets the compute dtype
    compute_in_loc: Location | None = None
    schema: str | None = None  # the declared schema of a Python callable (`operator.add`)
    drop: str | None = None  # why calls of this op are left out of the graph (no lowering)
    # why the op's output values are unspecified (torch.empty): tests compare dtypes and shapes
    unspecified_values: str | None = None

    @property
    def overloads(self) -> tuple[str, ...]:
        return (self.key, *(name for name, _ in self.also))
