"""torchonnx's own code never uses torch.onnx's exporters or onnxscript's torch_lib: those are
the peers it is measured against. Checked in the source and while exporting."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("torch.onnx", "onnxscript.function_libs", "torch._C._jit_pass_onnx")
SOURCES = sorted(p for d in ("runtime", "codegen", "generated") for p in (ROOT / d).rglob("*.py"))


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def uses(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Attribute):
            names = [_dotted(node)]
        found += [n for n in names if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)]
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "torch"
            and any(a.name == "onnx" for a in node.names)
        ):
            found.append("from torch import onnx")
    return sorted(set(found))


def test_checker_finds_what_it_looks_for() -> None:
    assert uses("import torch.onnx") == ["torch.onnx"]
    assert uses("from onnxscript.function_libs.torch_lib import ops") != []
    assert uses("import torch\ntorch.onnx.export(m, x)") != []
    assert "from torch import onnx" in uses("from torch import onnx")
    assert uses("import torch\ntorch.export.export(m, x)") == []


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_source_does_not_use_the_peers(path: Path) -> None:
    assert uses(path.read_text(encoding="utf-8")) == []


def test_export_does_not_call_the_peers() -> None:
    # torch itself imports torch.onnx (torch._dynamo does), so the test blocks the peers'
    # entry points and onnxscript's torch_lib, then exports.
    code = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.startswith("onnxscript.function_libs"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import torch, torch.onnx
import torch.onnx._internal.exporter._core as core
import torch.onnx._internal.torchscript_exporter.utils as ts_utils
def refuse(*a, **k):
    raise AssertionError("torch.onnx's exporter was called")
torch.onnx.export = core.export = ts_utils.export = ts_utils._export = refuse
import torchonnx
class M(torch.nn.Module):
    def forward(self, x):
        return torch.relu(x) + 1
program = torchonnx.export(M(), (torch.randn(2, 3),), verify=True)
print("ok", len(program.model.graph))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1].startswith("ok")


CODEGEN_ONLY = ("jinja2", "ruamel", "black", "ruff")


def test_export_needs_no_codegen_dependency() -> None:
    """What users install is what exporting needs: codegen's dependencies are an extra, and an
    export runs where importing them fails."""
    import importlib.metadata
    import re

    for requirement in importlib.metadata.requires("torchonnx") or []:
        name = re.split(r"[ <>=!~;\[.]", requirement, maxsplit=1)[0].lower()
        assert name not in CODEGEN_ONLY or "extra ==" in requirement, requirement
    code = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {CODEGEN_ONLY!r}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import torch, torchonnx
model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.GELU()).eval()
program = torchonnx.export(model, (torch.randn(2, 4),), verify=True)
print("ok", sorted(m for m in sys.modules if m.split(".")[0] in {CODEGEN_ONLY!r}))
# dispatch reads the registry only; the catalog (docs, samples, locations) is for messages
print("torchonnx.generated.catalog" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-2:] == ["ok []", "False"]
