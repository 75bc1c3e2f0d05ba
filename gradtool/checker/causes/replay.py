"""Causes found by replaying a custom Function's backward with one change: a tensor it
reads replaced by another, a reduction given keepdim or another dim, a factor added to one
term of a sum."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ...engine import primitive as P
from ...engine.grad_mode import no_grad
from ...engine.tensor import Tensor, _make
from .common import (MAX_FACTORS, MAX_REPAIRS, MAX_ROWS, MAX_SINGLE, REDUCTIONS, REFLECTED, Cause,
                     close, directions, fmt, max_error, near, torch_mode)

if TYPE_CHECKING:
    from .probe import Probe


# ---- a repaired backward ---------------------------------------------------------------------
def repaired_backward(A, N, atol, rtol, in_shape, out_shape, probe):
    """A tensor replaced, or a reduction changed (cheap to try, and common)."""
    return _replay(A, N, atol, rtol, out_shape, probe, _repairs)


def missing_factor(A, N, atol, rtol, in_shape, out_shape, probe):
    """A factor missing on one term of the backward (tried last: the most hypotheses)."""
    return _replay(A, N, atol, rtol, out_shape, probe, _factor_repairs)


def _replay(A, N, atol, rtol, out_shape, probe, hypotheses_of):
    if probe is None:
        return None
    runner = probe.backward_runner()
    if runner is None:
        return None
    runner.first_row = A[0]
    calls = runner.recorded()
    if calls is None:
        return None
    hypotheses = hypotheses_of(calls, probe)
    if not hypotheses:
        return None
    vs = directions(0, out_shape, A.shape[1])
    want = [v.reshape(-1) @ N for v in vs]
    for description, evidence, rewrite in hypotheses[:MAX_REPAIRS]:
        got = [runner.vjp(v, rewrite) for v in vs]
        if any(g is None for g in got):
            continue
        if not all(near(g.reshape(-1), w, atol) for g, w in zip(got, want)):
            continue
        full = runner.jacobian(N.shape, rewrite)
        if full is not None and not close(full, N, atol, rtol):
            full = runner.jacobian(N.shape, rewrite, batched_first=False)   # row by row
        if full is None or not close(full, N, atol, rtol):
            continue
        evidence["max_error_repaired"] = max_error(full, N)
        return Cause(evidence.pop("kind"), description +
                     f" (repaired, the backward matches the numerical Jacobian: max error "
                     f"{fmt(evidence['max_error_repaired'])})", evidence)
    return None


def _repairs(calls, probe) -> list:
    """(description, evidence, rewrite) per hypothesis, in the order tried."""
    tensors = probe.candidate_tensors()
    out = []
    # a tensor the backward reads, replaced by another of the same shape
    uses: dict = {}
    for index, call in enumerate(calls):
        for pos, value in call.tensors:
            label = next((lb for lb, cand in tensors if cand is value), None) or \
                next((lb for lb, cand in tensors
                      if value.shape == cand.shape and np.array_equal(value, cand)), None)
            if label is not None:
                uses.setdefault(label, []).append((index, pos, call.name))
    for source, occurrences in uses.items():
        source_value = dict(tensors)[source]
        for target, cand in tensors:
            if target == source or cand.shape != source_value.shape or \
                    np.array_equal(cand, source_value):
                continue
            ops = sorted({name for _, _, name in occurrences})
            where = ", ".join(f"{name}({source})" if name else source for name in ops)
            choices = [(occurrences, where)]
            if len(occurrences) > 1:     # one function call reading it (sigmoid(out))
                names = [occ[2] for occ in occurrences]
                choices += [([occ], f"{occ[2]}({source}), call {occ[0] + 1} of the backward")
                            for occ in occurrences if len(calls[occ[0]].tensors) == 1
                            and names.count(occ[2]) == 1]
                choices = choices[:1 + MAX_SINGLE]
            for chosen, text in choices:
                sites = {(i, p) for i, p, _ in chosen}
                out.append((f"wrong tensor in the backward: it uses {source} where {target} "
                            f"is due (in {text})",
                            {"kind": "wrong_tensor", "uses": source, "due": target,
                             "ops": sorted({n for _, _, n in chosen})},
                            Rewrite(substitute=dict.fromkeys(sites, cand))))
    # reductions: keepdim, another dim
    for index, call in enumerate(calls):
        if call.reduction is None:
            continue
        dim, keepdim, ndim = call.reduction
        if dim is None or ndim < 1:
            continue
        if not keepdim:
            out.append((f"reduction without keepdim: the backward's {call.name}(dim={dim}) "
                        "drops the reduced dimension, so its result broadcasts along the "
                        "wrong axis (keepdim=True is due)",
                        {"kind": "reduction", "op": call.name, "dim": dim, "fix":
                         "keepdim=True"}, Rewrite(reduction={index: (dim, True)})))
        if isinstance(dim, int) and ndim >= 2:
            for other in range(ndim):
                if other in (dim, dim + ndim):
                    continue
                out.append((f"wrong reduction axis: the backward's {call.name} reduces dim "
                            f"{dim} where dim {other} is due",
                            {"kind": "reduction", "op": call.name, "dim": dim,
                             "fix": f"dim={other}"},
                            Rewrite(reduction={index: (other, keepdim)})))
    return out


SUMS = ("add", "sub", "radd", "rsub", "__add__", "__sub__", "__radd__", "__rsub__")


def _factor_repairs(calls, probe) -> list:
    """A factor missing on one operand of a sum or difference in the backward (one term of
    the backward formula): the operand times an input, an output, or a value the backward
    computed from them alone.  Sums of gradient terms first (``dx - q``), then the others
    (``cdf + x * pdf``); at most ``MAX_FACTORS``."""
    known = list(probe.candidate_tensors())
    computed = [(i, c.desc, c.result) for i, c in enumerate(calls)
                if c.grad_free and c.result is not None and c.result.ndim > 0 and
                not any(np.array_equal(c.result, v) for _, v in known
                        if v.shape == c.result.shape)]
    sums = [i for i, c in enumerate(calls) if c.name in SUMS and c.tensors]
    sums.sort(key=lambda i: calls[i].grad_free)       # gradient terms first (stable)
    out = []
    for index in sums:
        call = calls[index]
        # the inputs and outputs, and what the backward computed from them before the sum
        factors = known + [(desc, value) for i, desc, value in computed if i < index]
        operands = call.desc[call.desc.index("(") + 1:-1].split(", ")
        for pos, value in call.tensors:
            shown = operands[pos] if pos < len(operands) else "an operand"
            for label, factor in factors:
                try:       # the term keeps the shape of the sum
                    fits = np.broadcast_shapes(value.shape, factor.shape) in \
                        (value.shape, () if call.result is None else call.result.shape)
                except ValueError:
                    fits = False
                if not fits or np.all(factor == 1) or label == shown:
                    continue
                out.append((f"a factor missing in one term of the backward: in "
                            f"{call.desc} (backward op {index + 1}), {shown} needs the "
                            f"factor {label}",
                            {"kind": "missing_factor", "op": call.desc, "operand": shown,
                             "factor": label},
                            Rewrite(scale={(index, pos): factor})))
    return out[:MAX_FACTORS]


@dataclass
class Call:
    """One op call of a backward, as recorded: its name, its tensor arguments (position,
    value) and, for a reduction, (dim, keepdim, ndim of the reduced tensor)."""
    name: str
    tensors: list
    reduction: tuple | None = None
    result: np.ndarray | None = None    # its value (float64)
    grad_free: bool = False             # computed without the cotangent (saved values only)
    desc: str = ""                      # "sqrt(out)", "sub(op 2, op 5)"


@dataclass
class Rewrite:
    """Changes to a backward's op calls, by call index: tensor arguments replaced
    ({(call, position): value}) and reductions given (dim, keepdim)."""
    substitute: dict = field(default_factory=dict)
    reduction: dict = field(default_factory=dict)
    scale: dict = field(default_factory=dict)      # {(call, position): factor}
    calls: frozenset = frozenset()      # the call indices changed (filled in)

    def __post_init__(self) -> None:
        self.calls = frozenset(i for i, _ in self.substitute) | frozenset(self.reduction) \
            | frozenset(i for i, _ in self.scale)


class _Runner:
    """Replays a custom Function's backward for one cotangent, with a :class:`Rewrite`."""

    def __init__(self, probe: Probe, node, index: int) -> None:
        self.probe, self.node, self.index = probe, node, index
        self.first_row = np.zeros(0)     # the analytical block's first row (set by _replay)

    def recorded(self):
        """The backward's calls, recorded once (None if the backward fails)."""
        if not hasattr(self, "_calls"):
            self._calls = self.record()
        return self._calls

    def record(self):
        """The calls of one replay (cotangent: the first one-hot row), or None when the
        replay fails or does not give the checker's first row of the analytical block (a
        random backward, or one that is not a function of the cotangent alone: then no
        replay means anything)."""
        calls = []
        v = np.zeros(self.probe.checker.out_data[self.probe.o].shape)
        v.reshape(-1)[0] = 1.0
        g = self._run(v, None, calls)
        if g is None or g.size != self.first_row.size:
            return None
        dtype = np.asarray(self.probe.checker.out_data[self.probe.o]).dtype
        tol = max(1e-9, 100 * float(np.finfo(dtype).eps)) if dtype.kind == "f" else 1e-9
        scale = float(np.max(np.abs(self.first_row))) if self.first_row.size else 0.0
        if not np.all(np.abs(g.reshape(-1) - self.first_row) <= tol * scale + 1e-300):
            return None
        return calls

    def vjp(self, v, rewrite):
        return self._run(v, rewrite, None)

    def jacobian(self, shape, rewrite, batched_first=True):
        rows, _ = shape
        out_shape = self.probe.checker.out_data[self.probe.o].shape
        if rows >= 4 and batched_first:
            # one call with every row as a batch (many backwards broadcast over a leading
            # axis); the caller compares it with the numerical Jacobian, and has compared
            # a plain call already (the screening), so a batch that means something else
            # cannot pass both
            eye = np.eye(rows).reshape((rows,) + tuple(out_shape))
            batch = self._run(eye, rewrite, None, batched=True)
            if batch is not None and batch.size == rows * shape[1]:
                return batch.reshape(rows, -1)
        if rows > MAX_ROWS:
            return None
        result = np.zeros(shape)
        for r in range(rows):
            v = np.zeros(rows)
            v[r] = 1.0
            g = self._run(v.reshape(out_shape), rewrite, None)
            if g is None:
                return None
            result[r] = g.reshape(-1)
        return result

    def _run(self, v, rewrite, calls, batched=False):
        try:
            with np.errstate(all="ignore"):
                return self._backward(v, rewrite, calls, batched)
        except Exception:  # noqa: BLE001  (a rewrite can break the user's code: rejected)
            return None


