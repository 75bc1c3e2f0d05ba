"""Walk the whole op table: every primitive in REGISTRY is checked, on each of its samples,
against central finite differences in float64:

* reverse mode (the backward's Jacobian), second order (gradients of a projection of the
  create_graph gradient), forward mode (JVPs via forward_ad);
* vᵀ(Ju) == (vᵀJ)u between forward and reverse mode;
* batched VJPs (is_grads_batched, plain and under create_graph) equal stacked single VJPs;
* analytic primitives run on complex inputs and their complex-step derivative is right;
* out_shape predicts the output shape; the backward node carries the primitive's name.

A primitive without sample inputs fails here, so an op cannot land without correct rules.
Samples come from ``prim.sample`` when the primitive defines one, else from SAMPLES below.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradtool as gt
from gradtool.engine.primitive import REGISTRY, Variadic, apply
from gradtool.engine.prims import shape as S
from gradtool.engine.tensor import Tensor

try:  # the nn primitives register when gt.nn is imported
    import gradtool.nn  # noqa: F401
except ImportError:  # pragma: no cover - gt.nn is being written in parallel
    pass

STEP = 1e-6
RTOL = 1e-5
ATOL = 1e-6


# ---- sample inputs ------------------------------------------------------------------------------
def _rng(seed=0):
    return np.random.default_rng(seed)


def normal(*shape, seed=0):
    return _rng(seed).standard_normal(shape)


def positive(*shape, seed=0):
    return _rng(seed).uniform(0.5, 2.0, shape)


def unit(*shape, seed=0):
    return _rng(seed).uniform(-0.8, 0.8, shape)


def away(*shape, seed=0):
    """Values at least 0.2 away from 0 (kinks of abs, relu, sign)."""
    r = _rng(seed)
    return r.choice([-1.0, 1.0], shape) * r.uniform(0.2, 1.5, shape)


def distinct(*shape, seed=0):
    """Well-separated values (no ties for max/min/sort-like ops)."""
    n = int(np.prod(shape))
    values = (np.arange(n) - n / 2) * 0.37 + 0.05
    return _rng(seed).permutation(values).reshape(shape)


def shifted(*shape, seed=0):
    """distinct(...) moved by 0.1: never equal to distinct(...) of the same shape."""
    return distinct(*shape, seed=seed) + 0.1


def matrix(n=3, seed=0, batch=()):
    """Well-conditioned square matrices."""
    return normal(*batch, n, n, seed=seed) * 0.5 + 2 * np.eye(n)


def mask(*shape, seed=0):
    m = _rng(seed).random(shape) > 0.5
    m.flat[0], m.flat[-1] = True, False
    return m


def one(*args, **params):
    return (args, params)


def unary(fn=normal, shape=(2, 3), **params):
    return lambda: [one(fn(*shape), **params), one(fn(4), **params)]


def binary(fn=normal, gn=normal):
    return lambda: [one(fn(2, 3), gn(2, 3, seed=1)), one(fn(3, 1), gn(4, seed=1)),
                    one(fn(2, 3), 1.5)]


def _index_sample(x, key):
    return one(x, key=key, out_ndim=np.empty(x.shape)[key].ndim)


SAMPLES = {
    # elementwise
    "add": lambda: binary()() + [one(normal(2, 3), normal(3, seed=1), alpha=2.5)],
    "sub": lambda: binary()() + [one(normal(2, 3), normal(3, seed=1), alpha=-0.5)],
    "rsub": binary(),
    "mul": binary(),
    "div": binary(normal, away),
    "pow": lambda: [one(positive(2, 3), normal(2, 3, seed=1)), one(positive(3, 1), normal(4))],
    "pow_scalar": lambda: [one(positive(2, 3), exponent=2.5), one(normal(4), exponent=3),
                           one(positive(3), exponent=-1.5), one(normal(2), exponent=0)],
    "rpow": lambda: [one(normal(2, 3), base=2.0), one(normal(4), base=0.5)],
    "neg": unary(), "exp": unary(), "log": unary(positive), "log2": unary(positive),
    "log10": unary(positive),
    "remainder": lambda: [one(np.array([-2.3, -0.4, 0.7, 1.9]), np.array([0.9, 0.9, -0.6, 0.8])),
                          one(np.array([[3.1], [-1.3]]), np.array(0.7))],
    "remainder_scalar": lambda: [one(np.array([-2.3, -0.4, 0.7, 1.9]), other=0.9)],
    "clamp_min_tensor": binary(distinct, shifted),
    "clamp_max_tensor": binary(distinct, shifted),
    "log1p": unary(positive),
    "expm1": unary(), "sqrt": unary(positive), "rsqrt": unary(positive), "sin": unary(),
    "cos": unary(), "tan": unary(unit), "tanh": unary(), "sinh": unary(), "cosh": unary(),
    "arcsin": unary(unit), "arccos": unary(unit), "arctan": unary(),
    "arctan2": binary(normal, away), "sigmoid": unary(), "reciprocal": unary(away),
    "abs": unary(away), "sign": unary(away), "relu": unary(away),
    "softplus": lambda: [one(normal(2, 3) * 3, beta=1.0, threshold=20.0),
                         one(np.array([-2.0, 0.5, 3.0, 12.0]), beta=2.0, threshold=10.0)],
    "clamp": lambda: [one(np.array([-1.2, -0.3, 0.1, 0.8, 1.7]), min=-0.5, max=0.5),
                      one(np.array([-1.2, 0.3]), min=None, max=0.0)],
    "clamp_min": lambda: [one(np.array([-1.2, -0.3, 0.1, 0.8]), min=0.0, max=None)],
    "clamp_max": lambda: [one(np.array([-1.2, -0.3, 0.1, 0.8]), min=None, max=0.0)],
    "clamp_tensor": lambda: [
        one(np.array([-1.0, 0.0, 1.0, 2.0]), np.array([-0.5, 0.5, 0.7, -3.0]),
            np.array([0.5, 1.5, 0.9, 1.0])),
        one(np.array([[-1.0, 0.3], [2.0, 0.1]]), np.array([0.0, 0.2]), None),
        one(np.array([-1.0, 0.3, 2.0]), None, np.array(0.5))],
    "maximum": binary(distinct, shifted),
    "minimum": binary(distinct, shifted),
    "where": lambda: [one(mask(2, 3), normal(2, 3), normal(2, 3, seed=1)),
                      one(mask(3, 1), normal(4), 0.5)],
    "masked_fill": lambda: [one(normal(2, 3), mask(2, 3), value=0.5),
                            one(normal(2, 3), mask(3), value=-1.0)],
    "masked_fill_tensor": lambda: [one(normal(2, 3), mask(2, 3), np.array(0.7))],
    # reductions
    "sum": unary(shape=(2, 3)),
    "sum_dim": lambda: [one(normal(2, 3, 2), dim=(0, 2), keepdim=False),
                        one(normal(2, 3), dim=(1,), keepdim=True)],
    "mean": unary(shape=(2, 3)),
    "mean_dim": lambda: [one(normal(2, 3, 2), dim=(1,), keepdim=False),
                         one(normal(2, 3), dim=(0, 1), keepdim=True)],
    "max": unary(distinct), "min": unary(distinct),
    "max_dim": lambda: [one(distinct(3, 4), dim=1, keepdim=False),
                        one(distinct(3, 4), dim=0, keepdim=True)],
    "min_dim": lambda: [one(distinct(3, 4), dim=1, keepdim=False),
                        one(distinct(3, 4), dim=0, keepdim=True)],
    "amax": lambda: [one(distinct(3, 4), dim=(1,), keepdim=False),
                     one(distinct(2, 3, 2), dim=(0, 2), keepdim=True)],
    "amin": lambda: [one(distinct(3, 4), dim=(0, 1), keepdim=False)],
    "prod": unary(away),
    "prod_dim": lambda: [one(away(3, 4), dim=1, keepdim=False),
                         one(away(3, 4), dim=0, keepdim=True)],
    "var": lambda: [one(normal(3, 4), dim=(0, 1), correction=1, keepdim=False),
                    one(normal(3, 4), dim=(1,), correction=0, keepdim=True)],
    "std": lambda: [one(normal(3, 4), dim=(0, 1), correction=1, keepdim=False),
                    one(normal(3, 4), dim=(0,), correction=1, keepdim=True)],
    "vector_norm": lambda: [one(away(3, 4), ord=2.0, dim=(0, 1), keepdim=False),
                            one(away(3, 4), ord=1.0, dim=(1,), keepdim=True),
                            one(away(3, 4), ord=3.0, dim=(0,), keepdim=False),
                            one(distinct(3, 4), ord=np.inf, dim=(1,), keepdim=False),
                            one(distinct(3, 4), ord=-np.inf, dim=(0, 1), keepdim=False)],
    "logsumexp": lambda: [one(normal(3, 4), dim=(1,), keepdim=False),
                          one(normal(2, 3, 2) * 30, dim=(0, 2), keepdim=True)],
    "softmax": lambda: [one(normal(3, 4), dim=1), one(normal(3, 4) * 20, dim=0)],
    "log_softmax": lambda: [one(normal(3, 4), dim=1), one(normal(3, 4) * 20, dim=0)],
    "cumsum": lambda: [one(normal(3, 4), dim=1), one(normal(3, 4), dim=0)],
    # losses
    "nll_loss": lambda: [
        one(normal(3, 4), np.array([0, 3, 1]), reduction=r, weight=None, ignore_index=-100)
        for r in ("mean", "sum", "none")] + [
        one(normal(3, 4), np.array([0, 3, 1]), reduction="mean",
            weight=np.array([0.5, 1.0, 2.0, 1.5]), ignore_index=3),
        one(normal(4), np.array(2), reduction="mean", weight=None, ignore_index=-100),
        one(normal(2, 3, 2), np.array([[0, 2], [1, 1]]), reduction="none", weight=None,
            ignore_index=-100)],
    "mse_loss": lambda: [one(normal(3, 4), normal(3, 4, seed=1), reduction=r)
                         for r in ("mean", "sum", "none")],
    "binary_cross_entropy_with_logits": lambda: [
        one(normal(3, 4), positive(3, 4) / 2.1, reduction=r, weight=None, pos_weight=None)
        for r in ("mean", "sum", "none")] + [
        one(normal(3, 4), positive(3, 4) / 2.1, reduction="mean", weight=positive(4),
            pos_weight=positive(4, seed=2))],
    # linear algebra
    "mm": lambda: [one(normal(2, 3), normal(3, 4, seed=1))],
    "bmm": lambda: [one(normal(2, 2, 3), normal(2, 3, 4, seed=1))],
    "dot": lambda: [one(normal(4), normal(4, seed=1))],
    "mv": lambda: [one(normal(2, 3), normal(3, seed=1))],
    "inv": lambda: [one(matrix(3)), one(matrix(2, batch=(2,)))],
    "det": lambda: [one(matrix(3)), one(matrix(2, batch=(2,)))],
    "solve": lambda: [one(matrix(3), normal(3, 2, seed=1), vector=False),
                      one(matrix(3), normal(3, seed=1), vector=True),
                      one(matrix(2, batch=(2,)), normal(2, 3, seed=1), vector=False)],
    "trace": lambda: [one(normal(3, 3)), one(normal(2, 4))],
    # shapes
    "reshape": lambda: [one(normal(2, 3), shape=(3, 2)), one(normal(2, 3), shape=(6,))],
    "reshape_alias": lambda: [one(normal(2, 3), shape=(6, 1))],
    "unsafe_view": lambda: [one(normal(2, 3), shape=(3, 2))],
    "alias": unary(),
    "squeeze": lambda: [one(normal(2, 1, 3, 1))],
    "squeeze_dim": lambda: [one(normal(2, 1, 3), dim=1), one(normal(2, 3), dim=0)],
    "squeeze_dims": lambda: [one(normal(1, 2, 1), dims=(0, 2)), one(normal(1, 2), dims=(1,))],
    "matmul_squeeze": lambda: [one(normal(1, 3), dims=(0,))],
    "unsqueeze": lambda: [one(normal(2, 3), dim=1), one(normal(2, 3), dim=2)],
    "transpose": lambda: [one(normal(2, 3, 4), dim0=0, dim1=2)],
    "t": lambda: [one(normal(2, 3)), one(normal(3))],
    "permute": lambda: [one(normal(2, 3, 4), dims=(2, 0, 1))],
    "expand": lambda: [one(normal(3, 1), shape=(2, 3, 4)), one(normal(3), shape=(3,))],
    "clone": unary(),
    "to_dtype": lambda: [one(normal(2, 3), dtype=np.dtype(np.float64))],
    "select": lambda: [_index_sample(normal(3, 4), (slice(None), 2)),
                       _index_sample(normal(3, 4), (1,))],
    "slice": lambda: [_index_sample(normal(5, 4), (slice(1, 4, 2),)),
                      _index_sample(normal(3, 4), (slice(None), slice(0, 2)))],
    "index": lambda: [_index_sample(normal(3, 4), (np.array([0, 2, 0, 0]),)),
                      _index_sample(normal(3, 4), (mask(3, 4),)),
                      _index_sample(normal(3, 4), (slice(None), np.array([[1, 1], [3, 0]]))),
                      _index_sample(normal(3, 4), (np.array([0, 2]), np.array([1, 1])))],
    "select_backward": lambda: [one(normal(2, 4), key=(slice(None), 1), shape=(2, 3, 4),
                                    out_ndim=2)],
    "slice_backward": lambda: [one(normal(2, 4), key=(slice(1, 5, 2),), shape=(5, 4),
                                   out_ndim=2)],
    "index_select_backward": lambda: [one(normal(3, 3), key=(slice(None), np.array([0, 2, 2])),
                                          shape=(3, 4), out_ndim=2)],
    "index_backward": lambda: [
        one(normal(4, 4), key=(np.array([0, 2, 0, 0]),), shape=(3, 4), out_ndim=2),
        one(normal(2), key=(slice(None), 1), shape=(2, 3), out_ndim=1)],
    "index_put": lambda: [one(normal(3, 4), normal(4, seed=1), key=(1,)),
                          one(normal(3, 4), normal(2, 1, seed=1),
                              key=(slice(0, 2), slice(1, 3)))],
    "cat": lambda: [one(normal(2, 3), normal(1, 3, seed=1), normal(2, 3, seed=2), dim=0),
                    one(normal(2, 3), normal(2, 1, seed=1), dim=1)],
    "stack": lambda: [one(normal(2, 3), normal(2, 3, seed=1), dim=0),
                      one(normal(2, 3), normal(2, 3, seed=1), normal(2, 3, seed=2), dim=2)],
    "split": lambda: [one(normal(5, 3), dim=0, sections=(2, 2, 1))],
    "split_with_sizes": lambda: [one(normal(2, 5), dim=1, sections=(1, 4))],
    "unbind": lambda: [one(normal(3, 2), dim=0, sections=(1, 1, 1)),
                       one(normal(3, 2), dim=1, sections=(1, 1))],
    "gather": lambda: [one(normal(3, 4), np.array([[0, 0], [3, 1], [2, 2]]), dim=1),
                       one(normal(3, 4), np.array([[2, 1, 0, 2]]), dim=0)],
    "scatter_add": lambda: [one(normal(3, 4), np.array([[0, 0], [3, 1], [2, 2]]),
                                normal(3, 2, seed=1), dim=1),
                            one(normal(3, 4), np.array([[2, 1, 0, 2]]), normal(2, 4, seed=1),
                                dim=0)],
    "index_select": lambda: [one(normal(3, 4), np.array([0, 2, 2]), dim=1),
                             one(normal(3, 4), np.array([1]), dim=0)],
    "constant_pad": lambda: [one(normal(2, 3), pad=(1, 2), value=0.0),
                             one(normal(2, 3), pad=(0, 1, 2, 0), value=1.5)],
    "flip": lambda: [one(normal(2, 3), dims=(0,)), one(normal(2, 3, 2), dims=(0, 2))],
    "repeat": lambda: [one(normal(2, 3), repeats=(2, 1)), one(normal(3), repeats=(2, 2))],
    "diagonal": lambda: [one(normal(3, 3), offset=0, dim1=0, dim2=1),
                         one(normal(2, 3, 4), offset=1, dim1=2, dim2=1)],
    "diagonal_backward": lambda: [one(normal(3), shape=(3, 3), offset=0, dim1=0, dim2=1),
                                  one(normal(2, 3), shape=(2, 3, 4), offset=-1, dim1=2,
                                      dim2=1)],
    # not differentiable: only the forward and the absence of a graph are checked
    **{name: lambda: [one(distinct(2, 3), distinct(2, 3, seed=1)), one(distinct(3), 0.1)]
       for name in ("eq", "ne", "lt", "le", "gt", "ge")},
    "logical_and": lambda: [one(mask(2, 3), mask(2, 3, seed=1))],
    "logical_or": lambda: [one(mask(2, 3), mask(2, 3, seed=1))],
    "logical_not": lambda: [one(mask(2, 3))],
}


def samples_of(prim):
    if prim.sample is not None:
        return list(prim.sample())
    if prim.name in SAMPLES:
        return SAMPLES[prim.name]()
    raise AssertionError(f"primitive '{prim.name}' ({prim.node_name}) has no sample inputs: "
                         "give it a `sample` callable or add it to SAMPLES in this file")


def _cases():
    for name in sorted(REGISTRY):
        yield pytest.param(name, id=name)


# ---- calling a primitive -------------------------------------------------------------------------
def _differentiable(prim, args):
    """Indices of the sample arguments that are differentiable inputs (float arrays with a
    VJP rule)."""
    out = []
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f" and prim.differentiable:
            rule = prim.vjps[i] if isinstance(prim.vjps, Variadic) or i < len(prim.vjps) \
                else None
            if rule is not None:
                out.append(i)
    return out


def _call(prim, args, params):
    """Outputs of the primitive as a list of Tensors (multi-output primitives give several)."""
    if hasattr(prim, "pieces"):
        return list(S.apply_multi(prim, args[0], params))
    return [apply(prim, tuple(args), params)]


class Case:
    """One primitive with one sample: f(*inputs) -> list of arrays, and autograd on it."""

    def __init__(self, prim, args, params):
        self.prim = prim
        self.args = list(args)
        self.params = params
        self.diff = _differentiable(prim, args)
        self.inputs = [np.array(args[i], dtype=np.float64) for i in self.diff]

    def tensors(self, values, requires_grad=True):
        args = list(self.args)
        leaves = []
        for i, v in zip(self.diff, values):
            t = gt.tensor(v)
            if requires_grad:
                t.requires_grad_(True)
            args[i] = t
            leaves.append(t)
        return args, leaves

    def f(self, values):
        args, _ = self.tensors(values, requires_grad=False)
        with gt.no_grad():
            return [o.numpy() for o in _call(self.prim, args, self.params)]

    def outputs(self, values=None, requires_grad=True):
        args, leaves = self.tensors(self.inputs if values is None else values, requires_grad)
        return _call(self.prim, args, self.params), leaves


def _cotangents(outs, seed):
    rng = _rng(seed)
    return [rng.standard_normal(o.shape) for o in outs]


def _fd_gradient(phi, inputs):
    """Central differences of the scalar function phi(list of arrays) w.r.t. every input."""
    grads = []
    for k, x in enumerate(inputs):
        g = np.zeros_like(x)
        for j in range(x.size):
            plus = [v.copy() for v in inputs]
            minus = [v.copy() for v in inputs]
            plus[k].flat[j] += STEP
            minus[k].flat[j] -= STEP
            g.flat[j] = (phi(plus) - phi(minus)) / (2 * STEP)
        grads.append(g)
    return grads


def _close(actual, expected, what):
    scale = max(1.0, float(np.max(np.abs(expected))) if np.size(expected) else 1.0)
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL * scale, err_msg=what)


def _vjp(case, values, cotangents, create_graph=False):
    outs, leaves = case.outputs(values)
    grads = gt.autograd.grad(outs, leaves, [gt.tensor(v) for v in cotangents],
                             create_graph=create_graph, allow_unused=True)
    return [np.zeros_like(x) if g is None else g for g, x in zip(grads, values)], leaves


def _numpy(g):
    return g.detach().numpy() if isinstance(g, Tensor) else g


# ---- the checks ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(_cases()))
def test_op_table_entry(name):
    prim = REGISTRY[name]
    cases = samples_of(prim)
    assert cases, f"primitive '{name}' has an empty sample list"
    assert prim.vjps is not None and prim.jvps is not None
    for args, params in cases:
        case = Case(prim, args, params)
        if not prim.differentiable:
            outs, _ = case.outputs()
            for o in outs:
                assert o.grad_fn is None and not o.requires_grad
            continue
        assert case.diff, f"{name}: sample has no differentiable input"
        check_out_shape(case)
        check_reverse(case)
        check_second_order(case)
        check_forward(case)
        check_adjoint(case)
        check_batched(case)
        if prim.analytic:
            check_complex_step(case)


def check_out_shape(case):
    """``out_shape`` (used to refuse oversized outputs before allocating) predicts the
    output's shape."""
    if case.prim.out_shape is None:
        return
    outs, _ = case.outputs()
    shapes = [np.shape(a) for a in case.args]
    predicted = case.prim.out_shape(*shapes, **case.params)
    assert tuple(predicted) == tuple(outs[0].shape), f"{case.prim.name}: out_shape"


