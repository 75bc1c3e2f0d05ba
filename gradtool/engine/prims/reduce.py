"""Reductions.  Dims are normalized (non-negative, sorted tuples) before ``apply``."""

from __future__ import annotations

import math

import numpy as np

from .. import backend as B
from .. import batching
from ..samples import away, distinct, normal, one, unary
from ..primitive import Primitive, apply
from . import elementwise
from ..tensor import Tensor
from .scalar_dim import on_missing_axis


def _expand_back(g, shape, dims, keepdim):
    """Broadcast a reduced gradient back over the reduced dims of an input of ``shape``."""
    nd = len(shape)
    if type(g) is np.ndarray and not g.ndim:
        # a full reduction's gradient, one number: a read-only view of it with zero strides
        # (np.broadcast_to's result, without its Python-level argument handling)
        out = np.ndarray(shape, g.dtype, g, 0, (0,) * nd)
        out.flags.writeable = False
        return out
    if not keepdim:
        g = B.expand_dims(g, tuple(d - nd for d in dims))
    return B.broadcast_to(g, tuple(g.shape[:len(g.shape) - nd]) + tuple(shape))


def _count(shape, dims):
    n = 1
    for d in dims:
        n *= shape[d]
    return n


# sum(x): every element gets the incoming gradient.
sum_all = Primitive("sum", "SumBackward0", lambda x: x.sum(), save="shapes",
                    input_names=("self",),
                    batch=batching.reduce_all(np.sum), delta=batching.delta_reduce,
                    sample=unary(shape=(2, 3)),
                    vjp=lambda g, x, out: _expand_back(g, x.shape, tuple(range(x.ndim)), False),
                    jvp=lambda t, x, out: np.sum(t))

def _contiguous_result(np_reduce):
    """A reduction whose result is C-contiguous, as torch's are (numpy lays the result out
    like a strided input).  Memory layout decides which later reshapes are views."""
    def forward(x, dim, keepdim):
        out = np_reduce(x, axis=dim, keepdims=keepdim)
        return out if out.flags.c_contiguous else np.ascontiguousarray(out)
    return forward


sum_dim = Primitive("sum_dim", "SumBackward1",
                    save="shapes", input_names=("self",),
                    batch=batching.dims_shifted("dim"), delta=batching.delta_reduce,
                    sample=lambda: [one(normal(2, 3, 2), dim=(0, 2), keepdim=False),
                                    one(normal(2, 3), dim=(1,), keepdim=True)],
                    **on_missing_axis(
                        _contiguous_result(np.sum),
                        vjp=lambda g, x, out, dim, keepdim: _expand_back(g, x.shape, dim,
                                                                         keepdim),
                        jvp=lambda t, x, out, dim, keepdim: np.sum(t, axis=dim,
                                                                   keepdims=keepdim)))

def _mean(x, axis=None, keepdims=False):
    """np.mean, with torch's silent NaN for an empty reduction (numpy warns)."""
    if np.size(x) == 0:
        total = np.sum(x, axis=axis, keepdims=keepdims)
        return np.full_like(total, np.nan, dtype=np.result_type(total.dtype, np.float16))
    return np.mean(x, axis=axis, keepdims=keepdims)


# mean(x) = sum(x) / n
mean_all = Primitive("mean", "MeanBackward0", lambda x: _mean(x), quiet=True, save="shapes",
                     input_names=("self",),
                     batch=batching.reduce_all(np.mean), delta=batching.delta_reduce,
                     sample=unary(shape=(2, 3)),
                     vjp=lambda g, x, out:
                         _expand_back(g, x.shape, tuple(range(x.ndim)), False) / max(x.size, 1),
                     jvp=lambda t, x, out: np.mean(t))

mean_dim = Primitive("mean_dim", "MeanBackward1",
                     quiet=True, save="shapes", input_names=("self",),
                     batch=batching.dims_shifted("dim"), delta=batching.delta_reduce,
                     sample=lambda: [one(normal(2, 3, 2), dim=(1,), keepdim=False),
                                     one(normal(2, 3), dim=(0, 1), keepdim=True)],
                     **on_missing_axis(
                         _contiguous_result(_mean),
                         vjp=lambda g, x, out, dim, keepdim:
                             _expand_back(g, x.shape, dim, keepdim) / _count(x.shape, dim),
                         jvp=lambda t, x, out, dim, keepdim: np.mean(t, axis=dim,
                                                                     keepdims=keepdim)))


