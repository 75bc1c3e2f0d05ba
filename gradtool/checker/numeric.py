"""Finite differences: numerical Jacobians and directional derivatives.

Every perturbation of an input is one example of a batch; the batch is evaluated by
:mod:`gradtool.engine.vmap` (no graph), in chunks of at most ``CHUNK_BYTES`` of perturbed
inputs, and falls back to a Python loop over the examples when the function cannot run
batched.  A batched result is spot-checked against plain calls on two examples.

Methods (``h`` = eps):

* ``central``: (f(x+h) - f(x-h)) / 2h, error O(h^2);
* ``forward``: (f(x+h) - f(x)) / h, error O(h);
* ``richardson``: (8 (f(x+h) - f(x-h)) - (f(x+2h) - f(x-2h))) / 12h, error O(h^4);
* ``complex``: Im f(x + i h) / h with h = 1e-20, exact up to rounding for analytic f.
"""

from __future__ import annotations

import numpy as np

from ..engine import vmap as V
from ..errors import EngineError
from ..engine.backend import errors_off, errors_restore
from ..engine.grad_mode import enable_grad, no_grad
from ..engine.tensor import Tensor, _make

CHUNK_BYTES = 256 * 2 ** 20
COMPLEX_STEP = 1e-20

#: offsets (in units of h) and the weights combining them, per method; "0" is f(x)
STENCILS = {
    "central": ((1.0, -1.0), (0.5, -0.5)),
    "forward": ((1.0, 0.0), (1.0, -1.0)),
    "richardson": ((1.0, -1.0, 2.0, -2.0), (8 / 12, -8 / 12, -1 / 12, 1 / 12)),
    "complex": ((1.0,), (1.0,)),
}


_GENERATORS: dict = {}


def seeded_generator(seed: int) -> np.random.Generator:
    """A generator at the start of ``seed``'s stream, the same for the same seed (creating one
    costs ~25 us, resetting a cached one ~1 us: fast mode on small functions is otherwise
    dominated by it)."""
    cached = _GENERATORS.get(seed)
    if cached is None:
        gen = np.random.default_rng(seed)
        cached = _GENERATORS[seed] = (gen, gen.bit_generator.state)
    gen, state = cached
    gen.bit_generator.state = state
    return gen


