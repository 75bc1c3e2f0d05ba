"""Pointwise ops: arithmetic, functions of one element, comparisons, selection
(``where``, ``clamp``), predicates (``isnan``, ``allclose``) and rounding."""

from __future__ import annotations

import builtins

import numpy as np

from ...errors import EngineError
from ..dtypes import promoted, torch_result_dtype
from ..primitive import apply
from ..prims import elementwise
from ..tensor import Tensor, _make
from ..dtypes import c_type_name
from .common import _t, _tensor_of, float_kernel, scalar_type_name

_bool = builtins.bool
_int = builtins.int
_float = builtins.float

__all__ = [
    "abs", "absolute", "acos", "add", "allclose", "arccos", "arcsin", "arctan", "arctan2",
    "asin", "atan", "atan2", "bitwise_and", "bitwise_not", "bitwise_or", "bitwise_xor", "ceil",
    "clamp", "clamp_max", "clamp_min", "clip", "cos", "cosh", "div", "divide", "eq", "equal",
    "exp", "expm1", "floor", "frac", "ge", "greater", "greater_equal", "gt", "isclose",
    "isfinite", "isinf", "isnan", "le", "less", "less_equal", "log", "log10", "log1p", "log2",
    "logical_and", "logical_not", "logical_or", "lt", "masked_fill", "maximum", "minimum",
    "mul", "multiply", "ne", "neg", "negative", "pow", "reciprocal", "relu", "remainder",
    "round", "rsqrt", "rsub", "sigmoid", "sign", "sin", "sinh", "softplus", "sqrt", "square",
    "sub", "subtract", "tan", "tanh", "true_divide", "trunc", "where",
]


# ---- arithmetic -----------------------------------------------------------------------------
def add(input, other, *, alpha=1) -> Tensor:
    if alpha != 1:
        return apply(elementwise.add, (input, other), {"alpha": alpha})
    return apply(elementwise.add, (input, other))


def sub(input, other, *, alpha=1) -> Tensor:
    if not isinstance(input, Tensor) and not isinstance(input, (_int, _float, complex)):
        input = _t(input)      # torch.sub(2, x) records SubBackward0 with a None edge
    if alpha != 1:
        return apply(elementwise.sub, (input, other), {"alpha": alpha})
    return apply(elementwise.sub, (input, other))


def rsub(input, other, *, alpha=1) -> Tensor:
    """other - alpha * input (torch.rsub)."""
    if isinstance(other, (_int, _float)) and not isinstance(other, _bool):
        params = {"other": other} if alpha == 1 else {"other": other, "alpha": alpha}
        return apply(elementwise.rsub_scalar, (_t(input),), params)    # RsubBackward1
    if alpha != 1:
        return sub(other, input, alpha=alpha)
    return apply(elementwise.rsub, (input, other))


def mul(input, other) -> Tensor:
    return apply(elementwise.mul, (input, other))


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
        return apply(elementwise.div_rounded, (input, other), {"rounding_mode": rounding_mode})
    # torch.div(2, x): DivBackward0 with a None edge for the number
    return apply(elementwise.div, (input, other))


true_divide = divide = div
multiply = mul
subtract = sub


def neg(input) -> Tensor:
    if isinstance(input, Tensor) and input._data.dtype == np.bool_:
        raise EngineError("Negation, the `-` operator, on a bool tensor is not supported. If "
                          "you are trying to invert a mask, use the `~` or `logical_not()` "
                          "operator instead.")
    return apply(elementwise.neg, (input,))


negative = neg


def pow(input, exponent) -> Tensor:
    if not isinstance(input, Tensor):
        return apply(elementwise.rpow, (exponent,), {"base": input})
    if isinstance(exponent, Tensor):
        return apply(elementwise.pow, (input, exponent))
    if isinstance(exponent, (np.ndarray, list, tuple)):
        return apply(elementwise.pow, (input, _t(exponent)))
    if isinstance(exponent, _float) and exponent.is_integer():
        exponent = _int(exponent) if input._data.dtype.kind in "fc" else exponent
    if isinstance(exponent, _int) and input._data.dtype.kind in "iu" and exponent < 0:
        raise EngineError("Integers to negative integer powers are not allowed.")
    return apply(elementwise.pow_scalar, (input,), {"exponent": exponent})


