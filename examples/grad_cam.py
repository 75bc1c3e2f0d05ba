"""Grad-CAM with module hooks: a forward hook on ``conv1`` keeps its activation A, a full
backward hook keeps the gradient of the class score w.r.t. that activation; the map is
relu(sum_c w_c A_c) with w_c the gradient averaged over the spatial dims.  A second run
with the hooks' handles removed captures nothing.

    python examples/grad_cam.py
"""

from __future__ import annotations

import gradtool as gt
import gradtool.nn as nn
import gradtool.nn.functional as F
import gradtool.optim as optim


class SmallCNN(nn.Module):
    """conv(1 -> 4, 3x3, same) -> relu -> 2x2 max pool -> linear(64 -> 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x: gt.Tensor) -> gt.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        return self.fc(x.flatten(1))


def build(seed: int = 0) -> tuple:
    """Eight 8x8 single-channel images with labels 0..2, and a model."""
    gt.manual_seed(seed)
    images = gt.randn(8, 1, 8, 8)
    labels = gt.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    return images, labels, SmallCNN()


def train(model: nn.Module, images: gt.Tensor, labels: gt.Tensor, steps: int) -> list[float]:
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(images), labels)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


def grad_cam(model: SmallCNN, image: gt.Tensor, target: int, activations: list,
             gradients: list) -> gt.Tensor | None:
    """The class-activation map of ``target`` for one image, from what the hooks append
    to ``activations`` and ``gradients`` during this call (None if they captured nothing,
    i.e. the hooks are gone)."""
    before = (len(activations), len(gradients))
    model.zero_grad()
    score = model(image)[0, target]
    score.backward()
    if (len(activations), len(gradients)) == before:
        return None
    a, g = activations[-1], gradients[-1]
    weights = g.mean(dim=(2, 3), keepdim=True)          # w_c: gradient averaged over H, W
    return F.relu((weights * a).sum(dim=1))[0]          # relu(sum_c w_c A_c)


def main(steps: int = 30) -> tuple:
    images, labels, model = build()
    losses = train(model, images, labels, steps)
    print(f"training loss {losses[0]:.6f} -> {losses[-1]:.6f}")
    activations, gradients = [], []
    forward_handle = model.conv1.register_forward_hook(
        lambda module, args, output: activations.append(output.detach()))
    backward_handle = model.conv1.register_full_backward_hook(
        lambda module, grad_input, grad_output: gradients.append(grad_output[0].detach()))
    image = images[:1]
    cam = grad_cam(model, image, int(labels[0]), activations, gradients)
    print("Grad-CAM map of class", int(labels[0]), "\n", cam)
    forward_handle.remove()
    backward_handle.remove()
    captured = (len(activations), len(gradients))
    again = grad_cam(model, image, int(labels[0]), activations, gradients)
    assert (len(activations), len(gradients)) == captured, "removed hooks fired"
    print("after remove(): captured", captured, "-> still", (len(activations), len(gradients)))
    return losses, cam, again, captured


if __name__ == "__main__":
    main()
