"""Locations and errors of the spec front end.

Every object parsed from a spec keeps the `Location` it came from, and every problem found is
a `SpecError` at such a location. Errors are collected rather than raised one at a time, so a
run reports everything that is wrong with the specs at once.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, order=True)
class Location:
    """A position in a spec file; line and column are 1-based."""

    file: str
    line: int
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def shifted(self, lines: int, col: int) -> Location:
        """The location `lines` further down, at column `col` (used inside block scalars)."""
        return Location(self.file, self.line + lines, col)


def spec_name(path: str | os.PathLike[str]) -> str:
    """How generated files and locations name a spec file: `<spec folder>/<file>`, e.g.
    `specs/nn.yaml`, whatever the working directory and however the folder was given."""
    path = Path(path).resolve()
    return f"{path.parent.name}/{path.name}"


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as the command line shows it: relative to the working directory when it lies
    below it. Only for messages; never in generated files (see `spec_name`)."""
    rel = os.path.relpath(path)
    return os.fspath(path) if rel.startswith("..") else rel


class SpecError(Exception):
    """One problem in a spec, with the place it was found."""

    def __init__(self, loc: Location, message: str) -> None:
        super().__init__(f"{loc}: {message}")
        self.loc = loc
        self.message = message


@dataclass
class Diagnostics:
    """Collects the errors of a whole codegen run."""

    errors: list[SpecError] = field(default_factory=list)

    def error(self, loc: Location, message: str) -> None:
        self.errors.append(SpecError(loc, message))

    @contextlib.contextmanager
    def collect(self) -> Iterator[None]:
        """Record a `SpecError` raised in the block and carry on after it."""
        try:
            yield
        except SpecError as err:
            self.errors.append(err)

    def sorted(self) -> list[SpecError]:
        unique = {(e.loc, e.message): e for e in self.errors}
        return [unique[k] for k in sorted(unique)]

    def __bool__(self) -> bool:
        return bool(self.errors)
