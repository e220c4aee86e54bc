"""Whole models against eager PyTorch: the torch.onnx documentation examples, a small CNN,
ResNet, MobileNet and EfficientNet blocks and nn.TransformerEncoderLayer, exported with default
options across the opsets where their ONNX form changes."""

from __future__ import annotations

import functools
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

import onnx
import pytest
import torch
from torch import nn

import torchonnx
from torchonnx.build import GraphBuild
from torchonnx.errors import OptimizationWarning
from torchonnx.optimize import finalize, optimize
from torchonnx.verify import compare, eager_outputs


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


def with_statistics(model: nn.Module) -> nn.Module:
    """Batch norms whose statistics and affine parameters are not the identity."""
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    return model


def _cnn() -> nn.Module:
    return with_statistics(SmallCNN())


# -- blocks of torchvision's classifiers, written out small ---------------------------------


def conv_bn(
    cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: nn.Module | None = None
) -> nn.Sequential:
    """Conv2d without bias, BatchNorm2d and an activation, as torchvision's Conv2dNormActivation."""
    conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(cout), *([act] if act is not None else []))


class BasicBlock(nn.Module):
    """ResNet-18/34's block; a strided or widening one has a 1x1 conv downsample branch."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = conv_bn(cin, cout, 1, stride) if stride > 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    """ResNet-50's block: 1x1 reduce, 3x3, 1x1 expand (x4), with a downsample branch."""

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * 4
        self.conv1 = conv_bn(cin, width, 1, act=nn.ReLU(inplace=True))
        self.conv2 = conv_bn(width, width, 3, stride, act=nn.ReLU(inplace=True))
        self.conv3 = conv_bn(width, cout, 1)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = conv_bn(cin, cout, 1, stride) if stride > 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv3(self.conv2(self.conv1(x))) + identity)


class SqueezeExcitation(nn.Module):
    """Channel attention: global average pool, two 1x1 convs, a gate, a product."""

    def __init__(
        self,
        channels: int,
        squeezed: int,
        activation: Callable[[], nn.Module] = nn.ReLU,
        gate: Callable[[], nn.Module] = nn.Hardsigmoid,
    ) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.activation, self.gate = activation(), gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.activation(self.fc1(self.avgpool(x)))))


class InvertedResidual(nn.Module):
    """MobileNetV2's block (ReLU6), or V3's (hardswish, squeeze-excitation): 1x1 expand,
    depthwise 3x3 (groups = channels), 1x1 project, residual when the shape allows."""

    def __init__(
        self,
        cin: int,
        cout: int,
        stride: int,
        expand: int,
        act: Callable[[], nn.Module] = nn.ReLU6,
        se: bool = False,
    ) -> None:
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [conv_bn(cin, hidden, 1, act=act())]
        layers.append(conv_bn(hidden, hidden, 3, stride, groups=hidden, act=act()))
        if se:
            layers.append(SqueezeExcitation(hidden, max(8, hidden // 4)))
        layers.append(conv_bn(hidden, cout, 1))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class MBConv(nn.Module):
    """EfficientNet's block: SiLU, depthwise conv, squeeze-excitation with a sigmoid gate."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.block = nn.Sequential(
            *([] if expand == 1 else [conv_bn(cin, hidden, 1, act=nn.SiLU())]),
            conv_bn(hidden, hidden, 3, stride, groups=hidden, act=nn.SiLU()),
            SqueezeExcitation(hidden, max(1, cin // 4), nn.SiLU, nn.Sigmoid),
            conv_bn(hidden, cout, 1),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


def _resnet() -> nn.Module:
    return with_statistics(nn.Sequential(BasicBlock(8, 8), Bottleneck(8, 4, 2)))


def _mobilenet() -> nn.Module:
    return with_statistics(
        nn.Sequential(
            InvertedResidual(8, 8, 1, 4),  # V2, with its residual
            InvertedResidual(8, 16, 2, 3, nn.Hardswish, se=True),  # V3, strided
        )
    )


def _efficientnet() -> nn.Module:
    return with_statistics(nn.Sequential(MBConv(8, 8, 1, 1), MBConv(8, 16, 2, 4)))


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
    "resnet": (_resnet, lambda: (torch.randn(2, 8, 8, 8),)),
    "mobilenet": (_mobilenet, lambda: (torch.randn(2, 8, 8, 8),)),
    "efficientnet": (_efficientnet, lambda: (torch.randn(2, 8, 8, 8),)),
}
OPSETS = [9, 13, 17, 18, 20, 23, 28]
# Convolutional blocks: Clip with attributes (9), Reshape without allowzero (13), the default
# opset (18), the newest
BLOCK_OPSETS = [9, 13, 18, 28]
OPSETS_OF = {
    name: BLOCK_OPSETS if name in ("resnet", "mobilenet", "efficientnet") else OPSETS
    for name in MODELS
}


def make(name: str) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    make_model, make_args = MODELS[name]
    torch.manual_seed(0)
    return make_model().eval(), make_args()


@functools.cache
def export(name: str, opset: int) -> torchonnx.ONNXProgram:
    """The model exported with default options (optimized), checked against eager."""
    model, args = make(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OptimizationWarning)  # no optimization step may fail
        return torchonnx.export(model, args, opset_version=opset, verify=True)


def _same_worker(name: str, *args: int) -> Any:
    """Tests of one model run in one worker, so that they share its exports."""
    return pytest.param(
        name, *args, marks=pytest.mark.xdist_group(name), id="-".join([name, *map(str, args)])
    )


@pytest.mark.parametrize(
    ("name", "opset"), [_same_worker(n, o) for n in MODELS for o in OPSETS_OF[n]]
)
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
    if name in ("cnn", "resnet", "mobilenet", "efficientnet"):
        # the optimizer folded every batch norm into the conv before it, as a bias
        assert ops["BatchNormalization"] == 0, ops
        convs = [n for n in program.model.graph if n.op_type == "Conv"]
        model, _ = make(name)
        assert len(convs) == sum(isinstance(m, nn.Conv2d) for m in model.modules()), ops
        assert all(len(conv.inputs) == 3 for conv in convs)
        assert ops["Identity"] == 0, ops  # eval dropout is gone


@pytest.mark.parametrize("name", [_same_worker(n) for n in MODELS])
def test_optimizer_is_valid_at_the_lowest_opset(name: str) -> None:
    """Every step and rule of the optimizer succeeds on each model at the lowest opset it is
    tested at (a rule valid only from a later opset must not run), the result is valid ONNX
    and onnxruntime runs it as it runs the model before optimizing."""
    opset = min(OPSETS_OF[name])
    program = export(name, opset)
    model = GraphBuild(program.exported_program, opset).run()
    finalize(model)
    before = torchonnx.ONNXProgram(model.clone(), None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OptimizationWarning)
        optimize(model)
    finalize(model)
    after = torchonnx.ONNXProgram(model, None)
    onnx.checker.check_model(after.model_proto, full_check=True)
    assert len(after.model.graph) <= len(before.model.graph)
    model, args = make(name)
    expected = eager_outputs(model, args, None)
    for actual in (before(*args), after(*args)):
        checks = compare(expected, actual)
        assert all(check.ok for check in checks), checks


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
