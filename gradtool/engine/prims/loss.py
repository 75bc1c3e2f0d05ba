"""Fused loss primitives (torch shows each as one node; the rules are the stable ones)."""

from __future__ import annotations

import numpy as np

from .. import backend as B
from .. import batching
from ..samples import normal, one, positive
from ...errors import EngineError
from ..dtypes import scalar_type_name
from ..primitive import Primitive, apply
from ..tensor import Tensor

REDUCTIONS = ("none", "mean", "sum")


def _reduce(loss, reduction, denom=None):
    if reduction == "none":
        return loss
    # loss.sum() without its Python wrapper (arrays: every call of a loss runs this)
    total = np.add.reduce(loss, axis=None) if type(loss) is np.ndarray else loss.sum()
    if reduction == "sum":
        return total
    return total / (loss.size if denom is None else denom)


def _scalar_grad(g, nd):
    """A gradient of a reduced (0-d) loss, shaped to broadcast over an input of ndim nd
    (keeping a leading batch axis)."""
    return B.reshape(g, tuple(g.shape) + (1,) * nd)


# ---- nll_loss -----------------------------------------------------------------------------------
def _class_axis(ndim):
    return 1 if ndim >= 2 else 0


def _nll_picked(shape, target, weight, ignore_index):
    """(the index tuple picking x[n, target[n], d1, ...] from an input of ``shape``, the
    weight of each picked element: weight[target[n]], 0 for an ignored target, or None when
    every one is 1, the mask of the targets not ignored or None when none is).  Plain fancy
    indexing: this runs on every call of the loss (and of its backward)."""
    # no ignored target (the usual case): one count, no mask
    all_valid = not np.count_nonzero(target == ignore_index)
    if all_valid:
        safe = target
        valid = None
    else:
        valid = target != ignore_index
        safe = np.where(valid, target, 0)
    if weight is not None:
        picked = np.asarray(weight, dtype=np.float64)[safe]
        if not all_valid:
            picked = np.where(valid, picked, 0.0)
    else:
        picked = None if all_valid else valid.astype(np.float64)
    nd = len(shape)
    if nd == 1:
        return (safe,), picked, valid
    if nd == 2:
        return (np.arange(shape[0]), safe), picked, valid
    # (N, C, d1, ...): the target's axes are the input's without the class axis 1
    index = [np.arange(shape[0]).reshape((shape[0],) + (1,) * (nd - 2)), safe]
    for axis in range(2, nd):
        size = shape[axis]
        index.append(np.arange(size).reshape((size,) + (1,) * (nd - 1 - axis)))
    return tuple(index), picked, valid


def _nll_weights(x, target, weight, ignore_index):
    """W with W[n, target[n], ...] = weight[target[n]] (0 for ignored targets): the loss is
    -sum(W * x) over the class axis, and W is its (constant) derivative."""
    index, picked, _ = _nll_picked(x.shape, target, weight, ignore_index)
    if picked is None:
        picked = np.ones(np.shape(target))
    W = np.zeros(x.shape, dtype=np.float64)
    W[index] = picked
    return W, picked


def _nll_forward(x, target, reduction, weight, ignore_index):
    # -weight[t] * x[n, t]: only the picked elements (as torch: an Inf or NaN in another
    # class, or at an ignored target, does not reach the loss); in float64, then x's dtype
    index, picked, kept = _nll_picked(x.shape, target, weight, ignore_index)
    if picked is None and x.dtype.kind == "f":
        # every weight 1: the sum of the negated picked elements, over their count
        chosen = x[index]
        loss = np.negative(chosen, dtype=np.float64)
        if reduction == "none":
            return loss.astype(x.dtype, copy=False)
        total = np.add.reduce(loss, axis=None)
        if reduction == "mean":
            total = total / loss.size
        return np.asarray(total, dtype=x.dtype)
    loss = -((1.0 if picked is None else picked) * x[index])
    if kept is not None:
        loss = np.where(kept, loss, 0.0)
    denom = loss.size if picked is None else picked.sum()
    return _reduce(loss, reduction, denom).astype(x.dtype)


