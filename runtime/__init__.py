"""torchonnx: export PyTorch models to ONNX, with every ATen lowering declared in YAML specs.

    import torchonnx
    onnx_program = torchonnx.export(model, (x,), "model.onnx")

The public names load on first use, so `torchonnx.codegen` runs even while the generated
code is out of date.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "export": "torchonnx.api",
    "TrainingMode": "torchonnx.api",
    "opset_range": "torchonnx.api",
    "DEFAULT_OPSET": "torchonnx.api",
    "ONNXProgram": "torchonnx.program",
    "is_supported": "torchonnx.support",
    "supported_opsets": "torchonnx.support",
    "OnnxExporterError": "torchonnx.errors",
    "UnsupportedOperatorError": "torchonnx.errors",
    "UnsupportedArgumentError": "torchonnx.errors",
    "UnsupportedOpsetError": "torchonnx.errors",
    "CaptureError": "torchonnx.errors",
    "VerificationError": "torchonnx.errors",
    "SaveError": "torchonnx.errors",
    "OptimizationWarning": "torchonnx.errors",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'torchonnx' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
