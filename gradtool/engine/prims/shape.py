"""Shape primitives: views, transposes, expansion, indexing, concatenation."""

from __future__ import annotations

import numpy as np

from .. import backend as B
from .. import batching
from ..dtypes import promote_types
from ..samples import index_sample, mask, normal, one, unary
from ..node import OpNode
from ..primitive import REGISTRY, Primitive, Variadic, apply
from ..tensor import Tensor, _make
from .scalar_dim import on_missing_axis


def _reshape_back(g, x, out_ndim):
    """Gradient of any op that only rearranges x's elements into a new shape."""
    return B.reshape(g, tuple(g.shape[:len(g.shape) - out_ndim]) + tuple(x.shape))


def _view_like(name, node, forward, out_ndim, jvp, *, sample=None, vjp=None):
    prim = Primitive(name, node, forward, save="shapes", input_names=("self",),
                     batch=batching.view_like, delta=batching.delta_view, sample=sample,
                     vjp=vjp or (lambda g, x, out, **p: _reshape_back(g, x, out_ndim(x, **p))),
                     jvp=jvp)
    return prim


def _reshape_vjp(g, x, out, shape):
    """``_reshape_back`` of the reshape family (the output has ``len(shape)`` dims) in one
    call: every backward through a reshape or view runs it."""
    if type(g) is np.ndarray:
        return g.reshape(g.shape[:g.ndim - len(shape)] + x.shape)
    return _reshape_back(g, x, len(shape))


def _reshape_samples():
    return [one(normal(2, 3), shape=(3, 2)), one(normal(2, 3), shape=(6,))]


# torch names a reshape by what it had to do: a view of contiguous memory (ViewBackward0),
# an aliasing view of strided memory (ReshapeAliasBackward0), or a copy (CloneBackward0)
# followed by UnsafeViewBackward0.  ops.reshape picks one the way torch does.
reshape = _view_like("reshape", "ViewBackward0", lambda x, shape: x.reshape(shape),
                     lambda x, shape: len(shape),
                     lambda t, x, out, shape: np.reshape(t, shape), sample=_reshape_samples,
                     vjp=_reshape_vjp)
reshape_alias = _view_like("reshape_alias", "ReshapeAliasBackward0",
                           lambda x, shape: x.reshape(shape), lambda x, shape: len(shape),
                           lambda t, x, out, shape: np.reshape(t, shape),
                           sample=lambda: [one(normal(2, 3), shape=(6, 1))], vjp=_reshape_vjp)
unsafe_view = _view_like("unsafe_view", "UnsafeViewBackward0",
                         lambda x, shape: x.reshape(shape), lambda x, shape: len(shape),
                         lambda t, x, out, shape: np.reshape(t, shape),
                         sample=lambda: [one(normal(2, 3), shape=(3, 2))], vjp=_reshape_vjp)
alias = _view_like("alias", "AliasBackward0", lambda x: x[...], lambda x: x.ndim,
                   lambda t, x, out: t,
                   sample=unary())
squeeze = _view_like("squeeze", "SqueezeBackward0", lambda x: np.squeeze(x),
                     lambda x: sum(1 for n in x.shape if n != 1),
                     lambda t, x, out: np.squeeze(t),
                     sample=lambda: [one(normal(2, 1, 3, 1))])


def _squeeze_dims(x, dims):
    # a dim == ndim is a 0-d tensor's one dim (torch): nothing to squeeze
    drop = tuple(d for d in dims if d < x.ndim and x.shape[d] == 1)
    return np.squeeze(x, axis=drop) if drop else x[...]


def _squeeze_ndim(x, dims):
    return x.ndim - sum(1 for d in dims if d < x.ndim and x.shape[d] == 1)


squeeze_dim = _view_like("squeeze_dim", "SqueezeBackward1",
                         lambda x, dim: _squeeze_dims(x, (dim,)),
                         lambda x, dim: _squeeze_ndim(x, (dim,)),
                         lambda t, x, out, dim: np.reshape(t, out.shape),
                         sample=lambda: [one(normal(2, 1, 3), dim=1), one(normal(2, 3), dim=0)])


def _squeeze_dims_samples():
    return [one(normal(1, 2, 1), dims=(0, 2)), one(normal(1, 2), dims=(1,))]


squeeze_dims = _view_like("squeeze_dims", "SqueezeBackward2", _squeeze_dims, _squeeze_ndim,
                          lambda t, x, out, dims: np.reshape(t, out.shape),
                          sample=_squeeze_dims_samples)
# matmul of a vector by a matrix squeezes its result in place (torch: SqueezeBackward4)
matmul_squeeze = _view_like("matmul_squeeze", "SqueezeBackward4", _squeeze_dims,
                            _squeeze_ndim, lambda t, x, out, dims: np.reshape(t, out.shape),
                            sample=lambda: [one(normal(1, 3), dims=(0,))])
unsqueeze = _view_like("unsqueeze", "UnsqueezeBackward0",
                       lambda x, dim: np.expand_dims(x, dim), lambda x, dim: x.ndim + 1,
                       lambda t, x, out, dim: np.expand_dims(t, dim),
                       sample=lambda: [one(normal(2, 3), dim=1), one(normal(2, 3), dim=2)])


