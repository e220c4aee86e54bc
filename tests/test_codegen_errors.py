"""Every kind of spec error: a bad spec goes in, the file, line, column and message come out."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from torchonnx.codegen.main import load_specs, main

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
aten::relu:
  dtypes: floating
  shape: same(self)
  lower:
    - since: 7
      emit: Relu(self)
"""


def errors_of(
    tmp_path: Path, spec: str, common: str | None = None
) -> list[tuple[str, int, int, str]]:
    if common is None:
        shutil.copy(ROOT / "specs" / "common.yaml", tmp_path / "common.yaml")
    else:
        (tmp_path / "common.yaml").write_text(textwrap.dedent(common), encoding="utf-8")
    (tmp_path / "ops.yaml").write_text(textwrap.dedent(spec), encoding="utf-8")
    specs, errors = load_specs(tmp_path)
    assert (specs is None) == bool(errors)
    return [(Path(e.loc.file).name, e.loc.line, e.loc.col, e.message) for e in errors]


def one_error(tmp_path: Path, spec: str, common: str | None = None) -> tuple[str, int, int, str]:
    errors = errors_of(tmp_path, spec, common)
    assert len(errors) == 1, errors
    return errors[0]


def test_good_spec_has_no_errors(tmp_path: Path) -> None:
    assert errors_of(tmp_path, GOOD) == []


SIGMOID = GOOD.replace("aten::relu:", "aten::sigmoid:").replace("Relu(self)", "Sigmoid(self)")

