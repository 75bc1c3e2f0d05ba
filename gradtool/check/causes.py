"""Round two of the diagnosis: name the cause of the backward bugs people actually write.

:func:`diagnose <gradtool.check.diagnose.diagnose>` tries these when no simpler story
(sign, constant factor, transposed, ...) fits a failing block, cheapest first, and stops at
the first that is *verified*; each states its evidence:

* **factor along an axis**: analytical / numerical is constant along every axis of the
  block but one, along which it varies; named when the factors equal an input (or its
  reciprocal): "a missing multiplication by gamma?" (elementwise blocks: only when named);
* **only the diagonal**: the analytical block is the diagonal of the numerical one (an
  elementwise rule for a function that is not elementwise), or the reverse;
* **a repaired backward** (custom Functions, gradtool's and torch's): the backward's op calls
  are replayed with one change and must then give the numerical Jacobian: a tensor it reads
  replaced by another the Function had ("the backward uses out where x is due, in
  sigmoid(out)"), a reduction given ``keepdim=True`` or another dim;
* **wrong evaluation point** (functions whose backward cannot be replayed): the analytical
  block equals the numerical Jacobian at another tensor the function had (its output,
  another input): "the derivative at out, not at x";
* **errors confined to a region**: the wrong input elements are exactly those where an
  input or output is negative / zero / positive: "wrong only where out == 0";
* **one term wrong**: the forward's ops are frozen one at a time (held at their value), which
  splits the Jacobian into the part through that op and the rest; the analytical block is
  the true one with one part missing, its sign flipped or scaled.  For spec formula
  Functions, the parts are the additive terms of the formula, named by their source;
* **a factor missing on one term of the backward** (custom Functions): the replay with one
  operand of a sum multiplied by a value of the saved tensors matches.

Every hypothesis is screened cheaply (one or two random projections, forward differences)
and then verified on the whole block with the checker's tolerances; when none is verified,
the diagnosis stays "mismatch".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine import primitive as P
from ..engine.function import FunctionCtx
from ..engine.grad_mode import no_grad
from ..engine.node import grad_accumulator
from ..engine.tensor import Tensor, _make

MAX_ENTRIES = 1 << 18     # blocks analysed by the pattern tests (entries)
MAX_REPAIRS = 32          # backward rewrites tried
MAX_FROZEN = 12           # forward ops frozen by the term test
MAX_POINTS = 4            # other evaluation points tried
MAX_ROWS = 256            # rows replayed one by one to verify a repaired backward
MAX_SINGLE = 3            # single uses of a tensor tried, per pair of tensors
MAX_FACTORS = 8           # missing factors tried in the backward's sums
SCREEN = 1e-4             # relative tolerance of the screening on projections
REDUCTIONS = ("sum", "mean", "sum_dim", "mean_dim", "amax", "amin", "logsumexp")


@dataclass
class Cause:
    kind: str
    text: str
    evidence: dict = field(default_factory=dict)
    factor: float | None = None


def _fmt(v: float) -> str:
    return f"{float(v):.4g}"


def _fmt_list(values, limit: int = 6) -> str:
    shown = ", ".join(_fmt(v) for v in list(values)[:limit])
    return "[" + shown + (", ..." if len(values) > limit else "") + "]"


def _close(a, b, atol, rtol) -> bool:
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))


def _max_err(a, b) -> float:
    return float(np.max(np.abs(a - b))) if a.size else 0.0


# ---- the entry point -------------------------------------------------------------------------
def find_cause(A: np.ndarray, N: np.ndarray, atol: float, rtol: float, in_shape: tuple,
               out_shape: tuple, probe) -> Cause | None:
    """A verified cause of the failing block (A, N) or None (then: "mismatch")."""
    if A.size == 0 or A.size > MAX_ENTRIES:
        return None
    # a region that says nothing of what happens there ("where out > 0") is where the
    # error sits, not why: the tests after it may still name the cause
    where = None
    for test in (_factor_pattern, _diagonal, _repaired_backward, _evaluation_point, _region,
                 _terms, _missing_factor):
        if test is _region and where is not None:
            continue
        cause = test(A, N, atol, rtol, tuple(in_shape), tuple(out_shape), probe)
        if cause is None:
            continue
        if test is _region and not cause.evidence.get("there"):
            where = cause
            continue
        if where is not None:
            cause.text += f"; the wrong elements are those where {where.evidence['where']}"
            cause.evidence["region"] = where.evidence["where"]
        return cause
    return where


# ---- factor along an axis --------------------------------------------------------------------
def _factor_pattern(A, N, atol, rtol, in_shape, out_shape, probe):
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
        if not _close(An, predicted, atol, rtol):
            continue
        side, dim = ("output", axis) if axis < len(out_shape) else \
            ("input", axis - len(out_shape))
        if probe is None:
            owner = "the output" if side == "output" else "the input"
        else:
            owner = probe.output_label() if side == "output" else probe.input_label()
        where = f"dimension {dim} of {owner}"
        text = (f"factor varying along {where}: analytical = c[k] x numerical with c = "
                f"{_fmt_list(factors[known])} (constant along every other axis)")
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
    if not _close(A, np.diag(np.where(known, factors, 0.0)) @ N, atol, rtol):
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
            f"{label} = {_fmt_list(compact)}")
    if how == "1/":
        text += f": a missing multiplication by {label}?"
    elif how == "":
        text += f": a spurious multiplication by {label} (or a missing division)?"
    return Cause("factor_pattern", text, {"axis": "elementwise", "factors": [
        float(v) for v in compact], "matches": f"{how}{label}"})


# ---- only the diagonal -----------------------------------------------------------------------
def _diagonal(A, N, atol, rtol, in_shape, out_shape, probe):
    if A.shape[0] != A.shape[1] or A.shape[0] < 2 or in_shape != out_shape:
        return None
    eye = np.eye(A.shape[0], dtype=bool)
    zero = np.zeros_like(N)
    n_off = np.where(eye, 0.0, N)
    a_off = np.where(eye, 0.0, A)
    diag_same = _close(np.diag(A), np.diag(N), atol, rtol)
    if not diag_same:
        return None
    if _close(a_off, zero, atol, 0) and not _close(n_off, zero, atol, 0):
        return Cause("diagonal", "only the diagonal: the analytical Jacobian is the diagonal "
                     "of the numerical one (the diagonals agree, the analytical side is zero "
                     f"off it where the numerical side reaches {_fmt(np.max(np.abs(n_off)))}"
                     "): an elementwise rule for a function whose outputs depend on other "
                     "elements", {"max_offdiag_numerical": float(np.max(np.abs(n_off)))})
    if _close(n_off, zero, atol, 0) and not _close(a_off, zero, atol, 0):
        return Cause("diagonal", "off-diagonal terms: the function is elementwise (the "
                     "numerical Jacobian is diagonal) and the diagonals agree, but the "
                     "backward mixes elements (off-diagonal analytical entries up to "
                     f"{_fmt(np.max(np.abs(a_off)))}; e.g. a sum where an elementwise "
                     "product is due)", {"max_offdiag_analytical":
                                         float(np.max(np.abs(a_off)))})
    return None


# ---- errors confined to a region -------------------------------------------------------------
CONDITIONS = (("< 0", lambda v: v < 0), ("> 0", lambda v: v > 0), ("== 0", lambda v: v == 0),
              ("!= 0", lambda v: v != 0))


def _region(A, N, atol, rtol, in_shape, out_shape, probe):
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
                if _close(n_in, np.zeros_like(n_in), atol, 0):
                    there = "not zeroed"
                    detail = "; there the function does not change (numerical 0) but the " \
                        "backward gives up to " + _fmt(np.max(np.abs(a_in))) + \
                        ": a mask not applied?"
                elif _close(a_in, -n_in, atol, rtol):
                    there = "sign"
                    detail = "; there analytical = -numerical: a sign lost there?"
                elif _close(a_in, np.zeros_like(a_in), atol, 0):
                    there = "zeroed"
                    detail = "; there the backward gives 0 where the numerical derivative " \
                        "reaches " + _fmt(np.max(np.abs(n_in))) + ": a mask applied " \
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


# ---- a repaired backward ---------------------------------------------------------------------
def _repaired_backward(A, N, atol, rtol, in_shape, out_shape, probe):
    """A tensor replaced, or a reduction changed (cheap to try, and common)."""
    return _replay(A, N, atol, rtol, out_shape, probe, _repairs)


def _missing_factor(A, N, atol, rtol, in_shape, out_shape, probe):
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
    vs = _directions(0, out_shape, A.shape[1])
    want = [v.reshape(-1) @ N for v in vs]
    for description, evidence, rewrite in hypotheses[:MAX_REPAIRS]:
        got = [runner.vjp(v, rewrite) for v in vs]
        if any(g is None for g in got):
            continue
        if not all(_near(g.reshape(-1), w, atol) for g, w in zip(got, want)):
            continue
        full = runner.jacobian(N.shape, rewrite)
        if full is not None and not _close(full, N, atol, rtol):
            full = runner.jacobian(N.shape, rewrite, batched_first=False)   # row by row
        if full is None or not _close(full, N, atol, rtol):
            continue
        evidence["max_error_repaired"] = _max_err(full, N)
        return Cause(evidence.pop("kind"), description +
                     f" (repaired, the backward matches the numerical Jacobian: max error "
                     f"{_fmt(evidence['max_error_repaired'])})", evidence)
    return None


_STREAMS: dict = {}


def _directions(seed: int, shape: tuple, other: int) -> np.ndarray:
    """Random directions for a screening (the same for the same arguments): one, or two
    when the side they are compared on (``other`` entries) is too small for one to say
    much.  Generators are cached and reset (creating one costs more than its use here)."""
    k = 1 if other >= 4 else 2
    cached = _STREAMS.get(seed)
    if cached is None:
        gen = np.random.default_rng(seed)
        cached = _STREAMS[seed] = (gen, gen.bit_generator.state)
    gen, state = cached
    gen.bit_generator.state = state
    return gen.standard_normal((k,) + tuple(shape))


def _near(got, want, atol) -> bool:
    if got.shape != want.shape or not np.all(np.isfinite(got)):
        return False
    scale = float(np.linalg.norm(want))
    return float(np.linalg.norm(got - want)) <= SCREEN * scale + atol * np.sqrt(want.size)


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
                            Rewrite(substitute={s: cand for s in sites})))
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


# ---- wrong evaluation point ------------------------------------------------------------------
def _evaluation_point(A, N, atol, rtol, in_shape, out_shape, probe):
    # a custom Function's backward evaluated at out is a tensor replaced in its replay
    # (tried before): this test is for the functions gradtool cannot replay
    runner = None if probe is None else probe.backward_runner()
    if probe is None or (runner is not None and getattr(runner, "_calls", None) is not None):
        return None
    x_label = probe.input_label()
    x = probe.input_value()
    if x is None:
        return None
    us = _directions(1, in_shape, A.shape[0])
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
        if not all(_near(a, n, atol) for a, n in zip(a_u, n_u)):
            continue
        try:
            full = probe.jacobian_at(value)
        except Exception:  # noqa: BLE001
            continue
        if not _close(A, full, atol, rtol):
            continue
        return Cause("evaluation_point", f"wrong evaluation point: the backward evaluates "
                     f"the derivative at {label}, not at {x_label} (analytical = the "
                     f"numerical Jacobian with {x_label} := {label}, max error "
                     f"{_fmt(_max_err(A, full))})", {"at": label, "due": x_label,
                                                    "max_error": _max_err(A, full)})
    return None


# ---- one term wrong --------------------------------------------------------------------------
def _terms(A, N, atol, rtol, in_shape, out_shape, probe):
    if probe is None:
        return None
    parts = probe.term_parts()
    if not parts:
        return None
    us = _directions(2, in_shape, A.shape[0])
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
            if np.count_nonzero(np.abs(T) > atol) < 2 or _close(T, N, atol, rtol):
                continue
            c_full = float(np.vdot(A - N, T) / np.vdot(T, T))
            if not _close(A, N + c_full * T, atol, rtol):
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
            what = f"is missing its factor {near} (analytical has {_fmt(s)} x this term)"
        else:
            what = f"is scaled by {_fmt(s)} (a factor {_fmt(s)} too many?)"
    return Cause("term", f"one term wrong: {label} {what}; the rest agrees",
                 evidence, factor=s)


# ---- what the checker knows: the Probe -------------------------------------------------------
class Probe:
    """The function, its inputs and outputs, for one failing block (output o, input j):
    evaluates it at other points, replays its backward with changes, freezes its ops.
    Built by the checker (gradtool's or the torch bridge's) for the diagnosis only."""

    def __init__(self, checker, o: int, j: int) -> None:
        self.checker, self.o, self.j = checker, o, j
        self.torch = getattr(checker, "torch", None)
        self._candidates = None
        self._parts = None

    # -- names and values
    def input_label(self) -> str:
        return self.checker.names[self.j]

    def output_label(self) -> str:
        return "out" if len(self.checker.outs) == 1 else f"output {self.o}"

    def input_value(self):
        value = self.checker.in_data[self.j]
        return None if value is None else np.asarray(value, dtype=np.float64)

    def candidate_tensors(self) -> list:
        """(label, float64 array) of the inputs and outputs: input j first, then the outputs,
        then the other inputs (equal values are listed once)."""
        if self._candidates is None:
            c = self.checker
            order = [(self.input_label(), c.in_data[self.j])]
            order += [("out" if len(c.outs) == 1 else f"output {k}", c.out_data[k])
                      for k in range(len(c.outs))]
            order += [(c.names[i], c.in_data[i]) for i in range(len(c.inputs))
                      if i != self.j]
            found = []
            for label, value in order:
                if value is None or np.asarray(value).dtype.kind not in "fc":
                    continue
                value = np.asarray(value, dtype=np.float64)
                if any(v.shape == value.shape and np.array_equal(v, value)
                       for _, v in found):
                    continue
                found.append((label, value))
            self._candidates = found
        return self._candidates

    def tensors_of_shape(self, shape) -> list:
        return [(label, v) for label, v in self.candidate_tensors()
                if v.shape == tuple(shape) or (v.size == int(np.prod(shape)) and v.ndim == 1
                                               and len(shape) <= 1)]

    def name_vector(self, factors, known, rtol, shape):
        """(label, how) when the factors (laid out in ``shape``) equal a tensor of the
        function broadcast to that shape ("") or its reciprocal ("1/"), "-", "-1/"."""
        factors, known = factors.reshape(shape), known.reshape(shape)
        values = factors[known]
        size = np.abs(values)
        bound = 10 * rtol * size
        positive = values > 0
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for label, v in self.candidate_tensors():
                try:
                    if np.broadcast_shapes(v.shape, shape) != tuple(shape):
                        continue
                except ValueError:
                    continue
                target = np.broadcast_to(v, shape)[known]
                magnitude = np.abs(target)
                for how, t in (("", magnitude), ("1/", 1.0 / magnitude)):
                    if not (np.abs(size - t) <= bound).all():       # NaN fails
                        continue
                    same = positive == (target > 0)
                    if same.all():
                        return label, how
                    if not same.any():
                        return label, "-" + how
        return None

    # -- the numerical Jacobian at other points
    def _evaluator(self, fn=None, value=None):
        c = self.checker
        inputs = list(c.inputs)
        if self.torch is not None:
            from .torch_bridge import _TorchEvaluator
            if value is not None:
                t = self.torch.from_numpy(np.array(value, dtype=np.float64))
                inputs[self.j] = t.requires_grad_(True)
            ev = _TorchEvaluator(fn or c.fn, tuple(inputs), len(c.outs), self.torch)
            if fn is not None:
                ev.batched_ok = False     # a frozen op is a torch function mode: no vmap
            return ev
        from . import numeric
        if value is not None:
            x = c.inputs[self.j]
            inputs[self.j] = _make(np.asarray(value, dtype=x._data.dtype)).requires_grad_(True)
        return numeric.Evaluator(fn or c.fn, tuple(inputs), len(c.outs), c.upcast)

    def call(self, value=None, fn=None) -> np.ndarray:
        """Output o (float64, flat) of one plain call, input j replaced by ``value``."""
        c = self.checker
        self.checker.ev.n_evals += 1
        if self.torch is not None:
            torch = self.torch
            args = [a.detach() if isinstance(a, torch.Tensor) else a for a in c.inputs]
            if value is not None:
                args[self.j] = torch.from_numpy(np.array(value, dtype=np.float64))
            with torch.no_grad():
                outs = (fn or c.fn)(*args)
            outs = outs if isinstance(outs, (tuple, list)) else (outs,)
            return outs[self.o].detach().numpy().astype(np.float64).reshape(-1)
        args = self._evaluator().plain_args(cast=np.float64 if c.upcast else None)
        if value is not None:
            args[self.j] = _make(np.array(value, dtype=np.float64))
        with no_grad(), np.errstate(all="ignore"):
            outs = (fn or c.fn)(*args)
        outs = outs if isinstance(outs, (tuple, list)) else (outs,)
        return np.asarray(outs[self.o]._data, dtype=np.float64).reshape(-1)

    def directional_at(self, value, us, fn=None, base=None):
        """J u at input j = ``value`` (default: where it is), for each direction u, by
        forward differences from ``base`` (the output there, computed when not given):
        len(us) plain calls; a screening, the full check is :meth:`jacobian_at`'s."""
        x = self.input_value() if value is None else np.asarray(value, dtype=np.float64)
        if base is None:
            base = self.call(value, fn)
        h = np.sqrt(np.finfo(np.float64).eps) * max(1.0, float(np.max(np.abs(x))))
        return np.stack([(self.call(x + h * u, fn) - base) / h for u in us])

    def jacobian_at(self, value, fn=None):
        from . import numeric
        ev = self._evaluator(fn, value)
        out = numeric.numerical_jacobian(ev, self.j, self.checker.out_sizes, "central",
                                         self.checker.eps, [None] * len(self.checker.outs))
        self.checker.ev.n_evals += ev.n_evals
        return out[self.o]

    # -- the backward, replayed
    def backward_runner(self):
        """A runner of the backward of the custom Function that produced output o directly
        from input j, or None (the repairs need the Function's own backward)."""
        if not hasattr(self, "_runner"):
            self._runner = self._find_runner()
        return self._runner

    def _find_runner(self):
        c = self.checker
        out, x = c.outs[self.o], c.inputs[self.j]
        if self.torch is not None:
            node = out.grad_fn
            if node is None or not hasattr(node, "_forward_cls"):
                return None
            for i, (nxt, _) in enumerate(node.next_functions):
                if nxt is not None and getattr(nxt, "variable", None) is x:
                    return _TorchRunner(self, node, i)
            return None
        node = out.grad_fn
        if not isinstance(node, FunctionCtx) or not x._rg:
            return None
        acc = grad_accumulator(x)
        for i, nxt in enumerate(node.next_nodes):
            if nxt is acc:
                return _GtRunner(self, node, i)
        return None

    # -- the forward, split
    def term_parts(self) -> list:
        if self._parts is None:
            parts = []
            try:
                parts = _spec_parts(self) + _op_parts(self)
            except Exception:  # noqa: BLE001  (user code meeting a probe: no parts)
                parts = []
            self._parts = parts
        return self._parts


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
        name = _REFLECTED.get(call.name.strip("_"), call.name.strip("_"))
        call.desc = f"{name}({', '.join(shown)})"
        call.result, call.grad_free = value, not depends
        self.live.append(result)
        if depends:
            self.grad_ids.add(id(result))
            self.names[id(result)] = f"op {index + 1}"
        else:                      # a value of the saved tensors: named by what it is
            self.names[id(result)] = call.desc


