"""The op matrix, generated from the specs: every entry at the lowest and highest opset of each
of its lowerings and of each segment of their dtype plans, in every dtype it declares, on every
sample, against the overload called eagerly; static, and with dynamic dims (see DYNAMIC).

A test is one entry at one opset (all its dtypes and samples), which keeps pytest's items few
and of similar cost. Every sample must do what the specs say (oprun.run_sample), and at that
opset every dtype-plan segment that begins or ends there must be reached by some sample: run
where it runs, refused with its declared reason where it does not.
"""

from __future__ import annotations

import os
import traceback

import pytest

from torchonnx.dispatch import Entry, Sample
from torchonnx.dtypes import Operand, compute_dtype

from oprun import SampleFailure, entries, run_sample, samples_of, spec_of

# Entries some of whose samples fail with dynamic dims today, with what fails there (most read
# static sizes with `sizes()`, which issue 7 makes symbolic). They run with static dims only;
# TORCHONNX_OP_DYNAMIC=all runs every entry with dynamic dims too (=none: no entry).
STATIC_ONLY: dict[str, str] = {
    "aten::_native_batch_norm_legit_no_training": "sizes(running_mean)",
    "aten::adaptive_avg_pool2d": "sizes(self) for the windows",
    "aten::avg_pool2d": "sizes(self) for ceil_mode, divisors and unbatched inputs",
    "aten::conv2d": "sizes(input) for unbatched inputs",
    "aten::expand": "sizes(self) at opset 7 (Tile)",
    "aten::flatten.using_ints": "sizes(self)",
    "aten::max_pool2d": "sizes(self) for ceil_mode and unbatched inputs",
    "aten::max_pool2d_with_indices": "sizes(self)",
    "aten::maximum": "sizes(self) == sizes(other), the condition at opset 7",
    "aten::minimum": "sizes(self) == sizes(other), the condition at opset 7",
    "aten::scaled_dot_product_attention": "sizes(query) for the default scale and causal mask",
    "aten::select.int": "sizes(self) for a negative index before opset 11",
    "aten::slice.Tensor": (
        "sizes(self) for a step before opset 10; at opset 10 ONNX's Slice shape inference "
        "gives the sliced dim the input's symbolic size, so the graph's output shape is wrong"
    ),
    "aten::split.Tensor": "sizes(self)",
    "aten::squeeze.dim": "sizes(self)",
    "aten::squeeze.dims": "sizes(self)",
    "aten::unflatten.int": "sizes(self)",
}
DYNAMIC = os.environ.get("TORCHONNX_OP_DYNAMIC", "passing")


def dynamic_runs(key: str) -> bool:
    if DYNAMIC == "all":
        return True
    if DYNAMIC == "none":
        return False
    return key not in STATIC_ONLY


def _compute(entry: Entry, dtype: str) -> str:
    """The compute dtype of a tensor of `dtype` under the entry's promotion."""
    return compute_dtype(entry.promote, [Operand(dtype, 1)]) if entry.promote else dtype


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


def plan(entry: Entry) -> dict[int, list[str]]:
    """The opsets an entry is tested at, each with the dtypes tested there: all of them at
    the bounds of a lowering, those whose compute dtype has a plan segment bound there."""
    lowering_bounds = _bounds(entry)
    out: dict[int, list[str]] = {}
    for dtype in entry.dtypes:
        for opset in lowering_bounds | _bounds(entry, _compute(entry, dtype)):
            out.setdefault(opset, []).append(dtype)
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
        modes = (False, True) if dynamic_runs(key) else (False,)
        for sample in samples:
            for dynamic in modes:
                try:
                    outcome = run_sample(entry, sample, opset, dtype, dynamic=dynamic)
                except Exception as err:  # every sample runs; all failures are reported
                    mode = " with dynamic dims" if dynamic else ""
                    where = f"{sample.overload or key}({sample.args}) in {dtype}{mode}"
                    failures.append(_failure(err, f"{where} at opset {opset} ({spec_of(sample)})"))
                    continue
                if not dynamic:
                    outcomes.append(outcome)
    failures += _uncovered(entry, opset, outcomes)
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


def _uncovered(entry: Entry, opset: int, outcomes: list) -> list[str]:
    """Plan segments beginning or ending at `opset` that no sample reached."""
    reached = {
        (spec_of(o.expected.lowering), o.expected.compute)
        for o in outcomes
        if o.expected.lowering is not None
    }
    computes = {_compute(entry, d) for d in entry.dtypes}
    out = []
    for lowering in entry.lowerings:
        for compute, segments in lowering.dtypes.items():
            for lo, hi, run, reason in segments:
                if opset not in (lo, hi) or compute not in computes:
                    continue
                if run is None and reason is None:
                    continue  # a lowering tried before this one always takes this dtype
                if (spec_of(lowering), compute) not in reached:
                    what = f"run in {run}" if run else f"refused ({reason})"
                    out.append(
                        f"no sample of {entry.key} reaches the lowering at {spec_of(lowering)} in "
                        f"{compute} at opset {opset}, where its plan says {what}; add a sample "
                        f"that meets its condition ({lowering.when_text})"
                    )
    return out
