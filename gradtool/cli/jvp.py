"""``gradtool jvp``: forward-mode J·v with tangents the user gives."""

from __future__ import annotations

import click
from rich.text import Text

from ..engine import functional
from ..engine.tensor import _make
from ..errors import UsageError
from . import options
from .derivative import (array_json, array_text, emit, finite_difference_check, input_rows,
                         parse_tangents)
from .problem import from_args


@click.command("jvp", cls=options.ExprCommand,
               short_help="Forward-mode Jacobian-vector product J·v.")
@click.argument("expr")
@options.inputs_option
@click.option("--v", "tangents", multiple=True, metavar="NAME=VALUE",
              help="Tangent of an input (same syntax as -i); inputs without one get zeros.")
@options.check_flag
@options.format_option("table", "json", default="table")
@options.seed_option
@options.common
@options.limited_command
def command(expr, inputs, tangents, verify, fmt, seed) -> None:
    """Forward mode: the Jacobian-vector product J·v of EXPR at the inputs, for tangents v
    (one forward pass, gt.autograd.functional.jvp).

    \b
    Examples:
      gradtool jvp "x * x" -i x=[1,2,3] --v x=[1,0,0]
      gradtool jvp "(a * b).sum()" -i a=[1,2] -i b=[3,4] --v a=[1,1] --check
    """
    problem = from_args(expr, inputs, seed=seed)
    given = parse_tangents(tangents, problem)
    if not given:
        # as torch.autograd.functional.jvp: v may be left out only for one one-element input
        if len(problem.inputs) == 1 and problem.inputs[0]._data.size == 1:
            given = {problem.input_names[0]: problem.inputs[0]._data * 0 + 1}
        else:
            first, shape = problem.input_names[0], list(problem.inputs[0].shape)
            raise UsageError("give a tangent with --v (J·v with v = 0 is all zeros)",
                             hint=f"--v NAME=VALUE, each shaped like its input (--v {first}="
                                  f"... of shape {shape}); inputs without one get zeros")
    v = tuple(_make(given[name]) if name in given else _make(t._data * 0)
              for name, t in zip(problem.input_names, problem.inputs))
    output, jv = functional.jvp(problem.single_output_fn(), problem.inputs, v)
    check = finite_difference_check(problem, forward_ad=True) if verify else None
    payload = {"kind": "jvp", "expr": expr,
               "inputs": {n: array_json(t) for n, t in problem.all_inputs.items()},
               "v": {n: array_json(t) for n, t in zip(problem.input_names, v)},
               "output": array_json(output), "jvp": array_json(jv)}
    emit(fmt, payload, [input_rows(problem),
                        Text(f"output = {array_text(output)}"),
                        Text("J·v    = ", style="bold").append(array_text(jv), style="")],
         check)
