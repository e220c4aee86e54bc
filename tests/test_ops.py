"""The op matrix, generated from the specs: every entry at the lowest and highest opset of each
of its lowerings and of each segment of their dtype plans, in every dtype it declares, on every
sample, against the overload called eagerly; static, and with dynamic dims (see DYNAMIC).

A test is one entry at one opset (all its dtypes and samples), which keeps pytest's items few
and of similar cost. Every sample must do what the specs say (oprun.run_sample), and at that
opset every dtype-plan segment that begins or ends there must be reached by some sample: run
where it runs, refused with its declared reason where it does not.

`make test` runs the quick matrix (TORCHONNX_OP_MATRIX=quick): each entry at the first opset
of each lowering and at its newest opset, so that the whole suite stays within its time as
specs grow; `make test-ops` (and CI) runs the full matrix above.
"""

from __future__ import annotations

import os
import traceback

import pytest

from torchonnx.catalog import Sample
from torchonnx.dispatch import Entry
from torchonnx.dtypes import Operand, compute_dtype

from oprun import SampleFailure, entries, plan_reason, run_sample, samples_of, spec_of, when_text

# Where dynamic runs cannot check an entry, and why: (first opset, last opset, reason).
# TORCHONNX_OP_DYNAMIC=all runs them anyway (=none: no dynamic runs at all).
STATIC_ONLY: dict[str, tuple[int, int, str]] = {
    "aten::slice.Tensor": (
        10,
        10,
        "ONNX's shape inference of Slice-10 gives the sliced dim the input's symbolic size, so "
        "the graph's output shape is wrong there (the values are right)",
    ),
}
DYNAMIC = os.environ.get("TORCHONNX_OP_DYNAMIC", "passing")
MATRIX = os.environ.get("TORCHONNX_OP_MATRIX", "full")
if MATRIX not in ("full", "quick"):
    raise ValueError(f"TORCHONNX_OP_MATRIX is `full` or `quick`, not {MATRIX!r}")


def dynamic_runs(key: str, opset: int) -> bool:
    if DYNAMIC == "all":
        return True
    if DYNAMIC == "none":
        return False
    lo, hi, _ = STATIC_ONLY.get(key, (0, -1, ""))
    return not lo <= opset <= hi


def _compute(entry: Entry, dtype: str) -> str:
    """The compute dtype of a tensor of `dtype` under the entry's promotion."""
    return compute_dtype(entry.promote, [Operand(dtype, 1)]) if entry.promote else dtype


def _computes(entry: Entry) -> set[str]:
    """The dtypes the entry may compute in: its dtypes under its promotion, and every dtype a
    `dtype` argument may name."""
    out = {_compute(entry, d) for d in entry.dtypes}
    return out | set(entry.dtypes) if entry.dtype_param is not None else out


def _bounds(entry: Entry, compute: str | None = None) -> set[int]:
    """The first and last opset of each lowering and, for `compute`, of each plan segment, and
    those of each gap with opsets (runtime gaps included) with the opsets just outside it."""
    out = {o for lw in entry.lowerings for o in (lw.since, lw.until)}
    for lw in entry.lowerings:
        for c, segments in lw.dtypes.items():
            if compute is None or c == compute:
                out.update(o for lo, hi, *_ in segments for o in (lo, hi))
    first, last = entry.opsets
    for gap in entry.gaps:
        if gap.opsets is not None and (compute is None or compute in gap.dtypes or not gap.dtypes):
            lo, hi = gap.opsets
            out.update(o for o in (lo - 1, lo, hi, hi + 1) if first <= o <= last)
    return out


