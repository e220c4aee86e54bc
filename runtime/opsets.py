"""How opset numbers are written in messages, docs and generated code: the one copy of it."""

from __future__ import annotations

from collections.abc import Iterable


def span(opsets: Iterable[int]) -> str:
    """Opsets as runs: `13`, `7..12`, `7..9, 12`; sorted, each opset once."""
    if isinstance(opsets, range) and opsets.step == 1 and len(opsets):
        return _run(opsets[0], opsets[-1])  # without walking a long range
    runs: list[str] = []
    start = prev = None
    for opset in sorted(set(opsets)):
        if prev is not None and opset == prev + 1:
            prev = opset
            continue
        if start is not None:
            runs.append(_run(start, prev))
        start = prev = opset
    if start is not None:
        runs.append(_run(start, prev))
    return ", ".join(runs)


def _run(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}..{hi}"
