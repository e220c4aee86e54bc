"""ATen schemas of the installed torch, and the schemas specs declare for Python callables, as
codegen sees them: each argument typed as what a lowering receives while exporting.

Reading a schema needs torch imported, which takes longer than the rest of codegen. The
schemas read are kept in a cache file per torch install (`SchemaCache`), so that codegen
imports torch only when a spec names an overload it has not read with this torch.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import importlib.util
import json
import keyword
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torchgen.model import Argument, BaseType, FunctionSchema, ListType, OptionalType, Type

from torchonnx.codegen.cache import code_digest, name_hash, write_atomic
from torchonnx.dtypes import name_of as dtype_name
from torchonnx.overloads import UnknownOverload, op_overload, split


class Kind(enum.Enum):
    """What a name in a lowering holds while the exporter runs."""

    TENSOR = "tensor"  # one graph value
    MAYBE_TENSOR = "tensor or None"  # `Tensor?`: a graph value or None
    TENSORS = "list of tensors"  # `Tensor[]`, `Tensor?[]`, or the outputs of a multi-output node
    VALUE = "Python value"  # int, float, bool, str, list, dtype, ... (maybe a graph value: SymInt)
    NONE = "None"

    @property
    def is_tensor(self) -> bool:
        return self in (Kind.TENSOR, Kind.MAYBE_TENSOR, Kind.TENSORS)


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"

    def __reduce__(self) -> str:
        return "NO_DEFAULT"  # copies and pickles are the one sentinel


NO_DEFAULT = _NoDefault()

# How each schema base type is typed in a lowering: (pytype, dynamic). A dynamic type may hold a
# value the graph computes (a SymInt, or a number from `item()`): a 0-d tensor while exporting.
_BASE_TYPES: dict[str, tuple[str, bool]] = {
    "int": ("int", False),
    "SymInt": ("int", True),
    "float": ("float", False),
    "SymFloat": ("float", True),
    "bool": ("bool", False),
    "SymBool": ("bool", True),
    "str": ("str", False),
    "Scalar": ("number", True),
    "ScalarType": ("dtype", False),
    "Layout": ("layout", False),
    "Device": ("device", False),
    "MemoryFormat": ("memory_format", False),
}
# Argument types whose values the runtime turns into names (`float32`, `strided`, `cpu`,
# `contiguous_format`) on every export path, so that bodies compare them with strings.
NAMED_VALUE_TYPES = ("dtype", "layout", "device", "memory_format")
# Value types whose lists are typed by element (`int[]`); lists of others are `any`.
LISTABLE_TYPES = ("int", "float", "bool", "number", "str")


@dataclass(frozen=True)
class Param:
    """One argument of an ATen overload (out arguments excluded)."""

    name: str  # as lowerings spell it: the schema name, `_` appended to Python keywords
    aten_name: str
    type: str  # the schema type, e.g. `Tensor?`, `SymInt[]`, `ScalarType?`
    kind: Kind
    pytype: str  # for Kind.VALUE: int, float, bool, str, number, dtype, ..., int[], float[], any
    optional: bool  # may be None
    default: object  # the Python default, or NO_DEFAULT
    kwarg_only: bool
    dynamic: bool = False  # may be (or hold) a value the graph computes: SymInt, Scalar
    optional_items: bool = False  # `Tensor?[]`: elements may be None


@dataclass(frozen=True)
class AtenSchema:
    qualname: str  # aten::add.Tensor, aten::relu (the default overload has no suffix), operator.add
    name: str  # aten::add, operator.add
    overload: str  # Tensor, or "" for the default overload
    schema: str  # the full schema string
    params: tuple[Param, ...]
    returns: tuple[str, ...]  # Tensor, Tensor[], or `value` for a number (SymInt, Scalar, ...)
    mutates: bool  # in-place or out variant
    return_names: tuple[str, ...] = ()  # as the schema names them (`values`, `indices`), or ""

    @property
    def packet(self) -> str:
        """The op name without namespace, e.g. `add` (the key of torch's symbolic registry)."""
        return self.name.split("::", 1)[1] if "::" in self.name else self.name.rsplit(".", 1)[1]

    @property
    def func_name(self) -> str:
        """A Python identifier for this overload, e.g. `add_Tensor`, `operator_add`."""
        if "::" not in self.name:
            return self.name.replace(".", "_")
        return self.packet + (f"_{self.overload}" if self.overload else "")

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


# Overload names and OpOverloads are mapped by the runtime's one copy of that rule
# (torchonnx.overloads); a name the installed torch lacks is a spec error.
SchemaLookupError = UnknownOverload


def is_aten_name(qualname: str) -> bool:
    """`aten::add.Tensor` names an operator; `operator.add`, `math.ceil` name Python callables."""
    return "::" in qualname


def _typed(t: Type) -> tuple[Kind, str, bool, bool, bool]:
    """(kind, pytype, optional, dynamic, optional_items) of a schema type."""
    optional = isinstance(t, OptionalType)
    inner = t.elem if isinstance(t, OptionalType) else t
    if isinstance(inner, BaseType) and inner.name.name == "Tensor":
        return (Kind.MAYBE_TENSOR if optional else Kind.TENSOR), "tensor", optional, False, False
    if isinstance(inner, ListType):
        elem = inner.elem
        elem_optional = isinstance(elem, OptionalType)
        base = elem.elem if isinstance(elem, OptionalType) else elem
        if isinstance(base, BaseType) and base.name.name == "Tensor":
            return Kind.TENSORS, "tensor", optional, False, elem_optional
        pytype, dynamic = _BASE_TYPES.get(str(base), ("any", False))
        listed = f"{pytype}[]" if pytype in LISTABLE_TYPES else "any"
        return Kind.VALUE, listed, optional, dynamic, False
    pytype, dynamic = _BASE_TYPES.get(str(inner), ("any", False))
    return Kind.VALUE, pytype, optional, dynamic, False


def _default(arg: Argument) -> object:
    """The Python value of a declared schema's default: `None`, `True`, `1`, `0.5`, `[1, 1]`,
    a dtype (`long`: int64) or a string."""
    text = arg.default
    if text is None:
        return NO_DEFAULT
    if text in ("None", "True", "False"):
        return {"None": None, "True": True, "False": False}[text]
    if text.startswith("["):
        inner = text[1:-1].strip()
        return [_number(v.strip()) for v in inner.split(",")] if inner else []
    with contextlib.suppress(ValueError):
        return _number(text)
    if str(arg.type).removesuffix("?") == "ScalarType" and text in _SCALAR_TYPE_DEFAULTS:
        return _SCALAR_TYPE_DEFAULTS[text]
    return text.strip('"')


# How schemas write dtype defaults.
_SCALAR_TYPE_DEFAULTS = {"long": "int64", "int": "int32", "float": "float32", "double": "float64"}


def _number(text: str) -> int | float:
    return int(text) if re.fullmatch(r"-?\d+", text) else float(text)


def _param(arg: Argument, default: object, kwarg_only: bool) -> Param:
    kind, pytype, optional, dynamic, optional_items = _typed(arg.type)
    return Param(
        name=arg.name + "_" if keyword.iskeyword(arg.name) else arg.name,
        aten_name=arg.name,
        type=str(arg.type),
        kind=kind,
        pytype=pytype,
        optional=optional,
        default=default,
        kwarg_only=kwarg_only,
        dynamic=dynamic,
        optional_items=optional_items,
    )


def _return_type(t: Type) -> str:
    if isinstance(t, BaseType) and t.name.name == "Tensor":
        return "Tensor"
    if isinstance(t, ListType) and str(t.elem) == "Tensor":
        return "Tensor[]"
    return "value"


def _parsed(text: str) -> FunctionSchema:
    # torch prints list defaults as `[1, 1]`; torchgen splits arguments at ", "
    text = re.sub(r"\[[^\]]*\]", lambda m: m.group(0).replace(" ", ""), text)
    return FunctionSchema.parse(text.split("::", 1)[1] if "::" in text else text)


@functools.cache
def lookup(qualname: str, declared: str | None = None) -> AtenSchema:
    """The schema of an overload of the installed torch, or of a Python callable as its spec
    declares it (`declared`, e.g. `add(Tensor a, Tensor b) -> Tensor`); SchemaLookupError if
    there is none."""
    if not is_aten_name(qualname):
        if declared is None:
            raise SchemaLookupError(
                f"{qualname} is a Python callable, which has no ATen schema: declare one with "
                "`schema: name(Tensor a, ...) -> Tensor`"
            )
        return _declared(qualname, declared)
    cached = _cache.get(qualname)
    if cached is not None:
        return cached
    schema = _from_torch(qualname)
    _cache.add(schema)
    return schema


def _from_torch(qualname: str) -> AtenSchema:
    import torch  # only here: see the module's docstring

    op = op_overload(qualname)
    schema = op._schema
    ns, name, overload = split(qualname)
    parsed = _parsed(str(schema))
    torch_args = {a.name: a for a in schema.arguments}
    params = []
    for arg in parsed.arguments.flat_all:
        if arg.name not in torch_args or torch_args[arg.name].is_out:
            continue
        # defaults as torch parses them (numbers, lists, dtypes), not as torchgen keeps them (text)
        ta = torch_args[arg.name]
        default = ta.default_value if ta.has_default_value() else NO_DEFAULT
        if isinstance(default, torch.dtype):
            default = dtype_name(default)
        params.append(_param(arg, default, ta.kwarg_only))
    mutates = any(a.alias_info is not None and a.alias_info.is_write for a in schema.arguments)
    return AtenSchema(
        qualname=qualname,
        name=f"{ns}::{name}",
        overload=overload,
        schema=str(schema),
        params=tuple(params),
        returns=tuple(_return_type(r.type) for r in parsed.returns),
        return_names=tuple(r.name or "" for r in parsed.returns),
        mutates=mutates,
    )


def _declared(qualname: str, text: str) -> AtenSchema:
    try:
        parsed = _parsed(text)
    except Exception as err:  # torchgen raises AssertionError and others on bad text
        raise SchemaLookupError(f"`schema` is not a valid schema: {err}") from None
    positional = {id(a) for a in parsed.arguments.flat_positional}
    params = [
        _param(arg, _default(arg), id(arg) not in positional) for arg in parsed.arguments.flat_all
    ]
    return AtenSchema(
        qualname=qualname,
        name=qualname,
        overload="",
        schema=f"{qualname}{text[text.index('('):]}",
        params=tuple(params),
        returns=tuple(_return_type(r.type) for r in parsed.returns),
        return_names=tuple(r.name or "" for r in parsed.returns),
        mutates=False,
    )


class SchemaCache:
    """The schemas codegen has read from one torch install (see codegen/cache.py), as JSON: one
    file per install, named by its location, its version file (which names the build) and
    codegen's code."""

    def __init__(self, directory: Path | None = None) -> None:
        self.path: Path | None = None
        self.schemas: dict[str, AtenSchema] = {}
        self.added = False
        spec = importlib.util.find_spec("torch")  # finds torch without importing it
        if directory is None or spec is None or spec.origin is None:
            return
        torch_dir = Path(spec.origin).parent
        try:
            version = (torch_dir / "version.py").read_text(encoding="utf-8")
        except OSError:
            return
        self.install = f"aten-schemas-{name_hash(str(torch_dir))}"
        self.path = directory / f"{self.install}-{name_hash(version + code_digest(__name__))}.json"
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.schemas = {q: _schema_from_json(d) for q, d in data.items()}

    def get(self, qualname: str) -> AtenSchema | None:
        return self.schemas.get(qualname)

    def add(self, schema: AtenSchema) -> None:
        self.schemas[schema.qualname] = schema
        self.added = True

    def save(self) -> None:
        """Write the file if schemas were added, in place of the install's previous one."""
        if self.path is None or not self.added:
            return
        data = {}
        for qualname, schema in sorted(self.schemas.items()):
            item = _schema_to_json(schema)
            with contextlib.suppress(TypeError, ValueError):  # a default JSON cannot hold
                json.dumps(item)
                data[qualname] = item
        text = json.dumps(data, indent=0)
        write_atomic(self.path, text.encode(), replaces=f"{self.install}-*.json")
        self.added = False


# Without use_cache, schemas are kept in memory only (tests run codegen without touching disk).
_cache = SchemaCache()


def use_cache(cache: SchemaCache) -> None:
    """Read and add schemas through `cache` from now on."""
    global _cache
    _cache = cache
    lookup.cache_clear()


def _schema_to_json(schema: AtenSchema) -> dict[str, Any]:
    data = asdict(schema)
    for p in data["params"]:
        p["kind"] = p["kind"].value
        if p["default"] is NO_DEFAULT:
            del p["default"]
    return data


def _schema_from_json(data: dict[str, Any]) -> AtenSchema:
    params = tuple(
        Param(**{**p, "kind": Kind(p["kind"]), "default": p.get("default", NO_DEFAULT)})
        for p in data["params"]
    )
    return AtenSchema(
        **{
            **data,
            "params": params,
            "returns": tuple(data["returns"]),
            "return_names": tuple(data["return_names"]),
        }
    )
