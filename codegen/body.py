"""The lowering language: checking `emit` bodies and `when` conditions, and rendering them.

A body is a small Python program. Capitalised calls are ONNX ops (`Add(self, other)`), their
keyword arguments ONNX attributes; lower-case calls are helpers (`const`, `rank`, `sizes`,
`dtype_of`, `is_floating`) or Python built-ins; everything else is Python over the op's
non-tensor arguments, evaluated while the exporter runs. specs/README.md is the user's guide.

`check_body` checks a body against one ATen overload and the ONNX schemas of every opset it
covers, records which ONNX ops it emits with which input dtypes (for the dtype check), and
renders it twice: as an onnxscript-builder function (`op.Add(...)`, the torch.export path) and
as a TorchScript symbolic function (`g.op("Add", ...)`, torch's contract).
"""

from __future__ import annotations

import ast
import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from torchonnx.codegen.aten import LISTABLE_TYPES, NO_DEFAULT, AtenSchema, Kind
from torchonnx.codegen.errors import Location, SpecError
from torchonnx.codegen.onnx_ops import (
    ATTRIBUTE_PYTYPES,
    INPUT_RENAMES,
    SYMBOLIC_SUFFIX,
    OpSpec,
    op_at,
)
from torchonnx.dtypes import DTYPE_NAMES, FLOATING, onnx_type_str
from torchonnx.opsets import span

HELPERS = (
    "const",
    "rank",
    "size",
    "sizes",
    "dtype_of",
    "is_floating",
    "is_static",
    "static",
    "factory_dtype",
    "bits",
)
# Helpers whose generated call takes the graph context first (they may add nodes).
_CTX_HELPERS = ("size", "sizes")
BUILTINS = {
    "len": "int",
    "range": "int[]",
    "list": None,
    "tuple": None,
    "sorted": None,
    "min": "number",
    "max": "number",
    "abs": None,
    "int": "int",
    "float": "float",
    "bool": "bool",
    "sum": "number",
    "all": "bool",
    "any": "bool",
    "round": "int",
    "enumerate": "any",
    "zip": "any",
    "reversed": None,
}
MATH = {
    "sqrt": "float",
    "inf": "float",
    "pi": "float",
    "prod": "number",
    "ceil": "int",
    "floor": "int",
    "log": "float",
    "isinf": "bool",
}
RESERVED = {"op", "g", "math", "aten", *HELPERS, *BUILTINS}
# An input of these types takes indices or sizes: a Python value given to it is int64.
_INDEX_TYPES = frozenset({"tensor(int32)", "tensor(int64)"})
# Ops whose output dtype is named by an attribute or another input rather than a type variable.
_CAST_ATTR = {"Cast": "to"}


@dataclass(frozen=True)
class DType:
    """A dtype known to codegen: a fixed dtype, or the dtype of an op argument, or unknown."""

    fixed: str | None = None
    param: str | None = None

    def render(self) -> str:
        if self.fixed:
            return repr(self.fixed)
        assert self.param
        return f"_h.dtype_of({self.param})"

    @property
    def known(self) -> bool:
        return bool(self.fixed or self.param)


UNKNOWN = DType()


@dataclass(frozen=True)
class Sym:
    """What codegen knows of a name or an expression."""

    kind: Kind
    dtype: DType = UNKNOWN  # for tensors (the element dtype for lists of tensors)
    pytype: str = "any"  # for Python values
    maybe_none: bool = False  # a Python value that may be None (an optional argument)
    param: str | None = None  # the op argument this is, while it is not reassigned
    count: int | None = None  # for lists of tensors whose length is known
    items: tuple[Sym, ...] | None = None  # for lists of tensors written out or from one node
    literal: object = None  # the value of a literal constant
    # a Python value that may be (or, for a list, hold) a value the graph computes: a SymInt,
    # or a number from `item()`; while exporting it is a 0-d tensor
    dynamic: bool = False
    optional_items: bool = False  # a list of tensors whose elements may be None (`Tensor?[]`)


class FormSplit(Exception):  # a signal to the caller, not an error
    """A body writes an ONNX argument that is an attribute at some opsets of its range and an
    input at others: check it again over each range that starts at `opsets` (and before)."""

    def __init__(self, opsets: list[int]) -> None:
        super().__init__(opsets)
        self.opsets = opsets


@dataclass(frozen=True)
class Guard:
    """A dtype test an op use depends on: it only runs when `param`'s dtype is in `dtypes`."""

    param: str
    dtypes: frozenset[str]


@dataclass(frozen=True)
class OpUse:
    """One ONNX op call in a body, with the dtype of each input (None: omitted or unknown)."""

    op: str
    loc: Location
    inputs: tuple[DType | None, ...]
    variadic_dtype: DType | None = None  # for `*list` inputs whose length is not known
    guards: tuple[Guard, ...] = ()  # the dtype tests of the branches it is in


_ALL = frozenset(DTYPE_NAMES)


def _guard_atom(test: ast.expr) -> Guard | None:
    """`is_floating(p)`, `dtype_of(p) == "x"`, `dtype_of(p) in (...)` and their negations."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _guard_atom(test.operand)
        return Guard(inner.param, _ALL - inner.dtypes) if inner else None
    if isinstance(test, ast.Call) and getattr(test.func, "id", None) == "is_floating":
        if len(test.args) == 1 and isinstance(test.args[0], ast.Name):
            return Guard(test.args[0].id, frozenset(FLOATING))
        return None
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, right, op = test.left, test.comparators[0], test.ops[0]
        if isinstance(right, ast.Call) and not isinstance(left, ast.Call):
            left, right = right, left
        if not (
            isinstance(left, ast.Call)
            and getattr(left.func, "id", None) == "dtype_of"
            and len(left.args) == 1
            and isinstance(left.args[0], ast.Name)
        ):
            return None
        try:
            value = ast.literal_eval(right)
        except ValueError:
            return None
        names = frozenset([value] if isinstance(value, str) else value)
        if not names <= _ALL:
            return None
        if isinstance(op, (ast.Eq, ast.In)):
            return Guard(left.args[0].id, names)
        if isinstance(op, (ast.NotEq, ast.NotIn)):
            return Guard(left.args[0].id, _ALL - names)
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
        atoms = [_guard_atom(v) for v in test.values]
        if all(atoms) and len({a.param for a in atoms}) == 1:  # type: ignore[union-attr]
            return Guard(atoms[0].param, frozenset().union(*(a.dtypes for a in atoms)))  # type: ignore
    return None


def guards_when_true(test: ast.expr) -> list[Guard]:
    """Dtype tests that hold wherever `test` is true (its other parts are ignored)."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return [g for v in test.values for g in guards_when_true(v)]
    atom = _guard_atom(test)
    return [atom] if atom else []


def pure_guards(test: ast.expr) -> list[Guard] | None:
    """The dtype tests of a condition made of nothing else (joined by `and`), or None."""
    parts = test.values if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) else [test]
    atoms = [_guard_atom(p) for p in parts]
    return None if not all(atoms) else atoms  # type: ignore[return-value]


def guards_when_false(test: ast.expr) -> list[Guard]:
    """Dtype tests that hold wherever `test` is false (only for a test that is one)."""
    atom = _guard_atom(test)
    return [Guard(atom.param, _ALL - atom.dtypes)] if atom else []


def excluded(guards: tuple[Guard, ...] | list[Guard], dtype: str, group: set[str]) -> bool:
    """Whether the guards rule out running in `dtype` (arguments of `group` are in it)."""
    return any(g.param in group and dtype not in g.dtypes for g in guards)


@dataclass(frozen=True)
class Callee:
    """An ATen overload a body may call (`aten.amax(x, [1])`): one some spec lowers."""

    schema: AtenSchema
    promote: str | None  # its promotion kind, which says its result's dtype


@dataclass(frozen=True)
class AtenUse:
    """One call of another spec's ATen overload in a body."""

    overload: str
    loc: Location
    dtypes: tuple[tuple[str, DType], ...] = ()  # the callee's tensor arguments' dtypes
    guards: tuple[Guard, ...] = ()  # the dtype tests of the branches it is in


@dataclass(frozen=True)
class Checked:
    """A body checked against one overload, rendered for both export paths."""

    onnxscript: str  # function body, Python source
    symbolic: str
    ops: tuple[OpUse, ...]
    returns: tuple[DType, ...]  # dtype of each returned tensor (unknown where branches differ)
    # per `return`: the dtype tests of its branch, and the dtype of each tensor it returns
    branch_returns: tuple[tuple[tuple[Guard, ...], tuple[DType, ...]], ...] = ()
    calls: tuple[AtenUse, ...] = ()  # ATen overloads the body calls


