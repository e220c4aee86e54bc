"""The optimizer: only rules valid at the model's opset run, and a step that fails is undone,
named in one warning, and never fails the export."""

from __future__ import annotations

import logging
import warnings
from collections import Counter

import numpy as np
import onnx
import onnx_ir as ir
import onnx_ir.passes.common as passes
import onnxruntime as ort
import pytest
import torch
from onnxscript import rewriter
from onnxscript.rewriter import RewriteRuleClassBase
from torch import nn

import torchonnx
from torchonnx import optimize as optimizer
from torchonnx.builder import Builder
from torchonnx.errors import OptimizationWarning


def conv_bn_relu() -> nn.Module:
    """Conv2d without bias, then BatchNorm2d: the first layers of most CNN classifiers."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU())
    model[1].running_mean.uniform_(-0.5, 0.5)
    model[1].running_var.uniform_(0.5, 2.0)
    return model.eval()


def optimization_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, OptimizationWarning)]


def ops(program: torchonnx.ONNXProgram) -> Counter[str]:
    return Counter(node.op_type for node in program.model.graph)


def test_conv_without_bias_folds_batch_norm() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", OptimizationWarning)
        program = torchonnx.export(conv_bn_relu(), (torch.randn(1, 3, 8, 8),), verify=True)
    assert ops(program) == {"Conv": 1, "Relu": 1}  # the batch norm is in the Conv's weights
    conv = next(n for n in program.model.graph if n.op_type == "Conv")
    assert len(conv.inputs) == 3 and conv.inputs[2] is not None  # the folded bias


def test_builder_leaves_out_omitted_trailing_inputs() -> None:
    x = ir.val("x", ir.DataType.FLOAT, [1, 3, 4, 4])
    w = ir.val("w", ir.DataType.FLOAT, [2, 3, 1, 1])
    graph = ir.Graph([x, w], [], nodes=[], opset_imports={"": 18})
    op = Builder(graph).op
    assert len(op.Conv(x, w, None).producer().inputs) == 2
    clipped = op.Clip(x, None, op.builder.constant(1.0, "float32")).producer()
    assert clipped.inputs[1] is None and len(clipped.inputs) == 3  # only trailing ones go


def dynamic_reshape(opset: int) -> ir.Model:
    """y = x.reshape(x.shape[0], 12) with a dynamic first dim, its shape computed in the graph."""
    x = ir.val("x", ir.DataType.FLOAT, ["batch", 3, 4])
    graph = ir.Graph([x], [], nodes=[], opset_imports={"": opset}, name="g")

    def const(name: str, value: list[int] | int) -> ir.Value:
        tensor = ir.tensor(np.array(value, dtype=np.int64), name=name)
        graph.register_initializer(ir.Value(name=name, const_value=tensor))
        return graph.initializers[name]

    def node(op_type: str, *inputs: ir.Value, **attributes: object) -> ir.Value:
        graph.append(made := ir.node(op_type, list(inputs), attributes))
        return made.outputs[0]

    first = node("Gather", node("Shape", x), const("zero", 0), axis=0)
    if opset >= 13:
        first = node("Unsqueeze", first, const("axes", [0]))
    else:
        first = node("Unsqueeze", first, axes=[0])
    y = node("Reshape", x, node("Concat", first, const("twelve", [12]), axis=0))
    y.name, y.dtype, y.shape = "y", ir.DataType.FLOAT, ir.Shape(["batch", 12])
    graph.outputs.append(y)
    return ir.Model(graph, ir_version=7)


@pytest.mark.parametrize("opset", [7, 13, 14])
def test_dynamic_reshape_stays_valid_at_its_opset(opset: int) -> None:
    model = dynamic_reshape(opset)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OptimizationWarning)
        optimizer.optimize(model)
    reshape = next(n for n in model.graph if n.op_type == "Reshape")
    # onnxscript's MaterializeReshapeShape writes Reshape(allowzero=1), valid from 14 only
    assert ("allowzero" in reshape.attributes) == (opset >= 14)
    proto = ir.serde.serialize_model(model)
    onnx.checker.check_model(proto, full_check=True)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.arange(60, dtype=np.float32).reshape(5, 3, 4)
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], x.reshape(5, 12))


def test_rules_follow_onnxscripts_default_list() -> None:
    # onnxscript's default list is private (library code may not read it; a test may): an
    # onnxscript release that changes it fails here, so that RULES and their opsets follow.
    ours = [rule for entry in optimizer.RULES for rule in entry.rules]
    default = list(rewriter._DEFAULT_REWRITE_RULES)
    commuted = [r for entry in optimizer.RULES if len(entry.rules) > 1 for r in entry.rules]
    assert len(ours) == len(default)
    for mine, theirs in zip(ours, default, strict=True):
        # a commuted rule is a new object each time onnxscript's commute() makes it
        assert mine is theirs or (
            any(mine is r for r in commuted) and not any(theirs is r for r in ours)
        )


@pytest.mark.parametrize(
    ("rule", "since"),
    [
        ("materialize_reshape_shape_rule", 14),
        ("slice_split_rule", 18),
        ("successive_clip_rule", 11),
    ],
)
def test_a_rule_runs_from_the_opset_its_rewrite_needs(rule: str, since: int) -> None:
    assert rule not in {entry.name for entry in optimizer.rules_at(since - 1)}
    assert rule in {entry.name for entry in optimizer.rules_at(since)}
    assert "fuse_batchnorm_into_conv_rule" in {entry.name for entry in optimizer.rules_at(7)}


class RaisesOnRelu(RewriteRuleClassBase):
    """A rule with a bug: its check raises on every Relu."""

    def pattern(self, op, x):  # type: ignore[no-untyped-def]
        return op.Relu(x)

    def check(self, context, x):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug in a rewrite rule")

    def rewrite(self, op, x):  # type: ignore[no-untyped-def]
        return op.Relu(x)


class WritesInvalidRelu(RewriteRuleClassBase):
    """A rule that writes what the opset does not have: LeakyRelu has no attribute beta."""

    def pattern(self, op, x):  # type: ignore[no-untyped-def]
        return op.Relu(x)

    def rewrite(self, op, x):  # type: ignore[no-untyped-def]
        return op.LeakyRelu(x, alpha=0.0, beta=1.0)


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        (RaisesOnRelu, "RuntimeError: a bug in a rewrite rule"),
        (
            WritesInvalidRelu,
            "it wrote LeakyRelu with attribute beta, which LeakyRelu-16 does not have",
        ),
    ],
)
def test_a_failing_rule_is_skipped_and_named_once(
    monkeypatch: pytest.MonkeyPatch, rule: type[RewriteRuleClassBase], reason: str
) -> None:
    injected = optimizer.Rule("injected_rule", (rule().rule(),))
    monkeypatch.setattr(optimizer, "RULES", (injected, *optimizer.RULES))
    with pytest.warns(OptimizationWarning) as record:
        program = torchonnx.export(conv_bn_relu(), (torch.randn(1, 3, 8, 8),), verify=True)
    (message,) = optimization_warnings(record.list)
    assert "injected_rule failed at opset 18" in message and reason in message
    assert ops(program) == {"Conv": 1, "Relu": 1}  # the other rules ran: batch norm is folded
    relu = next(n for n in program.model.graph if n.op_type == "Relu")
    assert not relu.attributes
    onnx.checker.check_model(program.model_proto, full_check=True)


def test_a_failing_step_is_undone(monkeypatch: pytest.MonkeyPatch) -> None:
    def breaks_then_raises(model: ir.Model) -> bool:
        model.graph.outputs.clear()  # half done when it fails: undoing must restore this
        for node in list(model.graph):
            node.name = "broken"
        raise ValueError("folding went wrong")

    monkeypatch.setattr(optimizer, "_fold_constants", breaks_then_raises)
    with pytest.warns(OptimizationWarning) as record:
        program = torchonnx.export(conv_bn_relu(), (torch.randn(1, 3, 8, 8),), verify=True)
    (message,) = optimization_warnings(record.list)
    assert "fold_constants failed" in message and "ValueError: folding went wrong" in message
    assert ops(program) == {"Conv": 1, "Relu": 1}


def test_a_failing_pass_is_undone(monkeypatch: pytest.MonkeyPatch) -> None:
    def fails(self: passes.CommonSubexpressionEliminationPass, model: ir.Model) -> None:
        raise RuntimeError("a bug in a pass")

    monkeypatch.setattr(passes.CommonSubexpressionEliminationPass, "call", fails)
    with pytest.warns(OptimizationWarning) as record:
        torchonnx.export(conv_bn_relu(), (torch.randn(1, 3, 8, 8),), verify=True)
    (message,) = optimization_warnings(record.list)
    assert message.startswith("torchonnx optimizer: CommonSubexpressionEliminationPass failed")


class TokenTypes(torch.nn.Module):
    """BERT's token types: a constant buffer gathered at constant positions."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("types", torch.zeros(1, 64, dtype=torch.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(x.shape[1]).unsqueeze(0)
        return x + torch.gather(self.types, 1, positions)


def test_folding_a_node_the_reference_cannot_evaluate_logs_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """onnx's reference GatherElements fails on this valid node; the folder leaves it, and the
    user sees no warning about it (the model is right)."""
    x = torch.ones(2, 7, dtype=torch.int64)
    with caplog.at_level(logging.WARNING):
        program = torchonnx.export(TokenTypes(), (x,))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.records
    assert "GatherElements" in [node.op_type for node in program.model.graph]  # left as it is
    assert torch.equal(program(x)[0], TokenTypes()(x))
