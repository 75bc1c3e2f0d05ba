"""Operators and torch-style methods of :class:`Tensor`, bound to the functions in ops."""

from __future__ import annotations

from . import ops, torch_parity
from .ops import METHOD_NAMES
from .prims import elementwise as E
from .primitive import apply, apply_binary
from .tensor import Tensor


def _rsub(self, other):
    return apply(E.rsub, (self, other))


def _rdiv(self, other):
    return ops.mul(ops.reciprocal(self), other)


def _contiguous(self, memory_format=None):
    """Itself when already contiguous, else a contiguous copy (CloneBackward0, as torch)."""
    return self if self._data.flags.c_contiguous else ops.clone(self)


def _rmatmul(self, other):
    return ops.matmul(other, self)


def _bind() -> None:
    T = Tensor
    T.__add__ = lambda self, other: apply_binary(E.add, self, other)
    T.__radd__ = lambda self, other: apply_binary(E.add, other, self)
    T.__sub__ = lambda self, other: apply_binary(E.sub, self, other)
    T.__rsub__ = _rsub
    T.__mul__ = lambda self, other: apply_binary(E.mul, self, other)
    T.__rmul__ = lambda self, other: apply_binary(E.mul, other, self)
    T.__truediv__ = lambda self, other: apply_binary(E.div, self, other)
    T.__rtruediv__ = _rdiv
    T.__pow__ = ops.pow
    T.__rpow__ = lambda self, other: apply(E.rpow, (self,), {"base": other})
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
    T.__invert__ = ops.logical_not
    T.__and__ = ops.logical_and
    T.__or__ = ops.logical_or
    T.__getitem__ = ops.getitem
    T.__setitem__ = ops.setitem
    T.__iadd__ = ops.add_
    T.__isub__ = ops.sub_
    T.__imul__ = ops.mul_
    T.__itruediv__ = ops.div_
    T.__floordiv__ = lambda self, other: ops.div(self, other, rounding_mode="floor")
    T.__mod__ = ops.remainder
    T.__rmod__ = lambda self, other: ops.remainder(other, self)
    T.T = property(ops._T)
    T.mT = property(ops._mT)
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
    for name in torch_parity.FUNCTIONS:
        if not hasattr(T, name) and name not in ("numel", "get_default_dtype"):
            setattr(T, name, getattr(torch_parity, name))
    for name, method in torch_parity.METHODS.items():
        setattr(T, name, method)


OVERRIDE = frozenset()

_bind()
