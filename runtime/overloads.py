"""ATen overload names and torch's OpOverload objects, both ways: the one copy of the rule.

Specs, the registry, errors and tests name an overload `namespace::op.overload`
(`aten::add.Tensor`); the default overload has no suffix (`aten::relu`), as torch's schemas
print it. Codegen and the runtime both use these functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# torch is imported where an OpOverload is made or named, not here: codegen splits names and
# reads cached schemas without loading torch.


class UnknownOverload(LookupError):
    """The installed torch has no such operator or overload."""


def split(name: str) -> tuple[str, str, str]:
    """`aten::add.Tensor` -> ("aten", "add", "Tensor"); the default overload is ""."""
    if "::" not in name:
        raise UnknownOverload(f"{name!r} is not a qualified op name like 'aten::add.Tensor'")
    namespace, rest = name.split("::", 1)
    op, _, overload = rest.partition(".")
    return namespace, op, overload


def op_overload(name: str) -> torch._ops.OpOverload:
    """The OpOverload that `name` names; UnknownOverload if this torch has none."""
    import torch

    namespace, op, overload = split(name)
    try:
        packet = getattr(getattr(torch.ops, namespace), op)
    except (AttributeError, RuntimeError) as err:
        raise UnknownOverload(
            f"torch {torch.__version__} has no operator {namespace}::{op}"
        ) from err
    try:
        return getattr(packet, overload or "default")
    except (AttributeError, RuntimeError) as err:
        known = ", ".join(sorted(f"{namespace}::{op}.{o}" for o in packet.overloads()))
        raise UnknownOverload(
            f"torch {torch.__version__} has no overload {name}; it has {known}"
        ) from err


def name_of(op: torch._ops.OpOverload) -> str:
    """The name of an OpOverload: `aten::add.Tensor`, `aten::relu`."""
    schema = op._schema
    return schema.name + (f".{schema.overload_name}" if schema.overload_name else "")


def target_name(target: object) -> str:
    """The spec key of an FX call's target: an ATen overload's name, or the qualified name of a
    Python callable (`operator.mul`, `math.ceil`, `torch.sym_max`) as torch.export emits them
    for arithmetic on sizes."""
    import torch

    if isinstance(target, torch._ops.OpOverload):
        return name_of(target)
    module = getattr(target, "__module__", None) or ""
    module = {"_operator": "operator"}.get(module, module)
    return f"{module}.{getattr(target, '__name__', target)}"


def normalize(op: str | torch._ops.OpOverload) -> str:
    """An overload given by OpOverload or by name (`add.Tensor` means `aten::add.Tensor`)."""
    if not isinstance(op, str):
        return name_of(op)
    return op if "::" in op else f"aten::{op}"
