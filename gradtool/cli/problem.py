"""A function and its inputs, from the command line (EXPR and ``-i NAME=VALUE``) or from a
check of a spec file (``--spec FILE --check NAME``): what graph, jvp, vjp, jacobian and
hessian work on.  Values and expressions go through the spec package, so ``-i`` takes
exactly what a spec's ``inputs:`` takes."""

from __future__ import annotations

import contextlib
import re
import sys
from dataclasses import dataclass, field

import numpy as np

from ..engine.tensor import Tensor
from ..errors import UsageError


@dataclass
class Problem:
    """``fn(*inputs)`` evaluates the expression; ``inputs`` are the tensors it is
    differentiated with respect to, ``all_inputs`` every named input (constants too)."""

    fn: object
    inputs: tuple
    input_names: tuple
    all_inputs: dict = field(default_factory=dict)

    @property
    def names(self) -> dict:
        """id(tensor) -> name, for labelling AccumulateGrad leaves."""
        return {id(t): name for name, t in self.all_inputs.items()} | \
            {id(t): name for name, t in zip(self.input_names, self.inputs)}

    def run(self) -> list:
        """The outputs, as a list of Tensors (the graph is recorded)."""
        out = self.fn(*self.inputs)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        for item in outs:
            if not isinstance(item, Tensor):
                raise _not_a_tensor(item)
        return outs

    def single_output_fn(self):
        """``fn`` checked to return exactly one tensor (jvp, vjp, jacobian, hessian), for
        at least one input to differentiate with respect to."""
        if not self.inputs:
            raise UsageError("no input requires grad: there is nothing to differentiate",
                             hint="give a floating input, e.g. -i x=[1,2,3] (inputs with "
                                  "'requires_grad: false' are constants)")
        def fn(*args):
            out = self.fn(*args)
            if isinstance(out, (tuple, list)):
                if len(out) != 1:
                    raise UsageError(f"the expression gives {len(out)} values; these "
                                     "commands take an expression with one tensor result")
                out = out[0]
            if not isinstance(out, Tensor):
                raise _not_a_tensor(out)
            return out
        return fn


def split_assignment(text: str, option: str = "-i") -> tuple[str, str]:
    """``NAME=VALUE`` with NAME an input name a spec would accept (not a keyword such as
    ``True``, not a reserved name such as ``pi`` or ``grad``)."""
    from ..spec.evaluate import RESERVED
    from ..spec.schema import is_identifier
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise UsageError(f"{option} {text!r}: expected NAME=VALUE, e.g. {option} x=[1,2,3]")
    if name in RESERVED:
        raise UsageError(f"{option} {text!r}: '{name}' is reserved and cannot be an input "
                         "name", hint="choose another name, e.g. x")
    if not is_identifier(name):
        raise UsageError(f"{option} {text!r}: '{name}' is not a valid input name (ASCII "
                         "letters, digits and _, not a Python keyword)",
                         hint="choose another name, e.g. x")
    return name, value


def parse_value(text: str, name: str):
    """An InputSpec from ``-i``/``--v`` text (errors point into it: ``<input x>:1:5``)."""
    from ..spec import parse_input_value
    from . import console
    console.SOURCES[f"<input {name}>"] = text
    return parse_input_value(text, name)


def input_value(text: str, what: str, *, like: Tensor | None = None) -> np.ndarray:
    """A value (YAML flow syntax, as ``-i``) as an array, shaped and typed like ``like``."""
    spec = parse_value(text, what)
    dtype = "float64" if like is None or like._data.dtype.kind not in "fc" \
        else str(like._data.dtype)
    data = spec.make(seed=0, dtype=dtype)._data
    if like is not None:
        target = like._data
        if data.shape != target.shape:
            try:
                data = np.broadcast_to(data, target.shape)
            except ValueError:
                raise UsageError(f"{what}: shape {list(data.shape)} does not match the "
                                 f"shape {list(target.shape)} it stands for") from None
        data = np.array(data, dtype=target.dtype)
    return data


def from_args(expr: str | None, inputs, spec_file: str | None = None,
              check_name: str | None = None, *, seed: int | None = None,
              allow_python: bool = True) -> Problem:
    if spec_file:
        if expr:
            raise UsageError("give either EXPR or --spec FILE --check NAME, not both")
        return from_spec(spec_file, check_name, allow_python=allow_python)
    if check_name:
        raise UsageError("--check NAME needs --spec FILE")
    if not expr:
        raise UsageError("give an expression (EXPR) or --spec FILE --check NAME",
                         hint='e.g. gradtool graph "(x * x).sum()" -i x=[1,2,3]')
    return from_expression(expr, inputs, seed=seed)


def from_spec(path: str, check_name: str | None, *, allow_python: bool = True) -> Problem:
    from .. import spec as spec_package
    # what imported user code prints goes to stderr: stdout holds only the result
    with contextlib.redirect_stdout(sys.stderr):
        spec = spec_package.load(path, allow_python=allow_python, limits=_limits())
    names = [c.name for c in spec.checks]
    if not check_name:
        if len(names) == 1:
            check_name = names[0]
        else:
            raise UsageError(f"{path} has {len(names)} checks: choose one with --check NAME",
                             hint=f"checks: {', '.join(names)}")
    matches = [c for c in spec.checks if c.name == check_name]
    if not matches:
        import difflib
        near = difflib.get_close_matches(check_name, names, n=1)
        raise UsageError(f"{path} has no check named {check_name!r}",
                         hint=f"did you mean {near[0]!r}?" if near else
                         f"checks: {', '.join(names)}")
    if getattr(matches[0], "torch", False):
        raise UsageError(f"check {check_name!r} calls torch Functions or modules: it runs on "
                         "torch tensors, and this command works on gradtool's",
                         hint=f"gradtool check {path} -k {check_name!r} checks it through "
                              "the torch bridge")
    _remember_user_packages(matches[0])
    built = matches[0].build()
    return Problem(built.fn, tuple(built.inputs), tuple(built.input_names),
                   dict(built.all_inputs))


def from_expression(expr: str, inputs, *, seed: int | None = None) -> Problem:
    """EXPR with ``-i`` inputs: generated inputs are seeded (``--seed``, default 0);
    floating inputs require grad unless they say ``requires_grad: false``."""
    from ..spec.evaluate import evaluate_program, parse_program
    from . import console
    console.SOURCES["<expr>"] = expr
    program = parse_program(expr, filename="<expr>")
    tensors: dict = {}
    wrt: list = []
    for text in inputs:
        name, value = split_assignment(text)
        if name in tensors:
            raise UsageError(f"-i {name} given twice")
        spec = parse_value(value, name)
        wants = spec.wants_grad("float64")
        tensors[name] = spec.make(seed=0 if seed is None else seed, requires_grad=wants)
        if wants:
            wrt.append(name)

    _require_inputs(program, tensors)

    def fn(*args):
        env = dict(tensors)
        env.update(zip(wrt, args))
        return evaluate_program(program, env)

    return Problem(fn, tuple(tensors[n] for n in wrt), tuple(wrt), tensors)


_UNKNOWN_NAME = re.compile(r"^unknown name '([^']+)'")


def _require_inputs(program, tensors: dict) -> None:
    """Names the expression reads that no ``-i`` gives: one error naming all of them, at
    the first, with the ``-i`` to add (not one error per occurrence)."""
    from ..spec.evaluate import check_names
    unknown = [e for e in check_names(program, tensors) if _UNKNOWN_NAME.match(e.message)]
    if not unknown:
        return
    names = list(dict.fromkeys(_UNKNOWN_NAME.match(e.message).group(1) for e in unknown))
    quoted = ", ".join(f"'{n}'" for n in names)
    message = unknown[0].message if len(names) == 1 else f"unknown names {quoted}"
    given = " -i ".join(f"{n}=..." for n in names)
    raise UsageError(message, unknown[0].location,
                     hint=f"give {'it' if len(names) == 1 else 'them'} with -i {given}")


def _not_a_tensor(value) -> UsageError:
    """``the expression gives an int (3), not a tensor``, with an article that fits."""
    kind = "None" if value is None else type(value).__name__
    article = "" if value is None else ("an " if kind[0] in "aeiou" else "a ")
    shown = repr(value)
    shown = f" ({shown})" if value is not None and len(shown) <= 40 else ""
    return UsageError(f"the expression gives {article}{kind}{shown}, not a tensor",
                      hint="the result must be a tensor computed from the inputs, "
                           "e.g. \"x * 2\" with -i x=[1,2,3]")


def _limits():
    """The command line's --max-memory/--max-elements/--timeout (None: not given)."""
    import click
    from .options import LIMITS
    ctx = click.get_current_context(silent=True)
    return None if ctx is None else ctx.meta.get(LIMITS)


def _remember_user_packages(check) -> None:
    """Tell the CLI's error boundary which code is the user's (errors raised there are the
    spec's, exit code 2)."""
    import click
    from .app import USER_PACKAGES
    from ..runner import user_packages
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[USER_PACKAGES] = user_packages(check)

