"""What adding one entry changes in generated/: `python tools/entry_churn.py`.

Generates the specs as they are and with a small entry (aten::deg2rad) inserted before aten::exp
in elementwise.yaml, both in a temporary folder, and counts the changed files and the lines added
and removed in each (the catalog, the one index of spec lines, is expected to shift)."""

from __future__ import annotations

import difflib
import shutil
import tempfile
from pathlib import Path

from torchonnx.codegen.main import generate

ROOT = Path(__file__).resolve().parent.parent
ENTRY = """\
aten::deg2rad:
  also: [aten::deg2rad.out]
  doc: Degrees to radians, elementwise.
  dtypes: [float16, float32, float64]
  shape: same(self)
  lower:
    - since: 7
      emit: Mul(self, math.pi / 180)
  samples:
    - t(3, 4)

"""


def _generate(specs: Path, out: Path) -> list[str]:
    fm, errors = generate(specs)
    assert fm is not None, [str(e) for e in errors]
    return sorted(c for c in fm.write(out) if not c.endswith("(removed)"))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        specs, before, after = Path(tmp, "specs"), Path(tmp, "before"), Path(tmp, "after")
        shutil.copytree(ROOT / "specs", specs)
        _generate(specs, before)
        family = specs / "elementwise.yaml"
        text = family.read_text(encoding="utf-8")
        family.write_text(text.replace("aten::exp:\n", ENTRY + "aten::exp:\n", 1), "utf-8")
        shutil.copytree(before, after)
        changed = _generate(specs, after)
        total_added = total_removed = 0
        for rel in changed:
            old = (before / rel).read_text(encoding="utf-8").splitlines()
            new = (after / rel).read_text(encoding="utf-8").splitlines()
            diff = list(difflib.unified_diff(old, new, lineterm="", n=0))
            added = sum(1 for d in diff if d.startswith("+") and not d.startswith("+++"))
            removed = sum(1 for d in diff if d.startswith("-") and not d.startswith("---"))
            total_added, total_removed = total_added + added, total_removed + removed
            print(f"  {rel}: +{added} -{removed}")
        print(
            f"an entry of {len(ENTRY.splitlines()) - 1} lines: {len(changed)} files changed, "
            f"+{total_added} -{total_removed} lines"
        )


if __name__ == "__main__":
    main()