class _GtRunner(_Runner):
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


class _TorchRunner(_Runner):
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
        with torch.no_grad(), _torch_mode(handler):
            # the node is the ctx: a batch of cotangents goes to the Function's backward
            # directly (the node's apply would refuse the batch's shape)
            grads = self.node._forward_cls.backward(self.node, *grad) if batched else \
                self.node.apply(*grad)
        grads = grads if isinstance(grads, tuple) else (grads,)
        g = grads[self.index] if self.index < len(grads) else None
        return None if g is None else g.detach().numpy().astype(np.float64)


_MODE_CLASS: list = []


def _torch_mode(handler):
    """A torch function mode calling ``handler(func, args, kwargs)`` for every torch call
    (one class, made once: creating a class per replay costs more than the replay)."""
    if not _MODE_CLASS:
        from torch.overrides import TorchFunctionMode

        class HandlerMode(TorchFunctionMode):
            def __init__(self, handler) -> None:
                super().__init__()
                self.handler = handler

            def __torch_function__(self, func, types, args=(), kwargs=None):
                return self.handler(func, args, dict(kwargs or {}))

        _MODE_CLASS.append(HandlerMode)
    return _MODE_CLASS[0](handler)


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


def _op_parts(probe: Probe) -> list:
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
        args = [a.detach() if isinstance(a, torch.Tensor) else a for a in c.inputs]
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

        with torch.no_grad(), _torch_mode(handler):
            c.fn(*args)
        return ops
    ev = probe._evaluator()
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
        with no_grad():
            c.fn(*args)
    finally:
        P.INTERCEPTORS.remove(hook)
    return ops


#: torch's reflected operator names, as the operation and its operands' order
_REFLECTED = {"rmul": "mul", "radd": "add", "rsub": "sub", "rtruediv": "div", "rpow": "pow",
              "truediv": "div"}


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
    if name.startswith("r") and name in _REFLECTED and name != "truediv":
        shown.reverse()
    name = _REFLECTED.get(name, name)
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

            with _torch_mode(handler):
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


def _spec_parts(probe: Probe) -> list:
    """One part per additive term of the forward of a spec formula Function that output o
    comes from directly (the terms are named by their source)."""
    if probe.torch is not None:
        return []
    from ..spec.functions import forward_terms, term_dropped
    node = probe.checker.outs[probe.o].grad_fn
    cls = getattr(node, "_fn_cls", None) if isinstance(node, FunctionCtx) else None
    fdef = getattr(cls, "spec_definition", None)
    if fdef is None or fdef.forward is None:
        return []
    terms = forward_terms(fdef)
    if len(terms) < 2:
        return []
    parts = []
    fn = probe.checker.fn
    for i, text in enumerate(terms):
        def without(*args, _i=i):
            with term_dropped(fdef, _i):
                return fn(*args)
        parts.append(_Part(probe, f"the term `{text}`", None, without, False))
    return parts
