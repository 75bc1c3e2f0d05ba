"""Helpers to run the same computation in torch (when installed) from gradtool's values."""

from __future__ import annotations

import numpy as np

import gradtool as gt


def to_torch(t: gt.Tensor, requires_grad: bool | None = None):
    import torch
    out = torch.tensor(np.array(t._data, copy=True))
    if requires_grad if requires_grad is not None else t.requires_grad:
        out.requires_grad_(True)
    return out


def copy_weights(module, torch_module) -> None:
    """Load gradtool ``module``'s state dict into ``torch_module`` (same architecture)."""
    import torch
    state = {k: torch.tensor(np.array(v._data, copy=True)) for k, v in
             module.state_dict().items()}
    torch_module.load_state_dict(state)


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def import_torch():
    """torch, or skip the test; single-threaded, since the tiny ops here only pay for
    thread hand-offs (seconds per test on a busy machine)."""
    import pytest
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch
