"""The codegen pipeline: load specs, check them, render, write (or compare)."""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from torchonnx.codegen import aten
from torchonnx.codegen.analyze import Analyzed, analyze
from torchonnx.codegen.cache import AnalysisCache, LoadCache, default_dir
from torchonnx.codegen.errors import Diagnostics, Location, SpecError, display_path, spec_name
from torchonnx.codegen.files import FileManager, compare_trees
from torchonnx.codegen.load import COMMON_FILE, load_common, load_family
from torchonnx.codegen.model import Common
from torchonnx.codegen.render import Renderer

T = TypeVar("T")


@dataclass
class Specs:
    common: Common
    analyzed: list[Analyzed]
    spec_dir: str  # the spec folder's name, as generated files name it


def load_specs(
    spec_dir: Path, cache: LoadCache | None = None
) -> tuple[Specs | None, list[SpecError]]:
    """Every spec of `spec_dir`, checked; the errors, if any, sorted by location. Files are
    loaded, and entries analyzed, through the caches of `cache`'s folder where given."""
    diags = Diagnostics()
    cache = cache or LoadCache(None)
    common_path = spec_dir / COMMON_FILE
    if not common_path.exists():
        diags.error(
            Location(spec_name(common_path), 1),
            f"{COMMON_FILE} is missing: it names the opsets and dtype sets",
        )
        return None, diags.sorted()
    common_text = common_path.read_bytes()
    loaded = _cached(
        cache, common_path, (common_text,), diags, lambda: load_common(common_path, diags)
    )
    if loaded is None:
        return None, diags.sorted()
    common, sets = loaded
    entries = []
    for path in sorted(spec_dir.glob("*.yaml")):
        if path.name != COMMON_FILE:
            inputs = (common_text, path.read_bytes())
            load = functools.partial(load_family, path, common, sets, diags)
            entries.extend(_cached(cache, path, inputs, diags, load))
    analyzed = analyze(entries, common, diags, AnalysisCache(cache.directory))
    if diags:
        return None, diags.sorted()
    return Specs(common, analyzed, spec_dir.resolve().name), []


def _cached(
    cache: LoadCache,
    path: Path,
    inputs: tuple[bytes, ...],
    diags: Diagnostics,
    load: Callable[[], T],
) -> T:
    """What `path` loads to: from the cache, else loaded (and kept if it loaded without errors)."""
    value = cache.get(path, inputs)
    if value is None:
        errors = len(diags.errors)
        value = load()
        if len(diags.errors) == errors:
            cache.put(path, inputs, value)
    return value


def generate(
    spec_dir: Path, cache: LoadCache | None = None
) -> tuple[FileManager | None, list[SpecError]]:
    specs, errors = load_specs(spec_dir, cache)
    if specs is None:
        return None, errors
    fm = FileManager()
    Renderer(specs.analyzed, specs.common, specs.spec_dir).render(fm)
    fm.format()
    return fm, []


def _shown(err: SpecError, spec_dir: Path) -> str:
    """An error as the command line prints it: its file as a path from the working directory."""
    path = display_path(spec_dir / Path(err.loc.file).name)
    return f"{path}:{err.loc.line}:{err.loc.col}: {err.message}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m torchonnx.codegen",
        description="Check the ATen-to-ONNX specs and generate lowerings, registry and tables.",
    )
    parser.add_argument(
        "--specs", type=Path, default=Path("specs"), help="spec folder (default: specs)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("generated"), help="output folder (default: generated)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate into a temporary folder and fail if --out differs from it",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="read ATen schemas and specs afresh, not through the cache "
        f"({display_path(default_dir())}; TORCHONNX_CACHE_DIR moves it)",
    )
    args = parser.parse_args(argv)
    if not args.specs.is_dir():
        print(f"error: no spec folder at {args.specs}", file=sys.stderr)
        return 2
    cache_dir = None if args.no_cache else default_dir()
    schemas = aten.SchemaCache(cache_dir)
    aten.use_cache(schemas)
    fm, errors = generate(args.specs, LoadCache(cache_dir))
    schemas.save()
    if fm is None:
        for err in errors:
            print(_shown(err, args.specs), file=sys.stderr)
        print(
            f"{len(errors)} error(s) in {display_path(args.specs)}; nothing was written",
            file=sys.stderr,
        )
        return 1
    if args.check:
        with tempfile.TemporaryDirectory(prefix="torchonnx-codegen-") as tmp:
            fm.write(Path(tmp))
            diff = compare_trees(Path(tmp), args.out)
        if diff:
            sys.stderr.writelines(diff)
            print(
                f"\n{display_path(args.out)} is out of date with {display_path(args.specs)}: run `make codegen`",
                file=sys.stderr,
            )
            return 1
        print(
            f"{display_path(args.out)} matches {display_path(args.specs)} ({len(fm.files)} files)"
        )
        return 0
    changed = fm.write(args.out)
    for rel in changed:
        print(f"wrote {display_path(args.out / rel)}")
    print(f"{len(fm.files)} files generated, {len(changed)} changed")
    return 0
