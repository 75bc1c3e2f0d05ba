"""Creation: ``tensor``, ``zeros``, ``ones``, ``full``, ``arange``, ``linspace``, ``eye``, the
``*_like`` factories."""

from __future__ import annotations

import builtins

import numpy as np

from .. import dtypes
from ..grad_mode import MODE
from ..limits import check_new, track
from ..tensor import FACTORY_REQUIRES_GRAD, Tensor, _make
from .common import factory_shape

_bool = builtins.bool
_int = builtins.int

__all__ = [
    "arange", "as_tensor", "empty", "eye", "from_numpy", "full", "full_like",
    "get_default_dtype", "linspace", "ones", "ones_like", "tensor", "zeros", "zeros_like",
]


# ---- factories ------------------------------------------------------------------------------
def tensor(data, dtype=None, requires_grad=False) -> Tensor:
    """A new leaf tensor copying ``data`` (python floats become float64)."""
    return Tensor(data, dtype=dtype, requires_grad=requires_grad)


def as_tensor(data, dtype=None) -> Tensor:
    if isinstance(data, Tensor) and (dtype is None or data.dtype == dtype):
        return data
    return Tensor(data, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``array`` (dtype kept)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    return _make(array)


def _factory_dtype(dtype, default=dtypes.DEFAULT_FLOAT):
    return dtypes.to_np(dtype) if dtype is not None else default.np


def _leaf(arr, requires_grad) -> Tensor:
    if MODE.limited:
        track(arr)
    out = _make(arr)
    if requires_grad:
        out._set_requires_grad(True, FACTORY_REQUIRES_GRAD)
    return out


def _new(name: str, shape: tuple, dtype) -> tuple:
    """``shape``, after the limits' checks of a new array of ``dtype`` (cap, budget)."""
    if MODE.limited:
        check_new(shape, np.dtype(dtype).itemsize, f"{name}()")
    return shape


def _size_int(value, name: str, arg: str, position: int) -> int:
    """An integer size argument (a 0-d integer tensor, a numpy integer); bools and floats
    are refused with torch's TypeError."""
    if isinstance(value, Tensor) and value._data.ndim == 0 and value._data.dtype.kind in "iu":
        value = value._data.item()
    if isinstance(value, _bool) or not isinstance(value, (_int, np.integer)):
        raise TypeError(f"{name}(): argument '{arg}' (position {position}) must be int, not "
                        f"{type(value).__name__}")
    return _int(value)


def zeros(*size, dtype=None, requires_grad=False, device=None) -> Tensor:
    d = _factory_dtype(dtype)
    return _leaf(np.zeros(_new("zeros", factory_shape("zeros", size), d), d), requires_grad)


def ones(*size, dtype=None, requires_grad=False, device=None) -> Tensor:
    d = _factory_dtype(dtype)
    return _leaf(np.ones(_new("ones", factory_shape("ones", size), d), d), requires_grad)


def empty(*size, dtype=None, requires_grad=False, device=None) -> Tensor:
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False, device=None) -> Tensor:
    if dtype is None:
        dtype = dtypes.int64 if isinstance(fill_value, (_int, np.integer)) and \
            not isinstance(fill_value, _bool) else (dtypes.bool if isinstance(fill_value, _bool)
                                                    else dtypes.DEFAULT_FLOAT)
    if isinstance(size, Tensor) and size.ndim > 0:
        raise TypeError("full(): argument 'size' (position 1) must be tuple of ints, not "
                        "Tensor")
    single = isinstance(size, (_int, np.integer, Tensor))
    shape = factory_shape("full", (size,) if single else tuple(size))
    d = dtypes.to_np(dtype)
    return _leaf(np.full(_new("full", shape, d), fill_value, d), requires_grad)


def zeros_like(input, dtype=None, requires_grad=False) -> Tensor:
    d = dtypes.to_np(dtype) or input._data.dtype
    return _leaf(np.zeros(_new("zeros_like", input.shape, d), d), requires_grad)


def ones_like(input, dtype=None, requires_grad=False) -> Tensor:
    d = dtypes.to_np(dtype) or input._data.dtype
    return _leaf(np.ones(_new("ones_like", input.shape, d), d), requires_grad)


def full_like(input, fill_value, dtype=None, requires_grad=False) -> Tensor:
    d = dtypes.to_np(dtype) or input._data.dtype
    return _leaf(np.full(_new("full_like", input.shape, d), fill_value, d), requires_grad)


def _number(value):
    """A 0-d tensor bound of arange/linspace as a Python number."""
    if isinstance(value, Tensor) and value._data.ndim == 0:
        return value._data.item()
    return value


def arange(start, end=None, step=1, *, dtype=None, requires_grad=False, device=None) -> Tensor:
    if end is None:
        start, end = 0, start
    start, end, step = _number(start), _number(end), _number(step)
    values = (start, end, step)
    if dtype is None:
        is_int = builtins.all(isinstance(v, (_int, np.integer)) for v in values)
        dtype = dtypes.int64 if is_int else dtypes.DEFAULT_FLOAT
    d = dtypes.to_np(dtype)
    if MODE.limited:
        try:
            count = builtins.max(_int(np.ceil((float(end) - float(start)) / float(step))), 0)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            count = 0       # numpy reports the bad bounds
        _new("arange", (count,), d)
    return _leaf(np.arange(start, end, step, dtype=d), requires_grad)


def linspace(start, end, steps, *, dtype=None, requires_grad=False, device=None) -> Tensor:
    n = _size_int(steps, "linspace", "steps", 3)
    d = _factory_dtype(dtype)
    _new("linspace", (n,), d)
    return _leaf(np.linspace(_number(start), _number(end), n, dtype=d), requires_grad)


def eye(n, m=None, *, dtype=None, requires_grad=False, device=None) -> Tensor:
    n = _size_int(n, "eye", "n", 1)
    m = n if m is None else _size_int(m, "eye", "m", 2)
    d = _factory_dtype(dtype)
    _new("eye", (n, m), d)
    return _leaf(np.eye(n, m, dtype=d), requires_grad)


def get_default_dtype():
    """gradtool's default floating dtype: float64 (a gradient checker's precision)."""
    return dtypes.DEFAULT_FLOAT
