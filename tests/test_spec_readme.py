"""Every YAML example of specs/README.md is a valid entry: codegen accepts it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from torchonnx.codegen.main import load_specs

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "specs" / "README.md"
TEXT = README.read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```yaml\n(.*?)```", TEXT, flags=re.S)
# a spec that must fail, and the error codegen gives (its start: the first lines it has)
ERRORS = re.findall(r"```yaml-error\n(.*?)```\s*```text\n(.*?)```", TEXT, flags=re.S)


def test_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_example(index: int, tmp_path: Path) -> None:
    shutil.copy(ROOT / "specs" / "common.yaml", tmp_path / "common.yaml")
    (tmp_path / "example.yaml").write_text(EXAMPLES[index], encoding="utf-8")
    specs, errors = load_specs(tmp_path)
    assert not errors, "\n".join(str(e) for e in errors)
    assert specs is not None and len(specs.analyzed) == 1


def test_readme_has_error_examples() -> None:
    assert ERRORS and len(ERRORS) == TEXT.count("```yaml-error")


@pytest.mark.parametrize("index", range(len(ERRORS)))
def test_readme_error_example(index: int, tmp_path: Path) -> None:
    spec, expected = ERRORS[index]
    shutil.copy(ROOT / "specs" / "common.yaml", tmp_path / "common.yaml")
    (tmp_path / "ops.yaml").write_text(spec, encoding="utf-8")
    _, errors = load_specs(tmp_path)
    shown = [f"{Path(e.loc.file).name}:{e.loc.line}:{e.loc.col}: {e.message}" for e in errors]
    assert any(line.startswith(expected.strip()) for line in shown), shown
