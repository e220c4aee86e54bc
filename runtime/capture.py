"""Capturing a model with torch.export, and decomposing what no spec covers."""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch.export import ExportedProgram

from torchonnx.errors import CaptureError
from torchonnx.overloads import UnknownOverload, op_overload


@functools.cache
def spec_overloads() -> tuple[torch._ops.OpOverload, ...]:
    """Every OpOverload some spec covers (they are kept whole by decomposition)."""
    from torchonnx.generated.registry import OVERLOADS

    out = []
    for name in OVERLOADS:
        try:
            out.append(op_overload(name))
        except UnknownOverload:  # an overload this torch does not have
            continue
    return tuple(out)


def decomposition_table() -> dict[Any, Any]:
    """torch's default decompositions minus every overload that has a spec."""
    table = torch.export.default_decompositions()
    for op in spec_overloads():
        table.pop(op, None)
    return table


@contextlib.contextmanager
def training_mode(model: Any, mode: str) -> Iterator[None]:
    """Put `model` in eval or training mode while capturing ("preserve" leaves it)."""
    if not isinstance(model, torch.nn.Module) or mode == "preserve":
        yield
        return
    # train() sets every submodule: restore each one's own flag, or a model whose parent was
    # left in training mode around eval submodules would come back with dropout switched on
    flags = [(module, module.training) for module in model.modules()]
    model.train(mode == "training")
    try:
        yield
    finally:
        for module, training in flags:
            module.training = training


def capture(
    model: torch.nn.Module | ExportedProgram,
    args: tuple[Any, ...],
    kwargs: dict[str, Any] | None,
    dynamic_shapes: Any,
    *,
    training: str = "eval",
    torch_names: Mapping[str, str] | None = None,
) -> ExportedProgram:
    """An ExportedProgram of `model` at the ATen level our specs cover. `torch_names` maps
    torch's names of dims to the user's, for the error when capture fails."""
    if isinstance(model, ExportedProgram):
        program = model
    else:
        if not isinstance(model, torch.nn.Module):
            raise TypeError(
                f"export takes an nn.Module or an ExportedProgram, not {type(model).__name__}"
            )
        program = _export(model, args, kwargs, dynamic_shapes, training, torch_names or {})
    with warnings.catch_warnings():
        # torch's own deepcopy of its module call graph trips this pytree deprecation; it is
        # not about the user's model and they can do nothing about it.
        warnings.filterwarnings("ignore", message=r".*treespec, LeafSpec", category=FutureWarning)
        return program.run_decompositions(decomposition_table())


def _export(
    model: torch.nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any] | None,
    dynamic_shapes: Any,
    training: str,
    torch_names: Mapping[str, str],
) -> ExportedProgram:
    errors = []
    with training_mode(model, training):
        for strict in (False, True):  # non-strict first: it runs the model's Python as is
            try:
                return torch.export.export(
                    model, args, kwargs=kwargs, dynamic_shapes=dynamic_shapes, strict=strict
                )
            except Exception as err:
                errors.append(f"torch.export.export(strict={strict}): {type(err).__name__}: {err}")
                if _about_the_call(err):
                    break  # strict capture would fail the same way, and log pages doing so
    message = "torch.export could not capture the model.\n\n" + "\n\n".join(errors)
    named = [f"{ours} is the dim you named `{yours}`" for ours, yours in torch_names.items()]
    mentioned = [n for n, ours in zip(named, torch_names, strict=True) if ours in message]
    if mentioned:
        message += "\n\nIn torch's words above, " + "; ".join(mentioned) + "."
    raise CaptureError(message)


def _about_the_call(err: Exception) -> bool:
    """Whether torch.export refused the arguments themselves (dynamic_shapes that contradict
    the model, say) rather than the model's code: tracing another way cannot help."""
    try:
        from torch._dynamo.exc import UserError  # torch.export raises it; no public alias
    except ImportError:  # pragma: no cover - a torch without it
        return False
    return isinstance(err, UserError)