def square(input) -> Tensor:
    return pow(input, 2)


def _unary(prim):
    def op(input) -> Tensor:
        return apply(prim, (input,))
    op.__name__ = prim.name
    op.__doc__ = f"Elementwise {prim.name} (backward node {prim.node_name})."
    return op


exp = _unary(elementwise.exp)
log = _unary(elementwise.log)
log1p = _unary(elementwise.log1p)
expm1 = _unary(elementwise.expm1)
sqrt = _unary(elementwise.sqrt)
sin = _unary(elementwise.sin)
cos = _unary(elementwise.cos)
tan = _unary(elementwise.tan)
tanh = _unary(elementwise.tanh)
sinh = _unary(elementwise.sinh)
cosh = _unary(elementwise.cosh)
arcsin = asin = _unary(elementwise.arcsin)
arccos = acos = _unary(elementwise.arccos)
arctan = atan = _unary(elementwise.arctan)
sigmoid = _unary(elementwise.sigmoid)
relu = _unary(elementwise.relu)
abs = absolute = _unary(elementwise.abs)
sign = _unary(elementwise.sign)
reciprocal = _unary(elementwise.reciprocal)


def arctan2(input, other) -> Tensor:
    return apply(elementwise.arctan2, (input, other))


atan2 = arctan2


rsqrt = _unary(elementwise.rsqrt)


log2 = _unary(elementwise.log2)
log10 = _unary(elementwise.log10)


def remainder(input, other) -> Tensor:
    """input - floor(input / other) * other: the sign of the divisor (python's %)."""
    divisor = other._data if isinstance(other, Tensor) else np.asarray(other)
    if divisor.dtype.kind in "iub" and _t(input)._data.dtype.kind in "iub" \
            and not np.all(divisor):
        raise EngineError("ZeroDivisionError")
    if isinstance(input, Tensor) and not isinstance(other, Tensor):
        return apply(elementwise.remainder_scalar, (input,), {"other": other})
    return apply(elementwise.remainder, (input, other))


def softplus(input, beta=1.0, threshold=20.0) -> Tensor:
    if isinstance(input, Tensor) and input._data.dtype.kind not in "fc":
        raise NotImplementedError(f"\"softplus_cpu\" not implemented for "
                                  f"'{scalar_type_name(input)}'")
    return apply(elementwise.softplus, (input,),
                 {"beta": _float(beta), "threshold": _float(threshold)})


def clamp(input, min=None, max=None) -> Tensor:
    """torch.clamp: python bounds record ClampBackward1, tensor bounds ClampBackward0."""
    if min is None and max is None:
        raise EngineError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        return apply(elementwise.clamp_tensor, (input, min, max))
    return apply(elementwise.clamp, (input,), {"min": min, "max": max})


clip = clamp


def clamp_min(input, min) -> Tensor:
    if isinstance(min, Tensor):
        return apply(elementwise.clamp_min_tensor, (input, min))
    return apply(elementwise.REGISTRY["clamp_min"], (input,), {"min": min, "max": None})


def clamp_max(input, max) -> Tensor:
    if isinstance(max, Tensor):
        return apply(elementwise.clamp_max_tensor, (input, max))
    return apply(elementwise.REGISTRY["clamp_max"], (input,), {"min": None, "max": max})


def maximum(input, other) -> Tensor:
    return apply(elementwise.maximum, (input, other))


def minimum(input, other) -> Tensor:
    return apply(elementwise.minimum, (input, other))


def where(condition, input=None, other=None) -> Tensor:
    if input is None and other is None:
        return tuple(_make(i) for i in np.nonzero(_t(condition)._data))
    cond = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    return apply(elementwise.where, (cond.astype(_bool), input, other))


def masked_fill(input, mask, value) -> Tensor:
    input = _t(input)
    mask = _t(mask)._data
    if mask.dtype != np.bool_:
        raise EngineError(f"masked_fill_ only supports boolean masks, but got mask with dtype "
                          f"{c_type_name(mask)}")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise EngineError("masked_fill_ only supports a 0-dimensional value tensor, but "
                              f"got tensor with {value.ndim} dimension(s).")
        if value._rg and input._data.dtype.kind not in "fc":
            raise EngineError(f"Autograd not support dtype: {scalar_type_name(input)}")
        return apply(elementwise.masked_fill_tensor, (input, mask, value))
    return apply(elementwise.masked_fill, (input, mask), {"value": value})


