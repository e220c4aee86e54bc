"""How opset numbers are written in messages, docs and generated code: the one copy of it."""

from __future__ import annotations

from collections.abc import Iterable


def span(opsets: Iterable[int]) -> str:
    """Opsets as runs: `13`, `7..12`, `7..9, 12`; sorted, each opset once."""
    if isinstance(opsets, range) and opsets.step == 1 and len(opsets):
        return _run(opsets[0], opsets[-1])  # without walking a long range
    runs: list[list[int]] = []  # [first, last] of each run
    for opset in sorted(set(opsets)):
        if runs and opset == runs[-1][1] + 1:
            runs[-1][1] = opset
        else:
            runs.append([opset, opset])
    return ", ".join(_run(lo, hi) for lo, hi in runs)


def _run(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}..{hi}"