def _transpose_vjp(g, x, out, dim0, dim1):
    nd = x.ndim
    return B.swapaxes(g, dim0 - nd, dim1 - nd) if nd else g


def _swapaxes(x, dim0, dim1):
    # a 0-d tensor has one dim for torch's transpose (0 or -1): the result is a view of it
    return np.swapaxes(x, dim0, dim1) if x.ndim else x[...]


def _transpose_batch(prim, args, batched, size, params):
    (x,) = args
    return x if x.ndim == 1 else np.swapaxes(x, params["dim0"] + 1, params["dim1"] + 1)


transpose = Primitive("transpose", "TransposeBackward0", _swapaxes, save="shapes",
                      batch=_transpose_batch,
                      sample=lambda: [one(normal(2, 3, 4), dim0=0, dim1=2),
                                      one(normal(3, 2), dim0=1, dim1=1)],
                      vjp=_transpose_vjp,
                      jvp=lambda t, x, out, dim0, dim1: _swapaxes(t, dim0, dim1))

t = Primitive("t", "TBackward0", lambda x: x.T, save="shapes", batch=batching.transpose_2d,
              sample=lambda: [one(normal(2, 3)), one(normal(3))],
              vjp=lambda g, x, out: B.swapaxes(g, -1, -2) if x.ndim == 2 else g,
              jvp=lambda tan, x, out: tan.T)


def _permute_vjp(g, x, out, dims):
    nd = len(dims)
    prefix = len(g.shape) - nd
    inverse = np.argsort(dims)
    return B.permute(g, tuple(range(prefix)) + tuple(prefix + int(i) for i in inverse))


permute = Primitive("permute", "PermuteBackward0", lambda x, dims: np.transpose(x, dims),
                    save="shapes", batch=batching.permute,
                    sample=lambda: [one(normal(2, 3, 4), dims=(2, 0, 1))],
                    vjp=_permute_vjp,
                    jvp=lambda t, x, out, dims: np.transpose(t, dims))

def _expand_forward(x, shape):
    # writable when x is, as torch's: a fill through an expanded tensor writes its base
    out = np.broadcast_to(x, shape)
    if not x.flags.writeable:
        return out
    return np.lib.stride_tricks.as_strided(x, out.shape, out.strides, writeable=True)


# expand / broadcast_to: the gradient sums over the expanded axes.
expand = Primitive("expand", "ExpandBackward0", _expand_forward,
                   save="shapes", out_shape=lambda xs, shape: shape, batch=batching.expand,
                   sample=lambda: [one(normal(3, 1), shape=(2, 3, 4)), one(normal(3), shape=(3,))],
                   vjp=lambda g, x, out, shape: B.sum_to(g, x.shape, len(shape)),
                   jvp=lambda t, x, out, shape: np.broadcast_to(t, shape))

clone = Primitive("clone", "CloneBackward0", lambda x: np.array(x, copy=True), save="none",
                  batch=batching.elementwise, delta=batching.delta_elementwise,
                  sample=unary(),
                  vjp=lambda g, x, out: g,
                  jvp=lambda t, x, out: t)

to_dtype = Primitive("to_dtype", "ToCopyBackward0", lambda x, dtype: x.astype(dtype),
                     save="shapes", analytic=False,   # complex -> real drops the imaginary part
                     batch=batching.elementwise, delta=batching.delta_elementwise,
                     sample=lambda: [one(normal(2, 3), dtype=np.dtype(np.float64))],
                     vjp=lambda g, x, out, dtype: _cast(g, x.dtype),
                     jvp=lambda t, x, out, dtype: t.astype(dtype))


def _cast(g, dtype):
    if isinstance(g, Tensor):
        return g.to(dtype)
    return g.astype(dtype)


# ---- indexing -------------------------------------------------------------------------------
def _batched_key(g, out_ndim, key):
    prefix = len(g.shape) - out_ndim
    return (slice(None),) * prefix + key


def _index_add_zeros_forward(g, key, shape, out_ndim):
    """Scatter-add g into zeros of ``shape`` at ``key`` (repeated indices accumulate); a
    leading batch axis of g (beyond out_ndim) is kept."""
    full = tuple(g.shape[:g.ndim - out_ndim]) + tuple(shape)
    z = np.zeros(full, dtype=g.dtype)
    np.add.at(z, _batched_key(g, out_ndim, key), g)
    return z


def _index_backward_prim(name, node, *, sample=None):
    """The backward of an indexing primitive, itself differentiable (its VJP indexes)."""
    prim = Primitive(name, node, _index_add_zeros_forward, save="shapes",
                     input_names=("grad",), batch=batching.direct,
                     out_shape=lambda gs, key, shape, out_ndim:
                     tuple(gs[:len(gs) - out_ndim]) + tuple(shape), sample=sample,
                     vjp=lambda gg, g, out, key, shape, out_ndim:
                         gg[(slice(None),) * (len(gg.shape) - len(shape)) + key],
                     jvp=lambda t, g, out, key, shape, out_ndim:
                         _index_add_zeros_forward(t, key, shape, out_ndim))
    return prim