def _nll_vjp(g, x, target, out, reduction, weight, ignore_index):
    data = x if type(x) is np.ndarray else B.data(x)
    index, picked, kept = _nll_picked(data.shape, target, weight, ignore_index)
    if reduction == "mean":
        if picked is None:
            value = -1.0 / max(1, target.size if type(target) is np.ndarray
                               else np.size(target))
        else:
            value = -(picked / picked.sum())
            if kept is not None:      # every target ignored: 0 / 0, and torch's zeros
                value = np.where(kept, value, 0.0)
    else:
        value = -1.0 if picked is None else -picked
    if type(g) is np.ndarray:
        return _nll_scatter(g, data.shape, target.ndim if type(target) is np.ndarray
                            else np.ndim(target), index, value, kept, reduction)
    if reduction == "none":
        g = B.expand_dims(g, _class_axis(x.ndim) - x.ndim)
    else:
        g = _scalar_grad(g, x.ndim)
    W = np.zeros(data.shape, dtype=g.dtype.np if isinstance(g, Tensor) else g.dtype)
    W[index] = value
    # torch scatters the gradient to the picked elements: zeros elsewhere (and at ignored
    # targets), whatever the gradient holds (an inf gradient leaks into no other class)
    hit = np.zeros(data.shape, dtype=bool)
    hit[index] = True if kept is None else kept
    return B.where(hit, g * W, 0.0)


def _nll_scatter(g, shape, target_ndim, index, value, kept, reduction):
    """``_nll_vjp`` on an array gradient (with or without a leading batch axis): zeros of
    the input's shape, and g times the picked element's weight at each picked element (at
    none of an ignored target); the same products as g * W at the picked elements."""
    if reduction != "none":
        g = g.reshape(g.shape + (1,) * target_ndim)
    batch = g.shape[:g.ndim - target_ndim]
    result = np.zeros(batch + tuple(shape), dtype=g.dtype)
    if type(value) is np.ndarray:
        value = value.astype(g.dtype, copy=False)   # as W (g's dtype) held it
    picked = g * value
    if kept is not None:
        picked = np.where(kept, picked, 0.0)
    result[(Ellipsis,) + index] = picked
    return result


def _nll_jvp(t, x, target, out, reduction, weight, ignore_index):
    W, picked = _nll_weights(x, target, weight, ignore_index)
    return _reduce(-np.sum(W * t, axis=_class_axis(x.ndim)), reduction, np.sum(picked))


def _nll_loss_samples():
    return [
one(normal(3, 4), np.array([0, 3, 1]), reduction=r, weight=None, ignore_index=-100)
for r in ("mean", "sum", "none")] + [
one(normal(3, 4), np.array([0, 3, 1]), reduction="mean",
weight=np.array([0.5, 1.0, 2.0, 1.5]), ignore_index=3),
one(normal(4), np.array(2), reduction="mean", weight=None, ignore_index=-100),
one(normal(2, 3, 2), np.array([[0, 2], [1, 1]]), reduction="none", weight=None,
ignore_index=-100)]


def _nll_quiet(x, target, reduction, weight, ignore_index):
    """The forward, quiet (``backend.quiet`` without its argument repacking: every
    cross_entropy runs it)."""
    token = B.errors_off()
    try:
        return _nll_forward(x, target, reduction, weight, ignore_index)
    finally:
        B.errors_restore(token)


# nll_loss's backward is itself a node under create_graph (torch: nll_loss_backward(grad,
# self, target, ...), NllLossBackwardBackward0 with edges to grad and self): linear in grad
# (its VJP there is nll_loss's forward, -sum(W gg) reduced), constant in self (a zero
# derivative, present as torch's).
def _nll_backward_vjp(gg, g, x, target, out, reduction, weight, ignore_index):
    W, picked = _nll_weights(B.data(x), target, weight, ignore_index)
    nd = x.ndim
    prod = gg * B.astype_like(-W, gg)
    if reduction == "none":
        return B.sum(prod, axis=_class_axis(nd) - nd)
    total = B.sum(prod, axis=tuple(range(-nd, 0)))
    return total / np.sum(picked) if reduction == "mean" else total