# (name, spec, line, col, message fragment); col None: not checked
CASES = [
    ("yaml syntax", "aten::relu:\n  dtypes: [floating\n", 3, None, "expected ',' or ']'"),
    (
        "unknown key",
        GOOD + "  sampels: []\n",
        7,
        3,
        "unknown key `sampels` in entry aten::relu; did you mean `samples`?",
    ),
    (
        "missing key",
        "aten::relu:\n  dtypes: floating\n  shape: same(self)\n",
        1,
        1,
        "entry aten::relu needs `lower`",
    ),
    (
        "not a mapping",
        "- aten::relu\n",
        1,
        1,
        "a spec file is a mapping of ATen overloads to entries",
    ),
    (
        "lower not a list",
        "aten::relu:\n  dtypes: floating\n  shape: same(self)\n  lower: Relu(self)\n",
        4,
        10,
        "`lower` is a list of lowerings",
    ),
    (
        "block missing emit",
        "aten::relu:\n  dtypes: floating\n  shape: same(self)\n  lower:\n    - since: 7\n",
        5,
        7,
        "a lowering needs `emit`",
    ),
    (
        "unknown block key",
        GOOD.replace("      emit:", "      emits:"),
        6,
        7,
        "unknown key `emits` in a lowering; did you mean `emit`?",
    ),
    (
        "since not a number",
        GOOD.replace("since: 7", "since: seven"),
        5,
        14,
        "`since` is an opset number",
    ),
    (
        "since out of range",
        GOOD.replace("since: 7", "since: 5"),
        5,
        14,
        "opset 5 is outside the opsets torchonnx targets (7..28",
    ),
    (
        "folded emit",
        GOOD.replace("emit: Relu(self)", "emit: >\n        Relu(self)"),
        6,
        13,
        "literal block (`|`), not a folded one",
    ),
    (
        "unknown dtype",
        GOOD.replace("dtypes: floating", "dtypes: [floatt]"),
        2,
        12,
        "unknown dtype or dtype set `floatt`; did you mean",
    ),
    ("widen to a non-dtype", GOOD + "  widen: {float16: wide}\n", 7, 20, "`wide` is not a dtype"),
    (
        "widen a dtype not declared",
        GOOD + "  widen: {int8: int32}\n",
        7,
        11,
        "names int8, which is not in this entry's dtypes",
    ),
    (
        "gap without scope",
        GOOD + "  gaps:\n    - reason: because\n",
        8,
        7,
        "a gap says what is missing",
    ),
    (
        "gap runtime",
        GOOD + "  gaps:\n    - runtime: tvm\n      reason: no\n",
        8,
        16,
        "`runtime` names a runtime the tests run",
    ),
    (
        "bad opsets",
        GOOD + "  gaps:\n    - opsets: seven\n      reason: no\n",
        8,
        15,
        "`opsets` is an opset or a range like 7..12",
    ),
    (
        "promote form",
        GOOD + "  promote: default self\n",
        7,
        12,
        "`promote` is written `rule(arg, ...)`",
    ),
    (
        "unknown overload",
        GOOD.replace("aten::relu:", "aten::relu.Foo:"),
        1,
        1,
        "has no overload aten::relu.Foo",
    ),
    (
        "unknown op",
        GOOD.replace("aten::relu:", "aten::reloo:"),
        1,
        1,
        "has no operator aten::reloo",
    ),
    (
        "also with other arguments",
        GOOD + "  also: [aten::sigmoid_, aten::add.Tensor]\n",
        7,
        26,
        "aten::add.Tensor takes (self, other, alpha) but aten::relu takes (self)",
    ),
    (
        "unknown promotion",
        GOOD + "  promote: widest(self)\n",
        7,
        12,
        "unknown promotion kind `widest`",
    ),
    (
        "promote non-argument",
        GOOD + "  promote: default(self, other)\n",
        7,
        12,
        "`other` is not a tensor or number argument of aten::relu",
    ),
    (
        "input_dtypes of a non-tensor",
        GOOD.replace("aten::relu:", "aten::leaky_relu:")
        + "  input_dtypes: {negative_slope: [float32]}\n",
        2,
        11,
        "input_dtypes names `negative_slope`, which is not a tensor argument",
    ),
    (
        "unknown shape rule",
        GOOD.replace("same(self)", "identical(self)"),
        3,
        10,
        "unknown shape rule `identical`",
    ),
    (
        "shape rule arity",
        GOOD.replace("same(self)", "same(self, self)"),
        3,
        10,
        "shape rule same takes 1 arguments, not 2",
    ),
    (
        "shape rule argument",
        GOOD.replace("same(self)", "same(x)"),
        3,
        10,
        "`x` is not an argument of aten::relu",
    ),
    (
        "unknown index rule",
        GOOD.replace("aten::relu:", "aten::argmax:") + "  indices: beside(self, dim)\n",
        7,
        12,
        "unknown index rule `beside`; use one of along, window",
    ),
    (
        "index rule arity",
        GOOD.replace("aten::relu:", "aten::argmax:") + "  indices: along(self)\n",
        7,
        12,
        "index rule along takes 2 arguments, not 1",
    ),
    (
        "index rule argument",
        GOOD.replace("aten::relu:", "aten::argmax:") + "  indices: along(self, axis)\n",
        7,
        12,
        "`axis` is not an argument of aten::argmax",
    ),
    (
        "indices without an index rule",
        GOOD.replace("aten::relu:", "aten::max.dim:"),
        1,
        1,
        "aten::max.dim returns indices: say how they point into an input",
    ),
    (
        "sample syntax",
        GOOD + "  samples:\n    - t(2, 3\n",
        8,
        7,
        "a sample is a Python argument list",
    ),
    ("sample name", GOOD + "  samples:\n    - x(2, 3)\n", 8, 7, "unknown name `x` in a sample"),
    (
        "sample arity",
        GOOD + "  samples:\n    - t(2), t(3)\n",
        8,
        7,
        "aten::relu takes 1 positional arguments, the sample gives 2",
    ),
    (
        "sample keyword",
        GOOD + "  samples:\n    - t(2), alpha=1\n",
        8,
        7,
        "aten::relu has no argument `alpha`",
    ),
    (
        "sample overload",
        GOOD + "  samples:\n    - args: t(2)\n      overload: aten::relu_\n",
        8,
        13,
        "`overload` aten::relu_ is not one of this entry's overloads",
    ),
    (
        "shadowed lowering",
        GOOD + "    - since: 7\n      emit: Relu(self)\n",
        7,
        7,
        "never used: the lowering at",
    ),
    (
        "dtype not accepted",
        GOOD.replace("dtypes: floating", "dtypes: [float32, int32]"),
        5,
        7,
        "aten::relu at opset 7..13: ONNX Relu does not accept int32 (input X, line 6)",
    ),
    (
        "widening fails too",
        GOOD.replace("dtypes: floating", "dtypes: [float32, int32]") + "  widen: {int32: int64}\n",
        5,
        7,
        "and widening to int64 fails too",
    ),
    (
        "covered twice",
        GOOD
        + GOOD.replace("aten::relu:", "aten::sigmoid:\n  also: [aten::relu]").replace(
            "Relu(", "Sigmoid("
        ),
        8,
        10,
        "aten::relu is already covered by the entry at",
    ),
    # bodies
    ("body syntax", GOOD.replace("Relu(self)", "Relu(self"), 6, 17, "not valid Python"),
    (
        "body unknown name",
        GOOD.replace("Relu(self)", "Relu(x)"),
        6,
        18,
        "unknown name `x`: not an argument of aten::relu (self)",
    ),
    (
        "unknown ONNX op",
        GOOD.replace("Relu(self)", "Rectify(self)"),
        6,
        13,
        "ONNX has no operator Rectify at opsets 7..28",
    ),
    (
        "op missing at some opsets",
        GOOD.replace("Relu(self)", "Gelu(self)"),
        6,
        13,
        "ONNX Gelu does not exist at opset 7..19, but this lowering covers opsets 7..28; start it at opset 20",
    ),
    (
        "input count",
        GOOD.replace("Relu(self)", "Relu(self, self)"),
        6,
        13,
        "ONNX Relu-6 takes 1 inputs, not 2",
    ),
    (
        "unknown attribute",
        GOOD.replace("Relu(self)", "Relu(self, alpha=0.1)"),
        6,
        24,
        "ONNX Relu-6 has no attribute or input alpha (attributes: none; inputs: X)",
    ),
    (
        "missing attribute",
        GOOD.replace("Relu(self)", "Cast(self)"),
        6,
        13,
        "ONNX Cast-6 requires attribute to",
    ),
    (
        "attribute type",
        GOOD.replace("Relu(self)", 'LeakyRelu(self, alpha="big")'),
        6,
        35,
        "attribute alpha of ONNX LeakyRelu-6 is FLOAT; this is a Python str",
    ),
    (
        "constant dtype",
        GOOD.replace("Relu(self)", "Relu(2)"),
        6,
        18,
        "cannot tell which dtype the constant for input 0 of Relu should have",
    ),
    (
        "tensor arithmetic",
        GOOD.replace("Relu(self)", "Relu(self + self)"),
        6,
        18,
        "an arithmetic operand must be a Python value known while exporting, not a tensor",
    ),
    (
        "tensor condition",
        GOOD.replace(
            "emit: Relu(self)",
            "emit: |\n        if self:\n            return Relu(self)\n        return self",
        ),
        7,
        12,
        "an `if` condition must be a Python value",
    ),
    (
        "return count",
        GOOD.replace("Relu(self)", "Relu(self), Relu(self)"),
        6,
        13,
        "aten::relu returns a tensor; this is a list of tensors",
    ),
    (
        "reassigned tensor argument",
        GOOD.replace("emit: Relu(self)", "emit: |\n        self = Relu(self)\n        return self"),
        7,
        9,
        "`self` is a tensor argument of the op; give the new value another name",
    ),
    (
        "unreachable statement",
        GOOD.replace("emit: Relu(self)", "emit: |\n        return Relu(self)\n        x = 1"),
        8,
        9,
        "statement after `return` is never reached",
    ),
    (
        "for loop",
        GOOD.replace(
            "emit: Relu(self)",
            "emit: |\n        for i in range(2):\n            pass\n        return Relu(self)",
        ),
        7,
        9,
        "`For` statements are not part of the lowering language",
    ),
    (
        "rank of a computed value",
        GOOD.replace(
            "emit: Relu(self)",
            "emit: |\n        y = Relu(self)\n        return Reshape(y, [rank(y)])",
        ),
        8,
        33,
        "rank() reads what the exporter knows of an input of the op",
    ),
    (
        "optional input may be None",
        GOOD.replace("aten::relu:", "aten::linear:")
        .replace("same(self)", "linear(input, weight)")
        .replace("Relu(self)", "Gemm(input, weight, bias)"),
        6,
        33,
        "input 2 (C) of ONNX Gemm-7 is required at opset 7, but this may be None",
    ),
    (
        "when with an ONNX op",
        GOOD.replace("      emit: Relu(self)", "      when: Shape(self)\n      emit: Relu(self)"),
        6,
        13,
        "a `when` condition is decided while exporting; it cannot use ONNX ops",
    ),
    (
        "unknown function",
        GOOD.replace("Relu(self)", "relu(self)"),
        6,
        13,
        "unknown function `relu`: ONNX ops are capitalised",
    ),
    # calls of other lowerings
    (
        "call of an op without a spec",
        GOOD.replace("Relu(self)", "aten.cumsum(self, 0)"),
        6,
        13,
        "aten::cumsum has no spec; a body can call the ATen overloads specs lower",
    ),
    (
        "call with an unknown argument",
        GOOD + SIGMOID.replace("Sigmoid(self)", "aten.relu(self, alpha=1)"),
        12,
        29,
        "aten::relu has no argument `alpha`",
    ),
    (
        "call missing an argument",
        GOOD + SIGMOID.replace("Sigmoid(self)", "aten.relu()"),
        12,
        13,
        "aten::relu needs argument `self`",
    ),
    (
        "callee not at every opset",
        GOOD.replace("since: 7", "since: 13") + SIGMOID.replace("Sigmoid(self)", "aten.relu(self)"),
        12,
        13,
        "aten::relu has no lowering at opset 7..12, which this lowering covers (7..28)",
    ),
    (
        "callee without the dtype",
        GOOD.replace("dtypes: floating", "dtypes: [float32]")
        + SIGMOID.replace("Sigmoid(self)", "aten.relu(self)"),
        12,
        13,
        "aten::relu does not lower float16 at opset 7..28, which this call gives it for "
        "float16: add float16 to its dtypes, or declare a gap for float16",
    ),
    (
        "calls in a cycle",
        GOOD.replace("Relu(self)", "aten.sigmoid(self)")
        + SIGMOID.replace("Sigmoid(self)", "aten.relu(self)"),
        1,
        1,
        "lowerings call each other in a cycle: aten::relu -> aten::sigmoid -> aten::relu",
    ),
    (
        "widened result of unknown dtype",
        """\
aten::leaky_relu:
  dtypes: [float32, int32]
  shape: same(self)
  widen: {int32: float64}
  lower:
    - since: 7
      emit: |
        if is_static(negative_slope) and negative_slope == 1:
            return Cast(self, to="float32")
        return LeakyRelu(self)
""",
        6,
        7,
        "int32 would be computed in float64 here, but codegen cannot tell the dtype",
    ),
    # -- values the graph may compute (SymInt, Scalar) ------------------------------------
    (
        "computed value to an attribute",
        """\
aten::leaky_relu:
  dtypes: [float32]
  shape: same(self)
  lower:
    - since: 7
      emit: LeakyRelu(self, alpha=negative_slope)
""",
        6,
        35,
        "attribute alpha of LeakyRelu must be known while exporting, but `negative_slope` may be "
        "a value the graph computes (a SymInt or a Scalar from the model): test "
        "`is_static(negative_slope)` first",
    ),
    (
        "arithmetic on a SymInt list element",
        """\
aten::view:
  dtypes: [float32]
  shape: view(self, size)
  lower:
    - since: 7
      emit: Reshape(self, [s * 2 for s in size])
""",
        6,
        28,
        "an arithmetic operand must be known while exporting, but `s` may be a value the graph computes",
    ),
    (
        "sizes compared without is_static",
        """\
aten::squeeze.dim:
  dtypes: [float32]
  shape: squeeze(self, dim)
  lower:
    - since: 7
      emit: Identity(self) if sizes(self)[dim] != 1 else Squeeze(self, axes=[dim])
""",
        6,
        31,
        "an operand of a comparison must be known while exporting, but `sizes(self)[dim]` may be "
        "a value the graph computes (a SymInt or a Scalar from the model): test "
        "`is_static(sizes(self)[dim])` first",
    ),
    (
        "computed value where an argument is an attribute at some opsets",
        """\
aten::unsqueeze:
  dtypes: [float32]
  shape: unsqueeze(self, dim)
  lower:
    - since: 7
      emit: Unsqueeze(self, axes=[size(self, 0)])
""",
        6,
        34,
        "attribute axes of Unsqueeze must be known while exporting",
    ),
    (
        "input given by position and by name",
        """\
aten::unsqueeze:
  dtypes: [float32]
  shape: unsqueeze(self, dim)
  lower:
    - since: 13
      emit: Unsqueeze(self, [dim], axes=[dim])
""",
        6,
        36,
        "input 1 of Unsqueeze is given twice: here and by position",
    ),
    (
        "until without when",
        GOOD.replace("    - since: 7\n", "    - since: 7\n      until: 12\n"),
        6,
        7,
        "only a `when` lowering takes `until`",
    ),
    (
        "until before since",
        GOOD.replace("    - since: 7\n", "    - since: 9\n      until: 8\n      when: True\n"),
        6,
        14,
        "`until` is the last opset of the lowering, 9 or later, not int 8",
    ),
    (
        "compute_in names no ScalarType",
        GOOD.replace("  shape:", "  compute_in: self\n  shape:"),
        3,
        15,
        "compute_in names `self`, which is not a ScalarType argument of aten::relu",
    ),
    (
        "Python callable without a schema",
        """\
operator.add:
  dtypes: [int64]
  shape: infer
  lower:
    - since: 7
      emit: Add(a, b)
""",
        1,
        1,
        "operator.add is a Python callable, which has no ATen schema: declare one",
    ),
    (
        "not a dtype name",
        GOOD.replace("Relu(self)", 'Relu(self) if dtype_of(self) != "float65" else Neg(self)'),
        6,
        45,
        "'float65' is not a dtype name",
    ),
    (
        "helper on an element that may be None",
        """\
aten::index.Tensor:
  dtypes: [float32]
  shape: infer
  lower:
    - since: 11
      emit: Gather(self, [t for t in indices if t is not None][0], axis=rank(indices[0]) - 1)
""",
        6,
        78,
        "rank() needs a tensor, and this may be None: test `is not None` first",
    ),
]


