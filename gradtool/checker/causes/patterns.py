"""Causes read from the two matrices (and the values of the tensors): a factor along one
axis, only the diagonal, errors confined to a region."""

from __future__ import annotations

import numpy as np

from .common import Cause, close, fmt, fmt_list


# ---- factor along an axis --------------------------------------------------------------------
def factor_pattern(A, N, atol, rtol, in_shape, out_shape, probe):
    shape = out_shape + in_shape
    if len(shape) < 1:
        return None
    scale = float(np.max(np.abs(N)))
    if scale == 0:
        return None
    significant = np.abs(N) > max(atol, 1e-6 * scale)
    if not significant.any():
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(significant, A / np.where(significant, N, 1.0), np.nan).reshape(shape)
    An, Nn = A.reshape(shape), N.reshape(shape)
    if A.shape[0] == A.shape[1] and A.shape[0] > 1 and \
            not (significant & ~np.eye(A.shape[0], dtype=bool)).any():
        # a diagonal block (an elementwise function): every group is one entry, so only
        # a factor equal to a tensor of the function is worth saying
        return _diagonal_factor(A, N, significant, atol, rtol, out_shape, probe)
    named_trivial = False
    for axis, size in enumerate(shape):
        if size < 2:
            continue
        moved = np.moveaxis(ratio, axis, 0).reshape(size, -1)
        present = ~np.isnan(moved)
        counts = present.sum(axis=1)
        known = counts > 0
        if known.sum() < 2:
            continue
        # each group's factor: its first significant ratio (all are checked below)
        factors = np.where(known, moved[np.arange(size), present.argmax(axis=1)], np.nan)
        values = factors[known]
        if np.all(np.abs(values - values[0]) <= rtol * abs(values[0])):
            continue
        # a group of one entry is constant trivially (a diagonal block): then only a
        # factor that equals a tensor of the function is worth saying (tried once)
        trivial = bool(np.all(counts[known] < 2))
        if trivial and named_trivial:
            continue
        f = np.where(known, factors, 0.0)
        expand = [1] * len(shape)
        expand[axis] = size
        predicted = f.reshape(expand) * Nn
        if not close(An, predicted, atol, rtol):
            continue
        side, dim = ("output", axis) if axis < len(out_shape) else \
            ("input", axis - len(out_shape))
        if probe is None:
            owner = "the output" if side == "output" else "the input"
        else:
            owner = probe.output_label() if side == "output" else probe.input_label()
        where = f"dimension {dim} of {owner}"
        text = (f"factor varying along {where}: analytical = c[k] x numerical with c = "
                f"{fmt_list(factors[known])} (constant along every other axis)")
        evidence = {"axis": side, "dim": dim, "factors": [float(v) for v in f]}
        owner_shape = out_shape if side == "output" else in_shape
        layout = [1] * len(owner_shape)
        layout[dim] = size
        named = probe.name_vector(factors, known, rtol, tuple(layout)) \
            if probe is not None else None
        if trivial and named is None:
            named_trivial = True
            continue
        if named is not None:
            label, how = named
            evidence["matches"] = f"{how}{label}" if how else label
            if how == "1/":
                text += f"; c = 1/{label}: a missing multiplication by {label}?"
            elif how == "":
                text += f"; c = {label}: a spurious multiplication by {label} (or a " \
                    f"missing division)?"
            else:
                text += f"; c = {how}{label}"
        return Cause("factor_pattern", text, evidence)
    return None


def _diagonal_factor(A, N, significant, atol, rtol, out_shape, probe):
    if probe is None:
        return None
    diag = np.diagonal(significant)
    factors = np.where(diag, np.diagonal(A) / np.where(diag, np.diagonal(N), 1.0), np.nan)
    known = ~np.isnan(factors)
    values = factors[known]
    if values.size < 2 or np.all(np.abs(values - values[0]) <= rtol * abs(values[0])):
        return None
    if not close(A, np.diag(np.where(known, factors, 0.0)) @ N, atol, rtol):
        return None
    named = probe.name_vector(factors, known, rtol, tuple(out_shape)) \
        if A.shape[0] == int(np.prod(out_shape)) else None
    if named is None:
        return None
    label, how = named
    tensor = dict(probe.candidate_tensors())[label]
    with np.errstate(divide="ignore"):
        compact = {"": tensor, "1/": 1.0 / tensor, "-": -tensor,
                   "-1/": -1.0 / tensor}[how].reshape(-1)
    text = (f"elementwise factor: analytical = c x numerical elementwise, with c = {how}"
            f"{label} = {fmt_list(compact)}")
    if how == "1/":
        text += f": a missing multiplication by {label}?"
    elif how == "":
        text += f": a spurious multiplication by {label} (or a missing division)?"
    return Cause("factor_pattern", text, {"axis": "elementwise", "factors": [
        float(v) for v in compact], "matches": f"{how}{label}"})


