"""Checking an exported model against eager PyTorch with onnxruntime."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from torchonnx.errors import VerificationError
from torchonnx.program import ONNXProgram

# (rtol, atol) by dtype: ONNX runtimes may reorder float arithmetic.
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-7, 1e-7),
    torch.float32: (1e-4, 1e-5),
    torch.float16: (1e-2, 1e-3),
    torch.bfloat16: (2e-2, 1e-2),
}


@dataclass(frozen=True)
class OutputCheck:
    index: int
    dtype: torch.dtype
    shape: tuple[int, ...]
    max_abs_diff: float  # over positions where both are finite; inf where NaN or inf differ
    ok: bool
    detail: str = ""  # what differs, where: empty when ok

    def describe(self) -> str:
        return f"output {self.index} ({self.dtype}, {self.shape}): {self.detail}"


def _at(mask: torch.Tensor) -> tuple[int, tuple[int, ...]]:
    """How many positions `mask` holds, and the first of them."""
    where = mask.nonzero()
    return len(where), tuple(int(i) for i in where[0]) if len(where) else ()


def _value(t: torch.Tensor, index: tuple[int, ...]) -> str:
    return repr(t[index].item())


def _floating(e: torch.Tensor, a: torch.Tensor) -> tuple[float, bool, str]:
    """(max abs diff over finite pairs, ok, what differs) for floating tensors.

    NaN must be where PyTorch has NaN, infinities where it has the same infinity; the other
    values are compared with the dtype's tolerances.
    """
    e64, a64 = e.double(), a.double()
    problems = []
    nan = torch.isnan(e64) != torch.isnan(a64)
    count, first = _at(nan)
    if count:
        problems.append(
            f"NaN differs at {count} position{'s' * (count > 1)} (first {list(first)}: "
            f"PyTorch {_value(e64, first)}, got {_value(a64, first)})"
        )
    inf = (torch.isinf(e64) | torch.isinf(a64)) & ~torch.isnan(e64) & ~torch.isnan(a64)
    inf &= e64 != a64
    count, first = _at(inf)
    if count:
        problems.append(
            f"infinity differs at {count} position{'s' * (count > 1)} (first {list(first)}: "
            f"PyTorch {_value(e64, first)}, got {_value(a64, first)})"
        )
    finite = torch.isfinite(e64) & torch.isfinite(a64)
    diff = torch.where(finite, (e64 - a64).abs(), torch.zeros_like(e64))
    max_diff = float(diff.max()) if diff.numel() else 0.0
    rtol, atol = TOLERANCES.get(e.dtype, (1e-5, 1e-6))
    beyond = finite & (diff > atol + rtol * e64.abs())
    count, _ = _at(beyond)
    if count:
        worst = tuple(int(i) for i in torch.unravel_index((diff * beyond).argmax(), diff.shape))
        problems.append(
            f"{count} value{'s' * (count > 1)} beyond rtol={rtol:g}, atol={atol:g} (max abs "
            f"diff {max_diff:.3g} at {list(worst)}: PyTorch {_value(e64, worst)}, "
            f"got {_value(a64, worst)})"
        )
    if problems and (nan.any() or inf.any()):
        max_diff = math.inf
    return max_diff, not problems, "; ".join(problems)


def _exact(e: torch.Tensor, a: torch.Tensor) -> tuple[float, bool, str]:
    """(max abs diff, ok, what differs) for integer and bool tensors, which must be equal."""
    if not e.numel():
        return 0.0, True, ""
    differ = e != a
    count, first = _at(differ)
    max_diff = float((e.long() - a.long()).abs().max())
    if not count:
        return max_diff, True, ""
    return (
        max_diff,
        False,
        f"{count} value{'s' * (count > 1)} differ (first {list(first)}: PyTorch "
        f"{_value(e, first)}, got {_value(a, first)}; max abs diff {max_diff:.3g})",
    )


def compare(expected: Sequence[torch.Tensor], actual: Sequence[torch.Tensor]) -> list[OutputCheck]:
    """Each output of a model against PyTorch's: dtype and shape equal, integers and bools
    equal, floats within the dtype's tolerance with NaN and infinities in the same places."""
    if len(expected) != len(actual):
        raise VerificationError(f"PyTorch gives {len(expected)} outputs, onnxruntime {len(actual)}")
    checks = []
    for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
        if e.shape != a.shape or e.dtype != a.dtype:
            raise VerificationError(
                f"output {i}: PyTorch gives {e.dtype} {tuple(e.shape)}, onnxruntime {a.dtype} {tuple(a.shape)}"
            )
        e, a = e.detach().cpu(), a.detach().cpu()
        if e.dtype.is_floating_point:
            max_diff, ok, detail = _floating(e, a)
        else:
            max_diff, ok, detail = _exact(e, a)
        checks.append(OutputCheck(i, e.dtype, tuple(e.shape), max_diff, ok, detail))
    return checks


def eager_outputs(
    model: Any, args: Sequence[Any], kwargs: dict[str, Any] | None
) -> list[torch.Tensor]:
    with torch.no_grad():
        out = model(*args, **(kwargs or {}))
    leaves, _ = torch.utils._pytree.tree_flatten(out)
    return [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]


def verify(
    program: ONNXProgram, model: Any, args: Sequence[Any], kwargs: dict[str, Any] | None = None
) -> list[OutputCheck]:
    """Run the model in PyTorch and in onnxruntime on the same inputs; raise on a mismatch."""
    if isinstance(model, torch.export.ExportedProgram):
        model = model.module()
    checks = compare(eager_outputs(model, args, kwargs), program(*args, **(kwargs or {})))
    bad = [c for c in checks if not c.ok]
    if bad:
        details = "; ".join(c.describe() for c in bad)
        raise VerificationError(f"onnxruntime differs from PyTorch: {details}")
    return checks
