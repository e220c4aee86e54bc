"""`torchonnx.export`: the arguments of `torch.onnx.export`, one pipeline behind them."""

from __future__ import annotations

import enum
import os
import time
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from torchonnx.build import GraphBuild
from torchonnx.capture import capture
from torchonnx.dynamic import dim_names, for_torch_export, from_dynamic_axes, torch_names
from torchonnx.errors import UnsupportedArgumentError, UnsupportedOpsetError
from torchonnx.optimize import finalize
from torchonnx.optimize import optimize as optimize_model
from torchonnx.program import ONNXProgram

DEFAULT_OPSET = 18


class TrainingMode(enum.Enum):
    """How the model's training flag is set while exporting (torch.onnx's values)."""

    EVAL = 0
    PRESERVE = 1
    TRAINING = 2


def opset_range() -> tuple[int, int]:
    """The opsets torchonnx exports to: (oldest, newest)."""
    from torchonnx.generated.registry import NEWEST_OPSET, OLDEST_OPSET

    return OLDEST_OPSET, NEWEST_OPSET


def _training(mode: Any) -> str:
    name = getattr(mode, "name", mode)  # torch.onnx.TrainingMode or ours, or a string
    value = str(name).lower()
    if value not in ("eval", "preserve", "training"):
        raise UnsupportedArgumentError(f"training={mode!r}: use EVAL, PRESERVE or TRAINING")
    return value


def _refuse(**features: Any) -> None:
    """Arguments of torch.onnx.export whose feature torchonnx does not offer yet."""
    for name, (value, default, what) in features.items():
        if value != default and not (value is None and default in ((), {}, False)):
            raise UnsupportedArgumentError(
                f"{name}={value!r}: {what} is not supported by torchonnx yet; "
                f"leave {name} at its default ({default!r})"
            )


def export(
    model: torch.nn.Module | torch.export.ExportedProgram,
    args: tuple[Any, ...] | torch.Tensor = (),
    f: str | os.PathLike[str] | None = None,
    *,
    kwargs: dict[str, Any] | None = None,
    verbose: bool | None = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    opset_version: int | None = None,
    dynamo: bool = True,
    external_data: bool = True,
    dynamic_shapes: dict[str, Any] | tuple[Any, ...] | list[Any] | None = None,
    custom_translation_table: dict[Callable[..., Any], Callable[..., Any]] | None = None,
    report: bool = False,
    optimize: bool = True,
    verify: bool = False,
    profile: bool = False,
    dump_exported_program: bool = False,
    artifacts_dir: str | os.PathLike[str] = ".",
    export_params: bool = True,
    keep_initializers_as_inputs: bool = False,
    dynamic_axes: Mapping[str, Mapping[int, str]] | Mapping[str, Sequence[int]] | None = None,
    training: Any = TrainingMode.EVAL,
    operator_export_type: Any = None,
    do_constant_folding: bool = True,
    custom_opsets: Mapping[str, int] | None = None,
    export_modules_as_functions: bool | Collection[type[torch.nn.Module]] = False,
    autograd_inlining: bool = True,
) -> ONNXProgram:
    """Export `model` to ONNX; save it to `f` when given. Returns the ONNXProgram.

    Takes every argument of `torch.onnx.export` with the same names and defaults. An argument
    whose feature torchonnx does not offer yet raises UnsupportedArgumentError naming it.
    """
    _refuse(
        dynamo=(dynamo, True, "the TorchScript path (dynamo=False)"),
        custom_translation_table=(custom_translation_table, None, "a custom translation table"),
        report=(report, False, "a Markdown export report"),
        profile=(profile, False, "profiling the export"),
        export_params=(export_params, True, "exporting without parameters"),
        custom_opsets=(custom_opsets, None, "custom opset domains"),
        export_modules_as_functions=(
            export_modules_as_functions,
            False,
            "modules as ONNX functions",
        ),
        autograd_inlining=(autograd_inlining, True, "keeping autograd functions whole"),
    )
    if operator_export_type is not None and getattr(operator_export_type, "name", "ONNX") != "ONNX":
        raise UnsupportedArgumentError(
            f"operator_export_type={operator_export_type!r}: only plain ONNX export is supported"
        )
    oldest, newest = opset_range()
    opset = DEFAULT_OPSET if opset_version is None else opset_version
    if not isinstance(opset, int) or not oldest <= opset <= newest:
        raise UnsupportedOpsetError(
            f"opset_version={opset_version!r}: torchonnx exports to opsets {oldest} to {newest}"
        )
    if isinstance(args, torch.Tensor):
        args = (args,)
    args = tuple(args)
    if dynamic_axes:
        if dynamic_shapes is not None:
            raise UnsupportedArgumentError(
                "dynamic_axes and dynamic_shapes both declare dynamic dims: give one of them"
            )
        if not isinstance(model, torch.nn.Module):
            raise UnsupportedArgumentError(
                "dynamic_axes: an ExportedProgram's dynamic dims were fixed when it was exported"
            )
        dynamic_shapes = from_dynamic_axes(
            model, args, kwargs, dynamic_axes, input_names, output_names
        )
    timings: dict[str, float] = {}
    start = time.perf_counter()
    program = capture(
        model,
        args,
        kwargs,
        for_torch_export(dynamic_shapes),
        training=_training(training),
        torch_names=torch_names(model, args, kwargs, dynamic_shapes),
    )
    names = dim_names(program, model, args, kwargs, dynamic_shapes)
    timings["capture"] = time.perf_counter() - start
    if isinstance(model, torch.export.ExportedProgram) and not args and not kwargs:
        args, kwargs = model.example_inputs or ((), None)  # what verify runs with
    if dump_exported_program:
        Path(artifacts_dir).mkdir(parents=True, exist_ok=True)
        name = type(model).__name__
        (Path(artifacts_dir) / f"{name}_exported_program.txt").write_text(
            str(program), encoding="utf-8"
        )
    start = time.perf_counter()
    build = GraphBuild(program, opset, input_names, output_names, names)
    onnx_model = build.run()
    timings["build"] = time.perf_counter() - start
    start = time.perf_counter()
    if optimize:
        optimize_model(onnx_model, constant_folding=do_constant_folding)
    finalize(onnx_model, initializers_as_inputs=keep_initializers_as_inputs)
    timings["optimize"] = time.perf_counter() - start
    result = ONNXProgram(
        onnx_model,
        program,
        external_data=external_data,
        initializers_as_inputs=keep_initializers_as_inputs,
    )
    result.timings = timings
    result.used = build.backend.used
    result.gaps_met = build.backend.gaps_met
    for overload, gap in result.runtime_gaps:
        warnings.warn(
            f"{overload}: {gap.reason} (the model is valid ONNX; {gap.spec})", stacklevel=2
        )
    if verify:
        from torchonnx.verify import verify as run_verify

        run_verify(result, model, args, kwargs)
    if f is not None:
        result.save(f)
    if verbose:
        print(result)
    return result
