"""Whole models against eager PyTorch: the torch.onnx documentation examples, a small CNN and
nn.TransformerEncoderLayer, across the opsets where their ONNX form changes."""

from __future__ import annotations

from collections import Counter

import onnx
import pytest
import torch
from torch import nn

import torchonnx


class DocMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc0, self.fc1 = nn.Linear(8, 8, bias=True), nn.Linear(8, 4, bias=True)
        self.fc2, self.fc3 = nn.Linear(4, 2, bias=True), nn.Linear(2, 2, bias=True)

    def forward(self, tensor_x: torch.Tensor) -> torch.Tensor:
        tensor_x = torch.sigmoid(self.fc0(tensor_x))
        tensor_x = torch.sigmoid(self.fc1(tensor_x))
        tensor_x = torch.sigmoid(self.fc2(tensor_x))
        return self.fc3(tensor_x)


class DocConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 128, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv1(x))


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.AvgPool2d(2),
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(),
            nn.Dropout(0.2),
            nn.Linear(16, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def _cnn() -> nn.Module:
    model = SmallCNN()
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5)  # statistics that are not the identity
        bn.running_var.uniform_(0.5, 2.0)
    return model


MODELS = {
    "doc_mlp": (DocMLP, lambda: (torch.rand(97, 8),)),
    "doc_conv": (DocConv, lambda: (torch.rand(1, 1, 128, 128),)),
    "cnn": (_cnn, lambda: (torch.randn(2, 3, 16, 16),)),
    "encoder": (
        lambda: nn.TransformerEncoderLayer(32, 4, 64, batch_first=True),
        lambda: (torch.randn(2, 7, 32),),
    ),
    "encoder_gelu": (
        lambda: nn.TransformerEncoderLayer(
            32, 4, 64, batch_first=True, activation="gelu", norm_first=True
        ),
        lambda: (torch.randn(2, 7, 32),),
    ),
}
OPSETS = [9, 13, 17, 18, 20, 23, 28]


def export(name: str, opset: int) -> torchonnx.ONNXProgram:
    make_model, make_args = MODELS[name]
    torch.manual_seed(0)
    model = make_model().eval()
    return torchonnx.export(model, make_args(), opset_version=opset, verify=True)


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", list(MODELS))
def test_model_matches_eager(name: str, opset: int) -> None:
    program = export(name, opset)  # verify=True compares with eager in onnxruntime
    onnx.checker.check_model(program.model_proto, full_check=True)
    ops = Counter(node.op_type for node in program.model.graph)
    if name == "doc_mlp":
        assert ops["Gemm"] == 4, ops  # Linear on a 2-D input is one Gemm
    if name.startswith("encoder"):
        assert ops["LayerNormalization"] == (2 if opset >= 17 else 0), ops
        assert ops["Attention"] == (1 if opset >= 23 else 0), ops
    if name == "encoder_gelu":
        assert ops["Gelu"] == (1 if opset >= 20 else 0), ops


def test_high_level_ops_stay_whole() -> None:
    """Decomposition keeps every op that has a spec: the encoder keeps layer_norm and
    scaled_dot_product_attention, so they reach their fused ONNX ops."""
    program = export("encoder_gelu", 23)
    used = {overload for overload, _ in program.lowerings}
    assert {
        "aten::layer_norm",
        "aten::scaled_dot_product_attention",
        "aten::gelu",
        "aten::linear",
    } <= used
