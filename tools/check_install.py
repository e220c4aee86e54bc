"""`make check-install`: run in a clean venv where torchonnx is installed from the source tree
(not editable) with no extras, as a user installs it. Codegen's dependencies must be absent
(jinja2 excepted: torch itself requires it), torchonnx must not require them, exporting must
not import them, and a model must export, check and run against eager PyTorch all the same."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path

# torch requires jinja2, so it is installed whatever torchonnx asks for
INSTALLED_BY_TORCH = ("jinja2",)


def main() -> None:
    requirements = importlib.metadata.requires("torchonnx") or []
    # codegen's dependencies, as pyproject.toml's `codegen` extra lists them
    codegen_only = [
        re.split(r"[ <>=!~;\[]", r, maxsplit=1)[0].lower()
        for r in requirements
        if re.search(r"extra == .codegen.", r)
    ]
    assert codegen_only, "torchonnx declares no `codegen` extra"
    for name in codegen_only:
        if name not in INSTALLED_BY_TORCH:
            assert importlib.util.find_spec(name.split(".")[0]) is None, f"{name} is installed"

    import torch

    import torchonnx

    source = Path(__file__).resolve().parent.parent
    installed = Path(torchonnx.__file__).resolve()
    assert (source / "runtime") not in installed.parents, f"torchonnx is imported from {installed}"

    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 6 * 6, 4),
    ).eval()
    x = torch.randn(2, 3, 8, 8)
    program = torchonnx.export(model, (x,), verify=True)
    torch.testing.assert_close(program(x)[0], model(x), rtol=1e-4, atol=1e-5)
    imported = [m for m in sys.modules if m in {n.split(".")[0] for n in codegen_only}]
    assert not imported, f"exporting imported {imported}"
    print(
        f"check-install: exported {len(program.model.graph)} nodes with torchonnx from {installed}"
    )


if __name__ == "__main__":
    main()
