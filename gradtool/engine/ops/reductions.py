"""Reductions: sums, means, extremes, variance, norms, softmax, cumulative sums, boolean
reductions, and sorting (``sort``, ``argsort``, ``topk``)."""

from __future__ import annotations

import builtins
import warnings
from collections import namedtuple

import numpy as np

from ...errors import EngineError
from ..primitive import apply
from ..prims import reduce as reduce_prims
from ..prims import shape as shape_prims
from ..tensor import Tensor, _make, _norm_dim
from .common import _SCALAR_TYPE, _dims, _keepdim, _t, _tensor_of
from .pointwise import maximum, minimum
from .shape import to

_bool = builtins.bool
_int = builtins.int
_float = builtins.float

__all__ = [
    "all", "amax", "amin", "any", "argmax", "argmin", "argsort", "count_nonzero", "cumsum",
    "log_softmax", "logsumexp", "max", "mean", "min", "norm", "prod", "softmax", "sort", "std",
    "sum", "topk", "var", "vector_norm",
]


# ---- reductions -----------------------------------------------------------------------------
def sum(input, dim=None, keepdim=False, *, keepdims=None, axis=None, dtype=None) -> Tensor:
    input = _t(input)
    if dtype is not None:
        input = input.to(dtype)
    dim = axis if dim is None else dim
    keepdim = _keepdim(keepdim, keepdims)
    if isinstance(dim, (tuple, list)) and not dim:
        dim = tuple(range(input.ndim))      # torch: an empty dim list reduces everything
    if dim is None:
        if keepdim:
            return apply(reduce_prims.sum_dim, (input,), {"dim": tuple(range(input.ndim)),
                                               "keepdim": True})
        return apply(reduce_prims.sum_all, (input,))
    return apply(reduce_prims.sum_dim, (input,),
                 {"dim": _dims(dim, input.ndim), "keepdim": keepdim})


def mean(input, dim=None, keepdim=False, *, keepdims=None, axis=None, dtype=None) -> Tensor:
    input = _t(input)
    if dtype is not None:
        input = input.to(dtype)
    if input._data.dtype.kind not in "fc":
        raise EngineError("mean(): could not infer output dtype. Input dtype must be either "
                          f"a floating point or complex dtype. Got: "
                          f"{_SCALAR_TYPE.get(input.dtype.name, input.dtype.name)}")
    dim = axis if dim is None else dim
    keepdim = _keepdim(keepdim, keepdims)
    if dim is None:
        if keepdim:
            return apply(reduce_prims.mean_dim, (input,), {"dim": tuple(range(input.ndim)),
                                                "keepdim": True})
        return apply(reduce_prims.mean_all, (input,))
    return apply(reduce_prims.mean_dim, (input,),
                 {"dim": _dims(dim, input.ndim), "keepdim": keepdim})


#: torch's names for dtypes in error messages (ScalarType names, C type names)
def _reduce_dims(input: Tensor, dim) -> tuple:
    """Dims to reduce: all for None or an empty list (torch), else normalized and sorted."""
    if dim is None or (isinstance(dim, (tuple, list)) and not dim):
        return tuple(range(input.ndim))
    return _dims(dim, input.ndim)


def _one_dim(dim, ndim: int) -> int:
    if isinstance(dim, (tuple, list)):
        if len(dim) != 1:
            raise EngineError(f"expected a single dim, got {list(dim)}")
        dim = dim[0]
    return _norm_dim(_int(dim), ndim)


def _float_input(name: str, input: Tensor) -> None:
    if input._data.dtype.kind not in "fc":
        raise EngineError(f"{name}(): input dtype should be either floating point or complex. "
                          f"Got {input.dtype.name.capitalize()} instead.")


def _nonempty(name: str, input: Tensor, dims: tuple) -> None:
    for d in dims:
        if input.shape[d] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
    if not dims and input._data.size == 0:
        raise EngineError(f"{name}(): Expected reduction dim to be specified for "
                          "input.numel() == 0. Specify the reduction dim with the 'dim' "
                          "argument.")


