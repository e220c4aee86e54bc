"""Generation is deterministic, writes only what changed, and follows spec edits."""

from __future__ import annotations

import difflib
import functools
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from torchonnx.codegen.files import GENERATED_MARK, FileManager, compare_trees
from torchonnx.codegen.main import generate, main

ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def fresh() -> FileManager:
    """One run of codegen on the repository's specs, shared by the tests that read it."""
    fm, errors = generate(ROOT / "specs")
    assert fm is not None and not errors
    return fm


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen1")
    fresh().write(out)
    return out


def test_deterministic(first_run: Path, tmp_path: Path) -> None:
    fm, _ = generate(ROOT / "specs")
    fm.write(tmp_path)
    assert compare_trees(tmp_path, first_run) == []
    files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(first_run) for p in first_run.rglob("*") if p.is_file())


def test_committed_generated_matches_specs(first_run: Path) -> None:
    assert compare_trees(first_run, ROOT / "generated") == []


@pytest.mark.parametrize("where", ["elsewhere", "specs folder"])
def test_output_does_not_depend_on_cwd(
    where: str, tmp_path: Path, first_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from another folder (absolute paths) or from inside the spec folder (`--specs .`),
    codegen writes what it writes from the repository root."""
    out = tmp_path / "out"
    if where == "elsewhere":
        monkeypatch.chdir(tmp_path)
        assert main(["--specs", str(ROOT / "specs"), "--out", str(out)]) == 0
    else:
        monkeypatch.chdir(ROOT / "specs")
        assert main(["--specs", ".", "--out", str(out)]) == 0
    assert compare_trees(out, first_run) == []
    assert "specs/elementwise.yaml" in (out / "onnxscript_elementwise.py").read_text("utf-8")


def test_every_file_has_the_header(first_run: Path) -> None:
    for path in first_run.rglob("*"):
        if path.is_file():
            assert GENERATED_MARK in path.read_text(encoding="utf-8").splitlines()[0], path


def test_generated_python_is_formatted(first_run: Path) -> None:
    """What codegen writes is what `make lint` checks: `ruff format` with the project's config."""
    from ruff.__main__ import find_ruff_bin

    done = subprocess.run(
        [find_ruff_bin(), "format", "--check", "--config", str(ROOT / "pyproject.toml"), "."],
        cwd=first_run,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _copy_specs(tmp_path: Path) -> Path:
    specs = tmp_path / "specs"
    shutil.copytree(ROOT / "specs", specs)
    return specs


def test_spec_edit_changes_modules_and_tables(tmp_path: Path, first_run: Path) -> None:
    specs = _copy_specs(tmp_path)
    out = tmp_path / "out"
    shutil.copytree(first_run, out)
    path = specs / "elementwise.yaml"
    text = path.read_text(encoding="utf-8")
    assert "      emit: Relu(self)\n" in text
    path.write_text(
        text.replace("      emit: Relu(self)\n", "      emit: Max(self, const(0, like=self))\n"),
        encoding="utf-8",
    )
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    fm, errors = generate(specs)
    assert not errors
    changed = set(fm.write(out))
    assert "onnxscript_elementwise.py" in changed
    assert "registry.py" in changed
    assert "docs/operators.md" in changed
    assert any(c.startswith("symbolic_opset") for c in changed)
    module = (out / "onnxscript_elementwise.py").read_text(encoding="utf-8")
    assert "op.Max(self, _h.const(op, 0, _h.dtype_of(self)))" in module
    assert "| Max |" in (out / "docs" / "operators.md").read_text(encoding="utf-8")
    # files whose content did not change were not rewritten
    for p, mtime in before.items():
        if p.relative_to(out).as_posix() not in changed:
            assert p.stat().st_mtime_ns == mtime, p


NEW_ENTRY = """\
aten::deg2rad:
  also: [aten::deg2rad.out]
  doc: Degrees to radians, elementwise.
  dtypes: [float16, float32, float64]
  shape: same(self)
  lower:
    - since: 9
      when: rank(self) > 0
      emit: Mul(self, math.pi / 180)
    - since: 7
      emit: Mul(Identity(self), math.pi / 180)
  gaps:
    - dtypes: [float16]
      opsets: ..8
      reason: a gap declared by the test
  samples:
    - t(3, 4)
    - t()

"""
# A line that counts entries or overloads in a Markdown table's introduction.
COUNTS = re.compile(r"^\d+ (spec entries|entries) ")


def test_adding_an_entry_only_adds_lines(tmp_path: Path, first_run: Path) -> None:
    """Outside the catalog (the one index of spec lines), adding an entry in the middle of a
    spec file adds lines and changes none: no line numbers, no positions shift."""
    specs = _copy_specs(tmp_path)
    path = specs / "elementwise.yaml"
    text = path.read_text(encoding="utf-8")
    assert "aten::deg2rad:" not in text
    path.write_text(text.replace("aten::exp:\n", NEW_ENTRY + "aten::exp:\n", 1), encoding="utf-8")
    out = tmp_path / "out"
    shutil.copytree(first_run, out)
    fm, errors = generate(specs)
    assert not errors, [str(e) for e in errors]
    changed = {c for c in fm.write(out) if not c.endswith("(removed)")}
    assert {
        "registry.py",
        "catalog.py",
        "onnxscript_elementwise.py",
        "docs/operators.md",
    } <= changed
    problems = []
    for rel in sorted(changed - {"catalog.py"}):
        old = (first_run / rel).read_text(encoding="utf-8").splitlines()
        new = (out / rel).read_text(encoding="utf-8").splitlines()
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(
            None, old, new, autojunk=False
        ).get_opcodes():
            if tag == "equal" or tag == "insert":
                continue
            if tag == "replace" and rel.startswith("docs/") and i2 - i1 == j2 - j1 == 1:
                if COUNTS.match(old[i1]) and COUNTS.match(new[j1]):
                    continue  # the counts line
            problems.append(f"{rel}: {tag} {old[i1:i2]} -> {new[j1:j2]}")
    assert problems == []
    registry = (out / "registry.py").read_text(encoding="utf-8")
    assert '"aten::deg2rad"' in registry and "_elementwise.deg2rad__opset9__when" in registry


def test_stale_generated_files_are_removed(tmp_path: Path, first_run: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(first_run, out)
    stale = out / "symbolic_opset99.py"
    stale.write_text(f"# {GENERATED_MARK} from nothing.\n", encoding="utf-8")
    own = out / "notes.md"
    own.write_text("hand-written\n", encoding="utf-8")
    assert "symbolic_opset99.py (removed)" in fresh().write(out)
    assert not stale.exists() and own.exists()


def test_check_fails_on_a_hand_edit(
    tmp_path: Path, first_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    shutil.copytree(first_run, out)
    registry = out / "registry.py"
    registry.write_text(
        registry.read_text(encoding="utf-8") + "# edited by hand\n", encoding="utf-8"
    )
    assert main(["--specs", str(ROOT / "specs"), "--out", str(out), "--check"]) == 1
    assert "# edited by hand" in capsys.readouterr().err
