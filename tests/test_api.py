"""The public API: export's arguments, errors, ONNXProgram, saving."""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest
import torch

import torchonnx
from torchonnx.errors import (
    CaptureError,
    SaveError,
    UnsupportedArgumentError,
    UnsupportedOperatorError,
    UnsupportedOpsetError,
    VerificationError,
)


class AddRelu(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.randn(4))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = x + y
        return torch.relu(s + self.bias), s


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(3, 4), torch.randn(3, 4)


def test_signature_matches_torch_onnx_export() -> None:
    ours = inspect.signature(torchonnx.export).parameters
    theirs = inspect.signature(torch.onnx.export).parameters
    assert list(ours) == list(theirs)
    for name, param in theirs.items():
        if name in ("training", "operator_export_type"):
            continue  # torch's enums; ours accepts them, and strings
        assert ours[name].default == param.default, name
        assert ours[name].kind == param.kind, name


def test_default_opset_and_program() -> None:
    program = torchonnx.export(AddRelu(), inputs())
    assert program.opset == torchonnx.DEFAULT_OPSET == 18
    assert isinstance(program.model_proto, onnx.ModelProto)
    assert isinstance(program.model, ir.Model)
    assert isinstance(program.exported_program, torch.export.ExportedProgram)
    onnx.checker.check_model(program.model_proto, full_check=True)


@pytest.mark.parametrize("opset", [6, 29, "18"])
def test_opset_outside_the_range(opset: object) -> None:
    oldest, newest = torchonnx.opset_range()
    with pytest.raises(UnsupportedOpsetError, match=f"exports to opsets {oldest} to {newest}"):
        torchonnx.export(AddRelu(), inputs(), opset_version=opset)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"dynamo": False}, "dynamo=False"),
        ({"report": True}, "report=True"),
        ({"export_params": False}, "export_params=False"),
        ({"custom_opsets": {"my": 1}}, "custom_opsets"),
        ({"export_modules_as_functions": True}, "export_modules_as_functions"),
        ({"training": "sometimes"}, "training"),
    ],
)
def test_unbuilt_features_fail_by_name(kwargs: dict, named: str) -> None:
    with pytest.raises(UnsupportedArgumentError, match=named):
        torchonnx.export(AddRelu(), inputs(), **kwargs)


