"""Graph clean-up and optimization, the same for both export paths."""

from __future__ import annotations

import onnx_ir as ir
import onnx_ir.passes.common as passes
from onnxscript import rewriter
from onnxscript.optimizer._constant_folding import FoldConstantsPass

# Constant folding only folds nodes whose inputs and outputs hold at most this many elements.
FOLD_INPUT_LIMIT = 8192
FOLD_OUTPUT_LIMIT = 262144
# onnxscript rewrite rules that produce invalid graphs below some opset, with that opset.
# RemoveOptionalBiasFromGemm drops a zero C, which Gemm requires before opset 11.
_RULES_FROM_OPSET = {"RemoveOptionalBiasFromGemm": 11}


def finalize(model: ir.Model, *, initializers_as_inputs: bool = False) -> None:
    """What every exported model gets: unused values dropped; old IR versions list
    initializers among the graph inputs, as they require."""
    passes.RemoveUnusedNodesPass()(model)
    if initializers_as_inputs or (model.ir_version is not None and model.ir_version < 4):
        passes.AddInitializersToInputsPass()(model)


def _rules(opset: int) -> list:
    return [
        rule
        for rule in rewriter._DEFAULT_REWRITE_RULES
        if opset >= _RULES_FROM_OPSET.get(getattr(rule, "name", None) or "", 0)
    ]


def optimize(model: ir.Model, *, constant_folding: bool = True) -> None:
    """onnxscript's optimizer, in place: constant folding, rewrites, dead-code removal.

    The passes of onnxscript.optimizer.optimize_ir, with the rewrite rules valid at the
    model's opset. Weights are never folded into new tensors (folding is limited to small
    constants), so optimizing does not grow the model.
    """
    opset = model.opset_imports.get("", 1)
    steps: list[ir.passes.PassBase] = [
        rewriter.RewritePass(_rules(opset)),
        passes.RemoveUnusedNodesPass(),
        passes.RemoveUnusedOpsetsPass(),
    ]
    if constant_folding:
        steps.insert(
            0,
            FoldConstantsPass(
                shape_inference=True,
                input_size_limit=FOLD_INPUT_LIMIT,
                output_size_limit=FOLD_OUTPUT_LIMIT,
            ),
        )
    ir.passes.Sequential(
        passes.InlinePass(),
        ir.passes.PassManager(steps, steps=2, early_stop=True),
        passes.RemoveUnusedNodesPass(),
        passes.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0),
        passes.DeduplicateInitializersPass(),
        passes.CommonSubexpressionEliminationPass(),
        passes.OutputFixPass(),
        passes.NameFixPass(),
    )(model)
