"""Public operations: functions (``gt.exp``), operators and Tensor methods.

Each function normalizes its arguments (dims, shapes, scalars) and calls a primitive from
the op table; composite operations are written in terms of primitives and get their
derivatives for free.  ``BUILTINS`` and ``TENSOR_METHODS`` are what the spec language may
call.

Composites are decomposed the way torch decomposes them, so a graph has the same backward
nodes as torch's (``tests/engine/test_torch_crosscheck.py`` compares them): indexing is one
node per basic step then one IndexBackward0, matmul folds or batches as torch's
``_matmul_impl`` does, einsum follows torch's contraction (diagonal, permute, bmm), and
reshape is a view, an alias or a copy depending on the memory layout, which the primitives
keep as torch's kernels do (where numpy's differs and it matters: reductions, softmax,
cat/stack, flip).
"""

from __future__ import annotations

import builtins
import string
import warnings
import weakref
from collections import namedtuple
from types import SimpleNamespace

import numpy as np

from ..errors import EngineError, ShapeError
from . import dtypes
from .backend import quiet
from .dtypes import promoted
from .grad_mode import MODE, no_grad
from .limits import check_new, track
from .prims import elementwise as E
from .prims import linalg as L
from .prims import loss as LS
from .prims import reduce as R
from .prims import shape as S
from .primitive import apply
from .tensor import (FACTORY_REQUIRES_GRAD, Tensor, _make, _norm_dim, _to_array, bump_version,
                     version_counter)

_bool = builtins.bool
_int = builtins.int
_float = builtins.float
_sum = builtins.sum


def _t(x) -> Tensor:
    """x as a Tensor (constants become tensors that do not require grad)."""
    if isinstance(x, Tensor):
        return x
    return _make(_to_array(x, None))


def _dims(dim, ndim: int) -> tuple:
    if isinstance(dim, (list, tuple)):
        return tuple(sorted({_norm_dim(_int(d), ndim) for d in dim}))
    return (_norm_dim(_int(dim), ndim),)


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = shape[0]
    return tuple(_int(s) for s in shape)


def factory_shape(name: str, size) -> tuple:
    """The size of a new tensor; a non-integer is refused with torch's TypeError (numpy
    truncated 2.5 to 2)."""
    if len(size) == 1 and isinstance(size[0], (list, tuple)):
        size = size[0]
    shape = []
    for position, s in enumerate(size):
        if isinstance(s, Tensor) and s._data.ndim == 0 and s._data.dtype.kind in "iu":
            s = s._data.item()
        if isinstance(s, _bool) or not isinstance(s, (_int, np.integer)):
            raise TypeError(f"{name}(): argument 'size' failed to unpack the object at pos "
                            f"{position + 1} with error \"type must be tuple of ints,but got "
                            f"{type(s).__name__}\"")
        shape.append(_int(s))
    # a negative dimension stays numpy's ValueError: the spec language's messages show it
    return tuple(shape)


def _keepdim(keepdim, keepdims):
    return _bool(keepdim if keepdims is None else keepdims)


def _share_version(out: Tensor, base: Tensor) -> Tensor:
    """Views share their base's version counter, as in torch."""
    if out._data.base is not None:
        out._vc = version_counter(base)
        out._set("base", base)
        if base._rg:
            # the root keeps its live views: an in-place op through one rebases them all
            root = base
            while root._get("base") is not None:
                root = root._get("base")
            # weak references in a list (a WeakSet costs 2 us to create, per leaf viewed);
            # dead ones are dropped whenever the list reaches a power of two: amortized O(1)
            # and at most twice the live views
            views = root._get("views")
            if views is None:
                views = []
                root._set("views", views)
            elif len(views) >= 8 and not len(views) & (len(views) - 1):
                views[:] = [ref for ref in views if ref() is not None]
            views.append(weakref.ref(out))
    return out


# ---- arithmetic -----------------------------------------------------------------------------
def add(input, other, *, alpha=1) -> Tensor:
    if alpha != 1:
        return apply(E.add, (input, other), {"alpha": alpha})
    return apply(E.add, (input, other))


def sub(input, other, *, alpha=1) -> Tensor:
    if not isinstance(input, Tensor):
        if alpha == 1:
            return apply(E.rsub, (other, input))
        input = _t(input)
    if alpha != 1:
        return apply(E.sub, (input, other), {"alpha": alpha})
    return apply(E.sub, (input, other))


def rsub(input, other, *, alpha=1) -> Tensor:
    """other - alpha * input (torch.rsub)."""
    return sub(other, input, alpha=alpha) if alpha != 1 else apply(E.rsub, (input, other))


def mul(input, other) -> Tensor:
    return apply(E.mul, (input, other))


def div(input, other, *, rounding_mode=None) -> Tensor:
    if rounding_mode is not None:
        if rounding_mode not in ("trunc", "floor"):
            raise EngineError("div expected rounding_mode to be one of None, 'trunc', or "
                              f"'floor' but found '{rounding_mode}'")
        a, b = _t(input)._data, _t(other)._data
        if a.dtype.kind in "iub" and b.dtype.kind in "iub":
            # integer division stays integral (torch), and dividing by zero is an error
            if not np.all(b):
                raise EngineError("ZeroDivisionError")
            quotient = np.floor_divide(a, b)
            if rounding_mode == "trunc":
                quotient = quotient + ((np.remainder(a, b) != 0) & ((a < 0) != (b < 0)))
            return _make(promoted(np.asarray(quotient), (a, b)))
        with np.errstate(divide="ignore", invalid="ignore"):
            data = np.true_divide(a, b)
        return _make(np.floor(data) if rounding_mode == "floor" else np.trunc(data))
    if not isinstance(input, Tensor):
        return mul(reciprocal(other), input)
    return apply(E.div, (input, other))


true_divide = divide = div
multiply = mul
subtract = sub


def neg(input) -> Tensor:
    if isinstance(input, Tensor) and input._data.dtype == np.bool_:
        raise EngineError("Negation, the `-` operator, on a bool tensor is not supported. If "
                          "you are trying to invert a mask, use the `~` or `logical_not()` "
                          "operator instead.")
    return apply(E.neg, (input,))


negative = neg


def pow(input, exponent) -> Tensor:
    if not isinstance(input, Tensor):
        return apply(E.rpow, (exponent,), {"base": input})
    if isinstance(exponent, Tensor):
        return apply(E.pow, (input, exponent))
    if isinstance(exponent, (np.ndarray, list, tuple)):
        return apply(E.pow, (input, _t(exponent)))
    if isinstance(exponent, _float) and exponent.is_integer():
        exponent = _int(exponent) if input._data.dtype.kind in "fc" else exponent
    if isinstance(exponent, _int) and input._data.dtype.kind in "iu" and exponent < 0:
        raise EngineError("Integers to negative integer powers are not allowed.")
    return apply(E.pow_scalar, (input,), {"exponent": exponent})


def square(input) -> Tensor:
    return pow(input, 2)


def _unary(prim):
    def op(input) -> Tensor:
        return apply(prim, (input,))
    op.__name__ = prim.name
    op.__doc__ = f"Elementwise {prim.name} (backward node {prim.node_name})."
    return op


exp = _unary(E.exp)
log = _unary(E.log)
log1p = _unary(E.log1p)
expm1 = _unary(E.expm1)
sqrt = _unary(E.sqrt)
sin = _unary(E.sin)
cos = _unary(E.cos)
tan = _unary(E.tan)
tanh = _unary(E.tanh)
sinh = _unary(E.sinh)
cosh = _unary(E.cosh)
arcsin = asin = _unary(E.arcsin)
arccos = acos = _unary(E.arccos)
arctan = atan = _unary(E.arctan)
sigmoid = _unary(E.sigmoid)
relu = _unary(E.relu)
abs = absolute = _unary(E.abs)
sign = _unary(E.sign)
reciprocal = _unary(E.reciprocal)


def arctan2(input, other) -> Tensor:
    return apply(E.arctan2, (input, other))


atan2 = arctan2


rsqrt = _unary(E.rsqrt)


log2 = _unary(E.log2)
log10 = _unary(E.log10)


def remainder(input, other) -> Tensor:
    """input - floor(input / other) * other: the sign of the divisor (python's %)."""
    divisor = other._data if isinstance(other, Tensor) else np.asarray(other)
    if divisor.dtype.kind in "iub" and _t(input)._data.dtype.kind in "iub" \
            and not np.all(divisor):
        raise EngineError("ZeroDivisionError")
    if isinstance(input, Tensor) and not isinstance(other, Tensor):
        return apply(E.remainder_scalar, (input,), {"other": other})
    return apply(E.remainder, (input, other))


def softplus(input, beta=1.0, threshold=20.0) -> Tensor:
    return apply(E.softplus, (input,), {"beta": _float(beta), "threshold": _float(threshold)})