@dataclass
class _CallNote:
    """How to render one call."""

    what: str  # onnx | helper | builtin
    consts: dict[int, DType] = field(default_factory=dict)  # positional Python value -> const
    optional_inputs: set[int] = field(default_factory=set)  # may be None at export time
    attr_types: dict[str, str] = field(default_factory=dict)
    dtype_attrs: set[str] = field(default_factory=set)
    maybe_none_attrs: set[str] = field(default_factory=set)
    dynamic_outputs: bool = False
    like: DType | None = None  # const(..., like=x): the dtype of x
    overload: str | None = None  # aten.X(...): the overload called
    typed: dict[int | str, DType] = field(default_factory=dict)  # tensor arguments to type


def _key(node: ast.AST) -> tuple:
    return (
        type(node).__name__,
        node.lineno,
        node.col_offset,
        node.end_lineno,
        node.end_col_offset,
    )


class _Checker:
    def __init__(
        self,
        source: str,
        where: Callable[[int, int], Location],
        schema: AtenSchema,
        opsets: tuple[int, int],
        condition: bool = False,
        callees: dict[str, Callee] | None = None,
    ) -> None:
        self.condition = condition
        self.callees = callees or {}
        self.calls: list[AtenUse] = []
        self.source = source
        self.where = where
        self.schema = schema
        self.opsets = opsets
        self.notes: dict[tuple, _CallNote] = {}
        self.when: ast.expr | None = None  # the lowering's condition: what it proves holds
        self.excluded: list[ast.expr] = []  # conditions of gaps: false wherever the body runs
        self.guards: list[Guard] = []  # dtype tests of the branches being checked
        self.ops: list[OpUse] = []
        self.returns: list[tuple[Sym, ...]] = []
        self.return_guards: list[tuple[Guard, ...]] = []

    @contextlib.contextmanager
    def guarded(self, guards: list[Guard]) -> Iterator[None]:
        self.guards.extend(guards)
        try:
            yield
        finally:
            del self.guards[len(self.guards) - len(guards) :]

    # -- errors -------------------------------------------------------------------------
    def fail(self, node: ast.AST | None, message: str) -> SpecError:
        if node is None or not hasattr(node, "lineno"):
            return SpecError(self.where(1, 0), message)
        return SpecError(self.where(node.lineno, node.col_offset), message)

    def params_env(self) -> dict[str, Sym]:
        env: dict[str, Sym] = {}
        for p in self.schema.params:
            if p.kind is Kind.VALUE:
                env[p.name] = Sym(
                    Kind.VALUE,
                    pytype=p.pytype,
                    maybe_none=p.optional,
                    param=p.name,
                    dynamic=p.dynamic,
                )
            else:
                env[p.name] = Sym(
                    p.kind,
                    dtype=DType(param=p.name),
                    param=p.name,
                    optional_items=p.optional_items,
                )
        return env

    # -- statements ---------------------------------------------------------------------
    def body(self, tree: ast.Module) -> None:
        stmts = tree.body
        if not stmts:
            raise self.fail(None, "the body is empty")
        if len(stmts) == 1 and isinstance(stmts[0], ast.Expr):
            ret = ast.Return(value=stmts[0].value)
            ast.copy_location(ret, stmts[0])
            tree.body = stmts = [ret]
        env = self.params_env()
        if self.when is not None:
            _narrow_by(self.when, env, {})
        for gap in self.excluded:
            _narrow_by(gap, {}, env)
        if not self.block(stmts, env):
            raise self.fail(stmts[-1], "the body must end with `return` (or be one expression)")

    def block(self, stmts: list[ast.stmt], env: dict[str, Sym]) -> bool:
        """Check statements; True when every path through them returns."""
        for i, stmt in enumerate(stmts):
            last = i == len(stmts) - 1
            if isinstance(stmt, ast.Return):
                if stmt.value is None:
                    raise self.fail(stmt, "`return` needs a value: the op's result")
                self.returns.append(self.result(stmt.value, env))
                self.return_guards.append(tuple(self.guards))
                if not last:
                    raise self.fail(stmts[i + 1], "statement after `return` is never reached")
                return True
            if isinstance(stmt, ast.Assign):
                self.assign(stmt, env)
            elif isinstance(stmt, ast.If):
                test = self.expr(stmt.test, env)
                self.need_value(stmt.test, test, "an `if` condition")
                then_env, else_env = dict(env), dict(env)
                _narrow_by(stmt.test, then_env, else_env)
                continuing = []
                with self.guarded(guards_when_true(stmt.test)):
                    if not self.block(stmt.body, then_env):
                        continuing.append(then_env)
                with self.guarded(guards_when_false(stmt.test)):
                    if not stmt.orelse or not self.block(stmt.orelse, else_env):
                        continuing.append(else_env)
                if not continuing:
                    if not last:
                        raise self.fail(stmts[i + 1], "statement after `return` is never reached")
                    return True
                self.merge(stmt, env, continuing)
                if continuing == [else_env] and not last:
                    # `if test: return ...` without else: what follows runs where test is false
                    with self.guarded(guards_when_false(stmt.test)):
                        return self.block(stmts[i + 1 :], env)
            elif isinstance(stmt, ast.Expr):
                raise self.fail(
                    stmt, "an expression statement does nothing here; assign it or return it"
                )
            else:
                raise self.fail(
                    stmt,
                    f"`{type(stmt).__name__}` statements are not part of the lowering language "
                    "(use assignments, `if`/`else` and `return`)",
                )
        return False

    def merge(self, stmt: ast.If, env: dict[str, Sym], branches: list[dict[str, Sym]]) -> None:
        """After an `if`: keep the names every continuing path defines."""
        env.clear()
        for name in set.intersection(*(set(b) for b in branches)):
            syms = [b[name] for b in branches]
            kinds = {s.kind for s in syms}
            if kinds == {Kind.TENSOR, Kind.MAYBE_TENSOR}:
                syms = [replace(s, kind=Kind.MAYBE_TENSOR) for s in syms]
                kinds = {Kind.MAYBE_TENSOR}
            if len(kinds) > 1:
                raise self.fail(
                    stmt,
                    f"after this `if`, `{name}` is a {' or a '.join(sorted(k.value for k in kinds))}",
                )
            first = syms[0]
            env[name] = (
                first
                if all(s == first for s in syms)
                else replace(
                    first,
                    dtype=first.dtype if all(s.dtype == first.dtype for s in syms) else UNKNOWN,
                    literal=None,
                    items=None,
                    count=None,
                )
            )

    def assign(self, stmt: ast.Assign, env: dict[str, Sym]) -> None:
        if len(stmt.targets) != 1:
            raise self.fail(stmt, "chained assignment is not supported")
        target = stmt.targets[0]
        value = self.expr(stmt.value, env)
        if isinstance(target, ast.Name):
            self.bind(target, value, env)
            return
        if isinstance(target, ast.Tuple) and all(isinstance(e, ast.Name) for e in target.elts):
            n = len(target.elts)
            if value.kind is Kind.TENSORS:
                if value.count is not None and value.count != n:
                    raise self.fail(stmt, f"{value.count} values cannot be unpacked into {n} names")
                items = value.items or tuple(Sym(Kind.TENSOR, dtype=value.dtype) for _ in range(n))
                for name, item in zip(target.elts, items, strict=False):
                    self.bind(name, item, env)
                return
            if value.kind is Kind.VALUE:
                for name in target.elts:
                    self.bind(name, Sym(Kind.VALUE), env)
                return
        raise self.fail(target, "assign to a name or a tuple of names")

    def bind(self, target: ast.Name, value: Sym, env: dict[str, Sym]) -> None:
        name = target.id
        if name in RESERVED or name.startswith("_"):
            raise self.fail(target, f"`{name}` is reserved in lowerings; choose another name")
        param = self.schema.param(name)
        if param is not None and param.kind is not Kind.VALUE:
            raise self.fail(
                target, f"`{name}` is a tensor argument of the op; give the new value another name"
            )
        if value.kind is Kind.NONE:
            value = Sym(Kind.VALUE, maybe_none=True, literal=None)
        # a name for (an element of) a tensor argument is still that argument to helpers
        env[name] = value if value.kind.is_tensor else replace(value, param=None)
        for key in [k for k in env if k.startswith("<") and _mentions(k, name)]:
            del env[key]  # what an earlier test proved of an expression using the old value

    def result(self, node: ast.expr, env: dict[str, Sym]) -> tuple[Sym, ...]:
        returns = self.schema.returns
        if len(returns) > 1:
            if not isinstance(node, ast.Tuple):
                sym = self.expr(node, env)
                if sym.kind is Kind.TENSORS and sym.count == len(returns):
                    return sym.items or tuple(Sym(Kind.TENSOR, dtype=sym.dtype) for _ in returns)
                raise self.fail(
                    node,
                    f"{self.schema.qualname} returns {len(returns)} tensors; return a tuple of {len(returns)}",
                )
            if len(node.elts) != len(returns):
                raise self.fail(
                    node,
                    f"{self.schema.qualname} returns {len(returns)} tensors, not {len(node.elts)}",
                )
            syms = tuple(self.expr(e, env) for e in node.elts)
            for e, s in zip(node.elts, syms, strict=True):
                if s.kind is not Kind.TENSOR:
                    raise self.fail(
                        e, f"each returned value must be a tensor, this is a {s.kind.value}"
                    )
            return syms
        sym = self.expr(node, env)
        want = Kind.TENSORS if returns and returns[0] == "Tensor[]" else Kind.TENSOR
        if sym.kind is not want:
            raise self.fail(
                node, f"{self.schema.qualname} returns a {want.value}; this is a {sym.kind.value}"
            )
        return (sym,)

    # -- expressions --------------------------------------------------------------------
    def need_value(self, node: ast.AST, sym: Sym, what: str, static: bool = True) -> None:
        """`sym` is a Python value (known while exporting, unless `static` is False)."""
        if sym.kind is not Kind.VALUE and sym.kind is not Kind.NONE:
            raise self.fail(
                node,
                f"{what} must be a Python value known while exporting, not a {sym.kind.value}"
                " (graph values are only combined with ONNX ops)",
            )
        if static and sym.dynamic:
            raise self.fail(node, _dynamic_message(node, what))

    def expr(self, node: ast.expr, env: dict[str, Sym]) -> Sym:
        method = getattr(self, "expr_" + type(node).__name__, None)
        if method is None:
            raise self.fail(
                node,
                f"`{ast.unparse(node)}` ({type(node).__name__}) is not part of the lowering language",
            )
        sym = method(node, env)
        if sym.dynamic and _narrowed(node) in env:  # an `is_static(...)` test proved it static
            return replace(sym, dynamic=False)
        return sym

    def expr_Constant(self, node: ast.Constant, env: dict[str, Sym]) -> Sym:
        v = node.value
        if v is None:
            return Sym(Kind.NONE, literal=None)
        pytype = {bool: "bool", int: "int", float: "float", str: "str"}.get(type(v))
        if pytype is None:
            raise self.fail(node, f"constant {v!r} of type {type(v).__name__} is not supported")
        if pytype == "str" and v in DTYPE_NAMES:
            pytype = "dtype"
        return Sym(Kind.VALUE, pytype=pytype, literal=v)

    def expr_Name(self, node: ast.Name, env: dict[str, Sym]) -> Sym:
        if node.id in env:
            return env[node.id]
        if node.id in RESERVED:
            raise self.fail(node, f"`{node.id}` is a function; call it")
        names = ", ".join(p.name for p in self.schema.params)
        raise self.fail(
            node,
            f"unknown name `{node.id}`: not an argument of {self.schema.qualname} ({names}) "
            "nor a name assigned before",
        )

    def expr_Attribute(self, node: ast.Attribute, env: dict[str, Sym]) -> Sym:
        if isinstance(node.value, ast.Name) and node.value.id == "math":
            if node.attr not in MATH:
                raise self.fail(
                    node, f"math.{node.attr} is not available; use one of {', '.join(sorted(MATH))}"
                )
            return Sym(Kind.VALUE, pytype=MATH[node.attr])
        raise self.fail(node, "attribute access is not part of the lowering language (only math.*)")

    def _values(self, nodes: Iterable[ast.expr], env: dict[str, Sym], what: str) -> list[Sym]:
        out = []
        for n in nodes:
            s = self.expr(n, env)
            self.need_value(n, s, what)
            out.append(s)
        return out

    def expr_BinOp(self, node: ast.BinOp, env: dict[str, Sym]) -> Sym:
        left, right = self.expr(node.left, env), self.expr(node.right, env)
        if isinstance(node.op, ast.Add) and {left.kind, right.kind} == {Kind.VALUE, Kind.TENSORS}:
            # sizes joined with 0-d tensors computed here (`sizes(x)[:1] + [n]`)
            value = left if left.kind is Kind.VALUE else right
            if value.pytype.endswith("[]"):
                return replace(value, dynamic=True, param=None)
        lists = [s for s in (left, right) if s.pytype.endswith("[]")]
        if isinstance(node.op, (ast.Add, ast.Mult)) and lists and (left.dynamic or right.dynamic):
            # joining lists (`a + b`) and repeating one (`[1] * n`) keep their elements as
            # they are, which may be graph values; the count of a repetition is static
            for n, sym in ((node.left, left), (node.right, right)):
                self.need_value(n, sym, "an operand", static=sym not in lists)
            return Sym(Kind.VALUE, pytype=lists[0].pytype, dynamic=True)
        for n, sym in ((node.left, left), (node.right, right)):
            self.need_value(n, sym, "an arithmetic operand")
        if isinstance(node.op, ast.Div):
            return Sym(Kind.VALUE, pytype="float")
        types = {left.pytype, right.pytype}
        if types == {"int"}:
            return Sym(Kind.VALUE, pytype="int")
        if types <= {"int", "float"}:
            return Sym(Kind.VALUE, pytype="float")
        if left.pytype.endswith("[]"):
            return Sym(Kind.VALUE, pytype=left.pytype)
        return Sym(Kind.VALUE, pytype="number" if types <= {"int", "float", "number"} else "any")

    def expr_UnaryOp(self, node: ast.UnaryOp, env: dict[str, Sym]) -> Sym:
        (operand,) = self._values((node.operand,), env, "an operand")
        if isinstance(node.op, ast.Not):
            return Sym(Kind.VALUE, pytype="bool")
        literal = (
            -operand.literal
            if isinstance(node.op, ast.USub) and isinstance(operand.literal, (int, float))
            else None
        )
        return Sym(Kind.VALUE, pytype=operand.pytype, literal=literal)

    def expr_BoolOp(self, node: ast.BoolOp, env: dict[str, Sym]) -> Sym:
        inner = dict(env)
        for value in node.values:
            self.need_value(value, self.expr(value, inner), "an operand of and/or")
            # `a and b`: b is only evaluated where a holds (`or`: where it does not)
            then_env, else_env = dict(inner), dict(inner)
            _narrow_by(value, then_env, else_env)
            inner = then_env if isinstance(node.op, ast.And) else else_env
        return Sym(Kind.VALUE, pytype="bool")

    def expr_Compare(self, node: ast.Compare, env: dict[str, Sym]) -> Sym:
        operands = [node.left, *node.comparators]
        syms = [self.expr(n, env) for n in operands]
        is_none_test = all(isinstance(o, (ast.Is, ast.IsNot)) for o in node.ops)
        for n, s in zip(operands, syms, strict=True):
            if not is_none_test:
                self.need_value(n, s, "an operand of a comparison")
            elif s.kind is Kind.TENSOR or s.kind is Kind.TENSORS:
                raise self.fail(n, f"a {s.kind.value} is never None; only `Tensor?` arguments are")
        # a dtype compared with a string: it must name a dtype (`"float65"` would never match)
        for (a_node, a), (b_node, b) in itertools.pairwise(zip(operands, syms, strict=True)):
            for dtype, (text_node, text) in ((a, (b_node, b)), (b, (a_node, a))):
                if dtype.pytype == "dtype" and isinstance(text.literal, str):
                    if text.literal not in DTYPE_NAMES:
                        raise self.fail(
                            text_node,
                            f"{text.literal!r} is not a dtype name ({', '.join(DTYPE_NAMES)})",
                        )
        return Sym(Kind.VALUE, pytype="bool")

    def expr_IfExp(self, node: ast.IfExp, env: dict[str, Sym]) -> Sym:
        test = self.expr(node.test, env)
        self.need_value(node.test, test, "a condition")
        then_env, else_env = dict(env), dict(env)
        _narrow_by(node.test, then_env, else_env)
        with self.guarded(guards_when_true(node.test)):
            a = self.expr(node.body, then_env)
        with self.guarded(guards_when_false(node.test)):
            b = self.expr(node.orelse, else_env)
        kinds = {a.kind, b.kind}
        if kinds <= {Kind.VALUE, Kind.NONE}:
            pytypes = {a.pytype, b.pytype} - ({"any"} if Kind.NONE in kinds else set())
            return Sym(
                Kind.VALUE,
                pytype=pytypes.pop() if len(pytypes) == 1 else "any",
                maybe_none=Kind.NONE in kinds or a.maybe_none or b.maybe_none,
                dynamic=a.dynamic or b.dynamic,
            )
        if kinds == {Kind.VALUE, Kind.TENSOR}:  # a number, or a 0-d tensor computed here
            value = a if a.kind is Kind.VALUE else b
            return Sym(Kind.VALUE, pytype=value.pytype, dynamic=True)
        if kinds <= {Kind.TENSOR, Kind.MAYBE_TENSOR, Kind.NONE}:
            dtype = (
                a.dtype
                if a.dtype == b.dtype or b.kind is Kind.NONE
                else (b.dtype if a.kind is Kind.NONE else UNKNOWN)
            )
            kind = Kind.TENSOR if kinds == {Kind.TENSOR} else Kind.MAYBE_TENSOR
            return Sym(kind, dtype=dtype)
        if kinds == {Kind.TENSORS}:
            return Sym(Kind.TENSORS, dtype=a.dtype if a.dtype == b.dtype else UNKNOWN)
        raise self.fail(node, "both branches must be Python values, or both tensors (or None)")

    def expr_Subscript(self, node: ast.Subscript, env: dict[str, Sym]) -> Sym:
        base = self.expr(node.value, env)
        index = self.expr(node.slice, env) if not isinstance(node.slice, ast.Slice) else None
        if isinstance(node.slice, ast.Slice):
            for part in (node.slice.lower, node.slice.upper, node.slice.step):
                if part is not None:
                    self.need_value(part, self.expr(part, env), "a slice bound")
        elif index is not None:
            self.need_value(node.slice, index, "an index")
        if base.kind is Kind.VALUE:
            self.need_value(node.value, base, "what is indexed", static=False)
            if isinstance(node.slice, ast.Slice):
                return Sym(Kind.VALUE, pytype=base.pytype, dynamic=base.dynamic)
            element = base.pytype[:-2] if base.pytype.endswith("[]") else "any"
            return Sym(Kind.VALUE, pytype=element, dynamic=base.dynamic)
        if base.kind is Kind.TENSORS:
            if isinstance(node.slice, ast.Slice):
                return replace(base, items=None, count=None)
            literal = index.literal if index is not None else None
            if (
                base.items is not None
                and isinstance(literal, int)
                and -len(base.items) <= literal < len(base.items)
            ):
                return base.items[literal]
            return _element(base)
        raise self.fail(node, f"a {base.kind.value} cannot be indexed here; use Gather or Slice")

    def _display(self, node: ast.List | ast.Tuple, env: dict[str, Sym]) -> Sym:
        syms = [self.expr(e, env) for e in node.elts]
        if all(s.kind is Kind.VALUE for s in syms):
            types = {s.pytype for s in syms}
            pytype = (
                f"{types.pop()}[]"
                if len(types) == 1 and syms[0].pytype in LISTABLE_TYPES
                else "any"
            )
            if pytype == "any" and types <= {"int", "float", "number"} and syms:
                pytype = "float[]" if "float" in types else "number[]"
            return Sym(
                Kind.VALUE, pytype=pytype if syms else "int[]", dynamic=any(s.dynamic for s in syms)
            )
        if all(s.kind is Kind.TENSOR for s in syms):
            dtypes = {s.dtype for s in syms}
            return Sym(
                Kind.TENSORS,
                dtype=dtypes.pop() if len(dtypes) == 1 else UNKNOWN,
                count=len(syms),
                items=tuple(syms),
            )
        if all(s.kind in (Kind.VALUE, Kind.TENSOR) for s in syms):
            # numbers beside 0-d tensors computed here: a list of sizes some of which the
            # graph computes, as `sizes(x)` gives
            for e, sym in zip(node.elts, syms, strict=True):
                if sym.kind is Kind.VALUE:
                    self.need_value(e, sym, "an element", static=False)
            types = {s.pytype for s in syms if s.kind is Kind.VALUE}
            return Sym(
                Kind.VALUE, pytype=f"{types.pop()}[]" if len(types) == 1 else "any", dynamic=True
            )
        raise self.fail(node, "a list holds Python values or tensors, not both")

    expr_List = _display
    expr_Tuple = _display

    def _comprehension(self, node: ast.ListComp | ast.GeneratorExp, env: dict[str, Sym]) -> Sym:
        inner = dict(env)
        for gen in node.generators:
            source = self.expr(gen.iter, inner)
            if source.kind is Kind.TENSORS:
                element = _element(source)
            else:
                self.need_value(
                    gen.iter, source, "what a comprehension iterates over", static=False
                )
                element = Sym(
                    Kind.VALUE,
                    pytype=source.pytype[:-2] if source.pytype.endswith("[]") else "any",
                    dynamic=source.dynamic,
                )
            names = (
                [gen.target]
                if isinstance(gen.target, ast.Name)
                else getattr(gen.target, "elts", None)
            )
            if not names or not all(isinstance(n, ast.Name) for n in names):
                raise self.fail(gen.target, "a comprehension binds names")
            for n, sym in zip(
                names, self._targets(gen.iter, element, len(names), inner), strict=True
            ):
                inner[n.id] = sym
            for cond in gen.ifs:
                self.need_value(cond, self.expr(cond, inner), "a comprehension condition")
                _narrow_by(cond, inner, {})
        elt = self.expr(node.elt, inner)
        if elt.kind is Kind.TENSOR:  # elements of an argument stay readable by helpers
            return Sym(Kind.TENSORS, dtype=elt.dtype, param=elt.param)
        if elt.kind is Kind.MAYBE_TENSOR:
            return Sym(Kind.TENSORS, dtype=elt.dtype, optional_items=True, param=elt.param)
        self.need_value(node.elt, elt, "a comprehension element", static=False)
        return Sym(
            Kind.VALUE,
            pytype=f"{elt.pytype}[]" if elt.pytype in LISTABLE_TYPES else "any",
            dynamic=elt.dynamic,
        )

    def _targets(self, source: ast.expr, element: Sym, n: int, env: dict[str, Sym]) -> list[Sym]:
        """What each of the `n` names a comprehension binds per element holds: the position
        and the element for `enumerate(xs)`, one element of each list for `zip(xs, ys)`."""
        if n == 1:
            return [element]
        if isinstance(source, ast.Call) and isinstance(source.func, ast.Name):
            args = [self.expr(a, env) for a in source.args]
            items = [
                (
                    _element(a)
                    if a.kind is Kind.TENSORS
                    else Sym(
                        Kind.VALUE,
                        pytype=a.pytype.removesuffix("[]") if a.pytype.endswith("[]") else "any",
                        dynamic=a.dynamic,
                    )
                )
                for a in args
            ]
            if source.func.id == "enumerate" and len(items) == 1 and n == 2:
                return [Sym(Kind.VALUE, pytype="int"), items[0]]
            if source.func.id == "zip" and len(items) == n:
                return items
        return [Sym(Kind.VALUE, dynamic=element.dynamic) for _ in range(n)]

    expr_ListComp = _comprehension
    expr_GeneratorExp = _comprehension

    def expr_Call(self, node: ast.Call, env: dict[str, Sym]) -> Sym:
        func = node.func
        qualname = _aten_name(func)
        if qualname is not None:
            return self.aten_call(node, qualname, env)
        if isinstance(func, ast.Attribute):
            self.expr(func, env)
            self._values(node.args, env, "an argument of a math function")
            return Sym(Kind.VALUE, pytype=MATH[func.attr])
        if not isinstance(func, ast.Name):
            raise self.fail(node, "call ONNX ops, helpers or built-ins by name")
        name = func.id
        if name[:1].isupper():
            return self.onnx_call(node, env)
        if name in HELPERS:
            return getattr(self, "helper_" + name)(node, env)
        if name in BUILTINS:
            if node.keywords and name not in ("sorted", "min", "max"):
                raise self.fail(node, f"{name}() takes no keyword arguments here")
            dynamic = False
            args = [self.expr(a, env) for a in node.args]  # each checked once
            for a, s in zip(node.args, args, strict=True):
                if s.kind is Kind.TENSORS and name in ("enumerate", "zip"):
                    continue  # a comprehension over it binds its elements
                if s.kind is Kind.TENSORS and name in ("len", "list", "tuple", "reversed"):
                    if name != "len":
                        return (
                            replace(s, items=None)
                            if name != "reversed"
                            else replace(s, items=None, count=None)
                        )
                    continue
                # these keep the elements as they are, graph values included
                keeps = name in ("len", "list", "tuple", "reversed", "enumerate", "zip")
                self.need_value(a, s, f"the argument of {name}()", static=not keeps)
                dynamic |= s.dynamic and name != "len"
            self.notes[_key(node)] = _CallNote("builtin")
            first = args[0] if args else None
            pytype = BUILTINS[name] or (first.pytype if first is not None else "any")
            if name in ("min", "max", "sum", "abs", "round") and args:
                # of ints (or one list of ints) an int
                types = {a.pytype.removesuffix("[]") for a in args}
                if types == {"int"} or (name == "round" and len(args) == 1):
                    pytype = "int"
                elif types <= {"int", "float"} and name != "sum":
                    pytype = "float" if "float" in types else pytype
            return Sym(Kind.VALUE, pytype=pytype, dynamic=dynamic)
        raise self.fail(
            node,
            f"unknown function `{name}`: ONNX ops are capitalised (Add, MatMul), helpers are "
            f"{', '.join(HELPERS)}, and the Python built-ins {', '.join(sorted(BUILTINS))}",
        )

    # -- helpers ------------------------------------------------------------------------
    def _param_arg(
        self, node: ast.Call, env: dict[str, Sym], helper: str, lists: bool = True
    ) -> Sym:
        if len(node.args) != 1 or node.keywords:
            raise self.fail(node, f"{helper}() takes one tensor argument of the op")
        arg = node.args[0]
        sym = self.expr(arg, env)
        if not sym.kind.is_tensor or sym.param is None or (sym.kind is Kind.TENSORS and not lists):
            raise self.fail(
                arg,
                f"{helper}() reads what the exporter knows of an input of the op, so its argument "
                f"must be a tensor argument of {self.schema.qualname} (or an element of one), "
                "not a value computed here",
            )
        if sym.kind is Kind.MAYBE_TENSOR or (sym.kind is Kind.TENSORS and sym.optional_items):
            raise self.fail(
                arg, f"{helper}() needs a tensor, and this may be None: test `is not None` first"
            )
        self.notes[_key(node)] = _CallNote("helper")
        return sym

    def helper_rank(self, node: ast.Call, env: dict[str, Sym]) -> Sym:
        self._param_arg(node, env, "rank")
        return Sym(Kind.VALUE, pytype="int")

    def helper_sizes(self, node: ast.Call, env: dict[str, Sym]) -> Sym:
        self._param_arg(node, env, "sizes", lists=False)
        return Sym(Kind.VALUE, pytype="int[]", dynamic=True)

    def helper_is_static(self, node: ast.Call, env: dict[str, Sym]) -> Sym:
        if not node.args or node.keywords:
            raise self.fail(node, "is_static() takes values: is_static(size), is_static(a, b)")
        for arg in node.args:
            sym = self.expr(arg, env)
            if sym.kind is not Kind.TENSOR:  # a tensor computed here stands for a number
                self.need_value(arg, sym, "is_static()'s argument", False)
        self.notes[_key(node)] = _CallNote("helper")
        return Sym(Kind.VALUE, pytype="bool")

    def helper_static(self, node: ast.Call, env: dict[str, Sym]) -> Sym:
        if len(node.args) != 1 or node.keywords:
            raise self.fail(node, "static() takes one value: static(size)")
        sym = self.expr(node.args[0], env)
        self.need_value(node.args[0], sym, "static()'s argument", static=False)
        self.notes[_key(node)] = _CallNote("helper")
        return replace(sym, dynamic=False, param=None)

    def helper_bits(self, node: ast.Call, env: dict[str, Sym]) -> Sym:
        if len(node.args) != 1 or node.keywords:
            raise self.fail(node, "bits() takes a dtype: bits(dtype_of(self))")
        if self.expr(node.args[0], env).pytype != "dtype":
            raise self.fail(node.args[0], "bits() takes a dtype name or dtype_of(x)")
        self.notes[_key(node)] = _CallNote("helper")
        return Sym(Kind.VALUE, pytype="int")

    def helper_factory_dtype(self, node: ast.Call, env: dict[str, Sym]) -> Sym:
        usage = "factory_dtype(dtype, value, ...): dtype, or torch's dtype for the values"
        if len(node.args) < 2 or node.keywords:
            raise self.fail(node, f"write {usage}")
        dtype = self.expr(node.args[0], env)
        if dtype.pytype != "dtype" and dtype.kind is not Kind.NONE:
            raise self.fail(node.args[0], f"the first argument is a dtype: {usage}")
        for a in node.args[1:]:
            self.need_value(a, self.expr(a, env), "a value of factory_dtype()", static=False)
        self.notes[_key(node)] = _CallNote("helper")
        return Sym(Kind.VALUE, pytype="dtype")

    def helper_size(self, node: ast.Call, env: dict[str, Sym]) -> Sym:
        if len(node.args) != 2 or node.keywords:
            raise self.fail(
                node, "size() takes a tensor argument of the op and a dimension: size(self, dim)"
            )
        dim = self.expr(node.args[1], env)
        self.need_value(node.args[1], dim, "a dimension")
        probe = ast.Call(func=node.func, args=node.args[:1], keywords=[])
        ast.copy_location(probe, node)
        self._param_arg(probe, env, "size", lists=False)
        self.notes[_key(node)] = _CallNote("helper")
        return Sym(Kind.VALUE, pytype="int", dynamic=True)

    def helper_dtype_of(self, node: ast.Call, env: dict[str, Sym]) -> Sym:
        self._param_arg(node, env, "dtype_of")
        return Sym(Kind.VALUE, pytype="dtype")

    def helper_is_floating(self, node: ast.Call, env: dict[str, Sym]) -> Sym:
        self._param_arg(node, env, "is_floating")
        return Sym(Kind.VALUE, pytype="bool")

    def helper_const(self, node: ast.Call, env: dict[str, Sym]) -> Sym:
        usage = "const(value, dtype) or const(value, like=tensor)"
        kwargs = {k.arg: k.value for k in node.keywords}
        if not node.args or len(node.args) > 2 or set(kwargs) - {"dtype", "like"} or None in kwargs:
            raise self.fail(node, f"write {usage}")
        value = self.expr(node.args[0], env)
        if value.kind is not Kind.TENSOR:  # a tensor passes through: `other` in add.Tensor
            # graph values in it (SymInts) are joined in, static parts folded
            self.need_value(node.args[0], value, "the value of a constant", static=False)
        dtype_node = node.args[1] if len(node.args) == 2 else kwargs.get("dtype")
        like_node = kwargs.get("like")
        if (dtype_node is None) == (like_node is None):
            raise self.fail(
                node, f"give a constant either a dtype or a tensor to take it from: {usage}"
            )
        note = _CallNote("helper")
        self.notes[_key(node)] = note
        if like_node is not None:
            like = self.expr(like_node, env)
            if like.kind is Kind.TENSOR and not like.dtype.known and like.param is not None:
                # an element of a list argument: its own dtype, read while exporting
                if not isinstance(like_node, ast.Name):
                    raise self.fail(like_node, "like= takes an element of a list by its name")
                like = replace(like, dtype=DType(param=like_node.id))
            if like.kind is not Kind.TENSOR or not like.dtype.known:
                raise self.fail(
                    like_node,
                    "like= needs a tensor whose dtype codegen can tell (an op input, or a value "
                    "computed from one)",
                )
            note.like = like.dtype
            return value if value.kind is Kind.TENSOR else Sym(Kind.TENSOR, dtype=like.dtype)
        dtype = self.expr(dtype_node, env)
        if dtype.pytype != "dtype":
            raise self.fail(
                dtype_node,
                f"a constant's dtype is a dtype name ({', '.join(DTYPE_NAMES)}) or dtype_of(x)",
            )
        fixed = dtype.literal if isinstance(dtype.literal, str) else None
        if value.kind is Kind.TENSOR:
            return value
        return Sym(Kind.TENSOR, dtype=DType(fixed=fixed) if fixed else UNKNOWN)

    # -- calls of other ATen lowerings ----------------------------------------------------
    def aten_call(self, node: ast.Call, qualname: str, env: dict[str, Sym]) -> Sym:
        if self.condition:
            raise self.fail(
                node, "a `when` condition is decided while exporting; it cannot call ATen ops"
            )
        callee = self.callees.get(qualname)
        if callee is None:
            raise self.fail(
                node.func, f"{qualname} has no spec; a body can call the ATen overloads specs lower"
            )
        schema = callee.schema
        note = _CallNote("aten", overload=qualname)
        self.notes[_key(node)] = note
        params = list(schema.params)
        positional = [p for p in params if not p.kwarg_only]
        if len(node.args) > len(positional):
            raise self.fail(
                node,
                f"{qualname} takes {len(positional)} positional arguments, not {len(node.args)}",
            )
        given: dict[str, tuple[ast.expr, int | str]] = {}
        for i, arg in enumerate(node.args):
            given[positional[i].name] = (arg, i)
        for kw in node.keywords:
            if kw.arg is None or schema.param(kw.arg) is None:
                raise self.fail(kw, f"{qualname} has no argument `{kw.arg}`")
            given[kw.arg] = (kw.value, kw.arg)
        dtypes: dict[str, DType] = {}
        for p in params:
            if p.name not in given:
                if p.default is NO_DEFAULT:
                    raise self.fail(node, f"{qualname} needs argument `{p.name}`")
                continue
            arg, slot = given[p.name]
            sym = self.expr(arg, env)
            if p.kind is Kind.VALUE and p.dynamic and sym.kind is Kind.TENSOR:
                pass  # a 0-d tensor computed here, where the callee takes a SymInt or Scalar
            elif p.kind is Kind.VALUE:
                self.need_value(arg, sym, f"argument {p.name} of {qualname}", static=not p.dynamic)
            elif sym.kind is Kind.VALUE:
                continue  # a number where ATen takes a tensor: the callee's promotion types it
            elif sym.kind is Kind.NONE:
                if p.kind is not Kind.MAYBE_TENSOR:
                    raise self.fail(arg, f"argument {p.name} of {qualname} is a tensor, not None")
            elif (sym.kind is Kind.TENSORS) != (p.kind is Kind.TENSORS):
                raise self.fail(
                    arg,
                    f"argument {p.name} of {qualname} is a {p.kind.value}, this is a {sym.kind.value}",
                )
            else:
                if not sym.dtype.known:
                    raise self.fail(
                        arg,
                        f"cannot tell the dtype of this argument of {qualname}; the call needs it for type promotion",
                    )
                dtypes[p.name] = sym.dtype
                if sym.param is None:
                    note.typed[slot] = sym.dtype  # a computed value: give it its dtype
        where = self.where(node.lineno, node.col_offset)
        self.calls.append(AtenUse(qualname, where, tuple(dtypes.items()), tuple(self.guards)))
        result = _call_result(callee, dtypes)
        if len(schema.returns) == 1 and schema.returns[0] != "Tensor[]":
            return Sym(Kind.TENSOR, dtype=result)
        if len(schema.returns) > 1:
            items = tuple(
                Sym(Kind.TENSOR, dtype=result if i == 0 else UNKNOWN)
                for i in range(len(schema.returns))
            )
            return Sym(Kind.TENSORS, count=len(items), items=items)
        return Sym(Kind.TENSORS, dtype=result)

    # -- ONNX ops -----------------------------------------------------------------------
    def specs(self, node: ast.Call, name: str) -> dict[int, OpSpec]:
        lo, hi = self.opsets
        found = {o: op_at(name, o) for o in range(lo, hi + 1)}
        missing = [o for o, s in found.items() if s is None]
        if len(missing) == len(found):
            raise self.fail(node.func, f"ONNX has no operator {name} at opsets {lo}..{hi}")
        if missing:
            first = min(o for o, s in found.items() if s is not None)
            raise self.fail(
                node.func,
                f"ONNX {name} does not exist at opset {span(missing)}, but this lowering "
                f"covers opsets {lo}..{hi}; start it at opset {first} (`since: {first}`)",
            )
        deprecated = [o for o, s in found.items() if s is not None and s.deprecated]
        if deprecated:
            raise self.fail(node.func, f"ONNX {name} is deprecated at opset {span(deprecated)}")
        return {o: s for o, s in found.items() if s is not None}

    def onnx_call(self, node: ast.Call, env: dict[str, Sym]) -> Sym:
        name = node.func.id  # type: ignore[attr-defined]
        if self.condition:
            raise self.fail(
                node, "a `when` condition is decided while exporting; it cannot use ONNX ops"
            )
        specs = self.specs(node, name)
        by_since = {s.since: s for s in specs.values()}
        self._keyword_inputs(node, name, specs)
        note = _CallNote("onnx")
        self.notes[_key(node)] = note
        # inputs
        inputs: list[tuple[ast.expr, Sym]] = []
        variadic: Sym | None = None
        for i, arg in enumerate(node.args):
            if isinstance(arg, ast.Starred):
                sym = self.expr(arg.value, env)
                if sym.kind is not Kind.TENSORS:
                    raise self.fail(arg, "only a list of tensors can be spread into inputs with *")
                if i != len(node.args) - 1:
                    raise self.fail(arg, "a *list of inputs must come last")
                if sym.items is not None:
                    inputs.extend((arg, s) for s in sym.items)
                else:
                    variadic = sym
                continue
            sym = self.expr(arg, env)
            if sym.kind is Kind.TENSORS and isinstance(arg, (ast.List, ast.Tuple)):
                # `[n]` of 0-d tensors computed here, given as one input: a list of sizes
                sym = Sym(Kind.VALUE, pytype="int[]", dynamic=True)
            inputs.append((arg, sym))
        n_in = len(inputs)
        for since, spec in sorted(by_since.items()):
            if n_in > spec.max_inputs or (variadic is None and n_in < spec.min_inputs):
                rng = (
                    f"{spec.min_inputs}"
                    if spec.min_inputs == spec.max_inputs
                    else f"{spec.min_inputs} to {spec.max_inputs}"
                )
                raise self.fail(node, f"ONNX {name}-{since} takes {rng} inputs, not {n_in}")
        spec = specs[max(specs)]
        dtypes: list[DType | None] = []
        bound: dict[str, DType] = {}
        for pos, (arg, sym) in enumerate(inputs):
            formal = spec.formal_input(pos)
            assert formal is not None
            if sym.kind in (Kind.TENSOR, Kind.MAYBE_TENSOR):
                if sym.kind is Kind.MAYBE_TENSOR:
                    self._need_optional(arg, specs, pos, name)
                    note.optional_inputs.add(pos)
                if sym.dtype.known and formal.type_str not in bound and formal.homogeneous:
                    bound[formal.type_str] = sym.dtype
            elif sym.kind is Kind.NONE:
                self._need_optional(arg, specs, pos, name)
            elif sym.kind is Kind.TENSORS:
                raise self.fail(
                    arg, f"a list of tensors is one input per element: write *{ast.unparse(arg)}"
                )
            elif sym.maybe_none:
                self._need_optional(arg, specs, pos, name)
                note.optional_inputs.add(pos)
        for pos, (arg, sym) in enumerate(inputs):
            formal = spec.formal_input(pos)
            assert formal is not None
            if sym.kind is Kind.VALUE:
                dtype = self._const_dtype(arg, sym, formal.type_str, bound, specs, pos, name)
                note.consts[pos] = dtype
                dtypes.append(dtype)
            elif sym.kind is Kind.NONE:
                dtypes.append(None)
            else:
                dtypes.append(sym.dtype)
        # attributes
        outputs: int | None = None
        attrs: dict[str, Sym] = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise self.fail(kw.value, "attributes are given by name")
            sym = self.expr(kw.value, env)
            if kw.arg == "_outputs":
                self.need_value(kw.value, sym, "the number of outputs")
                outputs = sym.literal if isinstance(sym.literal, int) else None
                note.dynamic_outputs = outputs is None
                continue
            self.need_value(kw.value, sym, f"attribute {kw.arg} of {name}")
            attrs[kw.arg] = sym
            for since, s in sorted(by_since.items()):
                if kw.arg not in s.attributes:
                    known = ", ".join(sorted(s.attributes)) or "none"
                    raise self.fail(
                        kw, f"ONNX {name}-{since} has no attribute {kw.arg} (it has: {known})"
                    )
                attr_type, _ = s.attributes[kw.arg]
                note.attr_types[kw.arg] = attr_type
                if not self._attr_fits(sym, attr_type):
                    raise self.fail(
                        kw.value,
                        f"attribute {kw.arg} of ONNX {name}-{since} is {attr_type}; this is a Python {sym.pytype}",
                    )
            if sym.pytype == "dtype" and note.attr_types[kw.arg] == "INT":
                note.dtype_attrs.add(kw.arg)
            if sym.maybe_none:
                note.maybe_none_attrs.add(kw.arg)
        for since, s in sorted(by_since.items()):
            missing = [
                a for a, (_, required) in s.attributes.items() if required and a not in attrs
            ]
            if missing:
                raise self.fail(
                    node, f"ONNX {name}-{since} requires attribute {', '.join(missing)}"
                )
        mins = {s.min_outputs for s in by_since.values()}
        if outputs is None and not note.dynamic_outputs:
            outputs = max(mins)
        if outputs is not None:
            for since, s in sorted(by_since.items()):
                if not s.min_outputs <= outputs <= s.max_outputs:
                    raise self.fail(
                        node,
                        f"ONNX {name}-{since} has {s.min_outputs} to {s.max_outputs} outputs, not {outputs}",
                    )
        self.ops.append(
            OpUse(
                name,
                self.where(node.lineno, node.col_offset),
                tuple(dtypes),
                variadic.dtype if variadic is not None else None,
                tuple(self.guards),
            )
        )
        out_dtypes = [
            self._output_dtype(spec, i, inputs, dtypes, attrs, node) for i in range(outputs or 1)
        ]
        if outputs == 1:
            return Sym(Kind.TENSOR, dtype=out_dtypes[0])
        if outputs is None:
            return Sym(Kind.TENSORS, dtype=out_dtypes[0])
        return Sym(
            Kind.TENSORS,
            dtype=UNKNOWN,
            count=outputs,
            items=tuple(Sym(Kind.TENSOR, dtype=d) for d in out_dtypes),
        )

    def _keyword_inputs(self, node: ast.Call, name: str, specs: dict[int, OpSpec]) -> None:
        """Keywords that name an input rather than an attribute (at every opset of the range)
        become positional inputs. A keyword that is an attribute at some opsets and an input at
        others (`axes`, `split`, `pads`, ...) splits the lowering at the opsets where its form
        changes (FormSplit): each piece is checked and rendered in one form."""
        forms: dict[int, tuple] = {}
        for opset, spec in sorted(specs.items()):
            form = []
            for kw in node.keywords:
                if kw.arg is None or kw.arg == "_outputs" or kw.arg in spec.attributes:
                    continue
                pos = spec.input_position(INPUT_RENAMES.get((name, kw.arg), kw.arg))
                if pos is None:
                    pos = spec.input_position(kw.arg)
                if pos is None:
                    known = ", ".join(sorted(spec.attributes)) or "none"
                    inputs = ", ".join(f.name for f in spec.inputs)
                    raise self.fail(
                        kw,
                        f"ONNX {name}-{spec.since} has no attribute or input {kw.arg} "
                        f"(attributes: {known}; inputs: {inputs})",
                    )
                form.append((kw.arg, pos))
            forms[opset] = tuple(form)
        changes = [o for o in sorted(forms)[1:] if forms[o] != forms[o - 1]]
        if changes:
            raise FormSplit(changes)
        moved = dict(forms[min(forms)])
        if not moved:
            return
        for kw_name, pos in sorted(moved.items(), key=lambda item: item[1]):
            kw = next(k for k in node.keywords if k.arg == kw_name)
            if pos < len(node.args):
                raise self.fail(kw, f"input {pos} of {name} is given twice: here and by position")
            if any(isinstance(a, ast.Starred) for a in node.args):
                raise self.fail(kw, "inputs given by name cannot follow a *list of inputs")
            while len(node.args) < pos:
                node.args.append(ast.copy_location(ast.Constant(None), kw.value))
            node.args.append(kw.value)
        node.keywords = [k for k in node.keywords if k.arg not in moved]

    def _need_optional(self, arg: ast.AST, specs: dict[int, OpSpec], pos: int, name: str) -> None:
        for o, s in specs.items():
            formal = s.formal_input(pos)
            if formal is None or not formal.optional:
                what = f"input {pos} ({formal.name})" if formal else f"input {pos}"
                raise self.fail(
                    arg,
                    f"{what} of ONNX {name}-{s.since} is required at opset {o}, but this may be None",
                )

    def _const_dtype(
        self,
        arg: ast.AST,
        sym: Sym,
        type_str: str,
        bound: dict[str, DType],
        specs: dict[int, OpSpec],
        pos: int,
        name: str,
    ) -> DType:
        if type_str in bound:
            return bound[type_str]
        allowed = {frozenset(s.allowed(s.formal_input(pos).type_str)) for s in specs.values()}  # type: ignore[union-attr]
        if len(allowed) == 1:
            (types,) = allowed
            if types == _INDEX_TYPES:  # indices and sizes (Slice's starts, ...): int64
                return DType(fixed="int64")
            if len(types) == 1:
                (only,) = types
                for dt in DTYPE_NAMES:
                    if onnx_type_str(dt) == only:
                        return DType(fixed=dt)
        raise self.fail(
            arg,
            f"cannot tell which dtype the constant for input {pos} of {name} should have; "
            "write const(value, dtype) or const(value, like=tensor)",
        )

    @staticmethod
    def _attr_fits(sym: Sym, attr_type: str) -> bool:
        if sym.pytype == "any" or sym.pytype in ATTRIBUTE_PYTYPES.get(attr_type, frozenset()):
            return True
        return sym.pytype == "number" and attr_type in ("INT", "FLOAT")

    def _output_dtype(
        self,
        spec: OpSpec,
        i: int,
        inputs: list[tuple[ast.expr, Sym]],
        dtypes: list[DType | None],
        attrs: dict[str, Sym],
        node: ast.Call,
    ) -> DType:
        if spec.name in _CAST_ATTR:
            to = attrs.get(_CAST_ATTR[spec.name])
            if to is not None and isinstance(to.literal, str):
                return DType(fixed=to.literal)
            to_node = next((k.value for k in node.keywords if k.arg == _CAST_ATTR[spec.name]), None)
            if isinstance(to_node, ast.Call) and getattr(to_node.func, "id", None) == "dtype_of":
                return DType(param=to_node.args[0].id)  # type: ignore[attr-defined]
            return UNKNOWN
        if spec.name == "CastLike" and len(dtypes) > 1 and dtypes[1] is not None:
            return dtypes[1]
        formal = spec.formal_output(i)
        if formal is None:
            return UNKNOWN
        for pos, d in enumerate(dtypes):
            f = spec.formal_input(pos)
            if f is not None and f.type_str == formal.type_str and d is not None and d.known:
                return d
        allowed = spec.allowed(formal.type_str)
        if len(allowed) == 1:
            (only,) = allowed
            for dt in DTYPE_NAMES:
                if onnx_type_str(dt) == only:
                    return DType(fixed=dt)
        return UNKNOWN


