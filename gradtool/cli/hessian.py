"""``gradtool hessian``: the matrix of second derivatives of a scalar expression."""

from __future__ import annotations

import click
from rich.text import Text

from ..engine import functional
from ..errors import UsageError
from . import options
from .derivative import (array_json, array_text, check_matrix_size, emit,
                         finite_difference_check, input_rows, matrix, matrix_table)
from .problem import from_args


@click.command("hessian", cls=options.ExprCommand,
               short_help="The Hessian matrix of a scalar expression.")
@click.argument("expr")
@options.inputs_option
@options.check_flag
@options.format_option("table", "json", default="table")
@options.seed_option
@options.common
@options.limited_command
def command(expr, inputs, verify, fmt, seed) -> None:
    """The Hessian of a scalar EXPR (gt.autograd.functional.hessian): block [a, b] =
    d² output / d a d b for every pair of inputs; --check also checks second order.

    \b
    Examples:
      gradtool hessian "(x ** 3).sum()" -i x=[1,2,3]
      gradtool hessian "(a * b * b).sum()" -i a=[1,2] -i b=[3,4] --check
    """
    problem = from_args(expr, inputs, seed=seed)
    fn = problem.single_output_fn()
    output = fn(*[t.detach() for t in problem.inputs])
    if output.numel() != 1:
        raise UsageError(f"hessian needs a scalar expression; this one has shape "
                         f"{list(output.shape)}", hint="reduce it, e.g. (...).sum()")
    for a, ta in zip(problem.input_names, problem.inputs):
        for b, tb in zip(problem.input_names, problem.inputs):
            check_matrix_size("Hessian", f"d² output / d {a} d {b}", ta.numel(), tb.numel())
    result = functional.hessian(fn, problem.inputs)
    names = problem.input_names
    pairs = []
    for a, row in zip(names, result):
        for b, block in zip(names, row):
            pairs.append((a, b, block))
    check = finite_difference_check(problem, gradgrad=True) if verify else None
    payload = {"kind": "hessian", "expr": expr,
               "inputs": {n: array_json(t) for n, t in problem.all_inputs.items()},
               "output": array_json(output),
               "hessian": {f"{a},{b}": array_json(block) for a, b, block in pairs}}
    rows = [input_rows(problem), Text(f"output = {array_text(output)}")]
    shapes = dict(zip(names, (t.shape for t in problem.inputs)))
    for a, b, block in pairs:
        mat = matrix(block, shapes[a], shapes[b])
        rows.append(matrix_table(f"d² output / d {a} d {b}  ({mat.shape[0]} x {mat.shape[1]})",
                                 mat, a, b))
    emit(fmt, payload, rows, check)