def _expand_kept(g, nd, dims, keepdim):
    """A reduced gradient (or output) with its reduced dims back as size-1 axes."""
    if keepdim:
        return g
    return B.expand_dims(g, tuple(d - nd for d in dims))


def _all(x) -> tuple:
    return tuple(range(np.ndim(x)))


# ---- max / min ---------------------------------------------------------------------------------
def _extreme_mask(x, value, dims):
    """Where x attains its reduced extreme ``value`` (keepdims), split evenly among ties
    (torch's evenly_distribute_backward)."""
    hit = x == value
    return hit / np.sum(hit, axis=dims, keepdims=True)


def _attains(x, value):
    """Where x equals its extreme ``value`` (NaN: where x is NaN, as torch picks it)."""
    if np.isnan(value):
        return np.isnan(x)
    return x == value


def _full_extreme(name, node_name, np_fn, *, sample=None):
    def vjp(g, x, out):
        # torch (on the CPU): zeros with the share of the gradient filled in where x attains
        # the extreme (a NaN extreme: where x is NaN), so an inf gradient leaks nowhere else
        data = B.data(x)
        value = np_fn(data)
        hit = _attains(data, value)
        share = _expand_back(g, data.shape, _all(data), False) / np.count_nonzero(hit)
        return B.where(hit, share, 0.0)

    def jvp(t, x, out):
        return np.sum(t * _extreme_mask(x, np_fn(x), _all(x)))     # NaN extreme: NaN, as torch

    # torch saves the result too: changing it in place is a version error
    prim = Primitive(name, node_name, lambda x: np_fn(x), input_names=("self",), save="both",
                     analytic=False, batch=batching.reduce_all(np_fn), domain="distinct",
                     sample=sample,
                     vjp=vjp,
                     jvp=jvp)
    return prim


max_all = _full_extreme("max", "MaxBackward1", np.max,
                        sample=unary(distinct))
min_all = _full_extreme("min", "MinBackward1", np.min,
                        sample=unary(distinct))


def _dim_extreme(name, node_name, np_fn, arg_fn, *, sample=None):
    # max(x, dim): the gradient goes to the element the indices point at
    def onehot(x, dim):
        idx = np.expand_dims(arg_fn(x, axis=dim), dim)
        hit = np.zeros(x.shape, dtype=bool)
        np.put_along_axis(hit, idx, True, axis=dim)
        return hit

    def vjp(g, x, out, dim, keepdim):
        # torch scatters the gradient to the indices: zeros elsewhere, whatever g holds
        data = B.data(x)
        return B.where(onehot(data, dim), _expand_back(g, data.shape, (dim,), keepdim), 0.0)

    def jvp(t, x, out, dim, keepdim):
        return np.sum(t * onehot(x, dim), axis=dim, keepdims=keepdim)

    prim = Primitive(name, node_name,
                     input_names=("self",), analytic=False,
                     batch=batching.dims_shifted("dim"), domain="distinct", sample=sample,
                     **on_missing_axis(
                         lambda x, dim, keepdim: np_fn(x, axis=dim, keepdims=keepdim),
                         vjp=vjp, jvp=jvp))
    return prim


max_dim = _dim_extreme("max_dim", "MaxBackward0", np.max, np.argmax,
                       sample=lambda: [one(distinct(3, 4), dim=1, keepdim=False),
                                       one(distinct(3, 4), dim=0, keepdim=True)])
min_dim = _dim_extreme("min_dim", "MinBackward0", np.min, np.argmin,
                       sample=lambda: [one(distinct(3, 4), dim=1, keepdim=False),
                                       one(distinct(3, 4), dim=0, keepdim=True)])


