"""Turning analyzed entries into generated files.

Decisions are made here, in Python, into small view objects; the Jinja templates only lay
them out. Files: one onnxscript module per spec family, one symbolic module per opset where a
lowering begins, the registry that the runtime dispatches through, and Markdown tables.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from torchonnx.codegen.analyze import Analyzed, Lowering, Segment
from torchonnx.codegen.aten import NO_DEFAULT, AtenSchema, Kind
from torchonnx.codegen.files import FileManager, markdown_header, python_header
from torchonnx.codegen.model import Common, Source

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
    alias_of: str | None = None


@dataclass
class _Pred:
    name: str
    params: str
    expr: str


@dataclass
class _EntryView:
    key: str
    doc: str
    spec: str
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


def _doc_of(schema: AtenSchema, lw: Lowering) -> str:
    cond = f", when `{_text(lw.block.when)}`" if lw.when else ""
    return f"{schema.qualname} at opsets {lw.since}..{lw.until}{cond} ({_spec_loc(lw.block.loc)})."


def _python_params(schema: AtenSchema) -> str:
    return ", ".join(p.name for p in schema.params)


def _dispatcher_name(packet: str) -> str:
    # `aten_abs`: a prefix cannot collide with Python names nor with in-place ops (`abs_`)
    return f"aten_{packet}"


class Renderer:
    def __init__(self, analyzed: list[Analyzed], common: Common, spec_dir: str) -> None:
        self.analyzed = sorted(analyzed, key=lambda a: (a.entry.family, a.entry.loc.line))
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
        fm.add("__init__.py", self.package_init())
        for name, content in self.docs().items():
            fm.add(f"docs/{name}", content)

    # -- onnxscript modules ---------------------------------------------------------------
    def onnxscript_module(self, family: str) -> str:
        views = []
        uses_math = False
        for a in self.analyzed:
            if a.entry.family != family:
                continue
            view = _EntryView(
                key=a.entry.key,
                doc=a.entry.doc,
                spec=_spec_loc(a.entry.loc),
                schemas=[s.schema for s in a.schemas.values()],
            )
            for lw in a.lowerings:
                for name, fn in lw.functions.items():
                    schema = a.schemas[name]
                    uses_math |= "math." in fn.onnxscript
                    view.functions.append(
                        _Fn(
                            fn.name,
                            _python_params(schema),
                            _doc_of(schema, lw),
                            fn.onnxscript,
                            fn.alias_of,
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
            header=python_header([self.spec_file(family)]),
            spec=self.spec_file(family),
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
            packets: dict[str, set[str]] = defaultdict(set)
            sources = sorted({self.spec_file(a.entry.family) for a, _ in items})
            uses_math = False
            for a, lw in items:
                for name, fn in lw.functions.items():
                    schema = a.schemas[name]
                    packets[schema.name].add(name)
                    uses_math |= "math." in fn.symbolic
                    functions.append(
                        _Fn(
                            fn.name,
                            _python_params(schema),
                            _doc_of(schema, lw),
                            fn.symbolic,
                            fn.alias_of,
                        )
                    )
            dispatchers = [
                {
                    "name": _dispatcher_name(packet.split("::")[1]),
                    "packet": packet,
                    "overloads": ", ".join(sorted(overloads)),
                }
                for packet, overloads in sorted(packets.items())
            ]
            modules[opset] = self.env.get_template("symbolic_module.py.j2").render(
                header=python_header(sources),
                opset=opset,
                uses_math=uses_math,
                functions=functions,
                dispatchers=dispatchers,
            )
        return modules

    # -- registry -------------------------------------------------------------------------
    def registry(self) -> str:
        reasons: dict[str, int] = {}

        def reason_ref(reason: str | None) -> str:
            if reason is None:
                return "None"
            index = reasons.setdefault(reason, len(reasons))
            return f"_R[{index}]"

        entries = []
        for a in sorted(self.analyzed, key=lambda a: a.entry.key):
            entries.append(self._entry_view(a, reason_ref))
        return self.env.get_template("registry.py.j2").render(
            header=python_header([f"{self.spec_dir}/*.yaml"]),
            families=self.families,
            oldest=self.oldest,
            newest=self.common.newest,
            reasons=list(reasons),
            entries=entries,
            runtime_limits=[
                f"RuntimeLimit({limit.runtime!r}, {limit.dtypes!r}, ({limit.opsets.lo}, "
                f"{limit.opsets.hi}), {limit.reason!r}, {_spec_loc(limit.loc)!r})"
                for limit in self.common.limits
                if limit.runtime
            ],
            limits=[
                repr((limit.dtypes, (limit.opsets.lo, limit.opsets.hi), limit.reason))
                for limit in self.common.limits
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

    def _entry_view(self, a: Analyzed, reason_ref) -> dict:
        e = a.entry
        family = f"_{e.family}"
        overloads = []
        for name, schema in a.schemas.items():
            params = []
            for p in schema.params:
                parts = [repr(p.name), _KINDS[p.kind]]
                if p.default is not NO_DEFAULT:
                    parts.append(f"default={p.default!r}")
                if p.kwarg_only:
                    parts.append("kwarg_only=True")
                if p.aten_name != p.name:
                    parts.append(f"aten_name={p.aten_name!r}")
                params.append(f"Param({', '.join(parts)})")
            overloads.append(
                {
                    "name": name,
                    "schema": schema.schema,
                    "params": params,
                    "returns": repr(schema.returns),
                }
            )
        lowerings = []
        for lw in sorted(a.lowerings, key=lambda lw: (-lw.since, lw.index)):
            primary_fn = lw.functions[e.key]
            fns = {n: f"{family}.{f.alias_of or f.name}" for n, f in lw.functions.items()}
            symbolic = {
                n: f"symbolic_opset{lw.since}.{f.alias_of or f.name}"
                for n, f in lw.functions.items()
            }
            dtypes = {
                dtype: "("
                + "".join(
                    f"({s.lo}, {s.hi}, {s.compute!r}, {reason_ref(s.reason)}), " for s in segs
                )
                + ")"
                for dtype, segs in lw.plan.items()
            }
            lowerings.append(
                {
                    "since": lw.since,
                    "until": lw.until,
                    "spec": repr(_spec_loc(lw.block.loc)),
                    "fns": fns,
                    "symbolic": symbolic,
                    "dtypes": dtypes,
                    "cast_back": repr(lw.cast_back),
                    "onnx_ops": repr(lw.onnx_ops),
                    "when": f"{family}.{_when_name(primary_fn.name)}" if lw.when else None,
                    "when_text": repr(_text(lw.block.when)) if lw.when else None,
                }
            )
        gaps = []
        for g in a.gaps:
            gap = g.gap
            parts = [repr(gap.reason), repr(_spec_loc(gap.loc))]
            if gap.dtypes:
                parts.append(f"dtypes={gap.dtypes!r}")
            if gap.opsets is not None:
                parts.append(f"opsets=({gap.opsets.lo}, {gap.opsets.hi})")
            if g.name:
                parts.append(f"when={family}.{g.name}")
                parts.append(f"when_text={_text(gap.when)!r}")
            if gap.runtime:
                parts.append(f"runtime={gap.runtime!r}")
            gaps.append(f"Gap({', '.join(parts)})")
        samples = []
        for s in e.samples:
            parts = [repr(s.text), repr(_spec_loc(s.loc))]
            if s.opsets is not None:
                parts.append(f"opsets=({s.opsets.lo}, {s.opsets.hi})")
            if s.dtypes:
                parts.append(f"dtypes={s.dtypes!r}")
            if s.overload:
                parts.append(f"overload={s.overload!r}")
            samples.append(f"Sample({', '.join(parts)})")
        return {
            "key": e.key,
            "spec": repr(_spec_loc(e.loc)),
            "family": repr(e.family),
            "doc": repr(e.doc),
            "overloads": overloads,
            "dtypes": repr(e.dtypes),
            "lowerings": lowerings,
            "promote": repr(a.promote_kind),
            "promote_args": repr(a.promote_args),
            "group": repr(a.group),
            "dtype_param": repr(a.dtype_param),
            "input_dtypes": repr(e.input_dtypes),
            "gaps": gaps,
            "samples": samples,
            "shape": repr(e.shape.text),
            "indices": repr(e.indices.text) if e.indices else None,
        }

    def package_init(self) -> str:
        return self.env.get_template("package_init.py.j2").render(
            header=python_header([f"{self.spec_dir}/*.yaml"])
        )

    # -- docs -----------------------------------------------------------------------------
    def docs(self) -> dict[str, str]:
        header = markdown_header([f"{self.spec_dir}/*.yaml"])
        rows = []
        for a in sorted(self.analyzed, key=lambda a: a.entry.key):
            for lw in sorted(a.lowerings, key=lambda lw: (lw.since, lw.index)):
                rows.append(
                    {
                        "overloads": _overload_cell(a),
                        "opsets": f"{lw.since}..{lw.until}",
                        "when": f"`{_text(lw.block.when)}`" if lw.when else "",
                        "dtypes": _dtype_summary(lw.plan, lw.since, lw.until),
                        "ops": ", ".join(lw.onnx_ops),
                        "gaps": _gap_cell(a),
                        "spec": _spec_loc(lw.block.loc),
                    }
                )
        overloads = sum(len(a.schemas) for a in self.analyzed)
        docs = {
            "operators.md": self.env.get_template("operators.md.j2").render(
                header=header,
                rows=rows,
                entries=len(self.analyzed),
                overloads=overloads,
                oldest=self.oldest,
                newest=self.common.newest,
                opsets=list(range(self.oldest, self.common.newest + 1)),
                limits=self.common.limits,
            )
        }
        for opset in range(self.oldest, self.common.newest + 1):
            at = []
            for a in sorted(self.analyzed, key=lambda a: a.entry.key):
                for lw in sorted(a.lowerings, key=lambda lw: (lw.since, lw.index)):
                    if lw.since <= opset <= lw.until:
                        at.append(
                            {
                                "overloads": _overload_cell(a),
                                "since": lw.since,
                                "when": f"`{_text(lw.block.when)}`" if lw.when else "",
                                "dtypes": _dtype_at(lw.plan, opset),
                                "ops": ", ".join(lw.onnx_ops),
                                "gaps": _gap_cell(a),
                            }
                        )
            docs[f"opset{opset}.md"] = self.env.get_template("opset.md.j2").render(
                header=header, opset=opset, rows=at, count=len({r["overloads"] for r in at})
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
                span = ""
            elif seg.hi == until:
                span = f"from {seg.lo}"
            elif seg.lo == since:
                span = f"to {seg.hi}"
            else:
                span = f"at {seg.lo}..{seg.hi}"
            parts.append(span if seg.compute == dtype else f"as {seg.compute} {span}".strip())
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
