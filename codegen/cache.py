"""What codegen keeps between runs, so that a run repeats no slow work whose inputs have not
changed: the ATen schemas of a torch install (`aten.SchemaCache`: reading them imports torch),
what each spec file loads to (`LoadCache`: parsing YAML with locations is slow), and what each
entry analyzes to (`AnalysisCache`: checking and rendering bodies is the rest of the time).

The cache lives in one folder per user (`default_dir()`). Each file records the inputs it was
made from, including the code that made it (`code_digest()`), is written atomically and replaces
the previous file made for the same thing; a file that is missing, unreadable or made from
other inputs is ignored. A cache costs time when it misses, never correctness: the command
line uses it, and `--no-cache` (or any caller of `generate` without one) runs without it.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib.util
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any


def default_dir() -> Path:
    """`$TORCHONNX_CACHE_DIR`, else torchonnx's folder in the user's cache folder."""
    explicit = os.environ.get("TORCHONNX_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "torchonnx"


@functools.cache
def code_digest(module: str) -> str:
    """A hash of the code that decides what `module` makes (`sources`), and of the Python
    version (which reads the pickles). An edit elsewhere (rendering, say) keeps the cache."""
    digest = hashlib.sha256(sys.version.encode())
    for name, source in sorted(sources(module).items()):
        digest.update(f"{name}\0{len(source)}\0".encode() + source)
    return digest.hexdigest()


def sources(module: str) -> dict[str, bytes]:
    """The source of `module` and of every torchonnx module it imports, transitively (found by
    reading their import statements)."""
    out: dict[str, bytes] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        spec = importlib.util.find_spec(name)
        if name in out or spec is None or spec.origin is None:
            continue
        out[name] = source = Path(spec.origin).read_bytes()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                todo.extend(a.name for a in node.names if a.name.startswith("torchonnx."))
            elif (
                isinstance(node, ast.ImportFrom)
                and node.level == 0
                and (node.module or "").startswith("torchonnx.")
            ):
                todo.append(node.module)
                package = importlib.util.find_spec(node.module)
                if package is not None and package.submodule_search_locations is not None:
                    # `from torchonnx.codegen import aten`: the names may be modules
                    todo.extend(f"{node.module}.{a.name}" for a in node.names)
    return out


def name_hash(text: str) -> str:
    """A short hash for a cache file's name."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def write_atomic(path: Path, data: bytes, replaces: str | None = None) -> None:
    """Write `path` so that readers see the old file or the new one, then remove the other files
    matching the glob `replaces`. Failing to write costs the next run time, and is not
    reported."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        for old in path.parent.glob(replaces) if replaces else ():
            if old != path:
                old.unlink(missing_ok=True)


class LoadCache:
    """What each spec file loaded to, kept with a hash of the inputs it was loaded from (the
    file's text, common.yaml's, the code). Only loads without errors are kept, so every run
    reports a file's errors."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def _file(self, path: Path) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / f"load-{name_hash(str(path.resolve()))}.pickle"

    @staticmethod
    def _key(inputs: tuple[bytes, ...]) -> str:
        digest = hashlib.sha256(code_digest("torchonnx.codegen.load").encode())
        for data in inputs:
            digest.update(hashlib.sha256(data).digest())
        return digest.hexdigest()

    def get(self, path: Path, inputs: tuple[bytes, ...]) -> Any | None:
        """What `path` loaded to from these inputs, or None."""
        file = self._file(path)
        if file is None:
            return None
        try:
            key, value = pickle.loads(file.read_bytes())
        except Exception:  # missing, partial or from another version: loaded afresh
            return None
        return value if key == self._key(inputs) else None

    def put(self, path: Path, inputs: tuple[bytes, ...], value: Any) -> None:
        file = self._file(path)
        if file is not None:
            write_atomic(file, pickle.dumps((self._key(inputs), value), protocol=5))


class AnalysisCache:
    """What each entry analyzed to, by a hash of everything analysis reads: the entry (with its
    locations), common.yaml, the schema and promotion of every overload a body may call, the
    ONNX operator schemas (onnx's version) and the code. One file, rewritten with the entries of
    the last run; only entries analyzed without errors are kept."""

    def __init__(self, directory: Path | None) -> None:
        self.file = directory / "analysis.pickle" if directory is not None else None
        self.old: dict[str, Any] = {}
        self.new: dict[str, Any] = {}
        if self.file is not None:
            try:
                self.old = pickle.loads(self.file.read_bytes())
            except Exception:  # missing, partial or from another version: analyzed afresh
                self.old = {}

    def context(self, common: Any, callees: Any) -> str:
        """The hash of what every entry's analysis reads besides the entry."""
        if self.file is None:
            return ""
        import onnx  # codegen reads onnx's operator schemas

        digest = hashlib.sha256(code_digest("torchonnx.codegen.analyze").encode())
        digest.update(onnx.__version__.encode())
        # reprs, not pickles: a pickle's bytes depend on which equal strings are one object
        digest.update(repr((common, sorted(callees.items()))).encode())
        return digest.hexdigest()

    def _key(self, context: str, entry: Any) -> str:
        return hashlib.sha256(f"{context}\0{entry!r}".encode()).hexdigest()

    def get(self, context: str, entry: Any) -> Any | None:
        if self.file is None:
            return None
        key = self._key(context, entry)
        value = self.old.get(key)
        if value is not None:
            self.new[key] = value
        return value

    def put(self, context: str, entry: Any, value: Any) -> None:
        if self.file is not None:
            self.new[self._key(context, entry)] = value

    def save(self) -> None:
        if self.file is not None and self.new.keys() != self.old.keys():
            write_atomic(self.file, pickle.dumps(self.new, protocol=5))