#: what max(dim) / min(dim) return, as torch.return_types.max
MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])


def _extreme(name, full, per_dim, binary, arg_fn, result, input, dim, keepdim, keepdims,
             axis, other):
    input = _t(input)
    dim = axis if dim is None else dim
    if isinstance(dim, Tensor):
        other, dim = dim, None
    if other is not None:
        return binary(input, other)
    keepdim = _keepdim(keepdim, keepdims)
    if dim is None:
        if input._data.size == 0:
            raise EngineError(f"{name}(): Expected reduction dim to be specified for "
                              "input.numel() == 0. Specify the reduction dim with the 'dim' "
                              "argument.")
        return apply(full, (input,))
    d = _one_dim(dim, input.ndim)
    _nonempty(name, input, (d,))
    values = apply(per_dim, (input,), {"dim": d, "keepdim": keepdim})
    idx = arg_fn(input._data, axis=d)
    if keepdim:
        idx = np.expand_dims(idx, d)
    return result(values, _make(np.asarray(idx, dtype=np.int64)))


def max(input, dim=None, keepdim=False, *, keepdims=None, axis=None, other=None):
    """max(x) -> Tensor; max(x, dim) -> (values, indices); max(x, y) -> maximum(x, y)."""
    return _extreme("max", reduce_prims.max_all, reduce_prims.max_dim, maximum, np.argmax,
                    MaxResult, input, dim, keepdim, keepdims, axis, other)


def min(input, dim=None, keepdim=False, *, keepdims=None, axis=None, other=None):
    """min(x) -> Tensor; min(x, dim) -> (values, indices); min(x, y) -> minimum(x, y)."""
    return _extreme("min", reduce_prims.min_all, reduce_prims.min_dim, minimum, np.argmin,
                    MinResult, input, dim, keepdim, keepdims, axis, other)


def amax(input, dim=(), keepdim=False, *, keepdims=None, axis=None) -> Tensor:
    input = _t(input)
    dims = _reduce_dims(input, axis if axis is not None else dim)
    _nonempty("amax", input, dims)
    return apply(reduce_prims.amax, (input,), {"dim": dims, "keepdim": _keepdim(keepdim, keepdims)})


def amin(input, dim=(), keepdim=False, *, keepdims=None, axis=None) -> Tensor:
    input = _t(input)
    dims = _reduce_dims(input, axis if axis is not None else dim)
    _nonempty("amin", input, dims)
    return apply(reduce_prims.amin, (input,), {"dim": dims, "keepdim": _keepdim(keepdim, keepdims)})


def _arg(np_fn, input, dim, keepdim, keepdims, axis):
    input = _t(input)
    dim = axis if dim is None else dim
    keepdim = _keepdim(keepdim, keepdims)
    data = input._data
    if dim is None and data.size == 0:
        raise IndexError(f"{np_fn.__name__}(): Expected reduction dim to be specified for "
                         "input.numel() == 0.")
    if dim is None:
        out = np_fn(data.reshape(-1))
        if keepdim:
            out = np.reshape(out, (1,) * data.ndim)
    else:
        out = np_fn(data, axis=_norm_dim(_int(dim), data.ndim), keepdims=keepdim)
    return _make(np.asarray(out, dtype=np.int64))


def argmax(input, dim=None, keepdim=False, *, keepdims=None, axis=None) -> Tensor:
    """Indices of the maxima (int64, not differentiable)."""
    return _arg(np.argmax, input, dim, keepdim, keepdims, axis)


def argmin(input, dim=None, keepdim=False, *, keepdims=None, axis=None) -> Tensor:
    return _arg(np.argmin, input, dim, keepdim, keepdims, axis)


