"""Rules with one copy that codegen and the runtime share: overload names <-> OpOverloads
(torchonnx.overloads) and opset spans (torchonnx.opsets)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import torch

from torchonnx.generated.registry import OVERLOADS
from torchonnx.opsets import span
from torchonnx.overloads import (
    UnknownOverload,
    name_of,
    normalize,
    op_overload,
    split,
    target_name,
)

ROOT = Path(__file__).resolve().parent.parent


def test_every_spec_overload_round_trips() -> None:
    for name in OVERLOADS:
        if "::" not in name:  # a Python callable on sizes (`operator.mul`): no OpOverload
            module, _, attr = name.rpartition(".")
            assert target_name(getattr(importlib.import_module(module), attr)) == name
            continue
        op = op_overload(name)
        assert isinstance(op, torch._ops.OpOverload)
        assert name_of(op) == name
        assert normalize(op) == normalize(name) == name


def test_names() -> None:
    assert split("aten::add.Tensor") == ("aten", "add", "Tensor")
    assert split("aten::relu") == ("aten", "relu", "")
    assert op_overload("aten::relu") is torch.ops.aten.relu.default
    assert name_of(torch.ops.aten.relu.default) == "aten::relu"
    assert normalize("add.Tensor") == "aten::add.Tensor"
    with pytest.raises(UnknownOverload, match="has no operator aten::no_such_op"):
        op_overload("aten::no_such_op")
    with pytest.raises(UnknownOverload, match=r"it has aten::add\.Scalar"):
        op_overload("aten::add.NoSuchOverload")
    with pytest.raises(UnknownOverload, match="not a qualified op name"):
        op_overload("relu")


def test_no_other_copy_of_the_overload_rule() -> None:
    """Building a name from a schema, or an OpOverload from a name, happens in
    torchonnx.overloads only."""
    pattern = re.compile(r"\.overload_name|getattr\(torch\.ops")
    sources = [p for d in ("runtime", "codegen", "tests") for p in (ROOT / d).rglob("*.py")]
    found = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in sources
        if p.name not in ("overloads.py", "test_shared_rules.py")
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []


def test_span() -> None:
    assert span([13]) == "13"
    assert span(range(7, 13)) == "7..12"
    assert span([12, 7, 8, 9, 9]) == "7..9, 12"
    assert span(range(7, 10**6)) == "7..999999"