def _amax_like(name, node_name, np_fn, *, sample=None):
    def vjp(g, x, out, dim, keepdim):
        data = B.data(x)
        mask = _extreme_mask(data, np_fn(data, axis=dim, keepdims=True), dim)
        return _expand_back(g, data.shape, dim, keepdim) * B.astype_like(mask, g)

    def jvp(t, x, out, dim, keepdim):
        mask = _extreme_mask(x, np_fn(x, axis=dim, keepdims=True), dim)
        return np.sum(t * mask, axis=dim, keepdims=keepdim)

    prim = Primitive(name, node_name,
                     input_names=("self",), analytic=False, save="both",
                     batch=batching.dims_shifted("dim"), domain="distinct", sample=sample,
                     **on_missing_axis(
                         lambda x, dim, keepdim: np_fn(x, axis=dim, keepdims=keepdim),
                         vjp=vjp, jvp=jvp))
    return prim


amax = _amax_like("amax", "AmaxBackward0", np.max,
                  sample=lambda: [one(distinct(3, 4), dim=(1,), keepdim=False),
                                  one(distinct(2, 3, 2), dim=(0, 2), keepdim=True)])
amin = _amax_like("amin", "AminBackward0", np.min,
                  sample=lambda: [one(distinct(3, 4), dim=(0, 1), keepdim=False)])


# ---- prod ----------------------------------------------------------------------------------------
def _prod_others(x, axis):
    """Product of all the other elements along axis (None: all), without dividing: exclusive
    running products from both ends (exact when x has zeros)."""
    if axis is None:
        return _prod_others(x.reshape(-1), 0).reshape(x.shape)
    if x.shape[axis] == 0:
        return np.ones_like(x)
    ones = np.ones_like(np.take(x, [0], axis=axis))
    left = np.concatenate([ones, np.cumprod(np.take(x, range(x.shape[axis] - 1), axis=axis),
                                            axis=axis)], axis=axis)
    flipped = np.flip(x, axis=axis)
    right = np.concatenate([ones, np.cumprod(np.take(flipped, range(x.shape[axis] - 1),
                                                     axis=axis), axis=axis)], axis=axis)
    return left * np.flip(right, axis=axis)


def _prod_others_recorded(x, dim):
    """``_prod_others`` of a Tensor, as recorded ops (so differentiable again): row i of an
    (n, n) block holds x with its i-th element replaced by 1; the product of each row."""
    from .. import ops
    if dim is None:
        return ops.reshape(_prod_others_recorded(ops.reshape(x, -1), 0), tuple(x.shape))
    last = ops.transpose(x, dim, -1)
    n = last.shape[-1]
    rows = ops.where(np.eye(n, dtype=bool), 1.0, ops.unsqueeze(last, -2))
    return ops.transpose(ops.prod(rows, -1), dim, -1)


def _prod_vjp(g, x, out, dim, keepdim):
    # d prod(x) / dx_i = prod(x) / x_i; where x has zeros, the product of the others is
    # computed directly (under create_graph as recorded ops: exact at every order)
    if x.ndim == 0:
        return g            # torch's prod_backward: the gradient itself for a 0-d input
    dims = _all(x) if dim is None else (dim,)
    expanded = _expand_back(g, x.shape, dims, keepdim)
    data = B.data(x)
    if np.any(data == 0):
        if (data.size if dim is None else data.shape[dim]) == 1:
            # torch's prod_safe_zeros_backward: a product of one factor passes the gradient
            # on (under create_graph it requires grad only where the gradient does)
            return expanded
        if isinstance(x, Tensor):
            return expanded * _prod_others_recorded(x, dim)
        return expanded * _prod_others(data, dim)
    # torch: grad * (result / input), the gradient and the quotient broadcast back
    return expanded * (_expand_back(out, x.shape, dims, keepdim) / x)


prod_all = Primitive("prod", "ProdBackward0", lambda x: np.prod(x), quiet=True, save="both",
                     input_names=("self",), batch=batching.reduce_all(np.prod), domain="nonzero",
                     sample=unary(away),
                     vjp=lambda g, x, out: _prod_vjp(g, x, out, None, False),
                     jvp=lambda t, x, out: np.sum(t * _prod_others(x, None)))