def prod(input, dim=None, keepdim=False, *, keepdims=None, axis=None, dtype=None) -> Tensor:
    input = _t(input)
    if dtype is not None:
        input = to(input, dtype)
    dim = axis if dim is None else dim
    if dim is None:
        return apply(reduce_prims.prod_all, (input,))
    return apply(reduce_prims.prod_dim, (input,), {"dim": _one_dim(dim, input.ndim),
                                        "keepdim": _keepdim(keepdim, keepdims)})


def _correction(unbiased, correction, ddof) -> float:
    if correction is not None:
        return correction
    if ddof is not None:
        return ddof
    return 1 if unbiased is None or unbiased else 0


def _var_args(name, input, dim, unbiased, keepdim, correction, keepdims, axis, ddof):
    input = _t(input)
    _float_input(name, input)
    if isinstance(dim, _bool):        # legacy var(x, unbiased)
        dim, unbiased = None, dim
    dim = axis if dim is None else dim
    params = {"dim": _reduce_dims(input, dim),
              "correction": _correction(unbiased, correction, ddof),
              "keepdim": _keepdim(keepdim, keepdims)}
    if reduce_prims.degrees_of_freedom(input.shape, params["dim"], params["correction"]) <= 0:
        warnings.warn(f"{name}(): degrees of freedom is <= 0. Correction should be strictly "
                      "less than the reduction factor (input numel divided by output numel).",
                      UserWarning, stacklevel=3)
    return input, params


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None, keepdims=None,
        axis=None, ddof=None) -> Tensor:
    """Variance; unbiased (correction=1) by default, as torch (numpy's ddof=0 differs)."""
    input, params = _var_args("var", input, dim, unbiased, keepdim, correction, keepdims,
                              axis, ddof)
    return apply(reduce_prims.var, (input,), params)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None, keepdims=None,
        axis=None, ddof=None) -> Tensor:
    """Standard deviation; unbiased (correction=1) by default, as torch."""
    input, params = _var_args("std", input, dim, unbiased, keepdim, correction, keepdims,
                              axis, ddof)
    return apply(reduce_prims.std, (input,), params)


def vector_norm(input, ord=2, dim=None, keepdim=False, *, dtype=None, keepdims=None,
                axis=None) -> Tensor:
    input = _t(input)
    dim = axis if dim is None else dim
    keepdim = _keepdim(keepdim, keepdims)
    _float_input("linalg.vector_norm", input)
    ord = _float(ord)
    return apply(reduce_prims.vector_norm, (input,), {"ord": ord, "dim": _reduce_dims(input, dim),
                                           "keepdim": _bool(keepdim)})


def norm(input, p="fro", dim=None, keepdim=False, dtype=None, *, keepdims=None,
         axis=None) -> Tensor:
    """torch.norm / Tensor.norm: vector norms (p='fro' is the 2-norm of all elements)."""
    if p == "fro" or p is None:
        p = 2
    if isinstance(p, str):
        raise EngineError(f"norm: p='{p}' is not supported (only vector norms)")
    return vector_norm(input, p, axis if dim is None else dim, _keepdim(keepdim, keepdims))


def logsumexp(input, dim, keepdim=False, *, keepdims=None) -> Tensor:
    """log(sum(exp(x))) over dim, without overflow (fused: LogsumexpBackward0)."""
    input = _t(input)
    return apply(reduce_prims.logsumexp, (input,), {"dim": _reduce_dims(input, dim),
                                         "keepdim": _keepdim(keepdim, keepdims)})


def _softmax_dim(dim, ndim: int) -> int:
    if dim is None:     # torch's legacy implicit choice
        dim = 0 if ndim in (0, 1, 3) else 1
    return _norm_dim(_int(dim), ndim)


def softmax(input, dim=None, dtype=None, *, axis=None) -> Tensor:
    """exp(x) / sum(exp(x)) along dim (fused, stable: SoftmaxBackward0)."""
    input = _t(input)
    if dtype is not None:
        input = to(input, dtype)
    dim = _softmax_dim(axis if axis is not None else dim, input.ndim)
    return apply(reduce_prims.softmax, (input,), {"dim": dim})


