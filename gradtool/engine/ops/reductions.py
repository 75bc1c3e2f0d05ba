"""Reductions: sums, means, extremes, variance, norms, softmax, cumulative sums, boolean
reductions, and sorting (``sort``, ``argsort``, ``topk``)."""

from __future__ import annotations

import builtins
import warnings
from collections import namedtuple

import numpy as np

from ...errors import EngineError
from .. import dtypes
from ..primitive import apply
from ..prims import reduce as reduce_prims
from ..prims import shape as shape_prims
from ..tensor import Tensor, _make, _norm_dim
from .common import _dims, _keepdim, _t, _tensor_of, lifted, scalar_type_name, size_at
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
                          f"{scalar_type_name(input)}")
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


#: torch's error for an integer input, per op that needs a floating one
_FLOAT_INPUT_ERRORS = {
    "var": "std and var only support floating point and complex dtypes",
    "std": "std and var only support floating point and complex dtypes",
    "linalg.vector_norm": "linalg.vector_norm: Expected a floating point or complex tensor as "
                          "input. Got {dtype}",
}


def _float_input(name: str, input: Tensor) -> None:
    if input._data.dtype.kind not in "fc":
        raise EngineError(_FLOAT_INPUT_ERRORS[name].format(dtype=scalar_type_name(input)))


def _nonempty(name: str, input: Tensor, dims: tuple, given=None) -> None:
    """torch's error for a max/min-like reduction over an empty dim (naming the dim as the
    caller wrote it, if given: amax(x, -1) says -1)."""
    if given is not None and not (isinstance(given, (tuple, list)) and not given):
        given = tuple(given) if isinstance(given, (tuple, list)) else (given,)
        dims = [_norm_dim(_int(d), input.ndim) for d in given]
    else:
        given = dims
    for d, shown in zip(dims, given):
        if size_at(input.shape, d) == 0:
            raise IndexError(f"{name}(): Expected reduction dim {shown} to have non-zero "
                             "size.")
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
    idx = arg_fn(lifted(input._data), axis=d, keepdims=keepdim).reshape(values.shape)
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
    dim = axis if axis is not None else dim
    dims = _reduce_dims(input, dim)
    _nonempty("amax", input, dims, dim)
    return apply(reduce_prims.amax, (input,), {"dim": dims, "keepdim": _keepdim(keepdim, keepdims)})


def amin(input, dim=(), keepdim=False, *, keepdims=None, axis=None) -> Tensor:
    input = _t(input)
    dim = axis if axis is not None else dim
    dims = _reduce_dims(input, dim)
    _nonempty("amin", input, dims, dim)
    return apply(reduce_prims.amin, (input,), {"dim": dims, "keepdim": _keepdim(keepdim, keepdims)})


def _arg(np_fn, input, dim, keepdim, keepdims, axis):
    input = _t(input)
    dim = axis if dim is None else dim
    keepdim = _keepdim(keepdim, keepdims)
    data = input._data
    if data.dtype == np.bool_:
        raise EngineError(f"{np_fn.__name__}(): does not support bool input")
    if dim is None and data.size == 0:
        raise IndexError(f"{np_fn.__name__}(): Expected reduction dim to be specified for "
                         "input.numel() == 0.")
    if dim is None:
        out = np_fn(data.reshape(-1))
        if keepdim:
            out = np.reshape(out, (1,) * data.ndim)
    else:
        d = _norm_dim(_int(dim), data.ndim)
        if size_at(data.shape, d) == 0:
            raise IndexError(f"{np_fn.__name__}(): Expected reduction dim {d} to have "
                             "non-zero size.")
        out = np_fn(lifted(data), axis=d, keepdims=keepdim)
        if not data.ndim:
            out = np.reshape(out, ())
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
    dims = _reduce_dims(input, dim)
    # no dim (or a 0-d input): None, as torch's backward treats that call apart
    params = {"dim": None if dim is None or input.ndim == 0 else dims,
              "correction": _correction(unbiased, correction, ddof),
              "keepdim": _keepdim(keepdim, keepdims)}
    if reduce_prims.degrees_of_freedom(input.shape or (1,), dims or (0,),
                                       params["correction"]) <= 0:
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
    if ord < 0 or ord == np.inf:
        _norm_has_identity(input, ord, dim)
    return apply(reduce_prims.vector_norm, (input,), {"ord": ord, "dim": _reduce_dims(input, dim),
                                           "keepdim": _bool(keepdim)})


