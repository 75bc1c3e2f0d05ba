"""Optimizers follow torch's update rules exactly: runs started from the same weights give
the same losses (relative 1e-8 over 60 steps, float64), for every option."""

import numpy as np
import pytest

import gradtool as gt
import gradtool.nn as nn
import gradtool.optim as optim

from .mirror import copy_weights, import_torch, rel_err, to_torch

CONFIGS = [
    ("SGD", {"lr": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("SGD", {"lr": 0.05, "maximize": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.3, "amsgrad": True}),
]


def _model(base):
    return base.Sequential(base.Linear(6, 8), base.Tanh(), base.Linear(8, 3))


def _gt_losses(name, kwargs, model, x, y, steps=60):
    opt = getattr(optim, name)(model.parameters(), **kwargs)
    losses = []
    for _ in range(steps):
        loss = nn.functional.mse_loss(model(x), y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses


@pytest.mark.parametrize("config", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in
                                                 enumerate(CONFIGS)])
def test_optimizer_follows_torch(config):
    torch = import_torch()
    name, kwargs = config
    model = _model(nn)
    ref = _model(torch.nn).double()
    copy_weights(model, ref)
    x, y = gt.randn(20, 6), gt.randn(20, 3)
    ours = _gt_losses(name, kwargs, model, x, y)
    opt = getattr(torch.optim, name)(ref.parameters(), foreach=False, **kwargs)
    xt, yt = to_torch(x), to_torch(y)
    theirs = []
    for _ in range(60):
        loss = torch.nn.functional.mse_loss(ref(xt), yt)
        theirs.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert rel_err(ours, theirs) < 1e-8
    for p, pt in zip(model.parameters(), ref.parameters()):
        assert rel_err(p._data, pt.detach().numpy()) < 1e-8
    if kwargs.get("maximize"):
        assert ours[-1] > ours[0]
    else:
        assert ours[-1] < ours[0]


def test_param_groups_and_state_dict_resume():
    def fresh():
        gt.manual_seed(1)
        return nn.Linear(3, 2)
    x, y = gt.randn(8, 3), gt.randn(8, 2)

    def run(model, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            opt.step()

    straight = fresh()
    opt = optim.Adam([{"params": [straight.weight]}, {"params": [straight.bias], "lr": 0.1}],
                     lr=0.01)
    assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[1]["lr"] == 0.1
    assert opt.param_groups[1]["betas"] == (0.9, 0.999)
    run(straight, opt, 10)

    resumed = fresh()
    first = optim.Adam([{"params": [resumed.weight]}, {"params": [resumed.bias], "lr": 0.1}],
                       lr=0.01)
    run(resumed, first, 4)
    saved = first.state_dict()
    assert sorted(saved["state"]) == [0, 1] and saved["param_groups"][1]["params"] == [1]
    assert float(saved["state"][0]["step"]) == 4.0
    second = optim.Adam([{"params": [resumed.weight]}, {"params": [resumed.bias]}], lr=0.5)
    second.load_state_dict(saved)
    assert second.param_groups[1]["lr"] == 0.1
    run(resumed, second, 6)
    np.testing.assert_array_equal(resumed.weight._data, straight.weight._data)


def test_zero_grad_and_step_semantics():
    lin = nn.Linear(2, 1)
    opt = optim.SGD(lin.parameters(), lr=0.1)
    lin(gt.ones(1, 2)).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert np.all(lin.weight.grad._data == 0)
    opt.zero_grad()
    assert lin.weight.grad is None
    before = lin.weight._data.copy()
    opt.step()                                   # no gradients: nothing moves
    np.testing.assert_array_equal(lin.weight._data, before)
    version = lin.weight._version
    lin(gt.ones(1, 2)).sum().backward()
    loss = opt.step(lambda: 42.0)
    assert loss == 42.0 and lin.weight._version > version
    assert "lr: 0.1" in repr(opt)


def test_step_after_graph_built_invalidates_saved_weights():
    lin = nn.Linear(2, 2)
    opt = optim.SGD(lin.parameters(), lr=0.1)
    out = (lin(gt.randn(3, 2, requires_grad=True)) ** 2).sum()
    out.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()


def test_optimizer_argument_errors():
    params = list(nn.Linear(2, 2).parameters())
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        optim.SGD(params, lr=-1)
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        optim.SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        optim.Adam(params, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": params}, {"params": params[:1]}], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([params[0] * 2], lr=0.1)


SCHEDULES = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("MultiStepLR", {"milestones": [2, 5, 5], "gamma": 0.3}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("CosineAnnealingLR", {"T_max": 4, "eta_min": 0.001}),
    ("LambdaLR", {"lr_lambda": lambda epoch: 1 / (1 + epoch)}),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_lr_schedulers_follow_torch(schedule):
    torch = import_torch()
    name, kwargs = schedule
    params = list(nn.Linear(2, 1).parameters())
    opt = optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.5}], lr=0.1)
    sched = getattr(optim.lr_scheduler, name)(opt, **kwargs)
    ref_params = [torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)]
    ref_opt = torch.optim.SGD([{"params": ref_params[:1]}, {"params": ref_params[1:],
                                                             "lr": 0.5}], lr=0.1)
    ref_sched = getattr(torch.optim.lr_scheduler, name)(ref_opt, **kwargs)
    ours, theirs = [sched.get_last_lr()], [ref_sched.get_last_lr()]
    for _ in range(12):
        opt.step()
        sched.step()
        ref_opt.step()
        ref_sched.step()
        ours.append(sched.get_last_lr())
        theirs.append(ref_sched.get_last_lr())
    np.testing.assert_allclose(ours, theirs, rtol=1e-15)
    assert opt.param_groups[1]["lr"] == ours[-1][1]
