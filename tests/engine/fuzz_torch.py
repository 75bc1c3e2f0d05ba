"""Differential fuzzer: random programs run in gradtool and in torch side by side.

A program is a list of steps (a tiny interpreter's instructions: make a leaf, call a function,
call a method, index, assign into an index, apply an operator).  Both libraries build the same
program from that one description, and every program runs in up to four phases, each compared
between the two libraries:

* ``run``: the steps (per step: values, shape, dtype, requires_grad, is_leaf, grad_fn name,
  ``_version``), the whole graph of the output (breadth-first over ``next_functions``: names,
  None edges, edge order, output numbers), then ``backward`` with a random gradient (leaf grads);
* ``double``: ``autograd.grad(create_graph=True)`` then a second ``autograd.grad``;
* ``fwad``: forward AD (``make_dual`` on the floating leaves, tangents of every step);
* ``functional``: ``autograd.functional.jacobian`` and ``hessian``.

A phase that raises in either library is compared on the exception type (gradtool's must be an
instance of the builtin class torch's derives from: ``RuntimeError``, ``IndexError``, ...) and
message; an exception escaping from numpy or of a Python-bug type in gradtool is a *crash*.
Misuse programs (``--misuse``) end in a step that torch may reject (backward twice, in-place on
a leaf, shape mismatches, bad dims, ...) and compare what happens.

Generation runs torch alongside, so ordinary programs only keep steps torch accepts. float32
numbers are compared with rtol 1e-4 (atol scaled by the magnitude), float64 with rtol 1e-7; a
float32 number that torch itself computes differently in float64 (ill-conditioned) is not
compared, and where torch's number is not finite any non-finite number agrees.  sort/topk/
argmax-like steps only see inputs without ties (their indices are arbitrary at ties).  Every
disagreement is minimised (steps nothing uses removed, inputs made by other steps replaced by
leaves holding the same numbers, while it persists) and printed as one line with its
reproduction program (``lib`` is ``torch`` or ``gradtool``; `` ⏎ `` marks a line break), then a
summary by class with the rates the issue's "done when" names.

    python tests/engine/fuzz_torch.py --seed 0 --n 300 [--misuse | --misuse-n 200]
        [--area views|ops|names] [--ci] [--findings FILE.md] [-v]

gradtool is imported from the environment running the script.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import operator
import os
import re
import sys
import tempfile
import time
import warnings

import numpy as np

# ---- known disagreements --------------------------------------------------------------------
# Program classes that still disagree with torch and are left out of the CI test
# (tests/engine/test_fuzz_torch.py) until the engine is fixed: step label -> (what, reason).
# what "*": steps with that label are never generated; otherwise a comma-separated list of
# facet kinds (value, meta, name, version, graph, grad, g1, g1rg, gg, tangent, jac, hess) not
# compared, and of stages (backward, grad, grad2, jacobian, hessian) whose exceptions are not
# compared, in programs using the label (label "*": in every program).  The script ignores
# this list unless given --ci.
KNOWN: dict[str, tuple[str, str]] = {
    # on main fc24643 (views, names, names2, ops and perf merged)
    "F.batch_norm": ("g1rg", "the first-order grad of batch_norm's bias (the sum of the "
                     "cotangent) does not require grad under create_graph; torch's does (its "
                     "NativeBatchNormBackward is differentiable): no numeric effect (seeds "
                     "867, 1008)"),
    "F.layer_norm": ("g1rg", "as F.batch_norm, for layer_norm's bias (seed 1392)"),
    "inplace:sub_@view": ("graph", "x.sub_(y) with y of another float dtype: gradtool puts a "
                          "ToCopyBackward0 between the node and y's AccumulateGrad, torch "
                          "does not (seed 1122; the same for the other in-place binary ops "
                          "and +=, e.g. seed 1711)"),
}

INPLACE_PREFIXES = ("inplace", "setitem", "iop")


# ---- programs -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Ref:
    """The value of step ``id``."""
    id: int


@dataclasses.dataclass(frozen=True)
class TLit:
    """A tensor literal: ``lib.tensor(values, dtype=lib.<dtype>)`` (zeros when empty)."""
    values: object
    dtype: str
    shape: tuple
    requires_grad: bool = False


@dataclasses.dataclass(frozen=True)
class DT:
    """A dtype: ``lib.<name>``."""
    name: str


@dataclasses.dataclass(frozen=True)
class Step:
    id: int
    kind: str            # leaf, call, method, getitem, setitem, binop, iop
    name: str            # function path, method name or operator symbol
    args: tuple
    kwargs: tuple = ()
    label: str = ""
    no_grad: bool = False    # run with grad mode off (lib.set_grad_enabled(False))


@dataclasses.dataclass
class Program:
    seed: int
    steps: list
    misuse: bool = False

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.steps if s.label != "leaf"]

    @property
    def float32(self) -> bool:
        return any(_has_dtype(s.args, "float32") or _has_dtype(s.kwargs, "float32")
                   or (s.kind == "method" and s.name == "float") for s in self.steps)

    def without(self, step_id: int) -> Program:
        return Program(self.seed, [s for s in self.steps if s.id != step_id], self.misuse)


def _has_dtype(obj, name) -> bool:
    if isinstance(obj, TLit):
        return obj.dtype == name
    if isinstance(obj, DT):
        return obj.name == name
    if isinstance(obj, (tuple, list)):
        return any(_has_dtype(o, name) for o in obj)
    return False


def _refs(obj) -> set[int]:
    if isinstance(obj, Ref):
        return {obj.id}
    if isinstance(obj, (tuple, list)):
        return set().union(*(_refs(o) for o in obj)) if obj else set()
    return set()


BINOPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
          "**": operator.pow, "@": operator.matmul, ">": operator.gt, "<": operator.lt,
          ">=": operator.ge, "==": operator.eq}
IOPS = {"+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv}


def _resolve(lib, path: str):
    obj = lib
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _materialize(lib, arg, env, dtype_map):
    if isinstance(arg, Ref):
        return env[arg.id]
    if isinstance(arg, TLit):
        dtype = getattr(lib, dtype_map.get(arg.dtype, arg.dtype))
        if 0 in arg.shape:
            return lib.zeros(arg.shape, dtype=dtype, requires_grad=arg.requires_grad)
        return lib.tensor(arg.values, dtype=dtype, requires_grad=arg.requires_grad)
    if isinstance(arg, DT):
        return getattr(lib, dtype_map.get(arg.name, arg.name))
    if isinstance(arg, tuple):
        return tuple(_materialize(lib, a, env, dtype_map) for a in arg)
    if isinstance(arg, list):
        return [_materialize(lib, a, env, dtype_map) for a in arg]
    return arg


def run_step(lib, step: Step, env: dict, dtype_map=None):
    """Run one step in ``lib``; its value lands in ``env[step.id]``."""
    dtype_map = dtype_map or {}
    args = _materialize(lib, step.args, env, dtype_map)
    kwargs = {k: _materialize(lib, v, env, dtype_map) for k, v in step.kwargs}
    if step.no_grad:
        with lib.no_grad():
            return _run(lib, step, env, args, kwargs)
    return _run(lib, step, env, args, kwargs)


def _run(lib, step: Step, env: dict, args, kwargs):
    if step.kind == "leaf":
        value = args[0]
    elif step.kind == "call":
        value = _resolve(lib, step.name)(*args, **kwargs)
    elif step.kind == "method":
        value = getattr(args[0], step.name)(*args[1:], **kwargs)
    elif step.kind == "getitem":
        value = args[0][args[1]]
    elif step.kind == "setitem":
        args[0][args[1]] = args[2]
        value = args[0]
    elif step.kind == "binop":
        value = BINOPS[step.name](args[0], args[1])
    elif step.kind == "iop":
        value = IOPS[step.name](args[0], args[1])
        env[step.args[0].id] = value
    else:
        raise ValueError(step.kind)
    env[step.id] = value
    return value


# ---- reproduction source --------------------------------------------------------------------
def _src(arg, in_index=False) -> str:
    if isinstance(arg, Ref):
        return f"v{arg.id}"
    if isinstance(arg, TLit):
        rg = ", requires_grad=True" if arg.requires_grad else ""
        if 0 in arg.shape:
            return f"lib.zeros({arg.shape!r}, dtype=lib.{arg.dtype}{rg})"
        return f"lib.tensor({arg.values!r}, dtype=lib.{arg.dtype}{rg})"
    if isinstance(arg, DT):
        return f"lib.{arg.name}"
    if isinstance(arg, slice):
        if in_index:
            parts = ["" if p is None else repr(p) for p in (arg.start, arg.stop)]
            return ":".join(parts) + ("" if arg.step is None else f":{arg.step!r}")
        return f"slice({arg.start!r}, {arg.stop!r}, {arg.step!r})"
    if arg is Ellipsis:
        return "..."
    if isinstance(arg, tuple):
        inner = ", ".join(_src(a, in_index) for a in arg)
        if in_index:
            return inner if len(arg) > 1 else (inner + "," if arg else "()")
        return f"({inner},)" if len(arg) == 1 else f"({inner})"
    if isinstance(arg, list):
        return "[" + ", ".join(_src(a) for a in arg) + "]"
    return repr(arg)


def step_source(step: Step) -> str:
    if step.no_grad:
        plain = step_source(dataclasses.replace(step, no_grad=False))
        return f"lib.set_grad_enabled(False); {plain}; lib.set_grad_enabled(True)"
    a = step.args
    kw = [f"{k}={_src(v)}" for k, v in step.kwargs]
    v = f"v{step.id}"
    if step.kind == "leaf":
        return f"{v} = {_src(a[0])}"
    if step.kind == "call":
        return f"{v} = lib.{step.name}({', '.join([_src(x) for x in a] + kw)})"
    if step.kind == "method":
        return f"{v} = {_src(a[0])}.{step.name}({', '.join([_src(x) for x in a[1:]] + kw)})"
    if step.kind == "getitem":
        return f"{v} = {_src(a[0])}[{_src(a[1], in_index=True)}]"
    if step.kind == "setitem":
        return f"{_src(a[0])}[{_src(a[1], in_index=True)}] = {_src(a[2])}; {v} = {_src(a[0])}"
    if step.kind == "binop":
        return f"{v} = {_src(a[0])} {step.name} {_src(a[1])}"
    return f"{_src(a[0])} {step.name} {_src(a[1])}; {v} = {_src(a[0])}"


# ---- running a phase ------------------------------------------------------------------------
PHASES = ("run", "double", "fwad", "functional")


@dataclasses.dataclass
class Outcome:
    facets: dict
    error: tuple | None = None      # (stage, exception)


def _dtype_name(t) -> str:
    return str(t.dtype).split(".")[-1]


def _is_tensor(lib, v) -> bool:
    return isinstance(v, lib.Tensor)


def _floating(t) -> bool:
    return _dtype_name(t).startswith(("float", "complex"))


def _array(t):
    """(shape, dtype, ndarray) of a tensor, or None."""
    if t is None:
        return None
    if getattr(t, "_is_zerotensor", None) is not None and t._is_zerotensor():
        # torch's second-order grads may be ZeroTensors, which refuse .numpy()
        return (tuple(t.shape), _dtype_name(t), np.zeros(tuple(t.shape), dtype=_dtype_name(t)))
    return (tuple(t.shape), _dtype_name(t), np.array(t.detach().numpy(), copy=True))


def _node_name(node) -> str | None:
    return None if node is None else node.name().split("::")[-1]


def graph_of(root) -> list | None:
    """Breadth-first walk over next_functions: per node (name, edges), an edge being None or
    (index of the node in this walk, output number).  Iterative (no recursion)."""
    if root is None:
        return None
    index = {id(root): 0}
    order = [root]
    walk = []
    position = 0
    while position < len(order):
        node = order[position]
        position += 1
        edges = []
        for child, nr in node.next_functions:
            if child is None:
                edges.append(None)
                continue
            if id(child) not in index:
                index[id(child)] = len(order)
                order.append(child)
            edges.append((index[id(child)], nr))
        walk.append((_node_name(node), tuple(edges)))
    return walk


def _grad_values(rng_seed: int, shape, dtype: str) -> TLit:
    rng = np.random.default_rng(rng_seed)
    values = (rng.integers(-8, 9, size=shape) / 4.0).tolist()
    return TLit(values, dtype, tuple(shape))


def _record(lib, facets, key, value) -> None:
    if _is_tensor(lib, value):
        facets[f"value:{key}"] = _array(value)
        facets[f"meta:{key}"] = (tuple(value.shape), _dtype_name(value), bool(value.requires_grad),
                                 bool(value.is_leaf))
        facets[f"name:{key}"] = _node_name(value.grad_fn)
        facets[f"version:{key}"] = int(value._version)
    elif isinstance(value, (tuple, list)):
        facets[f"meta:{key}"] = ("sequence", len(value))
        for i, item in enumerate(value):
            _record(lib, facets, f"{key}.{i}", item)
    elif value is None or isinstance(value, (bool, int, float)):
        facets[f"value:{key}"] = value


def _output(lib, prog: Program, env: dict):
    """The last tensor a step produced (the program's output)."""
    for step in reversed(prog.steps):
        value = env.get(step.id)
        if _is_tensor(lib, value):
            return step, value
    return None, None


def _leaves(prog: Program):
    return [s for s in prog.steps if s.kind == "leaf"]


def _diff_leaves(prog: Program):
    return [s for s in _leaves(prog) if s.args[0].requires_grad]


def run_phase(lib, prog: Program, phase: str, dtype_map=None) -> Outcome:
    dtype_map = dtype_map or {}
    facets: dict = {}
    stage = "steps"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if phase == "run":
                env: dict = {}
                for step in prog.steps:
                    facets["_stage"] = f"step {step.id}"
                    run_step(lib, step, env, dtype_map)
                    _record(lib, facets, step.id, env[step.id])
                facets.pop("_stage")
                out_step, out = _output(lib, prog, env)
                if out is not None:
                    facets["graph"] = graph_of(out.grad_fn)
                if not prog.misuse and out is not None and out.requires_grad:
                    stage = "backward"
                    g = _materialize(lib, _grad_values(prog.seed, tuple(out.shape),
                                                       _dtype_name(out)), {}, dtype_map)
                    out.backward(g)
                for leaf in _leaves(prog):
                    if _is_tensor(lib, env.get(leaf.id)):
                        facets[f"grad:{leaf.id}"] = _array(env[leaf.id].grad)
            elif phase == "double":
                _double(lib, prog, facets, dtype_map)
                stage = "done"
            elif phase == "fwad":
                _forward(lib, prog, facets, dtype_map)
            elif phase == "functional":
                _functional(lib, prog, facets, dtype_map)
    except Exception as exc:  # noqa: BLE001  (compared with the other library's)
        return Outcome(facets, (facets.pop("_stage", stage), exc))
    return Outcome(facets)


def _steps(lib, prog, env, dtype_map, facets) -> None:
    for step in prog.steps:
        facets["_stage"] = f"step {step.id}"
        run_step(lib, step, env, dtype_map)
    facets.pop("_stage", None)


def _double(lib, prog, facets, dtype_map):
    env: dict = {}
    _steps(lib, prog, env, dtype_map, facets)
    _, out = _output(lib, prog, env)
    leaves = [env[s.id] for s in _diff_leaves(prog)]
    if out is None or not out.requires_grad or not leaves:
        return
    facets["_stage"] = "grad"
    g = _materialize(lib, _grad_values(prog.seed, tuple(out.shape), _dtype_name(out)), {},
                     dtype_map)
    grads = lib.autograd.grad(out, leaves, g, create_graph=True, allow_unused=True)
    total = None
    for i, gi in enumerate(grads):
        facets[f"g1:{i}"] = _array(gi)
        facets[f"g1rg:{i}"] = None if gi is None else bool(gi.requires_grad)
        if gi is not None and gi.requires_grad:
            w = _materialize(lib, _grad_values(prog.seed + 7 * i + 1, tuple(gi.shape),
                                               _dtype_name(gi)), {}, dtype_map)
            term = (gi * w).sum()
            total = term if total is None else total + term
    if total is not None:
        facets["_stage"] = "grad2"
        second = lib.autograd.grad(total, leaves, allow_unused=True)
        for i, gg in enumerate(second):
            facets[f"gg:{i}"] = _array(gg)
    facets.pop("_stage")


def _forward(lib, prog, facets, dtype_map):
    fwad = lib.autograd.forward_ad
    with fwad.dual_level():
        env: dict = {}
        for step in prog.steps:
            facets["_stage"] = f"step {step.id}"
            run_step(lib, step, env, dtype_map)
            value = env[step.id]
            if step.kind == "leaf" and _floating(value):
                tangent = _materialize(lib, _grad_values(prog.seed + 31 * step.id,
                                                         tuple(value.shape),
                                                         _dtype_name(value)), {}, dtype_map)
                env[step.id] = fwad.make_dual(value, tangent)
            values = env[step.id] if isinstance(env[step.id], (tuple, list)) else [env[step.id]]
            for i, v in enumerate(values):
                if _is_tensor(lib, v):
                    facets[f"tangent:{step.id}.{i}"] = _array(fwad.unpack_dual(v).tangent)
        facets.pop("_stage", None)


def _functional(lib, prog, facets, dtype_map):
    diff = _diff_leaves(prog)
    probe: dict = {}
    _steps(lib, prog, probe, dtype_map, facets)
    out_step, out = _output(lib, prog, probe)
    # empty outputs and inputs too: torch's jacobian of an empty output raises "stack expects
    # a non-empty TensorList", and so must gradtool's
    if (out is None or not diff or not _floating(out)
            or not all(_floating(probe[s.id]) for s in diff)):
        return
    ids = [s.id for s in diff]

    def f(*inputs):
        env = dict(zip(ids, inputs))
        for step in prog.steps:
            if step.id not in env:
                run_step(lib, step, env, dtype_map)
        return env[out_step.id]

    inputs = tuple(_materialize(lib, dataclasses.replace(s.args[0], requires_grad=False), {},
                                dtype_map) for s in diff)
    facets["_stage"] = "jacobian"
    jac = lib.autograd.functional.jacobian(f, inputs)
    for i, j in enumerate(jac):
        facets[f"jac:{i}"] = _array(j)
    if sum(x.numel() for x in inputs) <= 16 and out.numel() <= 16:
        w = _grad_values(prog.seed + 3, tuple(out.shape), _dtype_name(out))

        def scalar(*xs):
            return (f(*xs) * _materialize(lib, w, {}, dtype_map)).sum()

        facets["_stage"] = "hessian"
        hess = lib.autograd.functional.hessian(scalar, inputs)
        for i, row in enumerate(hess):
            for k, h in enumerate(row):
                facets[f"hess:{i}.{k}"] = _array(h)
    facets.pop("_stage")


# ---- comparing ------------------------------------------------------------------------------
@dataclasses.dataclass
class Disagreement:
    phase: str
    what: str            # crash, gt-raises, torch-raises, exc-type, message, or a facet kind
    detail: str
    key: str = ""        # the facet's key ("value:3.0": step 3's first value) or the stage
    message: str = ""    # of an exception: torch's (gradtool's when only it raises)

    @property
    def signature(self) -> tuple:
        return (self.phase, self.what)


def _text_diff(got: str, want: str) -> str:
    """Two messages from where they start to differ (with some context before)."""
    same = 0
    while same < min(len(got), len(want)) and got[same] == want[same]:
        same += 1
    start = max(0, same - 60)
    cut = "..." if start else ""
    return f"gt {cut}{got[start:same + 140]!r} vs torch {cut}{want[start:same + 140]!r}"


def _builtin_class(exc) -> type:
    return next(c for c in type(exc).__mro__ if c.__module__ == "builtins")


def _message(exc) -> str:
    return str(exc).strip()


def _is_crash(exc) -> bool:
    """An exception gradtool did not raise on purpose: from numpy, or a Python-bug type."""
    from gradtool.errors import GradtoolError
    if isinstance(exc, GradtoolError):
        return False
    if isinstance(exc, (AttributeError, KeyError, AssertionError, ZeroDivisionError, NameError,
                        UnboundLocalError, RecursionError, OverflowError)):
        return True
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    if last is not None and f"{os.sep}numpy{os.sep}" in last:
        return True
    return any(text in str(exc) for text in PYTHON_BUG_MESSAGES)


# messages of exceptions Python raises by itself (a bug in gradtool, not a deliberate error)
PYTHON_BUG_MESSAGES = ("index out of range", "object has no attribute", "unsupported operand",
                       "positional argument", "not subscriptable", "cannot unpack",
                       "object is not iterable", "unexpected keyword argument",
                       "truth value of an array", "object is not callable")


def _tolerances(dtype: str, ref: np.ndarray, loose=False) -> tuple[float, float]:
    finite = np.abs(ref[np.isfinite(ref)]) if ref.size else np.zeros(0)
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    if loose or dtype in ("float32", "complex64"):
        return 1e-4, 1e-4 * scale
    return 1e-7, 1e-9 * scale


def _zeros_or_none(value) -> bool:
    return value is None or (isinstance(value, tuple) and len(value) == 3
                             and isinstance(value[2], np.ndarray) and not value[2].any())


def numbers_differ(a, b, none_is_zero=False, loose=False, finite_only=False) -> str | None:
    """Why two recorded facets differ (None when they agree); ``loose``: float32 tolerances
    (the program computes in float32 somewhere); ``finite_only``: numbers compared only where
    both are finite."""
    if none_is_zero and (a is None or b is None) and _zeros_or_none(a) and _zeros_or_none(b):
        return None
    if isinstance(a, tuple) and len(a) == 3 and isinstance(a[2], np.ndarray):
        if not (isinstance(b, tuple) and len(b) == 3 and isinstance(b[2], np.ndarray)):
            return f"gt {_short(b)} vs torch {_short(a)}"
        if a[0] != b[0] or a[1] != b[1]:
            return f"gt {b[1]}{list(b[0])} vs torch {a[1]}{list(a[0])}"
        x, y = a[2], b[2]
        if x.dtype.kind in "fc":
            y = y.astype(x.dtype)
            # where torch's result is not finite (x/0, log(0), 0*inf...) the number is
            # ill-conditioned: any non-finite value (nan, inf, -inf) agrees with it
            finite = np.isfinite(x)
            if finite_only:
                finite &= np.isfinite(y)
            elif not np.array_equal(finite, np.isfinite(y)):
                return f"gt {_short(b)} vs torch {_short(a)}"
            rtol, atol = _tolerances(a[1], x[finite], loose)
            if np.allclose(y[finite], x[finite], rtol=rtol, atol=atol):
                return None
        elif np.array_equal(x, y):
            return None
        return f"gt {_short(b)} vs torch {_short(a)}"
    if isinstance(a, float) and isinstance(b, float):
        return None if np.isclose(a, b, rtol=1e-7, equal_nan=True) else f"gt {b} vs torch {a}"
    return None if a == b else f"gt {_short(b)} vs torch {_short(a)}"


def _short(value) -> str:
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[2], np.ndarray):
        text = np.array2string(value[2], precision=5, threshold=8, separator=",")
        return f"{value[1]}{list(value[0])} {' '.join(text.split())}"
    return " ".join(repr(value).split())[:200]


