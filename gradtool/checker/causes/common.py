"""Limits, the verdict type and small helpers shared by the tests of :mod:`.causes`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..numeric import seeded_generator

MAX_ENTRIES = 1 << 18     # blocks analysed by the pattern tests (entries)
MAX_REPAIRS = 32          # backward rewrites tried
MAX_FROZEN = 12           # forward ops frozen by the term test
MAX_POINTS = 4            # other evaluation points tried
MAX_ROWS = 256            # rows replayed one by one to verify a repaired backward
MAX_SINGLE = 3            # single uses of a tensor tried, per pair of tensors
MAX_FACTORS = 8           # missing factors tried in the backward's sums
SCREEN = 1e-4             # relative tolerance of the screening on projections
REDUCTIONS = ("sum", "mean", "sum_dim", "mean_dim", "amax", "amin", "logsumexp")


@dataclass
class Cause:
    kind: str
    text: str
    evidence: dict = field(default_factory=dict)
    factor: float | None = None


def fmt(v: float) -> str:
    return f"{float(v):.4g}"


def fmt_list(values, limit: int = 6) -> str:
    shown = ", ".join(fmt(v) for v in list(values)[:limit])
    return "[" + shown + (", ..." if len(values) > limit else "") + "]"


def close(a, b, atol, rtol) -> bool:
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))


def max_error(a, b) -> float:
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def directions(seed: int, shape: tuple, other: int) -> np.ndarray:
    """Random directions for a screening (the same for the same arguments): one, or two
    when the side they are compared on (``other`` entries) is too small for one to say
    much."""
    k = 1 if other >= 4 else 2
    return seeded_generator(seed).standard_normal((k,) + tuple(shape))


def near(got, want, atol) -> bool:
    if got.shape != want.shape or not np.all(np.isfinite(got)):
        return False
    scale = float(np.linalg.norm(want))
    return float(np.linalg.norm(got - want)) <= SCREEN * scale + atol * np.sqrt(want.size)


_MODE_CLASS: list = []


def torch_mode(handler):
    """A torch function mode calling ``handler(func, args, kwargs)`` for every torch call
    (one class, made once: creating a class per replay costs more than the replay)."""
    if not _MODE_CLASS:
        from torch.overrides import TorchFunctionMode

        class HandlerMode(TorchFunctionMode):
            def __init__(self, handler) -> None:
                super().__init__()
                self.handler = handler

            def __torch_function__(self, func, types, args=(), kwargs=None):
                return self.handler(func, args, dict(kwargs or {}))

        _MODE_CLASS.append(HandlerMode)
    return _MODE_CLASS[0](handler)


#: torch's reflected operator names, as the operation and its operands' order
REFLECTED = {"rmul": "mul", "radd": "add", "rsub": "sub", "rtruediv": "div", "rpow": "pow",
              "truediv": "div"}
