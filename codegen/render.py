"""Turning analyzed entries into generated files.

Decisions are made here, in Python, into small view objects; the Jinja templates only lay
them out. Files: one onnxscript module per spec family, one symbolic module per opset where a
lowering begins, the registry that the runtime dispatches through (only what dispatch reads),
the catalog (what people read: docs, schemas, samples, spec locations) and Markdown tables.

Generated code names a spec by file and ATen key, never by line: only the catalog holds line
numbers, so adding an entry adds lines elsewhere and changes none. Data that entries share
(dtype plans) is named by a hash of its content, for the same reason.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from torchonnx.codegen.analyze import Analyzed, Lowering, Segment
from torchonnx.codegen.aten import NAMED_VALUE_TYPES, NO_DEFAULT, AtenSchema, Kind
from torchonnx.codegen.files import FileManager, markdown_header, python_header
from torchonnx.codegen.model import Common, Source
from torchonnx.opsets import span

_KINDS = {
    Kind.TENSOR: "TENSOR",
    Kind.MAYBE_TENSOR: "MAYBE_TENSOR",
    Kind.TENSORS: "TENSORS",
    Kind.VALUE: "VALUE",
}


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["pyrepr"] = repr
    return env


@dataclass
class _Fn:
    name: str
    params: str
    doc: str
    body: str


@dataclass
class _Pred:
    name: str
    params: str
    expr: str


@dataclass
class _EntryView:
    key: str
    doc: str
    schemas: list[str]
    functions: list[_Fn] = field(default_factory=list)
    predicates: list[_Pred] = field(default_factory=list)


def _text(source: Source | None) -> str:
    """A condition as its spec writes it, on one line."""
    return " ".join(source.text.split()) if source else ""


def _spec_loc(loc) -> str:
    return f"{loc.file}:{loc.line}"


def _when_name(fn_name: str) -> str:
    return f"{fn_name}__when"


def _opsets(lw: Lowering) -> str:
    return span(range(lw.since, lw.until + 1))


def _doc_of(schema: AtenSchema, lw: Lowering, a: Analyzed, spec: str) -> str:
    """A function's docstring: what it lowers, and the spec file and entry it comes from."""
    cond = f", when `{_text(lw.block.when)}`" if lw.when else ""
    return f"{schema.qualname} at opsets {_opsets(lw)}{cond} ({spec}, {a.entry.key})."


def _hash_name(prefix: str, text: str) -> str:
    """A name for shared data that depends only on the data (no positions to shift)."""
    return f"{prefix}{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def _python_params(schema: AtenSchema) -> str:
    return ", ".join(p.name for p in schema.params)


def _dispatcher_name(packet: str) -> str:
    # `aten_abs`: a prefix cannot collide with Python names nor with in-place ops (`abs_`)
    return f"aten_{packet}"


def _param(p) -> str:
    parts = [repr(p.name), _KINDS[p.kind]]
    if p.default is not NO_DEFAULT:
        parts.append(repr(p.default))
    if p.kwarg_only:
        parts.append("kwarg_only=True")
    if p.aten_name != p.name:
        parts.append(f"aten_name={p.aten_name!r}")
    if p.pytype in NAMED_VALUE_TYPES:
        parts.append(f"named={p.pytype!r}")
    if p.dynamic:
        parts.append("dynamic=True")
    return f"Param({', '.join(parts)})"


def _call(name: str, args: list[str], kwargs: dict[str, str | None]) -> str:
    """`Name(arg, ..., key=value, ...)`, leaving out keywords whose value is None."""
    parts = [*args, *(f"{k}={v}" for k, v in kwargs.items() if v is not None)]
    return f"{name}({', '.join(parts)})"


def _tuple(items: list[str]) -> str:
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def _dispatch_order(a: Analyzed) -> list[Lowering]:
    """Lowerings as dispatch tries them: by `since`, highest first, then as the spec lists."""
    return sorted(a.lowerings, key=lambda lw: (-lw.since, lw.block_index))


def _variants(a: Analyzed) -> list[tuple[str, tuple[str, ...], list[str]]]:
    """The entry's overloads grouped by how they are lowered: (overload, its parameters, the
    overloads lowered exactly like it). Overloads with the same parameters that call the same
    function in every lowering are one variant; the first of them names it."""
    groups: dict[tuple, tuple[str, list[str]]] = {}
    for name, schema in a.schemas.items():
        params = tuple(_param(p) for p in schema.params)
        fns = tuple(
            lw.functions[name].alias_of or lw.functions[name].name for lw in _dispatch_order(a)
        )
        if (params, fns) in groups:
            groups[params, fns][1].append(name)
        else:
            groups[params, fns] = (name, [])
    return [(first, params, also) for (params, _), (first, also) in groups.items()]


