"""Causes found by evaluating the function elsewhere: at another point (the derivative at
out, not at x), or with one op of its forward held at its value (one term wrong)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...engine import primitive as P
from ...engine.function import FunctionCtx
from ...engine.grad_mode import enable_grad
from ...engine.tensor import Tensor, _make
from .common import (MAX_FROZEN, MAX_POINTS, REFLECTED, SCREEN, Cause, close, directions, fmt,
                     max_error, near, torch_mode)

if TYPE_CHECKING:
    from .probe import Probe


# ---- wrong evaluation point ------------------------------------------------------------------
def evaluation_point(A, N, atol, rtol, in_shape, out_shape, probe):
    # a custom Function's backward evaluated at out is a tensor replaced in its replay
    # (tried before): this test is for the functions gradtool cannot replay
    runner = None if probe is None else probe.backward_runner()
    if probe is None or (runner is not None and getattr(runner, "_calls", None) is not None):
        return None
    x_label = probe.input_label()
    x = probe.input_value()
    if x is None:
        return None
    us = directions(1, in_shape, A.shape[0])
    a_u = np.stack([A @ u.reshape(-1) for u in us])
    tried = 0
    for label, value in probe.candidate_tensors():
        if value.shape != x.shape or np.array_equal(value, x) or label == x_label:
            continue
        if tried >= MAX_POINTS:
            break
        tried += 1
        try:
            n_u = probe.directional_at(value, us)
        except Exception:  # noqa: BLE001  (the function fails at that point: not it)
            continue
        if not all(near(a, n, atol) for a, n in zip(a_u, n_u)):
            continue
        try:
            full = probe.jacobian_at(value)
        except Exception:  # noqa: BLE001
            continue
        if not close(A, full, atol, rtol):
            continue
        return Cause("evaluation_point", f"wrong evaluation point: the backward evaluates "
                     f"the derivative at {label}, not at {x_label} (analytical = the "
                     f"numerical Jacobian with {x_label} := {label}, max error "
                     f"{fmt(max_error(A, full))})", {"at": label, "due": x_label,
                                                    "max_error": max_error(A, full)})
    return None


# ---- one term wrong --------------------------------------------------------------------------
def one_term(A, N, atol, rtol, in_shape, out_shape, probe):
    if probe is None:
        return None
    parts = probe.term_parts()
    if not parts:
        return None
    us = directions(2, in_shape, A.shape[0])
    n_u = np.stack([N @ u.reshape(-1) for u in us]).reshape(-1)
    err = np.stack([A @ u.reshape(-1) for u in us]).reshape(-1) - n_u
    scale = float(np.linalg.norm(n_u))
    for part in parts:
        without = part.directional_without(us)       # J u with the part removed
        if without is None:
            continue
        through = n_u - without.reshape(-1)          # the part's own J u
        for piece, label in ((through, part.label), (n_u - through, part.rest_label)):
            pp = float(np.vdot(piece, piece))
            if pp <= (SCREEN * scale) ** 2 or label is None:
                continue
            c = float(np.vdot(err, piece)) / pp
            if abs(c) < 1e-6 or np.linalg.norm(err - c * piece) > \
                    SCREEN * max(scale, 1e-300) + atol * np.sqrt(err.size):
                continue
            full_without = part.jacobian_without()
            if full_without is None:
                continue
            T = N - full_without if piece is through else full_without
            # a part at one entry only explains any error at that entry: not evidence
            if np.count_nonzero(np.abs(T) > atol) < 2 or close(T, N, atol, rtol):
                continue
            c_full = float(np.vdot(A - N, T) / np.vdot(T, T))
            if not close(A, N + c_full * T, atol, rtol):
                continue
            return _term_cause(label, 1.0 + c_full, T)
    return None


def _term_cause(label: str, s: float, T: np.ndarray) -> Cause:
    evidence = {"term": label, "scale": s, "max_term": float(np.max(np.abs(T)))}
    if abs(s) < 1e-3:
        what = "is missing from the backward (analytical = true - this term)"
    elif abs(s + 1) < 1e-3:
        what = "has its sign flipped (analytical = true - 2 x this term)"
    else:
        inv = 1.0 / s
        near = round(inv) if abs(inv - round(inv)) < 1e-3 * abs(inv) else None
        if near is not None and near not in (0, 1, -1) and abs(s) < 1:
            what = f"is missing its factor {near} (analytical has {fmt(s)} x this term)"
        else:
            what = f"is scaled by {fmt(s)} (a factor {fmt(s)} too many?)"
    return Cause("term", f"one term wrong: {label} {what}; the rest agrees",
                 evidence, factor=s)


# ---- the forward, split into parts -----------------------------------------------------------
class _Part:
    """A part of the Jacobian: the derivative through one op (or one term of a formula)."""

    def __init__(self, probe: Probe, label: str, rest_label, fn, frozen: bool) -> None:
        self.probe, self.label, self.rest_label, self.fn = probe, label, rest_label, fn
        self.frozen = frozen     # an op held at its value: the output there is unchanged

    def directional_without(self, us):
        try:      # freezing an op does not change the value where it is frozen
            base = np.asarray(self.probe.checker.out_data[self.probe.o],
                              dtype=np.float64).reshape(-1) if self.frozen else None
            return self.probe.directional_at(None, us, fn=self.fn, base=base)
        except Exception:  # noqa: BLE001  (user code meeting the frozen op: no part)
            return None

    def jacobian_without(self):
        if not hasattr(self, "_jacobian"):
            try:
                self._jacobian = self.probe.jacobian_at(None, fn=self.fn)
            except Exception:  # noqa: BLE001  (user code meeting the frozen op: no part)
                self._jacobian = None
        return self._jacobian


def op_parts(probe: Probe) -> list:
    """One part per forward op that depends on input j (frozen: held at its value)."""
    c = probe.checker
    ops = _record_forward(probe)
    if not ops:
        return []
    out_value = np.asarray(c.out_data[probe.o], dtype=np.float64)
    parts = []
    for index, (name, value, depends) in enumerate(ops):
        if not depends or (value.shape == out_value.shape and
                           np.array_equal(value, out_value)):
            continue
        op = f"{name} (forward op {index + 1} of {len(ops)})"
        parts.append(_Part(probe, f"the part of the derivative through {op}",
                           f"the part of the derivative not through {op}",
                           _frozen(probe, index, value), True))
        if len(parts) >= MAX_FROZEN:
            break
    return parts


def _record_forward(probe: Probe) -> list:
    """(op name, output value, depends on input j) for each op of one plain forward call."""
    c = probe.checker
    ops = []
    if probe.torch is not None:
        torch = probe.torch
        from ..torch_bridge import plain_args     # as the numerical side calls it
        args = plain_args(torch, c.inputs, {})
        live = [args[probe.j]]
        dependent = {id(args[probe.j])}
        names = {id(a): c.names[i] for i, a in enumerate(args) if isinstance(a, torch.Tensor)}

        def handler(func, fargs, kwargs):
            result = func(*fargs, **kwargs)
            if isinstance(result, torch.Tensor) and result.dtype.is_floating_point:
                dep = any(id(a) in dependent for a in fargs)
                if dep:
                    dependent.add(id(result))
                live.append(result)
                ops.append((_describe(getattr(func, "__name__", "op"), fargs, names),
                            result.detach().numpy().astype(np.float64), dep))
                names[id(result)] = f"op {len(ops)}"
            return result

        with torch.enable_grad(), torch_mode(handler):
            c.fn(*args)
        return ops
    ev = probe.evaluator()
    args = ev.plain_args(cast=np.float64 if c.upcast else None)
    live = [args[probe.j]]
    dependent = {id(args[probe.j])}
    names = {id(a): c.names[i] for i, a in enumerate(args) if isinstance(a, Tensor)}

    def hook(prim, pargs, params):
        result = P.apply(prim, pargs, params)
        if isinstance(result, Tensor) and result._data.dtype.kind == "f":
            dep = any(id(a) in dependent for a in pargs)
            if dep:
                dependent.add(id(result))
            live.append(result)
            ops.append((_describe(prim.name, pargs, names),
                        np.asarray(result._data, dtype=np.float64), dep))
            names[id(result)] = f"op {len(ops)}"
        return result

    P.INTERCEPTORS.append(hook)
    try:
        with enable_grad():     # as numeric.Evaluator.call
            c.fn(*args)
    finally:
        P.INTERCEPTORS.remove(hook)
    return ops


def _describe(name: str, args, names: dict) -> str:
    """``mul(0.5, x)``: an op call with its operands (inputs by name, earlier ops as
    ``op k``, numbers as written)."""
    name = name.strip("_")
    shown = []
    for a in args:
        if id(a) in names:
            shown.append(names[id(a)])
        elif isinstance(a, (int, float, np.number)) and not isinstance(a, bool):
            shown.append(f"{float(a):g}")
        elif isinstance(a, (tuple, list)) or a is None:
            continue
        else:
            shown.append("a tensor" if hasattr(a, "shape") else str(a)[:20])
    if name.startswith("r") and name in REFLECTED and name != "truediv":
        shown.reverse()
    name = REFLECTED.get(name, name)
    return f"{name}({', '.join(shown)})"


def _frozen(probe: Probe, index: int, value: np.ndarray):
    """fn with forward op ``index`` returning its recorded value (a constant)."""
    c = probe.checker
    if probe.torch is not None:
        torch = probe.torch

        def frozen_torch(*args):
            counter = [0]

            def handler(func, fargs, kwargs):
                result = func(*fargs, **kwargs)
                if isinstance(result, torch.Tensor) and result.dtype.is_floating_point:
                    k = counter[0]
                    counter[0] += 1
                    if k == index:
                        return torch.from_numpy(value.copy()).to(result.dtype)
                return result

            with torch_mode(handler):
                return c.fn(*args)
        return frozen_torch

    def frozen(*args):
        counter = [0]

        def hook(prim, pargs, params):
            result = P.apply(prim, pargs, params)
            if isinstance(result, Tensor) and result._data.dtype.kind == "f":
                k = counter[0]
                counter[0] += 1
                if k == index:
                    return _make(value.astype(result._data.dtype))
            return result

        P.INTERCEPTORS.append(hook)
        try:
            return c.fn(*args)
        finally:
            P.INTERCEPTORS.remove(hook)
    return frozen


def spec_parts(probe: Probe) -> list:
    """One part per additive term of the forward of a spec formula Function that output o
    comes from directly (the terms are named by their source)."""
    if probe.torch is not None:
        return []
    node = probe.checker.outs[probe.o].grad_fn
    cls = getattr(node, "_fn_cls", None) if isinstance(node, FunctionCtx) else None
    if getattr(cls, "spec_definition", None) is None:
        return []
    terms = cls.spec_forward_terms()      # the spec's Function class splits its forward
    if len(terms) < 2:
        return []
    parts = []
    fn = probe.checker.fn
    for i, text in enumerate(terms):
        def without(*args, _i=i):
            with cls.spec_term_dropped(_i):
                return fn(*args)
        parts.append(_Part(probe, f"the term `{text}`", None, without, False))
    return parts