def _nll_primitives(name: str, node: str, samples):
    """nll_loss-like: the primitive and its backward's (``<name>_backward``, the node
    ``<node minus its trailing 0>Backward0`` under create_graph), with one set of rules."""

    def input_vjp(g, x, target, out, reduction, weight, ignore_index):
        # on arrays, the scatter itself (every backward through a cross_entropy runs it);
        # else the backward primitive, a node under create_graph
        if type(g) is np.ndarray and type(x) is np.ndarray:
            return _nll_vjp(g, x, target, None, reduction, weight, ignore_index)
        params = {"reduction": reduction, "weight": weight, "ignore_index": ignore_index}
        if isinstance(g, Tensor) or isinstance(x, Tensor):
            return apply(backward, (g, x, target), params)
        return _nll_vjp(g, x, target, None, **params)

    def backward_samples():
        out = []
        for (x, target), p in samples():
            g = np.asarray(np.random.default_rng(1).standard_normal(
                np.shape(_nll_forward(x, target, **p))))
            out.append(((g, x, target), p))
        return out

    forward = Primitive(name, node, _nll_quiet, input_names=("self", "target"),
                        batch=batching.nll_loss, delta=batching.delta_nll, sample=samples,
                        vjp=(input_vjp, None), jvp=(_nll_jvp, None))
    backward = Primitive(
        f"{name}_backward", node[:-1] + "Backward0",
        lambda g, x, target, **p: _nll_vjp(g, x, target, None, **p), quiet=True,
        input_names=("grad_output", "self", "target"), doc=f"the backward of {name}",
        batch=batching.per_example, sample=backward_samples,
        vjp=(_nll_backward_vjp, lambda gg, g, x, target, out, **p: B.zeros_like(gg), None),
        jvp=(lambda t, g, x, target, out, **p: _nll_vjp(t, x, target, None, **p),
             lambda t, g, x, target, out, **p: np.zeros_like(t), None))
    return forward, backward


def _nll2d_samples():
    target = np.array([[[0, 2], [1, 1]], [[2, 0], [1, 0]]])
    return [one(normal(2, 3, 2, 2), target, reduction=r, weight=None, ignore_index=-100)
            for r in ("mean", "sum", "none")] + [
        one(normal(2, 3, 2, 2), target, reduction="mean",
            weight=np.array([0.5, 1.0, 2.0]), ignore_index=1)]


nll_loss, nll_loss_backward = _nll_primitives("nll_loss", "NllLossBackward0",
                                              _nll_loss_samples)
# nll_loss2d: torch's nll_loss of a 4-D input (and of a 3-D or 5-D and up input, viewed as
# (N, C, 1, -1)): the same rules under its own names (NllLoss2DBackward0, and
# NllLoss2DBackwardBackward0 under create_graph)
nll_loss2d, nll_loss2d_backward = _nll_primitives("nll_loss2d", "NllLoss2DBackward0",
                                                  _nll2d_samples)


# ---- mse_loss -----------------------------------------------------------------------------------
def _mse_forward(x, y, reduction):
    d = x - y
    return _reduce(d * d, reduction)


def _mse_jvp(t, x, y, out, reduction):
    return _reduce(2 * (x - y) * t, reduction)


# ---- the backwards of the pointwise losses, nodes of their own under create_graph --------------
# torch's mse_loss_backward(grad, self, target) (MseLossBackwardBackward0, edges to grad, self
# and target; the target's gradient is the same node with self and target swapped), and
# smooth_l1 / huber likewise.  With d = a - b and the loss's slope s(d) and curvature s'(d):
#     B(g, a, b) = spread(g) s(d);  dB/dg: the spread's adjoint of gg s(d);
#     dB/da = gg spread(g) s'(d) = -dB/db.
def _spread(g, shape, reduction):
    if reduction == "none":
        return g
    g = _scalar_grad(g, len(shape))
    return g * (1.0 / max(int(np.prod(shape)), 1)) if reduction == "mean" else g


def _pair_shape(a, b):
    return np.broadcast_shapes(np.shape(B.data(a)), np.shape(B.data(b)))