def check_reverse(case):
    outs, _ = case.outputs()
    for o in outs:
        assert o.grad_fn is not None and o.grad_fn.name() == case.prim.node_name
        assert o.dtype == gt.float64
    v = _cotangents(outs, 1)
    analytic, _ = _vjp(case, case.inputs, v)

    def phi(values):
        return sum(float(np.sum(vk * fk)) for vk, fk in zip(v, case.f(values)))

    numeric = _fd_gradient(phi, case.inputs)
    for i, (a, n) in enumerate(zip(analytic, numeric)):
        _close(_numpy(a), n, f"{case.prim.name}: reverse-mode gradient of input {i}")


def check_second_order(case):
    outs, _ = case.outputs()
    v = _cotangents(outs, 1)
    w = [_rng(2).standard_normal(x.shape) for x in case.inputs]
    grads, leaves = _vjp(case, case.inputs, v, create_graph=True)
    projection = sum((g * gt.tensor(wi)).sum() for g, wi in zip(grads, w)
                     if isinstance(g, Tensor))
    if isinstance(projection, Tensor) and projection.requires_grad:
        second = gt.autograd.grad(projection, leaves, allow_unused=True,
                                  materialize_grads=True)
        analytic = [_numpy(g) for g in second]
    else:   # the gradient does not depend on the inputs
        analytic = [np.zeros_like(x) for x in case.inputs]

    def psi(values):
        first, _ = _vjp(case, values, v)
        return sum(float(np.sum(_numpy(g) * wi)) for g, wi in zip(first, w))

    numeric = _fd_gradient(psi, case.inputs)
    for i, (a, n) in enumerate(zip(analytic, numeric)):
        _close(a, n, f"{case.prim.name}: second-order gradient of input {i}")


