"""Fit y = a + b P3(c + d x) to sin(x) on [-pi, pi], with P3(x) = (5x^3 - 3x) / 2 the
Legendre polynomial of degree 3 written as a custom autograd Function.

    python examples/legendre_polynomial.py
"""

from __future__ import annotations

import math

import gradtool as gt
import gradtool.optim as optim


class LegendrePolynomial3(gt.autograd.Function):
    """P3 with a hand-written backward: d/dx P3(x) = 1.5 (5x^2 - 1)."""

    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)


def main(steps: int = 2000) -> tuple[list[float], list[float]]:
    """Losses per step and the fitted (a, b, c, d)."""
    x = gt.linspace(-math.pi, math.pi, 2000)
    y = gt.sin(x)
    weights = [gt.tensor(v, requires_grad=True) for v in (0.0, -1.0, 0.0, 0.3)]
    a, b, c, d = weights
    optimizer = optim.SGD(weights, lr=5e-6)
    losses = []
    for t in range(steps):
        y_pred = a + b * LegendrePolynomial3.apply(c + d * x)
        loss = (y_pred - y).pow(2).sum()
        losses.append(loss.item())
        if t % 500 == 99:
            print(f"step {t:4d}  loss {loss.item():.6f}")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    fitted = [w.item() for w in weights]
    print(f"Result: y = {fitted[0]:.4g} + {fitted[1]:.4g} * P3({fitted[2]:.4g} + "
          f"{fitted[3]:.4g} x)")
    return losses, fitted


if __name__ == "__main__":
    main()
