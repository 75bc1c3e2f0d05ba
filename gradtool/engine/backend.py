"""Functions that VJP/JVP rules call: numpy on arrays, differentiable gradtool ops on Tensors.

A rule written as ``g * cos(x)`` with ``cos`` from here runs on plain arrays during an
ordinary backward and on Tensors under ``create_graph=True``, where it is recorded and so can
be differentiated again.  Operators (``+ - * / **``, ``@``) already dispatch by type.
"""

from __future__ import annotations

import numpy as np

from .tensor import Tensor


def _quiet_state():
    """numpy's error state with every floating-point warning off, as a context variable
    value (entering ``np.errstate`` costs about 1.5 us; setting the variable 0.1 us)."""
    try:
        from numpy._core._ufunc_config import _extobj_contextvar
    except ImportError:   # another numpy layout: the public (slower) context manager
        return None, None
    with np.errstate(all="ignore"):
        return _extobj_contextvar, _extobj_contextvar.get()


_ERRSTATE_VAR, _IGNORE_ALL = _quiet_state()


def errors_off():
    """Turn numpy's floating-point warnings off until ``errors_restore(token)``: a
    ``np.errstate(all="ignore")`` without the cost of the context manager (the backward
    pass enters it once per call)."""
    if _ERRSTATE_VAR is None:
        state = np.errstate(all="ignore")
        state.__enter__()
        return state
    return _ERRSTATE_VAR.set(_IGNORE_ALL)


def errors_restore(token) -> None:
    if _ERRSTATE_VAR is None:
        token.__exit__(None, None, None)
    else:
        _ERRSTATE_VAR.reset(token)


def quiet(forward):
    """``forward`` without numpy's RuntimeWarnings (divide by zero, invalid value, overflow):
    torch returns inf and NaN silently."""
    if _ERRSTATE_VAR is None:
        def silenced(*args, **kwargs):
            with np.errstate(all="ignore"):
                return forward(*args, **kwargs)
    else:
        def silenced(*args, **kwargs):
            token = _ERRSTATE_VAR.set(_IGNORE_ALL)
            try:
                return forward(*args, **kwargs)
            finally:
                _ERRSTATE_VAR.reset(token)
    silenced.__name__ = getattr(forward, "__name__", "forward")
    silenced.__wrapped__ = forward
    return silenced


def _ops():
    from . import ops
    return ops


def _unary(np_fn, name):
    def fn(x):
        if isinstance(x, Tensor):
            return getattr(_ops(), name)(x)
        return np_fn(x)
    fn.__name__ = name
    return fn


exp = _unary(np.exp, "exp")
log = _unary(np.log, "log")
sin = _unary(np.sin, "sin")
cos = _unary(np.cos, "cos")
tanh = _unary(np.tanh, "tanh")
sqrt = _unary(np.sqrt, "sqrt")
def real_sign(x):
    """np.sign with torch's sign of NaN: 0 ((0 < x) - (x < 0))."""
    s = np.sign(x)
    if s.dtype.kind == "f" and np.isnan(s).any():
        s = np.where(np.isnan(s), np.zeros((), s.dtype), s)
    return s


sign = _unary(real_sign, "sign")
abs = _unary(np.abs, "abs")
conj = _unary(np.conj, "conj")
cosh = _unary(np.cosh, "cosh")
sinh = _unary(np.sinh, "sinh")
log1p = _unary(np.log1p, "log1p")
expm1 = _unary(np.expm1, "expm1")


def np_sigmoid(x):
    """Logistic function without overflow warnings for large |x|."""
    x = np.asarray(x)
    if np.iscomplexobj(x):
        return 1 / (1 + np.exp(-x))
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


sigmoid = _unary(np_sigmoid, "sigmoid")


def _any_tensor(*xs) -> bool:
    return any(isinstance(x, Tensor) for x in xs)


def where(cond, a, b):
    if _any_tensor(cond, a, b):
        return _ops().where(cond, a, b)
    return np.where(cond, a, b)


def sum(x, axis=None, keepdims=False):
    if isinstance(x, Tensor):
        return _ops().sum(x, dim=axis, keepdim=keepdims)
    if type(x) is np.ndarray:       # the method: no numpy Python-level dispatch
        return x.sum(axis=axis, keepdims=keepdims)
    return np.sum(x, axis=axis, keepdims=keepdims)


def reshape(x, shape):
    if isinstance(x, Tensor):
        return _ops().reshape(x, tuple(shape))
    return x.reshape(shape) if type(x) is np.ndarray else np.reshape(x, shape)


def broadcast_to(x, shape):
    if isinstance(x, Tensor):
        return _ops().broadcast_to(x, tuple(shape))
    return np.broadcast_to(x, shape)