class Evaluator:
    """Evaluates ``fn`` on batches of perturbed inputs and counts evaluations."""

    def __init__(self, fn, inputs: tuple, n_outputs: int, upcast: bool = True) -> None:
        self.fn = fn
        self.inputs = inputs
        self.n_outputs = n_outputs
        self.upcast = upcast
        self.n_evals = 0
        self.path = "batched"
        self.batched_ok = True

    def base_array(self, j: int, complex_step: bool = False) -> np.ndarray:
        x = self.inputs[j]._data
        if complex_step:
            return x.astype(np.complex128)
        if self.upcast and x.dtype.kind == "f" and x.dtype.itemsize < 8:
            return x.astype(np.float64)
        return x

    def plain_args(self, cast=None) -> list:
        """The inputs as fresh leaves (``cast``: dtype of the differentiable float ones),
        each requiring grad where its input does: torch evaluates the function at perturbed
        inputs that still require grad, with grad mode on (see :meth:`call`)."""
        args = []
        for a in self.inputs:
            if isinstance(a, Tensor):
                data = a._data
                if cast is not None and data.dtype.kind == "f" and a._rg:
                    data = data.astype(cast)
                args.append(_make(data, None, a._rg))
            else:
                args.append(a)
        return args

    def leaf(self, i: int, data: np.ndarray) -> Tensor:
        """Input ``i`` at another value: a fresh leaf requiring grad where the input does."""
        a = self.inputs[i]
        return _make(data, None, isinstance(a, Tensor) and a._rg)

    def call(self, args) -> tuple:
        """One plain call as torch's gradcheck makes it: grad mode on, inputs requiring grad
        as the user's do.  A function may depend on that (``torch.is_grad_enabled()``,
        ``y.requires_grad``, a hook registered on an intermediate, ``autograd.grad`` inside
        it); the batched evaluation runs without a graph and is checked against this call."""
        with enable_grad():
            outs = self.fn(*args)
        return tuple(outs) if isinstance(outs, (tuple, list)) else (outs,)

    def plain_outputs(self) -> list:
        """f(x) (inputs upcast as the perturbed ones are), as arrays."""
        outs = self.call(self.plain_args(cast=np.float64 if self.upcast else None))
        self.n_evals += 1
        return [o._data for o in outs]

    def run(self, j: int, batch, size: int, cast=None) -> list:
        token = errors_off()         # np.errstate(all="ignore"), at a tenth of its cost
        try:
            return self._run(j, batch, size, cast)
        finally:
            errors_restore(token)

    def _run(self, j: int, batch, size: int, cast=None) -> list:
        """Outputs of fn with input ``j`` replaced by the batch (a dense array, batch axis
        first, or a :class:`~gradtool.engine.vmap.Delta`): per output, a dense batch, a
        Delta, or ``Unbatched``."""
        return self._evaluate({j: batch}, size, cast)

    def _evaluate(self, batches: dict, size: int, cast) -> list:
        """The function's own batched evaluation where it has one and accepts, else
        :meth:`_call`."""
        args = self.plain_args(cast=cast)
        if getattr(self.fn, "batched_call", None) is not None:
            dense = {j: b.dense() if isinstance(b, V.Delta) else b for j, b in batches.items()}
            outs = self._special(args, dense, size)
            if outs is not None:
                return outs
        return self._call(args, batches, size)

    def _special(self, args: list, batches: dict, size: int):
        """The function's own batched evaluation (see gradcheck._gradgrad_function), or None
        where it declines."""
        try:
            outs = self.fn.batched_call(args, batches, size)
        except EngineError:
            # its backwards run with grad mode off (autograd.grad inside a backward, say):
            # the plain calls run them as torch does (a true error is raised there)
            return None
        if outs is None:
            return None
        self.n_evals += size
        return list(outs)

    def run_many(self, batches: dict, size: int, cast=None) -> list:
        """``run`` with several inputs replaced by batches at once (``{j: dense batch}``):
        one batched call where each input's perturbations would be a call of their own."""
        token = errors_off()
        try:
            return self._run_many(batches, size, cast)
        finally:
            errors_restore(token)

    def _run_many(self, batches: dict, size: int, cast=None) -> list:
        return self._evaluate(batches, size, cast)

    def _call(self, args: list, batches: dict, size: int) -> list:
        """fn on ``args`` with the inputs of ``batches`` replaced: one batched call (its last
        example checked against a plain call), or a loop when fn cannot run batched."""
        if self.batched_ok and size > 2:
            try:
                with no_grad():
                    outs, _ = V.call_batched(self.fn, tuple(args), batches, size)
                self.n_evals += size
                self._spot_check(batches, size, outs, args)
                return list(outs)
            # an EngineError: e.g. autograd.grad or register_hook inside the function, which
            # need the graph the batched call does not build; the loop makes plain calls (a
            # true error of the function is raised there)
            except (V.VmapFallback, EngineError) as exc:
                self.batched_ok = False
                self.path = f"looped ({exc})"
        elif self.path == "batched":
            self.path = "looped (small batch)"
        outs = self._loop(args, batches, size)
        self.n_evals += size
        return list(outs)

    def _loop(self, args: list, batches: dict, size: int) -> tuple:
        """One plain call (:meth:`call`) per example; per output, the stacked examples."""
        rows = []
        for k in range(size):
            call = list(args)
            for i, b in batches.items():
                call[i] = self.leaf(i, V.example(b, k))
            rows.append([o._data for o in self.call(call)])
        return tuple(V.stack(col) for col in zip(*rows))

    def _spot_check(self, batches: dict, size, outs, args) -> None:
        """Example ``size - 1`` of the batched result against a plain call (``batches``: one
        batch per replaced input)."""
        for k in (size - 1,):     # the last example: where a leak of example 0 shows
            call = list(args)
            for i, b in batches.items():
                call[i] = self.leaf(i, V.example(b, k))
            plain = self.call(call)
            self.n_evals += 1
            for o, p in zip(outs, plain):
                got = _example_of(o, k)
                want = p._data
                if got.shape != want.shape or not _close(got, want):
                    raise V.VmapFallback("the batched result disagreed with a plain call")


def _example_of(value, k: int) -> np.ndarray:
    if isinstance(value, V.Unbatched):
        return value.value
    return V.example(value, k)


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype.kind == "c" or b.dtype.kind == "c":
        return _close(a.real, b.real) and _close(np.imag(a), np.imag(b))
    if a.dtype.kind not in "fc":
        return np.array_equal(a, b)
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    finite = np.isfinite(b)
    if not np.array_equal(np.isfinite(a), finite):
        return False
    if not finite.any():
        return True
    scale = float(np.max(np.abs(b[finite]))) if b.size else 0.0
    return bool(np.all(np.abs(a[finite] - b[finite]) <= 1e-10 * (1.0 + scale)))


