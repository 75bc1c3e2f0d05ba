"""The nn primitives, walked from their samples: VJP and JVP against finite differences,
batched VJPs against one-at-a-time ones, and second order (VJP of the VJP)."""

import numpy as np
import pytest

import gradtool as gt
from gradtool.engine.forward_ad import dual_level, make_dual, unpack_dual
from gradtool.engine.prims import nn as P
from gradtool.engine.primitive import REGISTRY, apply

from .fd import numerical_vjp

PRIMS = [P.addmm, P.convolution, P.conv_input_backward, P.conv_weight_backward, P.max_pool2d,
         P.pool_scatter, P.pool_gather, P.adaptive_avg_pool2d, P.embedding, P.native_dropout,
         REGISTRY["erf"]]
CASES = [(prim, k) for prim in PRIMS for k in range(len(prim.sample()))]


def _inputs(prim, k):
    args, params = prim.sample()[k]
    tensors = [None if a is None else gt.tensor(np.array(a, dtype=np.float64),
                                                 requires_grad=True) for a in args]
    return tensors, params


def _ids(case):
    return f"{case[0].name}-{case[1]}"


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_vjp_matches_finite_differences(case):
    prim, k = case
    xs, params = _inputs(prim, k)
    live = [x for x in xs if x is not None]
    out = apply(prim, tuple(xs), params)
    v = np.random.default_rng(1).standard_normal(out.shape)
    analytic = gt.autograd.grad(out, live, gt.tensor(v))
    numeric = numerical_vjp(lambda: apply(prim, tuple(xs), params), live, v)
    for a, n in zip(analytic, numeric):
        np.testing.assert_allclose(a._data, n, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_jvp_matches_vjp(case):
    # vᵀ(J u) == (vᵀJ) u, per input
    prim, k = case
    xs, params = _inputs(prim, k)
    rng = np.random.default_rng(2)
    for i, x in enumerate(xs):
        if x is None:
            continue
        u = rng.standard_normal(x.shape)
        with dual_level():
            duals = [make_dual(a, gt.tensor(u)) if j == i else a for j, a in enumerate(xs)]
            out = apply(prim, tuple(duals), params)
            tangent = unpack_dual(out).tangent
        out = apply(prim, tuple(xs), params)
        v = rng.standard_normal(out.shape)
        (g,) = gt.autograd.grad(out, [x], gt.tensor(v))
        np.testing.assert_allclose(np.sum(v * tangent._data), np.sum(g._data * u), rtol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_batched_vjp_matches_single(case):
    prim, k = case
    xs, params = _inputs(prim, k)
    live = [x for x in xs if x is not None]
    out = apply(prim, tuple(xs), params)
    vs = np.random.default_rng(3).standard_normal((3,) + tuple(out.shape))
    batched = gt.autograd.grad(out, live, gt.tensor(vs), retain_graph=True,
                               is_grads_batched=True)
    for b in range(3):
        single = gt.autograd.grad(out, live, gt.tensor(vs[b]), retain_graph=True)
        for gb, gs in zip(batched, single):
            np.testing.assert_allclose(gb._data[b], gs._data, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_second_order(case):
    # d/d(inputs) of <w, vᵀJ(x)> by create_graph, against finite differences of vᵀJ
    prim, k = case
    xs, params = _inputs(prim, k)
    live = [x for x in xs if x is not None]
    out = apply(prim, tuple(xs), params)
    rng = np.random.default_rng(4)
    v = gt.tensor(rng.standard_normal(out.shape), requires_grad=True)
    grads = gt.autograd.grad(out, live, v, create_graph=True)
    ws = [rng.standard_normal(g.shape) for g in grads]
    total = sum((g * gt.tensor(w)).sum() for g, w in zip(grads, ws))
    if not total.requires_grad:
        return
    second = gt.autograd.grad(total, live + [v], allow_unused=True)

    def first_order():
        o = apply(prim, tuple(xs), params)
        gs = gt.autograd.grad(o, live, v.detach())
        return gt.tensor(sum(np.sum(g._data * w) for g, w in zip(gs, ws)))
    numeric = numerical_vjp(first_order, live + [v], np.array(1.0))
    for a, n in zip(second, numeric):
        a = np.zeros_like(n) if a is None else a._data
        np.testing.assert_allclose(a, n, rtol=1e-5, atol=1e-6)
