"""Checking spec entries against torch and ONNX, and deciding everything the templates lay out.

For each entry: the ATen overloads exist and agree on their arguments; the rules name real
arguments; each lowering's opset range follows from the `since` of the others; each body is
checked against every overload and every opset it covers; and for every dtype the entry
declares and every opset, codegen decides whether the lowering runs natively, in a wider dtype,
or not at all (a declared gap or a global limit). Anything else is an error at its location.
"""

from __future__ import annotations

import ast
import functools
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from torchonnx.codegen.aten import AtenSchema, SchemaLookupError, lookup
from torchonnx.codegen.body import (
    AtenUse,
    Callee,
    Checked,
    DType,
    FormSplit,
    OpUse,
    check_body,
    check_condition,
    excluded,
    guards_when_true,
    pure_guards,
)
from torchonnx.codegen.cache import AnalysisCache
from torchonnx.codegen.errors import Diagnostics, Location, SpecError
from torchonnx.codegen.model import Block, Call, Common, Entry, Gap
from torchonnx.codegen.onnx_ops import op_at
from torchonnx.dtypes import (
    DTYPE_NAMES,
    PROMOTION_KINDS,
    Operand,
    compute_dtype,
    compute_dtypes,
    onnx_type_str,
)
from torchonnx.indices import RULES as INDEX_RULES
from torchonnx.indices import arity as index_arity
from torchonnx.opsets import span
from torchonnx.shapes import INFER, RULES, arity
from torchonnx.testing import SAMPLE_NAMES


@dataclass(frozen=True)
class Segment:
    """Opsets lo..hi of one lowering, for one compute dtype: how it runs there."""

    lo: int
    hi: int
    compute: str | None  # the dtype the ONNX ops run in (the dtype itself, or a wider one)
    reason: str | None  # why not, when compute is None


@dataclass(frozen=True)
class Function:
    """A lowering rendered for one overload."""

    name: str  # onnxscript module function name
    params: tuple[str, ...]
    onnxscript: str
    symbolic: str
    alias_of: str | None  # same code as another overload's function


@dataclass(frozen=True)
class Lowering:
    """A block over the opsets where it is written in one form (a block whose ONNX arguments
    move from attributes to inputs at some opset is several lowerings, one per form)."""

    block_index: int  # the block's position in its entry (the lowering's is in a.lowerings)
    block: Block
    since: int
    until: int
    when: str | None  # rendered condition
    functions: dict[str, Function]  # overload -> function
    plan: dict[str, tuple[Segment, ...]]  # compute dtype -> segments over since..until
    onnx_ops: tuple[str, ...]
    cast_back: dict[str, tuple[bool, ...]]  # widened dtype -> per output: cast back to it
    calls: tuple[AtenUse, ...] = ()  # ATen overloads its body calls


@dataclass(frozen=True)
class GapOut:
    gap: Gap
    when: str | None  # rendered condition
    name: str | None  # predicate function name


@dataclass(frozen=True)
class Analyzed:
    entry: Entry
    schemas: dict[str, AtenSchema]  # every overload, primary first
    promote_kind: str | None
    promote_args: tuple[str, ...]
    group: tuple[str, ...]  # tensor arguments that are cast to the compute dtype
    dtype_param: str | None  # a `ScalarType? dtype` argument that fixes the compute dtype
    lowerings: tuple[Lowering, ...]
    gaps: tuple[GapOut, ...]

    @property
    def drop(self) -> str | None:
        """Why calls of this op are left out of the graph; such an entry has no lowerings."""
        return self.entry.drop

    @property
    def primary(self) -> AtenSchema:
        return self.schemas[self.entry.key]