def _graph_differs(want, got) -> str | None:
    """The first node where two graph walks differ: 'torch X / gt Y' (names or edges)."""
    if want == got:
        return None
    if want is None or got is None:
        return f"gt {_short(got)} vs torch {_short(want)}"
    for i, (a, b) in enumerate(zip(want, got)):
        if a[0] != b[0]:
            return f"node {i}: gt {b[0]} vs torch {a[0]}"
        if a[1] != b[1]:
            return f"node {i} {a[0]} edges: gt {b[1]} vs torch {a[1]}"
    return f"gt {len(got)} nodes vs torch {len(want)}"


def _ill_conditioned(key, t32, t64) -> bool:
    """float32 numbers torch itself gets differently in float64: not compared."""
    a, b = t32.facets.get(key), t64.facets.get(key)
    if not (isinstance(a, tuple) and len(a) == 3 and isinstance(a[2], np.ndarray)):
        return False
    if not (isinstance(b, tuple) and len(b) == 3 and isinstance(b[2], np.ndarray)):
        return True
    if a[0] != b[0] or a[2].dtype.kind not in "fc":
        return False
    rtol, atol = _tolerances("float32", b[2])
    return not np.allclose(a[2].astype(np.float64), b[2].astype(np.float64), rtol=rtol,
                           atol=atol, equal_nan=True)


