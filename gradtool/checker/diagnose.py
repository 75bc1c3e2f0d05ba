"""Compare an analytical Jacobian block with a numerical one, and say in words what is wrong.

The test is PyTorch's: ``|analytical - numerical| <= atol + rtol * |numerical|`` elementwise.
When it fails, the diagnosis tries, in order: NaN/Inf on either side; failures only at
non-differentiable points (the function uses an op with a kink and the one-sided differences
disagree at every failing element); an unstable numerical derivative (the estimate moves
with eps: then no comparison means anything); a gradient that is missing (analytical zero)
or spurious (numerical zero); a sign error; a constant factor; a transposed block; then the
causes of :mod:`.causes` (a factor along one axis, only the diagonal, a repaired backward, a
region, a wrong evaluation point, one term wrong), each verified; else a plain mismatch with
the worst element.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .causes import find_cause

MAX_NAMED = 5   # elements named in a diagnosis


@dataclass
class Comparison:
    passed: bool
    max_abs: float
    max_rel: float
    worst: tuple | None          # (row, col) in the (out size, in size) block
    failing: np.ndarray          # bool mask of failing entries


COMPARE_CHUNK = 1 << 16    # entries per pass (cache-sized; the blocks can be 10^7 entries)


def compare(analytical: np.ndarray, numerical: np.ndarray, atol: float,
            rtol: float, support=None) -> Comparison:
    """Elementwise allclose with the worst entry (largest error relative to its tolerance).

    Streamed: one pass over the two blocks in cache-sized chunks, in which only the entries
    where the two sides differ (typically few: the zeros of a sparse Jacobian agree) are
    looked at further; nothing of the blocks' size is allocated unless entries fail.
    ``support``: sorted flat positions outside which both blocks are known to hold exact
    zeros (a Jacobian built by its structure): then only those entries are read, with the
    same result as the whole pass."""
    if analytical.size == 0:
        return Comparison(True, 0.0, 0.0, None, np.zeros(analytical.shape, bool))
    A = analytical.reshape(-1)
    N = numerical.reshape(-1)
    state = _Running(A.size)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if support is None:
            _compare_dense(A, N, atol, rtol, state)
        else:
            _compare_support(A, N, np.asarray(support, dtype=np.int64), atol, rtol, state)
    max_abs = state.max_abs
    if state.failing is not None and max_abs == max_abs and _any_inf(A, N, support):
        max_abs = float("inf")
    index = np.unravel_index(state.worst, analytical.shape)
    if state.failing is None:
        return Comparison(True, max_abs, state.max_rel, tuple(int(i) for i in index),
                          np.zeros(analytical.shape, dtype=bool))
    return Comparison(False, max_abs, state.max_rel, tuple(int(i) for i in index),
                      state.failing.reshape(analytical.shape))


class _Running:
    """What the chunks of a comparison found so far."""

    __slots__ = ("size", "failing", "max_abs", "max_rel", "worst", "worst_score")

    def __init__(self, size: int) -> None:
        self.size = size
        self.failing = None          # bool mask over the block, made at the first failure
        self.max_abs = self.max_rel = 0.0
        self.worst, self.worst_score = 0, -1.0

    def chunk(self, start: int, pos, dd, nn, atol: float, rtol: float) -> None:
        """One chunk starting at flat position ``start``: its differing entries at ``pos``
        (offsets from ``start``; None: all of the chunk), their |A - N| and N."""
        bound = np.abs(nn)
        rel = dd / np.maximum(bound, atol)
        bound *= rtol
        bound += atol
        ok = dd <= bound                      # NaN fails
        dmax, rmax = float(dd.max()), float(rel.max())
        if dmax != dmax or rmax != rmax:      # NaN among the differences
            self.max_abs, self.max_rel = float("nan"), float("nan")
        elif self.max_abs == self.max_abs:
            self.max_abs, self.max_rel = max(self.max_abs, dmax), max(self.max_rel, rmax)
        if not ok.all():
            if self.failing is None:
                self.failing = np.zeros(self.size, dtype=bool)
            idx = np.flatnonzero(~ok)
            score = dd[idx] / bound[idx]
            score[np.isnan(score)] = np.inf
            i = int(np.argmax(score))
            where = idx[i] if pos is None else pos[idx[i]]
            self.failing[start + (idx if pos is None else pos[idx])] = True
            if score[i] > self.worst_score:
                self.worst, self.worst_score = start + int(where), float(score[i])
        elif self.failing is None and dmax == self.max_abs:
            j = int(np.argmax(dd))
            self.worst = start + (j if pos is None else int(pos[j]))


def _compare_dense(A, N, atol, rtol, state: _Running) -> None:
    n = A.size
    step = min(n, COMPARE_CHUNK)
    diff = np.empty(step)
    differs = np.empty(step, dtype=bool)
    for start in range(0, n, step):
        m = min(step, n - start)
        d, mask = diff[:m], differs[:m]
        np.subtract(A[start:start + m], N[start:start + m], out=d)
        np.not_equal(d, 0.0, out=mask)        # NaN (also inf - inf) differs
        nonzero = np.count_nonzero(mask)
        if nonzero == 0:
            continue
        if nonzero * 4 < m:        # sparse: look at the differing entries only
            pos = np.flatnonzero(mask)
            state.chunk(start, pos, np.abs(d[pos]), N[start + pos], atol, rtol)
        else:
            np.abs(d, out=d)
            state.chunk(start, None, d, N[start:start + m], atol, rtol)


def _compare_support(A, N, support, atol, rtol, state: _Running) -> None:
    """The dense pass's result from the support's entries: chunk by chunk (the same chunks,
    so ties between equal errors resolve the same way), differing entries only."""
    if not support.size:
        return
    d = A[support] - N[support]
    keep = d != 0.0
    flat, d = support[keep], np.abs(d[keep])
    if not flat.size:
        return
    chunk_of = flat // COMPARE_CHUNK
    cuts = np.flatnonzero(np.diff(chunk_of)) + 1
    for lo, hi in zip(np.concatenate(([0], cuts)), np.concatenate((cuts, [flat.size]))):
        start = int(chunk_of[lo]) * COMPARE_CHUNK
        pos = flat[lo:hi] - start
        state.chunk(start, pos, d[lo:hi], N[flat[lo:hi]], atol, rtol)


def _any_inf(A, N, support) -> bool:
    if support is None:
        return bool(np.isinf(A).any() or np.isinf(N).any())
    return bool(np.isinf(A[support]).any() or np.isinf(N[support]).any())


def _close(a, b, atol, rtol) -> bool:
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))


def _elements(cols, in_shape) -> list:
    return [tuple(int(i) for i in np.unravel_index(int(c), in_shape)) if in_shape else ()
            for c in cols]


def _fmt(index) -> str:
    return "[" + ", ".join(map(str, index)) + "]"


def _named(elements, total=None) -> str:
    shown = ", ".join(_fmt(e) for e in elements[:MAX_NAMED])
    n = len(elements) if total is None else total
    if n > MAX_NAMED:
        shown += f" and {n - MAX_NAMED} more"
    return shown


@dataclass
class Diagnosis:
    kind: str
    text: str
    factor: float | None = None
    elements: list | None = None
    evidence: dict | None = None     # the numbers behind a cause of .causes


def diagnose(analytical: np.ndarray, numerical: np.ndarray, cmp: Comparison, atol: float,
             rtol: float, in_shape: tuple, out_shape: tuple, *, unused: bool = False,
             kink_probe=None, stability_probe=None, kink_ops=(),
             determinism_probe=None, cause_probe=None) -> Diagnosis:
    """Why a failing block fails (see the module docstring for the order of the tests).
    ``determinism_probe()``: the largest difference between two calls of the function at
    the same inputs (nonzero: a random function, which no finite difference can check).
    ``cause_probe``: a :class:`.causes.Probe` (the function, its inputs and outputs), for
    the causes that need more than the two matrices."""
    A, N = analytical, numerical
    bad_n = ~np.isfinite(N)
    bad_a = ~np.isfinite(A)
    if bad_n.any() or bad_a.any():
        parts = []
        for side, mask in (("numerical", bad_n), ("analytical", bad_a)):
            if mask.any():
                rows, cols = np.nonzero(mask)
                pairs = [f"output{_fmt(_unravel(r, out_shape))} wrt input"
                         f"{_fmt(_unravel(c, in_shape))}" for r, c in zip(rows, cols)]
                what = "NaN" if np.isnan(np.where(mask, (A if side == "analytical" else N),
                                                  0.0)).any() else "Inf"
                shown = "; ".join(pairs[:MAX_NAMED])
                if len(pairs) > MAX_NAMED:
                    shown += f"; and {len(pairs) - MAX_NAMED} more"
                parts.append(f"{what} in the {side} Jacobian at {len(pairs)} element(s): "
                             f"{shown}")
        nan_text = "; ".join(parts) + " (not a mismatch: the " + \
            ("function's value" if bad_n.any() else "backward") + " is not finite there)"
        # the elements where both sides are finite may still disagree: say so first (a
        # wrong backward must not hide behind a NaN at another element)
        finite = ~(bad_n | bad_a)
        A0, N0 = np.where(finite, A, 0.0), np.where(finite, N, 0.0)
        finite_cmp = compare(A0, N0, atol, rtol)
        if not finite_cmp.passed:
            sub = diagnose(A0, N0, finite_cmp, atol, rtol, in_shape, out_shape, unused=unused)
            return Diagnosis(sub.kind, f"where both sides are finite: {sub.text}; also "
                             f"{nan_text}", factor=sub.factor, elements=sub.elements)
        return Diagnosis("nan", nan_text)
    fail_cols = np.nonzero(cmp.failing.any(axis=0))[0]
    if determinism_probe is not None:
        gap = determinism_probe()
        if gap > 0:
            return Diagnosis("nondeterministic", "the function is not deterministic: two "
                             "calls with the same inputs give outputs that differ by "
                             f"{gap:.3g} (random ops, e.g. Dropout in training mode), so "
                             "finite differences cannot check it; make it deterministic")
    if kink_probe is not None and kink_ops and len(fail_cols):
        fwd, bwd = kink_probe(fail_cols)
        scale = atol + rtol * np.maximum(np.abs(fwd), np.abs(bwd))
        jump = np.abs(fwd - bwd) > 10 * scale
        at_kink = [c for c in fail_cols if jump[:, c].any()]
        if len(at_kink) == len(fail_cols):
            els = _elements(at_kink, in_shape)
            ops = f" (the function uses {', '.join(kink_ops)})" if kink_ops else ""
            return Diagnosis(
                "kink", f"fails only at {len(els)} input element(s) sitting on a "
                f"non-differentiable point{ops}: {_named(els)}; the one-sided derivatives "
                "differ there, so no finite difference is right. Keep these inputs away "
                "from the kink (more than a few eps).", elements=els)
    if stability_probe is not None and len(fail_cols):
        estimates = stability_probe(fail_cols)
        sub = [e[:, fail_cols] for _, e in estimates]
        spread = max(float(np.max(np.abs(s - sub[0]))) for s in sub)
        ref = float(np.max(np.abs(N[:, fail_cols]))) if N.size else 0.0
        if spread > atol + rtol * ref:
            desc = ", ".join(f"{float(e[cmp.worst[0], cmp.worst[1]]):.6g} at {label}"
                             for label, e in estimates)
            return Diagnosis("unstable", "numerical derivative unstable: the estimate "
                             f"changes with eps ({desc}); use float64 inputs or "
                             "method='richardson'", elements=_elements(fail_cols, in_shape))
    n_small = _close(N, np.zeros_like(N), atol, 0.0)
    if np.all(A == 0) and not n_small:
        why = "the input is not reached by the backward graph (no gradient)" if unused else \
            "the backward gives zero"
        return Diagnosis("missing", f"gradient missing: {why}, but the numerical derivative "
                         f"is nonzero (max |numerical| = {np.max(np.abs(N)):.3g})")
    if n_small and not _close(A, np.zeros_like(A), atol, 0.0):
        return Diagnosis("spurious", "spurious gradient: the function does not change with "
                         "this input (numerical derivative ~ 0), but the backward gives "
                         f"max |analytical| = {np.max(np.abs(A)):.3g}")
    if _close(A, -N, atol, rtol):
        return Diagnosis("sign", "sign error: analytical = -numerical", factor=-1.0)
    nn = float(np.vdot(N, N))
    if nn > 0:
        c = float(np.vdot(A, N)) / nn
        if _close(A, c * N, atol, rtol) and not np.isclose(c, 1.0, rtol=rtol):
            return Diagnosis("scale", f"constant factor: analytical = {c:.6g} x numerical",
                             factor=c)
    if len(in_shape) >= 2 and in_shape[-1] == in_shape[-2] and in_shape[-1] > 1:
        # each row of the block, seen as a gradient of the input's shape, transposed: the
        # backward returned grad.T @ x where x.T @ grad was due (a square weight)
        rows = A.shape[0]
        A_in = A.reshape((rows,) + tuple(in_shape))
        N_t = np.swapaxes(N.reshape((rows,) + tuple(in_shape)), -1, -2)
        if _close(A_in, N_t, atol, rtol) and not _close(N_t, N.reshape(A_in.shape), atol,
                                                         rtol):
            return Diagnosis("transposed", "transposed gradient: the analytical gradient "
                             f"of this {list(in_shape)} input is the numerical one transposed "
                             "(the backward returns e.g. grad.T @ x where x.T @ grad is due)")
    if A.shape[0] == A.shape[1] and A.shape[0] > 1 and _close(A, N.T, atol, rtol) \
            and not _close(N, N.T, atol, rtol):
        return Diagnosis("transposed", "transposed Jacobian block: analytical = numerical"
                         " transposed (the backward returns the gradient laid out for the "
                         "transposed shape)")
    n_fail = int(np.count_nonzero(cmp.failing))
    els = _elements(fail_cols, in_shape)
    cause = find_cause(A, N, atol, rtol, in_shape, out_shape, cause_probe)
    if cause is not None:
        return Diagnosis(cause.kind, cause.text, factor=cause.factor, elements=els,
                         evidence=cause.evidence)
    return Diagnosis("mismatch", f"analytical and numerical Jacobians disagree at {n_fail} "
                     f"of {cmp.failing.size} entries (input elements {_named(els)})",
                     elements=els)


def _unravel(i, shape) -> tuple:
    return tuple(int(k) for k in np.unravel_index(int(i), shape)) if shape else ()


def diagnose_scalars(analytical: np.ndarray, numerical: np.ndarray, atol: float,
                     rtol: float) -> Diagnosis:
    """Fast mode: what the projected values vᵀJu say (sign, factor, missing, spurious)."""
    A, N = np.asarray(analytical, float), np.asarray(numerical, float)
    if not (np.isfinite(A).all() and np.isfinite(N).all()):
        side = "numerical" if not np.isfinite(N).all() else "analytical"
        return Diagnosis("nan", f"NaN or Inf on the {side} side of the projections")
    if np.all(A == 0) and not np.all(np.abs(N) <= atol):
        return Diagnosis("missing", "gradient missing: the backward gives zero, but the "
                         "numerical projection is nonzero")
    if np.all(np.abs(N) <= atol) and not np.all(np.abs(A) <= atol):
        return Diagnosis("spurious", "spurious gradient: numerical projection ~ 0")
    if _close(A, -N, atol, rtol):
        return Diagnosis("sign", "sign error: analytical = -numerical (on every projection)",
                         factor=-1.0)
    c = A / np.where(N == 0, np.nan, N)
    if np.isfinite(c).all() and np.allclose(c, c[0], rtol=1e-6, atol=0):
        return Diagnosis("scale", f"constant factor: analytical = {c[0]:.6g} x numerical "
                         "(on every projection)", factor=float(c[0]))
    return Diagnosis("mismatch", "analytical and numerical projections vᵀJu disagree")