def _aten_name(func: ast.expr) -> str | None:
    """`aten.amax` -> "aten::amax", `aten.add.Tensor` -> "aten::add.Tensor"; else None."""
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not (isinstance(func, ast.Name) and func.id == "aten") or not 1 <= len(parts) <= 2:
        return None
    parts.reverse()
    overload = "" if len(parts) == 1 or parts[1] == "default" else f".{parts[1]}"
    return f"aten::{parts[0]}{overload}"


def _call_result(callee: Callee, dtypes: dict[str, DType]) -> DType:
    """The dtype of a called op's result, where its promotion kind makes it plain."""
    if callee.promote == "always_bool":
        return DType(fixed="bool")
    if callee.promote not in (None, "default") or not dtypes:
        return UNKNOWN
    known = set(dtypes.values())
    return known.pop() if len(known) == 1 else UNKNOWN


def _element(items: Sym) -> Sym:
    """An element of a list of tensors (an argument's element keeps the argument's name, so
    that helpers may read it)."""
    if items.optional_items:  # `Tensor?[]` elements keep their own dtypes
        return Sym(Kind.MAYBE_TENSOR, param=items.param)
    return Sym(Kind.TENSOR, dtype=items.dtype, param=items.param)


def _dynamic_message(node: ast.AST, what: str) -> str:
    text = ast.unparse(node) if isinstance(node, ast.expr) else "this"
    test = f"test `is_static({text})` first"
    return (
        f"{what} must be known while exporting, but `{text}` may be a value the graph computes "
        f"(a SymInt or a Scalar from the model): {test}, require it with `static(...)` (the "
        "export fails where it is not), or compute with ONNX ops"
    )


