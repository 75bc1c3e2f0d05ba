"""maximum/minimum gradients and tangents as torch's, NaN and ties included: an input gets the
gradient unless it is beaten (so with a NaN both get it); the tangent follows the second input
unless the first wins."""

import math

import pytest

import gradtool as gt

torch = pytest.importorskip("torch")

NAN = math.nan
PAIRS = [(NAN, 1.0), (1.0, NAN), (NAN, NAN), (1.0, 1.0), (2.0, 1.0), (1.0, 2.0)]


def _grads_and_tangent(lib, op, a, b):
    x = lib.tensor(a, dtype=lib.float64, requires_grad=True)
    y = lib.tensor(b, dtype=lib.float64, requires_grad=True)
    (getattr(lib, op)(x, y) * 3.0).backward()
    fw = lib.autograd.forward_ad
    with fw.dual_level():
        xx = fw.make_dual(lib.tensor(a, dtype=lib.float64), lib.tensor(2.0, dtype=lib.float64))
        yy = fw.make_dual(lib.tensor(b, dtype=lib.float64), lib.tensor(5.0, dtype=lib.float64))
        tangent = fw.unpack_dual(getattr(lib, op)(xx, yy)).tangent.item()
    return x.grad.item(), y.grad.item(), tangent


@pytest.mark.parametrize("op", ["maximum", "minimum"])
@pytest.mark.parametrize("a, b", PAIRS)
def test_extreme_gradients_and_tangents_as_torch(op, a, b):
    assert _grads_and_tangent(gt, op, a, b) == pytest.approx(_grads_and_tangent(torch, op, a, b))


def _hardtanh_outcome(lib):
    inf, nan = math.inf, math.nan
    x = lib.tensor([-0.5, 0.5, 7.0], dtype=lib.float64, requires_grad=True)
    g, = lib.autograd.grad(lib.nn.functional.relu6(x), x,
                           lib.tensor([inf, nan, nan], dtype=lib.float64), create_graph=True)
    v = lib.tensor([-0.094, -0.222], dtype=lib.float64, requires_grad=True)
    out = lib.nn.functional.normalize(lib.nn.functional.relu6(v), dim=0)
    first, = lib.autograd.grad(out, [v], lib.tensor([-1.75, 0.0], dtype=lib.float64),
                               create_graph=True)
    second, = lib.autograd.grad((first * lib.tensor([-1.25, 0.0], dtype=lib.float64)).sum(), [v])
    fw = lib.autograd.forward_ad
    with fw.dual_level():
        d = fw.make_dual(lib.tensor([-0.5, 0.5, 7.0], dtype=lib.float64),
                         lib.tensor([nan, 1.0, inf], dtype=lib.float64))
        tangent = fw.unpack_dual(lib.nn.functional.hardtanh(d, 0.0, 6.0)).tangent
    return [repr(v) for v in g.tolist() + second.tolist() + tangent.tolist()]


def test_hardtanh_masks_gradients_and_tangents_as_torch():
    # outside (min_val, max_val) the gradient is 0 even where it arrives inf or NaN (torch's
    # masked_fill), so normalize of a clamped-to-zero vector has a zero second derivative
    assert _hardtanh_outcome(gt) == _hardtanh_outcome(torch)


REDUCTIONS = {
    "max": lambda lib, x: x.max(),
    "min": lambda lib, x: x.min(),
    "max_dim": lambda lib, x: x.max(0)[0],
    "min_dim": lambda lib, x: x.reshape(2, 2).min(1)[0],
}


def _reduction_outcome(lib, name, xs):
    f = REDUCTIONS[name]
    x = lib.tensor(xs, dtype=lib.float64, requires_grad=True)
    y = f(lib, x)
    inf_grad, = lib.autograd.grad(y, x, lib.full(y.shape, math.inf, dtype=lib.float64))
    plain, = lib.autograd.grad(f(lib, x), x, lib.full(y.shape, 2.0, dtype=lib.float64))
    fw = lib.autograd.forward_ad
    with fw.dual_level():
        dual = fw.make_dual(lib.tensor(xs, dtype=lib.float64),
                            lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64))
        tangent = fw.unpack_dual(f(lib, dual)).tangent
    return repr((inf_grad.tolist(), plain.tolist(), tangent.tolist()))


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("xs", [[-2.0, 0.5, 3.0, 0.0], [1.0, NAN, 3.0, NAN], [3.0, 3.0, 1.0, 0.0]])
def test_max_min_gradients_reach_only_the_extremes_as_torch(name, xs):
    # torch fills the gradient in where x attains the extreme (a NaN extreme: at the NaNs),
    # zeros elsewhere, so an inf gradient does not turn the other elements NaN
    assert _reduction_outcome(gt, name, xs) == _reduction_outcome(torch, name, xs)