def test_every_unsupported_call_is_listed_with_its_source_line() -> None:
    class M(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = torch.logcumsumexp(x, 0)  # line A
            b = torch.relu(x)
            return torch.histc(a + b, bins=4)  # line B

    lines = inspect.getsource(M.forward).splitlines()
    first = inspect.getsourcelines(M.forward)[1]
    line_a = first + next(i for i, t in enumerate(lines) if "line A" in t)
    line_b = first + next(i for i, t in enumerate(lines) if "line B" in t)
    with pytest.raises(UnsupportedOperatorError) as info:
        torchonnx.export(M(), (torch.randn(3, 4),))
    problems = info.value.problems
    ops = [p.op for p in problems]
    assert any(op.startswith("aten::logcumsumexp") for op in ops) and any(
        op.startswith("aten::histc") for op in ops
    )
    message = str(info.value)
    assert f"{Path(__file__).name}:{line_a}: a = torch.logcumsumexp(x, 0)" in message
    assert f"{Path(__file__).name}:{line_b}:" in message
    assert "no spec covers this operator" in message
    assert all(p.dtypes == ("float32",) or p.dtypes for p in problems)


def test_a_call_in_an_installed_library_names_its_line_and_the_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Model code from a library (transformers, timm) lives in site-packages: the message gives
    the library's line that made the call, then the innermost line of the user's own code."""
    library = tmp_path / "site-packages" / "somelib"
    library.mkdir(parents=True)
    (library / "__init__.py").write_text(
        # torch.export records the frames of modules' forward methods only
        "import torch\n\n\nclass Block(torch.nn.Module):\n"
        "    def forward(self, x):\n        return torch.logcumsumexp(x, 0)  # library line\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site-packages"))
    import somelib

    class M(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = somelib.Block()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.block(x) + 1  # user line

    with pytest.raises(UnsupportedOperatorError) as info:
        torchonnx.export(M(), (torch.randn(3, 4),))
    lines = str(info.value).splitlines()
    called = next(i for i, line in enumerate(lines) if "called at" in line)
    assert lines[called].endswith(
        "somelib/__init__.py:6: return torch.logcumsumexp(x, 0)  # library line"
    )
    assert "test_api.py:" in lines[called + 1] and lines[called + 1].endswith("# user line")


def test_dynamic_shapes_the_model_contradicts_fail_once_with_torchs_advice() -> None:
    """A dynamic dim the model specializes is refused by torch.export whatever the tracing mode:
    the error gives torch's message and suggested fix from one attempt, not two."""

    class M(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2 if x.shape[0] == 3 else x

    with pytest.raises(CaptureError) as info:
        torchonnx.export(M(), (torch.randn(3, 4),), dynamic_shapes=({0: "batch"},))
    message = str(info.value)
    assert "specialized it to be a constant (3)" in message and "strict=False" in message
    assert "strict=True" not in message
    assert message.endswith("L['x'].size()[0] is the dim you named `batch`.")


def test_dtype_gap_says_which_opsets_work() -> None:
    class M(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x)

    with pytest.raises(UnsupportedOperatorError) as info:
        torchonnx.export(M(), (torch.ones(3, dtype=torch.int64),), opset_version=13)
    (problem,) = info.value.problems
    assert problem.op == "aten::relu" and problem.dtypes == ("int64",)
    assert "ONNX Relu accepts integers from opset 14" in problem.reason
    assert min(problem.opsets) == 14
    assert "pass opset_version=14" in str(info.value)


def test_names_types_and_shapes() -> None:
    program = torchonnx.export(
        AddRelu(), inputs(), input_names=["x", "y"], output_names=["out", "sum"]
    )
    graph = program.model.graph
    assert [v.name for v in graph.inputs] == ["x", "y"]
    assert [v.name for v in graph.outputs] == ["out", "sum"]
    for value in [*graph.inputs, *graph.outputs]:
        assert value.dtype == ir.DataType.FLOAT and list(value.shape) == [3, 4]
    proto = program.model_proto
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    assert len(inferred.graph.value_info) >= 1


def test_weights_are_not_copied() -> None:
    model = AddRelu()
    program = torchonnx.export(model, inputs(), optimize=False)
    tensor = program.model.graph.initializers["bias"].const_value
    assert tensor.numpy().ctypes.data == model.bias.data_ptr()


def test_call_runs_onnxruntime() -> None:
    model = AddRelu()
    x, y = inputs()
    program = torchonnx.export(model, (x,), kwargs={"y": y})
    got = program(x, y=y)
    want = model(x, y)
    assert all(isinstance(t, torch.Tensor) for t in got)
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[1], want[1], rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="takes 2 tensor inputs"):
        program(x)


def test_export_an_exported_program() -> None:
    model = AddRelu()
    ep = torch.export.export(model, inputs())
    program = torchonnx.export(ep, opset_version=13, verify=True)
    assert program.opset == 13


def test_verify_catches_a_wrong_lowering(monkeypatch: pytest.MonkeyPatch) -> None:
    from torchonnx.generated.registry import OVERLOADS

    entry = OVERLOADS["aten::relu"]
    wrong = dataclasses.replace(entry.lowerings[0], fns=(lambda op, self: op.Neg(self),))
    monkeypatch.setitem(
        OVERLOADS, "aten::relu", dataclasses.replace(entry, lowerings=(wrong, *entry.lowerings[1:]))
    )
    with pytest.raises(VerificationError, match="differs from PyTorch"):
        torchonnx.export(AddRelu(), inputs(), verify=True)


def test_eval_mode_while_exporting() -> None:
    model = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.ReLU()).train()
    with pytest.raises(UnsupportedOperatorError):
        torchonnx.export(model, (torch.randn(3, 4),), training=torchonnx.TrainingMode.TRAINING)
    assert model.training
    program = torchonnx.export(model, (torch.randn(3, 4),))  # EVAL by default
    assert model.training  # restored
    x = torch.randn(3, 4)
    torch.testing.assert_close(program(x)[0], torch.relu(x))