def compare_phase(prog: Program, phase: str, skip_kinds=frozenset()) -> list[Disagreement]:
    import torch

    import gradtool as gt
    expected = run_phase(torch, prog, phase)
    got = run_phase(gt, prog, phase)
    found = []
    if any(out.error is not None and out.error[0] in skip_kinds for out in (expected, got)):
        pass            # an exception at a stage KNOWN leaves out
    elif got.error is not None and _is_crash(got.error[1]):
        exc = got.error[1]
        found.append(Disagreement(phase, "crash", f"{got.error[0]}: gt {type(exc).__name__}: "
                                  f"{_message(exc)[:160]}", got.error[0], _message(exc)))
    elif got.error is not None and expected.error is None:
        exc = got.error[1]
        found.append(Disagreement(phase, "gt-raises", f"{got.error[0]}: {type(exc).__name__}: "
                                  f"{_message(exc)[:200]}", got.error[0], _message(exc)))
    elif expected.error is not None and got.error is None:
        exc = expected.error[1]
        found.append(Disagreement(phase, "torch-raises", f"{expected.error[0]}: "
                                  f"{type(exc).__name__}: {_message(exc)[:200]}",
                                  expected.error[0], _message(exc)))
    elif expected.error is not None and expected.error[0] != got.error[0]:
        found.append(Disagreement(phase, "raise-at", f"gt at {got.error[0]}: "
                                  f"{_message(got.error[1])[:120]!r}; torch at "
                                  f"{expected.error[0]}: {_message(expected.error[1])[:120]!r}",
                                  min(got.error[0], expected.error[0]),
                                  _message(got.error[1])))
    elif expected.error is not None:
        t_exc, g_exc = expected.error[1], got.error[1]
        if not isinstance(g_exc, _builtin_class(t_exc)):
            found.append(Disagreement(phase, "exc-type", f"gt {type(g_exc).__name__} vs torch "
                                      f"{type(t_exc).__name__}: {_message(t_exc)[:160]}",
                                      got.error[0], _message(t_exc)))
        elif _message(g_exc) != _message(t_exc):
            found.append(Disagreement(phase, "message", _text_diff(_message(g_exc),
                                                                   _message(t_exc)),
                                      got.error[0], _message(t_exc)))
    reference = None
    if prog.float32:
        reference = run_phase(torch, prog, phase, {"float32": "float64"})
    nonfinite = any(k in DERIVATIVES for k in (key.split(":")[0] for key in expected.facets)) \
        and _nonfinite_values(prog)
    for key, want in expected.facets.items():
        kind = key.split(":")[0]
        if kind in skip_kinds or key not in got.facets:
            continue
        if reference is not None and _ill_conditioned(key, expected, reference):
            continue
        if kind == "graph":
            why = _graph_differs(want, got.facets[key])
        else:
            why = numbers_differ(want, got.facets[key], none_is_zero=kind == "gg",
                                 loose=prog.float32,
                                 finite_only=kind in DERIVATIVES and nonfinite)
        if why is not None:
            found.append(Disagreement(phase, kind, f"{key}: {why}", key))
    return found


DERIVATIVES = ("grad", "g1", "gg", "tangent", "jac", "hess")


def _nonfinite_values(prog: Program) -> bool:
    """Whether a step's value is nan/inf in torch (0/0, log(0), the mean of nothing...): such
    a program's derivatives are compared only where both libraries' numbers are finite."""
    import torch
    env: dict = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _steps(torch, prog, env, {}, {})
    except Exception:  # noqa: BLE001  (a program torch rejects: its derivatives are not run)
        return False
    values = [v for v in env.values() if isinstance(v, torch.Tensor) and _floating(v)]
    return any(not bool(torch.isfinite(v.detach()).all()) for v in values)


def compare(prog: Program, phases=PHASES, skip_kinds=frozenset()) -> list[Disagreement]:
    if prog.misuse:
        phases = ("run",)
    found = []
    for phase in phases:
        found.extend(compare_phase(prog, phase, skip_kinds))
        if any(d.what in RAISES and d.key.startswith("step") for d in found):
            break       # the other phases run the same steps: they would only repeat it
    return found


RAISES = ("crash", "gt-raises", "torch-raises", "raise-at", "exc-type", "message")


def minimize(prog: Program, signature: tuple) -> Program:
    """Make the program smaller while the disagreement (phase and kind) persists: remove
    steps nothing uses, and replace a step's input made by other steps with a leaf holding the
    same numbers (so the chain producing it can go)."""
    phase = signature[0]

    def persists(candidate: Program) -> bool:
        return any(d.signature == signature for d in compare_phase(candidate, phase))

    changed = True
    while changed:
        changed = False
        for step in reversed(prog.steps):
            used = set().union(*(_refs(s.args) | _refs(s.kwargs) for s in prog.steps
                                 if s.id != step.id)) if len(prog.steps) > 1 else set()
            if step.id in used or len(prog.steps) == 1:
                continue
            smaller = prog.without(step.id)
            if any(s.kind != "leaf" for s in smaller.steps) and persists(smaller):
                prog = smaller
                changed = True
        if changed:
            continue
        for step in reversed(prog.steps):
            for ref in sorted(_refs(step.args) | _refs(step.kwargs), key=lambda r: -r):
                simpler = _with_leaf_input(prog, step, ref)
                if simpler is not None and persists(simpler):
                    prog = simpler
                    changed = True
                    break
            if changed:
                break
    return prog


def _with_leaf_input(prog: Program, step: Step, ref: int) -> Program | None:
    """``prog`` with ``step``'s input ``ref`` (a non-leaf tensor) replaced by a new leaf
    holding its value (as torch computes it before ``step``)."""
    import torch
    source = next(s for s in prog.steps if s.id == ref)
    if source.kind == "leaf":
        return None
    env: dict = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for s in prog.steps:
                if s.id == step.id:
                    break
                run_step(torch, s, env)
    except Exception:  # noqa: BLE001  (a program torch rejects before the step: keep it)
        return None
    value = env.get(ref)
    if not isinstance(value, torch.Tensor) or (
            _floating(value) and not bool(torch.isfinite(value.detach()).all())):
        return None         # a leaf of nan/inf would hide where they came from
    dtype = _dtype_name(value)
    leaf = TLit(value.detach().tolist(), dtype, tuple(value.shape),
                bool(value.requires_grad and _floating(value)))
    new_id = max(s.id for s in prog.steps) + 1
    swap = {ref: new_id}

    def rewrite(obj):
        if isinstance(obj, Ref):
            return Ref(swap.get(obj.id, obj.id))
        if isinstance(obj, tuple):
            return tuple(rewrite(o) for o in obj)
        if isinstance(obj, list):
            return [rewrite(o) for o in obj]
        return obj

    steps = [Step(new_id, "leaf", "tensor", (leaf,), (), "leaf")]
    for s in prog.steps:
        if s.id == step.id:
            s = dataclasses.replace(s, args=rewrite(s.args),
                                    kwargs=tuple((k, rewrite(v)) for k, v in s.kwargs))
        steps.append(s)
    return Program(prog.seed, steps, prog.misuse)


VIEW_WORDS = ("in-place", "inplace", "a view", "version", "no_grad mode", "written-to tensor")


def _inplace_like(label: str) -> bool:
    return label.startswith(INPLACE_PREFIXES) or label.endswith("@no_grad") or (
        label.startswith("misuse:") and label.endswith(("_", "inplace-view", "setitem")))


def area_of(dis: Disagreement, prog: Program, labels) -> str:
    """[views] for in-place, views and version counters, [names] for graph structure, [ops]
    for the rest.  An exception is put where the step that raised (or its message) belongs."""
    if dis.what in STRUCTURE:
        return "views" if any(_inplace_like(lab) for lab in labels) else "names"
    if dis.what in RAISES:
        if dis.key.startswith("step "):
            step_id = int(dis.key.split()[1])
            label = next((st.label for st in prog.steps if st.id == step_id), "")
            if _inplace_like(label):
                return "views"
        elif any(_inplace_like(lab) for lab in labels):
            return "views"          # raised in backward/grad/...: the in-place step is why
        text = dis.message.lower()
        return "views" if any(w in text for w in VIEW_WORDS) else "ops"
    return "views" if any(_inplace_like(lab) for lab in labels) else "ops"