def _select_backward_samples():
    return [one(normal(2, 4), key=(slice(None), 1), shape=(2, 3, 4),
                out_ndim=2)]


# torch's names for the backward of each indexing op (seen under create_graph)
select_backward = _index_backward_prim("select_backward", "SelectBackwardBackward0",
                                       sample=_select_backward_samples)


def _slice_backward_samples():
    return [one(normal(2, 4), key=(slice(1, 5, 2),), shape=(5, 4),
                out_ndim=2)]


slice_backward = _index_backward_prim("slice_backward", "SliceBackwardBackward0",
                                      sample=_slice_backward_samples)


def _index_backward_samples():
    return [
one(normal(4, 4), key=(np.array([0, 2, 0, 0]),), shape=(3, 4), out_ndim=2),
one(normal(2), key=(slice(None), 1), shape=(2, 3), out_ndim=1)]


index_backward = _index_backward_prim("index_backward", "IndexPutImplBackward0",
                                      sample=_index_backward_samples)


def _index_select_backward_samples():
    return [one(normal(3, 3), key=(slice(None), np.array([0, 2, 2])),
                shape=(3, 4), out_ndim=2)]


index_select_backward = _index_backward_prim("index_select_backward", "IndexAddBackward0",
                                             sample=_index_select_backward_samples)


def _index_vjp(backward_prim):
    def vjp(g, x, out, key, out_ndim):
        # scatter-add the gradient into zeros of x's shape (repeated indices accumulate)
        if isinstance(g, Tensor):
            return backward_prim(g, key=key, shape=tuple(x.shape), out_ndim=out_ndim)
        return _index_add_zeros_forward(g, key, tuple(x.shape), out_ndim)
    return vjp


def _index_forward(x, key, out_ndim):
    # basic keys give a view; an advanced one a new C-contiguous tensor, as torch's index
    # (numpy may return it Fortran-ordered, which linear would not fold into one view)
    out = x[key]
    if np.may_share_memory(out, x) or out.flags.c_contiguous:
        return out
    return out.copy(order="C")      # (not ascontiguousarray: it makes a 0-d result 1-d)


def _indexed_shape(shape, key) -> tuple:
    """Shape of x[key] without allocating it (indexing a zero-byte array)."""
    return np.empty(shape, dtype="V0")[key].shape


def _index_prim(name, node, backward_prim, *, sample=None, forward=_index_forward):
    prim = Primitive(name, node, forward, save="shapes", input_names=("self",),
                     batch=batching.index,
                     out_shape=lambda xs, key, out_ndim: _indexed_shape(xs, key), sample=sample,
                     vjp=_index_vjp(backward_prim),
                     jvp=lambda t, x, out, key, out_ndim: t[key])
    return prim


def _select_forward(x, key, out_ndim):
    # a view even down to 0-d (numpy's x[0] of a 1-d array is a scalar, not a view)
    return x[tuple(key) + (Ellipsis,)]


select = _index_prim("select", "SelectBackward0", select_backward, forward=_select_forward,
                     sample=lambda: [index_sample(normal(3, 4), (slice(None), 2)),
                                     index_sample(normal(3, 4), (1,))])
slice_ = _index_prim("slice", "SliceBackward0", slice_backward,
                     sample=lambda: [index_sample(normal(5, 4), (slice(1, 4, 2),)),
                                     index_sample(normal(3, 4), (slice(None), slice(0, 2)))])


def _index_samples():
    return [index_sample(normal(3, 4), (np.array([0, 2, 0, 0]),)),
            index_sample(normal(3, 4), (mask(3, 4),)),
            index_sample(normal(3, 4), (slice(None), np.array([[1, 1], [3, 0]]))),
            index_sample(normal(3, 4), (np.array([0, 2]), np.array([1, 1])))]


index = _index_prim("index", "IndexBackward0", index_backward, sample=_index_samples)


def index_add_zeros(g, *, key, shape, out_ndim):
    """Differentiable scatter-add of g into zeros (the backward of indexing)."""
    return index_backward(g, key=key, shape=shape, out_ndim=out_ndim)


# ---- concatenation --------------------------------------------------------------------------
def _cat_skipped(x, nd: int) -> bool:
    """torch's legacy rule: a 1-d empty tensor is left out of a cat of higher-dim tensors."""
    return nd > 1 and tuple(x.shape) == (0,)


def _cat_forward(*xs, dim):
    nd = max(x.ndim for x in xs)
    kept = [x for x in xs if not _cat_skipped(x, nd)]
    return np.ascontiguousarray(np.concatenate(kept, axis=dim,
                                               dtype=promote_types([x.dtype for x in xs])))


