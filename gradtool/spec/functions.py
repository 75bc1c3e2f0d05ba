"""Custom autograd Functions written in a spec: formulas become a ``gt.autograd.Function``
subclass, or ``python: pkg.mod:Name`` names one written in Python.

A formula Function's forward evaluates its ``forward`` program with grad tracking off (as
every custom Function's forward runs) and keeps the names it assigned and ``out`` on ctx.
Its backward evaluates one VJP formula per differentiable arg with engine ops, so with
``create_graph=True`` the backward is itself differentiable; then ``out`` and the forward's
names are recomputed from the saved inputs with tracking on, so second derivatives through
them are right too.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.function import Function
from ..engine.grad_mode import MODE
from ..engine.ops import full_like, zeros_like
from ..engine.tensor import Tensor
from ..errors import Location, SpecError
from ..nn.module import Module
from .evaluate import DEFAULT_MAX_ELEMENTS, Program, run_program
from .schema import did_you_mean, is_identifier


@dataclass
class FunctionDef:
    """A Function as written in the spec (formulas parsed and validated)."""

    name: str
    location: Location
    args: tuple[str, ...] = ()
    forward: Program | None = None
    backward: dict[str, Program] = field(default_factory=dict)
    jvp: Program | None = None
    nondiff: frozenset[str] = frozenset()
    python: str | None = None

    @property
    def signature(self) -> tuple[str, ...] | None:
        """Argument names when known (formula Functions), else None."""
        return None if self.python else self.args

    def calls(self) -> set[str]:
        """Names of functions the formulas call (to refuse recursion)."""
        programs = [self.forward, self.jvp, *self.backward.values()]
        return set().union(*(p.calls for p in programs if p is not None))


def resolve_python(ref: str, location: Location | None, *,
                   search_path: str | None = None, kind: str = "function") -> type:
    """Import ``pkg.module:Name`` and return it if it is a class of the ``kind`` asked for:
    a ``gt.autograd.Function`` or ``torch.autograd.Function`` subclass (``function``), a
    ``gt.nn.Module`` or ``torch.nn.Module`` subclass (``module``).  This runs the module's
    code: only load specs you trust (or pass ``--no-python``).  ``search_path`` is the spec
    file's directory: a module there wins over ``sys.path`` and is private to that file.
    The single place where Python references are resolved; torch is never imported here (a
    torch class was imported by the user's module)."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr or \
            not all(is_identifier(p) for p in module_name.split(".") + attr.split(".")):
        raise SpecError(f"python reference '{ref}' must look like 'package.module:Name'",
                        location)
    try:
        module = _import(module_name, search_path)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "torch":
            raise SpecError(f"'{ref}' needs PyTorch, which is not installed", location,
                            hint="install it (pip install torch) to check torch Functions "
                            "and Modules") from None
        raise SpecError(f"cannot import module '{module_name}': {type(exc).__name__}: {exc}",
                        location) from None
    except Exception as exc:  # noqa: BLE001  (ImportError, or anything the user's module raises)
        raise SpecError(f"cannot import module '{module_name}': {type(exc).__name__}: {exc}",
                        location) from None
    except SystemExit as exc:  # sys.exit() at import would end gradtool with its code
        raise SpecError(f"cannot import module '{module_name}': it called sys.exit"
                        f"({exc.code!r})", location) from None
    obj: Any = module
    for part in attr.split("."):
        namespace = vars(obj) if hasattr(obj, "__dict__") else {}
        if part.startswith("__") or part not in namespace:
            raise SpecError(f"module '{module_name}' has no attribute '{attr}'"
                            + did_you_mean(part, [n for n in namespace
                                                  if not n.startswith("_")]), location)
        obj = namespace[part]
    if kind == "module":
        if not (is_torch_module(obj) or (isinstance(obj, type) and issubclass(obj, Module))):
            raise SpecError(f"'{ref}' is not a gradtool.nn.Module or torch.nn.Module "
                            "subclass", location)
        return obj
    if not (is_torch_function(obj) or (isinstance(obj, type) and issubclass(obj, Function))):
        raise SpecError(f"'{ref}' is not a gradtool.autograd.Function subclass", location,
                        hint="subclass gradtool.autograd.Function (or "
                        "torch.autograd.Function) with static forward and backward methods")
    return obj


def _local_root(module_name: str, search_path: str | None) -> Path | None:
    """The file or package of ``module_name``'s top-level name next to the spec file, if any."""
    if search_path is None:
        return None
    top = Path(search_path) / module_name.split(".")[0]
    for candidate in (top.with_suffix(".py"), top):
        if candidate.is_file() or candidate.is_dir():
            return candidate
    return None


def _import(module_name: str, search_path: str | None):
    """Import ``module_name`` for one spec file.  A module next to the spec file wins, and is
    imported afresh, isolated: same-named modules loaded for other files are set aside while
    it imports, and everything it loaded from the spec's folder is taken out of
    ``sys.modules`` again (and the folder out of ``sys.path``), so nothing leaks from one
    spec file, run or pytest item to the next.  Other modules import as usual."""
    if _local_root(module_name, search_path) is None:
        return importlib.import_module(module_name)
    folder = str(Path(search_path).resolve())
    inside = folder.rstrip(os.sep) + os.sep
    top = module_name.split(".")[0]

    def ours(name: str, module) -> bool:
        if name == top or name.startswith(top + "."):
            return True
        origin = getattr(module, "__file__", None)
        return isinstance(origin, str) and origin.startswith(inside)

    set_aside = {name: m for name, m in sys.modules.items() if ours(name, m)}
    for name in set_aside:
        del sys.modules[name]
    before = set(sys.modules)
    sys.path.insert(0, folder)
    importlib.invalidate_caches()
    try:
        return importlib.import_module(module_name)
    finally:
        sys.path.remove(folder)
        for name in set(sys.modules) - before:
            if ours(name, sys.modules[name]):
                del sys.modules[name]
        sys.modules.update(set_aside)


def _torch():
    """torch if it is already imported (a user's module imported it), else None."""
    return sys.modules.get("torch")


def is_torch_function(obj) -> bool:
    """A ``torch.autograd.Function`` subclass."""
    torch = _torch()
    return torch is not None and isinstance(obj, type) and \
        issubclass(obj, torch.autograd.Function)


def is_torch_module(obj) -> bool:
    """A ``torch.nn.Module`` subclass or instance."""
    torch = _torch()
    if torch is None:
        return False
    cls = obj if isinstance(obj, type) else type(obj)
    return issubclass(cls, torch.nn.Module)


class _Slot:
    """Stands for a tensor argument kept with ctx.save_for_backward."""


_TENSOR = _Slot()


def build_function(fdef: FunctionDef, registry: dict[str, type],
                   max_elements: int = DEFAULT_MAX_ELEMENTS) -> type:
    """A ``gt.autograd.Function`` subclass named ``fdef.name`` (its nodes print as
    ``<name>Backward``).  ``registry`` is the spec's name -> Function table, read at call
    time so Functions can call each other."""
    arg_names = fdef.args
    forward_program = [fdef.forward]    # the one in use: see term_dropped below

    def evaluate(program: Program, env: dict):
        return run_program(program, env, registry, max_elements=max_elements)

    @contextmanager
    def term_dropped(index: int):
        """While active, the forward computes its output without term ``index`` (the
        checker's diagnosis differentiates what is left, to get that term's part)."""
        forward_program[0] = without_term(fdef.forward, index)
        try:
            yield
        finally:
            forward_program[0] = fdef.forward

    def run_forward(args: tuple) -> tuple[Any, dict]:
        out, names = evaluate(forward_program[0], dict(zip(arg_names, args)))
        if isinstance(out, (tuple, list)):
            raise SpecError(f"function '{fdef.name}': forward returned {len(out)} values; "
                            "Functions with several outputs are not supported",
                            fdef.forward.result_location())
        if not isinstance(out, Tensor):
            raise SpecError(f"function '{fdef.name}': forward returned "
                            f"{type(out).__name__}, expected a tensor",
                            fdef.forward.result_location())
        return out, names

    def forward(ctx, *args):
        if len(args) != len(arg_names):
            raise SpecError(f"{fdef.name}() takes {len(arg_names)} arguments, got "
                            f"{len(args)}", fdef.location)
        out, names = run_forward(args)
        ctx.save_for_backward(*(a for a in args if isinstance(a, Tensor)))
        ctx.spec_args = tuple(_TENSOR if isinstance(a, Tensor) else a for a in args)
        ctx.spec_inputs = args
        ctx.spec_out = out
        ctx.spec_names = names
        return out

    def saved_args(ctx) -> tuple:
        saved = iter(ctx.saved_tensors)
        return tuple(next(saved) if a is _TENSOR else a for a in ctx.spec_args)

    def backward(ctx, grad):
        args = saved_args(ctx)
        if MODE.grad_enabled:        # create_graph: out and names must carry the graph
            out, names = run_forward(args)
        else:
            out, names = ctx.spec_out, ctx.spec_names
        env = {**names, **dict(zip(arg_names, args)), "out": out, "grad": grad}
        needs = ctx.needs_input_grad
        grads = []
        for i, (name, arg) in enumerate(zip(arg_names, args)):
            if name in fdef.nondiff or not isinstance(arg, Tensor) or \
                    (i < len(needs) and not needs[i]):
                grads.append(None)
                continue
            program = fdef.backward[name]
            value = evaluate(program, env)[0]
            grads.append(_fit_gradient(fdef, name, program, value, arg))
        return tuple(grads)

    def jvp(ctx, *tangents):
        args = ctx.spec_inputs
        env = {**ctx.spec_names, **dict(zip(arg_names, args)), "out": ctx.spec_out}
        for name, arg, tangent in zip(arg_names, args, tangents):
            if name in fdef.nondiff:
                continue
            if tangent is None:
                tangent = zeros_like(arg) if isinstance(arg, Tensor) else 0.0
            env[f"{name}_dot"] = tangent
        value = evaluate(fdef.jvp, env)[0]
        return _fit_tangent(fdef, value, ctx.spec_out)

    namespace = {"forward": staticmethod(forward), "backward": staticmethod(backward),
                 "spec_args": arg_names, "spec_definition": fdef,
                 # the checker's diagnosis splits the forward into its additive terms
                 # through these (the checker does not import the spec layer)
                 "spec_forward_terms": staticmethod(
                     lambda: [] if fdef.forward is None else forward_terms(fdef)),
                 "spec_term_dropped": staticmethod(term_dropped),
                 "__doc__": f"Function '{fdef.name}' defined in a gradtool spec."}
    if fdef.jvp is not None:
        namespace["jvp"] = staticmethod(jvp)
    return type(fdef.name, (Function,), namespace)


def _fit_gradient(fdef: FunctionDef, name: str, program: Program, value, arg: Tensor):
    """Check one backward formula's result against its argument's shape (numbers are
    broadcast; a gradient the argument broadcasts to is summed down by the engine)."""
    where = program.result_location()
    if isinstance(value, (int, float, complex, np.number)) and not isinstance(value, bool):
        return full_like(arg, value)
    if not isinstance(value, Tensor):
        raise SpecError(f"backward formula for '{name}' of function '{fdef.name}' returned "
                        f"{type(value).__name__}, expected a tensor", where)
    shape, gshape = tuple(arg.shape), tuple(value.shape)
    if gshape != shape:
        try:
            fits = np.broadcast_shapes(shape, gshape) == gshape
        except ValueError:
            fits = False
        if not fits:
            raise SpecError(f"backward formula for '{name}' of function '{fdef.name}' "
                            f"returned shape {list(gshape)}, expected {list(shape)} (the "
                            f"shape of '{name}')", where)
    return value


def _fit_tangent(fdef: FunctionDef, value, out):
    where = fdef.jvp.result_location()
    if isinstance(value, (int, float, complex, np.number)) and not isinstance(value, bool):
        return full_like(out, value)
    if not isinstance(value, Tensor):
        raise SpecError(f"jvp formula of function '{fdef.name}' returned "
                        f"{type(value).__name__}, expected a tensor", where)
    if isinstance(out, Tensor) and tuple(value.shape) != tuple(out.shape):
        try:
            fits = np.broadcast_shapes(tuple(out.shape), tuple(value.shape)) == \
                tuple(out.shape)
        except ValueError:
            fits = False
        if not fits:
            raise SpecError(f"jvp formula of function '{fdef.name}' returned shape "
                            f"{list(value.shape)}, expected {list(out.shape)} (the shape of "
                            "the output)", where)
    return value



# ---- the forward's additive terms (for the checker's diagnosis) ------------------------------
def _split_terms(expr: ast.expr) -> list[tuple[int, ast.expr]]:
    """(sign, term) of a sum ``a + b - c`` (an explicit stack: no recursion)."""
    terms = []
    stack = [(1, expr)]
    while stack:
        sign, node = stack.pop()
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            stack.append((sign if isinstance(node.op, ast.Add) else -sign, node.right))
            stack.append((sign, node.left))
        else:
            terms.append((sign, node))
    return terms


def forward_terms(fdef: FunctionDef) -> list[str]:
    """The additive terms of a formula Function's forward output expression, as written
    (``-`` in front of a subtracted one)."""
    program = fdef.forward
    texts = []
    for sign, node in _split_terms(program.result):
        start, end = program.span(node)
        text = program.source[start:end]
        texts.append(text if sign > 0 else f"-{text}")
    return texts


def without_term(program: Program, index: int) -> Program:
    """``program`` (a forward) with term ``index`` of its output's sum left out."""
    kept = [t for i, t in enumerate(_split_terms(program.result)) if i != index]
    result = None
    for sign, node in kept:
        if result is None:
            result = node if sign > 0 else ast.copy_location(
                ast.UnaryOp(op=ast.USub(), operand=node), node)
        else:
            result = ast.copy_location(ast.BinOp(left=result, op=ast.Add() if sign > 0
                                                 else ast.Sub(), right=node), node)
    if result is None:
        result = ast.copy_location(ast.Constant(0.0), program.result)
    return dataclasses.replace(program, result=result)