_prod_dim_rules = on_missing_axis(
    lambda x, dim, keepdim: np.prod(x, axis=dim, keepdims=keepdim), vjp=_prod_vjp,
    jvp=lambda t, x, out, dim, keepdim: np.sum(t * _prod_others(x, dim), axis=dim,
                                               keepdims=keepdim))


def _prod_dim_vjp(g, x, out, dim, keepdim):
    if x.ndim == 0:
        # torch's prod_backward returns the gradient itself for a 0-d input whatever the dim
        # (so under create_graph it requires grad only where the gradient does)
        return g
    return _prod_dim_rules["vjp"](g, x, out=out, dim=dim, keepdim=keepdim)


prod_dim = Primitive("prod_dim", "ProdBackward1",
                     _prod_dim_rules["forward"], quiet=True, save="both", input_names=("self",),
                     batch=batching.dims_shifted("dim"), domain="nonzero",
                     sample=lambda: [one(away(3, 4), dim=1, keepdim=False),
                                     one(away(3, 4), dim=0, keepdim=True),
                                     one(away(1).reshape(()), dim=0, keepdim=False),
                                     one(away(1).reshape(()), dim=0, keepdim=True)],
                     vjp=_prod_dim_vjp, jvp=_prod_dim_rules["jvp"])


# ---- var / std (correction = 1: unbiased, torch's default) -------------------------------
def degrees_of_freedom(shape, dim, correction) -> float:
    """N - correction, at least 0 (a python float: it keeps float32 results float32)."""
    return float(max(_count(shape, dim) - correction, 0))


def _per_dof(n: float) -> float:
    """1 / n, inf without degrees of freedom (NaN/inf results as in torch, no exception)."""
    return 1.0 / n if n else np.inf


def _centered(x, dim):
    if 0 in x.shape:   # nothing to center (and numpy would warn about an empty mean)
        return x
    return x - B.mean(x, axis=tuple(d - x.ndim for d in dim), keepdims=True)


def _every(x, dim) -> tuple:
    """var/std's dims: None (torch's call without a dim, or of a 0-d tensor) is all of them."""
    return tuple(range(len(x.shape))) if dim is None else dim


def _var_forward(x, dim, correction, keepdim):
    # sum (x - mean)^2 / (N - correction), without conjugation: the same as np.var on real
    # input, and complex-analytic (the complex-step method can differentiate it)
    dim = _every(x, dim)
    d = x - _mean(x, axis=dim, keepdims=True)
    return np.sum(d * d, axis=dim, keepdims=keepdim) / degrees_of_freedom(np.shape(x), dim,
                                                                          correction)


def _var_vjp(g, x, out, dim, correction, keepdim):
    # d var = 2 (x - mean) dx / (N - correction)
    full = dim is None
    dim = _every(x, dim)
    n = degrees_of_freedom(x.shape, dim, correction)
    if full and n <= 0:
        # torch's var_backward without a dim and no degrees of freedom: a constant
        # (|x - mean| * inf: NaN where x is its mean), not a function of x
        spread = np.abs(_centered(B.data(x), dim))
        return _expand_back(g, x.shape, dim, keepdim) * (spread * np.inf)
    return _expand_back(g, x.shape, dim, keepdim) * _centered(x, dim) * (2.0 * _per_dof(n))


def _var_jvp(t, x, out, dim, correction, keepdim):
    if not x.size:      # torch: a zero tangent over an empty dim (not 0 * inf)
        return np.zeros(np.shape(out), x.dtype)
    dim = _every(x, dim)
    n = degrees_of_freedom(x.shape, dim, correction)
    return np.sum(t * _centered(x, dim), axis=dim, keepdims=keepdim) * (2.0 * _per_dof(n))


var = Primitive("var", "VarBackward0", quiet=True, input_names=("self",),
                batch=batching.dims_shifted("dim"),
                sample=lambda: [one(normal(3, 4), dim=(0, 1), correction=1, keepdim=False),
                                one(normal(3, 4), dim=(1,), correction=0, keepdim=True),
                                one(normal(3, 2), dim=None, correction=1, keepdim=False)],
                **on_missing_axis(_var_forward, vjp=_var_vjp, jvp=_var_jvp))