def clamp(input, min=None, max=None) -> Tensor:
    """torch.clamp: python bounds record ClampBackward1, tensor bounds ClampBackward0."""
    if min is None and max is None:
        raise EngineError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        return apply(E.clamp_tensor, (input, min, max))
    return apply(E.clamp, (input,), {"min": min, "max": max})


clip = clamp


def clamp_min(input, min) -> Tensor:
    if isinstance(min, Tensor):
        return apply(E.clamp_min_tensor, (input, min))
    return apply(E.REGISTRY["clamp_min"], (input,), {"min": min, "max": None})


def clamp_max(input, max) -> Tensor:
    if isinstance(max, Tensor):
        return apply(E.clamp_max_tensor, (input, max))
    return apply(E.REGISTRY["clamp_max"], (input,), {"min": None, "max": max})


def maximum(input, other) -> Tensor:
    return apply(E.maximum, (input, other))


def minimum(input, other) -> Tensor:
    return apply(E.minimum, (input, other))


def where(condition, input=None, other=None) -> Tensor:
    if input is None and other is None:
        return tuple(_make(i) for i in np.nonzero(_t(condition)._data))
    cond = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    return apply(E.where, (cond.astype(_bool), input, other))


def masked_fill(input, mask, value) -> Tensor:
    input = _t(input)
    mask = _t(mask)._data
    if mask.dtype != np.bool_:
        raise EngineError(f"masked_fill_ only supports boolean masks, but got mask with dtype "
                          f"{_C_TYPE.get(mask.dtype.name, mask.dtype.name)}")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise EngineError("masked_fill_ only supports a 0-dimensional value tensor, but "
                              f"got tensor with {value.ndim} dimension(s).")
        return apply(E.masked_fill_tensor, (input, mask, value))
    return apply(E.masked_fill, (input, mask), {"value": value})


def _comparison(prim):
    def op(input, other) -> Tensor:
        return apply(prim, (input, other))
    op.__name__ = prim.name
    return op


eq = _comparison(E.eq)
ne = _comparison(E.ne)
lt = less = _comparison(E.lt)
le = less_equal = _comparison(E.le)
gt = greater = _comparison(E.gt)
ge = greater_equal = _comparison(E.ge)
logical_and = _comparison(E.logical_and)
logical_or = _comparison(E.logical_or)


def logical_not(input) -> Tensor:
    return apply(E.logical_not, (input,))


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
            return apply(R.sum_dim, (input,), {"dim": tuple(range(input.ndim)),
                                               "keepdim": True})
        return apply(R.sum_all, (input,))
    return apply(R.sum_dim, (input,), {"dim": _dims(dim, input.ndim), "keepdim": keepdim})


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
            return apply(R.mean_dim, (input,), {"dim": tuple(range(input.ndim)),
                                                "keepdim": True})
        return apply(R.mean_all, (input,))
    return apply(R.mean_dim, (input,), {"dim": _dims(dim, input.ndim), "keepdim": keepdim})


#: torch's names for dtypes in error messages (ScalarType names, C type names)
_SCALAR_TYPE = {"int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char",
                "uint8": "Byte", "bool": "Bool", "float64": "Double", "float32": "Float"}
_C_TYPE = {"int64": "long int", "int32": "int", "int16": "short int", "int8": "signed char",
           "uint8": "unsigned char", "float64": "double", "float32": "float"}


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
    return _extreme("max", R.max_all, R.max_dim, maximum, np.argmax, MaxResult, input, dim,
                    keepdim, keepdims, axis, other)


def min(input, dim=None, keepdim=False, *, keepdims=None, axis=None, other=None):
    """min(x) -> Tensor; min(x, dim) -> (values, indices); min(x, y) -> minimum(x, y)."""
    return _extreme("min", R.min_all, R.min_dim, minimum, np.argmin, MinResult, input, dim,
                    keepdim, keepdims, axis, other)


def amax(input, dim=(), keepdim=False, *, keepdims=None, axis=None) -> Tensor:
    input = _t(input)
    dims = _reduce_dims(input, axis if axis is not None else dim)
    _nonempty("amax", input, dims)
    return apply(R.amax, (input,), {"dim": dims, "keepdim": _keepdim(keepdim, keepdims)})


def amin(input, dim=(), keepdim=False, *, keepdims=None, axis=None) -> Tensor:
    input = _t(input)
    dims = _reduce_dims(input, axis if axis is not None else dim)
    _nonempty("amin", input, dims)
    return apply(R.amin, (input,), {"dim": dims, "keepdim": _keepdim(keepdim, keepdims)})


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
        return apply(R.prod_all, (input,))
    return apply(R.prod_dim, (input,), {"dim": _one_dim(dim, input.ndim),
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
    if R.degrees_of_freedom(input.shape, params["dim"], params["correction"]) <= 0:
        warnings.warn(f"{name}(): degrees of freedom is <= 0. Correction should be strictly "
                      "less than the reduction factor (input numel divided by output numel).",
                      UserWarning, stacklevel=3)
    return input, params


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None, keepdims=None,
        axis=None, ddof=None) -> Tensor:
    """Variance; unbiased (correction=1) by default, as torch (numpy's ddof=0 differs)."""
    input, params = _var_args("var", input, dim, unbiased, keepdim, correction, keepdims,
                              axis, ddof)
    return apply(R.var, (input,), params)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None, keepdims=None,
        axis=None, ddof=None) -> Tensor:
    """Standard deviation; unbiased (correction=1) by default, as torch."""
    input, params = _var_args("std", input, dim, unbiased, keepdim, correction, keepdims,
                              axis, ddof)
    return apply(R.std, (input,), params)