def repro(prog: Program, phase: str) -> str:
    import torch
    lines = [step_source(s) for s in prog.steps]
    env: dict = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _steps(torch, prog, env, {}, {})
    except Exception:  # noqa: BLE001  (the output is the last tensor made before the error)
        pass
    out_step, out = _output(torch, prog, env)
    o = f"v{(out_step or prog.steps[-1]).id}"
    diff_steps = _diff_leaves(prog)
    diff = [f"v{s.id}" for s in diff_steps]
    if prog.misuse:
        return "; ".join(lines)
    shape, dtype = (tuple(out.shape), _dtype_name(out)) if out is not None else ((), "float64")
    g = _src(_grad_values(prog.seed, shape, dtype))
    if phase == "run" and out is not None and out.requires_grad:
        lines.append(f"{o}.backward({g})")
        lines.append("print(" + ", ".join(f"{d}.grad" for d in diff) + ")")
    elif phase == "double":
        ws = [_src(_grad_values(prog.seed + 7 * i + 1, s.args[0].shape, s.args[0].dtype))
              for i, s in enumerate(diff_steps)]
        lines.append(f"gs = lib.autograd.grad({o}, [{', '.join(diff)}], {g}, "
                     "create_graph=True, allow_unused=True)")
        lines.append(f"ws = [{', '.join(ws)}]")
        lines.append("print(gs, lib.autograd.grad(sum((g * w).sum() for g, w in zip(gs, ws) "
                     f"if g is not None and g.requires_grad), [{', '.join(diff)}], "
                     "allow_unused=True))")
    elif phase == "fwad":
        fw = ["fwad = lib.autograd.forward_ad", "fwad.enter_dual_level()"]
        for s in prog.steps:
            fw.append(step_source(s))
            if s.kind == "leaf" and s.args[0].dtype.startswith("float"):
                tangent = _grad_values(prog.seed + 31 * s.id, s.args[0].shape, s.args[0].dtype)
                fw.append(f"v{s.id} = fwad.make_dual(v{s.id}, {_src(tangent)})")
        fw.append(f"print(fwad.unpack_dual({o}).tangent); fwad.exit_dual_level()")
        return "; ".join(fw)
    else:
        leaves = [step_source(s) for s in prog.steps if s.kind == "leaf"]
        body = [step_source(s) for s in prog.steps if s.kind != "leaf" or
                f"v{s.id}" not in diff]
        w = _src(_grad_values(prog.seed + 3, shape, dtype))
        inputs = f"({', '.join(diff)},)"
        head = "; ".join(leaves) + f"; def f({', '.join(diff)}): " + "; ".join(body)
        return (head + f"; return {o} ⏎ print(lib.autograd.functional.jacobian(f, {inputs})) ⏎ "
                f"print(lib.autograd.functional.hessian(lambda *a: (f(*a) * {w}).sum(), "
                f"{inputs}))")
    return "; ".join(lines)


# ---- generating -----------------------------------------------------------------------------
UNARY = ["exp", "sin", "cos", "tanh", "sigmoid", "neg", "abs", "relu", "square", "floor", "ceil",
         "round", "trunc", "frac", "sign", "expm1", "atan", "sinh", "cosh"]
POSITIVE_UNARY = ["log", "sqrt", "rsqrt", "reciprocal", "log2"]
ACTIVATIONS = [("gelu", lambda r: {"approximate": str(r.choice(["none", "tanh"]))}),
               ("silu", lambda r: {}), ("elu", lambda r: {"alpha": float(r.choice([1.0, 0.5]))}),
               ("leaky_relu", lambda r: {"negative_slope": float(r.choice([0.01, 0.2]))}),
               ("hardtanh", lambda r: {"min_val": float(r.choice([-1.0, -0.5])),
                                       "max_val": float(r.choice([0.5, 1.0]))}),
               ("softplus", lambda r: {}), ("relu6", lambda r: {})]
REDUCE_DIM = ["sum", "mean", "prod", "amax", "amin", "std", "var", "logsumexp", "norm"]
DIM_ONLY = ["softmax", "log_softmax", "cumsum"]
SCALARS = [2.0, -1.5, 0.5, 3, 0.0, 1.0]
KINK = [-1.0, -0.5, 0.0, 0.5, 1.0]


class Generator:
    """Builds one random program, running torch alongside to keep only steps torch accepts
    (a misuse step is kept even when torch rejects it: the program ends there)."""

    def __init__(self, seed: int, misuse: bool = False, area: str | None = None,
                 exclude=frozenset()):
        import torch
        self.torch = torch
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.misuse = misuse
        self.steps: list[Step] = []
        self.env: dict = {}
        self.next_id = 0
        self.dtype = "float32" if self.rng.random() < 0.5 else "float64"
        self.exclude = frozenset(exclude)
        self.proposers = [(label, fn) for label, (areas, fn) in PROPOSERS.items()
                          if area is None or area in areas]

    # -- helpers --
    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def shape(self, max_ndim: int = 3) -> tuple:
        r = self.rng
        ndim = int(r.choice([0, 1, 1, 2, 2, 2, 3][: 2 + 2 * max_ndim]))
        dims = [int(r.choice([1, 2, 3, 4], p=[0.2, 0.35, 0.3, 0.15])) for _ in range(ndim)]
        if ndim and r.random() < 0.08:
            dims[int(r.integers(ndim))] = 0
        return tuple(dims)

    def values(self, shape, dtype):
        r = self.rng
        if dtype == "int64":
            data = r.integers(-3, 4, size=shape)
        elif dtype == "bool":
            data = r.random(shape) < 0.5
        elif r.random() < 0.25:
            data = r.choice(KINK, size=shape)
        else:
            data = np.round(r.normal(0.0, 1.2, size=shape), 3)
        return data.tolist()

    def lit(self, shape, dtype=None, requires_grad=False, values=None) -> TLit:
        dtype = dtype or self.dtype
        vals = self.values(shape, dtype) if values is None else values
        return TLit(vals, dtype, tuple(shape), requires_grad)

    def leaf(self, shape=None, dtype=None, requires_grad=None) -> Ref:
        shape = self.shape() if shape is None else shape
        dtype = dtype or self.dtype
        if requires_grad is None:
            requires_grad = dtype.startswith("float") and self.rng.random() < 0.85
        ref = self.add(Step(self.new_id(), "leaf", "tensor",
                            (self.lit(shape, dtype, requires_grad),), (), "leaf"))
        return ref

    def add(self, step: Step, must=True):
        """Run ``step`` in torch; keep it when torch accepts it (or in misuse mode).  A step
        whose label is excluded (``KNOWN``) is never kept."""
        if step.label in self.exclude:
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                env = dict(self.env)
                run_step(self.torch, step, env)
        except Exception:  # noqa: BLE001  (torch rejected the step)
            if self.misuse and not must:
                self.steps.append(step)
                raise StopProgram from None
            return None
        self.env = env
        self.steps.append(step)
        return Ref(step.id)

    def tensors(self, pred=lambda t: True) -> list[int]:
        return [i for i, v in self.env.items() if isinstance(v, self.torch.Tensor) and pred(v)]

    def pick(self, pred=lambda t: True) -> Ref | None:
        found = self.tensors(pred)
        if not found:
            return None
        # recent values more often: programs chain
        weights = np.arange(1, len(found) + 1, dtype=float) ** 2
        return Ref(int(self.rng.choice(found, p=weights / weights.sum())))

    def value(self, ref: Ref):
        return self.env[ref.id]

    def dim(self, ref: Ref) -> int:
        nd = self.value(ref).dim()
        if nd == 0:
            return int(self.rng.choice([0, -1]))
        return int(self.rng.integers(-nd, nd))

    def call(self, name, *args, label, **kwargs):
        return self.add(Step(self.new_id(), "call", name, args, tuple(kwargs.items()), label))

    def method(self, name, *args, label, **kwargs):
        return self.add(Step(self.new_id(), "method", name, args, tuple(kwargs.items()), label))

    def other(self, ref: Ref) -> Ref:
        """A second operand broadcastable with ``ref``: an existing tensor or a new leaf."""
        shape = tuple(self.value(ref).shape)
        if self.rng.random() < 0.3:
            found = self.pick(lambda t: t.is_floating_point() and tuple(t.shape) == shape)
            if found is not None:
                return found
        new = list(shape)
        for i in range(len(new)):
            if self.rng.random() < 0.3:
                new[i] = 1
        drop = int(self.rng.integers(0, len(new) + 1)) if self.rng.random() < 0.3 else 0
        new = new[drop:]
        if self.rng.random() < 0.1:
            new = [2] + new if len(new) < 3 else new
        dtype = self.dtype if self.rng.random() < 0.85 else str(
            self.rng.choice(["float32", "float64", "int64"]))
        return self.leaf(tuple(new), dtype)

    def build(self, n_steps: int) -> Program:
        for _ in range(int(self.rng.integers(1, 3))):
            self.leaf()
        try:
            tries = 0
            while len([s for s in self.steps if s.kind != "leaf"]) < n_steps and tries < 60:
                tries += 1
                label, fn = self.proposers[int(self.rng.integers(len(self.proposers)))]
                fn(self)
            if self.misuse:
                label, fn = MISUSE[int(self.rng.integers(len(MISUSE)))]
                fn(self)
        except StopProgram:
            pass
        return Program(self.seed, self.steps, self.misuse)


class StopProgram(Exception):
    """A misuse step torch rejects ends the program."""


def floating(t) -> bool:
    return t.is_floating_point()


def p_unary(g: Generator):
    x = g.pick(floating)
    if x is None:
        return
    name = str(g.rng.choice(UNARY))
    g.method(name, x, label=f"unary:{name}")


def p_positive(g: Generator):
    x = g.pick(lambda t: floating(t) and (t.numel() == 0 or bool(t.detach().min() > 0.05)))
    if x is None:
        x = g.pick(floating)
        if x is None:
            return
        x = g.add(Step(g.new_id(), "binop", "+", (g.method("abs", x, label="unary:abs"), 0.5),
                       label="binop:+scalar"))
        if x is None:
            return
    name = str(g.rng.choice(POSITIVE_UNARY))
    g.method(name, x, label=f"unary:{name}")


def p_activation(g: Generator):
    x = g.pick(floating)
    if x is None:
        return
    name, params = ACTIVATIONS[int(g.rng.integers(len(ACTIVATIONS)))]
    g.call(f"nn.functional.{name}", x, label=f"F.{name}", **params(g.rng))


def p_binary(g: Generator):
    x = g.pick(floating)
    if x is None:
        return
    op = str(g.rng.choice(["+", "-", "*", "/"]))
    r = g.rng.random()
    if r < 0.35:
        s = SCALARS[int(g.rng.integers(len(SCALARS)))]
        if op == "/" and s == 0:
            s = 2.0
        args, label = ((s, x), f"binop:scalar{op}") if r < 0.15 else ((x, s), f"binop:{op}scalar")
    else:
        y = g.other(x)
        if y is None:
            return
        args, label = ((x, y) if g.rng.random() < 0.5 else (y, x)), f"binop:{op}"
    g.add(Step(g.new_id(), "binop", op, args, (), label))