def _nonzero(out):
    """out with zeros replaced by inf: dividing by it gives 0 where out == 0, where torch
    masks the gradient of std and of the 2-norm (constant inputs, zero vectors)."""
    return B.where(B.data(out) == 0, np.inf, out)


def _std_vjp(g, x, out, dim, correction, keepdim):
    # d std = (x - mean) dx / ((N - correction) std)
    dim = _every(x, dim)
    n = degrees_of_freedom(x.shape, dim, correction)
    return _expand_back(g / _nonzero(out), x.shape, dim, keepdim) * _centered(x, dim) * _per_dof(n)


def _std_jvp(t, x, out, dim, correction, keepdim):
    dim = _every(x, dim)
    n = degrees_of_freedom(x.shape, dim, correction)
    return np.sum(t * _centered(x, dim), axis=dim, keepdims=keepdim) / _nonzero(out) \
        * _per_dof(n)


std = Primitive("std", "StdBackward0", quiet=True, save="both", input_names=("self",),
                batch=batching.dims_shifted("dim"),
                sample=lambda: [one(normal(3, 4), dim=(0, 1), correction=1, keepdim=False),
                                one(normal(3, 4), dim=(0,), correction=1, keepdim=True)],
                **on_missing_axis(
                    lambda x, dim, correction, keepdim: np.sqrt(_var_forward(x, dim, correction,
                                                                             keepdim)),
                    vjp=_std_vjp, jvp=_std_jvp))


# ---- vector norm -------------------------------------------------------------------------------
def _norm_forward(x, ord, dim, keepdim):
    a = np.abs(x)
    if ord == np.inf:
        return np.max(a, axis=dim, keepdims=keepdim)
    if ord == -np.inf:
        return np.min(a, axis=dim, keepdims=keepdim)
    if ord == 0:
        return np.sum(a != 0, axis=dim, keepdims=keepdim).astype(a.dtype)
    if ord == 1:
        return np.sum(a, axis=dim, keepdims=keepdim)
    if ord == 2:
        return np.sqrt(np.sum(a * a, axis=dim, keepdims=keepdim))
    return np.sum(a ** ord, axis=dim, keepdims=keepdim) ** (1.0 / ord)


def _norm_direction(x, out, ord, dim, keepdim):
    """d ||x||_p / dx (out with kept dims)."""
    kept = _expand_kept(out, x.ndim, dim, keepdim)
    if ord == 0:
        return np.zeros(x.shape)
    if ord == 2:
        # d ||x|| = x / ||x||, 0 where ||x|| = 0: 1 / ||x|| masked afterwards, as torch's
        # norm_backward (so its own derivative there is 0 * inf, NaN, as torch's)
        return x * B.where(B.data(kept) == 0, 0.0, 1.0 / kept)
    sign = B.sign(x)        # recorded under create_graph (a zero derivative, as torch's sgn)
    if ord == 1:
        return sign
    if ord in (np.inf, -np.inf):
        return sign * _extreme_mask(np.abs(B.data(x)), B.data(kept), dim)
    # d ||x||_p = sign(x) |x|^(p-1) / ||x||^(p-1)
    return sign * (B.abs(x) / _nonzero(kept)) ** (ord - 1)


def _norm_vjp(g, x, out, ord, dim, keepdim):
    if ord in (1, np.inf, -np.inf):
        # torch: sgn(x) * (the spread gradient, masked to the extremes for inf): recorded
        # under create_graph (SgnBackward0), so the gradient of this gradient exists, zero
        spread = _expand_back(g, x.shape, dim, keepdim)
        if ord != 1:
            kept = _expand_kept(out, x.ndim, dim, keepdim)
            spread = spread * B.astype_like(
                _extreme_mask(np.abs(B.data(x)), B.data(kept), dim), spread)
        return _on_tensors(elementwise.sgn, (x,), {}) * spread
    return _expand_back(g, x.shape, dim, keepdim) * _norm_direction(x, out, ord, dim, keepdim)


def _norm_jvp(t, x, out, ord, dim, keepdim):
    return np.sum(t * _norm_direction(x, out, ord, dim, keepdim), axis=dim, keepdims=keepdim)