def _chunk(n_cols: int, n_offsets: int, example_bytes: int) -> int:
    per_col = max(1, n_offsets * example_bytes)
    return max(1, min(n_cols, CHUNK_BYTES // per_col))


def numerical_jacobian(ev: Evaluator, j: int, out_sizes: list, method: str, eps: float,
                       base_outputs: list, columns=None, supports=None) -> list:
    """d output / d input j for every output: a list of (out size, in size) arrays
    (only ``columns`` of the input are filled when given).  ``supports``: a list, filled
    per output with the sorted flat positions outside which its array holds exact zeros
    (the positions one-element perturbations reached), or None where it is dense."""
    offsets, weights = STENCILS[method]
    complex_step = method == "complex"
    x = ev.base_array(j, complex_step)
    n = x.size
    h = COMPLEX_STEP if complex_step else eps
    dtype = np.float64
    jac = [None if m is None else np.zeros((m, n), dtype=dtype) for m in out_sizes]
    cols = np.arange(n) if columns is None else np.asarray(columns)
    moving = [o for o in offsets if o != 0.0]
    step = _chunk(len(cols), len(moving), x.nbytes or 8)
    flat = x.reshape(-1)
    reached = [[] for _ in out_sizes]
    for start in range(0, len(cols), step):
        ks = cols[start:start + step]
        m = len(ks)
        index = np.tile(ks, len(moving))
        shift = np.repeat(np.asarray(moving) * h, m)
        value = (flat[index] + (1j * shift if complex_step else shift)).astype(x.dtype)
        outs = ev.run(j, V.Delta(x, index, value), m * len(moving),
                      cast=np.float64 if ev.upcast else None)
        for o, out in enumerate(outs):
            if o >= len(out_sizes) or out_sizes[o] is None:
                continue
            written = _combine(jac[o], ks, out, moving, offsets, weights, h, complex_step,
                               base_outputs[o])
            if reached[o] is not None:
                reached[o] = None if written is None else reached[o] + [written]
    if supports is not None:
        supports[:] = [None if r is None or jac[o] is None else
                       np.unique(np.concatenate([np.zeros(0, np.int64)] + r))
                       for o, r in enumerate(reached)]
    return jac


def _combine(jac, ks, out, moving, offsets, weights, h, complex_step, base_out):
    """Write the columns ``ks`` of ``jac``; returns the flat positions written, or None
    when every position of the columns was."""
    m = len(ks)
    if isinstance(out, V.Unbatched):
        return np.zeros(0, np.int64)
    if isinstance(out, V.Delta) and _same_index(out.index, m, len(moving)):
        # column k changes only at out.index[k] (one position, or a (K,) lane)
        pos = out.index[:m]
        vals = out.value.reshape((len(moving), m) + out.value.shape[1:])
        base_at = out.base.reshape(-1)[pos]
        acc = 0.0
        for o, w in zip(offsets, weights):
            acc = acc + w * (base_at if o == 0.0 else vals[moving.index(o)])
        col = np.imag(acc) / h if complex_step else np.real(acc) / h
        cols = ks if pos.ndim == 1 else ks[:, None]
        jac[pos, cols] = col
        return (pos * jac.shape[1] + cols).reshape(-1).astype(np.int64)
    dense = V.as_dense(out, m * len(moving)).reshape(len(moving), m, -1)
    acc = 0.0
    for o, w in zip(offsets, weights):
        term = np.asarray(base_out).reshape(1, -1) if o == 0.0 else dense[moving.index(o)]
        acc = acc + w * term
    acc = np.imag(acc) / h if complex_step else np.real(acc) / h
    jac[:, ks] = acc.T
    return None


def _same_index(index, m: int, parts: int) -> bool:
    first = index[:m]
    return all(np.array_equal(index[p * m:(p + 1) * m], first) for p in range(1, parts))


MANY_BYTES = 2 ** 20     # directional_many: the most bytes of batched inputs it builds


def directional_many(ev: Evaluator, directions: dict, out_sizes: list, method: str,
                     eps: float, base_outputs: list) -> dict:
    """``directional`` for several inputs (``{j: directions}``) in one batch: example
    (j, offset, d) perturbs input j alone, the others stay at their values.  For small
    inputs, where the cost is the calls, not the arithmetic (``MANY_BYTES``)."""
    offsets, weights = STENCILS[method]
    complex_step = method == "complex"
    h = COMPLEX_STEP if complex_step else eps
    moving = [o for o in offsets if o != 0.0]
    js = list(directions)
    k = directions[js[0]].shape[0]
    per = len(moving) * k
    size = per * len(js)
    batches = {}
    for p, j in enumerate(js):
        x = ev.base_array(j, complex_step)
        batch = np.empty((size,) + x.shape, dtype=x.dtype)
        batch[:] = x
        row = p * per
        for o in moving:
            shift = o * h * directions[j]
            batch[row:row + k] = x + (1j * shift if complex_step else shift)
            row += k
        batches[j] = batch
    outs = ev.run_many(batches, size, cast=np.float64 if ev.upcast else None)
    result = {}
    for p, j in enumerate(js):
        per_output = []
        for o, out in enumerate(outs):
            if o >= len(out_sizes) or out_sizes[o] is None:
                per_output.append(None)
                continue
            dense = V.as_dense(out, size).reshape(size, -1)[p * per:(p + 1) * per]
            per_output.append(_stencil(dense.reshape(len(moving), k, -1), offsets, weights,
                                       moving, base_outputs[o], h, complex_step))
        result[j] = per_output
    return result


def _stencil(dense, offsets, weights, moving, base_out, h, complex_step) -> np.ndarray:
    """The finite-difference combination of the outputs at each offset (``dense``:
    (offsets, k, out size)), divided by the step."""
    acc = 0.0
    for off, w in zip(offsets, weights):
        term = np.asarray(base_out).reshape(1, -1) if off == 0.0 else \
            dense[moving.index(off)]
        acc = acc + w * term
    if complex_step:
        return np.imag(acc) / h
    return (acc.real if acc.dtype.kind == "c" else acc) / h     # np.real without its wrapper


def directional(ev: Evaluator, j: int, directions: np.ndarray, out_sizes: list, method: str,
                eps: float, base_outputs: list) -> list:
    """J_j u for each direction u (rows of ``directions``, shape (k, *input shape)):
    per output, a (k, out size) array."""
    offsets, weights = STENCILS[method]
    complex_step = method == "complex"
    x = ev.base_array(j, complex_step)
    h = COMPLEX_STEP if complex_step else eps
    moving = [o for o in offsets if o != 0.0]
    k = directions.shape[0]
    # the perturbed inputs x + o h u, in batches of at most CHUNK_BYTES (an input can be
    # hundreds of MB: all k * len(moving) copies at once would not fit)
    pairs = [(o, d) for o in moving for d in range(k)]
    step = _chunk(len(pairs), 1, x.nbytes or 8)
    parts = [[] for _ in out_sizes]
    for start in range(0, len(pairs), step):
        chunk = pairs[start:start + step]
        if len(chunk) == len(pairs) and not complex_step:
            # every perturbation at once (the usual case): x + (o h) u for each offset o
            # and direction u, the same products and sums as row by row
            scaled = np.multiply.outer(np.array([o * h for o in moving]), directions)
            batch = (x + scaled.reshape((len(chunk),) + x.shape)).astype(x.dtype, copy=False)
        else:
            batch = np.empty((len(chunk),) + x.shape, dtype=x.dtype)
            for row, (o, d) in enumerate(chunk):
                shift = o * h * directions[d]
                batch[row] = x + (1j * shift if complex_step else shift)
        outs = ev.run(j, batch, len(chunk), cast=np.float64 if ev.upcast else None)
        for o, out in enumerate(outs):
            if o < len(out_sizes) and out_sizes[o] is not None:
                parts[o].append(V.as_dense(out, len(chunk)).reshape(len(chunk), -1))
    result = []
    for o, chunks in enumerate(parts):
        if o >= len(out_sizes) or out_sizes[o] is None:
            result.append(None)
            continue
        # one chunk (the usual case): its array as it is, no concatenated copy
        dense = (chunks[0] if len(chunks) == 1 else np.concatenate(chunks)).reshape(
            len(moving), k, -1)
        result.append(_stencil(dense, offsets, weights, moving, base_outputs[o], h,
                               complex_step))
    return result