def _rewritten(index, tensors, reduction, rewrite, calls, name, ndim):
    """Record a call, and return (replacements {position: array}, factors {position:
    array}, new reduction or None)."""
    if calls is not None:
        calls.append(Call(name, tensors, None if reduction is None else
                          (reduction[0], reduction[1], ndim)))
    if rewrite is None:
        return {}, {}, None
    subs = {pos: value for (i, pos), value in rewrite.substitute.items() if i == index}
    scale = {pos: value for (i, pos), value in rewrite.scale.items() if i == index}
    return subs, scale, rewrite.reduction.get(index)


class _Trace:
    """What a recording replay learns about the values: which depend on the cotangent,
    and how to call each (an input or output by its label, else ``op k``)."""

    def __init__(self, probe: Probe, grad_ids) -> None:
        self.candidates = probe.candidate_tensors()
        self.grad_ids = set(grad_ids)
        self.names: dict = {}
        self.live: list = []

    def name(self, obj, value) -> str:
        if id(obj) in self.names:
            return self.names[id(obj)]
        if value is not None:
            for label, cand in self.candidates:       # the same array: no comparison
                if cand is value:
                    return label
            for label, cand in self.candidates:
                if cand.shape == value.shape and np.array_equal(cand, value):
                    return label
        return "grad" if id(obj) in self.grad_ids else "a tensor"

    def finish(self, call: Call, index: int, args, values: dict, result, value) -> None:
        depends = any(id(a) in self.grad_ids for a in args)
        shown = []
        for pos, a in enumerate(args):
            if pos in values:
                shown.append(self.name(a, values[pos]))
            elif isinstance(a, (int, float, np.number)) and not isinstance(a, bool):
                shown.append(f"{float(a):g}")
        name = REFLECTED.get(call.name.strip("_"), call.name.strip("_"))
        call.desc = f"{name}({', '.join(shown)})"
        call.result, call.grad_free = value, not depends
        self.live.append(result)
        if depends:
            self.grad_ids.add(id(result))
            self.names[id(result)] = f"op {index + 1}"
        else:                      # a value of the saved tensors: named by what it is
            self.names[id(result)] = call.desc


