"""Gradient clipping (``torch.nn.utils.clip_grad_norm_``/``clip_grad_value_``)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ...engine.tensor import Tensor, _make, bump_version
from ...errors import EngineError


def _with_grads(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p._grad is not None]


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scale all gradients so their joint norm is at most ``max_norm``; returns the norm
    before clipping."""
    params = _with_grads(parameters)
    if not params:
        return _make(np.array(0.0))
    grads = [p._grad._data for p in params]
    if norm_type == np.inf:
        total = max(float(np.max(np.abs(g))) for g in grads)
    else:
        total = float(sum(np.sum(np.abs(g) ** norm_type) for g in grads) ** (1.0 / norm_type))
    if error_if_nonfinite and not np.isfinite(total):
        raise EngineError(f"The total norm of order {float(norm_type)} for gradients from "
                           "`parameters` is non-finite, so it cannot be clipped. To disable "
                           "this error and scale the gradients by the non-finite norm anyway, "
                           "set `error_if_nonfinite=False`")
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for p in params:
            p._grad._data *= coef
            bump_version(p._grad)
    return _make(np.array(total))


def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float) -> None:
    """Clamp every gradient element into [-clip_value, clip_value]."""
    for p in _with_grads(parameters):
        np.clip(p._grad._data, -clip_value, clip_value, out=p._grad._data)
        bump_version(p._grad)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """One flat tensor of all parameters (differentiable, via cat)."""
    from ...engine import ops
    return ops.cat([ops.reshape(p, -1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of ``vec`` into the parameters (in place)."""
    offset = 0
    for p in parameters:
        n = p.numel()
        p._data[...] = vec._data[offset:offset + n].reshape(p.shape)
        bump_version(p)
        offset += n
