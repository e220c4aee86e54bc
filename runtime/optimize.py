"""Graph clean-up and optimization, the same for both export paths.

onnxscript's constant folding and rewrite rules and onnx_ir's passes, through their public
API. An optimization never fails an export: a step that raises, or that leaves a node which
is not valid at the model's opset, is undone (the graph is kept as it was before the step),
named in one OptimizationWarning, and the rest of the optimizer goes on.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import onnx
import onnx_ir as ir
import onnx_ir.passes.common as passes
from onnxscript import optimizer as onnxscript_optimizer
from onnxscript.rewriter import RewritePass, RewriteRule
from onnxscript.rewriter.rules import common as rules

from torchonnx.errors import OptimizationWarning

# Constant folding only folds nodes whose inputs and outputs hold at most this many elements.
FOLD_INPUT_LIMIT = 8192
FOLD_OUTPUT_LIMIT = 262144
# Rounds of folding and rewriting; a round that changes nothing ends them early.
ROUNDS = 2


@dataclass(frozen=True)
class Rule:
    """An onnxscript rewrite rule and the lowest opset at which what it writes is valid ONNX.

    onnxscript's rules carry no opset requirement of their own: each `since` here is read from
    what the rule's replacement emits (and from what its check assumes of the matched nodes).
    """

    name: str  # its name in onnxscript.rewriter.rules.common
    rules: tuple[RewriteRule, ...]
    since: int = 1
    why: str = ""


def _rule(name: str, since: int = 1, why: str = "", *, commute: bool = False) -> Rule:
    rule: RewriteRule = getattr(rules, name)
    return Rule(name, tuple(rule.commute()) if commute else (rule,), since, why)


_CLIP_INPUTS = "it writes Clip with min and max as inputs, new in 11"
_CLIP_TYPES = (
    "it writes Clip with min and max inputs, which takes all of Min's and Max's types from 13"
)
_SLICE_INPUTS = "its check reads starts and ends as inputs of Slice, new in 10"
_PAD_INPUTS = "its check reads pads as an input of Pad, new in 11"
# onnxscript's default rules, in its order. onnxscript 0.7.2 has no public list of them (only
# the private rewriter._DEFAULT_REWRITE_RULES) and no opset requirement per rule, so the list
# is spelled out here from the rules' public names in onnxscript.rewriter.rules.common.
RULES: tuple[Rule, ...] = (
    _rule("mul_by_1_rule", commute=True),
    _rule("add_0_rule", commute=True),
    _rule("sub_0_rule"),
    _rule("div_by_1_rule"),
    _rule("dropout_zero_rule"),
    _rule("dropout_inference_rule"),
    _rule("two_reshapes_matmul_reshape_rule"),
    _rule("one_reshape_matmul_reshape_rule"),
    _rule("cast_constant_of_shape_rule"),
    _rule("cast_constant_of_shape_without_value_rule"),
    _rule("collapse_slice_rule", 10, _SLICE_INPUTS),
    _rule("collapse_slice2_rule", 10, _SLICE_INPUTS),
    _rule("materialize_reshape_shape_rule", 14, "it writes Reshape(allowzero=1), new in 14"),
    _rule("min_min_rule"),
    _rule("max_max_rule"),
    _rule("min_max_rule", 13, _CLIP_TYPES),
    _rule("max_min_rule", 13, _CLIP_TYPES),
    _rule("successive_clip_relu_rule", 11, _CLIP_INPUTS),
    _rule("successive_relu_clip_rule", 11, _CLIP_INPUTS),
    _rule("successive_relu_rule"),
    _rule("successive_clip_rule", 11, _CLIP_INPUTS),
    _rule("cast_cast_rule"),
    _rule("no_op_cast_rule"),
    _rule("no_op_expand_rule"),
    _rule("flatten_to_reshape_rule"),
    _rule("reshape_reshape_rule"),
    _rule("slice_split_rule", 18, "it writes Split(num_outputs=2), new in 18"),
    _rule("no_op_transpose_rule"),
    _rule("transpose_transpose_rule"),
    _rule("unsqueeze_unsqueeze_rule", 13, "it writes Unsqueeze with axes as an input, new in 13"),
    _rule("squeeze_reshape_1d_rule"),
    _rule("no_op_dynamic_scatter_nd_rule"),
    _rule("no_op_static_scatter_nd_rule"),
    _rule("normalize_pad_format_conv_rule"),
    _rule("normalize_pad_format_conv_integer_rule"),
    _rule("fuse_pad_into_conv_rule", 11, _PAD_INPUTS),
    _rule("fuse_pad_into_conv_integer_rule", 11, _PAD_INPUTS),
    _rule("fuse_batchnorm_into_conv_rule"),
    _rule("fuse_batchnorm_into_conv_transpose_rule"),
    _rule("fuse_batchnorm_into_gemm_rule"),
    _rule("remove_optional_bias_from_conv_rule"),
    _rule("remove_optional_bias_from_conv_transpose_rule"),
    _rule("remove_optional_bias_from_qlinear_conv_rule"),
    _rule("remove_optional_bias_from_gemm_rule", 11, "it writes Gemm without C, optional from 11"),
)


def rules_at(opset: int, table: Sequence[Rule] = RULES) -> list[Rule]:
    """The rules of `table` whose rewrites are valid at `opset`."""
    return [rule for rule in table if opset >= rule.since]


def finalize(model: ir.Model, *, initializers_as_inputs: bool = False) -> None:
    """What every exported model gets: unused values dropped; old IR versions list
    initializers among the graph inputs, as they require."""
    passes.RemoveUnusedNodesPass()(model)
    if initializers_as_inputs or (model.ir_version is not None and model.ir_version < 4):
        passes.AddInitializersToInputsPass()(model)


def optimize(
    model: ir.Model, *, constant_folding: bool = True, rule_table: Sequence[Rule] | None = None
) -> None:
    """onnxscript's optimizer, in place: constant folding, rewrites, dead-code removal.

    The passes of onnxscript.optimizer.optimize_ir, with the rewrite rules of `rule_table`
    (default RULES) valid at the model's opset. Weights are never folded into new tensors
    (folding is limited to small constants), so optimizing does not grow the model.
    """
    run = _GuardedRun(model)
    run.step("InlinePass", _ir_pass(passes.InlinePass()))
    table = rules_at(run.opset, RULES if rule_table is None else rule_table)
    for _ in range(ROUNDS):
        changed = False
        if constant_folding:
            changed |= run.step("fold_constants", _fold_constants)
        changed |= run.rewrite(table)
        for cleanup in (passes.RemoveUnusedNodesPass(), passes.RemoveUnusedOpsetsPass()):
            changed |= run.step(type(cleanup).__name__, _ir_pass(cleanup))
        if not changed:
            break
    for last in (
        passes.RemoveUnusedNodesPass(),
        passes.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0),
        passes.DeduplicateInitializersPass(),
        passes.CommonSubexpressionEliminationPass(),
        passes.OutputFixPass(),
        passes.NameFixPass(),
    ):
        run.step(type(last).__name__, _ir_pass(last))


def _ir_pass(step: ir.passes.PassBase) -> Callable[[ir.Model], bool]:
    return lambda model: step(model).modified


# The folder logs a warning for each node onnx's reference implementation cannot evaluate
# (its GatherElements fails on valid inputs: BERT's token types) and leaves the node as it is:
# nothing a user can act on, so its warnings are not shown (errors still are).
_FOLDER_LOG = "onnxscript.optimizer._constant_folding"


def _fold_constants(model: ir.Model) -> bool:
    folder_log = logging.getLogger(_FOLDER_LOG)
    level = folder_log.level
    folder_log.setLevel(logging.ERROR)
    try:
        return onnxscript_optimizer.fold_constants(
            model,
            onnx_shape_inference=True,
            input_size_limit=FOLD_INPUT_LIMIT,
            output_size_limit=FOLD_OUTPUT_LIMIT,
        ).modified
    finally:
        folder_log.setLevel(level)


class _GuardedRun:
    """Runs optimization steps on one model, undoing and reporting each step that fails.

    Undoing restores a copy of the model taken at the start (or at the last undo) and replays
    the steps that succeeded since: one copy per failure, not one per step.
    """

    def __init__(self, model: ir.Model) -> None:
        self.model = model
        self.opset = model.opset_imports.get("", 1)
        self.failed: set[str] = set()  # steps and rules that failed; each is warned of once
        self._checkpoint = model.clone()  # tensors are shared, not copied
        self._since: list[Callable[[ir.Model], bool]] = []  # steps applied after it

    def step(self, name: str, apply: Callable[[ir.Model], bool]) -> bool:
        """Apply one step, or undo it and warn if it fails. Whether it changed the model."""
        if name in self.failed:
            return False
        changed, problem = self._attempt(apply)
        if problem is not None:
            self.failed.add(name)
            warnings.warn(
                f"torchonnx optimizer: {name} failed at opset {self.opset} and was skipped; "
                f"the model is kept as it was before it ({problem})",
                OptimizationWarning,
                stacklevel=3,
            )
        return changed

    def rewrite(self, table: Sequence[Rule]) -> bool:
        """All rules in one pass; if that fails, each rule in a pass of its own, so that only
        the rules that fail are skipped, and named."""
        live = [rule for rule in table if rule.name not in self.failed]
        if not live:
            return False
        changed, problem = self._attempt(lambda model: _rewrite(model, live))
        if problem is None:
            return changed
        return any([self.step(rule.name, lambda m, r=rule: _rewrite(m, [r])) for rule in live])

    def _attempt(self, apply: Callable[[ir.Model], bool]) -> tuple[bool, str | None]:
        """(whether `apply` changed the model, None), or, when it raised or wrote a node that
        is not valid at the opset, (False, what went wrong) with the model as it was before."""
        before = set(_nodes(self.model))  # the nodes themselves: ids of freed ones are reused
        try:
            changed = apply(self.model)
            problem = _invalid((n for n in _nodes(self.model) if n not in before), self.opset)
        except Exception as err:  # a failing optimization is the optimizer's, not the export's
            changed, problem = False, f"{type(err).__name__}: {err}"
        if problem is None:
            self._since.append(apply)
            return changed, None
        self._restore()
        return False, problem

    def _restore(self) -> None:
        self._load(self._checkpoint.clone())
        try:
            for apply in self._since:  # they succeeded on this very graph before
                apply(self.model)
        except Exception:  # should they not, the checkpoint is still a valid model
            self._load(self._checkpoint.clone())
        else:
            self._checkpoint = self.model.clone()
        self._since = []

    def _load(self, copy: ir.Model) -> None:
        self.model.graph = copy.graph
        self.model.functions.clear()
        self.model.functions.update(copy.functions)


def _rewrite(model: ir.Model, table: Sequence[Rule]) -> bool:
    return RewritePass([r for rule in table for r in rule.rules])(model).modified


def _nodes(model: ir.Model) -> Iterable[ir.Node]:
    yield from ir.traversal.RecursiveGraphIterator(model.graph)
    for function in model.functions.values():
        yield from ir.traversal.RecursiveGraphIterator(function)


_SINGLE = onnx.defs.OpSchema.FormalParameterOption.Single


def _invalid(nodes: Iterable[ir.Node], opset: int) -> str | None:
    """What makes the first of `nodes` invalid ONNX at `opset`, or None when all are valid:
    an operator the opset does not have, an attribute or input its schema does not declare,
    a required input left out, or an input type its schema does not accept."""
    for node in nodes:
        if node.domain not in ("", "ai.onnx"):
            continue  # other domains (functions, contrib ops) are not versioned by `opset`
        problem = _against_schema(node, opset)
        if problem is not None:
            return f"it wrote {node.op_type} {problem}"
    return None


def _against_schema(node: ir.Node, opset: int) -> str | None:
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, "")
    except onnx.defs.SchemaError:
        return f"which opset {opset} does not have"
    version = f"{node.op_type}-{schema.since_version}"
    if schema.deprecated:
        return f"which is deprecated at opset {opset}"
    unknown = sorted(set(node.attributes) - set(schema.attributes))
    if unknown:
        return f"with attribute {', '.join(unknown)}, which {version} does not have"
    if not schema.min_input <= len(node.inputs) <= schema.max_input:
        return f"with {len(node.inputs)} inputs, which {version} does not take"
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
    for i, value in enumerate(node.inputs):
        formal = schema.inputs[i] if i < len(schema.inputs) else schema.inputs[-1]
        if value is None:
            if formal.option == _SINGLE:
                return f"without its input {formal.name}, which {version} requires"
            continue
        if not isinstance(value.type, ir.TensorType) or value.dtype == ir.DataType.UNDEFINED:
            continue  # a value of unknown type, a sequence or an optional
        dtype = f"tensor({value.dtype.name.lower()})"
        if dtype not in allowed.get(formal.type_str, {formal.type_str}):
            return f"with a {dtype} {formal.name}, which {version} does not accept"
    return None
