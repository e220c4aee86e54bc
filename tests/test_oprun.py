"""The op-test machinery (oprun.py) fails where a spec or the exporter is wrong: each test here
breaks one thing and checks the sample run says so."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_ops import _uncovered

from torchonnx import dispatch
from torchonnx.catalog import Sample
from torchonnx.dispatch import Gap

import oprun
from oprun import SampleFailure, _compare, entries, run_sample


def entry_with(key: str, **changes: object) -> dispatch.Entry:
    return dataclasses.replace(entries()[key], **changes)


def sample(text: str) -> Sample:
    return Sample(text, "tests/test_oprun.py")


def test_a_sample_that_matches_eager_passes_static_and_dynamic() -> None:
    entry = entries()["aten::add.Tensor"]
    for dynamic in (False, True):
        outcome = run_sample(entry, sample("t(2, 3), t(3), alpha=2"), 13, "int32", dynamic=dynamic)
        assert outcome.refused is None and outcome.runner == "onnxruntime"


def test_a_wrong_shape_rule_fails_naming_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oprun, "shape_rule", lambda entry: "same(other)")
    entry = entries()["aten::add.Tensor"]
    with pytest.raises(
        SampleFailure, match=r"shape rule `same\(other\)` gives \(3,\) for output 0"
    ):
        run_sample(entry, sample("t(2, 3), t(3)"), 13, "float32")
    with pytest.raises(SampleFailure, match=r"\(specs/elementwise.yaml:\d+\)"):
        run_sample(entry, sample("t(2, 3), t(3)"), 13, "float32", dynamic=True)


def test_the_graphs_output_shape_is_checked_against_the_rule() -> None:
    # ONNX's Slice-10 shape inference keeps a sliced symbolic dim whole
    entry = entries()["aten::slice.Tensor"]
    with pytest.raises(SampleFailure, match=r"the graph \(d0_0, d0_1\) \(dim 1\)"):
        run_sample(entry, sample("t(4, 5), 1, 1, 4"), 10, "float32", dynamic=True)


def test_no_lowering_applies_is_never_an_expected_refusal() -> None:
    entry = entries()["aten::cat"]
    with pytest.raises(
        SampleFailure, match="the specs declare no refusal there: not supported at opset 7"
    ):
        run_sample(entry, sample("[t(2, 3), t(2, 2)], -1"), 7, "float32")


def test_static_sizes_needed_fail_a_dynamic_run_unless_a_gap_says_so() -> None:
    entry = entries()["aten::adaptive_avg_pool2d"]
    run_sample(entry, sample("t(1, 2, 6, 4), [3, 2]"), 13, "float32")
    refused = run_sample(entry, sample("t(1, 2, 6, 4), [3, 2]"), 13, "float32", dynamic=True)
    assert refused.refused is not None  # the declared gap of a computed window
    with pytest.raises(SampleFailure, match="needs it known while exporting"):
        undeclared = entry_with("aten::adaptive_avg_pool2d", gaps=())
        run_sample(undeclared, sample("t(1, 2, 6, 4), [3, 2]"), 13, "float32", dynamic=True)


def test_a_declared_refusal_passes_only_for_its_reason() -> None:
    entry = entries()["aten::elu"]
    outcome = run_sample(entry, sample("t(3, 4), 1.0, 1.0, 2.0"), 13, "float32")
    assert outcome.refused is not None
    assert outcome.refused.declared == "ONNX Elu has no input scale"
    # the dtype plan refuses integers before opset 9 for the reason of the gap that says so
    outcome = run_sample(entries()["aten::mm"], sample("t(2, 3), t(3, 4)"), 8, "int32")
    assert outcome.refused is not None
    assert outcome.refused.declared == "ONNX MatMul accepts integers from opset 9"


def test_a_refusal_the_specs_do_not_declare_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oprun, "dtype_gaps", lambda entry: [])  # as if mm declared no gap
    with pytest.raises(
        SampleFailure, match=r"refuses int32 at opset 8 .*but the specs declare None"
    ):
        run_sample(entries()["aten::mm"], sample("t(2, 3), t(3, 4)"), 8, "int32")


def test_a_refusal_for_another_reason_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    # the exporter refuses elu's scale for the gap's reason; the specs now say another one
    monkeypatch.setattr(oprun, "gap_reason", lambda entry, gap: "another reason")
    with pytest.raises(SampleFailure, match="the refusal the specs declare there is 'another"):
        run_sample(entries()["aten::elu"], sample("t(3, 4), 1.0, 1.0, 2.0"), 13, "float32")


def test_a_called_entrys_refusals_count_only_as_declared_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """sort.stable calls aten::sort: sort's int64 gap is planned into sort.stable's dtype plan,
    and sort's gap on a dynamic size refuses while the body runs. Both pass as declared by the
    entry called; with the call forgotten, neither does."""
    entry = entries()["aten::sort.stable"]
    planned = run_sample(entry, sample("t(6), stable=True"), 8, "int64")
    assert planned.refused is not None and "int64" in planned.refused.reason
    met = run_sample(entry, sample("t(6), stable=True"), 9, "float32", dynamic=True)
    assert met.refused is not None and met.refused.entry == "aten::sort"
    monkeypatch.setattr(oprun, "called_entries", lambda entry, lowering: set())
    with pytest.raises(SampleFailure, match=r"refuses int64 at opset 8 .*but the specs declare"):
        run_sample(entry, sample("t(6), stable=True"), 8, "int64")
    with pytest.raises(SampleFailure, match="was refused, and the specs declare no refusal"):
        run_sample(entry, sample("t(6), stable=True"), 9, "float32", dynamic=True)


def test_a_declared_refusal_that_does_not_happen_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "_gap_applies", lambda *args: False)  # dispatch ignores gaps
    with pytest.raises(SampleFailure, match="exported, but the specs declare it refused: ONNX Elu"):
        run_sample(entries()["aten::elu"], sample("t(3, 4), 1.0, 1.0, 2.0"), 13, "float32")


def test_a_runtime_gap_that_runs_fails() -> None:
    # relu's first runtime gap, moved to a dtype onnxruntime runs
    gap = Gap(entries()["aten::relu"].gaps[0].index, dtypes=("float32",), runtime="onnxruntime")
    entry = entry_with("aten::relu", gaps=(gap,))
    with pytest.raises(SampleFailure, match=r"runs on onnxruntime, but a gap says .* remove the"):
        run_sample(entry, sample("t(3, 4)"), 14, "float32")


def test_an_undeclared_runtime_failure_fails() -> None:
    entry = entry_with("aten::leaky_relu", gaps=())
    with pytest.raises(
        SampleFailure, match=r"onnxruntime fails, and no runtime gap .*NotImplemented"
    ):
        run_sample(entry, sample("t(3, 4)"), 7, "float64")
    outcome = run_sample(entries()["aten::leaky_relu"], sample("t(3, 4)"), 7, "float64")
    assert outcome.runner == "onnx.reference"


def test_indices_are_compared_by_what_they_select() -> None:
    entry = entries()["aten::max.dim"]
    schema = entry.overloads["aten::max.dim"]
    x = torch.tensor([[1.0, 3.0, 3.0], [5.0, 4.0, 5.0]])
    values, indices = torch.ops.aten.max.dim(x, 1)
    outcome = run_sample(entry, sample("t(3, 4), 1"), 18, "float32")
    tie = torch.tensor([2, 2])  # the other maximum of each row
    _compare(entry, schema, (x, 1), {}, [values, indices], [values, tie], "here", outcome)
    with pytest.raises(SampleFailure, match="output 1 selects other elements than eager's"):
        wrong = torch.tensor([0, 1])
        _compare(entry, schema, (x, 1), {}, [values, indices], [values, wrong], "here", outcome)
    with pytest.raises(SampleFailure, match="output 1 holds invalid indices"):
        _compare(entry, schema, (x, 1), {}, [values, indices], [values, indices + 7], "", outcome)


def test_every_plan_segment_needs_a_sample() -> None:
    entry = entries()["aten::div.Tensor_mode"]
    messages = _uncovered(entry, 16, [])
    assert any(
        "in bfloat16 at opset 16, where its plan says run in bfloat16" in m for m in messages
    )
