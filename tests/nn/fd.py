"""A small finite-difference gradient checker for the nn tests (independent of gt.gradcheck,
so the layers are checked by something that shares no code with the engine's rules)."""

from __future__ import annotations

import numpy as np

import gradtool as gt


def numerical_vjp(fn, inputs: list, cotangent: np.ndarray, eps: float = 1e-6) -> list:
    """vᵀJ of ``fn`` (Tensors -> Tensor) for each input, by central differences."""
    grads = []
    for x in inputs:
        arr = x._data
        g = np.zeros_like(arr)
        flat = arr.reshape(-1)
        for k in range(flat.size):
            old = flat[k]
            flat[k] = old + eps
            up = np.sum(fn()._data * cotangent)
            flat[k] = old - eps
            down = np.sum(fn()._data * cotangent)
            flat[k] = old
            g.reshape(-1)[k] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


def check_grads(fn, inputs: list, rtol: float = 1e-6, atol: float = 1e-7, seed: int = 0) -> None:
    """Compare the engine's backward of ``fn`` with central differences for every input
    (Tensors that require grad; a layer's parameters count as inputs)."""
    out = fn()
    v = np.random.default_rng(seed).standard_normal(out.shape)
    analytic = gt.autograd.grad(out, inputs, gt.tensor(v), allow_unused=True)
    numeric = numerical_vjp(fn, inputs, v)
    for i, (a, n) in enumerate(zip(analytic, numeric)):
        a = np.zeros_like(n) if a is None else a._data
        np.testing.assert_allclose(a, n, rtol=rtol, atol=atol, err_msg=f"input {i}")
