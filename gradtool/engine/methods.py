"""Operators and torch-style methods of :class:`Tensor`, bound to the functions in ops."""

from __future__ import annotations

import numpy as np

from . import dtypes, ops
from .ops import METHOD_NAMES
from .ops.shape import _T, _mT
from .prims import elementwise
from .primitive import OPERANDS, apply, apply_binary
from .tensor import Tensor, _make


def _rsub(self, other):
    if isinstance(other, (int, float)) and not isinstance(other, bool):
        return apply(elementwise.rsub_scalar, (self,), {"other": other})   # RsubBackward1
    return apply(elementwise.rsub, (self, other))


def _rdiv(self, other):
    return ops.mul(ops.reciprocal(self), other)


def _contiguous(self, memory_format=None):
    """Itself when already contiguous, else a contiguous copy (CloneBackward0, as torch)."""
    return self if self._data.flags.c_contiguous else ops.clone(self)


def _rmatmul(self, other):
    return ops.matmul(other, self)


#: functions of torch's API around autograd that are also Tensor methods
FUNCTION_METHODS = ("isnan", "isinf", "isfinite", "isclose", "allclose", "equal", "all", "any",
                    "nonzero", "count_nonzero", "floor", "ceil", "trunc", "round", "frac",
                    "tril", "triu", "argsort", "sort", "topk", "narrow")


# ---- methods ----------------------------------------------------------------------------------
def _type(self, dtype=None, non_blocking: bool = False):
    """``x.type()`` is torch's legacy type name; ``x.type(dtype)`` converts."""
    if dtype is None:
        from .node import type_name
        return "torch." + type_name(self._data)
    return ops.to(self, dtype)


def _new(self, data, dtype=None, requires_grad: bool = False) -> Tensor:
    out = _make(np.array(data, dtype=dtypes.to_np(dtype) or self._data.dtype))
    return out.requires_grad_(True) if requires_grad else out


def _size_args(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(size)


#: torch's methods around autograd that have no function of the same name
EXTRA_METHODS = {
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
    "masked_fill_": ops.inplace.masked_fill_,
    "where": lambda self, condition, other: ops.where(condition, self, other),
}


def _operator(fn, operands=OPERANDS):
    """The operator ``fn`` returning NotImplemented for an operand torch's refuse: then
    ``x == [1, 2]`` is False and ``x < [1, 2]`` / ``x ** (1, 2)`` / ``x += [1]`` are Python's
    TypeError ("'<' not supported between instances of 'Tensor' and 'list'")."""
    def operator(self, other):
        if not isinstance(other, operands):
            return NotImplemented
        return fn(self, other)
    operator.__name__ = getattr(fn, "__name__", "operator")
    return operator


def _bind() -> None:
    T = Tensor
    T.__add__ = lambda self, other: apply_binary(elementwise.add, self, other)
    # 2 + x and 2 * x: torch records add(x, 2) and mul(x, 2) (the tensor's edge first)
    T.__radd__ = lambda self, other: apply_binary(elementwise.add, self, other)
    T.__sub__ = lambda self, other: apply_binary(elementwise.sub, self, other)
    T.__rsub__ = _rsub
    T.__mul__ = lambda self, other: apply_binary(elementwise.mul, self, other)
    T.__rmul__ = lambda self, other: apply_binary(elementwise.mul, self, other)
    T.__truediv__ = lambda self, other: apply_binary(elementwise.div, self, other)
    T.__rtruediv__ = _rdiv
    T.__pow__ = ops.pow
    T.__rpow__ = lambda self, other: apply(elementwise.rpow, (self,), {"base": other})
    T.__matmul__ = ops.matmul
    T.__rmatmul__ = _rmatmul
    T.__neg__ = ops.neg
    T.__pos__ = lambda self: self
    T.__abs__ = ops.abs
    T.__eq__ = ops.eq
    T.__ne__ = ops.ne
    T.__lt__ = ops.lt
    T.__le__ = ops.le
    T.__gt__ = ops.gt
    T.__ge__ = ops.ge
    # bitwise, as torch's operators (logical on bool tensors)
    T.__invert__ = ops.bitwise_not
    T.__and__ = ops.bitwise_and
    T.__or__ = ops.bitwise_or
    T.__xor__ = ops.bitwise_xor
    T.__rand__ = lambda self, other: ops.bitwise_and(other, self)
    T.__ror__ = lambda self, other: ops.bitwise_or(other, self)
    T.__rxor__ = lambda self, other: ops.bitwise_xor(other, self)
    T.__getitem__ = ops.getitem
    T.__setitem__ = ops.setitem
    T.__iadd__ = ops.add_
    T.__isub__ = ops.sub_
    T.__imul__ = ops.mul_
    T.__itruediv__ = ops.div_
    T.__floordiv__ = lambda self, other: ops.div(self, other, rounding_mode="floor")
    T.__mod__ = ops.remainder
    T.__rmod__ = lambda self, other: ops.remainder(other, self)
    for name in ("__matmul__", "__rmatmul__"):        # x @ 2: Python's TypeError, as torch
        setattr(T, name, _operator(getattr(T, name), (Tensor, np.ndarray)))
    for name in ("__rsub__", "__rtruediv__", "__pow__", "__rpow__", "__eq__", "__ne__",
                 "__lt__", "__le__", "__gt__", "__ge__", "__and__", "__or__", "__xor__",
                 "__rand__", "__ror__", "__rxor__", "__iadd__", "__isub__", "__imul__",
                 "__itruediv__", "__floordiv__", "__mod__", "__rmod__"):
        setattr(T, name, _operator(getattr(T, name)))
    T.T = property(_T)
    T.mT = property(_mT)
    for name in METHOD_NAMES:
        if not hasattr(T, name) or name in OVERRIDE:
            setattr(T, name, getattr(ops, name))
    T.float = lambda self: ops.to(self, "float32")
    T.double = lambda self: ops.to(self, "float64")
    T.long = lambda self: ops.to(self, "int64")
    T.int = lambda self: ops.to(self, "int32")
    T.bool = lambda self: ops.to(self, "bool")
    T.type_as = lambda self, other: ops.to(self, other.dtype)
    T.contiguous = _contiguous
    T.is_contiguous = lambda self, memory_format=None: bool(self._data.flags.c_contiguous)
    T.view_as = lambda self, other: ops.view(self, other.shape)
    T.reshape_as = lambda self, other: ops.reshape(self, other.shape)
    T.expand = lambda self, *shape: ops.broadcast_to(self, *shape)
    T.cpu = lambda self: self
    for name in FUNCTION_METHODS:
        if not hasattr(T, name):
            setattr(T, name, getattr(ops, name))
    for name, method in EXTRA_METHODS.items():
        setattr(T, name, method)


OVERRIDE = frozenset()

_bind()
