"""In-place updates (``add_``, ``x[key] = v``, ...) with torch's version counter and
view semantics."""

from __future__ import annotations

import builtins

import numpy as np

from ...errors import EngineError
from .. import dtypes
from ..backend import quiet
from ..grad_mode import MODE, no_grad
from ..primitive import apply
from ..tensor import Tensor, _make, bump_version
from .common import _t
from .indexing import _index_key, getitem
from .pointwise import add, clamp, div, mul, pow, sub
from .shape import assignable, broadcast_to, to

_sum = builtins.sum


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
            raise EngineError(f"result type {dtypes.scalar_type_name(values._data)} can't be "
                              "cast to the desired output type "
                              f"{dtypes.scalar_type_name(view._data)}")
        values = to(values, view.dtype)
    if tuple(values.shape) != tuple(view.shape):
        values = broadcast_to(values, view.shape)
    base_old = _make(base._data.copy(), base.grad_fn, base._rg)
    base_old._nr = base._nr
    from ..prims import shape as shape_prims
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
        raise EngineError(f"result type {dtypes.scalar_type_name(data)} can't "
                          f"be cast to the desired output type "
                          f"{dtypes.scalar_type_name(self._data)}")
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
    # torch checks the value's shape first (before the leaf and version checks)
    assignable(value, np.broadcast_to(np.empty((), np.bool_), self._data.shape)[key].shape,
               any(isinstance(k, np.ndarray) and k.ndim for k in key))
    tracking = MODE.grad_enabled and (self._rg or (isinstance(value, Tensor) and value._rg))
    dual = MODE.fw_level and (self._fw is not None or (isinstance(value, Tensor)
                                                        and value._fw is not None))
    if not tracking and not dual:
        self._data[key] = value._data if isinstance(value, Tensor) else value
        bump_version(self)
        return
    from ..prims import shape as shape_prims
    _inplace(self, lambda s, v: apply(shape_prims.index_put, (s, _t(v)), {"key": key}),
             value)


def uniform_(self, a=0.0, b=1.0, generator=None):
    from ..random import _rng
    return _fill_random(self, _rng(generator).uniform(a, b, self.shape))


def normal_(self, mean=0.0, std=1.0, generator=None):
    from ..random import _rng
    return _fill_random(self, _rng(generator).normal(mean, std, self.shape))


def _fill_random(self, values):
    if MODE.grad_enabled and self._rg and self.grad_fn is None:
        raise EngineError(LEAF_INPLACE)
    self._data[...] = values
    bump_version(self)
    return self
