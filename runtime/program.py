"""ONNXProgram: an exported model that can be saved, optimized and run."""

from __future__ import annotations

import ctypes
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
import torch
from torch.export import ExportedProgram

from torchonnx import catalog
from torchonnx.dtypes import from_ir
from torchonnx.errors import SaveError
from torchonnx.optimize import finalize, optimize

# Tensors above this size go to the external data file when saving with external data.
EXTERNAL_THRESHOLD_BYTES = 1024
# Protobuf cannot hold a model above 2 GiB; such models are always saved with external data.
PROTOBUF_LIMIT_BYTES = 2**31 - 1


class ONNXProgram:
    """An ONNX model exported from PyTorch, with the program it was exported from."""

    def __init__(
        self,
        model: ir.Model,
        exported_program: ExportedProgram | None,
        *,
        external_data: bool = True,
        initializers_as_inputs: bool = False,
    ) -> None:
        self.model = model
        self.exported_program = exported_program
        self.external_data = external_data
        self._initializers_as_inputs = initializers_as_inputs
        self._session: Any = None
        self.timings: dict[str, float] = {}  # seconds per export stage
        # per call: (ATen overload, its spec entry, the index of the lowering that ran)
        self.used: list[tuple[str, str, int]] = []
        # per call a runtime cannot run, though it exports: (ATen overload, entry, gap index)
        self.gaps_met: list[tuple[str, str, int]] = []

    def __repr__(self) -> str:
        return f"ONNXProgram(\n{self.model}\n)"

    @property
    def lowerings(self) -> list[tuple[str, str]]:
        """(ATen overload, file:line of the spec lowering that ran) per call."""
        return [(o, catalog.spec_location(k, lowering=i)) for o, k, i in self.used]

    @property
    def runtime_gaps(self) -> list[tuple[str, catalog.GapInfo]]:
        """(ATen overload, declared gap) for calls a runtime cannot run, though they export."""
        return [(o, catalog.gap(k, i)) for o, k, i in self.gaps_met]

    @property
    def model_proto(self) -> onnx.ModelProto:
        """The model as an onnx.ModelProto (weights are copied into it)."""
        return ir.serde.serialize_model(self.model)

    @property
    def opset(self) -> int:
        return self.model.opset_imports[""]

    def optimize(self) -> None:
        """Fold constants and remove redundant nodes, in place."""
        optimize(self.model)
        finalize(self.model, initializers_as_inputs=self._initializers_as_inputs)
        self._session = None

    def _weight_bytes(self) -> int:
        return sum(
            v.const_value.nbytes
            for v in self.model.graph.initializers.values()
            if v.const_value is not None
        )

    def save(
        self, destination: str | os.PathLike[str], *, external_data: bool | None = None
    ) -> None:
        """Write the model to `destination`, weights to `<name>.data` beside it when external.

        external_data=None follows the export's `external_data` setting; models over 2 GiB are
        always written with external data. The write is atomic: on failure nothing is left.
        """
        path = Path(destination)
        external = self.external_data if external_data is None else external_data
        external = external or self._weight_bytes() > PROTOBUF_LIMIT_BYTES
        data_name = f"{path.name}.data"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            if external:
                ir.save(
                    self.model,
                    tmp / path.name,
                    external_data=data_name,
                    size_threshold_bytes=EXTERNAL_THRESHOLD_BYTES,
                )
            else:
                ir.save(self.model, tmp / path.name)
            if (tmp / data_name).exists():
                os.replace(tmp / data_name, path.parent / data_name)
            elif (path.parent / data_name).exists():
                (path.parent / data_name).unlink()  # a stale file from an earlier save
            os.replace(tmp / path.name, path)
        except Exception as err:
            raise SaveError(f"could not save the model to {path}: {err}") from err
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # -- running ----------------------------------------------------------------------------
    def _ort_session(self) -> Any:
        if self._session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 3
            proto = self.model_proto
            if proto.ByteSize() <= PROTOBUF_LIMIT_BYTES:
                self._session = ort.InferenceSession(
                    proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
                )
            else:
                folder = Path(tempfile.mkdtemp(prefix="torchonnx-run-"))
                self.save(folder / "model.onnx", external_data=True)
                self._session = ort.InferenceSession(
                    str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
                )
        return self._session

    def input_tensors(
        self, args: Sequence[Any], kwargs: dict[str, Any] | None = None
    ) -> list[torch.Tensor]:
        """The model's tensor inputs, flattened in the graph's order."""
        leaves, _ = torch.utils._pytree.tree_flatten(
            (tuple(args), _ordered_kwargs(self.exported_program, kwargs or {}))
        )
        return [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]

    def __call__(self, *args: Any, **kwargs: Any) -> list[torch.Tensor]:
        """Run the model with onnxruntime on CPU; returns its outputs as torch tensors."""
        session = self._ort_session()
        tensors = self.input_tensors(args, kwargs)
        graph = self.model.graph
        names = [v.name for v in graph.inputs if v.name not in graph.initializers]
        if len(tensors) != len(names):
            raise TypeError(
                f"the model takes {len(names)} tensor inputs, {len(tensors)} were given"
            )
        feeds = {n: _ort_value(t) for n, t in zip(names, tensors, strict=True)}
        outputs = session.run_with_ort_values(None, feeds)
        return [_from_ort(o, v.dtype) for o, v in zip(outputs, graph.outputs, strict=True)]


def _ordered_kwargs(program: ExportedProgram | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """kwargs in the order the exported program flattened them."""
    if program is None or not kwargs:
        return kwargs
    spec = program.call_spec.in_spec
    if spec is None or len(spec.children_specs) < 2 or spec.children_specs[1].context is None:
        return kwargs
    order = list(spec.children_specs[1].context)
    return {k: kwargs[k] for k in order if k in kwargs}


def _ort_value(tensor: torch.Tensor) -> Any:
    import onnxruntime as ort

    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: pass the bits
        bits = tensor.detach().cpu().contiguous().view(torch.uint16).numpy()
        return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(bits, int(ir.DataType.BFLOAT16))
    return ort.OrtValue.ortvalue_from_numpy(_to_numpy(tensor))


def _from_ort(value: Any, dtype: ir.DataType | None) -> torch.Tensor:
    if dtype == ir.DataType.BFLOAT16:
        count = value.tensor_size_in_bytes() // 2
        if count == 0:
            return torch.empty(value.shape(), dtype=torch.bfloat16)
        bits = np.ctypeslib.as_array(
            ctypes.cast(value.data_ptr(), ctypes.POINTER(ctypes.c_uint16)), (count,)
        )
        return torch.from_numpy(bits.copy()).view(torch.bfloat16).reshape(value.shape())
    return _from_numpy(value.numpy(), dtype)


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach().cpu().contiguous()
    if tensor.dtype == torch.bfloat16:
        import ml_dtypes

        return tensor.view(torch.uint16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()


def _from_numpy(array: np.ndarray, dtype: ir.DataType | None) -> torch.Tensor:
    array = np.ascontiguousarray(array).reshape(np.shape(array))  # ascontiguousarray makes 0-d 1-d
    if dtype == ir.DataType.BFLOAT16:
        return torch.from_numpy(array.view(np.uint16)).view(torch.bfloat16)
    tensor = torch.from_numpy(array)
    return tensor.to(from_ir(dtype)) if dtype is not None else tensor
