"""Functions and methods of torch's API that tests and tutorials use around autograd:
predicates and comparisons (``isnan``, ``allclose``, ``equal``, ``all``), rounding with a zero
gradient, ``tril``/``triu``, sorting, ``narrow`` and the ``new_*`` factories.

They are built from the primitives (no op-table entries of their own) and are not part of the
spec language's builtins: ``gt.allclose`` exists for scripts written against torch.
"""

from __future__ import annotations

import builtins
from collections import namedtuple

import numpy as np

from . import dtypes
from . import ops as _ops
from .tensor import Tensor, _make, _norm_dim

SortResult = namedtuple("sort", ["values", "indices"])
TopkResult = namedtuple("topk", ["values", "indices"])

_bool = builtins.bool


def _t(x) -> Tensor:
    return x if isinstance(x, Tensor) else _ops.tensor(x)


# ---- predicates and comparisons (no gradient) ------------------------------------------------
def isnan(input) -> Tensor:
    return _make(np.isnan(_t(input)._data))


def isinf(input) -> Tensor:
    return _make(np.isinf(_t(input)._data))


def isfinite(input) -> Tensor:
    return _make(np.isfinite(_t(input)._data))


def isclose(input, other, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Tensor:
    return _make(np.isclose(_t(input)._data, _t(other)._data, rtol=rtol, atol=atol,
                            equal_nan=equal_nan))


def allclose(input, other, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    return _bool(np.allclose(_t(input)._data, _t(other)._data, rtol=rtol, atol=atol,
                             equal_nan=equal_nan))


def equal(input, other) -> bool:
    """Same shape and same values (torch.equal)."""
    a, b = _t(input)._data, _t(other)._data
    return a.shape == b.shape and _bool(np.array_equal(a, b))


def _reduce_bool(np_fn, input, dim, keepdim) -> Tensor:
    data = _t(input)._data
    if dim is None:
        return _make(np.asarray(np_fn(data)))
    axes = tuple(_norm_dim(d, data.ndim) for d in (dim if isinstance(dim, (tuple, list))
                                                  else (dim,)))
    return _make(np.asarray(np_fn(data, axis=axes, keepdims=keepdim)))


def all(input, dim=None, keepdim: bool = False) -> Tensor:
    return _reduce_bool(np.all, input, dim, keepdim)


def any(input, dim=None, keepdim: bool = False) -> Tensor:
    return _reduce_bool(np.any, input, dim, keepdim)


def nonzero(input, *, as_tuple: bool = False):
    data = _t(input)._data
    if as_tuple:
        return tuple(_make(i.astype(np.int64)) for i in np.nonzero(data))
    return _make(np.argwhere(data).astype(np.int64))


def count_nonzero(input, dim=None) -> Tensor:
    data = _t(input)._data
    return _make(np.asarray(np.count_nonzero(data, axis=dim), dtype=np.int64))


# ---- rounding: torch records a node whose gradient is zero ------------------------------------
def _zero_gradient(input: Tensor, values: np.ndarray) -> Tensor:
    # where(False, x, c) has the values c and the gradient 0 for x, exactly
    if not input.requires_grad:
        return _make(values)
    return _ops.where(np.zeros(values.shape, dtype=np.bool_), input, _make(values))


def floor(input) -> Tensor:
    input = _t(input)
    return _zero_gradient(input, np.floor(input._data))


def ceil(input) -> Tensor:
    input = _t(input)
    return _zero_gradient(input, np.ceil(input._data))


def trunc(input) -> Tensor:
    input = _t(input)
    return _zero_gradient(input, np.trunc(input._data))


def round(input, *, decimals: int = 0) -> Tensor:
    """Half to even, as torch."""
    input = _t(input)
    return _zero_gradient(input, np.round(input._data, decimals))


def frac(input) -> Tensor:
    """x - trunc(x): gradient 1."""
    input = _t(input)
    return input - trunc(input).detach()


# ---- triangles, sorting, narrowing ------------------------------------------------------------
def _triangle(input, diagonal: int, upper: bool) -> Tensor:
    input = _t(input)
    if input.ndim < 2:
        raise _ops.EngineError(f"{'triu' if upper else 'tril'}: input tensor must have at "
                               "least 2 dimensions")
    rows, cols = input.shape[-2:]
    keep = np.triu(np.ones((rows, cols), dtype=np.bool_), diagonal) if upper else \
        np.tril(np.ones((rows, cols), dtype=np.bool_), diagonal)
    return _ops.where(np.broadcast_to(keep, input.shape), input,
                      _make(np.zeros((), input._data.dtype)))


def tril(input, diagonal: int = 0) -> Tensor:
    return _triangle(input, diagonal, upper=False)


def triu(input, diagonal: int = 0) -> Tensor:
    return _triangle(input, diagonal, upper=True)


def argsort(input, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    data = _t(input)._data
    if data.ndim == 0:
        return _make(np.zeros((), np.int64))
    axis = _norm_dim(dim, data.ndim)
    if descending:      # NaN first, as torch (NaN sorts as the largest value); stable
        order = np.lexsort((-data, ~np.isnan(data)), axis=axis)
    else:
        order = np.argsort(data, axis=axis, kind="stable")      # NaN last
    return _make(order.astype(np.int64))


def sort(input, dim: int = -1, descending: bool = False, stable: bool = False):
    input = _t(input)
    if input.ndim == 0:
        return SortResult(input.clone(), _make(np.zeros((), np.int64)))
    indices = argsort(input, dim, descending)
    return SortResult(_ops.gather(input, dim, indices), indices)


def topk(input, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    input = _t(input)
    axis = _norm_dim(dim, builtins.max(input.ndim, 1))
    size = input.shape[axis] if input.ndim else 1
    if not 0 <= k <= size:
        raise IndexError("selected index k out of range")
    order = argsort(input, dim, descending=largest)
    indices = _make(np.take(order._data, np.arange(k), axis=axis) if input.ndim
                    else order._data)
    return TopkResult(_ops.gather(input, dim, indices) if input.ndim else input.clone(),
                      indices)


def narrow(input, dim: int, start: int, length: int) -> Tensor:
    input = _t(input)
    axis = _norm_dim(dim, input.ndim)
    size = input.shape[axis]
    if start < 0:
        start += size
    if not 0 <= start <= size or length < 0 or start + length > size:
        raise _ops.EngineError(f"start ({start}) + length ({length}) exceeds dimension size "
                               f"({size}).")
    key = (slice(None),) * axis + (slice(start, start + length),)
    return input[key]


def numel(input) -> int:
    return _t(input).numel()


def get_default_dtype():
    """gradtool's default floating dtype: float64 (a gradient checker's precision)."""
    return dtypes.DEFAULT_FLOAT


FUNCTIONS = ("isnan", "isinf", "isfinite", "isclose", "allclose", "equal", "all", "any",
             "nonzero", "count_nonzero", "floor", "ceil", "trunc", "round", "frac", "tril",
             "triu", "argsort", "sort", "topk", "narrow", "numel", "get_default_dtype")


# ---- methods ----------------------------------------------------------------------------------
def _type(self, dtype=None, non_blocking: bool = False):
    """``x.type()`` is torch's legacy type name; ``x.type(dtype)`` converts."""
    if dtype is None:
        from .node import type_name
        return "torch." + type_name(self._data)
    return _ops.to(self, dtype)


def _new(self, data, dtype=None, requires_grad: bool = False) -> Tensor:
    out = _make(np.array(data, dtype=dtypes.to_np(dtype) or self._data.dtype))
    return out.requires_grad_(True) if requires_grad else out


def _size_args(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(size)


def _masked_fill_(self, mask, value) -> Tensor:
    mask = _t(mask)
    if mask._data.dtype != np.bool_:
        _ops.masked_fill(self, mask, value)   # torch's error for a non-boolean mask
    _ops.setitem(self, np.broadcast_to(mask._data, self.shape), value)
    return self


METHODS = {
    "type": _type,
    "new_tensor": lambda self, data, dtype=None, requires_grad=False: _new(
        self, data._data if isinstance(data, Tensor) else data, dtype, requires_grad),
    "new_zeros": lambda self, *size, dtype=None, requires_grad=False: _new(
        self, np.zeros(_size_args(size)), dtype, requires_grad),
    "new_ones": lambda self, *size, dtype=None, requires_grad=False: _new(
        self, np.ones(_size_args(size)), dtype, requires_grad),
    "new_empty": lambda self, *size, dtype=None, requires_grad=False: _new(
        self, np.zeros(_size_args(size)), dtype, requires_grad),
    "new_full": lambda self, size, fill_value, dtype=None, requires_grad=False: _new(
        self, np.full(tuple(size), fill_value), dtype, requires_grad),
    "masked_fill_": _masked_fill_,
    "where": lambda self, condition, other: _ops.where(condition, self, other),
}