def _vector_norm_samples():
    return [one(away(3, 4), ord=2.0, dim=(0, 1), keepdim=False),
            one(away(3, 4), ord=1.0, dim=(1,), keepdim=True),
            one(away(3, 4), ord=3.0, dim=(0,), keepdim=False),
            one(distinct(3, 4), ord=np.inf, dim=(1,), keepdim=False),
            one(distinct(3, 4), ord=-np.inf, dim=(0, 1), keepdim=False)]


vector_norm = Primitive("vector_norm", "LinalgVectorNormBackward0", quiet=True, save="both",
                        input_names=("self",), analytic=False,
                        batch=batching.dims_shifted("dim"), domain="away_from_zero",
                        sample=_vector_norm_samples,
                        **on_missing_axis(_norm_forward, vjp=_norm_vjp, jvp=_norm_jvp))


# ---- logsumexp / softmax / log_softmax (fused: numerically stable rules) ------------------------
def _logsumexp_forward(x, dim, keepdim):
    # over an empty dim: log(0) = -inf (torch), and softmax of an empty dim is empty.  The
    # ufuncs' reductions called directly: np.max's and np.sum's Python wrappers cost more
    # than the arithmetic on small inputs (every softmax and cross_entropy runs this)
    m = np.maximum.reduce(x.real if x.dtype.kind == "c" else x, axis=dim, keepdims=True,
                          initial=-np.inf)
    if not math.isfinite(np.add.reduce(m, axis=None)):
        m = np.where(np.isfinite(m), m, 0.0)    # rows with an inf or nan max shift by 0
    out = np.log(np.add.reduce(np.exp(x - m), axis=dim, keepdims=True)) + m
    return out if keepdim else np.squeeze(out, axis=dim)


def _logsumexp_jvp(t, x, out, dim, keepdim):
    if not x.size:      # torch's tangent over an empty dim is NaN (its output is -inf)
        return np.full(np.shape(out), np.nan, x.dtype)
    return np.sum(t * np.exp(x - _expand_kept(out, x.ndim, dim, keepdim)), axis=dim,
                  keepdims=keepdim)


# d logsumexp(x) = softmax(x) dx = exp(x - logsumexp(x)) dx
logsumexp = Primitive("logsumexp", "LogsumexpBackward0", quiet=True, save="both",
                      input_names=("self",), batch=batching.dims_shifted("dim"),
                      sample=lambda: [one(normal(3, 4), dim=(1,), keepdim=False),
                                      one(normal(2, 3, 2) * 30, dim=(0, 2), keepdim=True)],
                      **on_missing_axis(
                          _logsumexp_forward,
                          vjp=lambda g, x, out, dim, keepdim: _expand_back(g, x.shape, dim,
                                                                           keepdim)
                          * B.exp(x - _expand_kept(out, x.ndim, dim, keepdim)),
                          jvp=_logsumexp_jvp))


# softmax and log_softmax write contiguous results, as torch's kernels do (numpy lays out
# elementwise results like strided inputs; the layout decides which later reshapes are views)
def _softmax_forward(x, dim):
    lse = _logsumexp_forward(x, (dim,), True)
    out = np.exp(x - lse)
    if not math.isfinite(np.add.reduce(lse, axis=None)) and np.isposinf(lse).any():
        # torch's kernel shifts by the max: a row holding +inf is NaN throughout
        out = np.where(np.isposinf(lse), np.nan, out)
    return np.ascontiguousarray(out)


def _softmax_vjp(g, x, out, dim):
    # J = diag(s) - s sᵀ:  vᵀJ = s * (v - <v, s>)
    d = dim - x.ndim
    return out * (g - B.sum(g * out, axis=d, keepdims=True))


def _on_tensors(prim, args, params):
    """Run ``prim`` recorded when an argument is a Tensor (create_graph), else on arrays."""
    if any(isinstance(a, Tensor) for a in args):
        return apply(prim, args, params)
    return prim.forward(*args, **params)