def expand_dims(x, axis):
    if type(x) is np.ndarray:       # the common case first (backward rules on arrays)
        shape = _expanded_shape(x.shape, axis)
        return np.expand_dims(x, axis) if shape is None else x.reshape(shape)
    if isinstance(x, Tensor):
        return _ops().reshape(x, np.expand_dims(np.empty(x.shape, dtype=bool), axis).shape)
    shape = _expanded_shape(np.shape(x), axis)
    if shape is None:
        return np.expand_dims(x, axis)
    return x.reshape(shape) if type(x) is np.ndarray else np.reshape(x, shape)


def _expanded_shape(shape: tuple, axis):
    """``np.expand_dims``'s result shape for in-range, distinct int axes (else None: numpy
    raises its own error), without its Python-level argument normalization."""
    if type(axis) is int:
        ndim = len(shape) + 1
        if not -ndim <= axis < ndim:
            return None
        axis %= ndim
        return shape[:axis] + (1,) + shape[axis:]
    axes = axis
    if type(axes) is not tuple:
        return None
    ndim = len(shape) + len(axes)
    placed = set()
    for a in axes:
        if type(a) is not int or not -ndim <= a < ndim:
            return None
        placed.add(a % ndim)
    if len(placed) != len(axes):
        return None
    rest = iter(shape)
    return tuple(1 if i in placed else next(rest) for i in range(ndim))


def swapaxes(x, a, b):
    if isinstance(x, Tensor):
        return _ops().transpose(x, a, b)
    return x.swapaxes(a, b) if type(x) is np.ndarray else np.swapaxes(x, a, b)


def permute(x, axes):
    if isinstance(x, Tensor):
        return _ops().permute(x, tuple(axes))
    return np.transpose(x, axes)


def matmul(a, b):
    return a @ b


def mean(x, axis=None, keepdims=False):
    if isinstance(x, Tensor):
        return _ops().mean(x, dim=axis, keepdim=keepdims)
    return np.mean(x, axis=axis, keepdims=keepdims)


def cumsum(x, axis):
    if isinstance(x, Tensor):
        return _ops().cumsum(x, axis)
    return np.cumsum(x, axis=axis)


def flip(x, axes):
    if isinstance(x, Tensor):
        return _ops().flip(x, tuple(axes))
    return np.flip(x, axis=tuple(axes))


def inv(x):
    if isinstance(x, Tensor):
        return _ops().inverse(x)
    return np.linalg.inv(x)


def solve(a, b):
    """Solve a x = b for a matrix right-hand side (batch axes broadcast)."""
    if _any_tensor(a, b):
        from .ops.linear_algebra import _linalg_solve
        return _linalg_solve(a, b)
    return np.linalg.solve(a, b)


def diagonal(x, offset, axis1, axis2):
    if isinstance(x, Tensor):
        return _ops().diagonal(x, offset, axis1, axis2)
    return np.diagonal(x, offset, axis1, axis2)



def maximum(a, b):
    if _any_tensor(a, b):
        return _ops().maximum(a, b)
    return np.maximum(a, b)


def zeros_like(x):
    if isinstance(x, Tensor):
        return _ops().zeros_like(x)
    return np.zeros_like(x)


def astype_like(mask, x):
    """A 0/1 mask (bool array or Tensor) as x's dtype, constant for autograd."""
    data = mask._data if isinstance(mask, Tensor) else mask
    dt = x.dtype.np if isinstance(x, Tensor) else getattr(x, "dtype", np.float64)
    return np.asarray(data, dtype=dt)


def data(x):
    """The raw array of x (for masks and indices, which are constants for autograd)."""
    return x._data if isinstance(x, Tensor) else x


def batch_prefix(g, out_ndim: int) -> tuple:
    """The leading batch axes of a gradient (``()`` when not batched)."""
    return tuple(g.shape[:len(g.shape) - out_ndim])


def sum_to(g, shape: tuple, out_ndim: int):
    """Sum a gradient of an expanded tensor back to ``shape``, keeping leading batch axes
    (those beyond ``out_ndim``, the ndim of the op's output)."""
    prefix = len(g.shape) - out_ndim
    lead = out_ndim - len(shape)
    axes = tuple(range(prefix, prefix + lead)) + tuple(
        prefix + lead + i for i, n in enumerate(shape)
        if n == 1 and g.shape[prefix + lead + i] != 1)
    if axes:
        g = sum(g, axis=axes, keepdims=True)
    return reshape(g, tuple(g.shape[:prefix]) + tuple(shape))


def zeros(shape, like):
    if isinstance(like, Tensor):
        return _ops().zeros(*shape, dtype=like.dtype)
    return np.zeros(shape, dtype=like.dtype)