class GtRunner(_Runner):
    def _backward(self, v, rewrite, calls, batched):
        counter = [0]

        def hook(prim, args, params):
            index = counter[0]
            counter[0] += 1
            if calls is None and (rewrite is None or index not in rewrite.calls):
                return P.apply(prim, args, params)
            tensors = [(pos, np.asarray(a._data, dtype=np.float64)) for pos, a in
                       enumerate(args) if isinstance(a, Tensor)] if calls is not None else []
            reduction = None
            if prim.name in ("sum_dim", "mean_dim"):
                reduction = (_one_dim(params.get("dim")), bool(params.get("keepdim")))
            ndim = args[0].ndim if args and isinstance(args[0], Tensor) else 0
            subs, scale, new_red = _rewritten(index, tensors, reduction, rewrite, calls,
                                              prim.name.replace("_dim", ""), ndim)
            if subs:
                args = tuple(_make(subs[pos].astype(a._data.dtype)) if pos in subs else a
                             for pos, a in enumerate(args))
            if scale:
                args = tuple(_make(a._data * scale[pos].astype(a._data.dtype))
                             if pos in scale else a for pos, a in enumerate(args))
            if new_red is not None:
                params = {**params, "dim": _dims(new_red[0]), "keepdim": new_red[1]}
            result = P.apply(prim, args, params)
            if trace is not None and isinstance(result, Tensor):
                trace.finish(calls[-1], index, args, dict(tensors), result,
                             np.asarray(result._data, dtype=np.float64))
            return result

        out = self.probe.checker.outs[self.probe.o]
        grad = _make(np.asarray(v, dtype=out._data.dtype))
        # the other outputs of the Function get no gradient (None: zeros for its backward)
        grads_in = [grad if k == out._nr else None for k in range(self.node._n_outputs)]
        if batched and len(grads_in) > 1:
            return None
        trace = None if calls is None else _Trace(self.probe, [id(grad)])
        P.INTERCEPTORS.append(hook)
        try:
            with no_grad():
                grads = self.node._call(grads_in, False, batched)
        finally:
            P.INTERCEPTORS.remove(hook)
        g = grads[self.index]
        return None if g is None else np.asarray(g, dtype=np.float64)


