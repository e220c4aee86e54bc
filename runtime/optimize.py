"""Graph clean-up and optimization, the same for both export paths."""

from __future__ import annotations

import onnx_ir as ir
import onnx_ir.passes.common as passes
import onnxscript.optimizer


def finalize(model: ir.Model, *, initializers_as_inputs: bool = False) -> None:
    """What every exported model gets: unused values dropped; old IR versions list
    initializers among the graph inputs, as they require."""
    passes.RemoveUnusedNodesPass()(model)
    if initializers_as_inputs or (model.ir_version is not None and model.ir_version < 4):
        passes.AddInitializersToInputsPass()(model)


def optimize(model: ir.Model, *, constant_folding: bool = True) -> None:
    """onnxscript's optimizer, in place: constant folding, rewrites, dead-code removal.

    Weights are never folded into new tensors (the size limits keep folding to small
    constants), so optimizing does not grow the model.
    """
    if constant_folding:
        onnxscript.optimizer.optimize_ir(model)
    else:
        passes.CommonSubexpressionEliminationPass()(model)
