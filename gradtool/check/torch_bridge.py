"""Checking real PyTorch functions (filled in below)."""

from __future__ import annotations

import sys


def is_torch_call(fn, inputs) -> bool:
    """True when ``inputs`` hold torch tensors (torch is imported only if already loaded)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    items = inputs if isinstance(inputs, (tuple, list)) else (inputs,)
    return any(isinstance(x, torch.Tensor) for x in items)


def check(fn, inputs, **kw):
    raise NotImplementedError
