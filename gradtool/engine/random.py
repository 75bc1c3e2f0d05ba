"""Random numbers: one process-wide generator (``gt.manual_seed``) and explicit Generators."""

from __future__ import annotations

import numpy as np

from . import dtypes
from .grad_mode import MODE
from .limits import check_new, track
from .tensor import _make


class Generator:
    """``gt.Generator().manual_seed(0)``: an independent, seedable stream (as torch's)."""

    def __init__(self, device=None) -> None:
        self._seed = 0
        self.rng = np.random.default_rng(0)

    def manual_seed(self, seed: int) -> Generator:
        self._seed = int(seed)
        self.rng = np.random.default_rng(self._seed)
        return self

    def initial_seed(self) -> int:
        return self._seed


default_generator = Generator().manual_seed(0)


def manual_seed(seed: int) -> Generator:
    """Seed the default generator (randn, rand, randint, shuffling, dropout, init)."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.initial_seed()


def _rng(generator=None) -> np.random.Generator:
    return (generator or default_generator).rng


def _shape(size, name: str = "randn") -> tuple:
    from .ops.common import factory_shape
    return factory_shape(name, size)


def _checked(size, name: str) -> tuple:
    """The shape of a new random tensor, after the limits' checks (cap, memory budget)."""
    shape = _shape(size, name)
    if MODE.limited:
        check_new(shape, 8, f"{name}()")
    return shape


def _leaf(arr, dtype, requires_grad):
    arr = arr.astype(dtypes.to_np(dtype) if dtype is not None else np.float64, copy=False)
    if MODE.limited:
        track(arr)
    out = _make(arr)
    if requires_grad:
        out.requires_grad_(True)
    return out


def randn(*size, dtype=None, requires_grad=False, generator=None, device=None):
    return _leaf(_rng(generator).standard_normal(_checked(size, "randn")), dtype, requires_grad)


def rand(*size, dtype=None, requires_grad=False, generator=None, device=None):
    return _leaf(_rng(generator).random(_checked(size, "rand")), dtype, requires_grad)


def randint(low, high=None, size=(), *, dtype=None, generator=None, device=None):
    if high is None:
        low, high = 0, low
    shape = _checked(tuple(size) if isinstance(size, (list, tuple)) else (size,), "randint")
    arr = _rng(generator).integers(low, high, size=shape)
    return _make(arr.astype(dtypes.to_np(dtype) if dtype is not None else np.int64))


def randperm(n, *, generator=None, dtype=None, device=None):
    (n,) = _checked((n,), "randperm")
    return _make(_rng(generator).permutation(n).astype(np.int64))


def randn_like(input, dtype=None, requires_grad=False):
    return randn(*input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad)


def rand_like(input, dtype=None, requires_grad=False):
    return rand(*input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad)
