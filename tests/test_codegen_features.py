"""What codegen decides from a spec: opset ranges, dtype plans under branch tests, calls."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from torchonnx.codegen.analyze import Analyzed
from torchonnx.codegen.main import load_specs

ROOT = Path(__file__).resolve().parent.parent


def analyzed(tmp_path: Path, spec: str) -> dict[str, Analyzed]:
    shutil.copy(ROOT / "specs" / "common.yaml", tmp_path / "common.yaml")
    (tmp_path / "ops.yaml").write_text(textwrap.dedent(spec), encoding="utf-8")
    specs, errors = load_specs(tmp_path)
    assert not errors, [str(e) for e in errors]
    return {a.entry.key: a for a in specs.analyzed}


def test_ranges_follow_since_and_conditions(tmp_path: Path) -> None:
    a = analyzed(
        tmp_path,
        """\
        aten::gelu:
          dtypes: [float32]
          shape: same(self)
          lower:
            - since: 20
              emit: Gelu(self, approximate=approximate)
            - since: 9
              when: approximate == "none"
              emit: Mul(self, Sigmoid(self))
            - since: 13
              when: approximate == "none"
              emit: Mul(self, Sigmoid(self))
            - since: 7
              emit: Mul(self, Sigmoid(self))
        """,
    )["aten::gelu"]
    ranges = {(lw.since, lw.block.when is not None): lw.until for lw in a.lowerings}
    # an unconditional later block ends every earlier one; a later block with the same
    # condition ends the earlier one with it
    assert ranges == {(20, False): 28, (9, True): 12, (13, True): 19, (7, False): 19}


def test_branch_dtype_tests_guard_their_ops(tmp_path: Path) -> None:
    a = analyzed(
        tmp_path,
        """\
        aten::floor:
          dtypes: [float32, int32]
          shape: same(self)
          lower:
            - since: 7
              emit: |
                if is_floating(self):
                    return Floor(self)
                return Identity(self)
        """,
    )["aten::floor"]
    (lw,) = a.lowerings
    # Floor takes no int32, but int32 never reaches it
    assert [(s.lo, s.hi, s.compute) for s in lw.plan["int32"]] == [(7, 28, "int32")]


def test_a_condition_on_the_dtype_narrows_the_plan(tmp_path: Path) -> None:
    a = analyzed(
        tmp_path,
        """\
        aten::floor:
          dtypes: [float32, int32]
          shape: same(self)
          lower:
            - since: 7
              when: is_floating(self)
              emit: Floor(self)
            - since: 7
              emit: Identity(self)
        """,
    )["aten::floor"]
    floor, identity = a.lowerings
    assert set(floor.plan) == {"float32"}
    assert set(identity.plan) == {"float32", "int32"}


def test_widening_casts_back_per_branch(tmp_path: Path) -> None:
    a = analyzed(
        tmp_path,
        """\
        aten::abs:
          dtypes: [float32, int8]
          shape: same(self)
          widen: {int8: int32}
          lower:
            - since: 7
              emit: |
                if is_floating(self):
                    return Abs(self)
                return Add(Cast(self, to=dtype_of(self)), self)
        """,
    )["aten::abs"]
    (lw,) = a.lowerings
    # Add takes int8 from opset 14; only the integer branch runs Add
    assert [(s.lo, s.hi, s.compute) for s in lw.plan["int8"]] == [
        (7, 13, "int32"),
        (14, 28, "int8"),
    ]
    assert lw.cast_back == {"int8": (True,)}


def test_calls_are_recorded(tmp_path: Path) -> None:
    a = analyzed(
        tmp_path,
        """\
        aten::relu:
          dtypes: floating
          shape: same(self)
          lower:
            - since: 7
              emit: Relu(self)
        aten::hardtanh:
          dtypes: floating
          shape: same(self)
          lower:
            - since: 7
              emit: Neg(aten.relu(Neg(aten.relu(self))))
        """,
    )
    (lw,) = a["aten::hardtanh"].lowerings
    assert [c.overload for c in lw.calls] == ["aten::relu", "aten::relu"]
    assert "_h.aten(op, 'aten::relu', _h.typed(op.Neg(_h.aten(op, 'aten::relu', self))" in (
        lw.functions["aten::hardtanh"].onnxscript
    )


def test_a_caller_refuses_what_its_callee_refuses(tmp_path: Path) -> None:
    """A dtype the called entry refuses at some opsets is refused by the caller there, with the
    callee's reason; a branch that dtype never takes does not count."""
    a = analyzed(
        tmp_path,
        """\
        aten::relu:
          dtypes: floating
          shape: same(self)
          lower:
            - since: 7
              emit: Relu(self)
          gaps:
            - dtypes: [float64]
              opsets: ..12
              reason: not before 13
        aten::hardtanh:
          dtypes: floating
          shape: same(self)
          lower:
            - since: 7
              emit: aten.relu(self)
        aten::gelu:
          dtypes: floating
          shape: same(self)
          lower:
            - since: 7
              emit: |
                if dtype_of(self) == "float64":
                    return Neg(self)
                return aten.relu(self)
        """,
    )
    (lw,) = a["aten::hardtanh"].lowerings
    assert [(s.lo, s.hi, s.compute, s.reason) for s in lw.plan["float64"]] == [
        (7, 12, None, "not before 13"),
        (13, 28, "float64", None),
    ]
    assert [(s.lo, s.hi, s.compute) for s in lw.plan["float32"]] == [(7, 28, "float32")]
    (lw,) = a["aten::gelu"].lowerings
    assert [(s.lo, s.hi, s.compute) for s in lw.plan["float64"]] == [(7, 28, "float64")]