def _loss_backward(name, node_name, slope, curvature, sample):
    def forward(g, a, b, reduction, **p):
        return _spread(g, _pair_shape(a, b), reduction) * slope(a - b, **p)

    def vjp_grad(gg, g, a, b, out, reduction, **p):
        prod = gg * slope(a - b, **p)
        if reduction == "none":
            return prod
        nd = len(_pair_shape(a, b))
        total = B.sum(prod, axis=tuple(range(-nd, 0))) if nd else prod
        return total * (1.0 / max(int(np.prod(_pair_shape(a, b))), 1)) \
            if reduction == "mean" else total

    def vjp_a(gg, g, a, b, out, reduction, **p):
        return gg * _spread(g, _pair_shape(a, b), reduction) * curvature(a - b, **p)

    prim = Primitive(name, node_name, forward, quiet=True, broadcasts=True, analytic=False,
                     input_names=("grad_output", "self", "target"),
                     doc=f"the backward of {name[:-len('_backward')]}",
                     batch=batching.per_example, sample=sample,
                     vjp=(vjp_grad, vjp_a, lambda *args, **p: -vjp_a(*args, **p)),
                     jvp=(lambda t, g, a, b, out, **p: forward(t, a, b, **p),
                          lambda t, g, a, b, out, **p: vjp_a(t, g, a, b, out, **p),
                          lambda t, g, a, b, out, **p: -vjp_a(t, g, a, b, out, **p)))
    return prim


def _backward_samples(forward, **params):
    def samples():
        out = []
        for r in ("mean", "sum", "none"):
            x, y = normal(3, 4) * 2, normal(3, 4, seed=1)
            g = np.asarray(normal(*np.shape(forward(x, y, reduction=r, **params)), seed=2))
            out.append(((g, x, y), dict(params, reduction=r)))
        return out
    return samples


def _loss_call(prim, g, a, b, params):
    if any(isinstance(v, Tensor) for v in (g, a, b)):
        return apply(prim, (g, a, b), params)
    return prim.forward(g, a, b, **params)


mse_loss_backward = _loss_backward(
    "mse_loss_backward", "MseLossBackwardBackward0",
    lambda d: d * 2.0, lambda d: B.astype_like(np.full(np.shape(B.data(d)), 2.0), d),
    _backward_samples(_mse_forward))


mse_loss = Primitive("mse_loss", "MseLossBackward0", _mse_forward, quiet=True, broadcasts=True,
                     input_names=("self", "target"), batch=batching.elementwise_loss,
                     sample=lambda: [one(normal(3, 4), normal(3, 4, seed=1), reduction=r)
                                     for r in ("mean", "sum", "none")],
                     vjp=(lambda g, x, y, out, reduction: _loss_call(
                         mse_loss_backward, g, x, y, {"reduction": reduction}),
                          lambda g, x, y, out, reduction: _loss_call(
                              mse_loss_backward, g, y, x, {"reduction": reduction})),
                     jvp=(_mse_jvp,
                          lambda t, x, y, out, reduction: -_mse_jvp(t, x, y, out, reduction)))


# ---- smooth_l1_loss / huber_loss ----------------------------------------------------------------
# smooth_l1(d) = 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (d = x - y);
# huber(d) = beta * smooth_l1(d) with beta = delta.  Slopes: d / beta (resp. d) inside,
# sign(d) (resp. delta sign(d)) outside.
def _smooth_l1_terms(x, y, beta):
    d = x - y
    a = np.abs(d)
    return np.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta)


def _huber_terms(x, y, delta):
    d = x - y
    a = np.abs(d)
    return np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))


def _slope(x, y, width, scale):
    """d loss/d x per element: d (scale / width) inside |d| < width, scale sign(d) outside
    (the sign is a constant for autograd; the inside part is differentiable again)."""
    d = x - y
    data = B.data(d)
    return B.where(np.abs(data) < width, d * (scale / width), np.sign(data) * scale)


def _robust_jvp(param, scale_of, sign):
    def rule(t, x, y, out, reduction, **params):
        width = params[param]
        return _reduce(t * _slope(x, y, width, scale_of(width)) * sign, reduction)
    return rule


def _robust_samples(param, width):
    def samples():
        x, y = normal(3, 4), normal(3, 4, seed=1)
        return [one(x, y, reduction=r, **{param: width}) for r in ("mean", "sum", "none")] + [
            one(normal(3, 4), normal(4, seed=2), reduction="mean", **{param: 1.0})]
    return samples


def _one(width):
    return 1.0


def _robust_slope(d, width, scale):
    # d scale / width inside |d| < width, scale sign(d) outside (width 0: scale sign(d))
    data = B.data(d)
    inside = np.abs(data) < width
    return B.where(inside, d * (scale / width if width else 0.0), np.sign(data) * scale)


def _robust_curvature(d, width, scale):
    data = B.data(d)
    return B.astype_like(np.where(np.abs(data) < width, scale / width if width else 0.0, 0.0),
                         d)


