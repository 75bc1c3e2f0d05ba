"""Shape primitives: views, transposes, expansion, indexing, concatenation."""

from __future__ import annotations

import numpy as np

from .. import backend as B
from ..primitive import Primitive
from ..tensor import Tensor


def _reshape_back(g, x, out_ndim):
    """Gradient of any op that only rearranges x's elements into a new shape."""
    return B.reshape(g, tuple(g.shape[:len(g.shape) - out_ndim]) + tuple(x.shape))


def _view_like(name, node, forward, out_ndim, jvp):
    prim = Primitive(name, node, forward, save="shapes", input_names=("self",))
    prim.defvjp(lambda g, x, out, **p: _reshape_back(g, x, out_ndim(x, **p)))
    prim.defjvp(jvp)
    return prim


reshape = _view_like("reshape", "ViewBackward0", lambda x, shape: np.reshape(x, shape),
                     lambda x, shape: len(shape),
                     lambda t, x, out, shape: np.reshape(t, shape))
unsafe_view = _view_like("unsafe_view", "UnsafeViewBackward0",
                         lambda x, shape: np.reshape(x, shape), lambda x, shape: len(shape),
                         lambda t, x, out, shape: np.reshape(t, shape))
squeeze = _view_like("squeeze", "SqueezeBackward0", lambda x: np.squeeze(x),
                     lambda x: sum(1 for n in x.shape if n != 1),
                     lambda t, x, out: np.squeeze(t))
squeeze_dim = _view_like("squeeze_dim", "SqueezeBackward1",
                         lambda x, dim: np.squeeze(x, axis=dim) if x.shape[dim] == 1 else x,
                         lambda x, dim: x.ndim - (1 if x.shape[dim] == 1 else 0),
                         lambda t, x, out, dim: np.reshape(t, out.shape))
unsqueeze = _view_like("unsqueeze", "UnsqueezeBackward0",
                       lambda x, dim: np.expand_dims(x, dim), lambda x, dim: x.ndim + 1,
                       lambda t, x, out, dim: np.expand_dims(t, dim))


def _transpose_vjp(g, x, out, dim0, dim1):
    nd = x.ndim
    return B.swapaxes(g, dim0 - nd, dim1 - nd) if nd else g


transpose = Primitive("transpose", "TransposeBackward0",
                      lambda x, dim0, dim1: np.swapaxes(x, dim0, dim1), save="shapes")
transpose.defvjp(_transpose_vjp)
transpose.defjvp(lambda t, x, out, dim0, dim1: np.swapaxes(t, dim0, dim1))

t = Primitive("t", "TBackward0", lambda x: x.T, save="shapes")
t.defvjp(lambda g, x, out: B.swapaxes(g, -1, -2) if x.ndim == 2 else g)
t.defjvp(lambda tan, x, out: tan.T)


def _permute_vjp(g, x, out, dims):
    nd = len(dims)
    prefix = len(g.shape) - nd
    inverse = np.argsort(dims)
    return B.permute(g, tuple(range(prefix)) + tuple(prefix + int(i) for i in inverse))


permute = Primitive("permute", "PermuteBackward0", lambda x, dims: np.transpose(x, dims),
                    save="shapes")
permute.defvjp(_permute_vjp)
permute.defjvp(lambda t, x, out, dims: np.transpose(t, dims))

# expand / broadcast_to: the gradient sums over the expanded axes.
expand = Primitive("expand", "ExpandBackward0", lambda x, shape: np.broadcast_to(x, shape),
                   save="shapes", out_shape=lambda xs, shape: shape)
expand.defvjp(lambda g, x, out, shape: B.sum_to(g, x.shape, len(shape)))
expand.defjvp(lambda t, x, out, shape: np.broadcast_to(t, shape))

clone = Primitive("clone", "CloneBackward0", lambda x: np.array(x, copy=True), save="none")
clone.defvjp(lambda g, x, out: g)
clone.defjvp(lambda t, x, out: t)

to_dtype = Primitive("to_dtype", "ToCopyBackward0", lambda x, dtype: x.astype(dtype),
                     save="shapes")
to_dtype.defvjp(lambda g, x, out, dtype: _cast(g, x.dtype))
to_dtype.defjvp(lambda t, x, out, dtype: t.astype(dtype))


def _cast(g, dtype):
    if isinstance(g, Tensor):
        return g.to(dtype)
    return g.astype(dtype)


# ---- indexing -------------------------------------------------------------------------------
def _batched_key(g, out_ndim, key):
    prefix = len(g.shape) - out_ndim
    return (slice(None),) * prefix + key


def _index_vjp(g, x, out, key, out_ndim):
    # Scatter-add the gradient into zeros of x's shape (repeated indices accumulate).
    if isinstance(g, Tensor):
        return index_add_zeros(g, key=key, shape=tuple(x.shape), out_ndim=out_ndim)
    full = tuple(g.shape[:len(g.shape) - out_ndim]) + tuple(x.shape)
    z = np.zeros(full, dtype=g.dtype)
    np.add.at(z, _batched_key(g, out_ndim, key), g)
    return z


