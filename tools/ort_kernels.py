"""Which dtypes onnxruntime's CPU provider has kernels for, per ONNX op and opset.

    python tools/ort_kernels.py Relu Add

Spec authors use it to write `runtime: onnxruntime` gaps precisely; it reads onnxruntime's
own kernel registry, so it describes the installed onnxruntime.
"""

from __future__ import annotations

import sys

import onnxruntime.capi._pybind_state as C


def kernels(op: str) -> list[tuple[tuple[int, int], set[str]]]:
    out = []
    for k in C.get_all_opkernel_def():
        if k.op_name == op and k.domain in ("", "ai.onnx") and k.provider == "CPUExecutionProvider":
            types: set[str] = set()
            for allowed in k.type_constraints.values():
                types |= {t.removeprefix("tensor(").removesuffix(")") for t in allowed}
            out.append((tuple(k.version_range), types))
    return sorted(out)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        merged: dict[tuple[int, int], set[str]] = {}
        for rng, types in kernels(name):
            merged.setdefault(rng, set()).update(types)
        for (lo, hi), types in sorted(merged.items()):
            hi_text = "" if hi > 1000 else str(hi)
            print(f"{name} {lo}..{hi_text}: {', '.join(sorted(types))}")
