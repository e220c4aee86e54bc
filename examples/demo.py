"""Export the two models of the torch.onnx documentation, check them, run them.

The 4-layer MLP with sigmoids on a 97x8 input, and Conv2d(1, 128, 5) + relu on a 1x1x128x128
input. Each is saved, checked with onnx's full checker, run with onnxruntime and compared with
eager PyTorch. Run with `make demo`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

import torchonnx

OUT = Path(__file__).resolve().parent.parent / "out"


class MLPModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc0 = nn.Linear(8, 8, bias=True)
        self.fc1 = nn.Linear(8, 4, bias=True)
        self.fc2 = nn.Linear(4, 2, bias=True)
        self.fc3 = nn.Linear(2, 2, bias=True)

    def forward(self, tensor_x: torch.Tensor) -> torch.Tensor:
        tensor_x = torch.sigmoid(self.fc0(tensor_x))
        tensor_x = torch.sigmoid(self.fc1(tensor_x))
        tensor_x = torch.sigmoid(self.fc2(tensor_x))
        return self.fc3(tensor_x)


class ConvModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 128, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv1(x))


def run(name: str, model: nn.Module, x: torch.Tensor) -> tuple[str, int, int, float]:
    path = OUT / f"{name}.onnx"
    program = torchonnx.export(model.eval(), (x,), path, input_names=["input"])
    onnx.checker.check_model(str(path), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    diff = float(np.abs(got - want).max())
    if diff > 1e-4:
        raise SystemExit(f"{name}: onnxruntime differs from PyTorch by {diff:.3g}")
    return str(path.relative_to(OUT.parent)), len(program.model.graph), program.opset, diff


def main() -> int:
    torch.manual_seed(0)
    OUT.mkdir(exist_ok=True)
    rows = [
        run("mlp", MLPModel(), torch.rand((97, 8), dtype=torch.float32)),
        run("conv", ConvModel(), torch.rand((1, 1, 128, 128), dtype=torch.float32)),
    ]
    print(f"{'file':<16} {'nodes':>5} {'opset':>5} {'max abs diff':>13}")
    for file, nodes, opset, diff in rows:
        print(f"{file:<16} {nodes:>5} {opset:>5} {diff:>13.3g}")
    print("both models pass onnx.checker (full_check) and match eager PyTorch in onnxruntime")
    return 0


if __name__ == "__main__":
    sys.exit(main())