def log_softmax(input, dim=None, dtype=None, *, axis=None) -> Tensor:
    """x - logsumexp(x) along dim (fused, stable: LogSoftmaxBackward0)."""
    input = _t(input)
    if dtype is not None:
        input = to(input, dtype)
    dim = _softmax_dim(axis if axis is not None else dim, input.ndim)
    return apply(reduce_prims.log_softmax, (input,), {"dim": dim})


def cumsum(input, dim, *, dtype=None, axis=None) -> Tensor:
    input = _t(input)
    if dtype is not None:
        input = to(input, dtype)
    return apply(reduce_prims.cumsum, (input,), {"dim": _norm_dim(_int(axis if axis is not None
                                                            else dim), input.ndim)})


def _reduce_bool(np_fn, input, dim, keepdim) -> Tensor:
    data = _tensor_of(input)._data
    if dim is None:
        return _make(np.asarray(np_fn(data)))
    axes = tuple(_norm_dim(d, data.ndim) for d in (dim if isinstance(dim, (tuple, list))
                                                  else (dim,)))
    return _make(np.asarray(np_fn(data, axis=axes, keepdims=keepdim)))


def all(input, dim=None, keepdim: bool = False) -> Tensor:
    return _reduce_bool(np.all, input, dim, keepdim)


def any(input, dim=None, keepdim: bool = False) -> Tensor:
    return _reduce_bool(np.any, input, dim, keepdim)


def count_nonzero(input, dim=None) -> Tensor:
    data = _tensor_of(input)._data
    return _make(np.asarray(np.count_nonzero(data, axis=dim), dtype=np.int64))


# ---- sorting --------------------------------------------------------------------------------
SortResult = namedtuple("sort", ["values", "indices"])
TopkResult = namedtuple("topk", ["values", "indices"])


def argsort(input, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    data = _tensor_of(input)._data
    if data.ndim == 0:
        return _make(np.zeros((), np.int64))
    axis = _norm_dim(dim, data.ndim)
    if not descending:
        return _make(np.argsort(data, axis=axis, kind="stable").astype(np.int64))
    # descending without negating (uint8 wraps, bool refuses): a stable ascending sort of the
    # reversed axis, read backwards, keeps ties in their order and puts NaN first, as torch
    n = data.shape[axis]
    order = np.argsort(np.flip(data, axis), axis=axis, kind="stable")
    return _make((n - 1 - np.flip(order, axis)).astype(np.int64))


_UNSET = object()


def sort(input, dim: int = -1, descending: bool = False, stable=_UNSET):
    """Values and indices (SortBackward0; SortBackward1 when ``stable=`` is passed, as
    torch's sort.stable overload).  The sort is always stable, as torch's CPU kernel."""
    input = _tensor_of(input)
    indices = argsort(input, dim, descending)
    prim = shape_prims.sort if stable is _UNSET else shape_prims.sort_stable
    return SortResult(_take(prim, input, indices._data, dim), indices)


def _take(prim, input: Tensor, indices: np.ndarray, dim: int) -> Tensor:
    axis = _norm_dim(dim, input.ndim) if input.ndim else 0
    return apply(prim, (input,), {"indices": indices, "dim": axis})


def topk(input, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    input = _tensor_of(input)
    axis = _norm_dim(dim, builtins.max(input.ndim, 1))
    size = input.shape[axis] if input.ndim else 1
    if input._data.dtype == np.bool_:
        raise EngineError("topk does not support bool dtypes on CPU")
    if not 0 <= k <= size:
        raise EngineError("selected index k out of range")
    order = argsort(input, dim, descending=largest)
    indices = _make(np.take(order._data, np.arange(k), axis=axis) if input.ndim
                    else order._data)
    return TopkResult(_take(shape_prims.topk, input, indices._data, dim), indices)
