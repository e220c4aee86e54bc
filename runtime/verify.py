"""Checking an exported model against eager PyTorch with onnxruntime."""

from __future__ import annotations

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
    max_abs_diff: float
    ok: bool


def compare(expected: Sequence[torch.Tensor], actual: Sequence[torch.Tensor]) -> list[OutputCheck]:
    if len(expected) != len(actual):
        raise VerificationError(f"PyTorch gives {len(expected)} outputs, onnxruntime {len(actual)}")
    checks = []
    for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
        if e.shape != a.shape or e.dtype != a.dtype:
            raise VerificationError(
                f"output {i}: PyTorch gives {e.dtype} {tuple(e.shape)}, onnxruntime {a.dtype} {tuple(a.shape)}"
            )
        if e.dtype.is_floating_point:
            diff = (e.double() - a.double()).abs()
            finite = diff[torch.isfinite(diff)]
            max_diff = float(finite.max()) if finite.numel() else 0.0
            rtol, atol = TOLERANCES.get(e.dtype, (1e-5, 1e-6))
            ok = torch.allclose(a.double(), e.double(), rtol=rtol, atol=atol, equal_nan=True)
        else:
            max_diff = float((e.long() - a.long()).abs().max()) if e.numel() else 0.0
            ok = torch.equal(e, a)
        checks.append(OutputCheck(i, e.dtype, tuple(e.shape), max_diff, ok))
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
        details = "; ".join(
            f"output {c.index} ({c.dtype}, {c.shape}): max abs diff {c.max_abs_diff:.3g}"
            for c in bad
        )
        raise VerificationError(f"onnxruntime differs from PyTorch: {details}")
    return checks