def analyze(
    entries: list[Entry], common: Common, diags: Diagnostics, cache: AnalysisCache | None = None
) -> list[Analyzed]:
    """Every entry checked and planned. With `cache`, an entry whose inputs are unchanged (it,
    common.yaml, the ATen schemas and promotions of every entry a body may call) is taken from
    the previous run; calls are checked and callee refusals planned on every run."""
    seen: dict[str, Location] = {}
    callees = _callees(entries)
    cache = cache or AnalysisCache(None)
    context = cache.context(common, callees)
    out = []
    for entry in entries:
        with diags.collect():
            for name, loc in ((entry.key, entry.loc), *entry.also):
                if name in seen:
                    raise SpecError(loc, f"{name} is already covered by the entry at {seen[name]}")
                seen[name] = loc
            result = cache.get(context, entry)
            if result is None:
                errors = len(diags.errors)
                result = _Entry(entry, common, diags, callees).run()
                if result is not None and len(diags.errors) == errors:
                    cache.put(context, entry, result)
            if result is not None:
                out.append(result)
    cache.save()
    _check_calls(out, diags)
    if diags:
        return out
    return _with_callee_refusals(out, diags)


def _callees(entries: list[Entry]) -> dict[str, Callee]:
    """Every overload a spec lowers, which bodies may call as `aten.X(...)`."""
    out = {}
    for entry in entries:
        for name in entry.overloads:
            try:
                out[name] = Callee(
                    lookup(name, entry.schema), entry.promote.name if entry.promote else None
                )
            except SchemaLookupError:
                continue  # reported where the entry is analyzed
    return out


def _check_calls(analyzed: list[Analyzed], diags: Diagnostics) -> None:
    """Called overloads lower at every opset of the lowerings that call them; no cycles."""
    by_overload = {name: a for a in analyzed for name in a.schemas}
    graph: dict[str, set[str]] = {}
    for a in analyzed:
        for lw in a.lowerings:
            for call in lw.calls:
                callee = by_overload.get(call.overload)
                if callee is None:
                    continue  # its entry has errors, already reported
                graph.setdefault(a.entry.key, set()).add(callee.entry.key)
                covered = {o for c in callee.lowerings for o in range(c.since, c.until + 1)}
                missing = [o for o in range(lw.since, lw.until + 1) if o not in covered]
                if missing:
                    diags.error(
                        call.loc,
                        f"{call.overload} has no lowering at opset {span(missing)}, which this "
                        f"lowering covers ({span(range(lw.since, lw.until + 1))})",
                    )
    for start in sorted(graph):
        path = _cycle(graph, start, [])
        if path:
            loc = next(a.entry.loc for a in analyzed if a.entry.key == start)
            diags.error(loc, f"lowerings call each other in a cycle: {' -> '.join(path)}")
            return


def _with_callee_refusals(analyzed: list[Analyzed], diags: Diagnostics) -> list[Analyzed]:
    """Each dtype plan refusing, with the callee's reason, where a body's `aten.X(...)` call
    gives X a dtype X refuses at that opset: a caller lowers no dtype its callees do not.

    Callees are resolved first (the calls have no cycles); a call whose dtypes codegen cannot
    tell (fixed by a dtype argument, or of an unknown tensor) is not followed.
    """
    by_key = {a.entry.key: a for a in analyzed}
    by_overload = {name: a for a in analyzed for name in a.schemas}
    done: dict[str, Analyzed] = {}

    def resolved(key: str) -> Analyzed:
        if key not in done:
            a = by_key[key]
            for lw in a.lowerings:
                for call in lw.calls:
                    resolved(by_overload[call.overload].entry.key)
            lowerings = tuple(
                _refused_by_callees(a, lw, done, by_overload, diags) for lw in a.lowerings
            )
            done[key] = replace(a, lowerings=lowerings)
        return done[key]

    return [resolved(a.entry.key) for a in analyzed]