smooth_l1_loss_backward = _loss_backward(
    "smooth_l1_loss_backward", "SmoothL1LossBackwardBackward0",
    lambda d, beta: _robust_slope(d, beta, 1.0),
    lambda d, beta: _robust_curvature(d, beta, 1.0),
    _backward_samples(lambda x, y, reduction, beta: _reduce(_smooth_l1_terms(x, y, beta),
                                                            reduction), beta=0.5))
huber_loss_backward = _loss_backward(
    "huber_loss_backward", "HuberLossBackwardBackward0",
    lambda d, delta: _robust_slope(d, delta, delta),
    lambda d, delta: _robust_curvature(d, delta, delta),
    _backward_samples(lambda x, y, reduction, delta: _reduce(_huber_terms(x, y, delta),
                                                             reduction), delta=0.7))


def _robust_vjp(prim, param, sign):
    def rule(g, x, y, out, reduction, **params):
        a, b = (x, y) if sign > 0 else (y, x)
        return _loss_call(prim, g, a, b, {"reduction": reduction, param: params[param]})
    return rule


smooth_l1_loss = Primitive(
    "smooth_l1_loss", "SmoothL1LossBackward0",
    lambda x, y, reduction, beta: _reduce(_smooth_l1_terms(x, y, beta), reduction),
    broadcasts=True, analytic=False, input_names=("self", "target"),
    batch=batching.elementwise_loss, sample=_robust_samples("beta", 0.5),
    vjp=(_robust_vjp(smooth_l1_loss_backward, "beta", 1.0),
         _robust_vjp(smooth_l1_loss_backward, "beta", -1.0)),
    jvp=(_robust_jvp("beta", _one, 1.0), _robust_jvp("beta", _one, -1.0)))


def _delta(width):
    return width


def _same_dtype(expected, found) -> None:
    """torch's huber kernels (backward and forward-mode) refuse operands of two dtypes."""
    e, f = B.data(expected).dtype, B.data(found).dtype
    if e != f:
        raise EngineError(f"Found dtype {scalar_type_name(f)} but expected "
                          f"{scalar_type_name(e)}")


def _huber_vjp(sign):
    rule = _robust_vjp(huber_loss_backward, "delta", sign)

    def checked(g, x, y, out, reduction, delta):
        # huber_loss_backward(grad, self, target) for self, (grad, target, self) for target
        _same_dtype(*((x, y) if sign > 0 else (y, x)))
        return rule(g, x, y, out=out, reduction=reduction, delta=delta)
    return checked


def _huber_jvp(sign):
    rule = _robust_jvp("delta", _delta, sign)

    def checked(t, x, y, out, reduction, delta):
        _same_dtype(y, x)
        return rule(t, x, y, out=out, reduction=reduction, delta=delta)
    return checked


huber_loss = Primitive(
    "huber_loss", "HuberLossBackward0",
    # in the input's dtype, whatever the target's (torch)
    lambda x, y, reduction, delta: np.asarray(
        _reduce(_huber_terms(x, y, delta), reduction)).astype(x.dtype, copy=False),
    broadcasts=True, promotes=False, analytic=False, input_names=("self", "target"),
    batch=batching.elementwise_loss, sample=_robust_samples("delta", 0.7),
    vjp=(_huber_vjp(1.0), _huber_vjp(-1.0)),
    jvp=(_huber_jvp(1.0), _huber_jvp(-1.0)))


# ---- binary_cross_entropy ------------------------------------------------------------------------
# loss = -w (y log p + (1 - y) log(1 - p)), each log clamped at -100 (torch);
# d/dp = w (p - y) / max(p (1 - p), 1e-12),  d/dy = w (log(1 - p) - log p)  (torch's rules)
_BCE_EPSILON = 1e-12


def _bce_prob_forward(p, y, reduction, weight):
    loss = -(y * np.maximum(np.log(p), -100.0) + (1 - y) * np.maximum(np.log1p(-p), -100.0))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _bce_prob_slopes(p, y, weight, which):
    if which == 0:
        d = (p - y) / B.maximum((1 - p) * p, _BCE_EPSILON)
    else:
        d = B.log(1 - p) - B.log(p)
    return d if weight is None else d * weight


