"""The version ranges pyproject.toml declares are the ones CI tests: the versions pinned in
constraints.txt (what CI installs) satisfy every range, and the libraries whose behaviour the
exporter depends on release by release are bounded just above their pins."""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
# Their next minor release may change schemas, rewrite rules or kernels: each needs an upper
# bound that admits no minor release above the one CI installs.
BOUNDED = ("onnx", "onnxscript", "onnx-ir", "onnxruntime")


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = [r for group in project.get("optional-dependencies", {}).values() for r in group]
    requirements = [Requirement(r) for r in [*project["dependencies"], *extras]]
    # an extra that includes another (`dev` includes `torchonnx[codegen]`) names the project
    return [r for r in requirements if canonicalize_name(r.name) != project["name"]]


def pinned() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt pins exact versions: {line!r}"
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_pins_satisfy_every_declared_range() -> None:
    pins = pinned()
    for req in declared():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is declared in pyproject.toml but not pinned for CI"
        assert req.specifier.contains(
            pins[name], prereleases=True
        ), f"pyproject.toml declares {req}, but CI installs {req.name}=={pins[name]}"


def test_runtime_libraries_are_bounded_just_above_their_pins() -> None:
    pins = pinned()
    requirements = {canonicalize_name(r.name): r for r in declared()}
    for name in BOUNDED:
        req, pin = requirements[name], pins[name]
        assert any(
            s.operator in ("<", "<=", "==", "~=") for s in req.specifier
        ), f"{req} has no upper bound"
        untested = Version(f"{pin.major}.{pin.minor + 1}")
        assert (
            untested not in req.specifier
        ), f"{req} admits {name} {untested}, which CI does not test (it pins {pin})"