def _cat_vjp(i, g, *inputs, out, dim):
    nd = max(x.ndim for x in inputs)
    if _cat_skipped(inputs[i], nd):
        return B.zeros(tuple(g.shape[:len(g.shape) - nd]) + (0,), like=g)
    start = sum(inputs[j].shape[dim] for j in range(i) if not _cat_skipped(inputs[j], nd))
    stop = start + inputs[i].shape[dim]
    key = (Ellipsis, slice(start, stop)) + (slice(None),) * (nd - dim - 1)
    if tuple(inputs[i].shape) == (0,):
        # torch's cat backward gives a (0,) input fresh zeros (no graph under create_graph)
        return B.zeros_like(g[key])
    if isinstance(g, Tensor):
        # torch narrows the gradient: a SliceBackward0 even over a whole dim
        return apply(slice_, (g,), {"key": key, "out_ndim": g.ndim})
    return g[key]


def _cat_samples():
    return [one(normal(2, 3), normal(1, 3, seed=1), normal(2, 3, seed=2), dim=0),
            one(normal(2, 3), normal(2, 1, seed=1), dim=1)]


cat = Primitive("cat", "CatBackward0",
                _cat_forward,
                save="shapes", input_names=("tensors",),
                out_shape=lambda *shapes, dim: tuple(
                    sum(s[dim] for s in shapes) if i == dim else n
                    for i, n in enumerate(shapes[0])), batch=batching.cat, sample=_cat_samples,
                vjp=Variadic(_cat_vjp),
                jvp=Variadic(lambda i, t, *inputs, out, dim: _cat_tangent(i, t, inputs, out, dim)))


def _cat_tangent(i, t, inputs, out, dim):
    z = np.zeros(out.shape, dtype=out.dtype)
    nd = max(x.ndim for x in inputs)
    if _cat_skipped(inputs[i], nd):
        return z
    start = sum(inputs[j].shape[dim] for j in range(i) if not _cat_skipped(inputs[j], nd))
    key = (slice(None),) * dim + (slice(start, start + inputs[i].shape[dim]),)
    z[key] = t
    return z


def _stack_vjp(i, g, *inputs, out, dim):
    nd = inputs[0].ndim + 1
    key = (Ellipsis, i) + (slice(None),) * (nd - dim - 1)
    return g[key]


def _stack_samples():
    return [one(normal(2, 3), normal(2, 3, seed=1), dim=0),
            one(normal(2, 3), normal(2, 3, seed=1), normal(2, 3, seed=2), dim=2)]


stack = Primitive("stack", "StackBackward0",
                  lambda *xs, dim: np.ascontiguousarray(np.stack(
                      xs, axis=dim, dtype=promote_types([x.dtype for x in xs]))),
                  save="shapes", input_names=("tensors",),
                  out_shape=lambda *shapes, dim: shapes[0][:dim] + (len(shapes),)
                  + shapes[0][dim:], batch=batching.stack, sample=_stack_samples,
                  vjp=Variadic(_stack_vjp),
                  jvp=Variadic(lambda i, t, *inputs, out, dim:
                               _stack_tangent(i, t, inputs, out, dim)))


def _stack_tangent(i, t, inputs, out, dim):
    z = np.zeros(out.shape, dtype=out.dtype)
    z[(slice(None),) * dim + (i,)] = t
    return z


# ---- split / chunk / unbind: one node with several outputs ------------------------------------
class MultiOutputNode(OpNode):
    """Backward node of a primitive with several outputs (torch's SplitBackward0, ...): the
    rule gets one gradient per output, zeros standing in for outputs that got none."""

    __slots__ = ()

    @property
    def n_outputs(self) -> int:
        return len(self.params["sections"])

    def apply(self, grads: list, create_graph: bool, batched: bool):
        # shape-only saves: never released, a second backward works (as torch's split)
        present = [g for g in grads if g is not None]
        if not present:
            return (None,)
        x = self.saved[0]
        dim = self.params["dim"]
        prefix = tuple(present[0].shape[:1]) if batched else ()
        filled = []
        for k, g in enumerate(grads):
            if g is None:
                shape = list(x.shape)
                self.prim.fill_shape(shape, dim, self.params["sections"][k])
                g = np.zeros(prefix + tuple(shape), dtype=x.dtype)
            if create_graph and not isinstance(g, Tensor):
                g = _make(g)
            elif not create_graph and isinstance(g, Tensor):
                g = g._data
            filled.append(g)
        return (self.prim.vjps[0](filled, x, out=None, **self.params),)


def apply_multi(prim: Primitive, x: Tensor, params: dict) -> tuple:
    """Run a several-output primitive on ``x``: ``apply`` records one node (the forward is
    the identity), then the output is cut into pieces that all point at that node."""
    carrier = apply(prim, (x,), params)
    fw = carrier._fw
    tangents = prim.pieces(fw[1], **params) if fw is not None else None
    outs = []
    for k, piece in enumerate(prim.pieces(carrier._data, **params)):
        out = _make(piece, carrier.grad_fn, carrier._rg)
        out._nr = k
        if tangents is not None:
            out._fw = (fw[0], np.asarray(tangents[k]))
        outs.append(out)
    return tuple(outs)