@pytest.mark.parametrize(
    ("spec", "line", "col", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_error(tmp_path: Path, spec: str, line: int, col: int | None, message: str) -> None:
    errors = errors_of(tmp_path, spec)
    matching = [e for e in errors if message in e[3]]
    assert len(matching) == 1, errors
    file, got_line, got_col, got = matching[0]
    assert file == "ops.yaml"
    assert got_line == line, got
    if col is not None:
        assert got_col == col, got


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        # the first key of the entry
        (
            GOOD + "  dtypes: all\n",
            (7, 3, "duplicate key `dtypes`; the first is at line 2, column 3"),
        ),
        # a later key: its own line, not the entry's first
        (
            GOOD + "  shape: same(self)\n",
            (7, 3, "duplicate key `shape`; the first is at line 3, column 3"),
        ),
        # a repeated entry: named, not dumped with its values
        (
            GOOD + SIGMOID + GOOD,
            (13, 1, "duplicate key `aten::relu`; the first is at line 1, column 1"),
        ),
        # in a nested mapping, flow style
        (
            GOOD.replace(
                "    - since: 7\n      emit: Relu(self)\n",
                "    - {since: 7, since: 9, emit: Relu(self)}\n",
            ),
            (5, 18, "duplicate key `since`; the first is at line 5, column 8"),
        ),
    ],
    ids=["first key", "later key", "entry", "flow mapping"],
)
def test_duplicate_key(tmp_path: Path, spec: str, error: tuple[int, int, str]) -> None:
    assert errors_of(tmp_path, spec) == [("ops.yaml", *error)]


