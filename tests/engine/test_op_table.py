"""Walk the whole op table: every primitive in REGISTRY is checked, on each of its samples,
against central finite differences in float64:

* reverse mode (the backward's Jacobian), second order (gradients of a projection of the
  create_graph gradient), forward mode (JVPs via forward_ad);
* vᵀ(Ju) == (vᵀJ)u between forward and reverse mode;
* batched VJPs (is_grads_batched, plain and under create_graph) equal stacked single VJPs;
* analytic primitives run on complex inputs and their complex-step derivative is right;
* out_shape predicts the output shape; the backward node carries the primitive's name.

A primitive without sample inputs fails here, so an op cannot land without correct rules.
Samples come from ``prim.sample``, declared in the primitive's entry (``sample=``).
"""

from __future__ import annotations

import numpy as np
import pytest

import gradtool as gt
from gradtool.engine.primitive import REGISTRY, Variadic, apply
from gradtool.engine.prims import shape as S
from gradtool.engine.tensor import Tensor

import gradtool.nn  # noqa: F401  (the nn primitives register when gt.nn is imported)

STEP = 1e-6
RTOL = 1e-5
ATOL = 1e-6


# ---- sample inputs: each primitive's own (``sample=`` in its entry) ----------------------------
def _rng(seed=0):
    return np.random.default_rng(seed)


def samples_of(prim):
    if prim.sample is not None:
        return list(prim.sample())
    raise AssertionError(f"primitive '{prim.name}' ({prim.node_name}) has no sample inputs: "
                         "give it a `sample=` callable in its Primitive(...) entry")


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