def test_each_module_keeps_its_own_mode() -> None:
    """A parent in training mode around eval submodules (a wrapper around a model put in eval
    mode): every module gets its own flag back, so dropout stays off in the user's model."""
    inner = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5)).eval()
    model = torch.nn.Sequential(inner, torch.nn.ReLU())  # training, as built
    modes = [m.training for m in model.modules()]
    assert modes == [True, False, False, False, True]
    for training in (torchonnx.TrainingMode.EVAL, torchonnx.TrainingMode.PRESERVE):
        torchonnx.export(model, (torch.randn(3, 4),), training=training)
        assert [m.training for m in model.modules()] == modes


def test_is_supported() -> None:
    assert torchonnx.is_supported("aten::relu", 7)
    assert torchonnx.is_supported(torch.ops.aten.relu.default, 18, torch.float32)
    assert not torchonnx.is_supported("aten::relu", 13, "int64")
    assert torchonnx.is_supported("aten::relu", 14, "int64")
    assert torchonnx.is_supported("aten::relu", 7, "int32")  # computed in float64 there
    assert not torchonnx.is_supported("aten::logcumsumexp", 18)
    assert torchonnx.supported_opsets("aten::relu", "bfloat16")[0] == 13


def _big_model() -> torch.nn.Module:
    model = AddRelu()
    model.register_buffer("table", torch.randn(64, 64))  # unused by forward, dropped
    model.bias = torch.nn.Parameter(torch.randn(1024))
    return model


def test_save_with_and_without_external_data(tmp_path: Path) -> None:
    x = torch.randn(3, 1024)
    program = torchonnx.export(_big_model(), (x, x))
    program.save(tmp_path / "a.onnx")  # external_data=True by default
    assert (tmp_path / "a.onnx.data").stat().st_size == 1024 * 4
    program.save(tmp_path / "b.onnx", external_data=False)
    assert not (tmp_path / "b.onnx.data").exists()
    for name in ("a.onnx", "b.onnx"):
        model = onnx.load(str(tmp_path / name))
        onnx.checker.check_model(model, full_check=True)
        weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
        np.testing.assert_array_equal(
            weights["bias"], program.model.graph.initializers["bias"].const_value.numpy()
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx", "a.onnx.data", "b.onnx"]


def test_export_writes_f(tmp_path: Path) -> None:
    torchonnx.export(AddRelu(), inputs(), tmp_path / "m.onnx", external_data=False)
    onnx.checker.check_model(onnx.load(str(tmp_path / "m.onnx")), full_check=True)


def test_failed_save_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program = torchonnx.export(_big_model(), (torch.randn(3, 1024),) * 2)

    def half_write(model: ir.Model, path: Path, **kwargs: object) -> None:
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ir, "save", half_write)
    with pytest.raises(SaveError, match="disk full"):
        program.save(tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_save_replaces_an_existing_model_whole(tmp_path: Path) -> None:
    program = torchonnx.export(_big_model(), (torch.randn(3, 1024),) * 2)
    program.save(tmp_path / "m.onnx")
    program.save(tmp_path / "m.onnx", external_data=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # the stale .data is gone


def test_keep_initializers_as_inputs_and_old_ir() -> None:
    program = torchonnx.export(AddRelu(), inputs(), keep_initializers_as_inputs=True)
    assert "bias" in [v.name for v in program.model.graph.inputs]
    old = torchonnx.export(AddRelu(), inputs(), opset_version=8, verify=True)
    assert old.model.ir_version == 3
    assert "bias" in [v.name for v in old.model.graph.inputs]  # IR 3 requires it


def test_dynamic_dims_keep_the_users_names_and_run_at_other_sizes() -> None:
    batch = torch.export.Dim("batch")
    model = AddRelu()
    program = torchonnx.export(
        model, inputs(), dynamic_shapes=({0: batch}, {0: batch}), input_names=["x", "y"]
    )
    graph = program.model.graph
    for value in [*graph.inputs, *graph.outputs]:
        assert [str(d) for d in value.shape] == ["batch", "4"], value.name
    proto_dims = program.model_proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in proto_dims] == ["batch", 4]
    for n in (1, 7):  # the dim stayed symbolic: other sizes run and match eager
        a, b = torch.randn(n, 4), torch.randn(n, 4)
        torch.testing.assert_close(program(a, b)[0], model(a, b)[0], rtol=1e-5, atol=1e-6)


class Cat(torch.nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, y]) * 2