def _multi_prim(name, node_name, pieces, vjp, fill_shape, *, sample=None):
    prim = Primitive(name, node_name, lambda x, dim, sections: x, save="shapes",
                     input_names=("self",), batch=batching.multi_output, sample=sample,
                     vjp=vjp,
                     jvp=lambda t, x, out, dim, sections: t)   # the pieces of the tangent
    prim.node_cls = type(node_name, (MultiOutputNode,), {"__slots__": (), "_name": node_name})
    prim.pieces = pieces
    prim.fill_shape = fill_shape
    return prim


def _split_forward(x, dim, sections):
    bounds = np.cumsum(sections)[:-1]
    return tuple(np.split(x, bounds, axis=dim))


def _split_vjp(gs, x, out, dim, sections):
    # the gradient of the pieces, put back together
    return _cat_grads(gs, dim - x.ndim)


def _cat_grads(gs, axis):
    if any(isinstance(g, Tensor) for g in gs):
        from .. import ops
        return ops.cat(gs, axis)
    return np.concatenate(gs, axis=axis)


def _section_shape(shape, dim, size):
    shape[dim] = size


def _unbind_forward(x, dim, sections):
    # views (the trailing Ellipsis keeps a 0-d piece an array viewing x, not a numpy scalar)
    return tuple(x[(slice(None),) * dim + (i, Ellipsis)] for i in range(x.shape[dim]))


def _unbind_vjp(gs, x, out, dim, sections):
    axis = dim - x.ndim
    if any(isinstance(g, Tensor) for g in gs):
        from .. import ops
        return ops.stack(gs, axis)
    return np.stack(gs, axis=axis)


def _unbind_shape(shape, dim, size):
    del shape[dim]


split = _multi_prim("split", "SplitBackward0", _split_forward, _split_vjp, _section_shape,
                    sample=lambda: [one(normal(5, 3), dim=0, sections=(2, 2, 1))])
split_with_sizes = _multi_prim("split_with_sizes", "SplitWithSizesBackward0", _split_forward,
                               _split_vjp, _section_shape,
                               sample=lambda: [one(normal(2, 5), dim=1, sections=(1, 4))])
unbind = _multi_prim("unbind", "UnbindBackward0", _unbind_forward, _unbind_vjp,
                     _unbind_shape,
                     sample=lambda: [one(normal(3, 2), dim=0, sections=(1, 1, 1)),
                                     one(normal(3, 2), dim=1, sections=(1, 1))])


# ---- gather / scatter_add / index_select ------------------------------------------------------
def _along(x, index, dim):
    """Index arrays selecting ``x[..., index, ...]`` along ``dim`` (negative), elementwise
    over ``index``'s shape (torch's gather/scatter addressing), leading axes broadcast."""
    nd = index.ndim
    grids = list(np.indices(index.shape, sparse=True))
    grids[nd + dim] = index
    return tuple(grids)


def _gather_forward(x, index, dim):
    return x[_along(x, index, dim - x.ndim)]


def _scatter_add_np(shape, index, src, dim):
    z = np.zeros(shape, dtype=src.dtype)
    np.add.at(z, _along(z, index, dim), src)
    return z


def _batched_index(index, g, nd):
    """``index`` broadcast over the leading batch axes of ``g`` (an extra-leading-axis grad)."""
    prefix = tuple(g.shape[:len(g.shape) - nd])
    return np.broadcast_to(index, prefix + index.shape) if prefix else index


def _gather_vjp(g, x, index, out, dim):
    # gather's adjoint: scatter-add the gradient back where it was read from
    idx = _batched_index(index, g, index.ndim)
    neg = dim - x.ndim
    shape = tuple(g.shape[:len(g.shape) - index.ndim]) + tuple(x.shape)
    if isinstance(g, Tensor):
        from .. import ops
        return ops.scatter_add(ops.zeros(*shape, dtype=g.dtype), neg, idx, g)
    return _scatter_add_np(shape, idx, g, neg)


gather = Primitive("gather", "GatherBackward0",
                   input_names=("self", "index"), batch=batching.gather,
                   sample=lambda: [one(normal(3, 4), np.array([[0, 0], [3, 1], [2, 2]]), dim=1),
                                   one(normal(3, 4), np.array([[2, 1, 0, 2]]), dim=0)],
                   **on_missing_axis(
                       _gather_forward, vjp=(_gather_vjp, None),
                       jvp=(lambda t, x, index, out, dim: _gather_forward(t, index, dim), None),
                       lift=(0, 1)))


def _scatter_add_forward(x, index, src, dim):
    out = np.array(x, copy=True, dtype=np.result_type(x, src))
    np.add.at(out, _along(out, index, dim - x.ndim), src[tuple(slice(0, n) for n in index.shape)])
    return out