def _dims(dim):
    return dim if isinstance(dim, tuple) else (dim,)


def _one_dim(dim):
    """A reduction's dim as an int when it is one axis (``(0,)`` -> 0)."""
    if isinstance(dim, (tuple, list)) and len(dim) == 1:
        dim = dim[0]
    return int(dim) if isinstance(dim, (int, np.integer)) else dim


class TorchRunner(_Runner):
    def _backward(self, v, rewrite, calls, batched):
        torch = self.probe.torch
        counter = [0]

        def handler(func, args, kwargs):
            name = getattr(func, "__name__", "")
            if not any(isinstance(a, torch.Tensor) for a in args):
                return func(*args, **kwargs)
            index = counter[0]
            counter[0] += 1
            if calls is None and (rewrite is None or index not in rewrite.calls):
                return func(*args, **kwargs)
            tensors = [(pos, a.detach().numpy().astype(np.float64))
                       for pos, a in enumerate(args) if isinstance(a, torch.Tensor)] \
                if calls is not None else []
            reduction = None
            if name in REDUCTIONS:
                dim = args[1] if len(args) > 1 else kwargs.get("dim")
                keep = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
                if dim is not None:
                    reduction = (_one_dim(dim), bool(keep))
            ndim = args[0].ndim if isinstance(args[0], torch.Tensor) else 0
            subs, scale, new_red = _rewritten(index, tensors, reduction, rewrite, calls,
                                              name, ndim)
            if subs:
                args = tuple(torch.from_numpy(subs[p].astype(np.float64)).to(a.dtype)
                             if p in subs else a for p, a in enumerate(args))
            if scale:
                args = tuple(a * torch.from_numpy(scale[p].astype(np.float64)).to(a.dtype)
                             if p in scale else a for p, a in enumerate(args))
            if new_red is not None:
                args = tuple(args[:1])
                kwargs = {**{k: w for k, w in kwargs.items()
                             if k not in ("dim", "keepdim")},
                          "dim": new_red[0], "keepdim": new_red[1]}
            result = func(*args, **kwargs)
            if trace is not None and isinstance(result, torch.Tensor):
                trace.finish(calls[-1], index, args, dict(tensors), result,
                             result.detach().numpy().astype(np.float64))
            return result

        out = self.probe.checker.outs[self.probe.o]
        grad = torch.from_numpy(np.array(v, dtype=np.float64)).to(out.dtype)
        siblings = {t.output_nr: t for t in self.probe.checker.outs
                    if isinstance(t, torch.Tensor) and t.grad_fn is self.node}
        if max(siblings) + 1 != len(siblings):
            return None        # an output of the Function the check does not return
        if len(siblings) > 1:
            if batched:
                return None
            grad = tuple(grad if k == out.output_nr else torch.zeros_like(siblings[k])
                         for k in range(len(siblings)))
        else:
            grad = (grad,)
        trace = None if calls is None else _Trace(self.probe, [id(g) for g in grad])
        with torch.no_grad(), torch_mode(handler):
            # the node is the ctx: a batch of cotangents goes to the Function's backward
            # directly (the node's apply would refuse the batch's shape)
            grads = self.node._forward_cls.backward(self.node, *grad) if batched else \
                self.node.apply(*grad)
        grads = grads if isinstance(grads, tuple) else (grads,)
        g = grads[self.index] if self.index < len(grads) else None
        return None if g is None else g.detach().numpy().astype(np.float64)
