"""The gradient checker: ``check`` (a :class:`CheckResult`), and ``gradcheck`` /
``gradgradcheck`` with ``torch.autograd.gradcheck``'s signature and meaning.

Full mode compares every Jacobian entry.  The numerical side perturbs each input element
(batched, see :mod:`.numeric`); the analytical side is ONE batched reverse pass per output
(``autograd.grad(..., is_grads_batched=True)`` with the identity as cotangents, in chunks of
rows).  Fast mode compares random projections ``vᵀJu`` computed both ways (``Ju`` by finite
differences along ``u``, ``vᵀJ`` by one backward).  ``mode="auto"`` checks in full while
the Jacobian has at most ``AUTO_FULL_LIMIT`` entries, else in fast mode.

Other checks, as torch's: backward twice gives the same result within ``nondet_tol`` (up to
``REENTRANCY_ROWS`` rows spread over the output are computed twice, in batches of the same
composition, so a deterministic backward agrees bit for bit); backward with undefined (None)
or zero output gradients gives zero (``check_undefined_grad``); forward-mode AD against the
numerical derivative and against reverse mode (``vᵀ(Ju) == (vᵀJ)u``); second order through
``create_graph``.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

from ..engine import forward_ad as fwAD
from ..engine import graph, limits
from ..engine.backend import errors_off, errors_restore
from ..engine.batching import delta_elementwise
from ..engine.node import AccumulateGrad, OpNode
from ..engine.grad_mode import MODE
from ..engine import primitive as P
from ..engine.grad_mode import enable_grad, no_grad
from ..engine.tensor import Tensor, _make
from ..errors import EngineError, GradcheckError, UserError
from . import extra_checks, numeric
from .causes import Probe
from .diagnose import compare, diagnose, diagnose_scalars
from .result import BlockResult, CheckResult

AUTO_FULL_LIMIT = 4_000_000        # Jacobian entries checked in full by mode="auto"
AUTO_FULL_SECONDS = 5.0            # estimated seconds of a full check mode="auto" accepts
AUTO_SAMPLE = 16                   # columns/rows timed to estimate a full check's cost
FULL_LIMIT = 10**8                 # mode="full" refuses more (memory: the element cap's size)
ANALYTICAL_CHUNK_BYTES = 2 ** 20   # rows per batched backward: cache-sized (measured)
ANALYTICAL_CHUNK_ROWS = None       # force a number of rows per batched backward (tests)
MASKED_ZERO_ATOL = 1e-8            # masked=True: zero grad_outputs give |grad| <= this
REENTRANCY_ROWS = 64               # rows computed twice by the nondeterminism check
ROUNDING_ULPS = 32                 # a gap between two runs of one batch this small is rounding
METHODS = tuple(numeric.STENCILS)
MODES = ("full", "fast", "auto")
KINK_DOMAINS = ("away_from_zero", "away_from_clamp", "distinct")
COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge")


class ComplexStepError(UserError):
    """method="complex" on a function using a primitive that is not complex-analytic."""


class _Recorder:
    """apply() hook remembering which primitives ran (in order of first use)."""

    def __init__(self) -> None:
        self.prims: dict = {}

    def __call__(self, prim, args, params):
        self.prims.setdefault(prim.name, prim)
        return P.apply(prim, args, params)


# np.einsum without its Python wrapper (fast mode on small functions is a few dozen numpy
# calls on tiny arrays; the wrapper is a third of each einsum's cost); the same kernel
_einsum = getattr(np._core.multiarray, "c_einsum", None) \
    if hasattr(np, "_core") else None
_einsum = _einsum or np.einsum


def _as_tuple(x) -> tuple:
    if isinstance(x, tuple):
        return x
    if isinstance(x, list):
        return tuple(x)
    return (x,)


# ---- analytical side -------------------------------------------------------------------------
def gt_vjp(out: Tensor, inputs: list, planned=None):
    """``vjp(cotangents)``: one batched backward of ``out`` for a batch of cotangents
    (k, *out.shape); per input a (k, input size) array, or None if the backward does not
    reach it.  ``autograd.grad(out, inputs, cot, retain_graph=True, allow_unused=True,
    is_grads_batched=True)``, with the graph walked once for all the calls (``planned``:
    that walk, from ``graph.plan([out], inputs)``)."""
    roots, targets, discovered = planned or graph.plan([out], inputs)
    edges = [graph._root_edge(x) for x in inputs]

    def vjp(cot: np.ndarray) -> list:
        if cot.shape[1:] != out._data.shape:
            raise EngineError(f"Mismatch in shape: grad_output[0] has a shape of "
                              f"{graph._size(cot.shape[1:])} and output[0] has a shape of "
                              f"{graph._size(out._data.shape)}.")
        captured = graph.run(roots, [cot], True, False, capture=targets, batched=True,
                             discovered=discovered)
        grads = []
        for edge in edges:
            g = captured.get(edge)
            if g is not None:
                g = g._data if isinstance(g, Tensor) else g
                if not g.flags.owndata:       # as autograd.grad returns it: a copy of a view
                    g = np.array(g, copy=True)
                g = g.reshape(cot.shape[0], -1)
            grads.append(g)
        return grads
    return vjp


def _analytical_rows(vjp, out_shape: tuple, dtype, rows: np.ndarray, zero_row=False) -> list:
    """Rows ``rows`` of the Jacobian (one-hot cotangents, one batched backward); with
    ``zero_row`` one more cotangent, all zeros, comes last."""
    size = int(np.prod(out_shape, dtype=np.int64))
    n = len(rows) + (1 if zero_row else 0)
    cot = np.zeros((n, size), dtype=dtype)
    cot[np.arange(len(rows)), rows] = 1
    return vjp(cot.reshape((n,) + tuple(out_shape)))


def _analytical_full(vjp, out_shape: tuple, dtype, in_sizes: list,
                     positional: bool = False) -> tuple:
    """(per input: the (out size, in size) Jacobian or None if unreached; the first chunk of
    rows; per input the gradient for a zero cotangent (computed with the first chunk); per
    input the sorted flat positions outside which its Jacobian is exactly zero, or None).

    The first chunk holds rows spread over the output (those the reentrancy check computes
    again, in a batch of the very same composition: the same rows plus the zero cotangent);
    the other rows follow in cache-sized chunks (``ANALYTICAL_CHUNK_ROWS`` forces a size).
    ``positional``: the backward graph is made of elementwise primitives only, each input
    the output's size (:func:`_positional`): then gradient element k depends on cotangent
    element k alone, the Jacobian is diagonal, and one backward with a cotangent of ones
    gives it (its rows are that backward's with one-hot cotangents: the same products).
    The first chunk is still computed row by row and must show exactly that structure, and
    the diagonal must be finite (0 * inf off the diagonal is NaN), else every row is."""
    size = int(np.prod(out_shape, dtype=np.int64))
    width = max(sum(in_sizes), size, 1)
    step = ANALYTICAL_CHUNK_ROWS or max(1, min(size, ANALYTICAL_CHUNK_BYTES // (8 * width)))
    sample = np.unique(np.linspace(0, size - 1, min(size, REENTRANCY_ROWS)).astype(np.int64))
    rest = np.setdiff1d(np.arange(size), sample) if len(sample) < size else sample[:0]
    chunks = [sample[i:i + step] for i in range(0, len(sample), step)] + \
        [rest[i:i + step] for i in range(0, len(rest), step)]
    jac = [None] * len(in_sizes)
    supports = [None] * len(in_sizes)
    first = zero = None
    for rows in chunks:
        part = _analytical_rows(vjp, out_shape, dtype, rows, zero_row=first is None)
        if first is None:
            first = (rows, part)
            zero = [None if p is None else p[-1:] for p in part]
            part = [None if p is None else p[:-1] for p in part]
            diagonal = _diagonal(vjp, out_shape, dtype, rows, part) \
                if positional and len(rest) else None
            if diagonal is not None:
                for j, d in enumerate(diagonal):
                    if d is not None:
                        jac[j] = np.zeros((size, in_sizes[j]), dtype=np.float64)
                        jac[j][np.arange(size), np.arange(size)] = d
                        supports[j] = np.arange(size, dtype=np.int64) * (size + 1)
                return jac, first, zero, supports
        for j, p in enumerate(part):
            if p is None:
                continue
            if jac[j] is None:
                jac[j] = np.zeros((size, in_sizes[j]), dtype=np.float64)
            jac[j][rows] = p
    return jac, first, zero, supports


def _diagonal(vjp, out_shape: tuple, dtype, rows: np.ndarray, part: list):
    """Per input the Jacobian's diagonal from one backward with a cotangent of ones, if the
    rows ``part`` computed one by one are exactly diagonal with these values and the
    diagonal is finite; else None."""
    ones = vjp(np.ones((1,) + tuple(out_shape), dtype=dtype))
    diagonal = []
    for p, d in zip(part, ones):
        if (p is None) != (d is None):
            return None
        if p is None:
            diagonal.append(None)
            continue
        d = d[0]
        if p.shape[1] != d.size or not np.isfinite(d).all():
            return None
        expected = np.zeros(p.shape, dtype=p.dtype)
        expected[np.arange(len(rows)), rows] = d[rows]
        if not np.array_equal(p, expected):
            return None
        diagonal.append(d)
    return diagonal


def _positional(out: Tensor, inputs: list) -> bool:
    """The backward graph of ``out`` holds only elementwise primitives (those with the
    one-element perturbation rule of elementwise ops), no hooks, and every input has the
    output's size: no intermediate can then be larger or smaller than the output, and
    gradient element k of each input depends on cotangent element k alone."""
    if not all(isinstance(t, Tensor) for t in [out, *inputs]):
        return False          # torch's tensors (the torch bridge): the general path
    size = out._data.size
    if any(x._data.size != size for x in inputs):
        return False
    root = graph._root_edge(out)
    if root is None or type(root[0]) is AccumulateGrad:
        return False
    seen = {root[0]}
    stack = [root[0]]
    while stack:
        node = stack.pop()
        if type(node) is AccumulateGrad:
            if node._extra is not None or node.variable._extra is not None:
                return False
            continue
        prim = getattr(node, "prim", None)
        if prim is None or prim.delta is not delta_elementwise or node._extra is not None:
            return False
        for nxt in node.next_nodes:
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return True


def _reentrancy(vjp, out_shape: tuple, dtype, first) -> list:
    """Per input, the largest difference between the first chunk of rows and the same batch
    (the same rows, the same trailing zero cotangent) computed again: two runs of one
    computation, so a deterministic backward agrees bit for bit on any CPU."""
    rows, part = first
    again = _analytical_rows(vjp, out_shape, dtype, rows, zero_row=True)
    return _gaps(part, again)


def _union(first, second):
    """The union of two supports (sorted flat positions; None: dense, absorbing)."""
    if first is None or second is None:
        return None
    return np.union1d(first, second)


def _gaps(first: list, again: list) -> list:
    """Per input, the largest difference between two results of the same computation (inf
    when only one of them reaches the input).  A difference at the level of rounding (a few
    ulps of the largest gradient) counts as none: on CPU the same computation can round
    differently only through the memory alignment a BLAS kernel happens to get, which says
    nothing about the backward."""
    gaps = []
    for a, b in zip(first, again):
        gap = _max_gap(a, b)
        if 0 < gap < float("inf") and a.dtype.kind == "f":
            finite = np.abs(a[np.isfinite(a)])
            scale = float(finite.max()) if finite.size else 0.0
            if gap <= ROUNDING_ULPS * np.finfo(a.dtype).eps * scale:
                gap = 0.0
        gaps.append(gap)
    return gaps


def _max_gap(a, b) -> float:
    """The largest difference between two results (inf when only one of them exists; NaN
    or the same inf on both sides count as equal)."""
    if (a is None) != (b is None):
        return float("inf")
    if a is None or not a.size:
        return 0.0
    token = errors_off()           # inf - inf: NaN, looked at below
    try:
        gap = float(np.maximum.reduce(np.abs(a - b), axis=None))
        if gap != gap:
            same = (a == b) | (np.isnan(a) & np.isnan(b))
            d = np.where(same, 0.0, np.abs(a - b))
            gap = float("inf") if np.isnan(d).any() else float(d.max())
    finally:
        errors_restore(token)
    return gap


def _nonzero_finite(grad) -> bool:
    """A finite nonzero entry: a gradient that ignores a zero grad_output.  NaN where the
    function is not finite is 0 * inf (sqrt'(0) times a zero gradient), not that mistake,
    and the Jacobian blocks already report it."""
    data = np.asarray(grad)
    if not data.size or not np.logical_or.reduce(data, axis=None):
        return False        # all zeros (the usual case: one pass; NaN counts as nonzero)
    return bool(np.logical_or.reduce(np.isfinite(data) & (data != 0), axis=None))


def _undefined_grad_problems(outputs: list, inputs: list, zero_case: bool = True,
                             names=None, planned=None) -> list:
    """torch's undefined-gradient checks: backward with all output gradients undefined, with
    one at a time undefined, and with zero gradients, must give None or zeros (``planned``:
    ``graph.plan(outputs, inputs)``, when the caller has it)."""
    roots, targets, discovered = planned or graph.plan(outputs, inputs)
    inert = _inert_when_undefined(roots)
    cases = [] if inert else [("all output gradients undefined", [None] * len(outputs))]
    if len(outputs) > 1 or zero_case:
        zeros = [np.zeros_like(o._data) for o in outputs]
    if len(outputs) > 1 and inert and _single_output_nodes(roots, discovered[0]):
        # one output's gradient undefined, the others zero: the undefined root does not run
        # and every node that runs gets a zero (it has one output: never a partly undefined
        # gradient); the nodes of all these cases run, with zeros, when every output
        # gradient is zero, so that one backward sees what they would
        zero_case = True
    elif len(outputs) > 1:
        cases += [(f"output {k}'s gradient undefined",
                   [None if i == k else z for i, z in enumerate(zeros)])
                  for k in range(len(outputs))]
    if zero_case:
        cases.append(("zero output gradients", zeros))
    problems = []
    for label, grads in cases:
        try:
            captured = graph.run(roots, grads, True, False, capture=targets,
                                 discovered=discovered)
        except (EngineError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
            problems.append("undefined gradient: expected backward to handle undefined output "
                            f"grads ({label}), but it raised {type(exc).__name__}: {exc}")
            continue
        for edge, g in captured.items():
            data = g._data if isinstance(g, Tensor) else np.asarray(g)
            if _nonzero_finite(data):
                what = "backward not multiplied by grad_output" if label.startswith("zero") \
                    else "expected all input grads to be undefined or zero"
                problems.append(f"undefined gradient: {what} ({label}): input "
                                f"{_input_label(edge, targets, inputs, names)} got a nonzero "
                                f"gradient (max |grad| = {np.max(np.abs(data)):.3g})")
    return problems


def _inert_when_undefined(roots) -> bool:
    """Whether a backward with every output gradient undefined provably does nothing: each
    root is a primitive's node (not released, no hooks) or a leaf without hooks.  The
    engine then runs only the roots, whose rule returns undefined gradients at once for an
    undefined gradient (``OpNode.apply``), so nothing reaches any input (custom Functions,
    CopySlices and hooked nodes see the undefined gradient: for them the case runs)."""
    for edge in roots:
        if edge is None:
            continue
        node = edge[0]
        if node._extra is not None:
            return False
        kind = type(node)
        if kind is AccumulateGrad:
            if node.variable._extra is not None:
                return False
        elif kind.apply is not OpNode.apply or node.released:
            return False
    return True


def _single_output_nodes(roots, reachable) -> bool:
    """Every root and every node reachable from them (``reachable``: the discovery's
    dependency counts) has one output, and no two roots are the same node."""
    nodes = [edge[0] for edge in roots if edge is not None]
    if len(set(nodes)) != len(nodes) or any(n.n_outputs != 1 for n in nodes):
        return False
    return all(node.n_outputs == 1 for node in reachable)


def _input_label(edge, targets, inputs, names=None) -> str:
    t = targets.get(edge)
    for i, x in enumerate(inputs):
        if x is t:
            return str(i) if names is None else names[i]
    return "?"


# ---- the check -------------------------------------------------------------------------------
def check(fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
          method: str = "central", mode: str = "full", gradgrad: bool = False,
          forward_ad: bool = False, nondet_tol: float = 0.0, seed: int = 0,
          input_names=None, check_undefined_grad: bool = True,
          check_backward_ad: bool = True, upcast: bool = True,
          n_projections: int = 4, masked: bool = False) -> CheckResult:
    """Check ``fn``'s gradients at ``inputs`` and say what is wrong, block by block.

    ``method``: central, forward, richardson or complex (finite differences, see
    :mod:`gradtool.checker.numeric`); ``mode``: full (every Jacobian entry), fast (random
    projections vᵀJu) or auto; ``upcast``: evaluate the numerical side of float32 inputs in
    float64; ``masked``: torch's masked=True for dense inputs (a backward with zero output
    gradients may give gradients up to 1e-8, torch's allclose).  Inputs that do not require
    grad are constants."""
    from . import torch_bridge
    _check_tolerances(eps=eps, atol=atol, rtol=rtol, nondet_tol=nondet_tol)
    if torch_bridge.is_torch_call(fn, inputs):
        return torch_bridge.check(fn, inputs, eps=eps, atol=atol, rtol=rtol, method=method,
                                  mode=mode, nondet_tol=nondet_tol, seed=seed,
                                  input_names=input_names, n_projections=n_projections,
                                  gradgrad=gradgrad, forward_ad=forward_ad,
                                  check_undefined_grad=check_undefined_grad,
                                  check_backward_ad=check_backward_ad, upcast=upcast)
    if method not in METHODS:
        raise UserError(f"unknown method '{method}'", hint=f"one of {', '.join(METHODS)}")
    if mode not in MODES:
        raise UserError(f"unknown mode '{mode}'", hint=f"one of {', '.join(MODES)}")
    start = time.perf_counter()
    checker = _Checker(fn, _as_tuple(inputs), eps, atol, rtol, method, nondet_tol, seed,
                       input_names, upcast, n_projections)
    checker.masked = bool(masked)
    result = checker.run(mode, check_backward_ad, check_undefined_grad, forward_ad)
    if gradgrad:
        second = _gradgrad_result(fn, checker.inputs, None, input_names=input_names,
                                  eps=eps, atol=atol, rtol=rtol,
                                  method=method, mode=mode, nondet_tol=nondet_tol, seed=seed,
                                  check_undefined_grad=check_undefined_grad)
        for b in second.blocks:
            b.stage = "second order"
        result.blocks += second.blocks
        result.problems += [f"second order: {p}" for p in second.problems]
        result.n_evals += second.n_evals
        result.passed = result.passed and second.passed
    result.wall_time = time.perf_counter() - start
    return result


def _check_tolerances(**values: float) -> None:
    """eps finite and > 0, tolerances finite and >= 0: a NaN step or tolerance would make
    every comparison fail (or pass) silently, and a NaN step costs minutes in auto mode."""
    for name, value in values.items():
        if type(value) is float and value < math.inf and \
                (value > 0 if name == "eps" else value >= 0):
            continue                # the usual case (NaN fails the comparisons)
        ok = isinstance(value, (int, float, np.floating, np.integer)) and \
            not isinstance(value, bool) and math.isfinite(value) and \
            (value > 0 if name == "eps" else value >= 0)
        if not ok:
            raise UserError(f"{name} must be a finite number {'> 0' if name == 'eps' else '>= 0'}"
                            f", got {value!r}")


class _Checker:
    def __init__(self, fn, inputs, eps, atol, rtol, method, nondet_tol, seed, input_names,
                 upcast, n_projections) -> None:
        self.fn = fn
        self.inputs = _distinct(inputs)
        inputs = self.inputs
        self.eps, self.atol, self.rtol = eps, atol, rtol
        self.method = method
        self.nondet_tol = nondet_tol
        self._forward_gap = None      # see _determinism_probe
        self.seed = seed
        self.rng = numeric.seeded_generator(seed)
        self.upcast = upcast
        self.k = max(1, int(n_projections))
        self.masked = False           # torch's masked=True: zero grad_outputs, allclose to 0
        self.diff = [i for i, a in enumerate(inputs) if self._requires_grad(a)]
        if not self.diff:
            raise ValueError("gradcheck expects at least one input tensor to require "
                             "gradient, but none of them have requires_grad=True.")
        names = list(input_names) if input_names is not None else \
            [f"input {i}" for i in range(len(inputs))]
        if len(names) != len(inputs):
            raise UserError(f"input_names has {len(names)} names for {len(inputs)} inputs")
        self.names = names
        self.warnings = []
        low = [i for i in self.diff
               if self._array(inputs[i]).dtype not in (np.float64, np.complex128)]
        if low:
            # torch's warning, once for all such inputs (one line per input is noise)
            which = f"Input #{low[0]} requires" if len(low) == 1 else \
                "Inputs " + ", ".join(f"#{i}" for i in low) + " require"
            msg = (f"{which} gradient and {'is not a' if len(low) == 1 else 'are not'} "
                   "double precision floating point or complex. This check will likely fail if all "
                   "the inputs are not of double precision floating point or complex. ")
            if upcast and all(self._array(inputs[i]).dtype.kind == "f" for i in low):
                msg += "(gradtool evaluates the numerical side in float64.)"
            warnings.warn(msg, UserWarning, stacklevel=4)
            self.warnings.append(msg)
        for i in self.diff:
            dt = self._array(inputs[i]).dtype
            if dt.kind == "c":
                label = f"input '{names[i]}'" if input_names is not None else names[i]
                raise UserError(f"{label} is {dt}: gradtool's checker differentiates real "
                                "inputs only", hint="check the real and imaginary parts as "
                                "two real inputs, or make it a constant (requires_grad: "
                                "false)")

    @staticmethod
    def _array(t):
        return t._data if isinstance(t, Tensor) else None

    @staticmethod
    def _requires_grad(t) -> bool:
        return isinstance(t, Tensor) and t._rg

    # -- forward with the graph
    def forward(self):
        with enable_grad():
            outs = _as_tuple(self.fn(*self.inputs))
        for o in outs:
            if not isinstance(o, Tensor):
                raise UserError(f"the function must return a Tensor or a tuple of Tensors, "
                                f"not {type(o).__name__}")
        return outs

    def primitives(self) -> dict:
        """The primitives the function runs (name -> Primitive), from one recorded forward
        (only needed by the complex step and by the kink diagnosis)."""
        if self._prims is None:
            rec = _Recorder()
            P.INTERCEPTORS.append(rec)
            try:
                with enable_grad():     # as the function runs (see numeric.Evaluator.call)
                    self.fn(*self.inputs)
            finally:
                P.INTERCEPTORS.remove(rec)
            self._prims = rec.prims
        return self._prims

    def kink_ops(self) -> list:
        """Primitives with non-differentiable points: kinks (relu, abs, clamp, max, ...)
        and comparisons (a branch on them is a jump or a kink)."""
        return [name for name, p in self.primitives().items()
                if getattr(p, "domain", None) in KINK_DOMAINS or name in COMPARISONS or
                (not p.analytic and name not in ("arctan2", "softplus"))]

    def run(self, mode, check_backward_ad, check_undefined_grad, forward_ad) -> CheckResult:
        start = time.perf_counter()
        outs = self.forward()
        self.forward_time = time.perf_counter() - start
        self.auto_note = ""
        self._rates = {}
        self._plans = {}
        self.outs = outs
        self._prims = None
        if self.method == "complex":
            bad = [name for name, p in self.primitives().items() if not p.analytic]
            if bad:
                raise ComplexStepError(
                    f"method='complex' needs a complex-analytic function, but it uses "
                    f"{', '.join(bad)}, which {'is' if len(bad) == 1 else 'are'} not "
                    "complex-analytic (complex-step derivatives would be wrong)",
                    hint="use method='central' or method='richardson'")
        self.out_data = [self._array(t) for t in outs]
        self.in_data = [self._array(a) for a in self.inputs]
        self.out_sizes = [d.size if d is not None and d.dtype.kind in "fc" else None
                          for d in self.out_data]
        self.diff_outs = [o for o, t in enumerate(outs)
                          if self.out_sizes[o] is not None and self._requires_grad(t)]
        self.ev = self._evaluator()
        self.base_outputs = self._base_outputs()
        total = sum(self.out_data[o].size for o in self.diff_outs) * \
            sum(self.in_data[j].size for j in self.diff)
        if mode == "auto":
            mode, self.auto_note = self._auto_mode(total)
        if mode == "full" and check_backward_ad and total > FULL_LIMIT:
            raise UserError(f"mode='full' would build Jacobians of {total:,} entries, over "
                            f"the limit of {FULL_LIMIT:,}", hint="use mode='auto' or "
                            "mode='fast' (random projections vᵀJu)")
        self.mode = mode
        self._charge_working_memory(mode, check_backward_ad, forward_ad)
        self.mode_notes = [] if mode == "full" else [f"{self.k} projections"]
        if self.auto_note:
            self.mode_notes.append(f"auto: {self.auto_note}")
        res = CheckResult(passed=True, method=self.method, mode=self._mode_label(),
                          eps=self.eps, atol=self.atol, rtol=self.rtol, seed=self.seed,
                          input_names=self.names, warnings=list(self.warnings),
                          inputs=[None if d is None else d.copy() for d in self.in_data])
        self.res = res
        if check_backward_ad:
            if not self.diff_outs:
                self._no_differentiable_outputs()
            elif mode == "full":
                self._full()
            else:
                self._fast()
            if check_undefined_grad and self.diff_outs:
                res.problems += self._undefined_grad_problems()
        if forward_ad:
            self._forward_ad()
        res.n_evals = self.ev.n_evals
        res.path = self.ev.path
        res.passed = not res.problems and all(b.passed for b in res.blocks)
        return res

    def _charge_working_memory(self, mode: str, backward: bool, forward: bool) -> None:
        """Under a memory budget (a spec check), refuse before starting a check whose own
        arrays would not fit: in full mode the two Jacobians (and for forward AD the
        identity directions), in fast mode, per input element, the k random directions, the
        k + 1 gradients twice (the reentrancy check) and what the batched backward makes on
        the way (measured: about 5k + 5 values)."""
        if MODE.budget is None or not (backward or forward):
            return
        inputs = sum(self.in_data[j].size for j in self.diff)
        if mode == "full":
            outputs = sum(self.out_sizes[o] for o in self.diff_outs)
            entries = 2 * outputs * inputs
            if forward:
                entries += max(self.in_data[j].size for j in self.diff) ** 2
        else:
            entries = (5 * self.k + 5) * inputs
        limits.check_new((entries,), 8, f"the checker's working memory ({mode} mode)")

    # -- mode="auto": by estimated cost
    def _auto_mode(self, total: int) -> tuple:
        """Full mode when its Jacobians fit in memory and its estimated time is within
        ``AUTO_FULL_SECONDS``, else fast mode; with the reason, for the report."""
        if total > AUTO_FULL_LIMIT:
            return "fast", f"{total:,} Jacobian entries are over {AUTO_FULL_LIMIT:,}"
        cost = self._full_cost()
        if cost <= AUTO_FULL_SECONDS:
            return "full", f"estimated within {AUTO_FULL_SECONDS:g} s"
        return "fast", f"full mode estimated over {AUTO_FULL_SECONDS:g} s"

    def _full_cost(self, outputs=None, inputs=None) -> float:
        """Estimated seconds of a full check of ``outputs`` x ``inputs`` (all by default):
        first a bound from the time of one forward (every perturbation and every backward row
        as dear as a forward), and when that is over budget, a measurement: a few columns of
        each input's numerical Jacobian and a few rows of each output's analytical one, in
        batches as the full check runs them, extrapolated."""
        outputs = self.diff_outs if outputs is None else outputs
        inputs = self.diff if inputs is None else inputs
        per_column = len([o for o in numeric.STENCILS[self.method][0] if o != 0.0])
        columns = sum(self.in_data[j].size for j in inputs)
        rows = sum(self.out_sizes[o] for o in outputs)
        bound = self.forward_time * (per_column * columns + rows)
        if bound <= AUTO_FULL_SECONDS / 4:
            return bound
        if self.forward_time * per_column * AUTO_SAMPLE > AUTO_FULL_SECONDS:
            return bound             # even the measurement would be too dear
        return sum(self._rate("column", j) * self.in_data[j].size for j in inputs) + \
            sum(self._rate("row", o) * self.out_sizes[o] for o in outputs)

    def _rate(self, what: str, index: int) -> float:
        """Measured seconds per numerical column of input ``index`` ("column") or per
        analytical row of output ``index`` ("row")."""
        key = (what, index)
        if key not in self._rates:
            size = self.in_data[index].size if what == "column" else self.out_sizes[index]
            sample = np.unique(np.linspace(0, size - 1, min(size, AUTO_SAMPLE)).astype(int))
            evals = self.ev.n_evals        # a measurement, not part of the check's count:
            start = time.perf_counter()    # reports stay the same from run to run
            if what == "column":
                self._numerical(index, sample)
            else:
                out = self.out_data[index]
                _analytical_rows(self._vjp(index, self.diff), out.shape, out.dtype, sample)
            self._rates[key] = (time.perf_counter() - start) / len(sample)
            self.ev.n_evals = evals
        return self._rates[key]

    def _undefined_grad_problems(self) -> list:
        # one output: the walk of its backward is the one its Jacobian rows used
        planned = self._plans.get(self.diff_outs[0]) if len(self.diff_outs) == 1 else None
        return _undefined_grad_problems([self.outs[o] for o in self.diff_outs],
                                        [self.inputs[j] for j in self.diff],
                                        zero_case=False,
                                        names=[self.names[j] for j in self.diff],
                                        planned=planned)

    def _zero_rows(self, o: int, grads: list) -> None:
        for j, g in zip(self.diff, grads):
            if g is not None and _nonzero_finite(g) and \
                    not (self.masked and np.nanmax(np.abs(g)) <= MASKED_ZERO_ATOL):
                self.res.problems.append(
                    f"undefined gradient: backward not multiplied by grad_output (zero output "
                    f"gradients): {self.names[j]} got a nonzero gradient for output {o} "
                    f"(max |grad| = {np.max(np.abs(g)):.3g})")

    def _evaluator(self):
        return numeric.Evaluator(self.fn, self.inputs, len(self.outs), self.upcast)

    def _base_outputs(self, needed: bool = False):
        if self.method != "forward" and not needed:
            return [None] * len(self.outs)
        return self.ev.plain_outputs()

    def _numerical(self, j, columns=None, method=None, eps=None, supports=None):
        method = method or self.method
        base = self.base_outputs
        if method == "forward" and base and base[0] is None:
            base = self.base_outputs = self._base_outputs(needed=True)
        return numeric.numerical_jacobian(self.ev, j, self.out_sizes, method,
                                          self.eps if eps is None else eps, base, columns,
                                          supports)

    def _no_differentiable_outputs(self):
        for j in self.diff:
            for o, jac in enumerate(self._numerical(j)):
                if self.out_sizes[o] is not None and np.any(jac != 0):
                    self.res.problems.append(
                        f"Numerical gradient for function expected to be zero: no output "
                        f"requires grad, but output {o} changes with {self.names[j]}")

    # -- full mode
    def _vjp(self, o: int, js: list):
        """The batched backward of output ``o`` to inputs ``js`` (the graph walked once per
        output, for every backward of the check to all inputs)."""
        inputs = [self.inputs[j] for j in js]
        if js != self.diff:
            return gt_vjp(self.outs[o], inputs)
        if o not in self._plans:
            self._plans[o] = graph.plan([self.outs[o]], inputs)
        return gt_vjp(self.outs[o], inputs, self._plans[o])

    def _full(self):
        numerical, num_time, num_evals, num_support = {}, {}, {}, {}
        for j in self.diff:
            t0, e0 = time.perf_counter(), self.ev.n_evals
            num_support[j] = []
            numerical[j] = self._numerical(j, supports=num_support[j])
            num_time[j] = time.perf_counter() - t0
            num_evals[j] = self.ev.n_evals - e0
        in_sizes = [self.in_data[j].size for j in self.diff]
        for o in self.diff_outs:
            t0 = time.perf_counter()
            vjp = self._vjp(o, self.diff)
            shape, dtype = self.out_data[o].shape, self.out_data[o].dtype
            positional = _positional(self.outs[o], [self.inputs[j] for j in self.diff])
            jac, first, zero, an_support = _analytical_full(vjp, shape, dtype, in_sizes,
                                                            positional)
            nondet = _reentrancy(vjp, shape, dtype, first) if first is not None else \
                [0.0] * len(self.diff)
            if zero is not None:
                self._zero_rows(o, zero)
            an_time = time.perf_counter() - t0
            for jj, j in enumerate(self.diff):
                t1 = time.perf_counter()
                unused = jac[jj] is None
                A = np.zeros((self.out_sizes[o], self.in_data[j].size)) if unused \
                    else jac[jj]
                N = numerical[j][o]
                support = _union(np.zeros(0, np.int64) if unused else an_support[jj],
                                 num_support[j][o])
                block = self._block(o, j, A, N, unused, support=support)
                block.n_evals = num_evals[j]
                block.wall_time = num_time[j] / len(self.diff_outs) + \
                    an_time / len(self.diff) + time.perf_counter() - t1
                if nondet[jj] > self.nondet_tol and not unused:
                    self._mark_nondet(block, nondet[jj])
                self.res.blocks.append(block)

    def _mark_nondet(self, block, gap):
        """torch's "Backward is not reentrant": the same batch of cotangents through the
        backward twice gave different gradients.  Then the analytical Jacobian depends on how
        often the backward ran, so this is the cause to report, before any mismatch."""
        text = (f"backward is not reentrant: running backward twice with the same input and "
                f"grad_output gives values that differ by {gap:.3g} (nondet_tol = "
                f"{self.nondet_tol:g}); a backward that changes what it saved (e.g. an "
                "in-place update of a tensor kept on ctx) or draws random numbers")
        if block.passed:
            text += "; the analytical gradient matches the numerical one"
        else:
            text += f"; the Jacobian it gives also disagrees: {block.diagnosis}"
        block.passed = False
        block.kind = "nondeterministic"
        block.diagnosis = text

    def _block(self, o, j, A, N, unused, stage="first order", support=None) -> BlockResult:
        cmp = compare(A, N, self.atol, self.rtol, support)
        out_shape = self.out_data[o].shape
        in_shape = self.in_data[j].shape
        block = BlockResult(output=o, input=j, output_name=f"output {o}",
                            input_name=self.names[j], passed=cmp.passed,
                            max_abs_error=cmp.max_abs, max_rel_error=cmp.max_rel,
                            mode="full", path=self.ev.path, stage=stage,
                            numerical=N, analytical=A)
        if cmp.worst is not None:
            r, c = cmp.worst
            block.worst_index = (_unravel(r, out_shape), _unravel(c, in_shape))
            block.numerical_value = float(N[r, c])
            block.analytical_value = float(A[r, c])
        if not cmp.passed:
            d = diagnose(A, N, cmp, self.atol, self.rtol, in_shape, out_shape, unused=unused,
                         kink_probe=lambda cols: self._kink_probe(o, j, cols),
                         stability_probe=lambda cols: self._stability_probe(o, j, cols, N),
                         kink_ops=self.kink_ops(),
                         determinism_probe=self._determinism_probe,
                         cause_probe=Probe(self, o, j) if stage == "first order" else None)
            block.kind, block.diagnosis = d.kind, d.text
            block.evidence = d.evidence or {}
            block.factor, block.elements = d.factor, d.elements or []
            block.path = self.ev.path
        return block

    def _determinism_probe(self) -> float:
        """Largest difference between two plain calls at the same inputs (computed once)."""
        if self._forward_gap is None:
            with np.errstate(all="ignore"):
                first, again = self.ev.plain_outputs(), self.ev.plain_outputs()
            self._forward_gap = max(_gaps(first, again), default=0.0)
        return self._forward_gap

    def _kink_probe(self, o, j, cols):
        if self.method == "complex":
            return np.zeros((1, 1)), np.zeros((1, 1))
        fwd = self._numerical(j, cols, "forward", self.eps)[o]
        bwd = self._numerical(j, cols, "forward", -self.eps)[o]
        return fwd, bwd

    def _stability_probe(self, o, j, cols, N):
        out = [(f"eps={self.eps:g}", N)]
        for scale in (10.0, 0.1):
            e = self.eps * scale
            out.append((f"eps={e:g}", self._numerical(j, cols, "central", e)[o]))
        return out

    # -- fast mode
    def _random(self, shape, dtype=np.float64):
        v = self.rng.random((self.k,) + tuple(shape))
        flat = v.reshape(self.k, -1)
        norms = np.sqrt(_einsum("ki,ki->k", flat, flat))
        if not np.logical_and.reduce(norms, axis=None):     # a zero direction (size 0)
            norms[norms == 0] = 1.0
        flat /= norms[:, None]           # in place: v can be as large as all the inputs
        return v.astype(dtype, copy=False)

    def _fast(self):
        thresholds = self._fast_pairs()
        if thresholds:
            self.mode_notes.append(f"it sees errors spread over the Jacobian, and a single "
                                   f"wrong entry over ~{max(thresholds):.2g}; mode='full' "
                                   "compares every entry")
            self.res.mode = self._mode_label()

    def _mode_label(self) -> str:
        """``full``, ``full (auto: estimated within 5 s)``, ``fast (4 projections; auto: ...)``."""
        notes = "; ".join(self.mode_notes)
        return f"{self.mode} ({notes})" if notes else self.mode

    def _fast_pairs(self) -> list:
        """The fast-mode blocks; returns per block the single-entry error it would see."""
        thresholds = []
        us = {j: self._random(self.in_data[j].shape) for j in self.diff}
        vs = {o: self._random(self.out_data[o].shape, self.out_data[o].dtype)
              for o in self.diff_outs}
        num = {}
        small = len(self.diff) > 1 and \
            sum(self.in_data[j].nbytes for j in self.diff) * 2 * len(self.diff) * \
            len(numeric.STENCILS[self.method][0]) * self.k <= numeric.MANY_BYTES
        if small:
            # small inputs: every input's perturbations in one batch (the calls are the cost)
            e0 = self.ev.n_evals
            t0 = time.perf_counter()
            many = numeric.directional_many(self.ev, us, self.out_sizes, self.method,
                                            self.eps, self.base_outputs)
            share = ((self.ev.n_evals - e0) / len(self.diff),
                     (time.perf_counter() - t0) / len(self.diff))
            num = {j: (many[j], round(share[0]), share[1]) for j in self.diff}
        for j in self.diff:
            if j in num:
                continue
            e0 = self.ev.n_evals
            t0 = time.perf_counter()
            ju = numeric.directional(self.ev, j, us[j], self.out_sizes, self.method, self.eps,
                                     self.base_outputs)
            num[j] = (ju, self.ev.n_evals - e0, time.perf_counter() - t0)
        for o in self.diff_outs:
            t0 = time.perf_counter()
            vjp = self._vjp(o, self.diff)
            # one batched backward: the k projections plus a zero cotangent (whose gradient
            # must be zero: "backward not multiplied by grad_output"); the reentrancy check
            # runs the very same batch again
            cot = np.zeros((self.k + 1,) + self.out_data[o].shape, dtype=vs[o].dtype)
            cot[:self.k] = vs[o]
            both = vjp(cot)
            g1 = [None if g is None else g[:self.k] for g in both]
            self._zero_rows(o, [None if g is None else g[self.k:] for g in both])
            nondet = _gaps(both, vjp(cot))
            an_time = time.perf_counter() - t0
            vflat = vs[o].reshape(self.k, -1).astype(np.float64, copy=False)
            for jj, j in enumerate(self.diff):
                ju, evals, ntime = num[j]
                n_s = _einsum("ko,ko->k", vflat, ju[o])
                uflat = us[j].reshape(self.k, -1)
                unused = g1[jj] is None
                a_s = np.zeros(self.k) if unused else _einsum("ki,ki->k", g1[jj], uflat)
                # k is small: the per-projection arithmetic on plain floats (the same IEEE
                # operations numpy's elementwise ones are, at a fraction of their cost)
                usum = np.add.reduce(uflat, axis=1).tolist()
                vsum = np.add.reduce(vflat, axis=1).tolist()
                n_l = n_s.tolist()
                atol = [float(self.atol) * u * v for u, v in zip(usum, vsum)]
                entries = max(1, uflat.shape[1] * vflat.shape[1])
                thresholds.append(_single_entry_threshold(
                    [u * v / entries for u, v in zip(usum, vsum)],
                    [t + float(self.rtol) * abs(n) for t, n in zip(atol, n_l)]))
                block = self._fast_block(o, j, a_s, n_s, atol, unused)
                block.n_evals = evals
                block.wall_time = ntime / len(self.diff_outs) + an_time / len(self.diff)
                if not unused and nondet[jj] > self.nondet_tol:
                    self._mark_nondet(block, nondet[jj])
                self.res.blocks.append(block)
        return thresholds

    def _fast_block(self, o, j, a_s, n_s, atol, unused) -> BlockResult:
        # k is small (1 for gradcheck): plain floats are faster than numpy here
        a_l, n_l, t_l = a_s.tolist(), n_s.tolist(), atol
        diffs = [abs(a - n) for a, n in zip(a_l, n_l)]
        ok = all(d <= t + self.rtol * abs(n) for d, t, n in zip(diffs, t_l, n_l))
        worst = max(range(len(diffs)), key=lambda i: diffs[i] if diffs[i] == diffs[i]
                    else float("inf"))
        block = BlockResult(output=o, input=j, output_name=f"output {o}",
                            input_name=self.names[j], passed=ok, max_abs_error=max(diffs),
                            max_rel_error=max(d / max(abs(n), self.atol)
                                              for d, n in zip(diffs, n_l)),
                            numerical_value=n_l[worst], analytical_value=a_l[worst],
                            mode=f"fast ({self.k} projections)", path=self.ev.path)
        if block.passed:
            return block
        size = self.out_sizes[o] * self.in_data[j].size
        if size <= AUTO_FULL_LIMIT and self._full_cost([o], [j]) <= AUTO_FULL_SECONDS:
            # as torch: recompute this block in full for a precise report
            N = self._numerical(j)[o]
            A, _, _, _ = _analytical_full(self._vjp(o, [j]), self.out_data[o].shape,
                                          self.out_data[o].dtype, [self.in_data[j].size])
            unused = A[0] is None
            A = np.zeros_like(N) if unused else A[0]
            full = self._block(o, j, A, N, unused)
            full.passed = False
            full.mode = block.mode + ", failing block recomputed in full"
            if full.kind == "ok":
                full.kind = "mismatch"
                full.diagnosis = ("fast check failed but every element is within tolerance "
                                  "(projections accumulate error): rerun with mode='full'")
            return full
        d = diagnose_scalars(a_s, n_s, self.atol, self.rtol)
        block.kind, block.diagnosis, block.factor = d.kind, d.text, d.factor
        return block

    # -- forward mode
    def _forward_ad(self):
        """JVPs from forward-mode AD against finite differences (and against reverse mode):
        in full mode one JVP per input element (the Jacobian's columns), in fast mode along
        k random directions (compared direction by direction)."""
        k = self.k
        full = self.mode == "full"
        for j in self.diff:
            x = self.inputs[j]
            n = x._data.size
            if n == 0:                 # an empty input: no direction to differentiate along
                continue
            dirs = np.eye(n).reshape((n,) + x._data.shape) if full else \
                self._random(x._data.shape)
            t0 = time.perf_counter()
            jvps = [self._jvp(j, d) for d in dirs]        # per direction, per output
            ju_num = numeric.directional(self.ev, j, dirs, self.out_sizes, self.method,
                                         self.eps, self.base_outputs)
            elapsed = time.perf_counter() - t0
            for o, t in enumerate(self.outs):
                if self.out_sizes[o] is None or not t._rg:
                    continue
                A = np.stack([np.zeros(self.out_sizes[o]) if jv[o] is None
                              else jv[o].reshape(-1) for jv in jvps]).T
                N = ju_num[o].T
                if full:
                    block = self._block(o, j, A, N, False, stage="forward AD")
                else:
                    block = self._fast_forward_block(o, j, A, N)
                block.wall_time = elapsed
                if not block.passed and block.kind not in ("nan",):
                    # the diagnosis speaks of "the backward"; here it is the JVP
                    block.diagnosis = "forward-mode AD (JVP) " + block.diagnosis.replace(
                        "the backward gives", "the JVP gives")
                self.res.blocks.append(block)
                if full:    # project the forward-mode Jacobian on random directions
                    u = self._random(self.in_data[j].shape)
                    self._fw_rev_consistency(o, j, u, A @ u.reshape(k, -1).T)
                else:
                    self._fw_rev_consistency(o, j, dirs, A)

    def _fast_forward_block(self, o, j, A, N) -> BlockResult:
        """Fast mode's forward AD: columns of ``A``/``N`` are the JVPs along k random
        directions (not input elements), so the worst element names a direction."""
        cmp = compare(A, N, self.atol, self.rtol)
        block = BlockResult(output=o, input=j, output_name=f"output {o}",
                            input_name=self.names[j], passed=cmp.passed,
                            max_abs_error=cmp.max_abs, max_rel_error=cmp.max_rel,
                            mode=f"fast ({self.k} projections)", path=self.ev.path,
                            stage="forward AD")
        if cmp.worst is not None:
            r, c = cmp.worst
            block.numerical_value = float(N[r, c])
            block.analytical_value = float(A[r, c])
        if not cmp.passed:
            d = diagnose_scalars(A.ravel(), N.ravel(), self.atol, self.rtol)
            block.kind, block.diagnosis, block.factor = d.kind, d.text, d.factor
        return block

    def _jvp(self, j, direction):
        with fwAD.dual_level():
            args = list(self.inputs)
            args[j] = fwAD.make_dual(self.inputs[j].detach(), direction.astype(
                self.inputs[j]._data.dtype))
            for i in self.diff:
                if i != j:
                    args[i] = self.inputs[i].detach()
            with no_grad():
                outs = _as_tuple(self.fn(*args))
            return [None if not isinstance(t, Tensor) or t._fw is None else
                    np.asarray(t._fw[1], dtype=np.float64) for t in outs]

    def _fw_rev_consistency(self, o, j, dirs, ju):
        """vᵀ(Ju) from forward mode against (vᵀJ)u from reverse mode."""
        v = self._random(self.out_data[o].shape, self.out_data[o].dtype)
        g = self._vjp(o, [j])(v)[0]
        vJ = np.zeros((self.k, dirs[0].size)) if g is None else g
        rev = np.einsum("ki,ki->k", vJ, dirs.reshape(self.k, -1))
        fwd = np.einsum("ko,ok->k", v.reshape(self.k, -1), ju)
        if not np.allclose(fwd, rev, rtol=self.rtol, atol=self.atol):
            self.res.problems.append(
                f"forward/reverse inconsistency for d output {o} / d {self.names[j]}: "
                f"vᵀ(Ju) = {fwd[0]:.6g} (forward mode) but (vᵀJ)u = {rev[0]:.6g} "
                "(reverse mode)")


def _single_entry_threshold(typical: list, tolerance: list) -> float:
    """How large a wrong Jacobian entry must be for fast mode to see it: an error e at entry
    (r, c) moves projection p by v_r e u_c, which fails it when over its tolerance; at a
    typical entry (``typical``: per projection, the mean of u times the mean of v) the
    smallest such |e| over the k projections (k is small: plain floats)."""
    needed = [t / m if m > 0 else float("inf")
              for t, m in zip(tolerance, typical)]
    return min(needed, default=float("inf"))


def _distinct(inputs: tuple) -> tuple:
    """The same tensor given twice (``check(f, (x, x))``) becomes two leaves: each position
    is an input of its own, perturbed and differentiated alone (otherwise the backward sums
    both positions' gradients while a perturbation moves one)."""
    seen, out = set(), []
    for x in inputs:
        if isinstance(x, Tensor) and id(x) in seen:
            x = x.detach().clone().requires_grad_(x.requires_grad)
        seen.add(id(x))
        out.append(x)
    return tuple(out)


def _seconds(t: float) -> str:
    return f"{t * 1000:.3g} ms" if t < 1 else f"{t:.3g} s"


def _unravel(i, shape) -> tuple:
    return tuple(int(k) for k in np.unravel_index(int(i), shape)) if shape else ()


# ---- torch-compatible entry points -------------------------------------------------------------
def gradcheck(fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, nondet_tol: float = 0.0,
              check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
              check_batched_grad: bool = False, check_batched_forward_grad: bool = False,
              check_forward_ad: bool = False, check_backward_ad: bool = True,
              fast_mode: bool = False, masked: bool | None = None) -> bool:
    """``torch.autograd.gradcheck``: True if the gradients are right; else raise
    :class:`~gradtool.errors.GradcheckError` with the checker's report (or return False
    when ``raise_exception=False``).  The keyword arguments are torch's, with its meaning
    (see :mod:`.extra_checks` for check_grad_dtypes, check_batched_grad,
    check_batched_forward_grad and masked)."""
    extra_checks.validate_gradcheck(
        check_forward_ad=check_forward_ad, check_backward_ad=check_backward_ad,
        check_batched_grad=check_batched_grad,
        check_batched_forward_grad=check_batched_forward_grad, masked=masked)
    result = _checked_with_extras(
        fn, inputs, eps=eps, atol=atol, rtol=rtol, nondet_tol=nondet_tol,
        mode="fast" if fast_mode else "full", forward_ad=check_forward_ad,
        check_undefined_grad=check_undefined_grad, check_backward_ad=check_backward_ad,
        n_projections=1, check_grad_dtypes=check_grad_dtypes,
        check_batched_grad=check_batched_grad,
        check_batched_forward_grad=check_batched_forward_grad, masked=bool(masked))
    return _verdict(result, raise_exception)


def _checked_with_extras(fn, inputs, *, check_grad_dtypes: bool, check_batched_grad: bool,
                         check_batched_forward_grad: bool, masked: bool,
                         input_names=None, seed: int = 0, **kw) -> CheckResult:
    """:func:`check`, then the checks torch's keyword arguments ask for, their problems
    added to the result's (as the undefined-gradient check's)."""
    from . import torch_bridge
    if torch_bridge.is_torch_call(fn, inputs):
        extra_checks.refuse_torch_call(
            check_grad_dtypes=check_grad_dtypes, check_batched_grad=check_batched_grad,
            check_batched_forward_grad=check_batched_forward_grad, masked=masked)
        return check(fn, inputs, input_names=input_names, seed=seed, **kw)
    start = time.perf_counter()
    result = check(fn, inputs, input_names=input_names, seed=seed, masked=masked, **kw)
    if not (check_grad_dtypes or check_batched_grad or check_batched_forward_grad):
        return result
    inputs = _distinct(_as_tuple(inputs))
    names = list(result.input_names) or None
    extras = []
    if check_grad_dtypes:
        extras += extra_checks.grad_dtype_problems(
            fn, inputs, seed=seed, names=names, forward_ad=kw.get("forward_ad", False),
            backward_ad=kw.get("check_backward_ad", True))
    if check_batched_grad:
        extras += extra_checks.batched_grad_problems(fn, inputs, seed=seed, names=names)
    if check_batched_forward_grad:
        extras += extra_checks.batched_forward_grad_problems(fn, inputs, seed=seed,
                                                             names=names)
    result.problems += extras
    result.passed = result.passed and not extras
    result.wall_time = time.perf_counter() - start
    return result


def _verdict(result: CheckResult, raise_exception: bool) -> bool:
    if result.passed:
        return True
    if raise_exception:
        raise GradcheckError(result.report(), result)
    return False


GRADGRAD_GRAPH_BYTES = 2 ** 25    # numerical side of gradgradcheck: graphs built per backward
GRADGRAD_GRAPH_EXAMPLES = 64      # and at most this many perturbed points per backward


def _gradgrad_function(fn, inputs, grad_outputs, first_outputs=None):
    """``new_func(*inputs, *grad_outputs)``: the first-order gradients (with their graph,
    ``create_graph=True``), the function gradgradcheck checks.

    ``first_outputs``: ``fn``'s outputs at ``inputs`` with their graph, when the caller made
    them (to choose random grad_outputs); the first call, the check's forward at ``inputs``,
    uses them instead of running ``fn`` again (its backward still runs once on that graph,
    as on a fresh one).

    Its ``batched_call`` evaluates it at a batch of perturbed arguments (the numerical
    side), where a vmap of ``new_func`` would run one call per example (autograd inside):
    perturbations of the grad_outputs alone are one batched backward of one graph (new_func
    is linear in them); otherwise each example gets its graph (``fn`` at its values, fresh
    leaves) and one backward runs through the graphs of up to ``GRADGRAD_GRAPH_EXAMPLES``
    examples at once (the graphs are disjoint: each example's gradients are its own).  These
    backwards give values only: they do not record (``create_graph=False``, which is most of
    the numerical side's time saved), so a backward sees grad mode off there, where torch's
    numerical side runs it with grad mode on; a backward giving other values with grad mode
    off than on is compared at the values it gives off."""
    n_in = len(inputs)
    diff_in = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x._rg]
    diff_go = [i for i, g in enumerate(grad_outputs) if g._rg]
    pending = [first_outputs]

    def leaves(args) -> list:
        """The inputs among ``args``, the differentiable ones requiring grad."""
        return [x.requires_grad_() if i in diff_in else x for i, x in enumerate(args[:n_in])]

    def new_func(*args):
        first = pending.pop() if pending else None
        with enable_grad():
            xs = leaves(args)
            if first is None or any(a is not x for a, x in zip(args, inputs)):
                first = _differentiable(fn(*xs))
            gos = [g.requires_grad_() if i in diff_go else g
                   for i, g in enumerate(args[n_in:])]
            grads = graph.grad(first, [xs[i] for i in diff_in], gos, create_graph=True,
                               allow_unused=True)
        return tuple(g for g in grads if g is not None)

    def grad_output_batch(args, batches: dict, size: int) -> list:
        with enable_grad():
            xs = leaves(args)
            outs = _differentiable(fn(*xs))
        gos = []
        for i, g in enumerate(args[n_in:]):
            data = batches.get(n_in + i)
            if data is None:
                data = np.broadcast_to(g._data, (size,) + g.shape)
            gos.append(_make(np.asarray(data, dtype=g._data.dtype)))
        with no_grad():
            grads = graph.grad(outs, [xs[i] for i in diff_in], gos, allow_unused=True,
                               is_grads_batched=True)
        return [g._data for g in grads if g is not None]

    def example_graphs(args, batches: dict, examples) -> list:
        """new_func at each example: per example the tuple of its gradients (arrays)."""
        outs, targets, gos = [], [], []
        with enable_grad():
            for e in examples:
                call = [_make(batches[i][e]) if i in batches else
                        _make(a._data) if i in diff_in else a for i, a in enumerate(args)]
                xs = leaves(call)
                first = _differentiable(fn(*xs))
                if len(first) != len(grad_outputs):   # as graph.grad: never misaligned
                    raise EngineError(f"grad requires one grad_output per output: got "
                                      f"{len(grad_outputs)} for {len(first)}")
                outs += first
                gos += [g._data if isinstance(g, Tensor) else g for g in call[n_in:]]
                targets += [xs[i] for i in diff_in]
        with no_grad():
            grads = graph.grad(outs, targets, [_make(np.asarray(g)) for g in gos],
                               allow_unused=True)
        n = len(diff_in)
        return [tuple(g._data for g in grads[k * n:(k + 1) * n] if g is not None)
                for k in range(len(examples))]

    def batched_call(args, batches: dict, size: int):
        """``new_func`` at ``args`` with the arguments of ``batches`` taking each of their
        values (dense, batch axis first): per output a dense batch (None: the examples'
        gradients differ in which inputs they reach; the caller loops).  Examples where
        only grad_outputs move (in a batch perturbing several arguments, one at a time)
        share one graph and one batched backward."""
        moved = np.zeros(size, dtype=bool)
        for j, batch in batches.items():
            if j < n_in:
                moved |= (batch != args[j]._data).reshape(size, -1).any(axis=1)
        if not moved.any():
            return grad_output_batch(args, batches, size)
        per_example = sum(a._data.nbytes for a in args if isinstance(a, Tensor))
        step = max(1, min(GRADGRAD_GRAPH_EXAMPLES,
                          GRADGRAD_GRAPH_BYTES // max(1, 16 * per_example)))
        examples = np.flatnonzero(moved)
        rows = []
        for start in range(0, len(examples), step):
            rows += example_graphs(args, batches, examples[start:start + step])
        if any(len(r) != len(rows[0]) or
               any(a.shape != b.shape for a, b in zip(r, rows[0])) for r in rows):
            return None
        if len(examples) == size:
            return [np.stack(column) for column in zip(*rows)]
        still = np.flatnonzero(~moved)
        shared = grad_output_batch(args, {j: b[still] for j, b in batches.items()}, len(still))
        if len(shared) != len(rows[0]) or \
                any(a.shape[1:] != b.shape for a, b in zip(shared, rows[0])):
            return None
        outs = []
        for column, part in zip(zip(*rows), shared):
            out = np.empty((size,) + part.shape[1:], dtype=np.result_type(part, *column))
            out[examples] = np.stack(column)
            out[still] = part
            outs.append(out)
        return outs

    new_func.batched_call = batched_call
    return new_func


def _differentiable(outputs) -> list:
    return [o for o in _as_tuple(outputs) if isinstance(o, Tensor) and o._rg]


def _random_grad_outputs(fn, inputs, seed) -> tuple:
    """(grad_outputs uniform in [-1, 1], one per differentiable output; those outputs)."""
    with enable_grad():
        outs = _differentiable(fn(*inputs))
    rng = numeric.seeded_generator(seed + 1)
    result = []
    for o in outs:
        dt = o._data.dtype if o._data.dtype.kind in "fc" else np.float64
        g = _make(rng.uniform(-1, 1, o._data.shape).astype(dt))
        g.requires_grad_(True)
        result.append(g)
    return tuple(result), outs


def _gradgrad_result(fn, inputs, grad_outputs, input_names=None, first_outputs=None,
                     **kw) -> CheckResult:
    """The check of ``new_func`` (``first_outputs``: fn's outputs at ``inputs``, with their
    graph, when the caller made them to choose the grad_outputs)."""
    inputs = _as_tuple(inputs)
    outs = first_outputs
    if grad_outputs is None:
        grad_outputs, outs = _random_grad_outputs(fn, inputs, kw.get("seed", 0))
    else:
        grad_outputs = _as_tuple(grad_outputs)
    new_func = _gradgrad_function(fn, inputs, grad_outputs, outs)
    names = list(input_names) if input_names is not None and \
        len(input_names) == len(inputs) else [f"input {i}" for i in range(len(inputs))]
    names += [f"grad_output {i}" for i in range(len(grad_outputs))]
    return check(new_func, inputs + grad_outputs, input_names=names, **kw)


def gradgradcheck(fn, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, gen_non_contig_grad_outputs: bool = False,
                  raise_exception: bool = True, nondet_tol: float = 0.0,
                  check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
                  check_batched_grad: bool = False, check_fwd_over_rev: bool = False,
                  check_rev_over_rev: bool = True, fast_mode: bool = False,
                  masked: bool = False) -> bool:
    """``torch.autograd.gradgradcheck``: gradcheck of the gradient itself (computed with
    ``create_graph=True``) w.r.t. the inputs and the output gradients (random in [-1, 1]
    when not given; strided views with ``gen_non_contig_grad_outputs``).
    ``check_rev_over_rev`` checks its reverse mode (the second derivatives by a backward
    through the backward), ``check_fwd_over_rev`` its forward mode (forward AD through the
    backward; refused, naming the primitive, where gradtool's engine cannot compute it)."""
    extra_checks.validate_gradgradcheck(
        check_fwd_over_rev=check_fwd_over_rev, check_rev_over_rev=check_rev_over_rev,
        check_undefined_grad=check_undefined_grad, check_batched_grad=check_batched_grad,
        masked=masked)
    inputs = _as_tuple(inputs)
    outs = None
    from . import torch_bridge
    if torch_bridge.is_torch_call(fn, inputs):
        extra_checks.refuse_torch_call(
            gen_non_contig_grad_outputs=gen_non_contig_grad_outputs,
            check_grad_dtypes=check_grad_dtypes, check_batched_grad=check_batched_grad,
            check_fwd_over_rev=check_fwd_over_rev, masked=masked)
    elif grad_outputs is None:
        grad_outputs, outs = _random_grad_outputs(fn, inputs, 0)
        if gen_non_contig_grad_outputs:
            grad_outputs = extra_checks.non_contiguous(grad_outputs)
    if check_fwd_over_rev and not torch_bridge.is_torch_call(fn, inputs):
        unsupported = extra_checks.fwd_over_rev_unsupported(fn, inputs)
        if unsupported:
            raise UserError(
                "check_fwd_over_rev=True: gradtool's engine cannot compute "
                "forward-over-reverse derivatives through "
                f"{', '.join(repr(name) for name in unsupported)} (its backward reads "
                "saved values without their forward-mode tangents)",
                hint="check the second derivatives with check_rev_over_rev=True and "
                     "check_fwd_over_rev=False")
    result = _gradgrad_result(fn, inputs, grad_outputs, first_outputs=outs, eps=eps,
                              atol=atol, rtol=rtol, nondet_tol=nondet_tol,
                              mode="fast" if fast_mode else "full",
                              forward_ad=check_fwd_over_rev,
                              check_undefined_grad=check_undefined_grad,
                              check_backward_ad=check_rev_over_rev, n_projections=1,
                              masked=masked)
    if check_grad_dtypes or check_batched_grad:
        new_func = _gradgrad_function(fn, inputs, _as_tuple(grad_outputs))
        args = inputs + _as_tuple(grad_outputs)
        names = list(result.input_names) or None
        extras = []
        if check_grad_dtypes:
            extras += extra_checks.grad_dtype_problems(
                new_func, args, seed=0, names=names, forward_ad=check_fwd_over_rev,
                backward_ad=check_rev_over_rev)
        if check_batched_grad:
            extras += extra_checks.batched_grad_problems(new_func, args, seed=0, names=names)
        result.problems += extras
        result.passed = result.passed and not extras
    return _verdict(result, raise_exception)