def _bce_prob_rule(which):
    def rule(g, p, y, out, reduction, weight):
        d = _bce_prob_slopes(p, y, weight, which)
        if reduction == "none":
            return g * d
        g = _scalar_grad(g, len(np.shape(B.data(p))))
        if reduction == "mean":
            g = g * (1.0 / max(int(np.prod(np.shape(B.data(p)))), 1))
        return g * d
    return rule


def _bce_prob_jvp(which):
    def rule(t, p, y, out, reduction, weight):
        return _reduce(t * _bce_prob_slopes(p, y, weight, which), reduction)
    return rule


# The input's gradient is a node of its own under create_graph (torch's
# binary_cross_entropy_backward(grad, self, target, weight): BinaryCrossEntropyBackwardBackward0)
# With s(p, y) = w (p - y) / q, q = p (1 - p) (where q > eps; (p - y) / eps elsewhere):
#     ds/dp = w (q - (p - y)(1 - 2p)) / q^2  (w / eps where clamped),  ds/dy = -w / max(q, eps)
def _bce_curvature(p, y, weight, which):
    q = (1 - p) * p
    clamped = B.data(q) <= _BCE_EPSILON
    if which == 0:
        safe = B.where(clamped, 1.0, q)
        d = B.where(clamped, 1.0 / _BCE_EPSILON, (q - (p - y) * (1 - 2 * p)) / (safe * safe))
    else:
        d = -1.0 / B.maximum(q, _BCE_EPSILON)
    return d if weight is None else d * weight


def _bce_backward_vjp_grad(gg, g, p, y, out, reduction, weight):
    prod = gg * _bce_prob_slopes(p, y, weight, 0)
    if reduction == "none":
        return prod
    shape = _pair_shape(p, y)
    nd = len(shape)
    total = B.sum(prod, axis=tuple(range(-nd, 0))) if nd else prod
    return total * (1.0 / max(int(np.prod(shape)), 1)) if reduction == "mean" else total


def _bce_backward_rule(which):
    def rule(gg, g, p, y, out, reduction, weight):
        return gg * _spread(g, _pair_shape(p, y), reduction) * _bce_curvature(p, y, weight,
                                                                              which)
    return rule


def _bce_backward_samples():
    out = []
    for r in ("mean", "sum", "none"):
        p, y = positive(3, 4) / 2.1, positive(3, 4, seed=1) / 2.1
        g = np.asarray(normal(*np.shape(_bce_prob_forward(p, y, r, None)), seed=2))
        out.append(((g, p, y), {"reduction": r, "weight": None}))
    out.append(((np.asarray(1.5), p, y), {"reduction": "mean", "weight": positive(4, seed=3)}))
    return out


binary_cross_entropy_backward = Primitive(
    "binary_cross_entropy_backward", "BinaryCrossEntropyBackwardBackward0",
    lambda g, p, y, reduction, weight: _bce_prob_rule(0)(g, p, y, None, reduction, weight),
    quiet=True, broadcasts=True, analytic=False,
    input_names=("grad_output", "self", "target"), doc="the backward of binary_cross_entropy",
    batch=batching.per_example, sample=_bce_backward_samples,
    vjp=(_bce_backward_vjp_grad, _bce_backward_rule(0), _bce_backward_rule(1)),
    jvp=(lambda t, g, p, y, out, reduction, weight: _bce_prob_rule(0)(t, p, y, None, reduction,
                                                                     weight),
         lambda t, g, p, y, out, **k: _bce_backward_rule(0)(t, g, p, y, out, **k),
         lambda t, g, p, y, out, **k: _bce_backward_rule(1)(t, g, p, y, out, **k)))


binary_cross_entropy = Primitive(
    "binary_cross_entropy", "BinaryCrossEntropyBackward0", _bce_prob_forward, quiet=True,
    broadcasts=True, analytic=False, input_names=("self", "target"),
    batch=batching.elementwise_loss,
    sample=lambda: [one(positive(3, 4) / 2.1, positive(3, 4, seed=1) / 2.1, reduction=r,
                        weight=None) for r in ("mean", "sum", "none")] + [
        one(positive(3, 4) / 2.1, positive(3, 4, seed=1) / 2.1, reduction="mean",
            weight=positive(4, seed=2))],
    vjp=(lambda g, p, y, out, **k: _loss_call(binary_cross_entropy_backward, g, p, y, k),
         _bce_prob_rule(1)),
    jvp=(_bce_prob_jvp(0), _bce_prob_jvp(1)))


