"""nll_loss reads only the picked element of each target (plain fancy indexing), as torch:
an Inf or NaN in another class, or at an ignored target, does not reach the loss."""

import numpy as np
import pytest

import gradtool as gt

CASES = [
    # (input, target, keyword arguments)
    ([[np.inf, 1.0], [2.0, 3.0]], [1, 1], {}),
    ([[np.inf, 1.0], [2.0, np.nan]], [0, 0], {"ignore_index": 0, "reduction": "none"}),
    ([[np.inf, 1.0], [2.0, 3.0]], [0, 1], {"ignore_index": 0}),
    ([[1.0, 2.0], [2.0, 3.0]], [0, 0], {"ignore_index": 0}),      # all ignored: NaN, zeros
    ([[1.0, 2.0], [2.0, 3.0]], [1, 0], {"ignore_index": 0, "weight": [1.0, 0.5]}),
    ([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]], [2, 0], {"weight": [0.2, 1.0, 3.0]}),
    ([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]], [2, 0], {"weight": [0.2, 1.0, 3.0],
                                                    "reduction": "sum"}),
    ([0.3, -np.inf, 1.2], 2, {}),
    (np.arange(24.0).reshape(2, 3, 4) / 10, [[0, 2, 1, 1], [2, 2, 0, 1]],
     {"reduction": "none"}),
    (np.arange(24.0).reshape(2, 3, 2, 2) / 10, [[[0, 2], [1, 1]], [[2, 2], [0, -100]]], {}),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_nll_loss_and_its_gradient_as_torch(case):
    torch = pytest.importorskip("torch")
    data, target, kw = CASES[case]
    data = np.asarray(data, dtype=np.float64)
    target = np.asarray(target)
    weight = kw.get("weight")
    ours_kw = dict(kw, weight=None if weight is None else gt.tensor(weight))
    theirs_kw = dict(kw, weight=None if weight is None else torch.tensor(weight,
                                                                          dtype=torch.float64))
    x = gt.tensor(data, requires_grad=True)
    tx = torch.tensor(data, requires_grad=True)
    ours = gt.nll_loss(x, gt.tensor(target), **ours_kw)
    theirs = torch.nn.functional.nll_loss(tx, torch.tensor(target), **theirs_kw)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12,
                               equal_nan=True)
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_nll_loss_float32_keeps_its_dtype():
    x = gt.tensor(np.array([[0.5, -1.0], [2.0, 0.25]], dtype=np.float32), requires_grad=True)
    loss = gt.nll_loss(x, gt.tensor([1, 0]))
    assert loss.dtype == gt.float32
    loss.backward()
    assert x.grad.dtype == gt.float32


def _dense_vjp(g, x, target, reduction, weight, ignore_index):
    """nll_loss's VJP as a dense weight matrix W (g * W at the picked elements, zeros
    elsewhere): the reference for the scatter the backward does on arrays."""
    from gradtool.engine.prims import loss as loss_prims
    index, picked, kept = loss_prims._nll_picked(x.shape, target, weight, ignore_index)
    nd = x.ndim
    if reduction == "none":
        g = np.expand_dims(g, loss_prims._class_axis(nd) - nd)
        value = -1.0 if picked is None else -picked
    else:
        g = g.reshape(g.shape + (1,) * nd)
        if reduction == "mean":
            value = -1.0 / max(1, target.size) if picked is None else np.where(
                kept if kept is not None else True, -(picked / picked.sum()), 0.0)
        else:
            value = -1.0 if picked is None else -picked
    W = np.zeros(x.shape, dtype=g.dtype)
    W[index] = value
    hit = np.zeros(x.shape, dtype=bool)
    hit[index] = True if kept is None else kept
    with np.errstate(all="ignore"):
        return np.where(hit, g * W, 0.0)


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nll_backward_scatter_equals_the_dense_rule(case, batched, dtype):
    """The array backward scatters g times each picked weight; the same numbers (bit for
    bit: the same products) as g * W masked to the picked elements, with a batch axis,
    an inf gradient (no NaN leaks into other classes), float32 and ignored targets."""
    from gradtool.engine.prims import loss as loss_prims
    data, target, kw = CASES[case]
    x = np.asarray(data, dtype=dtype)
    target = np.asarray(target)
    reduction = kw.get("reduction", "mean")
    weight = None if kw.get("weight") is None else np.asarray(kw["weight"])
    ignore_index = kw.get("ignore_index", -100)
    out_shape = target.shape if reduction == "none" else ()
    rng = np.random.default_rng(case)
    g = rng.standard_normal((3,) + out_shape if batched else out_shape).astype(dtype)
    g.reshape(-1)[0] = np.inf
    with np.errstate(all="ignore"):
        ours = loss_prims._nll_vjp(g, x, target, None, reduction, weight, ignore_index)
    expected = _dense_vjp(g, x, target, reduction, weight, ignore_index)
    assert ours.dtype == expected.dtype and ours.shape == expected.shape
    np.testing.assert_array_equal(ours, expected)
    assert np.signbit(ours).tolist() == np.signbit(expected).tolist()


def test_nll_loss_of_cancelling_targets_keeps_the_sign_of_zero():
    """The loss sums the negated picked elements: x = [1, -1] gives +0.0 (not -0.0), as
    torch."""
    torch = pytest.importorskip("torch")
    data = np.array([[1.0, 0.0], [-1.0, 0.0]])
    ours = gt.nll_loss(gt.tensor(data), gt.tensor([0, 0]), reduction="sum")
    theirs = torch.nn.functional.nll_loss(torch.tensor(data), torch.tensor([0, 0]),
                                          reduction="sum")
    assert np.signbit(ours.numpy()) == bool(torch.signbit(theirs))