@pytest.mark.parametrize(
    "declared",
    [
        {"dynamic_shapes": ({0: torch.export.Dim("rows")}, {0: torch.export.Dim("more")})},
        {"dynamic_shapes": {"y": {0: "more"}, "x": {0: "rows"}}},  # names, as torch.onnx takes
        {"dynamic_axes": {"a": {0: "rows"}, "b": {0: "more"}}, "input_names": ["a", "b"]},
        {"dynamic_axes": {"x": [0], "y": [0], "out": [0]}, "output_names": ["out"]},
    ],
)
def test_ways_to_declare_dynamic_dims(declared: dict) -> None:
    x, y = torch.randn(3, 4), torch.randn(5, 4)
    program = torchonnx.export(Cat(), (x, y), **declared)
    first, second = (str(v.shape[0]) for v in program.model.graph.inputs)
    if "dynamic_axes" in declared and "input_names" not in declared:
        assert (first, second) == ("x_dynamic_axes_1", "y_dynamic_axes_1")
    else:
        assert (first, second) == ("rows", "more")
    (out,) = program.model.graph.outputs  # sizes torch derives are written with the names too
    assert str(out.shape[0]).replace(" ", "") in (f"{first}+{second}", f"{second}+{first}")
    a, b = torch.randn(2, 4), torch.randn(6, 4)
    torch.testing.assert_close(program(a, b)[0], Cat()(a, b))


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"dynamic_axes": {"z": [0]}}, r"dynamic_axes names 'z'.*'x', 'y'"),
        (
            {"dynamic_axes": {"x": [0]}, "dynamic_shapes": ({0: "n"}, None)},
            "give one of them",
        ),
    ],
)
def test_bad_dynamic_declarations(declared: dict, message: str) -> None:
    with pytest.raises(UnsupportedArgumentError, match=message):
        torchonnx.export(Cat(), (torch.randn(3, 4), torch.randn(5, 4)), **declared)


def test_size_arithmetic_on_dynamic_dims_exports() -> None:
    class Flatten(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.reshape(x.shape[0] * x.shape[1])

    program = torchonnx.export(Flatten(), (torch.randn(3, 4),), dynamic_shapes=({0: "batch"},))
    assert [str(d) for d in program.model.graph.outputs[0].shape] == ["4*batch"]
    for rows in (3, 7):
        x = torch.randn(rows, 4)
        (got,) = program(x)
        torch.testing.assert_close(got, Flatten()(x))


def test_python_operator_without_a_spec_is_reported() -> None:
    class Shift(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.reshape(x.shape[0] << 1, -1)

    with pytest.raises(UnsupportedOperatorError) as err:
        torchonnx.export(Shift(), (torch.randn(4, 4),), dynamic_shapes=({0: "batch"},))
    text = str(err.value)
    assert "operator.lshift" in text and "no spec covers this operator" in text
    assert "test_api.py" in text


def test_dynamic_axes_follow_the_order_arguments_are_given() -> None:
    x, y = torch.randn(3, 4), torch.randn(5, 4)
    program = torchonnx.export(
        Cat(),
        (),
        kwargs={"y": y, "x": x},  # graph inputs: y first, then x
        input_names=["first", "second"],
        dynamic_axes={"first": {0: "ny"}, "second": {0: "nx"}},
    )
    assert [(v.name, str(v.shape[0])) for v in program.model.graph.inputs] == [
        ("first", "ny"),
        ("second", "nx"),
    ]


def test_a_runtime_gap_warns_and_is_listed() -> None:
    """specs/README.md: where a runtime gap applies the model exports, the exporter warns, and
    ONNXProgram.runtime_gaps lists the calls (onnxruntime has no int16 Relu)."""

    class M(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x)

    x = torch.ones(2, 3, dtype=torch.int16)
    with pytest.warns(UserWarning, match="onnxruntime has no CPU kernel for Relu"):
        program = torchonnx.export(M(), (x,), opset_version=18)
    [(overload, gap)] = program.runtime_gaps
    assert overload == "aten::relu" and gap.runtime == "onnxruntime"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torchonnx.export(M(), (x.float(),), opset_version=18).runtime_gaps == []
