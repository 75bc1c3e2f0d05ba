"""A full backward hook that returns a changed grad_input changes what reaches the layer's
inputs, and so every gradient upstream of it (here: halved), while the layer's own
parameters still get their true gradients.

    python examples/backward_hook_gradient.py
"""

from __future__ import annotations

import gradtool as gt
import gradtool.nn as nn
import gradtool.optim as optim


def build(seed: int = 0) -> tuple:
    gt.manual_seed(seed)
    x = gt.randn(16, 4)
    y = gt.randn(16, 2)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    return x, y, model


def halve_grad_input(module: nn.Module, grad_input: tuple, grad_output: tuple) -> tuple:
    """Replace the gradient w.r.t. the layer's input by half of it."""
    return tuple(None if g is None else g * 0.5 for g in grad_input)


def gradients(model: nn.Module, x: gt.Tensor, y: gt.Tensor) -> dict:
    model.zero_grad()
    nn.functional.mse_loss(model(x), y).backward()
    return {name: p.grad.numpy().copy() for name, p in model.named_parameters()}


def train(model: nn.Module, x: gt.Tensor, y: gt.Tensor, steps: int) -> list[float]:
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(steps):
        loss = nn.functional.mse_loss(model(x), y)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


def main(steps: int = 100) -> tuple:
    x, y, model = build()
    plain = gradients(model, x, y)
    handle = model[2].register_full_backward_hook(halve_grad_input)
    hooked = gradients(model, x, y)
    for name in plain:
        ratio = (hooked[name] / plain[name]).mean()
        print(f"{name:9s} gradient ratio with the hook: {ratio:.3f}")
    losses = train(model, x, y, steps)
    handle.remove()
    print(f"loss with the hook during training: {losses[0]:.6f} -> {losses[-1]:.6f}")
    return plain, hooked, losses


if __name__ == "__main__":
    main()
