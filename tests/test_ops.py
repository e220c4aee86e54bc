"""The op matrix, generated from the specs: every entry, at the lowest and highest opset of each
of its lowerings, in every dtype it declares, on every sample, against eager PyTorch.

At each (entry, opset, dtype) every lowering that begins or ends at that opset must be reached
by some sample, and a dtype the dtype plan does not support there must fail to export with
the declared reason.
"""

from __future__ import annotations

import pytest

from torchonnx import catalog
from torchonnx.dispatch import Entry
from torchonnx.generated.registry import ENTRIES

from oprun import run_sample


def _cases() -> list:
    cases = []
    for key, entry in sorted(ENTRIES.items()):
        opsets = sorted({o for lw in entry.lowerings for o in (lw.since, lw.until)})
        for opset in opsets:
            for dtype in entry.dtypes:
                cases.append(
                    pytest.param(
                        key,
                        opset,
                        dtype,
                        id=f"{key}-{opset}-{dtype}",
                        marks=pytest.mark.xdist_group(key),
                    )
                )
    return cases


def _samples(entry: Entry, opset: int, dtype: str) -> list:
    return [
        s
        for s in catalog.samples(entry.key)
        if (s.opsets is None or s.opsets[0] <= opset <= s.opsets[1])
        and (not s.dtypes or dtype in s.dtypes)
    ]


def _declared_reasons(entry: Entry) -> list[str]:
    """Why a call may be refused: dtype plans, gaps, limits, or no lowering at that opset."""
    info = catalog.entry(entry.key)
    reasons = [g.reason for g in info.gaps if not g.runtime]
    reasons += info.reasons  # of the dtype plans
    reasons += [limit.reason for limit in catalog.limits() if not limit.runtime]
    return [*reasons, "no lowering applies to these arguments", "not supported at opset"]


def _compute(entry: Entry, dtype: str) -> str:
    from torchonnx.dtypes import Operand, compute_dtype

    return compute_dtype(entry.promote, [Operand(dtype, 1)]) if entry.promote else dtype


@pytest.mark.parametrize(("key", "opset", "dtype"), _cases())
def test_op(key: str, opset: int, dtype: str) -> None:
    entry = ENTRIES[key]
    samples = _samples(entry, opset, dtype)
    where = catalog.spec_location(key)
    assert samples, f"{key} has no sample for {dtype} at opset {opset} ({where})"
    outcomes = [run_sample(entry, s, opset, dtype) for s in samples]
    reached = {spec for o in outcomes for _, spec in o.lowerings}
    refused = [o.unsupported for o in outcomes if o.unsupported]
    declared = _declared_reasons(entry)
    for outcome in outcomes:
        if outcome.unsupported:
            assert any(r in outcome.unsupported for r in declared), (
                f"{key}({outcome.sample.args}) in {dtype} at opset {opset} was refused for a reason "
                f"no spec declares: {outcome.unsupported}"
            )
    compute = _compute(entry, dtype)
    for lowering in entry.lowerings:
        if opset not in (lowering.since, lowering.until) or compute not in lowering.dtypes:
            continue  # not this opset, or the lowering's condition rules the dtype out
        run, why = lowering.run_dtype(compute, opset)
        if run is None and why is None:
            continue  # a lowering picked before this one always takes this dtype
        info = catalog.lowering(key, lowering.index)
        if run is not None:
            assert info.spec in reached, (
                f"no sample of {key} reaches the lowering at {info.spec} at opset {opset} in "
                f"{dtype}; add a sample that meets its condition ({info.when})"
            )
        else:
            reason = catalog.entry(key).reasons[why]
            assert any(
                reason in r for r in refused
            ), f"{key} in {dtype} at opset {opset} should be refused ({reason}), but was not"