# The backwards of softmax and log_softmax are nodes of their own under create_graph, as
# torch's _softmax_backward_data / _log_softmax_backward_data (SoftmaxBackwardDataBackward0,
# LogSoftmaxBackwardDataBackward0, edges to grad_output and to the forward's output y).
# Dims count from the end in the rules, so cotangents with leading batch axes work.
#   softmax:      f(g, y) = y (g - <g, y>);  df = dy (g - <g, y>) - y <g, dy> + y (dg - <dg, y>)
#   log_softmax:  f(g, y) = g - exp(y) sum(g);  df = dg - exp(y) sum(dg) - exp(y) sum(g) dy
def _from_end(dim, g, y):
    # dim counted from the end of y (g may carry leading batch axes: a batched cotangent)
    return dim - np.ndim(y)


def _batch_both(prim, args, batched, size, params):
    # gt.vmap: a unit batch axis on the unbatched argument too (y's axes count as g's)
    return prim.forward(*[a if b else np.asarray(a)[None] for a, b in zip(args, batched)],
                        dim=params["dim"] + 1)


def _lane_sum(v, dim, like):
    return B.sum(v, axis=dim - like.ndim, keepdims=True)


def _softmax_backward_vjp_y(gg, g, y, out, dim):
    return gg * (g - _lane_sum(g * y, dim, y)) - g * _lane_sum(gg * y, dim, y)


softmax_backward = Primitive(
    "softmax_backward", "SoftmaxBackwardDataBackward0",
    lambda g, y, dim: y * (g - np.sum(g * y, axis=_from_end(dim, g, y), keepdims=True)),
    quiet=True, broadcasts=True, input_names=("grad_output", "output"),
    doc="the backward of softmax", batch=_batch_both,
    sample=lambda: [one(normal(3, 4, seed=1), _softmax_forward(normal(3, 4), 1), dim=1)],
    vjp=(lambda gg, g, y, out, dim: y * (gg - _lane_sum(gg * y, dim, y)),
         _softmax_backward_vjp_y),
    jvp=(lambda t, g, y, out, dim: y * (t - np.sum(t * y, axis=dim - y.ndim, keepdims=True)),
         lambda t, g, y, out, dim: t * (g - _lane_sum(g * y, dim, y))
         - y * _lane_sum(g * t, dim, y)))
log_softmax_backward = Primitive(
    "log_softmax_backward", "LogSoftmaxBackwardDataBackward0",
    lambda g, y, dim: g - np.exp(y) * np.sum(g, axis=_from_end(dim, g, y), keepdims=True),
    quiet=True, broadcasts=True, input_names=("grad_output", "output"),
    doc="the backward of log_softmax", batch=_batch_both,
    sample=lambda: [one(normal(3, 4, seed=1), _log_softmax_forward(normal(3, 4), 1), dim=1)],
    vjp=(lambda gg, g, y, out, dim: gg - _lane_sum(B.exp(y) * gg, dim, y),
         lambda gg, g, y, out, dim: -gg * B.exp(y) * _lane_sum(g, dim, y)),
    jvp=(lambda t, g, y, out, dim: t - np.exp(y) * np.sum(t, axis=dim - y.ndim, keepdims=True),
         lambda t, g, y, out, dim: -t * np.exp(y) * np.sum(g, axis=dim - y.ndim,
                                                           keepdims=True)))


softmax = Primitive("softmax", "SoftmaxBackward0", quiet=True, save="out",
                    input_names=("self",),
                    batch=batching.dims_shifted("dim"), delta=batching.delta_lane,
                    sample=lambda: [one(normal(3, 4), dim=1), one(normal(3, 4) * 20, dim=0)],
                    **on_missing_axis(
                        _softmax_forward,
                        vjp=lambda g, x, out, dim: _on_tensors(softmax_backward, (g, out),
                                                               {"dim": dim}),
                        jvp=lambda t, x, out, dim: out * (t - np.sum(t * out, axis=dim,
                                                                     keepdims=True))))


