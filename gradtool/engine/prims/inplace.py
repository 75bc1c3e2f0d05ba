"""The out-of-place forms of torch's in-place writes, named as torch names their nodes.

``ops/inplace.py`` runs one of these on a snapshot of the tensor and writes the result back
(rebasing the tensor onto the new node): ``zero_`` (ZeroBackward0), ``fill_`` with a number
(FillBackward2) or a 0-d tensor (FillBackward3), ``copy_`` (CopyBackwards), ``x[indices] = v``
(IndexPutBackward0).  An in-place op on a view is torch's CopySlices (``shape.index_put``)
and the view is then read back from the new base as AsStridedBackward0 (``rebased_view``).
"""

from __future__ import annotations

import numpy as np

from .. import backend as B
from .. import batching
from ..primitive import Primitive
from ..tensor import Tensor
from ..samples import normal, one, unary
from . import shape as shape_prims


def _zeros_like(g, *inputs, out, **params):
    # the old value is overwritten: no gradient flows back to it
    return B.zeros_like(g)


def _written(x, value):
    """``value`` broadcast to ``x``'s shape (leading batch axes kept) in ``x``'s dtype."""
    out = np.empty(np.broadcast_shapes(np.shape(x), np.shape(value)), dtype=x.dtype)
    out[...] = value
    return out


zero = Primitive("zero", "ZeroBackward0", np.zeros_like, save="shapes",
                 batch=batching.elementwise, sample=unary(),
                 vjp=_zeros_like, jvp=lambda t, x, out: np.zeros_like(t))

fill = Primitive("fill", "FillBackward2", lambda x, value: _written(x, value), save="shapes",
                 batch=batching.elementwise, sample=unary(value=0.5),
                 vjp=_zeros_like, jvp=lambda t, x, out, value: np.zeros_like(t))


def _value_vjp(g, x, value, out):
    # d(fill(x, v))/dv: every element is v; sum the gradient down to v's shape and dtype
    grad = B.sum_to(g, tuple(np.shape(value)), len(np.shape(x)))
    dtype = getattr(value, "dtype", None)
    if dtype is not None and grad.dtype != dtype:
        grad = grad.to(dtype) if hasattr(grad, "to") else grad.astype(dtype)
    return grad


def _value_jvp(t, x, value, out):
    return _written(np.zeros(np.shape(x), dtype=out.dtype), t)


fill_tensor = Primitive("fill_tensor", "FillBackward3", _written, save="shapes",
                        input_names=("self", "value"), batch=batching.elementwise,
                        sample=lambda: [one(normal(2, 3), np.array(0.7)),
                                        one(normal(4), np.array(-1.5))],
                        vjp=(_zeros_like, _value_vjp),
                        jvp=(lambda t, x, value, out: np.zeros_like(t), _value_jvp))

# copy_(src): src broadcast to self's shape and cast to its dtype (src's gradient is cast
# back to src's dtype, as torch's CopyBackwards does)
copy = Primitive("copy", "CopyBackwards", _written, save="shapes", input_names=("self", "src"),
                 batch=batching.elementwise,
                 sample=lambda: [one(normal(2, 3), normal(2, 3, seed=1)),
                                 one(normal(2, 3), normal(3, seed=1))],
                 vjp=(_zeros_like, _value_vjp),
                 jvp=(lambda t, x, src, out: np.zeros_like(t), _value_jvp))

# x[indices] = v with only advanced indices (integer arrays, masks): IndexPutBackward0
index_put = Primitive("index_put_", "IndexPutBackward0", shape_prims._index_put_forward,
                      save="shapes", input_names=("self", "values"),
                      batch=batching.index_put,
                      sample=lambda: [one(normal(3, 4), normal(4, seed=1),
                                          key=(np.array([0, 2]),)),
                                      one(normal(3, 4), normal(2, seed=1),
                                          key=(np.array([1, 2]), np.array([0, 3])))],
                      vjp=shape_prims.index_put.vjps, jvp=shape_prims.index_put.jvps)

# a view read back from its base after an in-place op through it or another view: the
# elements at flat (C order) ``positions`` of the base
def _flat_take(x, positions):
    return np.asarray(np.reshape(x, (-1,))[positions])


def _rebased_vjp(g, x, out, positions):
    prefix = tuple(g.shape[:len(g.shape) - np.ndim(positions)])
    flat = prefix + (int(np.prod(x.shape, dtype=np.int64)),)
    if not isinstance(g, Tensor):
        g = np.asarray(g)     # (numpy's 0-d arithmetic gives scalars)
        z = np.zeros(flat, dtype=g.dtype)
        z[..., positions] = g
        return z.reshape(prefix + tuple(x.shape))
    if g._data.size == 0:
        # nothing flows back from an empty view: plain zeros (torch's as_strided_backward)
        return B.zeros(prefix + tuple(x.shape), g)
    zeros = B.zeros(flat, g)
    return shape_prims.index_put(zeros, g, key=(Ellipsis, positions)).reshape(
        prefix + tuple(x.shape))


def _rebased_samples():
    return [one(normal(3, 4), positions=np.array([[0, 5], [11, 2]])),
            one(normal(6), positions=np.array(4)),
            one(normal(), positions=np.zeros((1, 1), dtype=np.int64))]


rebased_view = Primitive("rebased_view", "AsStridedBackward0", _flat_take, save="shapes",
                         input_names=("self",), batch=batching.per_example,
                         out_shape=lambda xs, positions: tuple(np.shape(positions)),
                         sample=_rebased_samples, vjp=_rebased_vjp,
                         jvp=lambda t, x, out, positions: _flat_take(t, positions))