def vector_norm(input, ord=2, dim=None, keepdim=False, *, dtype=None, keepdims=None,
                axis=None) -> Tensor:
    input = _t(input)
    dim = axis if dim is None else dim
    keepdim = _keepdim(keepdim, keepdims)
    _float_input("linalg.vector_norm", input)
    ord = _float(ord)
    return apply(R.vector_norm, (input,), {"ord": ord, "dim": _reduce_dims(input, dim),
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
    return apply(R.logsumexp, (input,), {"dim": _reduce_dims(input, dim),
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
    return apply(R.softmax, (input,), {"dim": dim})


def log_softmax(input, dim=None, dtype=None, *, axis=None) -> Tensor:
    """x - logsumexp(x) along dim (fused, stable: LogSoftmaxBackward0)."""
    input = _t(input)
    if dtype is not None:
        input = to(input, dtype)
    dim = _softmax_dim(axis if axis is not None else dim, input.ndim)
    return apply(R.log_softmax, (input,), {"dim": dim})


def cumsum(input, dim, *, dtype=None, axis=None) -> Tensor:
    input = _t(input)
    if dtype is not None:
        input = to(input, dtype)
    return apply(R.cumsum, (input,), {"dim": _norm_dim(_int(axis if axis is not None
                                                            else dim), input.ndim)})


# ---- losses (gt.nn.functional exposes these) ----------------------------------------------
def _reduction(reduction: str) -> str:
    if reduction not in LS.REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _target_array(target) -> np.ndarray:
    data = target._data if isinstance(target, Tensor) else np.asarray(target)
    if data.dtype.kind not in "iu":
        raise EngineError(f"expected scalar type Long but found "
                          f"{dtypes.from_np(data.dtype).name.capitalize()}")
    return data.astype(np.int64, copy=False)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean") -> Tensor:
    """Negative log likelihood of class-index targets (NllLossBackward0)."""
    input = _t(input)
    target = _target_array(target)
    expected = input.shape[:1] + input.shape[2:] if input.ndim >= 2 else ()
    if input.ndim == 0 or target.shape != expected:
        if input.ndim >= 2 and target.ndim >= 1 and target.shape[0] != input.shape[0]:
            raise ShapeError(f"Expected input batch_size ({input.shape[0]}) to match target "
                             f"batch_size ({target.shape[0]}).")
        raise ShapeError(f"nll_loss: target shape {list(target.shape)} does not match input "
                         f"shape {list(input.shape)}")
    classes = input.shape[1 if input.ndim >= 2 else 0]
    bad = (target != ignore_index) & ((target < 0) | (target >= classes))
    if bad.any():
        raise IndexError(f"Target {int(target[bad].flat[0])} is out of bounds.")
    w = None if weight is None else _t(weight)._data
    return apply(LS.nll_loss, (input, target), {"reduction": _reduction(reduction),
                                                "weight": w, "ignore_index": ignore_index})


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0) -> Tensor:
    """log_softmax over the class dim, then nll_loss (torch records the same two nodes).
    Targets are class indices or class probabilities (same shape as input)."""
    input = _t(input)
    logp = log_softmax(input, 1 if input.ndim >= 2 else 0)
    if isinstance(target, Tensor) and target._data.dtype.kind in "fc":
        if target.shape != input.shape:
            raise ShapeError("cross_entropy: probability targets must have the input's shape")
        if label_smoothing:
            classes = input.shape[1 if input.ndim >= 2 else 0]
            target = target * (1 - label_smoothing) + label_smoothing / classes
        terms = logp * target if weight is None else logp * target * _shape_weight(
            _t(weight), input.ndim)
        loss = neg(sum(terms, 1 if input.ndim >= 2 else 0))
        return _apply_reduction(loss, reduction)
    nll = nll_loss(logp, target, weight, ignore_index, reduction)
    if not label_smoothing:
        return nll
    if weight is not None:
        raise EngineError("cross_entropy: label_smoothing with class weights is not supported")
    # (1 - eps) nll + eps * mean over classes of -log p
    target_arr = _target_array(target)
    keep = _make(np.asarray(target_arr != ignore_index, dtype=input._data.dtype))
    smooth = neg(mean(logp, 1 if input.ndim >= 2 else 0)) * keep
    if reduction == "mean":
        smooth = sum(smooth) / _float(np.sum(keep._data))
    else:
        smooth = _apply_reduction(smooth, reduction)
    return nll * (1 - label_smoothing) + smooth * label_smoothing


def _shape_weight(weight: Tensor, ndim: int) -> Tensor:
    return reshape(weight, (-1,) + (1,) * (ndim - 2)) if ndim >= 2 else weight


def _apply_reduction(loss: Tensor, reduction: str) -> Tensor:
    reduction = _reduction(reduction)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return sum(loss)
    return mean(loss)


def _loss_operands(input, target):
    input, target = _t(input), _t(target)
    if input.shape != target.shape:
        import warnings
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input "
                      f"size ({input.shape}). This will likely lead to incorrect results due "
                      "to broadcasting. Please ensure they have the same size.",
                      UserWarning, stacklevel=3)
    return input, target


def mse_loss(input, target, reduction="mean") -> Tensor:
    """Mean squared error (fused: MseLossBackward0)."""
    input, target = _loss_operands(input, target)
    return apply(LS.mse_loss, (input, target), {"reduction": _reduction(reduction)})


def l1_loss(input, target, reduction="mean") -> Tensor:
    """Mean absolute error: abs(input - target), reduced (composite, as torch records it)."""
    input, target = _loss_operands(input, target)
    return _apply_reduction(abs(sub(input, target)), reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean",
                                     pos_weight=None) -> Tensor:
    """Sigmoid + binary cross entropy in one stable primitive."""
    input, target = _loss_operands(input, target)
    w = None if weight is None else _t(weight)._data
    pw = None if pos_weight is None else _t(pos_weight)._data
    return apply(LS.bce_with_logits, (input, target),
                 {"reduction": _reduction(reduction), "weight": w, "pos_weight": pw})


# ---- shapes ---------------------------------------------------------------------------------
def _resolve_shape(shape: tuple, size: int) -> tuple:
    if -1 in shape:
        known = 1
        for s in shape:
            if s != -1:
                known *= s
        if shape.count(-1) > 1:
            raise EngineError("only one dimension can be inferred")
        if known == 0 or size % known:
            raise EngineError(f"shape '{list(shape)}' is invalid for input of size {size}")
        shape = tuple(size // known if s == -1 else s for s in shape)
    n = 1
    for s in shape:
        n *= s
    if n != size:
        raise EngineError(f"shape '{list(shape)}' is invalid for input of size {size}")
    return shape


def _viewable(data: np.ndarray, shape: tuple) -> bool:
    try:
        np.reshape(data, shape, copy=False)
    except ValueError:
        return False
    return True


def reshape(input, *shape) -> Tensor:
    """A view when the memory layout allows one, else a copy, named as torch names them:
    ViewBackward0 (contiguous), ReshapeAliasBackward0 (strided view) or CloneBackward0 +
    UnsafeViewBackward0 (copy)."""
    input = _t(input)
    shape = _resolve_shape(_shape_arg(shape), input._data.size)
    data = input._data
    if data.flags.c_contiguous:
        return _share_version(apply(S.reshape, (input,), {"shape": shape}), input)
    if _viewable(data, shape):
        return _share_version(apply(S.reshape_alias, (input,), {"shape": shape}), input)
    return _unsafe_view(clone(input), shape)


def _unsafe_view(input: Tensor, shape: tuple) -> Tensor:
    return apply(S.unsafe_view, (input,), {"shape": shape})


def view(input, *shape) -> Tensor:
    input = _t(input)
    shape = _resolve_shape(_shape_arg(shape), input._data.size)
    if not input._data.flags.c_contiguous and not _viewable(input._data, shape):
        raise EngineError("view size is not compatible with input tensor's size and stride (at "
                          "least one dimension spans across two contiguous subspaces). Use "
                          ".reshape(...) instead.")
    return _share_version(apply(S.reshape, (input,), {"shape": shape}), input)


def flatten(input, start_dim=0, end_dim=-1) -> Tensor:
    input = _t(input)
    if input.ndim == 0:
        return reshape(input, 1)
    s = _norm_dim(start_dim, input.ndim)
    e = _norm_dim(end_dim, input.ndim)
    if s == e:
        return input
    shape = input.shape
    return reshape(input, shape[:s] + (-1,) + shape[e + 1:])


def ravel(input) -> Tensor:
    return reshape(input, -1)


def transpose(input, dim0=None, dim1=None) -> Tensor:
    """Swap two dims (torch); with no dims, reverse them all (numpy's transpose)."""
    input = _t(input)
    if dim0 is None and dim1 is None:
        return _T(input)
    nd = input.ndim
    d0, d1 = _norm_dim(dim0, nd), _norm_dim(dim1, nd)
    return _share_version(apply(S.transpose, (input,), {"dim0": d0, "dim1": d1}), input)


swapaxes = swapdims = transpose


def t(input) -> Tensor:
    input = _t(input)
    if input.ndim > 2:
        raise EngineError(f"t() expects a tensor with <= 2 dimensions, but self is "
                          f"{input.ndim}D")
    return _share_version(apply(S.t, (input,)), input)


def permute(input, *dims) -> Tensor:
    input = _t(input)
    dims = _shape_arg(dims)
    if len(dims) != input.ndim:
        raise EngineError(f"permute(sparse_coo): number of dimensions in the tensor input "
                          f"does not match the length of the desired ordering of dimensions "
                          f"i.e. input.dim() = {input.ndim} is not equal to len(dims) = "
                          f"{len(dims)}")
    dims = tuple(_norm_dim(d, input.ndim) for d in dims)
    if len(set(dims)) != len(dims):
        raise EngineError("permute(): duplicate dims are not allowed.")
    return _share_version(apply(S.permute, (input,), {"dims": dims}), input)


def _T(self) -> Tensor:
    if self.ndim < 2:
        return self
    return permute(self, tuple(range(self.ndim - 1, -1, -1)))


def _mT(self) -> Tensor:
    return transpose(self, -2, -1)


def broadcast_to(input, *shape) -> Tensor:
    input = _t(input)
    shape = _shape_arg(shape)
    nd_new = len(shape) - input.ndim
    if nd_new < 0:
        raise EngineError(f"expand: the number of sizes provided ({len(shape)}) must be "
                          f"greater or equal to the number of dimensions in the tensor "
                          f"({input.ndim})")
    shape = tuple(input.shape[i - nd_new] if s == -1 else s for i, s in enumerate(shape))
    for i, n in enumerate(input.shape):
        if n != 1 and n != shape[i + nd_new]:
            raise ShapeError(f"The expanded size of the tensor ({shape[i + nd_new]}) must match "
                             f"the existing size ({n}) at non-singleton dimension "
                             f"{i + nd_new}.  Target sizes: {list(shape)}.  Tensor sizes: "
                             f"{list(input.shape)}")
    return _share_version(apply(S.expand, (input,), {"shape": shape}), input)


expand = broadcast_to


def expand_as(input, other) -> Tensor:
    return broadcast_to(input, other.shape)


def squeeze(input, dim=None) -> Tensor:
    input = _t(input)
    if dim is None:
        return _share_version(apply(S.squeeze, (input,)), input)
    if isinstance(dim, (tuple, list)):
        dims = _dims(dim, input.ndim)
        return _share_version(apply(S.squeeze_dims, (input,), {"dims": dims}), input)
    d = _norm_dim(dim, input.ndim)
    return _share_version(apply(S.squeeze_dim, (input,), {"dim": d}), input)


def unsqueeze(input, dim) -> Tensor:
    input = _t(input)
    d = _norm_dim(dim, input.ndim + 1)
    return _share_version(apply(S.unsqueeze, (input,), {"dim": d}), input)


expand_dims = unsqueeze


def clone(input, *, memory_format=None) -> Tensor:
    return apply(S.clone, (input,))


def to(input, *args, dtype=None, **kwargs) -> Tensor:
    for a in args:
        if isinstance(a, (dtypes.dtype, np.dtype, type)) or a in dtypes.BY_NAME:
            dtype = a
    if dtype is None:
        return input
    np_dtype = dtypes.to_np(dtype)
    if input._data.dtype == np_dtype:
        return input
    return apply(S.to_dtype, (input,), {"dtype": np_dtype})


def _index_key(key):
    """Normalize an index: Tensors and lists to arrays; bool masks stay masks."""
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    for k in key:
        if isinstance(k, Tensor):
            k = k._data
        elif isinstance(k, list):
            k = np.asarray(k)
        if isinstance(k, np.ndarray) and k.dtype.kind not in "iub":
            raise IndexError("tensors used as indices must be long, int, byte or bool "
                             "tensors")
        out.append(k)
    return tuple(out)


def _is_int(k) -> bool:
    return isinstance(k, (_int, np.integer)) and not isinstance(k, (_bool, np.bool_)) or (
        isinstance(k, np.ndarray) and k.ndim == 0 and k.dtype.kind in "iu")


def _consumed(k) -> int:
    if k is None or k is Ellipsis:
        return 0
    if isinstance(k, np.ndarray) and k.dtype == np.bool_:
        return k.ndim
    if isinstance(k, (_bool, np.bool_)):
        return 0
    return 1


_builtins_max = builtins.max
_builtins_min = builtins.min


def _select(input: Tensor, dim: int, index: int) -> Tensor:
    n = input.shape[dim]
    if not -n <= index < n:
        raise IndexError(f"index {index} is out of bounds for dimension {dim} with size {n}")
    key = (slice(None),) * dim + (index % n,)
    return _share_version(apply(S.select, (input,), {"key": key, "out_ndim": input.ndim - 1}),
                          input)


def _slice(input: Tensor, dim: int, k: slice) -> Tensor:
    if k.step is not None and k.step <= 0:
        raise ValueError("step must be greater than zero")
    start, stop, step = k.indices(input.shape[dim])
    stop = _builtins_max(stop, start)
    key = (slice(None),) * dim + (slice(start, stop, step),)
    return _share_version(apply(S.slice_, (input,), {"key": key, "out_ndim": input.ndim}),
                          input)


def _full_slice(k: slice, n: int) -> bool:
    """Whether torch skips this slice in a tuple index: start 0 or None, step 1 or None and
    a stop past the end, as written (x[-3:] on a 3-long dim is still recorded)."""
    return k.start in (None, 0) and k.step in (None, 1) and (k.stop is None or k.stop >= n)


def getitem(input, key) -> Tensor:
    """Indexing as torch records it: ints select, slices slice, None unsqueezes (one node per
    step, views), then one IndexBackward0 for integer-array and boolean-mask indices."""
    input = _t(input)
    if input._data.ndim == 0 and isinstance(key, (slice, _int, Tensor)) \
            and not isinstance(key, _bool):
        if isinstance(key, slice):
            raise IndexError("slice() cannot be applied to a 0-dim tensor.")
        if not isinstance(key, Tensor) or key._data.dtype != np.bool_:
            raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python "
                             "or `tensor.item<T>()` in C++ to convert a 0-dim tensor to a "
                             "number")
    if isinstance(key, slice):
        return _slice(input, 0, key)          # torch records even x[:]
    key = _index_key(key)
    n_used = _sum(_consumed(k) for k in key)
    if n_used > input.ndim:
        raise IndexError(f"too many indices for tensor of dimension {input.ndim}")
    out = input
    dim = 0
    advanced = []
    has_advanced = False
    for k in key:
        if k is None:
            out = unsqueeze(out, dim)
            advanced.append(slice(None))
            dim += 1
        elif k is Ellipsis:
            n = input.ndim - n_used
            advanced.extend([slice(None)] * n)
            dim += n
        elif _is_int(k):
            out = _select(out, dim, _int(k))
        elif isinstance(k, slice):
            if not _full_slice(k, out.shape[dim]):
                out = _slice(out, dim, k)
            advanced.append(slice(None))
            dim += 1
        elif isinstance(k, (_bool, np.bool_)) or (isinstance(k, np.ndarray)
                                                  and k.dtype == np.bool_ and k.ndim == 0):
            k = _bool(k)
            out = unsqueeze(out, dim)
            advanced.append(np.array([0]) if k else np.zeros(0, dtype=np.int64))
            has_advanced = True
            dim += 1
        else:
            advanced.append(k)
            has_advanced = True
            dim += _consumed(k)
    if has_advanced:
        index_key = tuple(advanced)
        params = {"key": index_key, "out_ndim": None}
        try:
            result = apply(S.index, (out,), params)
        except IndexError as exc:
            raise IndexError(str(exc).split(": ", 1)[-1]) from None
        params["out_ndim"] = result.ndim
        return result
    if out is input:
        return _share_version(apply(S.alias, (input,)), input)
    return out


def index_const(input, key) -> Tensor:
    """input[key] as one IndexBackward0 node (used by backward rules)."""
    input = _t(input)
    params = {"key": key, "out_ndim": None}
    result = apply(S.index, (input,), params)
    params["out_ndim"] = result.ndim
    return result


def cat(tensors, dim=0, *, axis=None) -> Tensor:
    tensors = [_t(x) for x in tensors]
    if not tensors:
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    dim = _norm_dim(axis if axis is not None else dim, tensors[0].ndim)
    first = tensors[0].shape
    for k, x in enumerate(tensors[1:], 1):
        if x.ndim != len(first):
            raise ShapeError(f"Tensors must have same number of dimensions: got {len(first)} and "
                             f"{x.ndim}")
        for d, (a, b) in enumerate(zip(first, x.shape)):
            if d != dim and a != b:
                raise ShapeError(f"Sizes of tensors must match except in dimension {dim}. "
                                 f"Expected size {a} but got size {b} for tensor number {k} in "
                                 "the list.")
    return apply(S.cat, tuple(tensors), {"dim": dim})


concatenate = concat = cat


def stack(tensors, dim=0, *, axis=None) -> Tensor:
    tensors = [_t(x) for x in tensors]
    if not tensors:
        raise EngineError("stack expects a non-empty TensorList")
    dim = _norm_dim(axis if axis is not None else dim, tensors[0].ndim + 1)
    for k, x in enumerate(tensors[1:], 1):
        if x.shape != tensors[0].shape:
            raise ShapeError(f"stack expects each tensor to be equal size, but got "
                             f"{list(tensors[0].shape)} at entry 0 and {list(x.shape)} at entry "
                             f"{k}")
    return apply(S.stack, tuple(tensors), {"dim": dim})


def split(tensor, split_size_or_sections, dim=0) -> tuple:
    """Pieces of ``split_size`` along dim (the last may be smaller; SplitBackward0), or of
    the given sizes (SplitWithSizesBackward0).  All pieces share one backward node."""
    tensor = _t(tensor)
    d = _norm_dim(_int(dim), tensor.ndim)
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sections = tuple(_int(k) for k in split_size_or_sections)
        if _sum(sections) != n or _builtins_min(sections, default=0) < 0:
            raise EngineError(f"split_with_sizes expects split_sizes to sum exactly to {n} "
                              f"(input tensor's size at dimension {d}), but got split_sizes="
                              f"{list(sections)}")
        prim = S.split_with_sizes
    else:
        size = _int(split_size_or_sections)
        if size <= 0 and not (size == 0 and n == 0):
            raise EngineError(f"split_size can only be 0 if dimension size is 0, but got "
                              f"dimension size of {n}")
        sections = tuple(_builtins_min(size, n - i) for i in range(0, n, size)) or (0,)
        prim = S.split
    return _multi_views("Split", S.apply_multi(prim, tensor, {"dim": d, "sections": sections}))


def _multi_views(name: str, pieces: tuple) -> tuple:
    """Mark views returned together (split, unbind): torch refuses in-place ops on them."""
    for i, piece in enumerate(pieces):
        if piece._rg:
            piece._set("multi_view", (name, i))
    return pieces


def chunk(input, chunks, dim=0) -> tuple:
    """At most ``chunks`` pieces of equal size (torch: split with ceil(n / chunks))."""
    input = _t(input)
    if _int(chunks) <= 0:
        raise EngineError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    n = input.shape[_norm_dim(_int(dim), input.ndim)]
    return split(input, _builtins_max(1, -(-n // _int(chunks))), dim)


def unbind(input, dim=0) -> tuple:
    """The slices along dim, as a tuple (UnbindBackward0)."""
    input = _t(input)
    d = _norm_dim(_int(dim), input.ndim)
    return _multi_views("Unbind", S.apply_multi(S.unbind, input,
                                                {"dim": d, "sections": (1,) * input.shape[d]}))


def _index_array(index, name: str) -> np.ndarray:
    data = index._data if isinstance(index, Tensor) else np.asarray(index)
    if data.dtype.kind not in "iu":
        raise EngineError(f"{name}(): Expected dtype int64 for index")
    return data.astype(np.int64, copy=False)


def gather(input, dim, index) -> Tensor:
    """out[i][j] = input[i][index[i][j]] along dim (GatherBackward0)."""
    input = _t(input)
    index = _index_array(index, "gather")
    d = _norm_dim(_int(dim), input.ndim)
    if index.ndim != input.ndim:
        raise EngineError("Index tensor must have the same number of dimensions as input "
                          "tensor")
    for i, (a, b) in enumerate(zip(index.shape, input.shape)):
        if i != d and a > b:
            raise EngineError(f"Size does not match at dimension {i} expected index "
                              f"{list(index.shape)} to be no larger than self "
                              f"{list(input.shape)} apart from dimension {d}")
    if index.size and (index.min() < -input.shape[d] or index.max() >= input.shape[d]):
        raise IndexError(f"index {int(index.max())} is out of bounds for dimension {d} with "
                         f"size {input.shape[d]}")
    return apply(S.gather, (input, index), {"dim": d})


def scatter_add(input, dim, index, src) -> Tensor:
    """input with src added at index along dim, repeated indices accumulating
    (ScatterAddBackward0)."""
    input, src = _t(input), _t(src)
    index = _index_array(index, "scatter_add")
    d = _norm_dim(_int(dim), input.ndim)
    if index.ndim != input.ndim or src.ndim != input.ndim:
        raise EngineError("Index tensor must have the same number of dimensions as self tensor")
    return apply(S.scatter_add, (input, index, src), {"dim": d})


def index_select(input, dim, index) -> Tensor:
    """input's slices at the (1-D) index along dim (IndexSelectBackward0)."""
    input = _t(input)
    index = _index_array(index, "index_select")
    if index.ndim > 1:
        raise EngineError("index_select(): Index is supposed to be a vector")
    d = _norm_dim(_int(dim), input.ndim)
    n = input.shape[d] if input.ndim else 1
    if index.size and (index.min() < 0 or index.max() >= n):
        raise IndexError("index out of range in self")
    return apply(S.index_select, (input, index.reshape(-1)), {"dim": d})


def pad(input, pad, mode="constant", value=None) -> Tensor:
    """torch.nn.functional.pad, constant mode: pad = (last_lo, last_hi, prev_lo, ...)."""
    input = _t(input)
    if mode != "constant":
        raise EngineError(f"pad: mode '{mode}' is not supported (only 'constant')")
    pad = tuple(_int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise EngineError(f"Padding length must be divisible by 2 and at most twice the number "
                          f"of dimensions of the input, got {len(pad)}")
    if _builtins_min(pad, default=0) < 0:
        raise EngineError("pad: negative padding (cropping) is not supported")
    return apply(S.constant_pad, (input,), {"pad": pad, "value": 0.0 if value is None
                                           else value})


def flip(input, *dims, axis=None) -> Tensor:
    """Reverse the order of elements along dims (``x.flip(0, 1)``, ``flip(x, (0, 1))``,
    numpy's ``flip(x, axis=0)``; no dims: all of them)."""
    input = _t(input)
    if axis is not None:
        dims = (axis,)
    if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
        dims = tuple(dims[0])
    if not dims:
        dims = tuple(range(input.ndim))
    return apply(S.flip, (input,), {"dims": _dims(dims, input.ndim)})


def repeat(input, *sizes) -> Tensor:
    """Tile input (torch's Tensor.repeat; numpy's tile)."""
    input = _t(input)
    sizes = _shape_arg(sizes)
    if len(sizes) < input.ndim:
        raise EngineError("Number of dimensions of repeat dims can not be smaller than number "
                          "of dimensions of tensor")
    return apply(S.repeat, (input,), {"repeats": sizes})


def diagonal(input, offset=0, dim1=0, dim2=1) -> Tensor:
    input = _t(input)
    d1, d2 = _norm_dim(dim1, input.ndim), _norm_dim(dim2, input.ndim)
    if d1 == d2:
        raise EngineError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return apply(S.diagonal, (input,), {"offset": _int(offset), "dim1": d1, "dim2": d2})


def trace(input) -> Tensor:
    input = _t(input)
    if input.ndim != 2:
        raise EngineError("trace: expected a matrix, but got tensor with dim "
                          f"{input.ndim}")
    return apply(L.trace, (input,))


# ---- products -------------------------------------------------------------------------------
def _mm_shapes_error(a: Tensor, b: Tensor) -> EngineError:
    return ShapeError(f"mat1 and mat2 shapes cannot be multiplied ({a.shape[0]}x{a.shape[1]} "
                      f"and {b.shape[0]}x{b.shape[1]})")


#: C++ and ScalarType names of dtypes, as torch's matmul-family errors print them
_CPP_NAMES = {"float32": "float", "float64": "double", "int64": "long int", "int32": "int",
              "int16": "short int", "int8": "signed char", "uint8": "unsigned char",
              "bool": "bool", "float16": "c10::Half", "complex64": "c10::complex<float>",
              "complex128": "c10::complex<double>"}
_SCALAR_NAMES = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int",
                 "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool",
                 "float16": "Half", "complex64": "ComplexFloat", "complex128": "ComplexDouble"}


def scalar_type_name(t: Tensor) -> str:
    return _SCALAR_NAMES.get(str(t._data.dtype), str(t._data.dtype))


def _same_dtype_m1_m2(a: Tensor, b: Tensor) -> None:
    """torch multiplies matrices of one dtype only (no promotion)."""
    if a._data.dtype != b._data.dtype:
        names = [_CPP_NAMES.get(str(t._data.dtype), str(t._data.dtype)) for t in (a, b)]
        raise EngineError("expected m1 and m2 to have the same dtype, but got: "
                          f"{names[0]} != {names[1]}")


def mm(input, mat2) -> Tensor:
    a, b = _t(input), _t(mat2)
    _same_dtype_m1_m2(a, b)
    da, db = a._data, b._data
    if da.ndim != 2:
        raise EngineError("self must be a matrix")
    if db.ndim != 2:
        raise EngineError("mat2 must be a matrix")
    if da.shape[1] != db.shape[0]:
        raise _mm_shapes_error(a, b)
    return apply(L.mm, (a, b))


def bmm(input, mat2) -> Tensor:
    a, b = _t(input), _t(mat2)
    if a._data.dtype != b._data.dtype:
        raise EngineError(f"expected scalar type {scalar_type_name(a)} but found "
                          f"{scalar_type_name(b)}")
    if a.ndim != 3:
        raise EngineError("batch1 must be a 3D tensor")
    if b.ndim != 3:
        raise EngineError("batch2 must be a 3D tensor")
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise ShapeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                         f"[{a.shape[0]}, {a.shape[2]}] but got: [{b.shape[0]}, {b.shape[1]}].")
    return apply(L.bmm, (a, b))


def dot(input, other) -> Tensor:
    a, b = _t(input), _t(other)
    da, db = a._data, b._data
    if da.ndim != 1 or db.ndim != 1:
        raise EngineError(f"1D tensors expected, but got {da.ndim}D and {db.ndim}D tensors")
    if da.dtype != db.dtype:
        raise EngineError("dot : expected both vectors to have same dtype, but found "
                          f"{scalar_type_name(a)} and {scalar_type_name(b)}")
    if da.shape[0] != db.shape[0]:
        raise ShapeError("inconsistent tensor size, expected tensor [{}] and src [{}] to have "
                         "the same number of elements, but got {} and {} elements "
                         "respectively".format(a.shape[0], b.shape[0], a.shape[0],
                                               b.shape[0]))
    return apply(L.dot, (a, b))


def mv(input, vec) -> Tensor:
    a, v = _t(input), _t(vec)
    if a.ndim != 2 or v.ndim != 1 or a.shape[1] != v.shape[0]:
        raise ShapeError(f"size mismatch, got input ({a.shape[0] if a.ndim else ''}), mat "
                         f"({'x'.join(map(str, a.shape))}), vec ({v.shape[0] if v.ndim else ''})")
    return apply(L.mv, (a, v))


def matmul(input, other) -> Tensor:
    """torch.matmul, decomposed into the nodes torch records: dot / mv / mm for 1-2-D
    operands; a >=3-D operand against a matrix or vector is folded into one mm or mv
    (ViewBackward0, MmBackward0, UnsafeViewBackward0) when torch folds it; otherwise both
    sides are expanded to the broadcast batch shape, reshaped to 3-D and multiplied with
    bmm."""
    a, b = _t(input), _t(other)
    nda, ndb = a._data.ndim, b._data.ndim
    if nda == 0 or ndb == 0:
        raise EngineError("both arguments to matmul need to be at least 1D, but they are "
                          f"{nda}D and {ndb}D")
    _same_dtype_m1_m2(a, b)
    if nda == 1 and ndb == 1:
        return dot(a, b)             # dot reports a size mismatch
    _check_matmul_sizes(a, b)
    if a.ndim == 2 and b.ndim == 1:
        return mv(a, b)
    if a.ndim == 1 and b.ndim == 2:
        return apply(S.matmul_squeeze, (mm(unsqueeze(a, 0), b),), {"dims": (0,)})
    if a.ndim == 2 and b.ndim == 2:
        return mm(a, b)
    if a.ndim == 3 and b.ndim == 3:
        # a batch of one matrix that requires grad is squeezed, so that its gradient is
        # not expanded over the other operand's batch (torch does the same)
        if a.shape[0] == 1 and a._rg and b.shape[0] != 1:
            return matmul(squeeze(a, 0), b)
        if b.shape[0] == 1 and b._rg and a.shape[0] != 1:
            return matmul(a, squeeze(b, 0))
    if _should_fold(a, b):
        return _folded_matmul(a, b)
    return _batched_matmul(a, b)


def _check_matmul_sizes(a: Tensor, b: Tensor) -> None:
    k = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k == kb:
        return
    if a.ndim <= 2 and b.ndim <= 2:
        if a.ndim == 1 and b.ndim == 1:
            return                       # dot reports it
        if b.ndim == 1:
            raise ShapeError(f"size mismatch, got input ({a.shape[0]}), mat "
                             f"({a.shape[0]}x{k}), vec ({kb})")
        rows = 1 if a.ndim == 1 else a.shape[0]
        raise ShapeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{k} and "
                         f"{kb}x{b.shape[-1]})")
    if b.ndim <= 2:
        rows = _int(np.prod(a.shape[:-1]))
        raise ShapeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{k} and "
                         f"{kb}x{b.shape[-1] if b.ndim == 2 else 1})")
    raise ShapeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                     f"[{_int(np.prod(b.shape[:-2]))}, {k}] but got: "
                     f"[{_int(np.prod(b.shape[:-2]))}, {kb}].")


def _should_fold(a: Tensor, b: Tensor) -> bool:
    """torch's rule for folding a >=3-D operand into a matrix (mm / mv instead of bmm)."""
    larger = a.ndim >= b.ndim
    t1 = a._data if larger else np.swapaxes(b._data, -1, -2)
    dim_t2 = b.ndim if larger else a.ndim
    if not (t1.ndim >= 3 and dim_t2 <= 2):
        return False
    if (b if larger else a)._rg:
        return True        # else the small operand's gradient would be batch-sized
    if a.ndim == 2:
        return False       # folding would need a transposed copy of the result
    if t1.size == 0:
        return True
    strides, shape = t1.strides, t1.shape
    return builtins.all(strides[i] == strides[i + 1] * shape[i + 1] for i in range(t1.ndim - 2))


def _folded_matmul(a: Tensor, b: Tensor) -> Tensor:
    transpose_back = b.ndim > a.ndim
    if transpose_back:       # (b.mT @ a.mT).mT
        t1 = transpose(b, -2, -1)
        t2 = t(a) if a.ndim == 2 else a
    else:
        t1, t2 = a, b
    out_shape = t1.shape[:-1]
    folded = reshape(t1, _int(np.prod(out_shape)), t1.shape[-1])
    if t2.ndim == 1:
        return _unsafe_view(mv(folded, t2), out_shape)
    out = _unsafe_view(mm(folded, t2), out_shape + (t2.shape[1],))
    return clone(transpose(out, -2, -1)) if transpose_back else out


def _batched_matmul(a: Tensor, b: Tensor) -> Tensor:
    n = a.shape[-2] if a.ndim > 1 else 1
    k = a.shape[-1]
    p = b.shape[-1] if b.ndim > 1 else 1
    try:
        batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    except ValueError:
        raise ShapeError(f"The size of tensor a ({a.shape[-3]}) must match the size of tensor b "
                         f"({b.shape[-3]}) at non-singleton dimension 0") from None
    size = _int(np.prod(batch))
    a3 = reshape(broadcast_to(a, batch + (n, k)), size, n, k)
    if b.ndim == 1:
        b3 = unsqueeze(reshape(broadcast_to(b, batch + (k,)), size, k), 2)
    else:
        b3 = reshape(broadcast_to(b, batch + (k, p)), size, k, p)
    out_shape = batch + ((n,) if a.ndim > 1 else ()) + ((p,) if b.ndim > 1 else ())
    product = bmm(a3, b3)
    if b.ndim == 1:
        product = squeeze(product, -1)
    return _unsafe_view(product, out_shape)


def outer(input, vec2) -> Tensor:
    return mul(reshape(input, -1, 1), vec2)


ger = outer


def _einsum_equation(equation: str, shapes: list) -> str:
    """Normalize an einsum equation: no spaces, an explicit output, '...' spelled out as
    letters.  Returns the equation and the letters standing for the ellipsis."""
    equation = equation.replace(" ", "")
    if "->" in equation:
        lhs, rhs = equation.split("->")
    else:
        lhs, rhs = equation, None
    subs = lhs.split(",")
    if len(subs) != len(shapes):
        raise EngineError("einsum(): more operands were provided than specified in the "
                          "equation" if len(shapes) > len(subs) else
                          "einsum(): fewer operands were provided than specified in the "
                          "equation")
    letters = set(equation) - set(",.->")
    for c in letters:
        if c not in string.ascii_letters:
            raise EngineError(f"einsum(): invalid subscript given at index "
                              f"{equation.index(c)} in the equation string, subscripts must be "
                              "in [a-zA-Z]")
    pool = [c for c in string.ascii_letters if c not in letters]
    n_ell = 0
    for sub, shape in zip(subs, shapes):
        if "..." in sub:
            n_ell = _builtins_max(n_ell, len(shape) - (len(sub) - 3))
    ell = "".join(pool[:n_ell])
    expanded = []
    for sub, shape in zip(subs, shapes):
        if "..." in sub:
            k = len(shape) - (len(sub) - 3)
            sub = sub.replace("...", ell[n_ell - k:] if k else "")
        if len(sub) != len(shape):
            raise EngineError(f"einsum(): the number of subscripts in the equation ({len(sub)}) "
                              f"does not match the number of dimensions ({len(shape)}) for "
                              f"operand {len(expanded)}" + (" and no ellipsis was given"
                                                            if "..." not in sub else ""))
        expanded.append(sub)
    if rhs is None:
        counts = {}
        for sub in expanded:
            for c in sub:
                counts[c] = counts.get(c, 0) + 1
        rhs = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    else:
        rhs = rhs.replace("...", ell)
    sizes: dict = {}
    for i, (sub, shape) in enumerate(zip(expanded, shapes)):
        for c, size in zip(sub, shape):
            seen = sizes.get(c, 1)
            if size != 1 and seen != 1 and size != seen:
                raise ShapeError(f"einsum(): subscript {c} has size {size} for operand {i} "
                                 f"which does not broadcast with previously seen size {seen}")
            if size != 1:
                sizes[c] = size
    return ",".join(expanded) + "->" + rhs, ell


def einsum(equation, *operands) -> Tensor:
    """Einstein summation, decomposed as torch decomposes it (so it records the same nodes):
    diagonals for repeated labels, unsqueeze + permute to align every operand on one label
    order (output labels first), then left-to-right pairwise contraction with sum / mul /
    bmm, and a final view or sum."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    operands = tuple(_t(op) for op in operands)
    if not operands:
        raise EngineError("einsum(): must provide at least one operand")
    eq, ellipsis = _einsum_equation(equation, [op.shape for op in operands])
    lhs, output = eq.split("->")
    subs = lhs.split(",")
    # output labels first, then contracted ellipsis dims, then the other contracted labels in
    # torch's label order (A-Z, then a-z)
    order = {c: i for i, c in enumerate(output)}
    for c in [c for c in ellipsis if c not in order] + sorted(set(lhs) - set(output)
                                                             - set(ellipsis) - {","}):
        order[c] = len(order)
    n_out, n_all = len(output), len(order)
    aligned = []
    counts = [0] * n_all
    for sub, op in zip(subs, operands):
        label_dim: dict = {}
        permutation = [-1] * n_all
        dim = 0
        for c in sub:
            if c in label_dim:         # repeated label: its diagonal, moved to the first place
                prev = label_dim[c]
                op = diagonal(op, 0, prev, dim)
                op = permute(op, _moved_last_to(op.ndim, prev))
            else:
                label_dim[c] = dim
                permutation[order[c]] = dim
                if op.shape[dim] != 1:
                    counts[order[c]] += 1
                dim += 1
        for i, d in enumerate(permutation):
            if d == -1:
                op = unsqueeze(op, dim)
                permutation[i] = dim
                dim += 1
        aligned.append(permute(op, tuple(permutation)))
    while len(aligned) > 1:
        a, b = aligned[0], aligned[1]
        del aligned[:2]
        sum_dims, a_only, b_only = [], [], []
        for d in range(n_out, n_all):
            if a.shape[d] != 1 and b.shape[d] != 1:
                counts[d] -= 1
                if counts[d] == 1:
                    sum_dims.append(d)
                    counts[d] = 0
            elif counts[d] == 1:
                if a.shape[d] != 1:
                    a_only.append(d)
                    counts[d] = 0
                elif b.shape[d] != 1:
                    b_only.append(d)
                    counts[d] = 0
        if a_only:
            a = sum(a, tuple(a_only), keepdim=True)
        if b_only:
            b = sum(b, tuple(b_only), keepdim=True)
        aligned.insert(0, _sumproduct_pair(a, b, sum_dims))
    result = aligned[0]
    if n_all > n_out:
        if len(operands) > 1:
            return view(result, result.shape[:n_out])
        return sum(result, tuple(range(n_out, n_all)))
    return result


def _moved_last_to(ndim: int, position: int) -> tuple:
    """The permutation of movedim(-1, position)."""
    dims = list(range(ndim - 1))
    dims.insert(position, ndim - 1)
    return tuple(dims)


def _pair_dims(left: Tensor, right: Tensor, sum_dims: list) -> tuple:
    """The kept dims of a pair: in both operands, in the left only, in the right only."""
    lro, lo, ro = [], [], []
    for i in range(left.ndim):
        if i in sum_dims:
            continue
        if left.shape[i] != 1 and right.shape[i] != 1:
            lro.append(i)
        elif left.shape[i] != 1:
            lo.append(i)
        else:
            ro.append(i)
    return lro, lo, ro


def _sumproduct_pair(left: Tensor, right: Tensor, sum_dims: list) -> Tensor:
    """Multiply two aligned operands and sum sum_dims (kept as size 1), as one bmm."""
    if not sum_dims:
        return mul(left, right)
    lro, lo, ro = _pair_dims(left, right, sum_dims)
    if lro + lo + ro != sorted(lro + lo + ro) and lro + ro + lo == sorted(lro + ro + lo):
        # torch swaps the operands when that makes the product come out in order
        left, right = right, left
        lo, ro = ro, lo
    lro_size = _int(np.prod([left.shape[d] for d in lro]))
    lo_size = _int(np.prod([left.shape[d] for d in lo]))
    ro_size = _int(np.prod([right.shape[d] for d in ro]))
    sum_size = _int(np.prod([left.shape[d] for d in sum_dims]))
    out_size = tuple([left.shape[d] for d in lro] + [left.shape[d] for d in lo]
                     + [1] * len(sum_dims) + [right.shape[d] for d in ro])
    left = reshape(permute(left, tuple(lro + lo + sum_dims + ro)), lro_size, lo_size, sum_size)
    right = reshape(permute(right, tuple(lro + sum_dims + ro + lo)), lro_size, sum_size,
                    ro_size)
    inverse = [0] * len(out_size)
    for position, d in enumerate(lro + lo + sum_dims + ro):
        inverse[d] = position
    return permute(view(bmm(left, right), out_size), tuple(inverse))


def _square(name: str, A: Tensor) -> None:
    if A.ndim < 2:
        raise EngineError(f"linalg.{name}: The input tensor A must have at least 2 dimensions.")
    if A.shape[-1] != A.shape[-2]:
        raise EngineError(f"linalg.{name}: A must be batches of square matrices, but they are "
                          f"{A.shape[-2]} by {A.shape[-1]} matrices")


def inverse(input) -> Tensor:
    """Matrix inverse (LinalgInvExBackward0); batches of square matrices."""
    A = _t(input)
    _square("inv", A)
    try:
        return apply(L.inv, (A,))
    except ShapeError as exc:
        raise EngineError("linalg.inv: The diagonal element 1 is zero, the inversion could not "
                          "be completed because the input matrix is singular.") from exc


def det(input) -> Tensor:
    """Determinant (LinalgDetBackward0)."""
    A = _t(input)
    _square("det", A)
    return apply(L.det, (A,))


def _linalg_solve(A, B, *, left=True) -> Tensor:
    """X with A X = B (LinalgSolveExBackward0); B is a vector when B.ndim == 1 or
    B.ndim == A.ndim - 1 with A's batch shape (torch's rule)."""
    A, B = _t(A), _t(B)
    if not left:
        raise EngineError("linalg.solve: left=False is not supported")
    _square("solve", A)
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape[:-1] == A.shape[:-2])
    if B.shape[-1 if vector else -2] != A.shape[-1]:
        raise ShapeError(f"linalg.solve: Incompatible shapes of A and B for the equation AX = B"
                         f" ({A.shape[-2]}x{A.shape[-1]} and "
                         f"{'x'.join(map(str, B.shape[-1 if vector else -2:]))})")
    try:
        return apply(L.solve, (A, B), {"vector": vector})
    except ShapeError as exc:
        if "singular" in str(exc).lower():
            raise EngineError("torch.linalg.solve: The solver failed because the input matrix "
                              "is singular.") from None
        raise


def _linalg_norm(input, ord=None, dim=None, keepdim=False) -> Tensor:
    input = _t(input)
    if ord is None or ord == "fro":
        return vector_norm(input, 2, dim, keepdim)
    if dim is None and input.ndim == 1 or isinstance(dim, (_int, np.integer)) or (
            isinstance(dim, (tuple, list)) and len(dim) == 1):
        return vector_norm(input, ord, dim, keepdim)
    raise EngineError(f"linalg.norm: matrix norm ord={ord} is not supported")


#: ``gt.linalg``: torch.linalg's names for the linear-algebra ops
linalg = SimpleNamespace(inv=inverse, det=det, solve=_linalg_solve, norm=_linalg_norm,
                         vector_norm=vector_norm)


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


# ---- in-place -------------------------------------------------------------------------------
LEAF_INPLACE = ("a leaf Variable that requires grad is being used in an in-place operation.")


def _view_positions(view: Tensor, base: Tensor):
    """For each element of ``view``, its flat position in ``base`` (whose memory it shares),
    or None when that cannot be read off the strides (a non-contiguous base)."""
    b, v = base._data, view._data
    if not b.flags.c_contiguous or v.dtype != b.dtype:
        return None
    item = b.itemsize
    offset = v.__array_interface__["data"][0] - b.__array_interface__["data"][0]
    if offset % item or builtins.any(st % item for st in v.strides):
        return None
    start = offset // item
    steps = [st // item for st in v.strides]
    if v.size == 0:
        return np.zeros(v.shape, dtype=np.int64)
    low = start + _sum((n - 1) * st for n, st in zip(v.shape, steps) if st < 0)
    high = start + _sum((n - 1) * st for n, st in zip(v.shape, steps) if st > 0)
    if low < 0 or high >= b.size:
        return None
    grid = np.indices(v.shape, dtype=np.int64) if v.ndim else np.zeros((0,), np.int64)
    return start + _sum(g * st for g, st in zip(grid, steps)) if v.ndim \
        else np.asarray(start, dtype=np.int64)


def _inplace_on_view(view: Tensor, base: Tensor, positions, compute, others) -> Tensor:
    """An in-place op on a view of a tensor in a graph, as torch's CopySlices: the view's new
    values are written into the base out of place (index_put on the flattened base), the
    base is rebased onto that node and the view onto a gather of the new base."""
    old = _make(view._data.copy(), view.grad_fn, view._rg)
    old._nr = view._nr
    values = compute(old, *others)
    if values._data.dtype != view._data.dtype:
        if not np.can_cast(values._data.dtype, view._data.dtype, "same_kind"):
            raise EngineError(f"result type {values.dtype.name.capitalize()} can't be cast to "
                              f"the desired output type {view.dtype.name.capitalize()}")
        values = to(values, view.dtype)
    if tuple(values.shape) != tuple(view.shape):
        values = broadcast_to(values, view.shape)
    base_old = _make(base._data.copy(), base.grad_fn, base._rg)
    base_old._nr = base._nr
    from .prims import shape as shape_prims
    base_new = apply(shape_prims.index_put, (base_old, values),
                     {"key": np.unravel_index(positions, base.shape)})
    np.copyto(base._data, base_new._data)        # the views share this memory
    bump_version(base)
    base.grad_fn, base._nr, base._rg = base_new.grad_fn, base_new._nr, base_new._rg
    live = [ref() for ref in base._get("views") or ()]
    views = [other for other in live if other is not None and other is not view] + [view]
    for other in views:                          # every live view now reads the new base
        where = _view_positions(other, base)
        if where is not None:
            other_new = getitem(base_new, np.unravel_index(where, base.shape))
            other.grad_fn, other._nr, other._rg = other_new.grad_fn, 0, other_new._rg
    return view


def _inplace(self: Tensor, compute, *others) -> Tensor:
    """Run ``compute(self, *others)`` out of place and write the result into ``self``.

    With grad mode on and something requiring grad, ``self`` is rebased onto the new node
    (the old value is snapshotted so the new node's saved inputs stay valid); the version
    counter is bumped so nodes that saved the old value refuse to backward."""
    tracking = MODE.grad_enabled and (self._rg or builtins.any(
        isinstance(o, Tensor) and o._rg for o in others))
    if tracking:
        if self._rg and self.grad_fn is None:
            raise EngineError(LEAF_INPLACE)
        base = self._get("base")
        multi = self._get("multi_view")
        if multi is not None and self.grad_fn is not None:
            raise EngineError(f"Output {multi[1]} of {multi[0]} is a view and is being modified "
                              "inplace. This view is the output of a function that returns "
                              "multiple views. Such functions do not allow the output views to "
                              "be modified inplace. You should replace the inplace operation "
                              "by an out-of-place one.")
        if base is not None and (base._rg or self._rg):
            while base._get("base") is not None:
                base = base._get("base")
            if base._rg and base.grad_fn is None:
                raise EngineError("a view of a leaf Variable that requires grad is being used "
                                  "in an in-place operation.")
            positions = _view_positions(self, base)
            if positions is None:
                raise EngineError("gradtool does not support in-place operations on this view "
                                  "of a tensor that requires grad; use the out-of-place "
                                  "operation (e.g. y = y + 1) instead")
            return _inplace_on_view(self, base, positions, compute, others)
        old = _make(self._data.copy(), self.grad_fn, self._rg)
        old._nr = self._nr
        old._fw = self._fw
        result = compute(old, *others)
    else:
        with no_grad():
            result = compute(self, *others)
    data = result._data
    if data.dtype != self._data.dtype and not np.can_cast(data.dtype, self._data.dtype,
                                                          "same_kind"):
        raise EngineError(f"result type {dtypes.from_np(data.dtype).name.capitalize()} can't "
                          f"be cast to the desired output type "
                          f"{dtypes.from_np(self._data.dtype).name.capitalize()}")
    if data.shape != self._data.shape:
        try:
            data = np.broadcast_to(data, self._data.shape)
        except ValueError:
            raise EngineError(f"output with shape {list(self._data.shape)} doesn't match the "
                              f"broadcast shape {list(data.shape)}") from None
    np.copyto(self._data, data, casting="unsafe")
    bump_version(self)
    if MODE.fw_level and (self._fw is not None or result._fw is not None):
        # forward AD: the tangent follows the in-place update (torch)
        fw = result._fw
        if fw is not None and fw[1].shape != self._data.shape:
            fw = (fw[0], np.broadcast_to(fw[1], self._data.shape).astype(self._data.dtype))
        self._fw = fw
    if tracking:
        self.grad_fn = result.grad_fn
        self._nr = result._nr
        self._rg = result._rg
    return self


def _numpy_inplace(self: Tensor, ufunc, other) -> bool:
    """``self op= other`` straight into ``self``'s memory (numpy's ``out=``) when nothing is
    recorded (no grad tracking, no forward-mode tangent) and the result has ``self``'s
    dtype and shape anyway: a Tensor of the same floating dtype and shape (or 0-d), or a
    Python number.  Returns False for everything else (``_inplace`` decides)."""
    if MODE.grad_enabled and (self._rg or (isinstance(other, Tensor) and other._rg)):
        return False
    data = self._data
    if data.dtype.kind not in "fc" or not data.flags.writeable:
        return False
    if isinstance(other, Tensor):
        if other._fw is not None:
            return False
        value = other._data
        if value.dtype is not data.dtype or (value.shape != data.shape and value.ndim):
            return False
    elif type(other) in (float, int):
        value = other
    else:
        return False
    if self._fw is not None and MODE.fw_level:
        return False
    _QUIET_UFUNCS[ufunc](data, value, out=data)
    bump_version(self)
    return True


# inf and NaN silently, as the out-of-place operators give them (torch does not warn)
_QUIET_UFUNCS = {ufunc: quiet(ufunc) for ufunc in (np.add, np.subtract, np.multiply,
                                                   np.true_divide)}


def add_(self, other, *, alpha=1):
    if alpha == 1 and type(alpha) is int and _numpy_inplace(self, np.add, other):
        return self
    return _inplace(self, lambda s, o: add(s, o, alpha=alpha), other)


def sub_(self, other, *, alpha=1):
    if alpha == 1 and type(alpha) is int and _numpy_inplace(self, np.subtract, other):
        return self
    return _inplace(self, lambda s, o: sub(s, o, alpha=alpha), other)


def mul_(self, other):
    if _numpy_inplace(self, np.multiply, other):
        return self
    return _inplace(self, mul, other)


def div_(self, other):
    if _numpy_inplace(self, np.true_divide, other):
        return self
    return _inplace(self, div, other)


def pow_(self, exponent):
    return _inplace(self, pow, exponent)


def clamp_(self, min=None, max=None):
    return _inplace(self, lambda s: clamp(s, min, max))


def zero_(self):
    return fill_(self, 0)


def fill_(self, value):
    if MODE.grad_enabled and self._rg and self.grad_fn is None:
        raise EngineError(LEAF_INPLACE)
    if MODE.grad_enabled and self._rg:
        return _inplace(self, lambda s: mul(s, 0.0) + value)
    self._data[...] = value.item() if isinstance(value, Tensor) else value
    bump_version(self)
    return self


def copy_(self, src, non_blocking=False):
    src = _t(src)
    if MODE.grad_enabled and (self._rg or src._rg):
        return _inplace(self, lambda s, o: add(mul(s, 0.0), to(o, s._data.dtype)), src)
    np.copyto(self._data, np.broadcast_to(src._data, self._data.shape), casting="unsafe")
    bump_version(self)
    return self


def setitem(self, key, value) -> None:
    """``x[key] = value``: in place; under grad tracking recorded as torch's CopySlices."""
    key = _index_key(key)
    tracking = MODE.grad_enabled and (self._rg or (isinstance(value, Tensor) and value._rg))
    dual = MODE.fw_level and (self._fw is not None or (isinstance(value, Tensor)
                                                        and value._fw is not None))
    if not tracking and not dual:
        self._data[key] = value._data if isinstance(value, Tensor) else value
        bump_version(self)
        return
    from .prims import shape as shape_prims
    _inplace(self, lambda s, v: apply(shape_prims.index_put, (s, _t(v)), {"key": key}),
             value)