def _scatter_add_src_vjp(g, x, index, src, out, dim):
    # the source gets the gradient read back at the positions it was added to
    idx = _batched_index(index, g, index.ndim)
    prefix = tuple(g.shape[:len(g.shape) - x.ndim])
    if isinstance(g, Tensor):
        from .. import ops
        picked = ops.gather(g, dim - x.ndim, idx)
    else:
        picked = g[_along(g, idx, dim - x.ndim)]
    if tuple(src.shape) == tuple(index.shape):
        return picked
    # src elements past the index's extent were never read: zero gradient there
    pad = []
    for s_n, i_n in reversed(list(zip(src.shape, index.shape))):
        pad += [0, s_n - i_n]
    if isinstance(picked, Tensor):
        from .. import ops
        return ops.pad(picked, tuple(pad))
    return _pad_forward(picked, tuple(pad), 0) if not prefix else np.pad(
        picked, [(0, 0)] * len(prefix) + _pad_widths(x.ndim, tuple(pad)))


def _scatter_add_samples():
    return [one(normal(3, 4), np.array([[0, 0], [3, 1], [2, 2]]),
                normal(3, 2, seed=1), dim=1),
            one(normal(3, 4), np.array([[2, 1, 0, 2]]), normal(2, 4, seed=1),
                dim=0)]


scatter_add = Primitive("scatter_add", "ScatterAddBackward0",
                        input_names=("self", "index", "src"), batch=batching.per_example,
                        shape_only=(0,),
                        sample=_scatter_add_samples,
                        **on_missing_axis(
                            _scatter_add_forward,
                            vjp=(lambda g, x, index, src, out, dim: g, None,
                                 _scatter_add_src_vjp),
                            jvp=(lambda t, x, index, src, out, dim: t, None,
                                 lambda t, x, index, src, out, dim: _scatter_add_forward(
                                     np.zeros(x.shape, t.dtype), index, t, dim)),
                            lift=(0, 1, 2)))


def _index_select_vjp(g, x, index, out, dim):
    # scatter-add (repeated indices accumulate), through the differentiable index backward
    key = (slice(None),) * dim + (index,)
    if isinstance(g, Tensor):
        return index_select_backward(g, key=key, shape=tuple(x.shape), out_ndim=x.ndim)
    return _index_add_zeros_forward(g, key, tuple(x.shape), x.ndim)


index_select = Primitive("index_select", "IndexSelectBackward0",
                         input_names=("self", "index"), shape_only=(0,),
                         out_shape=lambda xs, index, dim: xs[:dim] + tuple(index) + xs[dim + 1:],
                         batch=batching.dims_shifted("dim"),
                         sample=lambda: [one(normal(3, 4), np.array([0, 2, 2]), dim=1),
                                         one(normal(3, 4), np.array([1]), dim=0)],
                         **on_missing_axis(
                             lambda x, index, dim: np.take(x, index, axis=dim),
                             vjp=(_index_select_vjp, None),
                             jvp=(lambda t, x, index, out, dim: np.take(t, index, axis=dim),
                                  None)))


# ---- pad / flip / repeat / diagonal -------------------------------------------------------
def _pad_widths(ndim, pad):
    """torch's pad tuple (last dim first, (before, after) pairs) as numpy pad widths."""
    widths = [(0, 0)] * ndim
    for k in range(len(pad) // 2):
        widths[ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    return widths


def _pad_forward(x, pad, value):
    return np.pad(x, _pad_widths(x.ndim, pad), constant_values=value)


def _pad_vjp(g, x, out, pad, value):
    # the gradient of the padded tensor, cropped back to the input
    widths = _pad_widths(x.ndim, pad)
    key = (Ellipsis,) + tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))
    return g[key]


constant_pad = Primitive("constant_pad", "ConstantPadNdBackward0", _pad_forward,
                         save="shapes", input_names=("self",),
                         out_shape=lambda xs, pad, value: tuple(
                             n + lo + hi for n, (lo, hi) in zip(xs, _pad_widths(len(xs), pad))),
                         batch=batching.direct,
                         sample=lambda: [one(normal(2, 3), pad=(1, 2), value=0.0),
                                         one(normal(2, 3), pad=(0, 1, 2, 0), value=1.5)],
                         vjp=_pad_vjp,
                         jvp=lambda t, x, out, pad, value: _pad_forward(t, pad, 0))

# Memory layouts follow torch's, as they decide whether later reshapes are views: flip
# writes a new tensor laid out like its input (numpy: a negative-stride view), cat and stack
# write contiguous tensors (numpy: laid out like strided inputs)
flip = Primitive("flip", "FlipBackward0",
                 save="shapes", input_names=("self",), batch=batching.dims_shifted("dims"),
                 sample=lambda: [one(normal(2, 3), dims=(0,)), one(normal(2, 3, 2), dims=(0, 2))],
                 **on_missing_axis(
                     lambda x, dims: np.flip(x, axis=dims).copy(order="K"),
                     vjp=lambda g, x, out, dims: B.flip(g, tuple(d - x.ndim for d in dims)),
                     jvp=lambda t, x, out, dims: np.flip(t, axis=dims), dim_names=("dims",)))


def _repeat_vjp(g, x, out, repeats):
    # each input element appears once per tile: sum the tiles
    nd = len(repeats)
    shape = (1,) * (nd - x.ndim) + tuple(x.shape)
    prefix = tuple(g.shape[:len(g.shape) - nd])
    split = prefix + tuple(v for r, n in zip(repeats, shape) for v in (r, n))
    tiles = tuple(len(prefix) + 2 * k for k in range(nd))
    return B.reshape(B.sum(B.reshape(g, split), axis=tiles), prefix + tuple(x.shape))


