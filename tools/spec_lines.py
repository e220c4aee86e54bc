"""Spec size against an earlier revision: `python tools/spec_lines.py REV`.

For the entries REV already had, counts their lowering blocks and body (`emit`) lines then and
now, so a de-duplication shows as fewer of both while new entries do not blur it; then the
total YAML lines and entries of both trees."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent


def _texts_at(rev: str) -> dict[str, str]:
    archive = subprocess.run(
        ["git", "archive", rev, "specs"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {
            Path(m.name).name: tar.extractfile(m).read().decode()
            for m in tar.getmembers()
            if m.isfile() and m.name.endswith(".yaml")
        }


def _texts_now() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((ROOT / "specs").glob("*.yaml"))}


def _entries(texts: dict[str, str]) -> dict[str, tuple[int, int]]:
    """ATen key -> (lowering blocks, body lines)."""
    yaml = YAML(typ="rt")
    out: dict[str, tuple[int, int]] = {}
    for name, text in sorted(texts.items()):
        if name == "common.yaml":
            continue
        for key, entry in (yaml.load(text) or {}).items():
            blocks = entry.get("lower") or []
            body = sum(len(str(b["emit"]).rstrip("\n").splitlines()) for b in blocks if "emit" in b)
            out[key] = (len(blocks), body)
    return out


def main(rev: str) -> None:
    before, after = _texts_at(rev), _texts_now()
    old, new = _entries(before), _entries(after)
    kept = [k for k in old if k in new]
    print(f"entries at {rev}: {len(old)} ({len(kept)} still present)")
    print(f"  lowering blocks: {sum(old[k][0] for k in kept)} -> {sum(new[k][0] for k in kept)}")
    print(f"  body lines:      {sum(old[k][1] for k in kept)} -> {sum(new[k][1] for k in kept)}")
    lines = [sum(len(t.splitlines()) for t in texts.values()) for texts in (before, after)]
    print(f"all specs: {len(old)} -> {len(new)} entries, {lines[0]} -> {lines[1]} YAML lines")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "HEAD")
