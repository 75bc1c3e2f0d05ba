"""In-place updates (``add_``, ``x[key] = v``, ...) with torch's version counter and
view semantics."""

from __future__ import annotations

import builtins

import numpy as np

from ...errors import EngineError
from .. import dtypes
from ..backend import quiet
from ..grad_mode import MODE, enable_grad, no_grad
from ..node import CopySlices, OpNode
from ..primitive import apply
from ..tensor import Tensor, _make, bump_version, version_counter
from .common import _t
from ..prims import inplace as inplace_prims
from ..prims import shape as shape_prims
from .indexing import _full_slice, _index_key, _is_int, getitem
from . import pointwise
from .pointwise import add, clamp, div, masked_fill, mul, pow, sub
from .shape import broadcast_to, reshape, to

_sum = builtins.sum


# ---- in-place -------------------------------------------------------------------------------
LEAF_INPLACE = "a leaf Variable that requires grad is being used in an in-place operation."
VIEW_OF_LEAF_INPLACE = ("a view of a leaf Variable that requires grad is being used in an "
                        "in-place operation.")
NO_GRAD_VIEW_INPLACE = (
    "A view was created in no_grad mode and is being modified inplace with grad mode enabled. "
    "Given that this use case is ambiguous and error-prone, it is forbidden. You can clarify "
    "your code by moving both the view and the inplace either both inside the no_grad block "
    "(if you don't want the inplace to be tracked) or both outside (if you want the inplace "
    "to be tracked).")
INTERNAL_OVERLAP = ("unsupported operation: more than one element of the written-to tensor "
                    "refers to a single memory location. Please clone() the tensor before "
                    "performing the operation.")


def _overlaps(data: np.ndarray) -> bool:
    """Whether elements share memory (an expanded tensor: a stride of 0 on a dimension
    longer than 1), as torch's has_internal_overlap."""
    if data.size == 0 or 0 not in data.strides:
        return False
    return builtins.any(stride == 0 and n > 1 for n, stride in zip(data.shape, data.strides))


def _check_overlap(t: Tensor) -> None:
    """torch refuses to write elementwise into a tensor whose elements share memory."""
    if _overlaps(t._data):
        raise EngineError(INTERNAL_OVERLAP)


def _root(t: Tensor):
    """The tensor whose memory ``t`` views (None when ``t`` is not a view)."""
    base = t._get("base")
    if base is None:
        return None
    while base._get("base") is not None:
        base = base._get("base")
    return base


def _check_writable(t: Tensor, *others) -> None:
    """Before writing into ``t`` (with ``others``): autograd's refusals, then the overlap."""
    if MODE.grad_enabled and (t._rg or builtins.any(isinstance(o, Tensor) and o._rg
                                                     for o in others)):
        _check_allowed(t)
    _check_overlap(t)


def _check_allowed(t: Tensor) -> None:
    """torch's refusals of an in-place op recorded by autograd, in its order."""
    if t._get("no_grad_view"):
        if t.grad_fn is not None:
            from ..node import node_label
            raise EngineError(f"Output {t._nr} of {node_label(t.grad_fn)} is a view of a view "
                              "which was created in no_grad mode and is being modified "
                              "inplace with grad mode enabled."
                              + NO_GRAD_VIEW_INPLACE.split("enabled.", 1)[1])
        raise EngineError(NO_GRAD_VIEW_INPLACE)
    if t._rg and t.grad_fn is None:
        raise EngineError(LEAF_INPLACE)
    multi = t._get("multi_view")
    if multi is not None and t._rg:
        raise EngineError(f"Output {multi[1]} of {multi[0]} is a view and is being modified "
                          "inplace. This view is the output of a function that returns "
                          "multiple views. Such functions do not allow the output views to "
                          "be modified inplace. You should replace the inplace operation by "
                          "an out-of-place one.")
    base = _root(t)
    if base is not None and base._rg and base.grad_fn is None:
        raise EngineError(VIEW_OF_LEAF_INPLACE)