# ---- binary_cross_entropy_with_logits ----------------------------------------------------
# loss = (1 - y) x + l softplus(-x),  l = 1 + (pos_weight - 1) y,  times weight
def _softplus_neg(x):
    if np.iscomplexobj(x):     # the analytic continuation, for the complex-step method
        return np.log1p(np.exp(-x))
    return np.logaddexp(0.0, -x)


def _log_weight(y, pos_weight):
    return 1.0 if pos_weight is None else 1 + (np.asarray(pos_weight) - 1) * y


def _bce_forward(x, y, reduction, weight, pos_weight):
    loss = (1 - y) * x + _log_weight(y, pos_weight) * _softplus_neg(x)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _bce_grads(x, y, weight, pos_weight):
    """Elementwise d loss/dx and d loss/dy (rules written with backend ops)."""
    lw = _log_weight(y, pos_weight)
    dx = (1 - y) - lw * (1 - B.sigmoid(x))       # = sigmoid(x) - y without pos_weight
    dy = -x
    if pos_weight is not None:
        dy = dy + (np.asarray(pos_weight) - 1) * B.log1p(B.exp(-x))
    if weight is not None:
        dx = dx * weight
        dy = dy * weight
    return dx, dy


def _bce_rule(which):
    def rule(g, x, y, out, reduction, weight, pos_weight):
        d = _bce_grads(x, y, weight, pos_weight)[which]
        if reduction == "none":
            return g * d
        shape = np.broadcast_shapes(np.shape(B.data(x)), np.shape(B.data(y)))
        g = _scalar_grad(g, len(shape))
        if reduction == "mean":
            g = g * (1.0 / max(int(np.prod(shape)), 1))
        return g * d
    return rule


def _bce_jvp(which):
    def rule(t, x, y, out, reduction, weight, pos_weight):
        return _reduce(t * _bce_grads(x, y, weight, pos_weight)[which], reduction)
    return rule


bce_with_logits = Primitive("binary_cross_entropy_with_logits",
                            "BinaryCrossEntropyWithLogitsBackward0", _bce_forward,
                            quiet=True, broadcasts=True, input_names=("self", "target"),
                            batch=batching.elementwise_loss,
                            sample=lambda: [
   one(normal(3, 4), positive(3, 4) / 2.1, reduction=r, weight=None, pos_weight=None)
   for r in ("mean", "sum", "none")] + [
   one(normal(3, 4), positive(3, 4) / 2.1, reduction="mean", weight=positive(4),
       pos_weight=positive(4, seed=2))],
                            vjp=(_bce_rule(0), _bce_rule(1)),
                            jvp=(_bce_jvp(0), _bce_jvp(1)))


# ---- soft_margin_loss ---------------------------------------------------------------------------
# loss = log(1 + exp(-y x)) (computed as logaddexp(0, -y x), no overflow);
# d loss/d x = -y sigmoid(-y x).  torch's node has no edge to the target (its derivative is
# not implemented there), so neither has this one.  The rule is written in backend ops, so
# under create_graph it is recorded and differentiable again.
def _soft_margin_forward(x, y, reduction):
    # in the input's dtype, as torch (a float64 target does not promote a float32 input)
    return _reduce(np.logaddexp(0.0, -y * x).astype(x.dtype, copy=False), reduction)


def _soft_margin_slope(x, y):
    return -y * B.sigmoid(-y * x)


def _soft_margin_vjp(g, x, y, out, reduction):
    return _spread(g, _pair_shape(x, y), reduction) * _soft_margin_slope(x, y)


def _soft_margin_jvp(t, x, y, out, reduction):
    return _reduce(t * _soft_margin_slope(x, y), reduction)


soft_margin_loss = Primitive(
    "soft_margin_loss", "SoftMarginLossBackward0", _soft_margin_forward, quiet=True,
    broadcasts=True, promotes=False, analytic=False, input_names=("self", "target"),
    batch=batching.elementwise_loss,
    sample=lambda: [one(normal(3, 4), np.sign(normal(3, 4, seed=1)), reduction=r)
                    for r in ("mean", "sum", "none")],
    vjp=(_soft_margin_vjp, None), jvp=(_soft_margin_jvp, None))