def _index_forward(x, key, out_ndim):
    return x[key]


def _index_prim(name, node):
    prim = Primitive(name, node, _index_forward, save="shapes", input_names=("self",))
    prim.defvjp(_index_vjp)
    prim.defjvp(lambda t, x, out, key, out_ndim: t[key])
    return prim


select = _index_prim("select", "SelectBackward0")
slice_ = _index_prim("slice", "SliceBackward0")
index = _index_prim("index", "IndexBackward0")


def _index_add_zeros_forward(g, key, shape, out_ndim):
    full = tuple(g.shape[:g.ndim - out_ndim]) + tuple(shape)
    z = np.zeros(full, dtype=g.dtype)
    np.add.at(z, _batched_key(g, out_ndim, key), g)
    return z


# The backward of indexing, itself differentiable (its VJP is indexing again).
index_add_zeros_prim = Primitive("index_backward", "IndexBackwardBackward0",
                                 _index_add_zeros_forward, save="shapes",
                                 input_names=("grad",),
                                 out_shape=lambda gs, key, shape, out_ndim:
                                 tuple(gs[:len(gs) - out_ndim]) + tuple(shape))
index_add_zeros_prim.defvjp(
    lambda gg, g, out, key, shape, out_ndim:
    gg[(slice(None),) * (len(gg.shape) - len(shape)) + key])
index_add_zeros_prim.defjvp(
    lambda t, g, out, key, shape, out_ndim: _index_add_zeros_forward(t, key, shape, out_ndim))


def index_add_zeros(g, *, key, shape, out_ndim):
    return index_add_zeros_prim(g, key=key, shape=shape, out_ndim=out_ndim)


# ---- concatenation --------------------------------------------------------------------------
def _cat_vjp(i, g, *inputs, out, dim):
    nd = inputs[0].ndim
    start = sum(inputs[j].shape[dim] for j in range(i))
    stop = start + inputs[i].shape[dim]
    key = (Ellipsis, slice(start, stop)) + (slice(None),) * (nd - dim - 1)
    return g[key]


cat = Primitive("cat", "CatBackward0", lambda *xs, dim: np.concatenate(xs, axis=dim),
                save="shapes", input_names=("tensors",),
                out_shape=lambda *shapes, dim: tuple(
                    sum(s[dim] for s in shapes) if i == dim else n
                    for i, n in enumerate(shapes[0])))
cat.defvjp_variadic(_cat_vjp)
cat.defjvp_variadic(lambda i, t, *inputs, out, dim: _cat_tangent(i, t, inputs, out, dim))


def _cat_tangent(i, t, inputs, out, dim):
    z = np.zeros(out.shape, dtype=out.dtype)
    start = sum(inputs[j].shape[dim] for j in range(i))
    key = (slice(None),) * dim + (slice(start, start + inputs[i].shape[dim]),)
    z[key] = t
    return z


def _stack_vjp(i, g, *inputs, out, dim):
    nd = inputs[0].ndim + 1
    key = (Ellipsis, i) + (slice(None),) * (nd - dim - 1)
    return g[key]


stack = Primitive("stack", "StackBackward0", lambda *xs, dim: np.stack(xs, axis=dim),
                  save="shapes", input_names=("tensors",),
                  out_shape=lambda *shapes, dim: shapes[0][:dim] + (len(shapes),)
                  + shapes[0][dim:])
stack.defvjp_variadic(_stack_vjp)
stack.defjvp_variadic(lambda i, t, *inputs, out, dim: _stack_tangent(i, t, inputs, out, dim))


def _stack_tangent(i, t, inputs, out, dim):
    z = np.zeros(out.shape, dtype=out.dtype)
    z[(slice(None),) * dim + (i,)] = t
    return z


# ---- x[key] = v, out of place (the engine rebases x onto this node) ---------------------------
def _index_put_forward(x, v, key):
    y = np.array(x, copy=True, dtype=np.result_type(x, v))
    y[key] = v
    return y


def _keep_mask(x, key):
    mask = np.ones(x.shape, dtype=bool)
    mask[key] = False
    return mask


def _index_put_vjp_value(g, x, v, out, key):
    picked = g[(slice(None),) * (len(g.shape) - x.ndim) + key]
    indexed_ndim = np.zeros(x.shape, dtype=bool)[key].ndim
    return B.sum_to(picked, np.shape(v), indexed_ndim)


index_put = Primitive("index_put", "CopySlices", _index_put_forward, save="shapes",
                      input_names=("self", "values"))
index_put.defvjp(lambda g, x, v, out, key: g * B.astype_like(_keep_mask(x, key), g),
                 _index_put_vjp_value)
index_put.defjvp(lambda t, x, v, out, key: t * _keep_mask(x, key),
                 lambda t, x, v, out, key: _index_put_forward(np.zeros(x.shape, t.dtype),
                                                              t, key))
