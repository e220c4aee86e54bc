"""torchonnx's own code never uses torch.onnx's exporters or onnxscript's torch_lib: those are
the peers it is measured against. Checked in the source and while exporting."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import re
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


REQUIREMENTS = importlib.metadata.requires("torchonnx") or []


def top_module(requirement: str) -> str:
    """The top-level module a requirement names (`ruamel.yaml>=0.18` installs `ruamel`)."""
    return re.split(r"[ <>=!~;\[.]", requirement, maxsplit=1)[0].lower()


# codegen's dependencies, as pyproject.toml's `codegen` extra lists them
CODEGEN_ONLY = tuple(top_module(r) for r in REQUIREMENTS if re.search(r"extra == .codegen.", r))

# One fresh interpreter serves both checks below (importing torch costs seconds). torch itself
# imports torch.onnx (torch._dynamo does), so the peers' entry points are replaced by functions
# that refuse, imports of onnxscript's torch_lib fail, and every attempt to import one of
# codegen's dependencies is recorded (and allowed, so that a guarded `try: import` counts too).
_EXPORT_IN_A_GUARDED_INTERPRETER = f"""
import importlib.abc, sys
attempted = []
class Guard(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.startswith("onnxscript.function_libs"):
            raise ImportError("blocked: " + name)
        if name.split(".")[0] in {CODEGEN_ONLY!r}:
            attempted.append(name)
        return None
sys.meta_path.insert(0, Guard())
import torch, torch.onnx
import torch.onnx._internal.exporter._core as core
import torch.onnx._internal.torchscript_exporter.utils as ts_utils
def refuse(*a, **k):
    raise AssertionError("torch.onnx's exporter was called")
torch.onnx.export = core.export = ts_utils.export = ts_utils._export = refuse
import torchonnx
model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.GELU()).eval()
program = torchonnx.export(model, (torch.randn(2, 4),), verify=True)
print("ok", len(program.model.graph))
print(sorted(set(attempted)))
# dispatch reads the registry only; the catalog (docs, samples, locations) is for messages
print("torchonnx.generated.catalog" in sys.modules)
"""


@pytest.fixture(scope="module")
def guarded_export() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _EXPORT_IN_A_GUARDED_INTERPRETER], capture_output=True, text=True
    )


def test_export_does_not_call_the_peers(guarded_export: subprocess.CompletedProcess) -> None:
    assert guarded_export.returncode == 0, guarded_export.stderr[-2000:]
    assert guarded_export.stdout.strip().splitlines()[-3].startswith("ok")


def test_export_needs_no_codegen_dependency(guarded_export: subprocess.CompletedProcess) -> None:
    """What users install is what exporting needs: codegen's dependencies are an extra, and an
    export never tries to import them."""
    assert {"jinja2", "ruamel"} <= set(CODEGEN_ONLY)
    for requirement in REQUIREMENTS:
        assert top_module(requirement) not in CODEGEN_ONLY or "extra ==" in requirement, requirement
    assert guarded_export.returncode == 0, guarded_export.stderr[-2000:]
    assert guarded_export.stdout.strip().splitlines()[-2:] == ["[]", "False"]


# -- onnxscript and onnx_ir through their public API only ------------------------------------

LIBRARIES = ("onnxscript", "onnx_ir")
RUNTIME = sorted((ROOT / "runtime").rglob("*.py"))


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _inherited_private(dotted: str) -> set[str]:
    """The private names a subclass of `dotted` (a class of LIBRARIES) could touch: its
    methods and the attributes its code sets on self."""
    module, _, name = dotted.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    names = {n for n in dir(cls) if _private(n)}
    for base in cls.__mro__:
        if base.__module__.split(".")[0] in LIBRARIES:
            names |= set(
                re.findall(r"self\.(_[A-Za-z]\w*)\s*(?::[^=\n]*)?=", inspect.getsource(base))
            )
    return names


def private_uses(source: str) -> list[str]:
    """Private modules, names and members of onnxscript and onnx_ir that `source` uses."""
    tree = ast.parse(source)
    bound: dict[str, str] = {}  # local name -> what it names in LIBRARIES
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in LIBRARIES:
                    found += [alias.name] if any(map(_private, alias.name.split("."))) else []
                    local = alias.asname or alias.name.split(".")[0]
                    bound[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in LIBRARIES:
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                found += [dotted] if any(map(_private, dotted.split("."))) else []
                bound[alias.asname or alias.name] = dotted
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in bound:
                found.append(_dotted(node))
        if isinstance(node, ast.ClassDef):
            bases = [bound[b.id] for b in node.bases if isinstance(b, ast.Name) and b.id in bound]
            inherited = set().union(*(_inherited_private(b) for b in bases))
            for item in ast.walk(node):
                if isinstance(item, ast.FunctionDef) and item.name in inherited:
                    found.append(f"{node.name}.{item.name} overrides a private method")
                if (
                    isinstance(item, ast.Attribute)
                    and isinstance(item.value, ast.Name)
                    and item.value.id == "self"
                    and item.attr in inherited
                ):
                    found.append(f"{node.name} uses self.{item.attr}")
    return sorted(set(found))


def test_private_use_checker_finds_what_it_looks_for() -> None:
    assert private_uses("from onnxscript.optimizer._constant_folding import X") != []
    assert private_uses("from onnxscript import rewriter\nrewriter._DEFAULT_REWRITE_RULES") != []
    assert private_uses("import onnx_ir as ir\nir._core.Node") == ["ir._core"]
    subclass = (
        "from onnxscript import GraphBuilder\nclass B(GraphBuilder):\n    def __init__(self):\n"
    )
    assert private_uses(subclass + "        self._features = 1\n") == ["B uses self._features"]
    assert private_uses(
        subclass + "        pass\n    def _annotate_node(self, node):\n        pass\n"
    )
    assert private_uses(subclass + "        self._mine = 1\n") == []
    assert private_uses("import onnx_ir as ir\nir.passes.common.NameFixPass()") == []


@pytest.mark.parametrize("path", RUNTIME, ids=[str(p.relative_to(ROOT)) for p in RUNTIME])
def test_runtime_uses_only_public_onnxscript_and_onnx_ir(path: Path) -> None:
    assert private_uses(path.read_text(encoding="utf-8")) == []
