"""maximum/minimum gradients and tangents as torch's, NaN and ties included: an input gets the
gradient unless it is beaten (so with a NaN both get it); the tangent follows the second input
unless the first wins."""

import math

import numpy as np
import pytest

import gradtool as gt

torch = pytest.importorskip("torch")


def _assert_same(mine, theirs):
    """Each array of ``mine`` close to torch's, NaN and inf at the same places (two libraries:
    never bit-for-bit; the values here are O(1), so rounding noise around 0 is within atol)."""
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                                   rtol=1e-12, atol=1e-14)

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
    return g.tolist(), second.tolist(), tangent.tolist()


def test_hardtanh_masks_gradients_and_tangents_as_torch():
    # outside (min_val, max_val) the gradient is 0 even where it arrives inf or NaN (torch's
    # masked_fill), so normalize of a clamped-to-zero vector has a zero second derivative
    _assert_same(_hardtanh_outcome(gt), _hardtanh_outcome(torch))


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
    return inf_grad.tolist(), plain.tolist(), tangent.tolist()


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("xs", [[-2.0, 0.5, 3.0, 0.0], [1.0, NAN, 3.0, NAN], [3.0, 3.0, 1.0, 0.0]])
def test_max_min_gradients_reach_only_the_extremes_as_torch(name, xs):
    # torch fills the gradient in where x attains the extreme (a NaN extreme: at the NaNs),
    # zeros elsewhere, so an inf gradient does not turn the other elements NaN
    _assert_same(_reduction_outcome(gt, name, xs), _reduction_outcome(torch, name, xs))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("ignore_index", [-100, 2])
@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_nll_gradient_reaches_only_the_picked_classes_as_torch(reduction, ignore_index, loss):
    def outcome(lib):
        x = lib.tensor([[-2.0, 0.5, 3.0], [0.0, 1.0, -1.0]], dtype=lib.float64,
                       requires_grad=True)
        y = getattr(lib.nn.functional, loss)(x, lib.tensor([0, 2]), reduction=reduction,
                                             ignore_index=ignore_index)
        values = [math.inf, NAN, -math.inf, 1.0]
        g = lib.tensor([values[i % 4] for i in range(y.numel())],
                       dtype=lib.float64).reshape(y.shape)
        grad, = lib.autograd.grad(y, x, g)
        return (grad.tolist(),)
    _assert_same(outcome(gt), outcome(torch))


ACTIVATIONS = {
    "relu": lambda lib, x: x.relu(),
    "relu_": lambda lib, x: (x * 1).relu_(),
    "threshold": lambda lib, x: lib.nn.functional.threshold(x, 0.5, -1.0),
    "elu": lambda lib, x: lib.nn.functional.elu(x),
    "abs": lambda lib, x: x.abs(),
    "sign": lambda lib, x: x.sign(),
    "l1": lambda lib, x: lib.nn.functional.l1_loss(x, lib.zeros_like(x), reduction="none"),
    "norm1": lambda lib, x: x.norm(p=1, dim=1),
    "smooth_l1": lambda lib, x: lib.nn.functional.smooth_l1_loss(x, lib.zeros_like(x),
                                                                  reduction="none"),
    "relu6": lambda lib, x: lib.nn.functional.relu6(x),
    "leaky_relu": lambda lib, x: lib.nn.functional.leaky_relu(x, 0.1),
}
ROWS = [[-math.inf, 0.5, 3.0], [NAN, 1.0, -1.0], [math.inf, 2.0, 0.0]]


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_on_nan_and_inf_inputs_as_torch(name):
    # torch's comparisons: sign(NaN) = 0, relu/threshold/elu pass the gradient at a NaN
    def outcome(lib):
        f = ACTIVATIONS[name]
        x = lib.tensor(ROWS, dtype=lib.float64, requires_grad=True)
        y = f(lib, x)
        grad, = lib.autograd.grad(y, x, lib.ones_like(y))
        fw = lib.autograd.forward_ad
        with fw.dual_level():
            dual = fw.make_dual(lib.tensor(ROWS, dtype=lib.float64),
                                lib.full((3, 3), 2.0, dtype=lib.float64))
            tangent = fw.unpack_dual(f(lib, dual)).tangent
        return y.tolist(), grad.tolist(), tangent.tolist()
    _assert_same(outcome(gt), outcome(torch))


SOFTMAX_ROWS = [[math.inf, math.inf, 0.0], [math.inf, 1.0, 0.0], [-math.inf] * 3,
                [-math.inf, 0.0, 1.0], [NAN, 1.0, 0.0], [math.inf, -math.inf, 0.0],
                [1.0, 2.0, 3.0]]


@pytest.mark.parametrize("fn", ["softmax", "log_softmax", "logsumexp"])
def test_softmax_family_on_infinite_rows_as_torch(fn):
    # a row holding +inf is NaN throughout in softmax/log_softmax (torch's kernel shifts by
    # the max), while logsumexp is inf there
    def outcome(lib):
        x = lib.tensor(SOFTMAX_ROWS, dtype=lib.float64, requires_grad=True)
        y = getattr(x, fn)(1)
        grad, = lib.autograd.grad(y, x, lib.ones_like(y))
        return y.tolist(), grad.tolist()
    _assert_same(outcome(gt), outcome(torch))