def check_forward(case):
    u = [_rng(3).standard_normal(x.shape) for x in case.inputs]
    args = list(case.args)
    with gt.autograd.forward_ad.dual_level():
        for i, x, ui in zip(case.diff, case.inputs, u):
            args[i] = gt.autograd.forward_ad.make_dual(gt.tensor(x), gt.tensor(ui))
        outs = _call(case.prim, args, case.params)
        tangents = [gt.autograd.forward_ad.unpack_dual(o).tangent for o in outs]
    plus = case.f([x + STEP * ui for x, ui in zip(case.inputs, u)])
    minus = case.f([x - STEP * ui for x, ui in zip(case.inputs, u)])
    for k, (t, p, m) in enumerate(zip(tangents, plus, minus)):
        expected = (p - m) / (2 * STEP)
        actual = np.zeros_like(expected) if t is None else t.numpy()
        assert actual.shape == expected.shape, f"{case.prim.name}: tangent shape"
        _close(actual, expected, f"{case.prim.name}: forward-mode tangent of output {k}")


def check_adjoint(case):
    """vᵀ(J u) from forward mode equals (vᵀJ) u from reverse mode (no step-size noise)."""
    outs, _ = case.outputs()
    v = _cotangents(outs, 7)
    u = [_rng(8).standard_normal(x.shape) for x in case.inputs]
    reverse, _ = _vjp(case, case.inputs, v)
    args = list(case.args)
    with gt.autograd.forward_ad.dual_level():
        for i, x, ui in zip(case.diff, case.inputs, u):
            args[i] = gt.autograd.forward_ad.make_dual(gt.tensor(x), gt.tensor(ui))
        tangents = [gt.autograd.forward_ad.unpack_dual(o).tangent
                    for o in _call(case.prim, args, case.params)]
    forward = sum(float(np.sum(vk * t.numpy())) for vk, t in zip(v, tangents) if t is not None)
    backward = sum(float(np.sum(_numpy(g) * ui)) for g, ui in zip(reverse, u))
    assert forward == pytest.approx(backward, rel=1e-10, abs=1e-12), \
        f"{case.prim.name}: vᵀ(Ju) != (vᵀJ)u"


