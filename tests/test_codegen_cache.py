"""codegen's cache: ATen schemas are read without importing torch once cached, spec files are
not parsed again while their inputs are unchanged, and a cache never changes what codegen
generates or reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from torchonnx.codegen import aten, cache
from torchonnx.codegen.cache import LoadCache
from torchonnx.codegen.files import compare_trees
from torchonnx.codegen.main import generate, load_specs

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
    before = [p.name for p in tmp_path.iterdir()]
    # another build of torch at the same place (its version file names the build)
    monkeypatch.setattr(aten, "code_digest", lambda module: "another torch or codegen")
    upgraded = aten.SchemaCache(tmp_path)
    assert upgraded.get("aten::relu") is None
    upgraded.add(aten._from_torch("aten::sigmoid"))
    upgraded.save()
    # the file of what this install had before is gone
    after = [p.name for p in tmp_path.iterdir()]
    assert len(after) == 1 and after != before
    (tmp_path / after[0]).write_text("{not json")
    assert aten.SchemaCache(tmp_path).schemas == {}


def test_spec_files_load_afresh_when_changed(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    shutil.copytree(ROOT / "specs", specs)
    load_cache = LoadCache(tmp_path / "cache")
    fm, errors = generate(specs, load_cache)
    assert fm is not None and not errors
    assert len(list((tmp_path / "cache").glob("load-*.pickle"))) == len(list(specs.glob("*.yaml")))
    # a cached run generates what an uncached one does
    fm.write(tmp_path / "cold")
    generate(specs, load_cache)[0].write(tmp_path / "warm")
    assert compare_trees(tmp_path / "cold", tmp_path / "warm") == []
    # an edited body is analyzed afresh (the other entries come from the cache)
    family = specs / "elementwise.yaml"
    family.write_text(
        family.read_text().replace("emit: Add(self, other)", "emit: Add(other, self)", 1)
    )
    edited = generate(specs, load_cache)[0]
    assert "op.Add(other, self)" in edited.files["onnxscript_elementwise.py"]
    family.write_text((ROOT / "specs" / "elementwise.yaml").read_text())
    # an edit is seen, and a file with errors is reported on every run
    family.write_text(family.read_text().replace("dtypes: numeric", "dtypes: numerik", 1))
    for _ in range(2):
        fm, errors = generate(specs, load_cache)
        assert fm is None and any("numerik" in e.message for e in errors)
    # so is a change to common.yaml, which every family's entries depend on
    family.write_text((ROOT / "specs" / "elementwise.yaml").read_text())
    common = specs / "common.yaml"
    common.write_text(common.read_text().replace("  numeric:", "  numerical:", 1))
    fm, errors = generate(specs, load_cache)
    assert fm is None and any("numeric" in e.message for e in errors)


RUN = """
import sys
from torchonnx.codegen import analyze, load
from torchonnx.codegen.main import main
parsed, analyzed = [], []
parse, run = load._File.load, analyze._Entry.run
load._File.load = lambda self: (parsed.append(self.name), parse(self))[1]
analyze._Entry.run = lambda self: (analyzed.append(self.e.key), run(self))[1]
code = main(["--specs", sys.argv[1], "--check"])
print(sorted(m for m in ("torch", "sympy") if m in sys.modules), len(parsed), len(analyzed))
sys.exit(code)
"""


def test_cached_codegen_neither_imports_torch_nor_parses_nor_analyzes(tmp_path: Path) -> None:
    env = {**os.environ, "TORCHONNX_CACHE_DIR": str(tmp_path)}

    def run(seed: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", RUN, str(ROOT / "specs")],
            capture_output=True,
            text=True,
            env={**env, "PYTHONHASHSEED": seed},  # cache keys must not depend on it
            cwd=ROOT,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    # the first run reads torch, parses every spec file, analyzes every entry, and fills the
    # cache; the second does none of it
    files = len(list((ROOT / "specs").glob("*.yaml")))
    first = run("1").split()
    assert first[:2] == ["['torch']", str(files)] and int(first[2]) > 200
    assert len(list(tmp_path.glob("aten-schemas-*.json"))) == 1
    assert run("2") == "[] 0 0"
    cached = json.loads(next(tmp_path.glob("aten-schemas-*.json")).read_text())
    assert "aten::add.Tensor" in cached


def test_cache_keys_cover_the_code_that_makes_the_cached_data() -> None:
    # loading reads the spec model, errors, dtype names and opset ranges; analysis and
    # rendering do not change what a file loads to, so editing them keeps the cache
    loads = set(cache.sources("torchonnx.codegen.load"))
    assert loads == {
        "torchonnx.codegen.load",
        "torchonnx.codegen.model",
        "torchonnx.codegen.errors",
        "torchonnx.dtypes",
        "torchonnx.opsets",
    }
    assert {"torchonnx.dtypes", "torchonnx.overloads"} <= set(
        cache.sources("torchonnx.codegen.aten")
    )
