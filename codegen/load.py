"""Reading spec files: YAML with locations into the spec model.

ruamel.yaml keeps the line and column of every key and value, and rejects duplicate keys.
Every unknown key, missing key and value of the wrong shape is an error at its location.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

from torchonnx.codegen.errors import Diagnostics, Location, SpecError, spec_name
from torchonnx.codegen.model import (
    Block,
    Call,
    Common,
    Entry,
    Gap,
    Limit,
    OpsetRange,
    Sample,
    Source,
)
from torchonnx.dtypes import DTYPE_NAMES

COMMON_FILE = "common.yaml"
ENTRY_KEYS = (
    "also",
    "schema",
    "doc",
    "drop",
    "dtypes",
    "promote",
    "input_dtypes",
    "widen",
    "compute_in",
    "shape",
    "indices",
    "unspecified_values",
    "lower",
    "gaps",
    "samples",
)
BLOCK_KEYS = ("since", "until", "when", "emit")
# What a dropped entry (`drop: reason`) may say besides its reason.
DROP_KEYS = ("also", "schema", "doc", "drop")
GAP_KEYS = ("reason", "dtypes", "opsets", "when", "runtime")
SAMPLE_KEYS = ("args", "opsets", "dtypes", "overload")
COMMON_KEYS = ("opsets", "dtypes", "limits")
LIMIT_KEYS = ("dtypes", "opsets", "reason", "runtime")
RUNTIMES = ("onnxruntime",)
_CALL = re.compile(r"^\s*([A-Za-z_]\w*)\s*\(\s*(.*?)\s*\)\s*$")
_OPSETS = re.compile(r"^\s*(\d*)\s*\.\.\s*(\d*)\s*$")


class _File:
    """One spec file being read: its text (for block-scalar columns) and its errors."""

    def __init__(self, path: Path, diags: Diagnostics) -> None:
        self.path = path
        self.name = spec_name(path)
        self.diags = diags
        self.text = path.read_text(encoding="utf-8")
        self.lines = self.text.splitlines()

    def loc(self, line0: int, col0: int) -> Location:
        return Location(self.name, line0 + 1, col0 + 1)

    def key_loc(self, node: CommentedMap, key: str) -> Location:
        return self.loc(*node.lc.key(key))

    def value_loc(self, node: CommentedMap, key: str) -> Location:
        return self.loc(*node.lc.value(key))

    def item_loc(self, node: CommentedSeq, index: int) -> Location:
        return self.loc(*node.lc.item(index))

    def load(self) -> Any:
        yaml = YAML(typ="rt")
        yaml.allow_duplicate_keys = False
        try:
            return yaml.load(self.text)
        except DuplicateKeyError as err:
            raise self._duplicate(err) from None
        except MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            where = self.loc(mark.line, mark.column) if mark else Location(self.name, 1)
            raise SpecError(where, (err.problem or str(err)).strip()) from None

    def _duplicate(self, err: DuplicateKeyError) -> SpecError:
        """The error at the repeated key, naming where the key is first written.

        ruamel marks the repeat and the start of its mapping, and dumps both values (a whole
        entry when an entry is repeated); the first occurrence is found in the node tree.
        """
        mark, mapping = err.problem_mark, err.context_mark
        for node in _mappings(YAML(typ="rt").compose(self.text)):
            start = node.start_mark
            if (start.line, start.column) != (mapping.line, mapping.column):
                continue
            keys = [k for k, _ in node.value]
            repeat = next(
                (
                    k
                    for k in keys
                    if (k.start_mark.line, k.start_mark.column) == (mark.line, mark.column)
                ),
                None,
            )
            if repeat is None:
                continue
            first = next(k for k in keys if k.tag == repeat.tag and k.value == repeat.value)
            return SpecError(
                self.loc(mark.line, mark.column),
                f"duplicate key `{repeat.value}`; the first is at line "
                f"{first.start_mark.line + 1}, column {first.start_mark.column + 1}",
            )
        return SpecError(self.loc(mark.line, mark.column), "duplicate key")

    def source(self, node: CommentedMap, key: str) -> Source:
        """A string value as a Source whose locations point into this file."""
        value = node[key]
        line0, col0 = node.lc.value(key)
        where = self.loc(line0, col0)
        if not isinstance(value, str):
            raise SpecError(where, f"`{key}` must be text (Python), not {_kind(value)}")
        if isinstance(value, FoldedScalarString):
            raise SpecError(
                where, f"write `{key}` as a literal block (`|`), not a folded one (`>`)"
            )
        if isinstance(value, LiteralScalarString):
            lines = value.rstrip("\n").split("\n")
            cols = []
            for k in range(len(lines)):
                raw = self.lines[line0 + 1 + k] if line0 + 1 + k < len(self.lines) else ""
                indent = len(raw) - len(raw.lstrip(" "))
                cols.append(indent - (len(lines[k]) - len(lines[k].lstrip(" "))) + 1)
            return Source(value.rstrip("\n"), Location(self.name, line0 + 2, cols[0]), tuple(cols))
        raw = self.lines[line0] if line0 < len(self.lines) else ""
        quoted = raw[col0 : col0 + 1] in ("'", '"')
        return Source(
            str(value), Location(self.name, line0 + 1, col0 + 1 + quoted), (col0 + 1 + quoted,)
        )


def _mappings(node: Node | None) -> Iterator[MappingNode]:
    """Every mapping node of a composed YAML tree."""
    if isinstance(node, MappingNode):
        yield node
        for key, value in node.value:
            yield from _mappings(key)
            yield from _mappings(value)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            yield from _mappings(item)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"


def _check_keys(
    f: _File,
    node: Any,
    allowed: Iterable[str],
    what: str,
    where: Location,
    required: Iterable[str] = (),
) -> bool:
    """Report unknown and missing keys; False if `node` is not a mapping or lacks a key."""
    if not isinstance(node, CommentedMap):
        f.diags.error(where, f"{what} must be a mapping, not {_kind(node)}")
        return False
    allowed = tuple(allowed)
    for key in node:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            f.diags.error(
                f.key_loc(node, key),
                f"unknown key `{key}` in {what}{hint} (allowed: {', '.join(allowed)})",
            )
    complete = True
    for key in required:
        if key not in node:
            f.diags.error(where, f"{what} needs `{key}`")
            complete = False
    return complete


def _opsets(f: _File, node: CommentedMap, key: str) -> OpsetRange:
    """`13`, `7..12`, `13..` or `..12` (open ends are filled in later)."""
    value, where = node[key], f.value_loc(node, key)
    if isinstance(value, int) and not isinstance(value, bool):
        return OpsetRange(value, value)
    match = _OPSETS.match(str(value)) if isinstance(value, str) else None
    if not match or not (match.group(1) or match.group(2)):
        raise SpecError(
            where, f"`{key}` is an opset or a range like 7..12, 13.. or ..12, not {_kind(value)}"
        )
    return OpsetRange(int(match.group(1) or 0), int(match.group(2) or 10**6))


def _call(f: _File, node: CommentedMap, key: str) -> Call:
    value, where = node[key], f.value_loc(node, key)
    match = _CALL.match(value) if isinstance(value, str) else None
    if isinstance(value, str) and re.fullmatch(r"\s*[A-Za-z_]\w*\s*", value):
        return Call(value.strip(), (), value.strip(), where)
    if not match:
        raise SpecError(where, f"`{key}` is written `rule(arg, ...)`, not {_kind(value)}")
    args = tuple(a.strip() for a in match.group(2).split(",")) if match.group(2) else ()
    for a in args:
        if not re.fullmatch(r"[A-Za-z_]\w*", a):
            raise SpecError(where, f"`{key}`: {a!r} is not an argument name")
    return Call(match.group(1), args, value.strip(), where)


class DtypeSets:
    """Named dtype sets of common.yaml, resolved to dtype names."""

    def __init__(self, sets: dict[str, tuple[str, ...]]) -> None:
        self.sets = sets

    def resolve(self, f: _File, value: Any, where: Location, what: str) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise SpecError(
                where, f"{what} is a dtype, a set name or a list of them, not {_kind(value)}"
            )
        out: set[str] = set()
        for i, item in enumerate(items):
            loc = f.item_loc(value, i) if isinstance(value, CommentedSeq) else where
            if item in DTYPE_NAMES:
                out.add(item)
            elif item in self.sets:
                out.update(self.sets[item])
            else:
                names = [*DTYPE_NAMES, *self.sets]
                close = difflib.get_close_matches(str(item), names, n=1)
                hint = f"; did you mean `{close[0]}`?" if close else ""
                raise SpecError(loc, f"unknown dtype or dtype set `{item}`{hint}")
        return tuple(d for d in DTYPE_NAMES if d in out)


def load_common(path: Path, diags: Diagnostics) -> tuple[Common, DtypeSets] | None:
    f = _File(path, diags)
    start = Location(f.name, 1)
    try:
        doc = f.load()
    except SpecError as err:
        diags.errors.append(err)
        return None
    if not _check_keys(f, doc, COMMON_KEYS, COMMON_FILE, start, required=COMMON_KEYS):
        return None
    oldest, newest = 7, 7
    opsets = doc.get("opsets")
    if _check_keys(
        f,
        opsets,
        ("oldest", "newest"),
        "`opsets`",
        f.value_loc(doc, "opsets"),
        required=("oldest", "newest"),
    ):
        oldest, newest = int(opsets.get("oldest", 7)), int(opsets.get("newest", 7))
        if oldest > newest:
            diags.error(
                f.value_loc(doc, "opsets"), f"oldest opset {oldest} is newer than newest {newest}"
            )
    sets: dict[str, tuple[str, ...]] = {}
    raw_sets = doc.get("dtypes")
    if _check_keys(
        f, raw_sets, [str(k) for k in raw_sets or {}], "`dtypes`", f.value_loc(doc, "dtypes")
    ):
        resolver = DtypeSets(sets)
        for name in raw_sets:  # sets may use sets defined above them
            with diags.collect():
                if name in DTYPE_NAMES:
                    raise SpecError(
                        f.key_loc(raw_sets, name), f"`{name}` is a dtype; a set needs another name"
                    )
                sets[name] = resolver.resolve(
                    f, raw_sets[name], f.value_loc(raw_sets, name), f"set `{name}`"
                )
    limits: list[Limit] = []
    raw_limits = doc.get("limits") or []
    for i, item in enumerate(raw_limits):
        where = f.item_loc(raw_limits, i)
        if not _check_keys(f, item, LIMIT_KEYS, "a limit", where, required=("dtypes", "reason")):
            continue
        with diags.collect():
            runtime = item.get("runtime")
            if runtime is not None and runtime not in RUNTIMES:
                raise SpecError(
                    f.value_loc(item, "runtime"),
                    f"`runtime` names a runtime the tests run: {', '.join(RUNTIMES)}",
                )
            limits.append(
                Limit(
                    dtypes=DtypeSets(sets).resolve(
                        f, item["dtypes"], f.value_loc(item, "dtypes"), "`dtypes`"
                    ),
                    opsets=(
                        _clip(_opsets(f, item, "opsets"), oldest, newest)
                        if "opsets" in item
                        else OpsetRange(oldest, newest)
                    ),
                    reason=_text(f, item, "reason"),
                    loc=where,
                    runtime=runtime,
                )
            )
    return Common(oldest, newest, sets, tuple(limits), start), DtypeSets(sets)


def _clip(r: OpsetRange, oldest: int, newest: int) -> OpsetRange:
    return OpsetRange(max(r.lo, oldest), min(r.hi, newest))


def _text(f: _File, node: CommentedMap, key: str) -> str:
    value = node[key]
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f.value_loc(node, key), f"`{key}` must be text, not {_kind(value)}")
    return " ".join(value.split())


def load_family(path: Path, common: Common, sets: DtypeSets, diags: Diagnostics) -> list[Entry]:
    """The entries of one op-family file."""
    f = _File(path, diags)
    try:
        doc = f.load()
    except SpecError as err:
        diags.errors.append(err)
        return []
    if doc is None:
        return []
    if not isinstance(doc, CommentedMap):
        diags.error(
            Location(f.name, 1),
            f"a spec file is a mapping of ATen overloads to entries, not {_kind(doc)}",
        )
        return []
    entries = []
    for key in doc:
        with diags.collect():
            entry = _entry(f, doc, str(key), common, sets)
            if entry is not None:
                entries.append(entry)
    return entries


def _entry(f: _File, doc: CommentedMap, key: str, common: Common, sets: DtypeSets) -> Entry | None:
    node, where = doc[key], f.key_loc(doc, key)
    errors_before = len(f.diags.errors)
    if isinstance(node, CommentedMap) and "drop" in node:
        return _dropped(f, node, key, where)
    if not _check_keys(
        f, node, ENTRY_KEYS, f"entry {key}", where, required=("dtypes", "shape", "lower")
    ):
        return None

    also = _also(f, node)
    dtypes = sets.resolve(f, node["dtypes"], f.value_loc(node, "dtypes"), "`dtypes`")
    promote = _call(f, node, "promote") if "promote" in node else None
    shape = _call(f, node, "shape")
    indices = _call(f, node, "indices") if "indices" in node else None

    input_dtypes: dict[str, tuple[str, ...]] = {}
    if "input_dtypes" in node:
        raw = node["input_dtypes"]
        if _check_keys(
            f, raw, [str(k) for k in raw or {}], "`input_dtypes`", f.value_loc(node, "input_dtypes")
        ):
            for arg in raw:
                with f.diags.collect():
                    input_dtypes[str(arg)] = sets.resolve(
                        f, raw[arg], f.value_loc(raw, arg), f"input_dtypes of {arg}"
                    )

    widen: dict[str, str] = {}
    if "widen" in node:
        raw = node["widen"]
        if _check_keys(f, raw, [str(k) for k in raw or {}], "`widen`", f.value_loc(node, "widen")):
            for narrow in raw:
                with f.diags.collect():
                    wide = raw[narrow]
                    for name, loc in (
                        (narrow, f.key_loc(raw, narrow)),
                        (wide, f.value_loc(raw, narrow)),
                    ):
                        if name not in DTYPE_NAMES:
                            raise SpecError(
                                loc,
                                f"`widen` maps a dtype to a wider dtype; `{name}` is not a dtype",
                            )
                    if narrow not in dtypes:
                        raise SpecError(
                            f.key_loc(raw, narrow),
                            f"`widen` names {narrow}, which is not in this entry's dtypes",
                        )
                    widen[str(narrow)] = str(wide)

    compute_in = None
    if "compute_in" in node:
        compute_in = node["compute_in"]
        if not isinstance(compute_in, str) or not compute_in.isidentifier():
            raise SpecError(
                f.value_loc(node, "compute_in"),
                "`compute_in` names the ScalarType argument that sets the compute dtype",
            )
    schema = _schema(f, node)
    blocks = _blocks(f, node, common)
    gaps = _gaps(f, node, common, sets)
    samples = _samples(f, node, common, sets)
    doc_text = _text(f, node, "doc") if "doc" in node else ""
    if len(f.diags.errors) > errors_before:
        return None
    return Entry(
        key=key,
        loc=where,
        family=f.path.stem,
        also=also,
        doc=doc_text,
        dtypes=dtypes,
        dtypes_text=(
            node["dtypes"] if isinstance(node["dtypes"], str) else ", ".join(node["dtypes"])
        ),
        dtypes_loc=f.value_loc(node, "dtypes"),
        promote=promote,
        input_dtypes=input_dtypes,
        widen=widen,
        shape=shape,
        indices=indices,
        unspecified_values=(
            _text(f, node, "unspecified_values") if "unspecified_values" in node else None
        ),
        blocks=blocks,
        gaps=gaps,
        samples=samples,
        compute_in=compute_in,
        compute_in_loc=f.value_loc(node, "compute_in") if compute_in else None,
        schema=schema,
    )


def _schema(f: _File, node: CommentedMap) -> str | None:
    if "schema" not in node:
        return None
    value = node["schema"]
    if not isinstance(value, str) or "(" not in value or "->" not in value:
        raise SpecError(
            f.value_loc(node, "schema"),
            "`schema` is written like an ATen schema: `add(Tensor a, Tensor b) -> Tensor`",
        )
    return " ".join(value.split())


def _also(f: _File, node: CommentedMap) -> tuple[tuple[str, Location], ...]:
    """The other overloads an entry covers (`also: [...]`), each with its location."""
    if "also" not in node:
        return ()
    raw = node["also"]
    if not isinstance(raw, CommentedSeq) or not all(isinstance(a, str) for a in raw):
        raise SpecError(f.value_loc(node, "also"), "`also` is a list of ATen overloads")
    return tuple((a, f.item_loc(raw, i)) for i, a in enumerate(raw))


def _dropped(f: _File, node: CommentedMap, key: str, where: Location) -> Entry | None:
    """An entry whose calls compute nothing the graph needs: `drop: reason`."""
    if not _check_keys(f, node, DROP_KEYS, f"dropped entry {key}", where):
        return None
    also = _also(f, node)
    return Entry(
        key=key,
        loc=where,
        family=f.path.stem,
        also=also,
        doc=_text(f, node, "doc") if "doc" in node else "",
        dtypes=(),
        dtypes_text="",
        dtypes_loc=where,
        promote=None,
        input_dtypes={},
        widen={},
        shape=Call("infer", (), "infer", where),
        indices=None,
        blocks=(),
        gaps=(),
        samples=(),
        schema=_schema(f, node),
        drop=_text(f, node, "drop"),
    )


def _blocks(f: _File, node: CommentedMap, common: Common) -> tuple[Block, ...]:
    raw = node["lower"]
    if not isinstance(raw, CommentedSeq) or not raw:
        raise SpecError(
            f.value_loc(node, "lower"),
            "`lower` is a list of lowerings, each with `since` and `emit`",
        )
    blocks = []
    for i, item in enumerate(raw):
        where = f.item_loc(raw, i)
        if not _check_keys(f, item, BLOCK_KEYS, "a lowering", where, required=("since", "emit")):
            continue
        with f.diags.collect():
            since = item["since"]
            if not isinstance(since, int) or isinstance(since, bool):
                raise SpecError(
                    f.value_loc(item, "since"), f"`since` is an opset number, not {_kind(since)}"
                )
            if not common.oldest <= since <= common.newest:
                raise SpecError(
                    f.value_loc(item, "since"),
                    f"opset {since} is outside the opsets torchonnx targets ({common.oldest}..{common.newest}, common.yaml)",
                )
            until = item.get("until")
            if until is not None and (
                not isinstance(until, int) or isinstance(until, bool) or not since <= until
            ):
                raise SpecError(
                    f.value_loc(item, "until"),
                    f"`until` is the last opset of the lowering, {since} or later, not {_kind(until)}",
                )
            if until is not None and "when" not in item:
                raise SpecError(
                    f.key_loc(item, "until"),
                    "only a `when` lowering takes `until`; an unconditional one ends where the "
                    "next unconditional one begins",
                )
            blocks.append(
                Block(
                    since=since,
                    emit=f.source(item, "emit"),
                    loc=where,
                    when=f.source(item, "when") if "when" in item else None,
                    until=min(until, common.newest) if until is not None else None,
                )
            )
    return tuple(blocks)


def _gaps(f: _File, node: CommentedMap, common: Common, sets: DtypeSets) -> tuple[Gap, ...]:
    raw = node.get("gaps") or []
    if "gaps" in node and not isinstance(raw, CommentedSeq):
        raise SpecError(f.value_loc(node, "gaps"), "`gaps` is a list of gaps, each with a `reason`")
    gaps = []
    for i, item in enumerate(raw):
        where = f.item_loc(raw, i)
        if not _check_keys(f, item, GAP_KEYS, "a gap", where, required=("reason",)):
            continue
        with f.diags.collect():
            runtime = item.get("runtime")
            if runtime is not None and runtime not in RUNTIMES:
                raise SpecError(
                    f.value_loc(item, "runtime"),
                    f"`runtime` names a runtime the tests run: {', '.join(RUNTIMES)}",
                )
            if not any(k in item for k in ("dtypes", "opsets", "when", "runtime")):
                raise SpecError(
                    where, "a gap says what is missing: `dtypes`, `opsets`, `when` or `runtime`"
                )
            gaps.append(
                Gap(
                    reason=_text(f, item, "reason"),
                    loc=where,
                    dtypes=(
                        sets.resolve(f, item["dtypes"], f.value_loc(item, "dtypes"), "`dtypes`")
                        if "dtypes" in item
                        else ()
                    ),
                    opsets=(
                        _clip(_opsets(f, item, "opsets"), common.oldest, common.newest)
                        if "opsets" in item
                        else None
                    ),
                    when=f.source(item, "when") if "when" in item else None,
                    runtime=runtime,
                )
            )
    return tuple(gaps)


def _samples(f: _File, node: CommentedMap, common: Common, sets: DtypeSets) -> tuple[Sample, ...]:
    raw = node.get("samples") or []
    if "samples" in node and not isinstance(raw, CommentedSeq):
        raise SpecError(f.value_loc(node, "samples"), "`samples` is a list of argument lists")
    samples = []
    for i, item in enumerate(raw):
        where = f.item_loc(raw, i)
        if isinstance(item, str):
            samples.append(Sample(item.strip(), where))
            continue
        if not _check_keys(f, item, SAMPLE_KEYS, "a sample", where, required=("args",)):
            continue
        with f.diags.collect():
            samples.append(
                Sample(
                    text=_text(f, item, "args"),
                    loc=f.value_loc(item, "args"),
                    opsets=(
                        _clip(_opsets(f, item, "opsets"), common.oldest, common.newest)
                        if "opsets" in item
                        else None
                    ),
                    dtypes=(
                        sets.resolve(f, item["dtypes"], f.value_loc(item, "dtypes"), "`dtypes`")
                        if "dtypes" in item
                        else ()
                    ),
                    overload=str(item["overload"]) if "overload" in item else None,
                )
            )
    return tuple(samples)
