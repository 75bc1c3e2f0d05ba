"""Loss modules and functions against torch (values and gradients), and their gradchecks."""

import numpy as np
import pytest

import gradtool as gt
import gradtool.nn as nn
import gradtool.nn.functional as F

from .fd import check_grads
from .mirror import import_torch, to_torch


def _cases():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 4))
    classes = np.array([0, 3, 1, 1, 2, 3])
    probs = rng.dirichlet(np.ones(4), size=6)
    pred, target = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    bits = (rng.random((5, 3)) > 0.5).astype(float)
    weight = np.array([1.0, 2.0, 0.5, 1.5])
    return [
        ("MSELoss", {}, pred, target),
        ("MSELoss", {"reduction": "sum"}, pred, target),
        ("MSELoss", {"reduction": "none"}, pred, target),
        ("L1Loss", {}, pred, target + 0.01),
        ("L1Loss", {"reduction": "sum"}, pred, target + 0.01),
        ("CrossEntropyLoss", {}, logits, classes),
        ("CrossEntropyLoss", {"reduction": "sum"}, logits, classes),
        ("CrossEntropyLoss", {"weight": weight}, logits, classes),
        ("CrossEntropyLoss", {"ignore_index": 1}, logits, classes),
        ("CrossEntropyLoss", {"label_smoothing": 0.1}, logits, classes),
        ("CrossEntropyLoss", {}, logits, probs),
        ("NLLLoss", {}, logits, classes),
        ("BCEWithLogitsLoss", {}, pred, bits),
        ("BCEWithLogitsLoss", {"pos_weight": np.array([1.0, 3.0, 0.5])}, pred, bits),
        ("BCEWithLogitsLoss", {"reduction": "sum", "weight": np.full(3, 2.0)}, pred, bits),
        ("BCELoss", {}, 1 / (1 + np.exp(-pred)), bits),
        ("SmoothL1Loss", {}, pred, target + 0.01),
        ("HuberLoss", {"delta": 0.5}, pred, target + 0.01),
    ]


CASES = _cases()


def _build(module, kwargs, wrap):
    return module(**{k: wrap(v) if isinstance(v, np.ndarray) else v for k, v in
                     kwargs.items()})


@pytest.mark.parametrize("case", range(len(CASES)),
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_loss_matches_torch(case):
    torch = import_torch()
    name, kwargs, inp, target = CASES[case]
    ours = _build(getattr(nn, name), kwargs, gt.tensor)
    theirs = _build(getattr(torch.nn, name), kwargs, torch.tensor)
    x = gt.tensor(inp, requires_grad=True)
    t = gt.tensor(target)
    xt = to_torch(x)
    out, out_t = ours(x, t), theirs(xt, torch.tensor(target))
    np.testing.assert_allclose(out._data, out_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    g = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(gt.tensor(g))
    out_t.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad._data, xt.grad.numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("case", range(len(CASES)),
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_loss_gradcheck(case):
    name, kwargs, inp, target = CASES[case]
    loss = _build(getattr(nn, name), kwargs, gt.tensor)
    x = gt.tensor(inp, requires_grad=True)
    t = gt.tensor(target)
    check_grads(lambda: loss(x, t), [x])


def test_functional_signatures_accept_torch_legacy_flags():
    x, y = gt.randn(3, 2), gt.randn(3, 2)
    np.testing.assert_allclose(F.mse_loss(x, y, size_average=False).item(),
                               F.mse_loss(x, y, reduction="sum").item())
    assert F.l1_loss(x, y, reduce=False).shape == (3, 2)
    assert nn.MSELoss(reduce=False)(x, y).shape == (3, 2)
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        nn.MSELoss(reduction="avg")(x, y)
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