def uniform_(self, a=0.0, b=1.0, generator=None):
    from .random import _rng
    return _fill_random(self, _rng(generator).uniform(a, b, self.shape))


def normal_(self, mean=0.0, std=1.0, generator=None):
    from .random import _rng
    return _fill_random(self, _rng(generator).normal(mean, std, self.shape))


def _fill_random(self, values):
    if MODE.grad_enabled and self._rg and self.grad_fn is None:
        raise EngineError(LEAF_INPLACE)
    self._data[...] = values
    bump_version(self)
    return self


# ---- what the package and the spec language export ------------------------------------------
_NOT_PUBLIC = {"apply", "setitem", "getitem", "index_const", "LEAF_INPLACE", "no_grad",
               "namedtuple", "SimpleNamespace", "MaxResult", "MinResult"}
__all__ = sorted(
    name for name, value in list(globals().items())
    if not name.startswith("_") and callable(value) and not name.endswith("_")
    and getattr(value, "__module__", None) == __name__ and name not in _NOT_PUBLIC)

#: name -> function for the spec language's expressions (numpy and torch spellings)
BUILTINS = {name: globals()[name] for name in __all__}
__all__.append("linalg")

# torch's helpers outside the spec language (predicates, rounding, sorting, ...)
from . import torch_parity as _parity  # noqa: E402
for _name in _parity.FUNCTIONS:
    globals()[_name] = getattr(_parity, _name)
    __all__.append(_name)