def _static_tests(test: ast.expr) -> list[tuple[ast.expr, bool]]:
    """What a condition proves static: (x, True) for each x of `is_static(x, ...)` (joined by
    `and`), (x, False) for a lone `not is_static(x)`."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return [t for v in test.values for t in _static_tests(v) if t[1]]
    negated = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
    call = test.operand if negated else test  # type: ignore[attr-defined]
    if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "is_static":
        # negated, it proves nothing where it holds (some argument is dynamic), and every
        # argument static where it does not
        return [(arg, not negated) for arg in call.args]
    return []


def _narrowed(node: ast.expr) -> str:
    """The key under which an environment records that `node` was proved static."""
    return f"<{ast.unparse(node)}>"


def _mentions(key: str, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(ast.parse(key[1:-1])))


def _narrow_by(test: ast.expr, then_env: dict[str, Sym], else_env: dict[str, Sym]) -> None:
    """What `test` proves where it holds (`then_env`) and where it does not: names not None,
    names and expressions (`size(self, 0)`) static."""
    for name, not_none in _none_tests(test):
        _narrow(then_env if not_none else else_env, name)
    for expr, static in _static_tests(test):
        env = then_env if static else else_env
        if isinstance(expr, ast.Name):
            if expr.id in env and env[expr.id].kind is Kind.VALUE:
                env[expr.id] = replace(env[expr.id], dynamic=False)
        else:
            env[_narrowed(expr)] = Sym(Kind.VALUE)


def _none_tests(test: ast.expr) -> list[tuple[str, bool]]:
    """Names a condition proves about None: (name, True) for `name is not None` (joined by
    `and`), (name, False) for a lone `name is None`."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return [t for v in test.values for t in _none_tests(v) if t[1]]
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.left, ast.Name)
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value is None
    ):
        if isinstance(test.ops[0], ast.IsNot):
            return [(test.left.id, True)]
        if isinstance(test.ops[0], ast.Is):
            return [(test.left.id, False)]
    return []


