"""Building the inputs of spec samples, for the op tests and for contributors checking a lowering.

A spec sample is the argument list of one call of the op, written in Python:
`t(2, 3), t(3), alpha=2`. These names build its tensors:

- `t(*shape)`: random values of the dtype under test (small integers for integer dtypes,
  random booleans for bool); `t(*shape, dtype="int64")` fixes the dtype instead.
- `pos(*shape)`: like `t`, but positive (for sqrt, log, division).
- `ints(*shape, low=0, high=5)`: int64 values in [low, high).
- `mask(*shape)`: random booleans.
- `sym(value)`: a number the graph computes (a SymInt of a dynamic size, a number from
  `item()`): the tests pass it as a graph input, eager PyTorch gets `value`. `num(value)` is
  such a number of the kind of the dtype under test: a bool for bool, an int for integer
  dtypes, a float for floating ones (for entries on numbers, whose dtypes are those kinds).
- dtype names (`float16`, `int64`, ...) are torch dtypes, for ScalarType arguments; `dtype`
  is the dtype under test (for factories such as `full(..., dtype=dtype)`).

Values are seeded per sample, so a failure reproduces.
"""

from __future__ import annotations

import ast
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torchonnx.dtypes import DTYPE_NAMES, FLOATING, torch_dtype

if TYPE_CHECKING:
    import torch

# torch is imported where tensors are made: codegen checks samples' names without loading it.
SAMPLE_NAMES = ("t", "pos", "ints", "mask", "sym", "num", "dtype", *DTYPE_NAMES)


@dataclass(frozen=True)
class SymNumber:
    """A sample argument that the graph computes: a number torch.export would see as a SymInt
    (or SymFloat, SymBool)."""

    value: bool | int | float


def eager(value: Any) -> Any:
    """A sample argument as eager PyTorch takes it: numbers of the graph as plain numbers."""
    if isinstance(value, SymNumber):
        return value.value
    if isinstance(value, (list, tuple)):
        return type(value)(eager(v) for v in value)
    return value


class _Maker:
    def __init__(self, dtype: str, seed: int) -> None:
        import torch

        self.torch = torch
        self.dtype = dtype
        self.gen = torch.Generator().manual_seed(seed)

    def t(self, *shape: int, dtype: str | None = None) -> torch.Tensor:
        name = dtype or self.dtype
        if name == "bool":
            return self.mask(*shape)
        if name in FLOATING:
            return self.torch.randn(shape, generator=self.gen).to(torch_dtype(name))
        low = 0 if name.startswith("uint") else -5
        return self.torch.randint(low, 6, shape, generator=self.gen).to(torch_dtype(name))

    def pos(self, *shape: int, dtype: str | None = None) -> torch.Tensor:
        name = dtype or self.dtype
        if name in FLOATING:
            return (self.torch.rand(shape, generator=self.gen) + 0.5).to(torch_dtype(name))
        return self.torch.randint(1, 6, shape, generator=self.gen).to(torch_dtype(name))

    def ints(self, *shape: int, low: int = 0, high: int = 5) -> torch.Tensor:
        return self.torch.randint(low, high, shape, generator=self.gen)

    def mask(self, *shape: int) -> torch.Tensor:
        return self.torch.rand(shape, generator=self.gen) > 0.5


def sample_args(text: str, dtype: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The positional and keyword arguments a sample's text stands for, for `dtype`."""
    maker = _Maker(dtype, zlib.crc32(f"{text}|{dtype}".encode()))
    namespace: dict[str, Any] = {name: torch_dtype(name) for name in DTYPE_NAMES}
    namespace.update({name: getattr(maker, name) for name in ("t", "pos", "ints", "mask")})
    kind = bool if dtype == "bool" else (float if dtype in FLOATING else int)
    namespace.update(
        sym=SymNumber, num=lambda value: SymNumber(kind(value)), dtype=torch_dtype(dtype)
    )
    call = ast.parse(f"_f({text})", mode="eval").body
    assert isinstance(call, ast.Call)
    args = tuple(_eval(a, namespace) for a in call.args)
    kwargs = {k.arg: _eval(k.value, namespace) for k in call.keywords if k.arg}
    return args, kwargs


def _eval(node: ast.expr, namespace: dict[str, Any]) -> Any:
    code = compile(ast.Expression(node), "<sample>", "eval")
    return eval(code, {"__builtins__": {"float": float, "int": int}}, namespace)