def _calls(lw: Lowering) -> tuple[str, ...]:
    """The overloads a lowering's body calls, each once, in order."""
    return tuple(dict.fromkeys(call.overload for call in lw.calls))


def _ops_cell(lw: Lowering) -> str:
    """What a lowering emits, for the tables: its ONNX ops, then the overloads it calls."""
    return ", ".join([*lw.onnx_ops, *(f"`{c}`" for c in _calls(lw))])


def _reasons(a: Analyzed) -> list[str]:
    """Why a dtype does not run somewhere, in the order the entry's dtype plans first say it."""
    out: list[str] = []
    for lw in sorted(a.lowerings, key=lambda lw: lw.block_index):
        for segs in lw.plan.values():
            for seg in segs:
                if seg.reason is not None and seg.reason not in out:
                    out.append(seg.reason)
    return out


class Renderer:
    def __init__(self, analyzed: list[Analyzed], common: Common, spec_dir: str) -> None:
        ordered = sorted(analyzed, key=lambda a: (a.entry.family, a.entry.loc.line))
        self.analyzed = [a for a in ordered if a.drop is None]
        self.by_key = sorted(self.analyzed, key=lambda a: a.entry.key)
        # entries whose calls are left out of the graph: names and reasons
        self.dropped = {
            name: a.drop
            for a in sorted(ordered, key=lambda a: a.entry.key)
            if a.drop is not None
            for name in a.schemas
        }
        self.common = common
        self.spec_dir = spec_dir
        self.env = _env()
        self.families = sorted({a.entry.family for a in self.analyzed})
        # the oldest opset some spec lowers at: what the exporter accepts
        self.oldest = min((lw.since for a in analyzed for lw in a.lowerings), default=common.oldest)

    def spec_file(self, family: str) -> str:
        return f"{self.spec_dir}/{family}.yaml"

    def render(self, fm: FileManager) -> None:
        for family in self.families:
            fm.add(f"onnxscript_{family}.py", self.onnxscript_module(family))
        for opset, content in self.symbolic_modules().items():
            fm.add(f"symbolic_opset{opset}.py", content)
        fm.add("registry.py", self.registry())
        fm.add("catalog.py", self.catalog())
        fm.add("__init__.py", self.package_init())
        for name, content in self.docs().items():
            fm.add(f"docs/{name}", content)

    # -- onnxscript modules ---------------------------------------------------------------
    def onnxscript_module(self, family: str) -> str:
        views = []
        uses_math = False
        spec = self.spec_file(family)
        for a in self.analyzed:
            if a.entry.family != family:
                continue
            view = _EntryView(
                key=a.entry.key,
                doc=a.entry.doc,
                schemas=[s.schema for s in a.schemas.values()],
            )
            for lw in a.lowerings:
                for name, fn in lw.functions.items():
                    if fn.alias_of:
                        continue  # the registry points at the function it shares
                    schema = a.schemas[name]
                    uses_math |= "math." in fn.onnxscript
                    view.functions.append(
                        _Fn(
                            fn.name,
                            _python_params(schema),
                            _doc_of(schema, lw, a, spec),
                            fn.onnxscript,
                        )
                    )
                if lw.when:
                    fn = lw.functions[a.entry.key]
                    uses_math |= "math." in lw.when
                    view.predicates.append(
                        _Pred(_when_name(fn.name), _python_params(a.primary), lw.when)
                    )
            for g in a.gaps:
                if g.when and g.name:
                    view.predicates.append(_Pred(g.name, _python_params(a.primary), g.when))
            views.append(view)
        return self.env.get_template("onnxscript_module.py.j2").render(
            header=python_header([spec]),
            spec=spec,
            uses_math=uses_math,
            entries=views,
        )

    # -- symbolic modules -----------------------------------------------------------------
    def symbolic_modules(self) -> dict[int, str]:
        by_opset: dict[int, list[tuple[Analyzed, Lowering]]] = defaultdict(list)
        for a in self.analyzed:
            for lw in a.lowerings:
                by_opset[lw.since].append((a, lw))
        modules = {}
        for opset, items in sorted(by_opset.items()):
            functions: list[_Fn] = []
            packets: set[str] = set()
            uses_math = False
            for a, lw in items:
                for name, fn in lw.functions.items():
                    schema = a.schemas[name]
                    packets.add(schema.name)
                    if fn.alias_of:
                        continue  # dispatch calls the function it shares
                    uses_math |= "math." in fn.symbolic
                    functions.append(
                        _Fn(
                            fn.name,
                            _python_params(schema),
                            _doc_of(schema, lw, a, self.spec_file(a.entry.family)),
                            fn.symbolic,
                        )
                    )
            dispatchers = [
                {"name": _dispatcher_name(packet.split("::")[1]), "packet": packet}
                for packet in sorted(packets)
                if "::" in packet  # torch's symbolic registry holds ATen ops only
            ]
            modules[opset] = self.env.get_template("symbolic_module.py.j2").render(
                # the spec folder, not the files: which files have a lowering here changes
                header=python_header([f"{self.spec_dir}/*.yaml"]),
                opset=opset,
                uses_math=uses_math,
                functions=functions,
                dispatchers=dispatchers,
            )
        return modules

    # -- registry -------------------------------------------------------------------------
    def dtype_set(self, dtypes: tuple[str, ...], shared: dict[str, str]) -> str:
        """The name of a shared tuple of dtypes: common.yaml's name for that set, if any."""
        text = repr(dtypes)
        named = [n for n, ds in self.common.sets.items() if ds == dtypes]
        name = "_" + re.sub(r"\W", "_", named[0]) if named else _hash_name("_d", text)
        if shared.setdefault(name, text) != text:
            raise RuntimeError(f"two dtype sets are named {name}")
        return name

    def registry(self) -> str:
        plans: dict[str, str] = {}
        dtype_sets: dict[str, str] = {}
        entries = [self._registry_entry(a, plans, dtype_sets) for a in self.by_key]
        return self.env.get_template("registry.py.j2").render(
            header=python_header([f"{self.spec_dir}/*.yaml"]),
            families=self.families,
            oldest=self.oldest,
            newest=self.common.newest,
            plans=sorted(plans.items()),
            dtype_sets=sorted(dtype_sets.items()),
            entries=entries,
            dropped=sorted(self.dropped),
            limits=[
                _call(
                    "Limit",
                    [str(i), repr(limit.dtypes), repr((limit.opsets.lo, limit.opsets.hi))],
                    {},
                )
                for i, limit in enumerate(self.common.limits)
                if not limit.runtime
            ],
            kinds=sorted(
                {
                    _KINDS[p.kind]
                    for a in self.analyzed
                    for s in a.schemas.values()
                    for p in s.params
                }
            ),
        )

    def _registry_entry(
        self, a: Analyzed, plans: dict[str, str], dtype_sets: dict[str, str]
    ) -> dict:
        e = a.entry
        family = f"_{e.family}"
        variants = _variants(a)
        reasons = {r: i for i, r in enumerate(_reasons(a))}
        position = {id(lw): i for i, lw in enumerate(a.lowerings)}  # the catalog's order
        lowerings = []
        for lw in _dispatch_order(a):
            fns = [
                f"{family}.{lw.functions[name].alias_of or lw.functions[name].name}"
                for name, _, _ in variants
            ]
            segments = {
                dtype: _tuple(
                    [
                        repr(
                            (s.lo, s.hi, s.compute, None if s.reason is None else reasons[s.reason])
                        )
                        for s in segs
                    ]
                )
                for dtype, segs in lw.plan.items()
            }
            plan = _call(
                "Plan",
                ["{" + ", ".join(f"{d!r}: {segs}" for d, segs in segments.items()) + "}"],
                {"cast_back": repr(lw.cast_back) if lw.cast_back else None},
            )
            name = _hash_name("_p", plan)
            if plans.setdefault(name, plan) != plan:
                raise RuntimeError(f"two dtype plans hash to {name}")
            when = f"{family}.{_when_name(lw.functions[e.key].name)}" if lw.when else None
            lowerings.append(
                _call(
                    "Lowering",
                    [str(position[id(lw)]), str(lw.since), str(lw.until), _tuple(fns), name],
                    {"when": when},
                )
            )
        gaps = [
            _call(
                "Gap",
                [str(i)],
                {
                    "dtypes": repr(g.gap.dtypes) if g.gap.dtypes else None,
                    "opsets": (
                        repr((g.gap.opsets.lo, g.gap.opsets.hi))
                        if g.gap.opsets is not None
                        else None
                    ),
                    "when": f"{family}.{g.name}" if g.name else None,
                    "runtime": repr(g.gap.runtime) if g.gap.runtime else None,
                },
            )
            for i, g in enumerate(a.gaps)
            if g.gap.when is not None or g.gap.runtime is not None  # others are in the plans
        ]
        return {
            "key": e.key,
            "variants": [
                _call(
                    "Overload",
                    [repr(name), _tuple(list(params)) if params else "()"],
                    {"also": _tuple([repr(n) for n in also]) if also else None},
                )
                for name, params, also in variants
            ],
            "lowerings": lowerings,
            "options": {
                "dtypes": self.dtype_set(e.dtypes, dtype_sets),
                "promote": repr(a.promote_kind) if a.promote_kind else None,
                "promote_args": repr(a.promote_args) if a.promote_args else None,
                "group": repr(a.group) if a.group else None,
                "dtype_param": repr(a.dtype_param) if a.dtype_param else None,
                "input_dtypes": repr(e.input_dtypes) if e.input_dtypes else None,
                "gaps": _tuple(gaps) if gaps else None,
            },
        }

    # -- catalog --------------------------------------------------------------------------
    def catalog(self) -> str:
        return self.env.get_template("catalog.py.j2").render(
            header=python_header([f"{self.spec_dir}/*.yaml"]),
            limits=[
                _call(
                    "LimitInfo",
                    [
                        repr(limit.dtypes),
                        repr((limit.opsets.lo, limit.opsets.hi)),
                        repr(limit.reason),
                        repr(_spec_loc(limit.loc)),
                    ],
                    {"runtime": repr(limit.runtime) if limit.runtime else None},
                )
                for limit in self.common.limits
            ],
            entries=[self._catalog_entry(a) for a in self.by_key],
            dropped=self.dropped,
        )

    def _catalog_entry(self, a: Analyzed) -> dict:
        e = a.entry
        lowerings = [
            _call(
                "LoweringInfo",
                [repr(_spec_loc(lw.block.loc)), str(lw.since), str(lw.until), repr(lw.onnx_ops)],
                {
                    "when": repr(_text(lw.block.when)) if lw.when else None,
                    "calls": repr(calls) if (calls := _calls(lw)) else None,
                },
            )
            for lw in a.lowerings  # the registry names each by its position here
        ]
        gaps = [
            _call(
                "GapInfo",
                [repr(g.gap.reason), repr(_spec_loc(g.gap.loc))],
                {
                    "dtypes": repr(g.gap.dtypes) if g.gap.dtypes else None,
                    "opsets": (
                        repr((g.gap.opsets.lo, g.gap.opsets.hi))
                        if g.gap.opsets is not None
                        else None
                    ),
                    "when": repr(_text(g.gap.when)) if g.gap.when else None,
                    "runtime": repr(g.gap.runtime) if g.gap.runtime else None,
                },
            )
            for g in a.gaps
        ]
        samples = [
            _call(
                "Sample",
                [repr(s.text), repr(_spec_loc(s.loc))],
                {
                    "opsets": repr((s.opsets.lo, s.opsets.hi)) if s.opsets is not None else None,
                    "dtypes": repr(s.dtypes) if s.dtypes else None,
                    "overload": repr(s.overload) if s.overload else None,
                },
            )
            for s in e.samples
        ]
        return {
            "key": e.key,
            "spec": repr(_spec_loc(e.loc)),
            "doc": repr(e.doc),
            "schemas": {name: repr(s.schema) for name, s in a.schemas.items()},
            "lowerings": lowerings,
            "gaps": gaps,
            "reasons": [repr(r) for r in _reasons(a)],
            "samples": samples,
            "shape": repr(e.shape.text),
            "indices": repr(e.indices.text) if e.indices else None,
            "unspecified_values": (repr(e.unspecified_values) if e.unspecified_values else None),
        }

    def package_init(self) -> str:
        return self.env.get_template("package_init.py.j2").render(
            header=python_header([f"{self.spec_dir}/*.yaml"])
        )

    # -- docs -----------------------------------------------------------------------------
    def docs(self) -> dict[str, str]:
        header = markdown_header([f"{self.spec_dir}/*.yaml"])
        rows = []
        for a in self.by_key:
            family = a.entry.family
            for lw in sorted(a.lowerings, key=lambda lw: (lw.since, lw.block_index)):
                rows.append(
                    {
                        "overloads": _overload_cell(a),
                        "opsets": _opsets(lw),
                        "when": f"`{_text(lw.block.when)}`" if lw.when else "",
                        "dtypes": _dtype_summary(lw.plan, lw.since, lw.until),
                        "ops": _ops_cell(lw),
                        "gaps": _gap_cell(a),
                        # by file, not line: a line number would change with every entry above
                        "spec": f"[{family}.yaml](../../{self.spec_file(family)})",
                    }
                )
        overloads = sum(len(a.schemas) for a in self.analyzed)
        docs = {
            "operators.md": self.env.get_template("operators.md.j2").render(
                header=header,
                rows=rows,
                dropped=self.dropped,
                entries=len(self.analyzed),
                overloads=overloads,
                oldest=self.oldest,
                newest=self.common.newest,
                opsets=list(range(self.oldest, self.common.newest + 1)),
                limits=[
                    {
                        "dtypes": limit.dtypes,
                        "runtime": limit.runtime,
                        "opsets": str(limit.opsets),
                        "reason": limit.reason,
                    }
                    for limit in self.common.limits
                ],
            )
        }
        for opset in range(self.oldest, self.common.newest + 1):
            at = []
            for a in self.by_key:
                for lw in sorted(a.lowerings, key=lambda lw: (lw.since, lw.block_index)):
                    if lw.since <= opset <= lw.until:
                        at.append(
                            {
                                "overloads": _overload_cell(a),
                                "since": lw.since,
                                "when": f"`{_text(lw.block.when)}`" if lw.when else "",
                                "dtypes": _dtype_at(lw.plan, opset),
                                "ops": _ops_cell(lw),
                                "gaps": _gap_cell(a),
                            }
                        )
            docs[f"opset{opset}.md"] = self.env.get_template("opset.md.j2").render(
                header=header, opset=opset, rows=at
            )
        return docs