def _narrow(env: dict[str, Sym], name: str) -> None:
    """`name` is known not to be None here."""
    sym = env.get(name)
    if sym is None:
        return
    if sym.kind is Kind.MAYBE_TENSOR:
        env[name] = replace(sym, kind=Kind.TENSOR)
    elif sym.kind is Kind.VALUE:
        env[name] = replace(sym, maybe_none=False)


# -- rendering ------------------------------------------------------------------------------


class _Render(ast.NodeTransformer):
    """Rewrite a checked body into one export path's Python."""

    def __init__(self, notes: dict[tuple, _CallNote], target: str) -> None:
        self.notes = notes
        self.target = target  # "onnxscript", "symbolic", or "condition" (a `when`)
        self.ctx = "op" if target == "onnxscript" else "g"

    @staticmethod
    def _h(attr: str) -> ast.Attribute:
        return ast.Attribute(value=ast.Name("_h", ast.Load()), attr=attr, ctx=ast.Load())

    def _call(
        self, func: str, args: list[ast.expr], keywords: list[ast.keyword] | None = None
    ) -> ast.Call:
        return ast.Call(func=self._h(func), args=args, keywords=keywords or [])

    def _dtype(self, dtype: DType) -> ast.expr:
        return ast.parse(dtype.render(), mode="eval").body

    def _aten(self, node: ast.Call, note: _CallNote, ctx: ast.expr) -> ast.Call:
        """`aten.amax(x, [1])` -> `_h.aten(op, "aten::amax", _h.typed(x, dtype), [1])`."""

        def arg(value: ast.expr, slot: int | str) -> ast.expr:
            out = self.visit(value)
            if slot in note.typed:
                out = self._call("typed", [out, self._dtype(note.typed[slot])])
            return out

        args = [ctx, ast.Constant(note.overload), *(arg(a, i) for i, a in enumerate(node.args))]
        keywords = [ast.keyword(k.arg, arg(k.value, k.arg or "")) for k in node.keywords]
        return self._call("aten", args, keywords)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        note = self.notes.get(_key(node))
        if note is None or note.what == "builtin":
            return self.generic_visit(node)
        ctx = ast.Name(self.ctx, ast.Load())
        if note.what == "aten":
            return self._aten(node, note, ctx)
        name = node.func.id  # type: ignore[attr-defined]
        if note.what == "helper":
            args = [self.visit(a) for a in node.args]
            if name == "const":
                dtype_kw = next((k.value for k in node.keywords if k.arg == "dtype"), None)
                if note.like:
                    dtype = self._dtype(note.like)
                else:
                    dtype = self.visit(dtype_kw) if dtype_kw is not None else args[1]
                return self._call("const", [ctx, args[0], dtype])
            if name == "static":  # the error names what had to be static
                return self._call("static", [args[0], ast.Constant(ast.unparse(node.args[0]))])
            if name in _CTX_HELPERS:
                # a condition only tells static sizes from dynamic ones: it adds no nodes
                if self.target == "condition":
                    return self._call(f"static_{name}", args)
                return self._call(name, [ctx, *args])
            return self._call(name, args)
        # an ONNX op
        args: list[ast.expr] = []
        for pos, arg in enumerate(node.args):
            if pos in note.consts:
                args.append(
                    self._call("const", [ctx, self.visit(arg), self._dtype(note.consts[pos])])
                )
            elif self.target == "symbolic" and (pos in note.optional_inputs or _is_none(arg)):
                args.append(self._call("optional", [ctx, self.visit(arg)]))
            else:
                args.append(self.visit(arg))
        if self.target == "symbolic":
            while args and _is_none_call(args[-1]):
                args.pop()
        keywords: list[ast.keyword] = []
        maybe_none: list[ast.keyword] = []
        for kw in node.keywords:
            value = self.visit(kw.value)
            if kw.arg in note.dtype_attrs:
                value = self._call("onnx_dtype", [value])
            elif self.target == "onnxscript" and note.attr_types.get(kw.arg) in ("FLOAT", "FLOATS"):
                # the builder types an attribute by its Python value: an int would be an INT
                value = self._call("floats", [value])
            if kw.arg == "_outputs":
                keywords.append(
                    ast.keyword("_outputs" if self.target == "onnxscript" else "outputs", value)
                )
                continue
            arg = (
                kw.arg
                if self.target == "onnxscript"
                else f"{kw.arg}_{SYMBOLIC_SUFFIX[note.attr_types[kw.arg]]}"
            )
            (maybe_none if kw.arg in note.maybe_none_attrs else keywords).append(
                ast.keyword(arg, value)
            )
        if maybe_none:
            # attributes that may be None are left out of the node when they are
            keywords.append(ast.keyword(None, self._call("attrs", [], maybe_none)))
        if self.target == "onnxscript":
            call = ast.Call(ast.Attribute(ctx, name, ast.Load()), args, keywords)
        else:
            call = ast.Call(
                ast.Attribute(ctx, "op", ast.Load()), [ast.Constant(name), *args], keywords
            )
        return self._call("as_list", [call]) if note.dynamic_outputs else call


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _is_none_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "optional"
        and _is_none(node.args[1])
    )