def _repeat_samples():
    return [one(normal(2, 3), repeats=(2, 1)), one(normal(3), repeats=(2, 2))]


repeat = Primitive("repeat", "RepeatBackward0", lambda x, repeats: np.tile(x, repeats),
                   save="shapes", input_names=("self",),
                   out_shape=lambda xs, repeats: tuple(
                       r * n for r, n in zip(repeats, (1,) * (len(repeats) - len(xs)) + xs)),
                   batch=batching.repeat, sample=_repeat_samples,
                   vjp=_repeat_vjp,
                   jvp=lambda t, x, out, repeats: np.tile(t, repeats))


def _diagonal_forward(x, offset, dim1, dim2):
    # a writable strided view, as torch's (np.diagonal's own view is read-only)
    view = np.diagonal(x, offset, dim1, dim2)
    if not view.size:
        return np.lib.stride_tricks.as_strided(x, view.shape, view.strides,
                                               writeable=x.flags.writeable)
    start = [slice(None)] * x.ndim
    start[dim1] = slice(max(-offset, 0), None)
    start[dim2] = slice(max(offset, 0), None)
    return np.lib.stride_tricks.as_strided(x[tuple(start)], view.shape, view.strides,
                                           writeable=x.flags.writeable)


def _diagonal_backward_forward(g, shape, offset, dim1, dim2):
    nd = len(shape)
    z = np.zeros(tuple(g.shape[:g.ndim - (nd - 1)]) + tuple(shape), dtype=g.dtype)
    moved = np.moveaxis(z, (dim1 - nd, dim2 - nd), (-2, -1))
    n = g.shape[-1]
    rows = np.arange(n) + max(-offset, 0)
    cols = np.arange(n) + max(offset, 0)
    moved[..., rows, cols] = g
    return z


def _diagonal_backward_samples():
    return [one(normal(3), shape=(3, 3), offset=0, dim1=0, dim2=1),
            one(normal(2, 3), shape=(2, 3, 4), offset=-1, dim1=2,
                dim2=1)]


diagonal_backward = Primitive(
    "diagonal_backward", "DiagonalBackwardBackward0", _diagonal_backward_forward,
    save="shapes", input_names=("grad",),
    out_shape=lambda gs, shape, offset, dim1, dim2: tuple(gs[:len(gs) - len(shape) + 1])
    + tuple(shape), batch=batching.direct, sample=_diagonal_backward_samples,
    vjp=lambda gg, g, out, shape, offset, dim1, dim2: B.diagonal(
        gg, offset, dim1 - len(shape), dim2 - len(shape)),
    jvp=lambda t, g, out, shape, offset, dim1, dim2:
    _diagonal_backward_forward(t, shape, offset, dim1, dim2))


diagonal = Primitive("diagonal", "DiagonalBackward0", _diagonal_forward, save="shapes",
                     input_names=("self",), batch=batching.dims_shifted("dim1", "dim2"),
                     sample=lambda: [one(normal(3, 3), offset=0, dim1=0, dim2=1),
                                     one(normal(2, 3, 4), offset=1, dim1=2, dim2=1)],
                     vjp=lambda g, x, out, offset, dim1, dim2: _diag_back(
                         g, x, offset, dim1, dim2),
                     jvp=lambda t, x, out, offset, dim1, dim2: _diagonal_forward(
                         t, offset, dim1, dim2))


def _diag_back(g, x, offset, dim1, dim2):
    if isinstance(g, Tensor):
        return diagonal_backward(g, shape=tuple(x.shape), offset=offset, dim1=dim1, dim2=dim2)
    return _diagonal_backward_forward(g, tuple(x.shape), offset, dim1, dim2)


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
                      input_names=("self", "values"), batch=batching.index_put,
                      sample=lambda: [one(normal(3, 4), normal(4, seed=1), key=(1,)),
                                      one(normal(3, 4), normal(2, 1, seed=1),
                                          key=(slice(0, 2), slice(1, 3)))],
                      vjp=(lambda g, x, v, out, key: g * B.astype_like(_keep_mask(x, key), g),
                           _index_put_vjp_value),
                      # the written elements' tangents are replaced, not scaled by 0 (an
                      # inf or NaN tangent there does not survive the write)
                      jvp=(lambda t, x, v, out, key: np.where(_keep_mask(x, key), t,
                                                              np.zeros((), t.dtype)),
                           lambda t, x, v, out, key: _index_put_forward(np.zeros(x.shape, t.dtype),
                                                                        t, key)))


# ---- triangles: the gradient is the same triangle of the output gradient ------------------------
def _triangle_rule(name, np_fn):
    def rule(g, x, out, diagonal):
        if isinstance(g, Tensor):    # create_graph: the same primitive, recorded
            return apply(REGISTRY[name], (g,), {"diagonal": diagonal})
        return np_fn(g, diagonal)    # numpy's tril/triu act on the last two axes
    return rule


