"""The generated symbolic functions keep torch's symbolic contract: registered into torch's own
TorchScript exporter with `register_custom_op_symbolic`, they export models there."""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

import torchonnx.generated

CALLS: Counter[str] = Counter()


def symbolic_modules() -> list[tuple[int, Any]]:
    names = [
        m.name
        for m in pkgutil.iter_modules(torchonnx.generated.__path__)
        if m.name.startswith("symbolic_opset")
    ]
    return sorted(
        (int(n.removeprefix("symbolic_opset")), importlib.import_module(f"torchonnx.generated.{n}"))
        for n in names
    )


def counting(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def symbolic(g: Any, *args: Any, **kwargs: Any) -> Any:
        CALLS[name] += 1
        return fn(g, *args, **kwargs)

    return symbolic


@pytest.fixture(scope="module")
def registered() -> Iterator[Counter[str]]:
    """Each packet's function of symbolic_opsetN registered for opsets N up to the next module
    that has one: torch takes the newest registration not above the target opset, so a
    registration at N alone would lose to torch's own functions of later opsets."""
    newest = 20  # the newest opset torch's TorchScript exporter takes
    by_packet: dict[str, list[tuple[int, Callable[..., Any]]]] = {}
    for opset, module in symbolic_modules():
        for name, fn in module.SYMBOLICS.items():
            by_packet.setdefault(name, []).append((opset, counting(name, fn)))
    done = []
    for name, versions in by_packet.items():
        for i, (opset, fn) in enumerate(versions):
            end = versions[i + 1][0] if i + 1 < len(versions) else newest + 1
            for target in range(opset, end):
                torch.onnx.register_custom_op_symbolic(name, fn, target)
                done.append((name, target))
    yield CALLS
    for name, target in done:
        torch.onnx.unregister_custom_op_symbolic(name, target)


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc0, self.fc1, self.fc2, self.fc3 = (
            nn.Linear(8, 8),
            nn.Linear(8, 4),
            nn.Linear(4, 2),
            nn.Linear(2, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.sigmoid(self.fc0(x))
        x = torch.sigmoid(self.fc1(x))
        x = torch.sigmoid(self.fc2(x))
        return self.fc3(x)


class Mixed(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        s = torch.relu(x + y)
        a, b = torch.split(torch.cat([s, x], dim=1), [3, 5], dim=1)
        return a.add(b[:, :3], alpha=2), b


def export_torchscript(model: nn.Module, args: tuple, opset: int) -> bytes:
    buffer = io.BytesIO()
    torch.onnx.export(model, args, buffer, dynamo=False, opset_version=opset)
    return buffer.getvalue()


@pytest.mark.parametrize("opset", [9, 13, 18])
@pytest.mark.parametrize(
    ("model", "args", "ops"),
    [
        (MLP(), (torch.rand(97, 8),), {"aten::linear", "aten::sigmoid"}),
        (Mixed(), (torch.randn(2, 4), torch.randn(2, 4)), {"aten::add", "aten::relu", "aten::cat"}),
    ],
    ids=["mlp", "mixed"],
)
def test_torch_exporter_uses_our_symbolics(registered: Counter[str], model: nn.Module, args: tuple,
                                           ops: set[str], opset: int) -> None:  # fmt: skip
    registered.clear()
    data = export_torchscript(model.eval(), args, opset)
    assert ops <= set(registered), f"torch's exporter did not call ours for {ops - set(registered)}"
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto, full_check=True)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = session.run(
        None, {i.name: a.numpy() for i, a in zip(session.get_inputs(), args, strict=True)}
    )
    with torch.no_grad():
        want = model(*args)
    want = [want] if isinstance(want, torch.Tensor) else list(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-5, atol=1e-6)


def test_symbolic_functions_use_g_op() -> None:
    import ast

    for _, module in symbolic_modules():
        tree = ast.parse(
            importlib.util.find_spec(module.__name__).loader.get_source(module.__name__)
        )
        calls = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr == "op"
            and getattr(n.func.value, "id", None) == "g"
        ]
        assert calls, f"{module.__name__} builds no node with g.op"
        assert hasattr(module, "SYMBOLICS") and all(callable(f) for f in module.SYMBOLICS.values())


def test_every_lowering_has_its_symbolic_function() -> None:
    """Dispatch finds a lowering's symbolic function by the name of its onnxscript function,
    in the module of the opset the lowering begins at."""
    from torchonnx.generated.registry import ENTRIES

    checked = 0
    for entry in ENTRIES.values():
        for lowering in entry.lowerings:
            module = importlib.import_module(f"torchonnx.generated.symbolic_opset{lowering.since}")
            for fn in lowering.fns:
                symbolic = getattr(module, fn.__name__, None)
                assert callable(symbolic), f"{entry.key}: no {module.__name__}.{fn.__name__}"
                assert next(iter(inspect.signature(symbolic).parameters)) == "g"
                checked += 1
    assert checked > 0  # the registry is not empty