def p_pow(g: Generator):
    x = g.pick(floating)
    if x is None:
        return
    e = float(g.rng.choice([2.0, 3.0, 2]))
    g.add(Step(g.new_id(), "binop", "**", (x, e), (), "binop:**"))


def p_compare_where(g: Generator):
    x = g.pick(floating)
    if x is None:
        return
    r = g.rng.random()
    mask = g.add(Step(g.new_id(), "binop", str(g.rng.choice([">", "<", ">="])),
                      (x, float(g.rng.choice(KINK))), (), "compare"))
    if mask is None:
        return
    if r < 0.4:
        y = g.other(x)
        g.call("where", mask, x, y, label="where")
    elif r < 0.7:
        g.method("masked_fill", x, mask, float(g.rng.choice([0.0, -1.0])), label="masked_fill")
    else:
        g.getitem(x, mask, "getitem:bool")


def p_clamp(g: Generator):
    x = g.pick(floating)
    if x is None:
        return
    lo, hi = sorted(g.rng.choice(KINK, size=2, replace=False).tolist())
    r = g.rng.random()
    if r < 0.4:
        g.method("clamp", x, min=lo, max=hi, label="clamp")
    elif r < 0.6:
        g.method("clamp", x, min=lo, label="clamp:min")
    elif r < 0.8:
        g.call("maximum", x, g.other(x), label="maximum")
    else:
        g.call("minimum", x, g.other(x), label="minimum")


def p_reduce(g: Generator):
    x = g.pick(floating)
    if x is None:
        return
    name = str(g.rng.choice(REDUCE_DIM))
    r = g.rng.random()
    if r < 0.25 and name != "logsumexp":
        g.method(name, x, label=f"reduce:{name}")
    elif r < 0.4 and x is not None and g.value(x).dim() >= 2 and name in ("sum", "mean", "amax"):
        dims = tuple(int(d) for d in g.rng.choice(g.value(x).dim(), size=2, replace=False))
        g.method(name, x, dim=dims, keepdim=bool(g.rng.random() < 0.5), label=f"reduce:{name}")
    else:
        g.method(name, x, dim=g.dim(x), keepdim=bool(g.rng.random() < 0.5),
                 label=f"reduce:{name}(dim)")


def p_norm(g: Generator):
    x = g.pick(floating)
    if x is None:
        return
    r = g.rng
    p = [1, 2, float("inf"), 3][int(r.integers(4))]
    c = int(r.integers(4))
    if c == 0:
        g.method("norm", x, p=p, label="norm(p)")
    elif c == 1:
        g.method("norm", x, p=p, dim=g.dim(x), keepdim=bool(r.random() < 0.5),
                 label="norm(p, dim)")
    elif c == 2:
        g.call("linalg.vector_norm", x, ord=p, dim=g.dim(x), label="linalg.vector_norm")
    else:
        g.call("nn.functional.normalize", x, dim=g.dim(x), label="F.normalize")


def p_dim_op(g: Generator):
    x = g.pick(floating)
    if x is None:
        return
    name = str(g.rng.choice(DIM_ONLY))
    if name != "cumsum" and g.rng.random() < 0.5:
        g.call(f"nn.functional.{name}", x, dim=g.dim(x), label=f"F.{name}")
    else:
        g.method(name, x, g.dim(x), label=f"{name}")


def p_maxmin(g: Generator):
    name = str(g.rng.choice(["max", "min", "argmax"]))
    if g.rng.random() < 0.3:
        x = g.pick(floating)      # max()/min() share the gradient between ties, as amax
        if x is not None:
            g.method(name, x, label=f"{name}()")
        return
    x = g.pick(lambda t: floating(t) and distinct(t))
    if x is None:
        return
    res = g.method(name, x, g.dim(x), keepdim=bool(g.rng.random() < 0.5), label=f"{name}(dim)")
    if res is not None and name != "argmax":
        g.getitem(res, int(g.rng.integers(2)), "getitem:tuple")


def p_matmul(g: Generator):
    x = g.pick(lambda t: floating(t) and 1 <= t.dim() <= 3)
    if x is None:
        return
    shape = tuple(g.value(x).shape)
    k = shape[-1]
    r = g.rng.random()
    n = int(g.rng.integers(1, 4))
    if len(shape) == 2 and r < 0.25:
        g.call("mm", x, g.leaf((k, n)), label="mm")
    elif len(shape) == 3 and r < 0.5:
        g.call("bmm", x, g.leaf((shape[0], k, n)), label="bmm")
    elif r < 0.75:
        other = (k,) if g.rng.random() < 0.3 else (k, n)
        y = g.leaf(other)
        if g.rng.random() < 0.5:
            g.add(Step(g.new_id(), "binop", "@", (x, y), (), "binop:@"))
        else:
            g.call("matmul", x, y, label="matmul")
    else:
        spec = {1: "a,a->", 2: "ab,bc->ac", 3: "abc,acd->abd"}[len(shape)]
        other = {1: (k,), 2: (k, n), 3: (shape[0], k, n)}[len(shape)]
        if g.rng.random() < 0.3 and len(shape) == 2 and shape[0] == shape[1]:
            g.call("einsum", "aa->a", x, label="einsum")
            return
        g.call("einsum", spec, x, g.leaf(other), label="einsum")


def p_linear(g: Generator):
    x = g.pick(lambda t: floating(t) and 1 <= t.dim() <= 3)
    if x is None:
        return
    k = g.value(x).shape[-1]
    n = int(g.rng.integers(1, 4))
    bias = g.leaf((n,)) if g.rng.random() < 0.6 else None
    g.call("nn.functional.linear", x, g.leaf((n, k)), bias, label="F.linear")


def _index_for(g: Generator, shape) -> tuple:
    r = g.rng
    parts = []
    used_ellipsis = False
    for n in shape:
        c = r.random()
        if c < 0.3 and n > 0:
            parts.append(int(r.integers(-n, n)))
        elif c < 0.6:
            start = int(r.integers(-n - 1, n + 1)) if r.random() < 0.7 else None
            stop = int(r.integers(-n, n + 2)) if r.random() < 0.5 else None
            step = int(r.choice([1, 2])) if r.random() < 0.3 else None
            parts.append(slice(start, stop, step))
        elif c < 0.7:
            parts.append(None)
            parts.append(slice(None))
        elif c < 0.8 and not used_ellipsis:
            parts.append(Ellipsis)
            used_ellipsis = True
            break
        else:
            parts.append(slice(None))
    if len(shape) == 0:
        parts = [r.choice([None, Ellipsis])] if r.random() < 0.7 else []
    return tuple(parts) if len(parts) != 1 else parts[0]


def _getitem(g: Generator, x: Ref, index, label: str):
    return g.add(Step(g.new_id(), "getitem", "[]", (x, index), (), label))


Generator.getitem = _getitem


def _advanced_index(g: Generator, x: Ref):
    shape = tuple(g.value(x).shape)
    r = g.rng
    if not shape:
        return None, ""
    c = r.random()
    if c < 0.35:
        mask = r.random(shape) < 0.5
        return TLit(mask.tolist(), "bool", shape), "getitem:bool"
    n = shape[0]
    if n == 0:
        return None, ""
    idx = r.integers(-n, n, size=int(r.integers(1, 4)))
    if c < 0.7:
        return TLit(idx.tolist(), "int64", idx.shape), "getitem:int-tensor"
    if c < 0.85 or not shape[-1]:
        return [int(i) for i in idx], "getitem:list"
    last = r.integers(-shape[-1], shape[-1], size=2)
    return (Ellipsis, TLit(last.tolist(), "int64", (2,))), "getitem:ellipsis-int-tensor"


def p_getitem(g: Generator):
    x = g.pick()
    if x is None:
        return
    if g.rng.random() < 0.6:
        g.getitem(x, _index_for(g, tuple(g.value(x).shape)), "getitem:basic")
    else:
        index, label = _advanced_index(g, x)
        if index is not None:
            g.getitem(x, index, label)