def _log_softmax_forward(x, dim):
    # (x - max) - log(sum(exp(x - max))), as torch's kernel rounds it
    complex_input = x.dtype.kind == "c"
    m = np.maximum.reduce(x.real if complex_input else x, axis=dim, keepdims=True,
                          initial=-np.inf)
    if complex_input and not math.isfinite(np.add.reduce(m, axis=None)):
        # rows with a -inf or nan max shift by 0 (their imaginary parts survive); a +inf max
        # stays (as torch's kernel: the row is NaN throughout).  Real rows need no shift:
        # a -inf or nan max makes the row NaN either way (-inf - -inf, as the shifted
        # row's -inf - log(0)), bit for bit
        m = np.where(np.isfinite(m) | np.isposinf(m), m, 0.0)
    shifted = x - m
    return np.ascontiguousarray(shifted - np.log(np.add.reduce(np.exp(shifted), axis=dim,
                                                               keepdims=True)))


def _log_softmax_vjp(g, out, dim):
    """log_softmax_backward(g, out): recorded under create_graph; on arrays its forward
    without the call's wrappers (every backward through a cross_entropy runs it)."""
    if type(g) is np.ndarray and type(out) is np.ndarray:
        token = B.errors_off()
        try:
            return g - np.exp(out) * np.add.reduce(g, axis=dim - out.ndim, keepdims=True)
        finally:
            B.errors_restore(token)
    return _on_tensors(log_softmax_backward, (g, out), {"dim": dim})


# d log_softmax(x) = dx - <softmax(x), dx>:  vᵀJ = v - softmax(x) sum(v)
_log_softmax_lifted = on_missing_axis(
    _log_softmax_forward,
    vjp=lambda g, x, out, dim: _log_softmax_vjp(g, out, dim),
    jvp=lambda t, x, out, dim: t - np.sum(np.exp(out) * t, axis=dim, keepdims=True))


def _log_softmax_run(x, dim):
    """The forward as the primitive runs it: quiet (``backend.quiet``) and lifted for the
    dim of a 0-d input (``on_missing_axis``), in one call (every cross_entropy runs it)."""
    token = B.errors_off()
    try:
        if dim == x.ndim:
            return _log_softmax_lifted["forward"](x, dim=dim)
        return _log_softmax_forward(x, dim)
    finally:
        B.errors_restore(token)


def _log_softmax_input_vjp(g, x, out, dim):
    """The input's VJP (``on_missing_axis``'s, without its wrapper when the dim is real)."""
    if dim == len(out.shape):
        return _log_softmax_lifted["vjp"](g, x, out=out, dim=dim)
    return _log_softmax_vjp(g, out, dim)


log_softmax = Primitive("log_softmax", "LogSoftmaxBackward0", _log_softmax_run, save="out",
                        input_names=("self",),
                        batch=batching.dims_shifted("dim"), delta=batching.delta_lane,
                        sample=lambda: [one(normal(3, 4), dim=1), one(normal(3, 4) * 20, dim=0)],
                        vjp=_log_softmax_input_vjp, jvp=_log_softmax_lifted["jvp"])


# ---- cumsum -------------------------------------------------------------------------------------
# The adjoint of a running sum is a running sum from the other end.
cumsum = Primitive("cumsum", "CumsumBackward0", save="shapes", input_names=("self",),
                   batch=batching.dims_shifted("dim"),
                   sample=lambda: [one(normal(3, 4), dim=1), one(normal(3, 4), dim=0)],
                   **on_missing_axis(
                       lambda x, dim: np.cumsum(x, axis=dim),
                       vjp=lambda g, x, out, dim: B.flip(B.cumsum(B.flip(g, (dim - x.ndim,)),
                                                                  dim - x.ndim), (dim - x.ndim,)),
                       jvp=lambda t, x, out, dim: np.cumsum(t, axis=dim)))


# torch.norm(x, p, dim, keepdim) with a dim (at::norm, as pairwise_distance calls it): the
# rules of vector_norm, recorded as torch records it (NormBackward1)
norm_dim = Primitive("norm_dim", "NormBackward1", quiet=True, save="both",
                     input_names=("self",), analytic=False,
                     batch=batching.dims_shifted("dim"), domain="away_from_zero",
                     sample=_vector_norm_samples,
                     **on_missing_axis(_norm_forward, vjp=_norm_vjp, jvp=_norm_jvp))