def _copy(node: Any) -> Any:
    """A copy of an AST for one rendering to rewrite (a third of codegen's time went to
    copy.deepcopy): nodes and lists are copied, everything else is shared."""
    if isinstance(node, ast.AST):
        new = node.__class__.__new__(node.__class__)
        new.__dict__.update({k: _copy(v) for k, v in node.__dict__.items()})
        return new
    if isinstance(node, list):
        return [_copy(item) for item in node]
    return node


def _render(
    tree: ast.Module, notes: dict[tuple, _CallNote], target: str, in_place: bool = False
) -> str:
    """The body as Python for `target`; `in_place` rewrites `tree` itself (its last use)."""
    out = _Render(notes, target).visit(tree if in_place else _copy(tree))
    return ast.unparse(out)  # unparsing needs no source positions


def parse(source: str, where: Callable[[int, int], Location], mode: str = "exec") -> ast.AST:
    try:
        return ast.parse(source, mode=mode)
    except SyntaxError as err:
        raise SpecError(
            where(err.lineno or 1, (err.offset or 1) - 1), f"not valid Python: {err.msg}"
        ) from None


def check_body(
    source: str,
    where: Callable[[int, int], Location],
    schema: AtenSchema,
    opsets: tuple[int, int],
    when: str | None = None,
    callees: dict[str, Callee] | None = None,
    excluded_by_gaps: tuple[str, ...] = (),
) -> Checked:
    """Check a lowering body against `schema` at `opsets`; raises SpecError.

    `when` is the lowering's condition: what it proves (arguments not None, values static)
    holds in the body; so does the negation of each condition in `excluded_by_gaps`, the
    `when` of gaps that stop the export wherever they hold at these opsets.
    """
    tree = parse(source, where)
    assert isinstance(tree, ast.Module)
    checker = _Checker(source, where, schema, opsets, callees=callees)
    if when is not None:
        checker.when = ast.parse(when, mode="eval").body
    checker.excluded = [ast.parse(text, mode="eval").body for text in excluded_by_gaps]
    checker.body(tree)
    returns = checker.returns[0]
    for other in checker.returns[1:]:
        if len(other) != len(returns):
            raise SpecError(where(1, 0), "every `return` must give the same number of tensors")
    ret_dtypes = tuple(
        r.dtype if all(o[i].dtype == r.dtype for o in checker.returns) else UNKNOWN
        for i, r in enumerate(returns)
    )
    return Checked(
        onnxscript=_render(tree, checker.notes, "onnxscript"),  # arguments run in order:
        symbolic=_render(tree, checker.notes, "symbolic", in_place=True),  # this one last
        ops=tuple(checker.ops),
        returns=ret_dtypes,
        branch_returns=tuple(
            (guards, tuple(sym.dtype for sym in syms))
            for guards, syms in zip(checker.return_guards, checker.returns, strict=True)
        ),
        calls=tuple(checker.calls),
    )


def check_condition(
    source: str,
    where: Callable[[int, int], Location],
    schema: AtenSchema,
) -> str:
    """Check a `when` condition; returns it rendered as a Python expression (both paths)."""
    tree = parse(source, where, mode="eval")
    assert isinstance(tree, ast.Expression)
    checker = _Checker(source, where, schema, (0, 0), condition=True)
    sym = checker.expr(tree.body, checker.params_env())
    checker.need_value(tree.body, sym, "a `when` condition")
    out = _Render(checker.notes, "condition").visit(_copy(tree))
    ast.fix_missing_locations(out)
    return ast.unparse(out)
