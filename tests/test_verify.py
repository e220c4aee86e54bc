"""verify.compare: outputs against PyTorch's, NaN- and infinity-aware, saying what differs."""

from __future__ import annotations

import math

import pytest
import torch

from torchonnx.errors import VerificationError
from torchonnx.verify import compare

NAN, INF = math.nan, math.inf


def check(expected: list[float], actual: list[float], dtype: torch.dtype = torch.float32):
    (result,) = compare([torch.tensor(expected, dtype=dtype)], [torch.tensor(actual, dtype=dtype)])
    return result


def test_equal_values_nan_and_infinities_pass() -> None:
    result = check([1.0, NAN, INF, -INF], [1.0, NAN, INF, -INF])
    assert result.ok and result.detail == "" and result.max_abs_diff == 0.0


def test_nan_against_infinity_fails_and_says_so() -> None:
    result = check([1.0, NAN], [1.0, -INF])
    assert not result.ok
    assert result.max_abs_diff == INF
    assert result.detail == "NaN differs at 1 position (first [1]: PyTorch nan, got -inf)"


def test_a_nan_where_pytorch_has_a_number_fails() -> None:
    result = check([1.0, 2.0, 3.0], [1.0, NAN, NAN])
    assert not result.ok
    assert result.detail.startswith("NaN differs at 2 positions (first [1]: PyTorch 2.0, got nan)")


def test_infinity_of_the_other_sign_fails() -> None:
    result = check([INF, 0.0], [-INF, 0.0])
    assert not result.ok
    assert result.detail == "infinity differs at 1 position (first [0]: PyTorch inf, got -inf)"


def test_infinity_against_a_number_fails() -> None:
    result = check([[0.0, 1.0]], [[0.0, INF]])
    assert not result.ok
    assert "infinity differs at 1 position (first [0, 1]: PyTorch 1.0, got inf)" in result.detail


def test_values_within_the_dtypes_tolerance_pass() -> None:
    assert check([1.0, 100.0], [1.000001, 100.001]).ok
    assert check([1.0], [1.001], torch.float16).ok


def test_values_beyond_tolerance_name_the_worst() -> None:
    result = check([1.0, 2.0, 3.0], [1.0, 2.5, 3.1])
    assert not result.ok
    assert result.max_abs_diff == pytest.approx(0.5)
    assert result.detail == (
        "2 values beyond rtol=0.0001, atol=1e-05 (max abs diff 0.5 at [1]: PyTorch 2.0, got 2.5)"
    )


def test_every_problem_is_listed() -> None:
    result = check([NAN, INF, 1.0], [0.0, -INF, 2.0])
    assert not result.ok
    assert [part.split(" ")[0] for part in result.detail.split("; ")] == ["NaN", "infinity", "1"]


def test_zero_dim_tensors() -> None:
    (result,) = compare([torch.tensor(NAN)], [torch.tensor(1.0)])
    assert (
        not result.ok
        and result.detail == "NaN differs at 1 position (first []: PyTorch nan, got 1.0)"
    )


def test_integers_and_bools_must_be_equal() -> None:
    (same,) = compare([torch.tensor([1, 2])], [torch.tensor([1, 2])])
    assert same.ok
    (other,) = compare([torch.tensor([1, 2, 3])], [torch.tensor([1, 5, 4])])
    assert not other.ok and other.max_abs_diff == 3
    assert other.detail == "2 values differ (first [1]: PyTorch 2, got 5; max abs diff 3)"
    (flags,) = compare([torch.tensor([True, False])], [torch.tensor([True, True])])
    assert not flags.ok and flags.detail.startswith("1 value differ")


def test_dtype_shape_and_count_must_match() -> None:
    with pytest.raises(VerificationError, match=r"PyTorch gives torch.float32 \(2,\)"):
        compare([torch.zeros(2)], [torch.zeros(3)])
    with pytest.raises(VerificationError, match="float64"):
        compare([torch.zeros(2)], [torch.zeros(2, dtype=torch.float64)])
    with pytest.raises(VerificationError, match="PyTorch gives 1 outputs, onnxruntime 2"):
        compare([torch.zeros(2)], [torch.zeros(2), torch.zeros(2)])