def _comparison(prim):
    def op(input, other) -> Tensor:
        return apply(prim, (input, other))
    op.__name__ = prim.name
    return op


eq = _comparison(elementwise.eq)
ne = _comparison(elementwise.ne)
lt = less = _comparison(elementwise.lt)
le = less_equal = _comparison(elementwise.le)
gt = greater = _comparison(elementwise.gt)
ge = greater_equal = _comparison(elementwise.ge)
logical_and = _comparison(elementwise.logical_and)
logical_or = _comparison(elementwise.logical_or)


def logical_not(input) -> Tensor:
    return apply(elementwise.logical_not, (input,))


# ---- bitwise (the operators & | ^ ~; logical on bool tensors, no gradient) --------------
def _bitwise(np_fn, name):
    def op(input, other) -> Tensor:
        a, b = _t(input)._data, _t(other)._data
        out_dtype = torch_result_dtype([a, b])
        if out_dtype.kind in "fc":
            raise NotImplementedError(f'"{name}_cpu" not implemented for '
                                      f"'{scalar_type_name(_make(np.empty(0, out_dtype)))}'")
        return _make(np.asarray(np_fn(a, b)).astype(out_dtype, copy=False))
    op.__name__ = name
    return op


bitwise_and = _bitwise(np.bitwise_and, "bitwise_and")
bitwise_or = _bitwise(np.bitwise_or, "bitwise_or")
bitwise_xor = _bitwise(np.bitwise_xor, "bitwise_xor")


def bitwise_not(input) -> Tensor:
    data = _t(input)._data
    if data.dtype.kind in "fc":
        raise TypeError("~ (operator.invert) is only implemented on integer and Boolean-type "
                        "tensors")
    return _make(np.invert(data))


# predicates and comparisons (no gradient)
def isnan(input) -> Tensor:
    return _make(np.isnan(_tensor_of(input)._data))


def isinf(input) -> Tensor:
    return _make(np.isinf(_tensor_of(input)._data))


def isfinite(input) -> Tensor:
    return _make(np.isfinite(_tensor_of(input)._data))


def isclose(input, other, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Tensor:
    return _make(np.isclose(_tensor_of(input)._data, _tensor_of(other)._data, rtol=rtol, atol=atol,
                            equal_nan=equal_nan))


def allclose(input, other, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    return _bool(np.allclose(_tensor_of(input)._data, _tensor_of(other)._data, rtol=rtol, atol=atol,
                             equal_nan=equal_nan))


def equal(input, other) -> bool:
    """Same shape and same values (torch.equal)."""
    a, b = _tensor_of(input)._data, _tensor_of(other)._data
    return a.shape == b.shape and _bool(np.array_equal(a, b))


# ---- rounding: torch records a node whose gradient is zero ------------------------------------
def _rounded(prim, kernel: str, input, params=None) -> Tensor:
    input = _tensor_of(input)
    if input._data.dtype.kind in "iu" and not params:
        return _make(input._data.copy())      # integers are already rounded (torch: a copy)
    float_kernel(kernel, input)
    return apply(prim, (input,), params) if params else apply(prim, (input,))


def floor(input) -> Tensor:
    return _rounded(elementwise.floor, "floor_vml_cpu", input)


def ceil(input) -> Tensor:
    return _rounded(elementwise.ceil, "ceil_vml_cpu", input)


def trunc(input) -> Tensor:
    return _rounded(elementwise.trunc, "trunc_vml_cpu", input)


def round(input, *, decimals=None) -> Tensor:
    """Half to even, as torch (RoundBackward0; RoundBackward1 when ``decimals`` is given)."""
    if decimals is None:
        return _rounded(elementwise.round, "round_vml_cpu", input)
    return _rounded(elementwise.round_decimals, "round_cpu", input, {"decimals": _int(decimals)})


def frac(input) -> Tensor:
    """x - trunc(x): gradient 1 (FracBackward0)."""
    input = _tensor_of(input)
    float_kernel("frac_cpu", input)
    return apply(elementwise.frac, (input,))
