"""Every YAML example of specs/README.md is a valid entry: codegen accepts it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from torchonnx.codegen.main import load_specs

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "specs" / "README.md"
EXAMPLES = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_example(index: int, tmp_path: Path) -> None:
    shutil.copy(ROOT / "specs" / "common.yaml", tmp_path / "common.yaml")
    (tmp_path / "example.yaml").write_text(EXAMPLES[index], encoding="utf-8")
    specs, errors = load_specs(tmp_path)
    assert not errors, "\n".join(str(e) for e in errors)
    assert specs is not None and len(specs.analyzed) == 1
