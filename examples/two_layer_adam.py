"""A two-layer network fitted to random data with Adam.

    python examples/two_layer_adam.py

Sequential(Linear(1000, 100), ReLU, Linear(100, 10)), summed squared error, Adam with lr 1e-4.
"""

from __future__ import annotations

import gradtool as gt
import gradtool.nn as nn
import gradtool.optim as optim

N, D_IN, H, D_OUT = 64, 1000, 100, 10


def build(seed: int = 0) -> tuple:
    """Random inputs/targets and a freshly initialised model, all from ``seed``."""
    gt.manual_seed(seed)
    x = gt.randn(N, D_IN)
    y = gt.randn(N, D_OUT)
    model = nn.Sequential(nn.Linear(D_IN, H), nn.ReLU(), nn.Linear(H, D_OUT))
    return x, y, model


def train(model: nn.Module, x: gt.Tensor, y: gt.Tensor, steps: int) -> list[float]:
    """The loss before each of ``steps`` Adam updates."""
    optimizer = optim.Adam(model.parameters(), lr=1e-4)
    losses = []
    for _ in range(steps):
        loss = nn.functional.mse_loss(model(x), y, reduction="sum")
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


def main(steps: int = 500) -> list[float]:
    x, y, model = build()
    losses = train(model, x, y, steps)
    for t in range(0, steps, max(steps // 5, 1)):
        print(f"step {t:4d}  loss {losses[t]:.6f}")
    print(f"final loss {losses[-1]:.6f}")
    return losses


if __name__ == "__main__":
    main()
