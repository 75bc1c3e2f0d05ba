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