def _addresses(data: np.ndarray) -> np.ndarray:
    """The byte address of each element of ``data``, in C order of its indices."""
    start = data.__array_interface__["data"][0]
    if data.ndim == 0:
        return np.asarray([start], dtype=np.int64)
    grid = np.indices(data.shape, dtype=np.int64, sparse=True)
    return (start + _sum(g * st for g, st in zip(grid, data.strides))).reshape(-1)


def _view_positions(view: Tensor, base: Tensor):
    """For each element of ``view``, its flat (C order) position in ``base`` whose memory
    it shares; None when some element is not in ``base``."""
    b, v = base._data, view._data
    if v.dtype != b.dtype:
        return None
    if v.size == 0:
        return np.zeros(v.shape, dtype=np.int64)
    item = b.itemsize
    if b.flags.c_contiguous:
        # position = (address - base address) / itemsize, read off the view's strides
        offset = v.__array_interface__["data"][0] - b.__array_interface__["data"][0]
        if offset % item or builtins.any(st % item for st in v.strides):
            return None
        start = offset // item
        steps = [st // item for st in v.strides]
        low = start + _sum((n - 1) * st for n, st in zip(v.shape, steps) if st < 0)
        high = start + _sum((n - 1) * st for n, st in zip(v.shape, steps) if st > 0)
        if low < 0 or high >= b.size:
            return None
        if not v.ndim:
            return np.asarray(start, dtype=np.int64)
        grid = np.indices(v.shape, dtype=np.int64, sparse=True)
        return start + _sum(g * st for g, st in zip(grid, steps))
    base_at = _addresses(b)
    order = np.argsort(base_at, kind="stable")
    sorted_at = base_at[order]
    view_at = _addresses(v)
    found = np.searchsorted(sorted_at, view_at).clip(0, len(sorted_at) - 1)
    if not np.array_equal(sorted_at[found], view_at):
        return None
    return order[found].reshape(v.shape)


def _rebased(t: Tensor, node) -> None:
    """``t`` now comes from ``node``: remember it on ``t``'s old node, so a version error
    about a value saved from ``t`` names ``t``'s current node (as torch does, whose saved
    variable keeps the tensor and so its grad_fn alive: the link is strong, and it names the
    node even after ``t`` is gone, e.g. a tensor local to a function under jacobian)."""
    old = t.grad_fn
    if old is not None and node is not None and old is not node:
        old._meta("rebased", dict)[t._nr] = node


def _inplace_on_view(view: Tensor, base: Tensor, positions, compute, others,
                     tracking: bool) -> Tensor:
    """An in-place op on a view, as torch's CopySlices: the op runs on a snapshot of the
    view, its result is written into the base at the view's elements (flat ``positions``),
    the base is rebased onto a CopySlices node wrapping the op's node, and every live view
    onto a read of the new base (AsStridedBackward0)."""
    old = _make(view._data.copy(), view.grad_fn, view._rg)
    old._nr = view._nr
    old._fw = view._fw
    values = compute(old, *others)
    if values._data.dtype != view._data.dtype:
        _check_cast(values._data.dtype, view._data.dtype)
    if tuple(values.shape) != tuple(view.shape):
        try:
            np.broadcast_to(values._data, view._data.shape)
        except ValueError:
            raise EngineError(f"output with shape {list(view.shape)} doesn't match the "
                              f"broadcast shape {list(values.shape)}") from None
    fn = values.grad_fn
    old_edge = old.grad_fn if old._rg else None
    if tracking and fn is not None and values._nr == 0 and fn.n_outputs == 1 and \
            fn.next_nodes and fn.next_nodes[0] is old_edge and \
            values._data.shape == view._data.shape:
        # the op's node is wrapped: CopySlices' edges are torch's (a result of a wider float
        # dtype, x.sub_(y) with y float64, is cast on writing, as torch computes it in x's
        # dtype: no ToCopy node; the engine casts each gradient to its input's dtype)
        node = CopySlices(base.grad_fn, base._nr, fn, positions, _overlaps(view._data))
    else:
        # something else happened after the op (a cast, a broadcast): index_put the result
        if values._data.dtype != view._data.dtype:
            values = to(values, view.dtype)
        if tuple(values.shape) != tuple(view.shape):
            values = broadcast_to(values, view.shape)
        base_old = _make(base._data.copy(), base.grad_fn, base._rg)
        base_old._nr = base._nr
        if base._data.ndim:
            written = apply(shape_prims.index_put, (base_old, values),
                            {"key": np.unravel_index(positions, base._data.shape)})
        else:       # a 0-d base: its one element, through a 1-element view of it
            written = reshape(apply(shape_prims.index_put, (reshape(base_old, 1), values),
                                    {"key": (positions,)}), ())
        node = written.grad_fn
    new_data = base._data.copy()
    new_data.reshape(-1)[positions] = values._data        # a copy: C-contiguous
    base_new = _make(new_data, node if tracking else None, tracking)
    if MODE.fw_level and (base._fw is not None or values._fw is not None):
        tangent = np.zeros(new_data.shape, new_data.dtype) if base._fw is None else \
            np.array(base._fw[1], dtype=new_data.dtype, order="C", copy=True)
        tangent.reshape(-1)[positions] = 0 if values._fw is None else values._fw[1]
        base_new._fw = (MODE.fw_level, tangent)
    np.copyto(base._data, new_data)            # the views share this memory
    bump_version(base)
    if not tracking:
        _refresh_views(base)
    if tracking:
        _rebased(base, node)
        base.grad_fn, base._nr, base._rg = node, 0, True
    if MODE.fw_level:
        base._fw = base_new._fw
    live = [ref() for ref in base._get("views") or ()]
    views = [other for other in live if other is not None and other is not view] + [view]
    for other in views:                          # every live view now reads the new base
        where = positions if other is view else _view_positions(other, base)
        if where is None:
            continue
        other_new = apply(inplace_prims.rebased_view, (base_new,), {"positions": where})
        if tracking and not other._get("no_grad_view"):
            _rebased(other, other_new.grad_fn)
            other.grad_fn, other._nr, other._rg = other_new.grad_fn, 0, other_new._rg
        if MODE.fw_level and other_new._fw is not None:
            other._fw = (other_new._fw[0], np.asarray(other_new._fw[1]).reshape(other.shape))
    return view


def _refresh_views(t: Tensor) -> None:
    """After ``t`` was changed in place: every other live view of its memory that requires
    grad now reads the new value, AsStridedBackward0 of the base's current node (torch
    regenerates a view's grad_fn when its version changed: after an in-place op on the
    base, under no_grad, or through a detached alias; lazily, when next used, which gives
    the same graph since every change comes through here)."""
    if t._extra is None:
        return
    root = _root(t)
    if root is None:
        root = t
    roots = [root]
    alias = root._get("alias_of")
    while alias is not None and alias() is not None and len(roots) < 100:
        roots.append(alias())      # a detached alias: the views of the memory it aliases
        alias = roots[-1]._get("alias_of")
    for base in roots:
        views = base._get("views")
        if not views or not base._rg:
            continue
        with enable_grad():
            for ref in list(views):
                view = ref()
                if view is None or not view._rg or \
                        view._get("no_grad_view") or view._get("multi_view") is not None:
                    continue        # (torch refuses to regenerate a split/unbind output)
                where = _view_positions(view, base)
                if where is None:
                    continue
                fresh = apply(inplace_prims.rebased_view, (base,), {"positions": where})
                _rebased(view, fresh.grad_fn)
                view.grad_fn, view._nr = fresh.grad_fn, 0


def _refresh_view_tangents(base: Tensor) -> None:
    """Forward AD: after ``base`` was changed in place, its live views read their tangents
    from its new one (torch's view tangents are views of the base's)."""
    views = base._get("views")
    if not views or base._fw is None:
        return
    flat = np.ascontiguousarray(base._fw[1]).reshape(-1)
    for ref in views:
        view = ref()
        if view is None or view._fw is None:
            continue
        where = _view_positions(view, base)
        if where is not None:
            view._fw = (base._fw[0], flat[where])


def _check_cast(source, target) -> None:
    if source != target and not np.can_cast(source, target, "same_kind"):
        raise EngineError(f"result type {dtypes.scalar_type_name(source)} can't "
                          f"be cast to the desired output type "
                          f"{dtypes.scalar_type_name(target)}")


def _dual(self: Tensor, others) -> bool:
    """Whether forward-mode AD follows this in-place op (a tangent in or on a view's base)."""
    if not MODE.fw_level:
        return False
    if self._fw is not None or builtins.any(isinstance(o, Tensor) and o._fw is not None
                                            for o in others):
        return True
    base = _root(self)
    return base is not None and base._fw is not None


def _inplace(self: Tensor, compute, *others, overlap: bool = True) -> Tensor:
    """Run ``compute(self, *others)`` out of place and write the result into ``self``.

    With grad mode on and something requiring grad, ``self`` is rebased onto the new node
    (the old value is snapshotted so the new node's saved inputs stay valid); the version
    counter is bumped so nodes that saved the old value refuse to backward.  A view writes
    through its base (CopySlices).  ``overlap``: refuse an expanded ``self`` (torch does, but
    not for fills)."""
    tracking = MODE.grad_enabled and (self._rg or builtins.any(
        isinstance(o, Tensor) and o._rg for o in others))
    dual = _dual(self, others)
    if tracking:
        _check_allowed(self)
    if overlap:
        _check_overlap(self)
    base = _root(self) if tracking or dual else None
    if base is not None:
        positions = _view_positions(self, base)
        if positions is None:
            raise EngineError("gradtool does not support in-place operations on this view "
                              "of a tensor that requires grad; use the out-of-place "
                              "operation (e.g. y = y + 1) instead")
        if tracking:
            return _inplace_on_view(self, base, positions, compute, others, True)
        with no_grad():
            return _inplace_on_view(self, base, positions, compute, others, False)
    if tracking:
        old = _make(self._data.copy(), self.grad_fn, self._rg)
        old._nr = self._nr
        old._fw = self._fw
        result = compute(old, *others)
    else:
        with no_grad():
            result = compute(self, *others)
    data = result._data
    _check_cast(data.dtype, self._data.dtype)
    if data.shape != self._data.shape:
        try:
            data = np.broadcast_to(data, self._data.shape)
        except ValueError:
            raise EngineError(f"output with shape {list(self._data.shape)} doesn't match the "
                              f"broadcast shape {list(data.shape)}") from None
    np.copyto(self._data, data, casting="unsafe")
    bump_version(self)
    if dual:
        # forward AD: the tangent follows the in-place update (torch); a write that does not
        # depend on a tangent leaves a zero one
        fw = result._fw
        if fw is None:
            fw = (MODE.fw_level, np.zeros(self._data.shape, self._data.dtype))
        elif fw[1].shape != self._data.shape or fw[1].dtype != self._data.dtype:
            fw = (fw[0], np.broadcast_to(fw[1], self._data.shape).astype(self._data.dtype))
        self._fw = fw
        _refresh_view_tangents(self)
    if tracking:
        fn = result.grad_fn
        _rebased(self, fn)
        self.grad_fn = fn
        self._nr = result._nr
        self._rg = result._rg
        if type(fn).__mro__[1] is OpNode and fn.out_vc is not None and fn.out_vc is result._vc:
            # the node saved its result, which is now self: a later in-place change of self
            # is a version error (torch: exp_ then mul_)
            fn.out_vc = version_counter(self)
            fn.out_version = self._version
    _refresh_views(self)
    return self


def _numpy_inplace(self: Tensor, ufunc, other) -> bool:
    """``self op= other`` straight into ``self``'s memory (numpy's ``out=``) when nothing is
    recorded (no grad tracking, no forward-mode tangent) and the result has ``self``'s
    dtype and shape anyway: a Tensor of the same floating dtype and shape (or 0-d), or a
    Python number.  Returns False for everything else (``_inplace`` decides)."""
    if MODE.grad_enabled and (self._rg or (isinstance(other, Tensor) and other._rg)):
        return False
    _check_overlap(self)
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
    _refresh_views(self)
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
    if isinstance(other, Tensor) and (other is self or (
            MODE.fw_level and np.may_share_memory(self._data, other._data))):
        return _inplace(self, lambda s, o: _mul_aliased(s, o, self), other)
    return _inplace(self, mul, other)


def _mul_aliased(s, o, target):
    """``x.mul_(y)`` where y shares memory with x (y is x, or a view of the same elements):
    torch's forward-mode formula writes x's tangent first (t_x y) and then reads y's tangent,
    which now holds that write where it aliases x, so the tangent is t_x y + t_y' x_old."""
    out = mul(s, o)
    if out._fw is None or s._fw is None or o._fw is None:
        return out
    first = np.broadcast_to(s._fw[1] * o._data, s._data.shape)
    if o is target:
        after = first
    else:
        root = _root(target)
        root = target if root is None else root
        at_x, at_y = _view_positions(target, root), _view_positions(o, root)
        if at_x is None or at_y is None:
            return out
        flat = np.zeros(root._data.size, dtype=first.dtype)
        flat[at_y.reshape(-1)] = np.broadcast_to(o._fw[1], o._data.shape).reshape(-1)
        flat[at_x.reshape(-1)] = first.reshape(-1)
        after = flat[at_y]
    out._fw = (out._fw[0], first + after * s._data)
    return out


def div_(self, other):
    if _numpy_inplace(self, np.true_divide, other):
        return self
    return _inplace(self, div, other)


def pow_(self, exponent):
    return _inplace(self, pow, exponent)


def clamp_(self, min=None, max=None):
    return _inplace(self, lambda s: clamp(s, min, max))


def _unary_inplace(op):
    def method(self):
        return _inplace(self, op)
    method.__name__ = op.__name__ + "_"
    method.__doc__ = f"``{op.__name__}`` in place (torch records the node of ``{op.__name__}``)."
    return method


# x.exp_(), x.relu_(), ...: the out-of-place op written back into x
abs_ = _unary_inplace(pointwise.abs)
ceil_ = _unary_inplace(pointwise.ceil)
cos_ = _unary_inplace(pointwise.cos)
exp_ = _unary_inplace(pointwise.exp)
floor_ = _unary_inplace(pointwise.floor)
log_ = _unary_inplace(pointwise.log)
neg_ = _unary_inplace(pointwise.neg)
reciprocal_ = _unary_inplace(pointwise.reciprocal)
relu_ = _unary_inplace(pointwise.relu)
round_ = _unary_inplace(pointwise.round)
sigmoid_ = _unary_inplace(pointwise.sigmoid)
sign_ = _unary_inplace(pointwise.sign)
sin_ = _unary_inplace(pointwise.sin)
sqrt_ = _unary_inplace(pointwise.sqrt)
square_ = _unary_inplace(pointwise.square)
tanh_ = _unary_inplace(pointwise.tanh)
trunc_ = _unary_inplace(pointwise.trunc)


def clamp_min_(self, min):
    return _inplace(self, lambda s: pointwise.clamp_min(s, min))


def clamp_max_(self, max):
    return _inplace(self, lambda s: pointwise.clamp_max(s, max))


def zero_(self):
    if MODE.grad_enabled and self._rg or _dual(self, ()):
        return _inplace(self, lambda s: apply(inplace_prims.zero, (s,)), overlap=False)
    self._data[...] = 0
    bump_version(self)
    _refresh_views(self)
    return self


def fill_(self, value):
    if isinstance(value, Tensor):
        if value._data.ndim:
            raise EngineError("fill_ only supports 0-dimension value tensor but got tensor "
                              f"with {value._data.ndim} dimensions.")
        if MODE.grad_enabled and (self._rg or value._rg) or _dual(self, (value,)):
            return _inplace(self, lambda s, v: apply(inplace_prims.fill_tensor, (s, v)), value,
                            overlap=False)
        value = value._data
    elif MODE.grad_enabled and self._rg or _dual(self, ()):
        return _inplace(self, lambda s: apply(inplace_prims.fill, (s,), {"value": value}),
                        overlap=False)
    self._data[...] = value
    bump_version(self)
    _refresh_views(self)
    return self


def _broadcast_error(dst_shape: tuple, src_shape: tuple) -> str:
    """torch's message when ``src`` cannot be written into ``dst`` elementwise."""
    for k in range(1, min(len(dst_shape), len(src_shape)) + 1):
        a, b = dst_shape[-k], src_shape[-k]
        if a != b and a != 1 and b != 1:
            return (f"The size of tensor a ({a}) must match the size of tensor b ({b}) at "
                    f"non-singleton dimension {len(dst_shape) - k}")
    return (f"output with shape {list(dst_shape)} doesn't match the broadcast shape "
            f"{list(np.broadcast_shapes(dst_shape, src_shape))}")


def copy_(self, src, non_blocking=False):
    src = _t(src)
    if src._data.shape != self._data.shape:
        try:
            shape = np.broadcast_shapes(self._data.shape, src._data.shape)
        except ValueError:
            shape = None
        if shape != self._data.shape:
            raise EngineError(_broadcast_error(self._data.shape, src._data.shape))
    _check_writable(self, src)
    if MODE.grad_enabled and (self._rg or src._rg) or _dual(self, (src,)):
        return _inplace(self, lambda s, o: apply(inplace_prims.copy, (s, o)), src)
    np.copyto(self._data, src._data, casting="unsafe")
    bump_version(self)
    _refresh_views(self)
    return self


def masked_fill_(self, mask, value):
    """``self[mask] = value`` where mask broadcasts to self (MaskedFillBackward0/1)."""
    mask = _t(mask)
    if mask._data.dtype == np.bool_ and mask._data.shape != self._data.shape:
        try:
            shape = np.broadcast_shapes(self._data.shape, mask._data.shape)
        except ValueError:
            shape = None
        if shape != self._data.shape:
            raise EngineError(_broadcast_error(self._data.shape, mask._data.shape))
    if isinstance(value, Tensor):
        return _inplace(self, lambda s, v: masked_fill(s, mask, v), value, overlap=False)
    return _inplace(self, lambda s: masked_fill(s, mask, value), overlap=False)


def _trivial(key: tuple, shape: tuple) -> bool:
    """Whether ``x[key]`` is ``x`` itself for torch's setitem (only Ellipsis and slices that
    take a whole dim, which torch skips)."""
    dim = 0
    for k in key:
        if k is Ellipsis:
            dim = len(shape) - _sum(1 for j in key if j is not Ellipsis)
        elif isinstance(k, slice) and dim < len(shape) and _full_slice(k, shape[dim]):
            dim += 1
        else:
            return False
    return True


def _advanced(k) -> bool:
    """An index numpy and torch treat as advanced (a boolean scalar adds a masked dim)."""
    return isinstance(k, (bool, np.bool_)) or isinstance(k, np.ndarray) and not _is_int(k)


def setitem(self, key, value) -> None:
    """``x[key] = value`` as torch does it: basic indexing makes a view of x (none for ``...``
    and whole slices) that is filled (a 0-d value) or copied into (the value broadcast);
    advanced indices write with index_put (IndexPutBackward0, or CopySlices when a view
    was sliced first)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        kind = "numpy.ndarray" if isinstance(value, np.ndarray) else type(value).__name__
        raise TypeError(f"can't assign a {kind} to a torch.{_type_name(self)}")
    if _plain_setitem(self, key, value):
        return
    raw_key = key
    key = _index_key(key)
    if builtins.any(_advanced(k) for k in key):
        _index_put(self, key, value)
        return
    target = self if _trivial(key, self._data.shape) else getitem(self, raw_key)
    value = _t(value)
    if value._data.shape == target._data.shape:
        copy_(target, value)
    elif value._data.ndim == 0:
        _check_writable(target, value)
        fill_(target, value)
    else:
        # torch: the value viewed without all its leading 1s (a ViewBackward0 even when
        # there are none), then expanded to the target unless it already has its shape
        lead = 0
        while lead < value._data.ndim and value._data.shape[lead] == 1:
            lead += 1
        value = value.view(value._data.shape[lead:])
        if value._data.shape != target._data.shape:
            value = broadcast_to(value, target._data.shape)
        copy_(target, value)


def _plain_setitem(self: Tensor, key, value) -> bool:
    """``x[key] = number`` with an int or slice key (or a tuple of them) and nothing to
    record (no grad tracking, no tangent, no shared elements): numpy's assignment, which
    does what torch's fill does.  Returns False for everything else."""
    if type(value) not in (float, int) or self._rg and MODE.grad_enabled or \
            self._fw is not None and MODE.fw_level:
        return False
    keys = key if type(key) is tuple else (key,)
    for k in keys:
        if type(k) is slice:
            if k.step is not None and (type(k.step) is not int or k.step <= 0):
                return False      # torch refuses a step below 1 (numpy would reverse)
        elif type(k) is not int:
            return False
    data = self._data
    if 0 in data.strides or not data.ndim or not data.flags.writeable:
        return False          # (an expanded or 0-d tensor: torch's checks and errors)
    base = _root(self)
    if base is not None and base._fw is not None and MODE.fw_level:
        return False
    try:
        data[key] = value
    except (IndexError, ValueError, TypeError):
        return False          # torch's error, from the general path
    bump_version(self)
    _refresh_views(self)
    return True


def _type_name(t: Tensor) -> str:
    from ..node import type_name
    return type_name(t._data)


def _index_put(self, key: tuple, value) -> None:
    """``self[key] = value`` with advanced indices in the key."""
    value = _t(value)
    try:
        result_shape = np.empty(self._data.shape, dtype="V0")[key].shape
    except IndexError as exc:
        raise IndexError(str(exc).split(": ", 1)[-1].replace(" for axis ", " for dimension ")) \
            from None
    shape = value._data.shape
    while len(shape) > len(result_shape) and shape[0] == 1:
        shape = shape[1:]
    try:
        fits = len(shape) <= len(result_shape) and \
            np.broadcast_shapes(result_shape, shape) == result_shape
    except ValueError:
        fits = False
    if not fits:
        raise EngineError(f"shape mismatch: value tensor of shape {list(value._data.shape)} "
                          f"cannot be broadcast to indexing result of shape "
                          f"{list(result_shape)}")
    if shape != value._data.shape:
        value = value.reshape(shape)
    value = to(value, self._data.dtype)
    tracking = MODE.grad_enabled and (self._rg or value._rg)
    if not tracking and not _dual(self, (value,)):
        self._data[key] = value._data
        bump_version(self)
        _refresh_views(self)
        return
    basic = builtins.all(k is Ellipsis or (isinstance(k, slice) and k == slice(None))
                         or _advanced(k) for k in key)
    prim = inplace_prims.index_put if basic else shape_prims.index_put
    _inplace(self, lambda s, v: apply(prim, (s, v), {"key": key}), value, overlap=False)


def uniform_(self, a=0.0, b=1.0, generator=None):
    from ..random import _rng
    return _fill_random(self, lambda: _rng(generator).uniform(a, b, self.shape))


def normal_(self, mean=0.0, std=1.0, generator=None):
    from ..random import _rng
    return _fill_random(self, lambda: _rng(generator).normal(mean, std, self.shape))


def _fill_random(self, values):
    _check_overlap(self)
    if MODE.grad_enabled and self._rg:
        _check_allowed(self)
    self._data[...] = values()
    bump_version(self)
    _refresh_views(self)
    return self