def _refused_by_callees(
    a: Analyzed,
    lw: Lowering,
    done: dict[str, Analyzed],
    by_overload: dict[str, Analyzed],
    diags: Diagnostics,
) -> Lowering:
    if not lw.calls:
        return lw
    group = set(a.group)
    plan = {}
    missing: dict[tuple[AtenUse, str, str], list[int]] = {}  # callees without the dtype
    for dtype, segments in lw.plan.items():
        statuses: list[tuple[int, str | None, str | None]] = []
        for seg in segments:
            for opset in range(seg.lo, seg.hi + 1):
                reason = None
                for call in lw.calls if seg.compute is not None else ():
                    if excluded(call.guards, seg.compute, group):
                        continue  # in a branch this dtype never takes
                    callee = done[by_overload[call.overload].entry.key]
                    given = {p: _resolve(d, seg.compute, group) for p, d in call.dtypes}
                    compute = _callee_compute(callee, given)
                    reason = compute and _callee_refusal(callee, compute, opset)
                    if reason == "":
                        missing.setdefault((call, compute, dtype), []).append(opset)
                    if reason:
                        break
                status = (opset, None, reason) if reason else (opset, seg.compute, seg.reason)
                statuses.append(status)
        plan[dtype] = _segments(statuses)
    for (call, compute, dtype), opsets in missing.items():
        diags.error(
            call.loc,
            f"{call.overload} does not lower {compute} at opset {span(opsets)}, which this call "
            f"gives it for {dtype}: add {compute} to its dtypes, or declare a gap for {dtype}",
        )
    return replace(lw, plan=plan)


def _callee_compute(callee: Analyzed, given: dict[str, str | None]) -> str | None:
    """The dtype a called op computes in for arguments of these dtypes (None: not known), under
    the default dtype float32; under another, a callee's refusal comes when the body runs."""
    if callee.dtype_param is not None or None in given.values():
        return None
    if callee.promote_kind is not None:
        operands = [Operand(given[p], 1) for p in callee.promote_args if p in given]
        try:
            return compute_dtype(callee.promote_kind, operands, "float32") if operands else None
        except TypeError:
            return None
    return next((given[p] for p in callee.group if p in given), None)


def _callee_refusal(callee: Analyzed, compute: str, opset: int) -> str | None:
    """Why `callee` does not run in `compute` at `opset`; None where it does, "" where its
    plans do not have the dtype at all."""
    segments = [
        s
        for lw in callee.lowerings
        if lw.since <= opset <= lw.until
        for s in lw.plan.get(compute, ())
        if s.lo <= opset <= s.hi
    ]
    if any(s.compute is not None for s in segments):
        return None
    return next((s.reason for s in segments if s.reason), "")


def _cycle(graph: dict[str, set[str]], node: str, path: list[str]) -> list[str] | None:
    if node in path:
        return [*path[path.index(node) :], node]
    for nxt in sorted(graph.get(node, ())):
        found = _cycle(graph, nxt, [*path, node])
        if found:
            return found
    return None