# ---- only the diagonal -----------------------------------------------------------------------
def only_diagonal(A, N, atol, rtol, in_shape, out_shape, probe):
    if A.shape[0] != A.shape[1] or A.shape[0] < 2 or in_shape != out_shape:
        return None
    eye = np.eye(A.shape[0], dtype=bool)
    zero = np.zeros_like(N)
    n_off = np.where(eye, 0.0, N)
    a_off = np.where(eye, 0.0, A)
    diag_same = close(np.diag(A), np.diag(N), atol, rtol)
    if not diag_same:
        return None
    if close(a_off, zero, atol, 0) and not close(n_off, zero, atol, 0):
        return Cause("diagonal", "only the diagonal: the analytical Jacobian is the diagonal "
                     "of the numerical one (the diagonals agree, the analytical side is zero "
                     f"off it where the numerical side reaches {fmt(np.max(np.abs(n_off)))}"
                     "): an elementwise rule for a function whose outputs depend on other "
                     "elements", {"max_offdiag_numerical": float(np.max(np.abs(n_off)))})
    if close(n_off, zero, atol, 0) and not close(a_off, zero, atol, 0):
        return Cause("diagonal", "off-diagonal terms: the function is elementwise (the "
                     "numerical Jacobian is diagonal) and the diagonals agree, but the "
                     "backward mixes elements (off-diagonal analytical entries up to "
                     f"{fmt(np.max(np.abs(a_off)))}; e.g. a sum where an elementwise "
                     "product is due)", {"max_offdiag_analytical":
                                         float(np.max(np.abs(a_off)))})
    return None


# ---- errors confined to a region -------------------------------------------------------------
CONDITIONS = (("< 0", lambda v: v < 0), ("> 0", lambda v: v > 0), ("== 0", lambda v: v == 0),
              ("!= 0", lambda v: v != 0))


def confined_region(A, N, atol, rtol, in_shape, out_shape, probe):
    if probe is None:
        return None
    with np.errstate(invalid="ignore"):
        failing = ~(np.abs(A - N) <= atol + rtol * np.abs(N))
    for side, mask_of, shape in (("input", failing.any(axis=0), in_shape),
                                 ("output", failing.any(axis=1), out_shape)):
        n = mask_of.size
        if n < 3 or mask_of.all() or not mask_of.any():
            continue
        for label, values in probe.tensors_of_shape(shape):
            flat = values.reshape(-1)
            for cond, test in CONDITIONS:
                region = test(flat)
                if not np.array_equal(region, mask_of):
                    continue
                k = int(region.sum())
                idx = np.flatnonzero(region)
                cols = (slice(None), idx) if side == "input" else (idx, slice(None))
                a_in, n_in = A[cols], N[cols]
                detail, there = "", None
                if close(n_in, np.zeros_like(n_in), atol, 0):
                    there = "not zeroed"
                    detail = "; there the function does not change (numerical 0) but the " \
                        "backward gives up to " + fmt(np.max(np.abs(a_in))) + \
                        ": a mask not applied?"
                elif close(a_in, -n_in, atol, rtol):
                    there = "sign"
                    detail = "; there analytical = -numerical: a sign lost there?"
                elif close(a_in, np.zeros_like(a_in), atol, 0):
                    there = "zeroed"
                    detail = "; there the backward gives 0 where the numerical derivative " \
                        "reaches " + fmt(np.max(np.abs(n_in))) + ": a mask applied " \
                        "where it should not be?"
                what = "input elements" if side == "input" else "output elements"
                text = (f"wrong only where {label} {cond}: the failing {what} are exactly "
                        f"the {k} of {n} where {label} {cond} (elsewhere analytical = "
                        f"numerical){detail}")
                evidence = {"where": f"{label} {cond}", "side": side, "count": k, "of": n}
                if there:
                    evidence["there"] = there
                return Cause("region", text, evidence)
    return None