def _triangle(name, node_name, np_fn):
    return Primitive(name, node_name, lambda x, diagonal: np_fn(x, diagonal), save="none",
                     input_names=("self",), batch=batching.direct,
                     sample=lambda: [one(normal(3, 4), diagonal=0),
                                     one(normal(2, 3, 3), diagonal=-1),
                                     one(normal(3, 4), diagonal=2)],
                     vjp=_triangle_rule(name, np_fn),
                     jvp=lambda t, x, out, diagonal: np_fn(t, diagonal))


tril = _triangle("tril", "TrilBackward0", np.tril)
triu = _triangle("triu", "TriuBackward0", np.triu)


# ---- sort / topk: the values at precomputed positions (torch saves the indices) -----------------
def _take_forward(x, indices, dim):
    if np.ndim(indices) == 0:
        return np.array(x, copy=True)          # a 0-d input: its one value
    return _gather_forward(x, indices, dim)


def _take_vjp(g, x, out, indices, dim):
    # scatter the gradient back to the positions the values were taken from
    if np.ndim(indices) == 0:
        return g
    return _gather_vjp(g, x, indices, out, dim)


def _take_batch(prim, args, batched, size, params):
    (x,) = args
    indices = params["indices"]
    if np.ndim(indices) == 0:
        return np.array(x, copy=True)
    return x[(slice(None),) + _along(None, indices, params["dim"] - (x.ndim - 1))]


def _take_samples(k):
    def samples():
        x = normal(3, 4)
        order = np.argsort(x, axis=1)[:, :k]
        first = np.argsort(-x, axis=0)[:2]
        return [one(x, indices=order, dim=1), one(x, indices=first, dim=0)]
    return samples


# torch names sort SortBackward1 when stable= is given (its sort.stable overload)
sort = Primitive("sort", "SortBackward0", _take_forward, save="shapes", input_names=("self",),
                 batch=_take_batch, sample=_take_samples(4),
                 doc="the sorted values (indices from argsort, constant for autograd)",
                 vjp=_take_vjp,
                 jvp=lambda t, x, out, indices, dim: _take_forward(t, indices, dim))
sort_stable = Primitive("sort_stable", "SortBackward1", _take_forward, save="shapes",
                        input_names=("self",), batch=_take_batch, sample=_take_samples(4),
                        doc="sort(..., stable=...): the sorted values",
                        vjp=_take_vjp,
                        jvp=lambda t, x, out, indices, dim: _take_forward(t, indices, dim))
topk = Primitive("topk", "TopkBackward0", _take_forward, save="shapes", input_names=("self",),
                 batch=_take_batch, sample=_take_samples(2),
                 doc="the k largest (or smallest) values along dim",
                 vjp=_take_vjp,
                 jvp=lambda t, x, out, indices, dim: _take_forward(t, indices, dim))


# ---- as_strided: a view of the (contiguous) input's memory at given sizes and strides -----------
def strided_positions(size, stride, storage_offset) -> np.ndarray:
    """Flat position in the input's memory of each element of as_strided's output."""
    idx = np.full(tuple(size), storage_offset, dtype=np.int64)
    for k, (n, s) in enumerate(zip(size, stride)):
        shape = [1] * len(size)
        shape[k] = n
        idx = idx + (np.arange(n, dtype=np.int64) * s).reshape(shape)
    return idx


def _as_strided_forward(x, size, stride, storage_offset):
    flat = np.ascontiguousarray(x).reshape(-1)     # x itself when contiguous (ops ensures it)
    if not flat.size or 0 in size:
        return flat[strided_positions(size, stride, storage_offset)]
    return np.lib.stride_tricks.as_strided(flat[storage_offset:], tuple(size),
                                           tuple(s * flat.itemsize for s in stride),
                                           writeable=x.flags.writeable)


def _as_strided_vjp(g, x, out, size, stride, storage_offset):
    # each input element gets the sum of the gradients of the outputs that read it
    key = (strided_positions(size, stride, storage_offset),)
    prefix = tuple(g.shape[:len(g.shape) - len(size)])
    if isinstance(g, Tensor):
        flat = index_add_zeros(g, key=key, shape=(x.size,), out_ndim=len(size))
    else:
        flat = _index_add_zeros_forward(g, key, (x.size,), len(size))
    return B.reshape(flat, prefix + tuple(x.shape))


as_strided = Primitive(
    "as_strided", "AsStridedBackward0", _as_strided_forward, save="shapes",
    input_names=("self",), batch=batching.per_example,
    doc="a view at given sizes, strides (in elements) and offset (overlaps allowed)",
    sample=lambda: [one(normal(3, 4), size=(2, 2), stride=(1, 2), storage_offset=3),
                    one(normal(3, 4), size=(3, 3), stride=(1, 1), storage_offset=0),
                    one(normal(6), size=(2, 3), stride=(3, 1), storage_offset=0)],
    vjp=_as_strided_vjp,
    jvp=lambda t, x, out, size, stride, storage_offset: np.ascontiguousarray(t).reshape(-1)[
        strided_positions(size, stride, storage_offset)])