class _Entry:
    def __init__(
        self, entry: Entry, common: Common, diags: Diagnostics, callees: dict[str, Callee]
    ) -> None:
        self.e = entry
        self.common = common
        self.diags = diags
        self.callees = callees

    def run(self) -> Analyzed | None:
        e = self.e
        schemas = self.schemas()
        primary = schemas[e.key]
        if e.drop is not None:
            return Analyzed(e, schemas, None, (), (), None, (), ())
        before = len(self.diags.errors)
        kind, args = self.promotion(primary)
        for arg in e.input_dtypes:
            p = primary.param(arg)
            if p is None or not p.kind.is_tensor:
                self.diags.error(
                    e.dtypes_loc,
                    f"input_dtypes names `{arg}`, which is not a tensor argument of {e.key}",
                )
            elif arg in args:
                self.diags.error(
                    e.dtypes_loc,
                    f"`{arg}` takes part in type promotion, so it cannot keep its own dtypes",
                )
        # tensor arguments of any overload (`other` is a tensor in add.Tensor, not add.Scalar)
        tensors = {p.name for schema in schemas.values() for p in schema.params if p.kind.is_tensor}
        group = tuple(
            p.name for p in primary.params if p.name in tensors and p.name not in e.input_dtypes
        )
        dtype_param = e.compute_in
        if dtype_param is not None:
            p = primary.param(dtype_param)
            if p is None or p.pytype != "dtype":
                self.diags.error(
                    e.compute_in_loc or e.loc,
                    f"compute_in names `{dtype_param}`, which is not a ScalarType argument of {e.key}",
                )
        self.shape(primary)
        self.indices(primary)
        for sample in e.samples:
            with self.diags.collect():
                target = primary
                if sample.overload is not None:
                    if sample.overload not in schemas:
                        raise SpecError(
                            sample.loc,
                            f"`overload` {sample.overload} is not one of this entry's overloads",
                        )
                    target = schemas[sample.overload]
                self.sample(sample.text, sample.loc, target)
        computed = {c for d in e.dtypes for c in compute_dtypes(kind, d)}
        if dtype_param is not None:
            # the dtype argument may name any dtype the entry supports, and the op computes in it
            computed.update(e.dtypes)
        computes = tuple(sorted(computed, key=DTYPE_NAMES.index))
        for narrow, wide in e.widen.items():
            if narrow == wide:
                self.diags.error(e.dtypes_loc, f"`widen` maps {narrow} to itself")
        lowerings = self.lowerings(schemas, set(group), computes)
        gaps = self.gaps(primary)
        if len(self.diags.errors) > before or lowerings is None:
            return None
        return Analyzed(e, schemas, kind, args, group, dtype_param, lowerings, gaps)

    # -- overloads and rules ------------------------------------------------------------
    def schemas(self) -> dict[str, AtenSchema]:
        e = self.e
        try:
            primary = lookup(e.key, e.schema)
        except SchemaLookupError as err:
            raise SpecError(e.loc, str(err)) from None
        schemas = {e.key: primary}
        names = [p.name for p in primary.params]
        for name, loc in e.also:
            with self.diags.collect():
                try:
                    schema = lookup(name, e.schema)
                except SchemaLookupError as err:
                    raise SpecError(loc, str(err)) from None
                theirs = [p.name for p in schema.params]
                if theirs != names and e.drop is None:
                    raise SpecError(
                        loc,
                        f"{name} takes ({', '.join(theirs)}) but {e.key} takes ({', '.join(names)}); "
                        "an entry's overloads must share argument names",
                    )
                if len(schema.returns) != len(primary.returns) and e.drop is None:
                    raise SpecError(
                        loc,
                        f"{name} returns {len(schema.returns)} values, {e.key} {len(primary.returns)}",
                    )
                schemas[name] = schema
        return schemas

    def promotion(self, primary: AtenSchema) -> tuple[str | None, tuple[str, ...]]:
        rule = self.e.promote
        if rule is None:
            return None, ()
        if rule.name not in PROMOTION_KINDS:
            self.diags.error(
                rule.loc,
                f"unknown promotion kind `{rule.name}`; use one of {', '.join(PROMOTION_KINDS)}",
            )
            return None, ()
        if not rule.args:
            self.diags.error(
                rule.loc, f"name the arguments that take part: {rule.name}(self, other)"
            )
        for arg in rule.args:
            p = primary.param(arg)
            if p is None or not (
                p.kind.is_tensor or p.pytype in ("number", "int", "float", "bool")
            ):
                self.diags.error(
                    rule.loc, f"`{arg}` is not a tensor or number argument of {primary.qualname}"
                )
        return rule.name, rule.args

    def shape(self, primary: AtenSchema) -> None:
        rule = self.e.shape
        if rule.name != INFER or rule.args:
            self._rule(rule, "shape", RULES, INFER, arity, primary)

    def indices(self, primary: AtenSchema) -> None:
        rule = self.e.indices
        if rule is not None:
            self._rule(rule, "index", INDEX_RULES, None, lambda n: (index_arity(n),) * 2, primary)
        elif "indices" in primary.return_names:
            self.diags.error(
                self.e.loc,
                f"{primary.qualname} returns indices: say how they point into an input, "
                "so that tests can compare them where elements tie "
                "(`indices: along(self, dim)`)",
            )

    def _rule(
        self,
        rule: Call,
        what: str,
        rules: Mapping[str, object],
        other: str | None,
        count: Callable[[str], tuple[int, int | None]],
        primary: AtenSchema,
    ) -> None:
        """A `shape:` or `indices:` rule: a known name, as many arguments as it takes, each an
        argument of the op."""
        if rule.name not in rules:
            names = ", ".join([*rules, *([other] if other else [])])
            self.diags.error(rule.loc, f"unknown {what} rule `{rule.name}`; use one of {names}")
            return
        least, most = count(rule.name)
        if len(rule.args) < least or (most is not None and len(rule.args) > most):
            takes = f"{least}" if least == most else f"{least} to {most or 'any number of'}"
            self.diags.error(
                rule.loc, f"{what} rule {rule.name} takes {takes} arguments, not {len(rule.args)}"
            )
        for arg in rule.args:
            if primary.param(arg) is None:
                self.diags.error(rule.loc, f"`{arg}` is not an argument of {primary.qualname}")

    def sample(self, text: str, loc: Location, primary: AtenSchema) -> None:
        try:
            call = ast.parse(f"_f({text})", mode="eval").body
        except SyntaxError as err:
            raise SpecError(loc, f"a sample is a Python argument list: {err.msg}") from None
        assert isinstance(call, ast.Call)
        for node in ast.walk(call):
            if isinstance(node, ast.Name) and node.id not in (*SAMPLE_NAMES, "_f", "float", "int"):
                raise SpecError(
                    loc,
                    f"unknown name `{node.id}` in a sample; build tensors with {', '.join(SAMPLE_NAMES)}",
                )
        positional = [p for p in primary.params if not p.kwarg_only]
        if len(call.args) > len(positional):
            raise SpecError(
                loc,
                f"{primary.qualname} takes {len(positional)} positional arguments, the sample gives {len(call.args)}",
            )
        for kw in call.keywords:
            if primary.param(kw.arg or "") is None:
                raise SpecError(loc, f"{primary.qualname} has no argument `{kw.arg}`")

    # -- lowerings ----------------------------------------------------------------------
    def ranges(self) -> list[int] | None:
        """The last opset of each block: up to the next block that starts later and applies
        whenever it does (no condition, or the same condition)."""
        blocks = self.e.blocks
        untils = []
        for i, b in enumerate(blocks):
            same = b.when.text.strip() if b.when else None
            later = [
                o.since
                for o in blocks
                if o.since > b.since and (o.when is None or o.when.text.strip() == same)
            ]
            if b.until is not None:
                untils.append(b.until)
            else:
                untils.append(min(later) - 1 if later else self.common.newest)
            shadow = next((o for o in blocks[:i] if o.when is None and o.since == b.since), None)
            if shadow is not None:
                self.diags.error(
                    b.loc,
                    f"never used: the lowering at {shadow.loc} covers opset {b.since} unconditionally",
                )
                return None
        return untils

    def lowerings(
        self, schemas: dict[str, AtenSchema], group: set[str], computes: tuple[str, ...]
    ) -> tuple[Lowering, ...] | None:
        untils = self.ranges()
        if untils is None:
            return None
        names: dict[int, int] = {}
        out = []
        self.untils = untils
        failed = False
        for index, (block, until) in enumerate(zip(self.e.blocks, untils, strict=True)):
            with self.diags.collect():
                for lo, hi, checked in self.pieces(block, block.since, until, schemas[self.e.key]):
                    suffix = f"opset{lo}" + (f"_{names[lo]}" if lo in names else "")
                    names[lo] = names.get(lo, 0) + 1
                    out.append(
                        self.lowering(
                            index, block, lo, hi, suffix, schemas, group, computes, checked
                        )
                    )
                continue
            failed = True
        return None if failed else tuple(out)

    def excluded_by_gaps(self, lo: int, hi: int) -> tuple[str, ...]:
        """Conditions of gaps that stop the export wherever they hold at opsets lo..hi (for
        every dtype): a body there runs only where they do not."""
        return tuple(
            g.when.text
            for g in self.e.gaps
            if g.when is not None
            and not g.dtypes
            and g.runtime is None
            and (g.opsets is None or (g.opsets.lo <= lo and hi <= g.opsets.hi))
        )

    def pieces(
        self, block: Block, lo: int, hi: int, schema: AtenSchema
    ) -> list[tuple[int, int, Checked]]:
        """lo..hi cut where an ONNX argument of the body moves from attribute to input, each
        piece with the body checked for `schema` there."""
        try:
            checked = check_body(
                block.emit.text,
                block.emit.where,
                schema,
                (lo, hi),
                block.when.text if block.when else None,
                self.callees,
                self.excluded_by_gaps(lo, hi),
            )
        except FormSplit as split:
            cuts = [lo, *split.opsets, hi + 1]
            return [
                piece
                for a, b in itertools.pairwise(cuts)
                for piece in self.pieces(block, a, b - 1, schema)
            ]
        return [(lo, hi, checked)]

    def lowering(
        self,
        index: int,
        block: Block,
        start: int,
        until: int,
        suffix: str,
        schemas: dict[str, AtenSchema],
        group: set[str],
        computes: tuple[str, ...],
        primary: Checked,
    ) -> Lowering:
        """The lowering of `block` over start..until; `primary` is its body checked for the
        entry's first overload (by `pieces`)."""
        when = None
        if block.when is not None:
            for schema in schemas.values():
                when = check_condition(block.when.text, block.when.where, schema)
        functions: dict[str, Function] = {}
        ops: list[OpUse] = []
        calls: list[AtenUse] = []
        branch_returns = None
        seen: dict[tuple[tuple[str, ...], str, str], str] = {}  # code -> first function
        # a body checks and renders alike for overloads with the same arguments and returns
        # (in-place and out variants mostly): check it once for them
        checked_for: dict[str, Checked] = {}
        for name, schema in schemas.items():
            alike = repr((schema.params, schema.returns))  # defaults may be lists: not hashable
            checked = checked_for.get(alike)
            if checked is None and name == self.e.key:
                checked = checked_for[alike] = primary
                ops.extend(checked.ops)
                calls.extend(checked.calls)
            if checked is None:
                try:
                    checked = check_body(
                        block.emit.text,
                        block.emit.where,
                        schema,
                        (start, until),
                        block.when.text if block.when else None,
                        self.callees,
                        self.excluded_by_gaps(start, until),
                    )
                except SpecError as err:
                    if len(schemas) == 1:
                        raise
                    raise SpecError(err.loc, f"for {name}: {err.message}") from None
                checked_for[alike] = checked
                ops.extend(checked.ops)
                calls.extend(checked.calls)
            if branch_returns is None:
                branch_returns = checked.branch_returns
            fn = Function(
                name=f"{schema.func_name}__{suffix}",
                params=tuple(p.name for p in schema.params),
                onnxscript=checked.onnxscript,
                symbolic=checked.symbolic,
                alias_of=None,
            )
            code = (fn.params, fn.onnxscript, fn.symbolic)
            if code in seen:  # overloads rendered alike share one function
                fn = Function(fn.name, fn.params, fn.onnxscript, fn.symbolic, alias_of=seen[code])
            else:
                seen[code] = fn.name
            functions[name] = fn
        assert branch_returns is not None
        plan = self.plan(block, start, until, ops, group, computes)
        cast_back = self.cast_back(block, plan, branch_returns, group)
        onnx_ops = tuple(sorted({u.op for u in ops}))
        return Lowering(
            index, block, start, until, when, functions, plan, onnx_ops, cast_back, tuple(calls)
        )

    def cast_back(
        self,
        block: Block,
        plan: dict[str, tuple[Segment, ...]],
        branch_returns: tuple,
        group: set[str],
    ) -> dict[str, tuple[bool, ...]]:
        """For each dtype the lowering computes in a wider dtype: which results to cast back
        (those of the computed dtype), from the returns of the branches that dtype takes."""
        out = {}
        for dtype, segs in plan.items():
            for wide in sorted({s.compute for s in segs if s.compute not in (None, dtype)}):
                kinds = {
                    tuple(d.param is not None and d.param in group for d in rets)
                    for guards, rets in branch_returns
                    if not excluded(guards, wide, group)
                }
                unknown = any(
                    not d.known
                    for guards, rets in branch_returns
                    if not excluded(guards, wide, group)
                    for d in rets
                )
                if len(kinds) != 1 or unknown:
                    raise SpecError(
                        block.loc,
                        f"{dtype} would be computed in {wide} here, but codegen cannot tell the "
                        "dtype of this lowering's result to cast it back (its branches differ); "
                        "split the lowering with `when`, or declare a gap instead of widening",
                    )
                out[dtype] = kinds.pop()
        return out

    # -- dtypes ---------------------------------------------------------------------------
    def plan(
        self,
        block: Block,
        start: int,
        until: int,
        ops: list[OpUse],
        group: set[str],
        computes: tuple[str, ...],
    ) -> dict[str, tuple[Segment, ...]]:
        plan: dict[str, tuple[Segment, ...]] = {}
        problems: dict[tuple[str, str], list[int]] = {}
        applies = (
            guards_when_true(ast.parse(block.when.text, mode="eval").body) if block.when else []
        )
        rejected: dict[tuple, str | None] = {}  # what `_rejects` said, per dtype and op versions
        # the version of each op at each opset: most opsets change none, and so decide nothing
        versions = {
            opset: tuple(spec.since if (spec := op_at(u.op, opset)) else 0 for u in ops)
            for opset in range(start, until + 1)
        }
        earlier = self.earlier(block, group)
        for dtype in computes:
            if excluded(applies, dtype, group):
                continue  # the lowering's condition rules this dtype out
            statuses: list[tuple[int, str | None, str | None]] = []
            for opset in range(start, until + 1):
                if any(lo <= opset <= hi and takes(dtype) for lo, hi, takes in earlier):
                    statuses.append((opset, None, None))  # an earlier pick takes this dtype
                    continue
                status = self.status(dtype, opset, ops, group, rejected, versions[opset])
                if isinstance(status, str):
                    problems.setdefault((dtype, status), []).append(opset)
                    status = (None, "error")
                statuses.append((opset, *status))
            plan[dtype] = _segments(statuses)
        for (dtype, why), opsets in sorted(problems.items()):
            self.diags.error(
                block.loc,
                f"{self.e.key} at opset {span(opsets)}: {why}; widen {dtype} to a dtype ONNX accepts here "
                f"(`widen: {{{dtype}: ...}}`), or declare a gap for {dtype}",
            )
        return plan

    def earlier(
        self, block: Block, group: set[str]
    ) -> list[tuple[int, int, Callable[[str], bool]]]:
        """The lowerings picked before `block` whose whole condition is a dtype test of the
        group: (since, until, whether that test takes a dtype). Where one takes a dtype, `block`
        never sees it."""
        mine = self.e.blocks.index(block)
        out = []
        for i, other in enumerate(self.e.blocks):
            before = other.since > block.since or (other.since == block.since and i < mine)
            guards = _pure_guards(other.when.text) if before and other.when else ()
            if guards and all(g.param in group for g in guards):
                takes = functools.partial(_passes, guards, group=group)
                out.append((other.since, self.untils[i], takes))
        return out

    def status(
        self,
        dtype: str,
        opset: int,
        ops: list[OpUse],
        group: set[str],
        rejected: dict[tuple, str | None],
        versions: tuple[int, ...],
    ) -> tuple[str | None, str | None] | str:
        """(compute dtype, None) or (None, reason); a string is an error message. `rejected`
        keeps what the ops said of a dtype, per version of the ops: most opsets change none."""
        for limit in self.common.limits:
            if limit.runtime is None and dtype in limit.dtypes and opset in limit.opsets:
                return None, limit.reason
        for gap in self.e.gaps:
            if (
                gap.when is None
                and gap.runtime is None
                and (not gap.dtypes or dtype in gap.dtypes)
                and (gap.opsets is None or opset in gap.opsets)
            ):
                return None, gap.reason

        def rejects(d: str) -> str | None:
            if (d, versions) not in rejected:
                rejected[d, versions] = _rejects(ops, d, opset, group)
            return rejected[d, versions]

        problem = rejects(dtype)
        if problem is None:
            return dtype, None
        wide = self.e.widen.get(dtype)
        if wide is not None:
            wide_problem = rejects(wide) or _cast_rejects(dtype, wide, opset)
            if wide_problem is None:
                return wide, None
            return f"{problem}, and widening to {wide} fails too ({wide_problem})"
        return problem

    def gaps(self, primary: AtenSchema) -> tuple[GapOut, ...]:
        out = []
        for i, gap in enumerate(self.e.gaps):
            with self.diags.collect():
                when = None
                if gap.when is not None:
                    when = check_condition(gap.when.text, gap.when.where, primary)
                name = f"{primary.func_name}__gap{i}" if when else None
                out.append(GapOut(gap, when, name))
        return tuple(out)


