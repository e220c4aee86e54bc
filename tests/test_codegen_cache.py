"""The ATen schema cache: codegen reads what torch says without importing torch once the
schemas are cached, and a cache never changes what codegen generates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from torchonnx.codegen import aten
from torchonnx.codegen.main import load_specs

ROOT = Path(__file__).resolve().parent.parent


def spec_overloads() -> list[str]:
    specs, errors = load_specs(ROOT / "specs")
    assert specs is not None and not errors
    names = {name for a in specs.analyzed for name in a.schemas}
    return sorted(n for n in names if aten.is_aten_name(n))


def test_every_spec_schema_survives_the_cache(tmp_path: Path) -> None:
    names = spec_overloads()
    assert len(names) > 300
    written = aten.SchemaCache(tmp_path)
    for name in names:
        written.add(aten._from_torch(name))
    written.save()
    read = aten.SchemaCache(tmp_path)
    assert sorted(read.schemas) == names  # none was left out as unwritable
    for name in names:
        assert read.get(name) == aten._from_torch(name), name


def test_another_torch_or_a_broken_file_reads_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = aten.SchemaCache(tmp_path)
    cache.add(aten._from_torch("aten::relu"))
    cache.save()
    assert aten.SchemaCache(tmp_path).get("aten::relu") is not None
    install, _ = aten._key()
    monkeypatch.setattr(aten, "_key", lambda: (install, "another"))
    upgraded = aten.SchemaCache(tmp_path)
    assert upgraded.get("aten::relu") is None
    upgraded.add(aten._from_torch("aten::sigmoid"))
    upgraded.save()
    # the file of the torch this install had before is gone
    assert [p.name for p in tmp_path.iterdir()] == [f"aten-schemas-{install}-another.json"]
    (tmp_path / f"aten-schemas-{install}-another.json").write_text("{not json")
    assert aten.SchemaCache(tmp_path).schemas == {}


RUN = """
import sys
from torchonnx.codegen.main import main
code = main(["--specs", sys.argv[1], "--check"])
print(sorted(m for m in ("torch", "sympy") if m in sys.modules))
sys.exit(code)
"""


def test_codegen_imports_neither_torch_nor_sympy_once_cached(tmp_path: Path) -> None:
    env = {**os.environ, "TORCHONNX_CACHE_DIR": str(tmp_path)}

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", RUN, str(ROOT / "specs")],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    assert run() == "['torch']"  # the first run reads torch and fills the cache
    assert len(list(tmp_path.glob("aten-schemas-*.json"))) == 1
    assert run() == "[]"
    cached = json.loads(next(tmp_path.glob("aten-schemas-*.json")).read_text())
    assert "aten::add.Tensor" in cached
