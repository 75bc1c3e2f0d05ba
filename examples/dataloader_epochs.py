"""Linear regression trained from a shuffled DataLoader; the epoch loss is the
per-sample average (``loss.item() * batch size`` summed, over ``len(loader.dataset)``)
and also the average of the batch losses (over ``len(loader)``, the number of batches).

    python examples/dataloader_epochs.py
"""

from __future__ import annotations

import gradtool as gt
import gradtool.nn as nn
import gradtool.optim as optim
from gradtool.data import DataLoader, TensorDataset


def build(seed: int = 0) -> tuple:
    """1000 noisy samples of y = x·(2, -3, 0.5) + 1, a Linear(3, 1) model, and a loader
    with 64-sample batches whose shuffling has its own generator."""
    gt.manual_seed(seed)
    x = gt.randn(1000, 3)
    y = x @ gt.tensor([[2.0], [-3.0], [0.5]]) + 1.0 + 0.1 * gt.randn(1000, 1)
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True,
                        generator=gt.Generator().manual_seed(seed))
    return loader, nn.Linear(3, 1)


def train(loader: DataLoader, model: nn.Module, epochs: int) -> list[tuple[float, float]]:
    """(per-sample loss, mean batch loss) of each epoch."""
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    criterion = nn.MSELoss()
    history = []
    for _ in range(epochs):
        total, batch_total = 0.0, 0.0
        for inputs, targets in loader:
            loss = criterion(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * inputs.size(0)
            batch_total += loss.item()
        history.append((total / len(loader.dataset), batch_total / len(loader)))
    return history


def main(epochs: int = 5) -> list[tuple[float, float]]:
    loader, model = build()
    print(f"{len(loader.dataset)} samples in {len(loader)} batches")
    history = train(loader, model, epochs)
    for epoch, (per_sample, per_batch) in enumerate(history):
        print(f"epoch {epoch}  loss {per_sample:.6f}  (mean of batch losses {per_batch:.6f})")
    return history


if __name__ == "__main__":
    main()
