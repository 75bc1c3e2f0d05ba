"""The examples under examples/: each reaches the loss of a reference run, and (with torch
installed) follows torch started from the same weights: relative 1e-8 in float64, a looser
tolerance in float32."""

import importlib.util
import io
import contextlib
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradtool as gt

from .mirror import copy_weights, import_torch, rel_err, to_torch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def quiet(fn, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


def _torch_two_layer(torch, model):
    ref = torch.nn.Sequential(torch.nn.Linear(1000, 100), torch.nn.ReLU(),
                              torch.nn.Linear(100, 10)).double()
    copy_weights(model, ref)
    return ref


def _torch_losses(torch, ref, opt, x, y, steps):
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.mse_loss(ref(x), y, reduction="sum")
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses


@pytest.mark.parametrize("name, reference, torch_opt", [
    ("two_layer_sgd", 15.222709383591159, "SGD"),
    ("two_layer_adam", 143.48093286841856, "Adam")])
def test_two_layer(name, reference, torch_opt):
    example = load(name)
    losses = quiet(example.main, 60)
    assert losses[-1] == pytest.approx(reference, rel=1e-9)
    assert losses[-1] < losses[0] / 4
    torch = import_torch()
    x, y, model = example.build()
    ref = _torch_two_layer(torch, model)
    opt = getattr(torch.optim, torch_opt)(ref.parameters(), lr=1e-4, foreach=False)
    theirs = _torch_losses(torch, ref, opt, to_torch(x), to_torch(y), 60)
    assert rel_err(losses, theirs) < 1e-8


def test_two_layer_sgd_float32_follows_torch():
    torch = import_torch()
    example = load("two_layer_sgd")
    x, y, model = example.build()
    ref = _torch_two_layer(torch, model).float()
    model.float()
    ours = example.train(model, x.float(), y.float(), 60)
    opt = torch.optim.SGD(ref.parameters(), lr=1e-4, foreach=False)
    theirs = _torch_losses(torch, ref, opt, to_torch(x).float(), to_torch(y).float(), 60)
    assert model[0].weight.dtype == gt.float32
    assert rel_err(ours, theirs) < 1e-5


def test_legendre_polynomial():
    example = load("legendre_polynomial")
    losses, (a, b, c, d) = quiet(example.main, 2000)
    assert losses[-1] == pytest.approx(8.943643355960495, rel=1e-9)
    assert b == pytest.approx(-2.20852641519011, rel=1e-9)
    assert d == pytest.approx(0.2554861125088658, rel=1e-9)
    assert abs(a) < 1e-12 and abs(c) < 1e-12
    torch = import_torch()

    class P3(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return 0.5 * (5 * input ** 3 - 3 * input)

        @staticmethod
        def backward(ctx, grad_output):
            (input,) = ctx.saved_tensors
            return grad_output * 1.5 * (5 * input ** 2 - 1)

    x = torch.linspace(-math.pi, math.pi, 2000, dtype=torch.float64)
    weights = [torch.tensor(v, dtype=torch.float64, requires_grad=True)
               for v in (0.0, -1.0, 0.0, 0.3)]
    opt = torch.optim.SGD(weights, lr=5e-6, foreach=False)
    theirs = []
    for _ in range(300):
        loss = (weights[0] + weights[1] * P3.apply(weights[2] + weights[3] * x)
                - torch.sin(x)).pow(2).sum()
        theirs.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert rel_err(losses[:300], theirs) < 1e-8


def test_dataloader_epochs():
    example = load("dataloader_epochs")
    history = quiet(example.main, 5)
    assert history[-1][0] == pytest.approx(0.015027036310559228, rel=1e-9)
    assert history[0][0] == pytest.approx(3.821427669691772, rel=1e-9)
    assert all(later[0] < earlier[0] for earlier, later in zip(history, history[1:]))
    torch = import_torch()
    loader, model = example.build()
    ref = torch.nn.Linear(3, 1).double()
    copy_weights(model, ref)
    opt = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9, foreach=False)
    ours, theirs = [], []
    gt_opt = example.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(2):
        for inputs, targets in loader:       # the same shuffled batches for both
            loss = example.nn.functional.mse_loss(model(inputs), targets)
            ours.append(loss.item())
            gt_opt.zero_grad()
            loss.backward()
            gt_opt.step()
            loss_t = torch.nn.functional.mse_loss(ref(to_torch(inputs)), to_torch(targets))
            theirs.append(loss_t.item())
            opt.zero_grad()
            loss_t.backward()
            opt.step()
    assert len(ours) == 2 * len(loader) == 32
    assert rel_err(ours, theirs) < 1e-8


def test_grad_cam():
    example = load("grad_cam")
    with pytest.warns(UserWarning, match="no inputs require gradients"):
        losses, cam, again, captured = quiet(example.main, 30)
    assert losses[-1] == pytest.approx(0.022929629620607017, rel=1e-8)
    assert cam.shape == (8, 8) and np.all(cam._data >= 0)
    assert float(cam.sum()) == pytest.approx(0.17238357732872744, rel=1e-8)
    assert captured == (1, 1) and again is None
    torch = import_torch()
    images, labels, model = example.build()
    tn = torch.nn

    class TorchCNN(tn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tn.Conv2d(1, 4, kernel_size=3, padding=1)
            self.pool = tn.MaxPool2d(2)
            self.fc = tn.Linear(16 * 4, 3)

        def forward(self, x):
            return self.fc(self.pool(torch.relu(self.conv1(x))).flatten(1))

    ref = TorchCNN().double()
    copy_weights(model, ref)
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.5, foreach=False)
    xt, yt = to_torch(images), torch.tensor(labels._data)
    theirs = []
    for _ in range(30):
        loss = tn.functional.cross_entropy(ref(xt), yt)
        theirs.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert rel_err(losses, theirs) < 1e-8
    acts, grads = [], []
    ref.conv1.register_forward_hook(lambda m, a, o: acts.append(o.detach()))
    ref.conv1.register_full_backward_hook(lambda m, gi, go: grads.append(go[0].detach()))
    with pytest.warns(UserWarning):
        ref(xt[:1])[0, int(labels[0])].backward()
    weights = grads[0].mean(dim=(2, 3), keepdim=True)
    cam_t = torch.relu((weights * acts[0]).sum(dim=1))[0]
    np.testing.assert_allclose(cam._data, cam_t.numpy(), rtol=1e-7, atol=1e-12)


def test_backward_hook_changes_upstream_gradients():
    example = load("backward_hook_gradient")
    plain, hooked, losses = quiet(example.main, 100)
    for name in ("0.weight", "0.bias"):
        np.testing.assert_allclose(hooked[name], 0.5 * plain[name], rtol=1e-12)
    for name in ("2.weight", "2.bias"):
        np.testing.assert_allclose(hooked[name], plain[name], rtol=1e-12)
    assert losses[-1] == pytest.approx(0.5235167788749348, rel=1e-8)
    torch = import_torch()
    x, y, model = example.build()
    tn = torch.nn
    ref = tn.Sequential(tn.Linear(4, 8), tn.Tanh(), tn.Linear(8, 2)).double()
    copy_weights(model, ref)
    ref[2].register_full_backward_hook(example.halve_grad_input)
    opt = torch.optim.Adam(ref.parameters(), lr=0.01, foreach=False)
    xt, yt = to_torch(x), to_torch(y)
    example.gradients(model, x, y)       # the example's two probe backwards: no updates
    theirs = []
    for _ in range(100):
        loss = tn.functional.mse_loss(ref(xt), yt)
        theirs.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert rel_err(losses, theirs) < 1e-8


def test_examples_run_as_scripts():
    result = subprocess.run([sys.executable, str(EXAMPLES / "backward_hook_gradient.py")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "gradient ratio with the hook: 0.500" in result.stdout
