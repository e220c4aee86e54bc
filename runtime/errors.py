"""The errors torchonnx raises: one type per kind of failure, each saying what to do."""

from __future__ import annotations

from dataclasses import dataclass


class OnnxExporterError(RuntimeError):
    """Base of every error torchonnx raises while exporting."""


class UnsupportedArgumentError(OnnxExporterError, ValueError):
    """An `export` argument names a feature torchonnx does not offer (yet)."""


class UnsupportedOpsetError(OnnxExporterError, ValueError):
    """The requested opset is outside the range torchonnx exports to."""


class CaptureError(OnnxExporterError):
    """torch.export could not capture the model."""


class VerificationError(OnnxExporterError):
    """onnxruntime's results differ from eager PyTorch beyond the tolerance."""


class SaveError(OnnxExporterError):
    """The model could not be written; nothing was left behind."""


@dataclass(frozen=True)
class Unsupported:
    """One call the exporter could not lower."""

    op: str  # aten::add.Tensor, or the FX target for non-ATen calls
    reason: str
    dtypes: tuple[str, ...] = ()  # of the tensor arguments
    source: str | None = None  # where the user's code made the call: file:line: code
    module: str | None = None  # the nn.Module path, e.g. encoder.layers.0.self_attn
    spec: str | None = None  # the spec entry or lowering, file:line
    opsets: tuple[int, ...] = ()  # opsets at which this call would lower

    def describe(self) -> str:
        lines = [f"{self.op}({', '.join(self.dtypes)}): {self.reason}"]
        if self.source:
            lines.append(f"    called at {self.source}")
        if self.module:
            lines.append(f"    in module {self.module}")
        if self.spec:
            lines.append(f"    spec: {self.spec}")
        return "\n".join(lines)


class UnsupportedOperatorError(OnnxExporterError):
    """Some calls of the model cannot be lowered; every one of them is listed."""

    def __init__(self, problems: list[Unsupported], opset: int) -> None:
        self.problems = problems
        self.opset = opset
        count = len(problems)
        body = "\n".join(p.describe() for p in problems)
        common = set.intersection(*(set(p.opsets) for p in problems)) if problems else set()
        hint = ""
        if common and opset not in common:
            nearest = min(common, key=lambda o: (abs(o - opset), o))
            hint = f"\nEvery one of them lowers at opset {nearest}: pass opset_version={nearest}."
        super().__init__(
            f"{count} call{'s' if count > 1 else ''} cannot be exported to ONNX opset {opset}:\n{body}{hint}"
        )


class OptimizationWarning(UserWarning):
    """An optimization step failed and was skipped; the exported model is right without it."""