METHOD_NAMES = (
    "add", "sub", "mul", "div", "true_divide", "multiply", "subtract", "divide", "neg",
    "negative", "pow", "square", "exp", "log", "log1p", "expm1", "log2", "log10", "sqrt",
    "rsqrt", "sin", "cos", "tan", "tanh", "sinh", "cosh", "asin", "acos", "atan", "arcsin",
    "arccos", "arctan", "atan2", "arctan2", "sigmoid", "relu", "abs", "absolute", "sign",
    "reciprocal", "softplus", "clamp", "clip", "clamp_min", "clamp_max", "maximum", "minimum",
    "eq", "ne", "lt", "le", "gt", "ge", "logical_not", "logical_and", "logical_or",
    "masked_fill", "rsub", "remainder",
    "sum", "mean", "max", "min", "amax", "amin", "argmax", "argmin", "prod", "var", "std",
    "norm", "logsumexp", "softmax", "log_softmax", "cumsum",
    "reshape", "view", "flatten", "ravel", "transpose", "swapaxes", "swapdims",
    "t", "permute", "broadcast_to", "expand_as", "squeeze", "unsqueeze", "clone", "to",
    "split", "chunk", "unbind", "gather", "scatter_add", "index_select", "flip", "repeat",
    "diagonal", "trace",
    "mm", "bmm", "dot", "mv", "matmul", "outer", "inverse", "det",
    "add_", "sub_", "mul_", "div_", "pow_", "clamp_", "zero_", "fill_", "copy_", "uniform_",
    "normal_",
)

#: methods and attributes a spec expression may use on a tensor
TENSOR_METHODS = frozenset(
    {"T", "mT", "shape", "dtype", "ndim", "float", "double", "long", "int", "bool",
     "detach", "size", "dim", "numel", "item", "contiguous", "type_as", "expand",
     "requires_grad"} | {name for name in METHOD_NAMES if not name.endswith("_")})