def plan(entry: Entry, matrix: str = MATRIX) -> dict[int, list[str]]:
    """The opsets an entry is tested at, each with the dtypes tested there: all of them at
    the bounds of a lowering, those whose compute dtype has a plan segment bound there. The
    quick matrix keeps the first opset of each lowering and the newest opset."""
    lowering_bounds = _bounds(entry)
    out: dict[int, list[str]] = {}
    for dtype in entry.dtypes:
        for opset in lowering_bounds | _bounds(entry, _compute(entry, dtype)):
            out.setdefault(opset, []).append(dtype)
    if matrix == "quick":
        kept = {lw.since for lw in entry.lowerings} | {entry.opsets[1]}
        out = {opset: dtypes for opset, dtypes in out.items() if opset in kept}
    return dict(sorted(out.items()))


def _cases() -> list:
    return [
        pytest.param(key, opset, id=f"{key}-{opset}")
        for key, entry in sorted(entries().items())
        for opset in plan(entry)
    ]


def _samples(entry: Entry, opset: int, dtype: str) -> list[Sample]:
    return [
        s
        for s in samples_of(entry)
        if (s.opsets is None or s.opsets[0] <= opset <= s.opsets[1])
        and (not s.dtypes or dtype in s.dtypes)
    ]


def _failure(err: BaseException, where: str) -> str:
    if isinstance(err, SampleFailure):
        return str(err)
    trace = "".join(traceback.format_exception(err, limit=-4)).rstrip()
    return f"{where}: {type(err).__name__}\n{trace}"


@pytest.mark.parametrize(("key", "opset"), _cases())
def test_op(key: str, opset: int) -> None:
    entry = entries()[key]
    failures: list[str] = []
    outcomes = []
    for dtype in plan(entry)[opset]:
        samples = _samples(entry, opset, dtype)
        if not samples:
            failures.append(f"{key} has no sample for {dtype} at opset {opset} ({spec_of(entry)})")
        modes = (False, True) if dynamic_runs(key, opset) else (False,)
        for sample in samples:
            for dynamic in modes:
                try:
                    outcome = run_sample(entry, sample, opset, dtype, dynamic=dynamic)
                except Exception as err:  # every sample runs; all failures are reported
                    mode = " with dynamic dims" if dynamic else ""
                    where = f"{sample.overload or key}({sample.args}) in {dtype}{mode}"
                    failures.append(
                        _failure(err, f"{where} at opset {opset} ({spec_of(entry, sample)})")
                    )
                    continue
                outcomes.append(outcome)  # a lowering for dynamic sizes is reached by those
    failures += _uncovered(entry, opset, outcomes)
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


def _uncovered(entry: Entry, opset: int, outcomes: list) -> list[str]:
    """Plan segments beginning or ending at `opset` that no sample reached."""
    reached = {
        (o.expected.lowering.index, o.expected.compute)
        for o in outcomes
        if o.expected.lowering is not None
    }
    computes = _computes(entry)
    out = []
    for lowering in entry.lowerings:
        for compute, segments in lowering.dtypes.items():
            for lo, hi, run, reason in segments:
                if opset not in (lo, hi) or compute not in computes:
                    continue
                if run is None and reason is None:
                    continue  # a lowering tried before this one always takes this dtype
                if (lowering.index, compute) not in reached:
                    what = f"run in {run}" if run else f"refused ({plan_reason(entry, reason)})"
                    out.append(
                        f"no sample of {entry.key} reaches the lowering at "
                        f"{spec_of(entry, lowering)} in {compute} at opset {opset}, where its "
                        f"plan says {what}; add a sample that meets its condition "
                        f"({when_text(entry, lowering)})"
                    )
    return out


def test_the_quick_matrix_is_part_of_the_full_one() -> None:
    """`make test`'s matrix is part of the full one, with the dtypes the full matrix tests at
    each opset it keeps, and still reaches every lowering and the newest opset."""
    for entry in entries().values():
        full, quick = plan(entry, "full"), plan(entry, "quick")
        assert set(quick) <= set(full), entry.key
        assert all(quick[o] == full[o] for o in quick), entry.key
        assert entry.opsets[1] in quick, entry.key
        for lw in entry.lowerings:
            assert any(lw.since <= o <= lw.until for o in quick), (entry.key, lw.since)