@functools.cache
def _pure_guards(when: str) -> tuple:
    """The dtype tests a `when` consists of (asked per dtype and opset: parsed once)."""
    return tuple(pure_guards(ast.parse(when, mode="eval").body) or ())


def _passes(guards: tuple, dtype: str, group: set[str]) -> bool:
    return not excluded(guards, dtype, group)


def _resolve(d: DType | None, dtype: str, group: set[str]) -> str | None:
    if d is None:
        return None
    if d.fixed:
        return d.fixed
    if d.param is not None and d.param in group:
        return dtype
    return None


def _rejects(ops: list[OpUse], dtype: str, opset: int, group: set[str]) -> str | None:
    """Why the emitted ops cannot run in `dtype` at `opset`, or None if they can."""
    for use in ops:
        if excluded(use.guards, dtype, group):
            continue  # in a branch this dtype never takes
        spec = op_at(use.op, opset)
        assert spec is not None  # check_body made sure the op exists over the block's range
        inputs = list(use.inputs)
        if use.variadic_dtype is not None:
            inputs.append(use.variadic_dtype)
        for pos, d in enumerate(inputs):
            resolved = _resolve(d, dtype, group)
            formal = spec.formal_input(pos)
            if resolved is None or formal is None:
                continue
            if onnx_type_str(resolved) not in spec.allowed(formal.type_str):
                return f"ONNX {use.op} does not accept {resolved} (input {formal.name}, line {use.loc.line})"
    return None


def _cast_rejects(narrow: str, wide: str, opset: int) -> str | None:
    cast = op_at("Cast", opset)
    assert cast is not None
    for dtype in (narrow, wide):
        if onnx_type_str(dtype) not in cast.allowed("T1"):
            return f"ONNX Cast does not accept {dtype}"
    return None


def _segments(statuses: list[tuple[int, str | None, str | None]]) -> tuple[Segment, ...]:
    out: list[Segment] = []
    for opset, compute, reason in statuses:
        if (
            out
            and out[-1].compute == compute
            and out[-1].reason == reason
            and out[-1].hi == opset - 1
        ):
            last = out[-1]
            out[-1] = Segment(last.lo, opset, compute, reason)
        else:
            out.append(Segment(opset, opset, compute, reason))
    return tuple(out)
