"""Argument normalization shared by the op modules (dims, shapes, scalars to tensors),
and torch's names of dtypes for its error messages."""

from __future__ import annotations

import builtins
import weakref

import numpy as np

from .. import dtypes
from ..grad_mode import MODE
from ..tensor import Tensor, _make, _norm_dim, _to_array, version_counter

_bool = builtins.bool
_int = builtins.int


def _t(x) -> Tensor:
    """x as a Tensor (constants become tensors that do not require grad)."""
    if isinstance(x, Tensor):
        return x
    return _make(_to_array(x, None))


def _dims(dim, ndim: int) -> tuple:
    if isinstance(dim, (list, tuple)):
        return tuple(sorted({_norm_dim(_int(d), ndim) for d in dim}))
    return (_norm_dim(_int(dim), ndim),)


def size_at(shape: tuple, dim: int) -> int:
    """The size of a normalized dim; a 0-d tensor's one dim has size 1 (torch)."""
    return shape[dim] if shape else 1


def lifted(data: np.ndarray) -> np.ndarray:
    """``data`` with a 0-d array as one element along its one dim, for numpy functions that
    take an axis (argmax, sort, all); their result is reshaped back to ``()`` by the caller."""
    return data.reshape(1) if not data.ndim else data


def _shape_arg(shape, name: str = "reshape", arg: str = "shape") -> tuple:
    """A shape given as ints or as one list/tuple of them; integer numpy scalars and 0-d
    integer tensors count as ints, anything else (2.0, a float tensor) is torch's TypeError
    (int() would have truncated it)."""
    packed = len(shape) == 1 and isinstance(shape[0], (list, tuple))
    if packed:
        shape = shape[0]
    for s in shape:
        if type(s) is not _int:
            return _shape_ints(shape, packed, name, arg)
    return tuple(shape)      # ints already (the usual case: no generator, no conversions)


def _shape_ints(shape, packed: bool, name: str, arg: str) -> tuple:
    out = []
    for i, s in enumerate(shape):
        if isinstance(s, Tensor) and s._data.ndim == 0 and s._data.dtype.kind in "iub":
            s = s._data.item()
        if not isinstance(s, (_int, np.integer, np.bool_)):
            kind = type(s).__name__
            # torch's argument parser, word for word, by how the shape was passed
            if i and (packed or len(shape) > 1):
                message = (f"{name}(): argument '{arg}' failed to unpack the object at pos "
                           f"{i + 1} with error \"type must be tuple of ints,but got {kind}\"")
            elif packed:
                message = (f"{name}(): argument '{arg}' (position 1) must be tuple of ints, "
                           f"but found element of type {kind} at pos 0")
            elif len(shape) == 1:
                message = (f"{name}(): argument '{arg}' (position 1) must be tuple of ints, "
                           f"not {kind}")
            else:
                message = f"{name}() takes 1 positional argument but {len(shape)} were given"
            raise TypeError(message)
        out.append(_int(s))
    return tuple(out)


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
    """Views share their base's version counter, as in torch, and the root base keeps its
    live views (an in-place op through one rebases them all, whether or not the base
    required grad).  A view made with grad mode off of a tensor that requires grad requires
    grad too (with no node: its gradient goes nowhere) and may not be modified in place
    with grad mode on."""
    if out._data.base is None and out._data is not base._data:
        return out
    vc = base._vc
    out._vc = vc if vc is not None else version_counter(base)
    extra = base._extra
    out._extra = {"base": base}
    root = base
    if extra is not None:
        if extra.get("no_grad_view"):
            out._extra["no_grad_view"] = True
            out._rg = base._rg
        if out.grad_fn is not None and extra.get("multi_view") is not None:
            # a view of an output of split/unbind may not be modified in place either
            from ..node import node_label
            out._extra["multi_view"] = (node_label(out.grad_fn), out._nr)
        parent = extra.get("base")
        while parent is not None:
            root = parent
            parent = root._get("base")
    if base._rg and not MODE.grad_enabled:
        out._extra["no_grad_view"] = True
        out._rg = True
    # weak references in a list (a WeakSet costs 2 us to create, per tensor viewed); dead
    # ones are dropped whenever the list reaches a power of two: amortized O(1) and at most
    # twice the live views
    root_extra = root._extra
    views = None if root_extra is None else root_extra.get("views")
    if views is None:
        if root_extra is None:
            root._extra = {"views": [weakref.ref(out)]}
        else:
            root_extra["views"] = [weakref.ref(out)]
        return out
    n = len(views)
    if n >= 8 and not n & (n - 1):
        views[:] = [ref for ref in views if ref() is not None]
    views.append(weakref.ref(out))
    return out


def scalar_type_name(t: Tensor) -> str:
    """torch's name of t's dtype in messages ("Double", "Long"): see dtypes.scalar_type_name."""
    return dtypes.scalar_type_name(t._data.dtype)


def float_kernel(kernel: str, t: Tensor) -> None:
    """torch's error for a floating-point-only kernel given an integer or bool tensor."""
    if t._data.dtype.kind not in "fc":
        raise NotImplementedError(f'"{kernel}" not implemented for \'{scalar_type_name(t)}\'')


def _tensor_of(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x, dtype=None, requires_grad=False)
