"""``gradtool vjp``: vᵀ·J, what ``y.backward(v)`` accumulates into each input's grad."""

from __future__ import annotations

import click
from rich.text import Text

from ..engine import functional
from ..engine.tensor import _make
from ..errors import UsageError
from . import options
from .derivative import array_json, array_text, emit, finite_difference_check, input_rows
from .problem import from_args, input_value


@click.command("vjp", cls=options.ExprCommand,
               short_help="Vector-Jacobian product vᵀ·J (what backward(v) computes).")
@click.argument("expr")
@options.inputs_option
@click.option("--v", "cotangent", metavar="VALUE",
              help="The vector v, shaped like the output (default: 1 for a scalar output).")
@options.check_flag
@options.format_option("table", "json", default="table")
@options.seed_option
@options.common
@options.limited_command
def command(expr, inputs, cotangent, verify, fmt, seed) -> None:
    """Reverse mode: the vector-Jacobian product vᵀ·J of EXPR, one row per input: what
    y.backward(v) accumulates into x.grad.

    \b
    Examples:
      gradtool vjp "x * 2 ** 11" -i x=[1,2,3] --v [0.1,1.0,0.0001]
      gradtool vjp "(y * y * 3).mean()" -i y=[3,4,5]
    """
    problem = from_args(expr, inputs, seed=seed)
    fn = problem.single_output_fn()
    v = None
    out_like = fn(*[t.detach() for t in problem.inputs])
    if cotangent is not None:
        v = _make(input_value(cotangent, "--v", like=out_like))
    elif out_like.numel() != 1:
        shape = list(out_like.shape)
        raise UsageError(f"the output is not a scalar (shape {shape}): give --v, shaped like "
                         "the output", hint=f"e.g. --v \"{example_vector(shape)}\"")
    output, grads = functional.vjp(fn, problem.inputs, v)
    check = finite_difference_check(problem) if verify else None
    payload = {"kind": "vjp", "expr": expr,
               "inputs": {n: array_json(t) for n, t in problem.all_inputs.items()},
               "v": None if v is None else array_json(v), "output": array_json(output),
               "vjp": {n: array_json(g) for n, g in zip(problem.input_names, grads)}}
    rows = [input_rows(problem), Text(f"output = {array_text(output)}")]
    for name, grad in zip(problem.input_names, grads):
        rows.append(Text(f"vᵀJ w.r.t. {name} = ", style="bold").append(array_text(grad),
                                                                      style=""))
    emit(fmt, payload, rows, check)


def example_vector(shape: list[int]) -> str:
    """A v of the output's shape for the hint: a one-hot nested list (picks the first
    element's gradient) when short, else a generated one."""
    size = 1
    for n in shape:
        size *= n
    if size > 12:
        return f"{{shape: {shape}, init: ones}}"
    flat = ["1" if i == 0 else "0" for i in range(size)]
    for n in reversed(shape[1:]):
        flat = ["[" + ", ".join(flat[i:i + n]) + "]" for i in range(0, len(flat), n)]
    return "[" + ", ".join(flat) + "]"