def _norm_has_identity(input: Tensor, ord: float, dim) -> None:
    """torch refuses max/min-like norms (inf, negative orders) over an empty dim."""
    if dim is None or (isinstance(dim, (tuple, list)) and not dim):
        if input._data.size == 0:
            raise EngineError(f"linalg.vector_norm cannot compute the {ord:g} norm on an "
                              "empty tensor because the operation does not have an identity")
        return
    for d in dim if isinstance(dim, (tuple, list)) else (dim,):
        if size_at(input.shape, _norm_dim(_int(d), input.ndim)) == 0:
            raise EngineError(f"linalg.vector_norm cannot compute the {ord:g} norm on the "
                              f"dimension {d}because this dimension is empty and the "
                              "operation does not have an identity")


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
    if input._data.dtype.kind not in "fc":      # torch: integers give the default float
        input = _make(input._data.astype(dtypes.DEFAULT_FLOAT.np))
    return apply(reduce_prims.logsumexp, (input,), {"dim": _reduce_dims(input, dim),
                                         "keepdim": _keepdim(keepdim, keepdims)})


def _softmax_dim(dim, ndim: int) -> int:
    if dim is None:     # torch's legacy implicit choice
        dim = 0 if ndim in (0, 1, 3) else 1
    return _norm_dim(_int(dim), ndim)


def _softmax_input(name: str, input: Tensor, dim: int) -> None:
    """torch's NotImplementedError for a softmax of an integer tensor (its kernel's name)."""
    if input._data.dtype.kind not in "fc":
        kernel = "lastdim_kernel_impl" if dim == builtins.max(input.ndim - 1, 0) \
            else "kernel_impl"
        raise NotImplementedError(f'"{name}_{kernel}" not implemented for '
                                  f"'{scalar_type_name(input)}'")


def softmax(input, dim=None, dtype=None, *, axis=None) -> Tensor:
    """exp(x) / sum(exp(x)) along dim (fused, stable: SoftmaxBackward0)."""
    input = _t(input)
    if dtype is not None:
        input = to(input, dtype)
    dim = _softmax_dim(axis if axis is not None else dim, input.ndim)
    _softmax_input("softmax", input, dim)
    return apply(reduce_prims.softmax, (input,), {"dim": dim})


def log_softmax(input, dim=None, dtype=None, *, axis=None) -> Tensor:
    """x - logsumexp(x) along dim (fused, stable: LogSoftmaxBackward0)."""
    input = _t(input)
    if dtype is not None:
        input = to(input, dtype)
    dim = _softmax_dim(axis if axis is not None else dim, input.ndim)
    _softmax_input("log_softmax", input, dim)
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
    axes = _reduce_dims(_make(data), dim)
    out = np_fn(lifted(data), axis=axes, keepdims=keepdim)
    return _make(np.asarray(out).reshape(()) if not data.ndim else np.asarray(out))


def all(input, dim=None, keepdim: bool = False) -> Tensor:
    return _reduce_bool(np.all, input, dim, keepdim)


def any(input, dim=None, keepdim: bool = False) -> Tensor:
    return _reduce_bool(np.any, input, dim, keepdim)


def count_nonzero(input, dim=None) -> Tensor:
    data = _tensor_of(input)._data
    if dim is None:
        return _make(np.asarray(np.count_nonzero(data), dtype=np.int64))
    axes = _reduce_dims(_make(data), dim)
    out = np.asarray(np.count_nonzero(lifted(data), axis=axes), dtype=np.int64)
    return _make(out.reshape(()) if not data.ndim else out)


# ---- sorting --------------------------------------------------------------------------------
SortResult = namedtuple("sort", ["values", "indices"])
TopkResult = namedtuple("topk", ["values", "indices"])


def argsort(input, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    data = _tensor_of(input)._data
    axis = _norm_dim(_int(dim), data.ndim)
    if data.ndim == 0:
        return _make(np.zeros((), np.int64))
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
    _norm_dim(_int(dim), input.ndim)
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
    if not 0 <= k <= size:          # checked first, as torch
        raise EngineError("selected index k out of range")
    if input._data.dtype == np.bool_:
        raise EngineError("topk does not support bool dtypes on CPU")
    order = argsort(input, dim, descending=largest)
    indices = _make(np.take(order._data, np.arange(k), axis=axis) if input.ndim
                    else order._data)
    return TopkResult(_take(shape_prims.topk, input, indices._data, dim), indices)