def test_common_errors(tmp_path: Path) -> None:
    errors = errors_of(
        tmp_path,
        GOOD,
        common="""\
        opsets: {oldest: 7}
        dtypes:
          floating: [float16, float32]
          float32: [float32]
        limits: []
        """,
    )
    assert ("common.yaml", 1, 9, "`opsets` needs `newest`") in errors
    assert ("common.yaml", 4, 3, "`float32` is a dtype; a set needs another name") in errors


def test_missing_common(tmp_path: Path) -> None:
    (tmp_path / "ops.yaml").write_text(GOOD, encoding="utf-8")
    _, errors = load_specs(tmp_path)
    assert len(errors) == 1 and "common.yaml is missing" in errors[0].message


def test_all_errors_reported_at_once(tmp_path: Path) -> None:
    spec = GOOD.replace("Relu(self)", "Rectify(self)") + GOOD.replace(
        "aten::relu:", "aten::sigmoid:"
    ).replace("same(self)", "same(x)")
    errors = errors_of(tmp_path, spec)
    assert [(line, message.split(":")[0]) for _, line, _, message in errors] == [
        (6, "ONNX has no operator Rectify at opsets 7..28"),
        (9, "`x` is not an argument of aten"),
    ]


def test_cli_writes_nothing_on_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs, out = tmp_path / "specs", tmp_path / "out"
    specs.mkdir()
    shutil.copy(ROOT / "specs" / "common.yaml", specs / "common.yaml")
    (specs / "ops.yaml").write_text(GOOD.replace("Relu(self)", "Rectify(self)"), encoding="utf-8")
    assert main(["--specs", str(specs), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "ops.yaml:6:13: ONNX has no operator Rectify" in err
    assert "1 error(s)" in err
    assert not out.exists()