def _overload_cell(a: Analyzed) -> str:
    names = [f"`{a.entry.key}`"] + [f"`{n}`" for n in a.schemas if n != a.entry.key]
    return "<br>".join(names)


def _gap_cell(a: Analyzed) -> str:
    parts = []
    for g in a.gaps:
        gap = g.gap
        scope = []
        if gap.dtypes:
            scope.append(", ".join(gap.dtypes))
        if gap.opsets is not None:
            scope.append(f"opsets {gap.opsets}")
        if gap.when:
            scope.append(f"when `{_text(gap.when)}`")
        if gap.runtime:
            scope.append(f"on {gap.runtime}")
        parts.append(f"{'; '.join(scope)}: {gap.reason}")
    return "<br>".join(parts)


def _dtype_summary(plan: dict[str, tuple[Segment, ...]], since: int, until: int) -> str:
    """`float32, float64; bfloat16 (from 13); int8, uint8 (as int32 to 13, from 14)`."""
    groups: dict[str, list[str]] = {}
    for dtype, segs in plan.items():
        parts = []
        for seg in segs:
            if seg.compute is None:
                continue
            if (seg.lo, seg.hi) == (since, until):
                where = ""
            elif seg.hi == until:
                where = f"from {seg.lo}"
            elif seg.lo == since:
                where = f"to {seg.hi}"
            else:
                where = f"at {span(range(seg.lo, seg.hi + 1))}"
            parts.append(where if seg.compute == dtype else f"as {seg.compute} {where}".strip())
        if parts:
            groups.setdefault(", ".join(parts), []).append(dtype)
    ordered = sorted(groups.items(), key=lambda item: item[0] != "")
    return "; ".join(", ".join(d) + (f" ({desc})" if desc else "") for desc, d in ordered)


def _dtype_at(plan: dict[str, tuple[Segment, ...]], opset: int) -> str:
    native, widened, missing = [], [], []
    for dtype, segs in plan.items():
        seg = next(s for s in segs if s.lo <= opset <= s.hi)
        if seg.compute is None and seg.reason is None:
            continue  # an earlier lowering takes this dtype
        if seg.compute == dtype:
            native.append(dtype)
        elif seg.compute is not None:
            widened.append(f"{dtype} (as {seg.compute})")
        else:
            missing.append(f"~~{dtype}~~")
    return ", ".join(native + widened + missing)