def check_batched(case):
    """One backward pass with a batch of cotangents equals the stacked single VJPs, plain
    and under create_graph (where the rules run on Tensors with the batch axis)."""
    outs, _ = case.outputs()
    batch = [_cotangents(outs, seed) for seed in (4, 5, 6)]
    singles = [_vjp(case, case.inputs, v)[0] for v in batch]
    for create_graph in (False, True):
        stacked = [gt.tensor(np.stack([v[k] for v in batch])) for k in range(len(outs))]
        outs, leaves = case.outputs()
        grads = gt.autograd.grad(outs, leaves, stacked, is_grads_batched=True,
                                 allow_unused=True, create_graph=create_graph)
        for i, g in enumerate(grads):
            expected = np.stack([_numpy(s[i]) for s in singles])
            actual = np.zeros_like(expected) if g is None else _numpy(g)
            assert actual.shape == expected.shape, f"{case.prim.name}: batched VJP shape"
            np.testing.assert_allclose(
                actual, expected, rtol=1e-10, atol=1e-12,
                err_msg=f"{case.prim.name}: batched VJP of input {i} "
                        f"(create_graph={create_graph})")


def check_complex_step(case):
    """Analytic primitives run on complex inputs, and Im f(x + ih u) / h is the JVP."""
    h = 1e-20
    u = [_rng(3).standard_normal(x.shape) for x in case.inputs]
    args = list(case.args)
    for i, x, ui in zip(case.diff, case.inputs, u):
        args[i] = gt.tensor(x + 1j * h * ui)
    with gt.no_grad():
        outs = [o.numpy() for o in _call(case.prim, args, case.params)]
    plus = case.f([x + STEP * ui for x, ui in zip(case.inputs, u)])
    minus = case.f([x - STEP * ui for x, ui in zip(case.inputs, u)])
    for k, (o, p, m) in enumerate(zip(outs, plus, minus)):
        _close(np.imag(o) / h, (p - m) / (2 * STEP),
               f"{case.prim.name}: complex-step derivative of output {k}")


def test_every_entry_has_rules():
    for name, prim in REGISTRY.items():
        if not prim.differentiable:
            continue
        assert prim.vjps, f"{name} has no VJP rules"
        assert prim.jvps, f"{name} has no JVP rules"


def test_element_cap_is_checked_before_allocating():
    from gradtool.engine.grad_mode import MODE
    from gradtool.engine.limits import element_limit
    from gradtool.errors import LimitError

    x = gt.ones(1000)
    with element_limit(10_000):
        for make in (lambda: x[gt.zeros(100, 1000, dtype=gt.int64)],
                     lambda: x.index_select(0, gt.zeros(20_000, dtype=gt.int64)),
                     lambda: x.repeat(11), lambda: gt.outer(x, x),
                     lambda: x.reshape(1000, 1) @ x.reshape(1, 1000),
                     lambda: gt.einsum("i,j->ij", x, x), lambda: x.expand(11, 1000),
                     lambda: gt.pad(x, (0, 9001)), lambda: gt.cat([x] * 11)):
            with pytest.raises(LimitError):
                make()
    assert not MODE.limited