def test_attribute_that_became_an_input_is_written_once(tmp_path: Path) -> None:
    a = analyzed(
        tmp_path,
        """\
        aten::unsqueeze:
          dtypes: [float32]
          shape: unsqueeze(self, dim)
          lower:
            - since: 7
              emit: Unsqueeze(self, axes=[dim % (rank(self) + 1)])
        """,
    )["aten::unsqueeze"]
    pieces = {
        (lw.since, lw.until): lw.functions["aten::unsqueeze"].onnxscript for lw in a.lowerings
    }
    assert set(pieces) == {(7, 12), (13, 28)}
    assert "axes=[" in pieces[7, 12]  # an attribute up to opset 12
    assert "axes=" not in pieces[13, 28] and "_h.const(op, [" in pieces[13, 28]  # then an input
    assert all(lw.block is a.lowerings[0].block for lw in a.lowerings)  # one block of the spec


def test_until_bounds_a_conditional_lowering(tmp_path: Path) -> None:
    a = analyzed(
        tmp_path,
        """\
        aten::relu:
          dtypes: [float32]
          shape: same(self)
          lower:
            - since: 14
              emit: Relu(self)
            - since: 7
              until: 9
              when: rank(self) > 0
              emit: Relu(self)
            - since: 7
              emit: Relu(self)
        """,
    )["aten::relu"]
    assert sorted((lw.since, lw.until, lw.block.when is not None) for lw in a.lowerings) == [
        (7, 9, True),
        (7, 13, False),
        (14, 28, False),
    ]


def test_is_static_narrows_names_expressions_and_gap_conditions(tmp_path: Path) -> None:
    # each use below needs a static value; the tests before it are what make it static
    analyzed(
        tmp_path,
        """\
        aten::view:
          dtypes: [float32]
          shape: view(self, size)
          lower:
            - since: 7
              when: is_static(size)
              emit: |
                n = size(self, 0)
                if is_static(n) and n > 2:
                    return Reshape(self, [s * 2 // 2 for s in size])
                return Reshape(self, [-1 if is_static(s) and s == 0 else s for s in size])
        aten::leaky_relu:
          dtypes: [float32]
          shape: same(self)
          lower:
            - since: 7
              emit: LeakyRelu(self, alpha=float(negative_slope))
          gaps:
            - when: not is_static(negative_slope)
              reason: an attribute
        """,
    )


def test_dropped_entries_have_no_lowering(tmp_path: Path) -> None:
    a = analyzed(
        tmp_path,
        """\
        aten::_assert_async:
          also: [aten::_assert_async.msg]
          drop: a run-time check
        """,
    )["aten::_assert_async"]
    assert a.drop == "a run-time check" and a.lowerings == ()
    assert set(a.schemas) == {"aten::_assert_async", "aten::_assert_async.msg"}


def test_zero_d_tensors_computed_here_stand_for_sizes(tmp_path: Path) -> None:
    """A 0-d tensor a body computes may go where a size does: in a list given as one input,
    and as a SymInt or Scalar argument of another spec's overload."""
    a = analyzed(
        tmp_path,
        """\
        aten::view:
          dtypes: [float32]
          shape: view(self, size)
          lower:
            - since: 7
              emit: Reshape(self, [Size(self)])
        aten::arange:
          dtypes: [int64]
          shape: infer
          lower:
            - since: 11
              emit: Range(const(0, "int64"), const(end, "int64"), const(1, "int64"))
        aten::zeros_like:
          dtypes: [float32]
          shape: same(self)
          lower:
            - since: 11
              emit: Cast(aten.arange(Size(self)), to="float32")
        """,
    )
    (body,) = {lw.functions["aten::view"].onnxscript for lw in a["aten::view"].lowerings}
    assert "_h.const(op, [op.Size(self)], 'int64')" in body
    assert a["aten::zeros_like"].lowerings[0].calls[0].overload == "aten::arange"
