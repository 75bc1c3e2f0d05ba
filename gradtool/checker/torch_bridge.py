"""Checking real PyTorch functions with gradtool's checker.

When ``gt.check``/``gt.gradcheck`` get torch tensors, the inputs become float64 torch
tensors, the analytical side comes from torch's autograd (``torch.autograd.grad`` with
``is_grads_batched``, or one call per row when the graph cannot be vmapped, e.g. a custom
``torch.autograd.Function`` without a vmap rule), the numerical side from gradtool's finite
differences (the torch function evaluated under ``torch.no_grad`` on batches of perturbed
inputs, with ``torch.func.vmap`` or a loop), and the report from gradtool's diagnosis.

torch stays optional: nothing here imports it unless torch tensors were passed (then it is
already imported).
"""

from __future__ import annotations

import inspect
import sys

import numpy as np

from ..errors import Location, UserError
from . import numeric
from .gradcheck import _as_tuple, _Checker


def is_torch_call(fn, inputs) -> bool:
    """True when ``inputs`` hold torch tensors (torch is looked up only if already loaded)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    items = inputs if isinstance(inputs, (tuple, list)) else (inputs,)
    return any(isinstance(x, torch.Tensor) for x in items)


def check(fn, inputs, *, method: str = "central", forward_ad: bool = False,
          gradgrad: bool = False, **kw):
    """:func:`gradtool.check` for a torch callable and torch tensors."""
    import time
    if method == "complex":
        raise UserError("method='complex' is not available for torch functions (gradtool "
                        "cannot see which torch ops they use)", hint="use method='central'")
    if forward_ad or gradgrad:
        raise UserError("forward-mode and second-order checks of torch functions are not "
                        "supported; use torch.autograd.gradcheck(check_forward_ad=True) or "
                        "torch.autograd.gradgradcheck")
    start = time.perf_counter()
    mode = kw.pop("mode", "full")
    check_undefined_grad = kw.pop("check_undefined_grad", True)
    checker = _TorchChecker(fn, _as_tuple(inputs), kw.pop("eps", 1e-6), kw.pop("atol", 1e-5),
                            kw.pop("rtol", 1e-3), method, kw.pop("nondet_tol", 0.0),
                            kw.pop("seed", 0), kw.pop("input_names", None),
                            kw.pop("upcast", True), kw.pop("n_projections", 4))
    result = checker.run(mode, kw.pop("check_backward_ad", True), check_undefined_grad,
                         False)
    result.wall_time = time.perf_counter() - start
    return result


#: torch functions with kinks or jumps (the kink diagnosis names them)
TORCH_KINKS = ("abs", "relu", "relu6", "hardtanh", "leaky_relu", "clamp", "clamp_min",
               "clamp_max", "clip", "maximum", "minimum", "max", "min", "amax", "amin",
               "sign", "floor", "ceil", "round", "trunc", "where", "gt", "lt", "ge", "le",
               "eq", "ne", "sort", "topk", "median", "abs_", "relu_")


def _torch():
    import torch
    return torch


class _TorchChecker(_Checker):
    def __init__(self, fn, inputs, *args) -> None:
        torch = _torch()
        self.torch = torch
        converted = []
        for x in inputs:
            if isinstance(x, torch.Tensor) and (x.is_floating_point() or x.is_complex()):
                y = x.detach().to(torch.float64)
                y.requires_grad_(x.requires_grad)
                converted.append(y)
            else:
                converted.append(x)
        super().__init__(fn, tuple(converted), *args)

    def _array(self, t):
        if isinstance(t, self.torch.Tensor):
            return t.detach().cpu().numpy()
        return None

    def _requires_grad(self, t) -> bool:
        return isinstance(t, self.torch.Tensor) and t.requires_grad

    def forward(self):
        with self.torch.enable_grad():
            outs = _as_tuple(self.fn(*self.inputs))
        for o in outs:
            if not isinstance(o, self.torch.Tensor):
                raise UserError("the function must return a torch.Tensor or a tuple of them, "
                                f"not {type(o).__name__}")
        return outs

    def primitives(self) -> dict:
        return {}     # torch ops do not run through gradtool's op table

    def kink_ops(self) -> list:
        """The torch functions with non-differentiable points the function calls (from one
        forward under a torch function mode), for the kink diagnosis."""
        if getattr(self, "_torch_kinks", None) is None:
            from .causes.common import torch_mode
            seen: dict = {}

            def record(func, args, kwargs):
                name = getattr(func, "__name__", "").strip("_")
                if name in TORCH_KINKS:
                    seen.setdefault(name, None)
                return func(*args, **kwargs)

            try:
                with self.torch.no_grad(), torch_mode(record):
                    self.fn(*[a.detach() if isinstance(a, self.torch.Tensor) else a
                              for a in self.inputs])
            except Exception:  # noqa: BLE001  (a failing forward: no kink named)
                seen = {}
            self._torch_kinks = list(seen)
        return self._torch_kinks

    def _evaluator(self):
        return _TorchEvaluator(self.fn, self.inputs, len(self.outs), self.torch)

    def _vjp(self, o: int, js: list):
        torch = self.torch
        out = self.outs[o]
        inputs = [self.inputs[j] for j in js]
        state = {"batched": True}

        def as_rows(grads, k):
            return [None if g is None else g.detach().numpy().reshape(k, -1) for g in grads]

        def vjp(cot: np.ndarray) -> list:
            k = cot.shape[0]
            cot_t = torch.from_numpy(np.ascontiguousarray(cot)).to(out.dtype)
            if state["batched"]:
                try:
                    grads = torch.autograd.grad(out, inputs, cot_t, retain_graph=True,
                                                allow_unused=True, is_grads_batched=True)
                    return as_rows(grads, k)
                except RuntimeError:   # a Function without a vmap rule: one row at a time
                    state["batched"] = False
            try:
                rows = [torch.autograd.grad(out, inputs, cot_t[i], retain_graph=True,
                                            allow_unused=True) for i in range(k)]
            except Exception as exc:  # noqa: BLE001  the user's backward failed, not gradtool
                raise _backward_error(out, exc) from None
            return [None if rows[0][i] is None else
                    np.stack([r[i].detach().numpy().reshape(-1) for r in rows])
                    for i in range(len(inputs))]
        return vjp

    def _undefined_grad_problems(self) -> list:
        # torch's undefined-gradient protocol lives in torch; the zero-cotangent test ran with
        # the analytical Jacobian (backward not multiplied by grad_output)
        return []


class _TorchEvaluator(numeric.Evaluator):
    """Evaluates a torch function on batches of perturbed float64 inputs (no grad)."""

    def __init__(self, fn, inputs, n_outputs, torch) -> None:
        super().__init__(fn, inputs, n_outputs, upcast=True)
        self.torch = torch

    def base_array(self, j: int, complex_step: bool = False) -> np.ndarray:
        return self.inputs[j].detach().numpy()

    def _call(self, xs: dict) -> tuple:
        """The function with the inputs of ``xs`` (position -> value) replaced, under vmap
        (no grad)."""
        args = [a.detach() if isinstance(a, self.torch.Tensor) else a for a in self.inputs]
        for j, xj in xs.items():
            args[j] = xj
        return _as_tuple(self.fn(*args))

    def _plain_call(self, xs: dict) -> tuple:
        """One plain call as torch's gradcheck makes it (see numeric.Evaluator.call): grad
        mode on, inputs requiring grad as the user's do."""
        with self.torch.enable_grad():
            return _as_tuple(self.fn(*plain_args(self.torch, self.inputs, xs)))

    def plain_outputs(self) -> list:
        outs = self._plain_call({})
        self.n_evals += 1
        return [o.detach().numpy() for o in outs]

    def _run(self, j: int, batch, size: int, cast=None) -> list:
        return self._run_many({j: batch}, size, cast)

    def _run_many(self, batches: dict, size: int, cast=None) -> list:
        """Outputs with the inputs of ``batches`` replaced by their examples (dense batches
        or Deltas, batch axis first): one ``torch.func.vmap`` call checked against plain
        calls, or a loop of plain calls."""
        torch = self.torch
        keys = list(batches)
        dense = [torch.from_numpy(np.ascontiguousarray(
            batches[j].dense() if hasattr(batches[j], "dense") else batches[j]))
            for j in keys]

        def example(k: int) -> dict:
            return {j: d[k] for j, d in zip(keys, dense)}
        if self.batched_ok and size > 2:
            try:
                with torch.no_grad():
                    outs = torch.func.vmap(lambda *xs: self._call(dict(zip(keys, xs))))(*dense)
                outs = [o.detach().numpy() for o in outs]
                self.n_evals += size
                for k in sorted({0, size - 1}):
                    plain = self._plain_call(example(k))
                    self.n_evals += 1
                    if not all(np.allclose(o[k], p.detach().numpy(), rtol=1e-10, atol=1e-12)
                               for o, p in zip(outs, plain)):
                        raise ValueError("torch.func.vmap disagreed with a plain call")
                self.path = "batched (torch.func.vmap)"
                return outs
            # any failure of torch.func.vmap on foreign code means: run it plainly
            except Exception as exc:  # noqa: BLE001
                self.batched_ok = False
                self.path = f"looped (torch.func.vmap failed: {_reason(exc)})"
        elif self.path == "batched":
            self.path = "looped (small batch)"
        rows = [[o.detach().numpy() for o in self._plain_call(example(k))]
                for k in range(size)]
        self.n_evals += size
        return [np.stack(col) for col in zip(*rows)]