def _reshape_target(g: Generator, shape) -> tuple:
    numel = int(np.prod(shape)) if shape else 1
    if numel == 0:
        return (0, -1) if g.rng.random() < 0.5 else (-1,)
    factors = [d for d in range(1, numel + 1) if numel % d == 0]
    a = int(g.rng.choice(factors))
    options = [(numel,), (a, numel // a), (-1,), (a, -1), (1, numel), (numel, 1), ()]
    if numel != 1:
        options.pop()
    return tuple(options[int(g.rng.integers(len(options)))])


def p_view(g: Generator):
    x = g.pick()
    if x is None:
        return
    t = g.value(x)
    shape, nd, r = tuple(t.shape), t.dim(), g.rng
    c = int(r.integers(14))
    if c == 0:
        g.method("view", x, _reshape_target(g, shape), label="view")
    elif c == 1:
        g.method("reshape", x, _reshape_target(g, shape), label="reshape")
    elif c == 2:
        g.method("transpose", x, g.dim(x), g.dim(x), label="transpose")
    elif c == 3:
        g.method("permute", x, tuple(int(i) for i in r.permutation(nd)), label="permute")
    elif c == 4:
        new = [int(r.choice([2, 3])) if d == 1 and r.random() < 0.6 else d for d in shape]
        if r.random() < 0.4:
            new = [2] + new
        if r.random() < 0.3:
            # -1 keeps a dim's size (only for the input's own dims, not new leading ones)
            lead = len(new) - len(shape)
            new = [-1 if i >= lead and d == shape[i - lead] else d for i, d in enumerate(new)]
        g.method("expand", x, tuple(new), label="expand")
    elif c == 5:
        if r.random() < 0.5:
            g.method("squeeze", x, label="squeeze")
        else:
            g.method("squeeze", x, g.dim(x), label="squeeze(dim)")
    elif c == 6:
        g.method("unsqueeze", x, int(r.integers(-nd - 1, nd + 1)), label="unsqueeze")
    elif c == 7 and nd:
        d = g.dim(x)
        n = shape[d]
        start = int(r.integers(0, n + 1))
        g.method("narrow", x, d, start, int(r.integers(0, n - start + 1)), label="narrow")
    elif c == 8 and nd:
        d = g.dim(x)
        if shape[d]:
            g.method("select", x, d, int(r.integers(-shape[d], shape[d])), label="select")
    elif c == 9 and nd >= 2:
        d1, d2 = (int(v) for v in r.choice(nd, size=2, replace=False))
        g.method("diagonal", x, offset=int(r.integers(-1, 2)), dim1=d1, dim2=d2,
                 label="diagonal")
    elif c == 10 and nd <= 2:
        g.method("t", x, label="t")
    elif c == 11:
        g.method("flatten", x, label="flatten")
    elif c == 12:
        g.method(str(r.choice(["contiguous", "clone", "detach"])), x, label="clone-like")
    else:
        g.method(str(r.choice(["float", "double"])), x, label="dtype-cast")


def p_join(g: Generator):
    x = g.pick()
    if x is None:
        return
    t = g.value(x)
    shape, r = tuple(t.shape), g.rng
    c = r.random()
    if c < 0.3:
        if not shape:
            return
        d = g.dim(x)
        other = list(shape)
        other[d] = int(r.integers(0, 3))
        dtype = g.dtype if r.random() < 0.8 else str(r.choice(["int64", "float32", "float64"]))
        y = g.leaf(tuple(other), dtype)
        g.call("cat", [x, y] if r.random() < 0.5 else [y, x], dim=d, label="cat")
    elif c < 0.5:
        y = g.leaf(shape)
        g.call("stack", [x, y], dim=int(r.integers(-len(shape) - 1, len(shape) + 1)),
               label="stack")
    else:
        if not shape:
            return
        d = g.dim(x)
        n = shape[d]
        kind = str(r.choice(["split", "split-sizes", "chunk", "unbind"]))
        if kind == "split":
            res = g.method("split", x, int(r.integers(1, 3)), dim=d, label="split")
        elif kind == "split-sizes":
            first = int(r.integers(0, n + 1))
            res = g.method("split", x, [first, n - first], dim=d, label="split-sizes")
        elif kind == "chunk":
            res = g.method("chunk", x, int(r.integers(1, 4)), dim=d, label="chunk")
        else:
            res = g.method("unbind", x, d, label="unbind")
        if res is not None and len(g.value(res)):
            g.getitem(res, int(r.integers(len(g.value(res)))), "getitem:tuple")


def distinct(t) -> bool:
    """No ties: sort/topk/argmax indices (and so gradients) are defined only up to ties."""
    t = t.detach()
    return t.numel() == 0 or (bool(t.isfinite().all()) and t.unique().numel() == t.numel())


def p_sort(g: Generator):
    x = g.pick(lambda t: floating(t) and distinct(t))
    if x is None:
        return
    r = g.rng
    d = g.dim(x)
    t = g.value(x)
    n = t.shape[d] if t.dim() else 1
    c = r.random()
    if c < 0.4:
        res = g.method("sort", x, dim=d, descending=bool(r.random() < 0.5), label="sort")
    elif c < 0.8:
        res = g.method("topk", x, int(r.integers(0, n + 1)), dim=d,
                       largest=bool(r.random() < 0.5), label="topk")
    else:
        g.method("argsort", x, dim=d, label="argsort")
        return
    if res is not None:
        g.getitem(res, 0 if r.random() < 0.7 else 1, "getitem:tuple")


def p_gather(g: Generator):
    x = g.pick(lambda t: floating(t) and t.dim() >= 1)
    if x is None:
        return
    r = g.rng
    shape = tuple(g.value(x).shape)
    d = g.dim(x)
    n = shape[d]
    if n == 0:
        return
    if r.random() < 0.5:
        idx = r.integers(0, n, size=shape)
        g.call("gather", x, d, TLit(idx.tolist(), "int64", idx.shape), label="gather")
    else:
        idx = r.integers(0, n, size=int(r.integers(0, 4)))
        g.call("index_select", x, d, TLit(idx.tolist(), "int64", idx.shape),
               label="index_select")


def p_loss(g: Generator):
    r = g.rng
    c = int(r.integers(8))
    x = g.pick(lambda t: floating(t))
    if x is None:
        return
    shape = tuple(g.value(x).shape)
    red = str(r.choice(["mean", "sum", "none"]))
    if c == 0:
        g.call("nn.functional.mse_loss", x, g.lit(shape), reduction=red, label="F.mse_loss")
    elif c == 1:
        g.call("nn.functional.l1_loss", x, g.lit(shape), reduction=red, label="F.l1_loss")
    elif c == 2:
        g.call("nn.functional.smooth_l1_loss", x, g.lit(shape), reduction=red,
               beta=float(r.choice([1.0, 0.5])), label="F.smooth_l1_loss")
    elif c == 3:
        g.call("nn.functional.huber_loss", x, g.lit(shape), reduction=red,
               delta=float(r.choice([1.0, 0.5])), label="F.huber_loss")
    elif c in (4, 5):
        x = g.pick(lambda t: floating(t) and t.dim() in (1, 2) and t.shape[-1] > 0)
        if x is None:
            return
        shape = tuple(g.value(x).shape)
        classes = shape[-1]
        target = r.integers(0, classes, size=shape[:-1])
        tl = TLit(target.tolist(), "int64", target.shape)
        if c == 4:
            g.call("nn.functional.cross_entropy", x, tl, reduction=red,
                   label="F.cross_entropy")
        else:
            lsm = g.call("nn.functional.log_softmax", x, dim=-1, label="F.log_softmax")
            if lsm is not None:
                g.call("nn.functional.nll_loss", lsm, tl, reduction=red, label="F.nll_loss")
    elif c == 6:
        x = g.pick(lambda t: floating(t) and t.dim() >= 1)
        if x is None:
            return
        norm_shape = tuple(g.value(x).shape)[-1:]
        w = g.leaf(norm_shape) if r.random() < 0.5 else None
        # a bias only with a weight: torch's double backward without one raises (torch bug)
        b = g.leaf(norm_shape) if w is not None and r.random() < 0.5 else None
        g.call("nn.functional.layer_norm", x, norm_shape, w, b, label="F.layer_norm")
    else:
        x = g.pick(lambda t: floating(t) and t.dim() in (2, 3) and t.shape[0] > 1)
        if x is None:
            return
        ch = (g.value(x).shape[1],)
        w = g.leaf(ch) if r.random() < 0.5 else None
        # torch 2.13's double backward of batch_norm with a bias and no weight raises
        # "Expected a proper Tensor but got None" (a torch bug): a bias only with a weight
        b = g.leaf(ch) if w is not None and r.random() < 0.5 else None
        g.call("nn.functional.batch_norm", x, None, None, w, b, training=True,
               label="F.batch_norm")


def _non_leaf(g: Generator, view: bool) -> Ref | None:
    """A tensor that can be modified in place: a non-leaf (``x * 1``), maybe a view of it."""
    x = g.pick(lambda t: floating(t) and not t.is_leaf)
    if x is None or g.rng.random() < 0.3:
        leaf = g.pick(floating)
        if leaf is None:
            return None
        x = g.add(Step(g.new_id(), "binop", "*", (leaf, 1.0), (), "binop:*scalar"))
        if x is None:
            return None
    if not view:
        return x
    shape = tuple(g.value(x).shape)
    c = int(g.rng.integers(9))
    if c == 6:
        # a detached alias of a leaf: in place is allowed and bumps the leaf's version
        leaf = g.pick(lambda t: floating(t) and t.is_leaf)
        return g.method("detach", leaf, label="detach") if leaf is not None else x
    if c == 7 and shape:
        # one output of a multi-output view op (torch refuses in-place on it)
        name = str(g.rng.choice(["unbind", "split", "chunk"]))
        res = (g.method(name, x, label=name) if name == "unbind"
               else g.method(name, x, 1, label=name))
        if res is None or not len(g.value(res)):
            return None
        return g.getitem(res, 0, "getitem:tuple")
    if c == 8 and shape and shape[0]:
        # a view made with grad mode off of a tensor that requires grad
        return g.add(Step(g.new_id(), "getitem", "[]", (x, 0), (), "getitem:int@no_grad",
                          no_grad=True))
    if c == 0 and shape and shape[0]:
        return g.getitem(x, int(g.rng.integers(-shape[0], shape[0])), "getitem:int")
    if c == 1:
        return g.getitem(x, _index_for(g, shape), "getitem:basic")
    if c == 2 and len(shape) >= 2:
        return g.method("diagonal", x, label="diagonal")
    if c == 3:
        return g.method("transpose", x, 0, -1, label="transpose") if shape else x
    if c == 4 and shape:
        return g.method("narrow", x, 0, 0, max(shape[0] - 1, 0), label="narrow")
    return g.method("view", x, _reshape_target(g, shape), label="view")


def p_inplace(g: Generator, view: bool | None = None):
    r = g.rng
    view = bool(r.random() < 0.5) if view is None else view
    x = _non_leaf(g, view)
    if x is None:
        return
    where = "view" if view else "nonleaf"
    shape = tuple(g.value(x).shape)
    c = int(r.integers(12))
    s = float(r.choice([2.0, -0.5, 3.0]))
    if c == 0:
        g.method("mul_", x, s if r.random() < 0.5 else g.other(x), label=f"inplace:mul_@{where}")
    elif c == 1:
        g.method("add_", x, s if r.random() < 0.5 else g.other(x), label=f"inplace:add_@{where}")
    elif c == 2:
        g.method("sub_", x, g.other(x), label=f"inplace:sub_@{where}")
    elif c == 3:
        g.method("div_", x, s, label=f"inplace:div_@{where}")
    elif c == 4:
        g.method("zero_", x, label=f"inplace:zero_@{where}")
    elif c == 5:
        g.method("fill_", x, s, label=f"inplace:fill_@{where}")
    elif c == 6:
        g.method("copy_", x, g.other(x), label=f"inplace:copy_@{where}")
    elif c == 7:
        mask = TLit((r.random(shape) < 0.5).tolist(), "bool", shape)
        g.method("masked_fill_", x, mask, s, label=f"inplace:masked_fill_@{where}")
    elif c == 8:
        lo, hi = sorted(r.choice(KINK, size=2, replace=False).tolist())
        g.method("clamp_", x, lo, hi, label=f"inplace:clamp_@{where}")
    elif c == 9:
        index = _index_for(g, shape)
        value = s if r.random() < 0.6 else g.lit(())
        g.add(Step(g.new_id(), "setitem", "[]=", (x, index, value), (), f"setitem@{where}"))
    elif c == 10:
        index, label = _advanced_index(g, x)
        if index is not None:
            g.add(Step(g.new_id(), "setitem", "[]=", (x, index, s), (),
                       f"setitem:{label.split(':')[-1]}@{where}"))
    else:
        op = str(r.choice(["+=", "*=", "-="]))
        g.add(Step(g.new_id(), "iop", op, (x, s if r.random() < 0.5 else g.other(x)), (),
                   f"iop:{op}@{where}"))
    if r.random() < 0.5:
        # use the modified tensor (or its base) afterwards, so saved values matter
        y = g.pick(floating)
        if y is not None:
            g.method(str(r.choice(["exp", "sigmoid", "tanh"])), y, label="unary:after")


def p_where_scalar(g: Generator):
    x = g.pick(floating)
    if x is None:
        return
    mask = g.add(Step(g.new_id(), "binop", ">", (x, float(g.rng.choice(KINK))), (), "compare"))
    if mask is not None:
        args = (mask, x, 0.0) if g.rng.random() < 0.5 else (mask, -1.0, x)
        g.call("where", *args, label="where:scalar")


# label -> (areas, proposer)
PROPOSERS = {
    "unary": (("ops", "names"), p_unary),
    "positive": (("ops",), p_positive),
    "activation": (("ops", "names"), p_activation),
    "binary": (("ops", "names"), p_binary),
    "pow": (("ops",), p_pow),
    "where": (("ops", "names"), p_compare_where),
    "where-scalar": (("ops", "names"), p_where_scalar),
    "clamp": (("ops", "names"), p_clamp),
    "reduce": (("ops", "names"), p_reduce),
    "dim-op": (("ops", "names"), p_dim_op),
    "norm": (("ops", "names"), p_norm),
    "maxmin": (("ops", "names"), p_maxmin),
    "matmul": (("ops", "names"), p_matmul),
    "linear": (("ops", "names"), p_linear),
    "getitem": (("views", "ops", "names"), p_getitem),
    "view": (("views", "ops", "names"), p_view),
    "join": (("ops", "names", "views"), p_join),
    "sort": (("ops", "names"), p_sort),
    "gather": (("ops", "names"), p_gather),
    "loss": (("ops", "names"), p_loss),
    "inplace": (("views", "names"), p_inplace),
}


# ---- misuse ---------------------------------------------------------------------------------
def m_backward_twice(g: Generator):
    x = g.pick(lambda t: floating(t) and t.requires_grad) or g.leaf(requires_grad=True,
                                                                    dtype=g.dtype)
    y = g.method(str(g.rng.choice(["exp", "sigmoid", "tanh", "sin"])), x, label="unary")
    if y is None:
        return
    s = g.method("sum", y, label="reduce:sum")
    retain = bool(g.rng.random() < 0.3)
    g.add(Step(g.new_id(), "method", "backward", (s,), (("retain_graph", retain),),
               "misuse:backward"), must=False)
    g.add(Step(g.new_id(), "method", "backward", (s,), (), "misuse:backward-again"), must=False)


def m_backward_nonscalar(g: Generator):
    x = g.pick(lambda t: t.requires_grad) or g.leaf(requires_grad=True)
    y = g.method("exp", x, label="unary:exp")
    if y is None:
        return
    c = g.rng.random()
    if c < 0.5:
        g.add(Step(g.new_id(), "method", "backward", (y,), (), "misuse:backward-nonscalar"),
              must=False)
    else:
        g.add(Step(g.new_id(), "call", "autograd.grad", (y, [x]), (),
                   "misuse:grad-nonscalar"), must=False)


def m_no_grad(g: Generator):
    x = g.leaf(requires_grad=False)
    y = g.method("sum", x, label="reduce:sum")
    if g.rng.random() < 0.5:
        g.add(Step(g.new_id(), "method", "backward", (y,), (), "misuse:backward-no-grad"),
              must=False)
    else:
        z = g.leaf((), requires_grad=True)
        w = g.add(Step(g.new_id(), "binop", "*", (z, 2.0), (), "binop:*scalar"))
        g.add(Step(g.new_id(), "call", "autograd.grad", (w, [z, x]), (),
                   "misuse:grad-unused"), must=False)


def m_inplace_leaf(g: Generator):
    x = g.pick(lambda t: t.is_leaf and t.requires_grad) or g.leaf(requires_grad=True)
    shape = tuple(g.value(x).shape)
    c = int(g.rng.integers(9))
    target = x
    if c >= 4:
        view = [("getitem", 0), ("diagonal",), ("t",), ("view", (-1,)), ("unbind",)][c - 4]
        if view[0] == "getitem":
            if not shape or not shape[0]:
                return
            target = g.getitem(x, 0, "getitem:int")
        elif view[0] == "unbind":
            if not shape:
                return
            res = g.method("unbind", x, label="unbind")
            if res is None or not len(g.value(res)):
                return
            target = g.getitem(res, 0, "getitem:tuple")
        elif view[0] == "view":
            target = g.method("view", x, (-1,), label="view")
        else:
            target = g.method(view[0], x, label=view[0])
        if target is None:
            return
    op = str(g.rng.choice(["mul_", "zero_", "fill_", "add_", "setitem"]))
    if op == "setitem":
        g.add(Step(g.new_id(), "setitem", "[]=", (target, Ellipsis, 1.0), (), "misuse:setitem"),
              must=False)
    else:
        args = (target,) if op == "zero_" else (target, 2.0)
        g.add(Step(g.new_id(), "method", op, args, (), f"misuse:{op}"), must=False)


def m_version(g: Generator):
    x = g.pick(lambda t: floating(t) and t.requires_grad) or g.leaf(requires_grad=True)
    c = int(g.rng.integers(4))
    base = g.add(Step(g.new_id(), "binop", "*", (x, 1.0), (), "binop:*scalar"))
    if base is None:
        return
    if c == 0:
        saved = g.method("exp", base, label="unary:exp")      # saves its output
        target = saved
    elif c == 1:
        saved = g.method("sin", base, label="unary:sin")      # saves its input
        target = base
    elif c == 2:
        saved = g.add(Step(g.new_id(), "binop", "*", (base, base), (), "binop:*"))
        target = base
    else:
        view = g.getitem(base, Ellipsis, "getitem:basic")
        saved = g.method("sigmoid", view, label="unary:sigmoid")
        target = base
    if saved is None or target is None:
        return
    g.method(str(g.rng.choice(["add_", "mul_"])), target, 2.0, label="inplace:version")
    s = g.method("sum", saved, label="reduce:sum")
    g.add(Step(g.new_id(), "method", "backward", (s,), (), "misuse:backward-version"),
          must=False)


def m_shapes(g: Generator):
    x = g.pick(lambda t: floating(t) and t.dim() >= 1) or g.leaf((2, 3))
    shape = tuple(g.value(x).shape)
    bad = tuple(d + 1 for d in shape)
    c = int(g.rng.integers(9))
    if c == 0:
        g.add(Step(g.new_id(), "binop", str(g.rng.choice(["+", "*"])), (x, g.lit(bad)), (),
                   "misuse:broadcast"), must=False)
    elif c == 1:
        g.add(Step(g.new_id(), "binop", "@", (x, g.lit((shape[-1] + 1, 2))), (),
                   "misuse:matmul"), must=False)
    elif c == 2:
        g.add(Step(g.new_id(), "method", "view", (x, (int(np.prod(shape)) + 1,)), (),
                   "misuse:view"), must=False)
    elif c == 3:
        g.add(Step(g.new_id(), "method", "expand", (x, tuple(d + 1 for d in shape)), (),
                   "misuse:expand"), must=False)
    elif c == 4:
        g.add(Step(g.new_id(), "call", "cat", ([x, g.lit(bad)],), (), "misuse:cat"),
              must=False)
    elif c == 5:
        y = g.add(Step(g.new_id(), "binop", "*", (x, 1.0), (), "binop:*scalar"))
        if y is not None:
            g.add(Step(g.new_id(), "setitem", "[]=", (y, Ellipsis, g.lit(bad)), (),
                       "misuse:setitem-shape"), must=False)
    elif c == 6:
        y = g.method("exp", x, label="unary:exp")
        if y is not None:
            g.add(Step(g.new_id(), "method", "backward", (y, g.lit(bad)), (),
                       "misuse:backward-grad-shape"), must=False)
    elif c == 7:
        g.add(Step(g.new_id(), "method", "view", (x, (-1, -1)), (), "misuse:view-two-minus"),
              must=False)
    else:
        # view of a non-contiguous tensor whose strides cannot be merged
        y = g.method("transpose", x, 0, -1, label="transpose")
        if y is not None:
            g.add(Step(g.new_id(), "method", "view", (y, (-1,)), (), "misuse:view-strides"),
                  must=False)


def m_dims(g: Generator):
    x = g.pick() or g.leaf()
    nd = g.value(x).dim()
    big = nd + int(g.rng.integers(0, 3)) if nd else 1 + int(g.rng.integers(0, 2))
    big = -big - 1 if g.rng.random() < 0.3 else big
    c = int(g.rng.integers(9))
    name, args = [("sum", (big,)), ("transpose", (0, big)), ("softmax", (big,)),
                  ("squeeze", (big,)), ("unsqueeze", (big + 1 if big > 0 else big - 1,)),
                  ("narrow", (0, 0, 5)), ("select", (0, 7)), ("cumsum", (big,)),
                  ("topk", (7,))][c]
    g.add(Step(g.new_id(), "method", name, (x,) + args, (), f"misuse:{name}-dim"), must=False)
    if c == 8:
        return
    if nd and g.rng.random() < 0.2:
        g.add(Step(g.new_id(), "getitem", "[]", (x, 9), (), "misuse:getitem-out-of-range"),
              must=False)


def m_dtypes(g: Generator):
    c = int(g.rng.integers(8))
    if c == 6:
        x = g.add(Step(g.new_id(), "leaf", "tensor", (g.lit((2,), "int64"),), (), "leaf"))
        g.add(Step(g.new_id(), "method", "requires_grad_", (x,), (),
                   "misuse:int-requires-grad_"), must=False)
    elif c == 7:
        x = g.leaf((2,), "float64", True)
        g.add(Step(g.new_id(), "call", "mv", (g.lit((3, 2), "int64"), x), (),
                   "misuse:mv-dtypes"), must=False)
    elif c == 0:
        g.add(Step(g.new_id(), "leaf", "tensor", (TLit([1, 2], "int64", (2,), True),), (),
                   "misuse:int-requires-grad"), must=False)
    elif c == 1:
        a = g.leaf((2, 2), "float32")
        g.add(Step(g.new_id(), "call", "mm", (a, g.lit((2, 2), "float64")), (),
                   "misuse:mm-dtypes"), must=False)
    elif c == 2:
        x = g.leaf((3,))
        g.add(Step(g.new_id(), "getitem", "[]", (x, TLit([0.0, 1.0], "float32", (2,))), (),
                   "misuse:float-index"), must=False)
    elif c == 3:
        x = g.leaf((3,))
        g.add(Step(g.new_id(), "method", "masked_fill", (x, g.lit((3,), "float32"), 0.0), (),
                   "misuse:float-mask"), must=False)
    elif c == 4:
        x = g.leaf((2, 3))
        g.add(Step(g.new_id(), "call", "gather", (x, 1, g.lit((2, 3), "float64")), (),
                   "misuse:float-gather-index"), must=False)
    else:
        x = g.leaf((2, 3))
        g.add(Step(g.new_id(), "call", "nn.functional.cross_entropy",
                   (x, TLit([0, 5], "int64", (2,))), (), "misuse:cross-entropy-class"),
              must=False)


def m_views(g: Generator):
    x = g.pick(lambda t: floating(t) and t.requires_grad and t.dim() >= 1) or g.leaf(
        (2, 3), requires_grad=True)
    base = g.add(Step(g.new_id(), "binop", "*", (x, 1.0), (), "binop:*scalar"))
    if base is None:
        return
    shape = tuple(g.value(base).shape)
    c = int(g.rng.integers(3))
    if c == 0:
        view = g.method("expand", base, (2,) + shape, label="expand")
    elif c == 1:
        view = g.add(Step(g.new_id(), "getitem", "[]", (base, Ellipsis), (),
                          "getitem:basic@no_grad", no_grad=True))
    else:
        res = g.method("unbind", base, label="unbind")
        view = g.getitem(res, 0, "getitem:tuple") if res is not None and len(
            g.value(res)) else None
    if view is None:
        return
    g.add(Step(g.new_id(), "method", str(g.rng.choice(["mul_", "add_", "fill_"])),
               (view, 2.0), (), "misuse:inplace-view"), must=False)
    s = g.method("sum", base, label="reduce:sum")
    if s is not None:
        g.add(Step(g.new_id(), "method", "backward", (s,), (), "misuse:backward"), must=False)


def m_empty(g: Generator):
    """Reductions over an empty dim: torch's result (-inf, empty) or torch's error."""
    shape = [int(d) for d in g.rng.integers(1, 4, size=int(g.rng.integers(1, 3)))]
    d = int(g.rng.integers(len(shape)))
    shape[d] = 0
    x = g.leaf(tuple(shape), requires_grad=bool(g.rng.random() < 0.7))
    name = str(g.rng.choice(["max", "min", "amax", "argmax", "logsumexp", "softmax",
                             "log_softmax", "prod", "mean", "sum", "cumsum", "std"]))
    dim = d if g.rng.random() < 0.5 else d - len(shape)
    kwargs = (("dim", dim),) if name not in ("max", "min", "argmax") or g.rng.random() < 0.7 \
        else ()
    g.add(Step(g.new_id(), "method", name, (x,), kwargs, f"misuse:empty-{name}"), must=False)


MISUSE = [("views", m_views), ("empty", m_empty), ("backward-twice", m_backward_twice),
          ("backward-nonscalar", m_backward_nonscalar),
          ("no-grad", m_no_grad), ("inplace-leaf", m_inplace_leaf), ("version", m_version),
          ("shapes", m_shapes), ("dims", m_dims), ("dtypes", m_dtypes)]


# ---- driver ---------------------------------------------------------------------------------
def generate(seed: int, misuse: bool = False, area: str | None = None,
             exclude=frozenset()) -> Program:
    g = Generator(seed, misuse, area, exclude)
    return g.build(int(g.rng.integers(2, 7)) if not misuse else int(g.rng.integers(0, 3)))


def known_for_ci():
    """(labels dropped from the vocabulary, {label: facet kinds not compared})."""
    exclude = {label for label, (facets, _) in KNOWN.items() if facets == "*"}
    partial = {label: set(facets.split(",")) for label, (facets, _) in KNOWN.items()
               if facets != "*"}
    return exclude, partial


@dataclasses.dataclass
class Finding:
    area: str
    klass: str
    detail: str
    repro: str
    seed: str            # "12", or "m12" for misuse case 12


def investigate(prog: Program, found: list[Disagreement], do_minimize=True) -> list[Finding]:
    """One finding per distinct (phase, kind) of a program, minimised."""
    out = []
    seen = set()
    for dis in found:
        if dis.signature in seen:
            continue
        seen.add(dis.signature)
        small = minimize(prog, dis.signature) if do_minimize else prog
        again = [d for d in compare_phase(small, dis.phase) if d.signature == dis.signature]
        dis = again[0] if again else dis
        labels = sorted(set(small.labels))
        area = area_of(dis, small, labels)
        klass = f"{dis.phase}/{dis.what} {_class_ops(small, dis, labels)}"
        seed = f"m{prog.seed}" if prog.misuse else str(prog.seed)
        out.append(Finding(area, klass, dis.detail, repro(small, dis.phase), seed))
    return out


STEP_FACETS = ("value", "meta", "name", "version", "tangent")


def _class_ops(prog: Program, dis: Disagreement, labels) -> str:
    """The op a per-step disagreement shows at (with '+inplace' when an in-place step came
    before it), else every op of the minimal program."""
    kind, _, rest = dis.key.partition(":")
    if dis.what in RAISES:
        head = re.sub(r"\d+", "N", dis.message.split("\n")[0])[:48]
        where = dis.key
        if dis.key.startswith("step "):
            step_id = int(dis.key.split()[1])
            where = next((s.label for s in prog.steps if s.id == step_id), dis.key)
        return f"{where}: '{head}'"
    if kind == "graph":
        # "graph: node 3: gt X vs torch Y" / "graph: node 2 MulBackward0 edges: ..."
        words = dis.detail.split()
        if "edges:" in words:
            return f"{words[words.index('edges:') - 1]} edges"
        if words[1:2] == ["node"]:
            return f"torch {words[-1]} (gt {words[4]})"
        return "+".join(labels)
    if kind in STEP_FACETS and rest:
        step_id = int(rest.split(".")[0])
        before = [s.label for s in prog.steps if s.id < step_id]
        step = next((s for s in prog.steps if s.id == step_id), None)
        if step is not None:
            extra = "+inplace-before" if any(b.startswith(INPLACE_PREFIXES)
                                              for b in before) else ""
            return step.label + extra
    misuse = [lab for lab in labels if lab.startswith(("misuse", "inplace:version"))]
    if prog.misuse and misuse and dis.what != "crash":
        return "+".join(misuse)
    return "+".join(labels)


def write_findings(path: str, findings: list[Finding], header: str) -> None:
    by_class: dict = collections.OrderedDict()
    for f in findings:
        by_class.setdefault((f.area, f.klass), []).append(f)
    lines = ["# Fuzz findings (gradtool vs torch)", "", header, "",
             "Each entry: [area] phase/kind ops-of-the-minimal-program, count; one detail and "
             "its minimal reproduction (`lib` = torch or gradtool; ` ⏎ ` = newline; <g> is a "
             "random gradient of the output's shape).",
             "Rerun one seed from your worktree: `.venv/bin/python "
             "/work/wt-fuzz/tests/engine/fuzz_torch.py --seed 12 --n 1 -v` (a seed `m12`: "
             "add `--misuse`).", ""]
    for (area, klass), items in sorted(by_class.items(), key=lambda kv: (kv[0][0], -len(kv[1]))):
        first = items[0]
        lines.append(f"- [{area}] `{klass}` x{len(items)} (seeds "
                     f"{', '.join(str(i.seed) for i in items[:5])})")
        lines.append(f"  - {first.detail}")
        lines.append(f"  - `{first.repro}`")
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".fuzz_findings.")
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


@dataclasses.dataclass
class Tally:
    """Programs run, and how many agree in everything / in names and structure (grad_fn
    names, next_functions, _version) / in exception types / in exception messages."""
    programs: int = 0
    agree: int = 0
    structure: int = 0
    types: int = 0
    messages: int = 0

    def line(self, what: str) -> str:
        def pct(n):
            return f"{n}/{self.programs} ({100.0 * n / max(self.programs, 1):.1f}%)"
        return (f"{what}: all agree {pct(self.agree)}; names+structure {pct(self.structure)}; "
                f"exception types {pct(self.types)}; messages {pct(self.messages)}")


STRUCTURE = ("name", "graph", "version")


def fuzz(seeds, misuse=False, area=None, exclude=frozenset(), partial=None, minimize_=True,
         verbose=False, echo=print):
    """Run the programs of ``seeds``; returns (Tally, findings)."""
    partial = partial or {}
    findings: list[Finding] = []
    tally = Tally()
    for seed in seeds:
        prog = generate(seed, misuse, area, exclude)
        skip = set().union(*(partial.get(lab, set()) for lab in prog.labels + ["*"]))
        found = compare(prog, skip_kinds=frozenset(skip))
        kinds = {d.what for d in found}
        tally.programs += 1
        tally.agree += not found
        tally.structure += not kinds & set(STRUCTURE)
        tally.types += not kinds & {"crash", "gt-raises", "torch-raises", "exc-type"}
        tally.messages += not kinds & {"crash", "gt-raises", "torch-raises", "exc-type",
                                       "message", "raise-at"}
        if not found:
            continue
        if verbose:
            for dis in found:
                echo(f"  seed {seed} {dis.phase}/{dis.what}: {dis.detail}")
        for f in investigate(prog, found, minimize_):
            findings.append(f)
            echo(f"[{f.area}] seed {f.seed} {f.klass}: {f.detail} :: {f.repro}")
    return tally, findings


def summary(findings: list[Finding]) -> list[str]:
    counts = collections.Counter((f.area, f.klass) for f in findings)
    return [f"  {count:4d}  [{area}] {klass}"
            for (area, klass), count in sorted(counts.items(), key=lambda kv: (kv[0][0], -kv[1]))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Differential fuzzer: gradtool vs torch on random programs.")
    parser.add_argument("--seed", type=int, default=0, help="first program's seed")
    parser.add_argument("--n", type=int, default=200, help="number of programs")
    parser.add_argument("--misuse", action="store_true", help="misuse programs only")
    parser.add_argument("--misuse-n", type=int, default=0,
                        help="misuse programs to run after the --n programs")
    parser.add_argument("--area", choices=["views", "ops", "names"], help="vocabulary subset")
    parser.add_argument("--ci", action="store_true",
                        help="the CI test's vocabulary (the KNOWN list left out)")
    parser.add_argument("--no-minimize", action="store_true", help="report programs as found")
    parser.add_argument("--findings", help="also write the classes to this markdown file")
    parser.add_argument("-v", "--verbose", action="store_true", help="every disagreement")
    args = parser.parse_args(argv)

    import torch
    torch.set_num_threads(1)
    exclude, partial = known_for_ci() if args.ci else (set(), {})
    runs = [] if args.misuse else [("programs", False, args.n)]
    if args.misuse or args.misuse_n:
        runs.append(("misuse cases", True, args.n if args.misuse else args.misuse_n))
    start = time.perf_counter()
    findings: list[Finding] = []
    totals = []
    for name, misuse, n in runs:
        seeds = range(args.seed, args.seed + n)
        tally, found = fuzz(seeds, misuse, args.area, exclude, partial, not args.no_minimize,
                            args.verbose, lambda line: print(line, flush=True))
        findings.extend(found)
        totals.append(tally.line(name))
    elapsed = time.perf_counter() - start
    lines = summary(findings)
    print("\n" + "\n".join(totals))
    print(f"{len(lines)} classes of disagreement; {elapsed:.1f} s")
    print("\n".join(lines))
    if args.findings:
        write_findings(args.findings, findings,
                       f"Run: `fuzz_torch.py --seed {args.seed} --n {args.n}"
                       f"{' --misuse' if args.misuse else ''}"
                       f"{f' --misuse-n {args.misuse_n}' if args.misuse_n else ''}` "
                       f"(gradtool of {os.getcwd()})\n\n" + "\n\n".join(f"- {t}" for t in totals))
    return 0 if not findings else 1


if __name__ == "__main__":
    sys.exit(main())
