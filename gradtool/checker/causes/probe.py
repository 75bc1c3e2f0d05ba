"""What the checker knows beyond the two matrices, for the causes that need more."""

from __future__ import annotations

import numpy as np

from ...engine.function import FunctionCtx
from ...engine.grad_mode import enable_grad
from ...engine.node import grad_accumulator
from ...engine.tensor import _make
from .forward import op_parts, spec_parts
from .replay import GtRunner, TorchRunner


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
    def evaluator(self, fn=None, value=None):
        c = self.checker
        inputs = list(c.inputs)
        if self.torch is not None:
            from ..torch_bridge import _TorchEvaluator
            if value is not None:
                t = self.torch.from_numpy(np.array(value, dtype=np.float64))
                inputs[self.j] = t.requires_grad_(True)
            ev = _TorchEvaluator(fn or c.fn, tuple(inputs), len(c.outs), self.torch)
            if fn is not None:
                ev.batched_ok = False     # a frozen op is a torch function mode: no vmap
            return ev
        from .. import numeric
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
            from ..torch_bridge import plain_args     # as the numerical side calls it
            args = plain_args(torch, c.inputs, {} if value is None else {
                self.j: torch.from_numpy(np.array(value, dtype=np.float64))})
            with torch.enable_grad():
                outs = (fn or c.fn)(*args)
            outs = outs if isinstance(outs, (tuple, list)) else (outs,)
            return outs[self.o].detach().numpy().astype(np.float64).reshape(-1)
        ev = self.evaluator()
        args = ev.plain_args(cast=np.float64 if c.upcast else None)
        if value is not None:
            args[self.j] = ev.leaf(self.j, np.array(value, dtype=np.float64))
        with enable_grad(), np.errstate(all="ignore"):   # as numeric.Evaluator.call
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
        from .. import numeric
        ev = self.evaluator(fn, value)
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
                    return TorchRunner(self, node, i)
            return None
        node = out.grad_fn
        if not isinstance(node, FunctionCtx) or not x._rg:
            return None
        acc = grad_accumulator(x)
        for i, nxt in enumerate(node.next_nodes):
            if nxt is acc:
                return GtRunner(self, node, i)
        return None

    # -- the forward, split
    def term_parts(self) -> list:
        if self._parts is None:
            parts = []
            try:
                parts = spec_parts(self) + op_parts(self)
            except Exception:  # noqa: BLE001  (user code meeting a probe: no parts)
                parts = []
            self._parts = parts
        return self._parts