def plain_args(torch, inputs, xs: dict) -> list:
    """The arguments of a plain call (fresh leaves requiring grad where the inputs do), the
    inputs of ``xs`` (position -> value) replaced."""
    args = [a.detach().requires_grad_(a.requires_grad) if isinstance(a, torch.Tensor) else a
            for a in inputs]
    for j, xj in xs.items():
        args[j] = xj.detach().requires_grad_(inputs[j].requires_grad)
    return args


def _backward_error(out, exc: BaseException) -> UserError:
    """The user's torch backward raised (a gradient of the wrong shape, a broadcasting
    error): a user error naming the custom Function at fault, at the line of its backward
    that raised (or at its ``def`` when torch raised after it returned)."""
    text = _reason(exc, width=300)
    classes = _custom_functions(out.grad_fn)
    codes = {}
    for cls in classes:
        code = getattr(inspect.unwrap(cls.backward), "__code__", None)
        if code is not None:
            codes[code] = cls
    cls = where = None
    tb = exc.__traceback__
    while tb is not None:           # the innermost frame of a Function's backward
        if tb.tb_frame.f_code in codes:
            cls = codes[tb.tb_frame.f_code]
            where = Location(tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    hint = "the error is in the Function's backward, not in the check"
    if cls is None:                 # torch raised after the backward returned
        cls = next((c for c in classes if f"{c.__name__}Backward" in text), None)
        where = None if cls is None else _def_location(cls.backward)
        hint = ("the Function's backward is at fault, not the check: it must return one "
                "gradient (or None) per forward input, of that input's shape")
    if cls is None:
        return UserError(f"the torch backward raised {type(exc).__name__}: {text}",
                         hint="the function's backward is at fault, not the check")
    return UserError(f"the backward of torch Function '{cls.__name__}' raised "
                     f"{type(exc).__name__}: {text}", where, hint=hint)


def _def_location(fn) -> Location | None:
    """Where ``fn``'s ``def`` line is (past its decorators)."""
    try:
        fn = inspect.unwrap(fn)
        lines, start = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        return None if code is None else Location(code.co_filename, code.co_firstlineno)
    offset = next((i for i, line in enumerate(lines)
                   if line.lstrip().startswith(("def ", "async def "))), 0)
    return Location(inspect.getsourcefile(fn) or fn.__code__.co_filename, start + offset)


def _custom_functions(root) -> list:
    """The ``torch.autograd.Function`` subclasses in the graph below ``root`` (walked
    iteratively), in the order first met."""
    stack, seen, found = [root], set(), []
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        cls = getattr(node, "_forward_cls", None)
        if cls is not None and cls not in found:
            found.append(cls)
        stack.extend(fn for fn, _ in getattr(node, "next_functions", ()))
    return found


def _reason(exc: BaseException, width: int = 100) -> str:
    """One line saying why vmap failed: the message without its location, cut short."""
    text = (getattr(exc, "message", None) or str(exc) or type(exc).__name__).strip()
    text = text.splitlines()[0] if text else type(exc).__name__
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"

