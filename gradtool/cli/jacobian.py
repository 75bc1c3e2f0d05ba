"""``gradtool jacobian``: the full Jacobian matrix of an expression."""

from __future__ import annotations

import click
from rich.text import Text

from ..engine import functional
from . import options
from .derivative import (array_json, array_text, check_matrix_size, emit,
                         finite_difference_check, input_rows, matrix, matrix_table)
from .problem import from_args


@click.command("jacobian", cls=options.ExprCommand,
               short_help="The full Jacobian matrix of an expression.")
@click.argument("expr")
@options.inputs_option
@options.check_flag
@options.format_option("table", "json", default="table")
@options.seed_option
@options.common
@options.limited_command
def command(expr, inputs, verify, fmt, seed) -> None:
    """The Jacobian of EXPR w.r.t. each input (gt.autograd.functional.jacobian): block
    [i, j] = d output[i] / d input[j], elements flattened in row-major order.

    \b
    Examples:
      gradtool jacobian "x * x" -i x=[1,2,3]
      gradtool jacobian "w.mm(x)" -i 'w={shape: [2, 3]}' -i 'x={shape: [3, 1]}' --check
    """
    problem = from_args(expr, inputs, seed=seed)
    fn = problem.single_output_fn()
    output = fn(*[t.detach() for t in problem.inputs])
    for name, tensor in zip(problem.input_names, problem.inputs):
        check_matrix_size("Jacobian", f"d output / d {name}", output.numel(), tensor.numel())
    blocks = functional.jacobian(fn, problem.inputs)
    check = finite_difference_check(problem) if verify else None
    payload = {"kind": "jacobian", "expr": expr,
               "inputs": {n: array_json(t) for n, t in problem.all_inputs.items()},
               "output": array_json(output),
               "jacobian": {n: array_json(b) for n, b in zip(problem.input_names, blocks)}}
    rows = [input_rows(problem), Text(f"output = {array_text(output)}")]
    for name, block, tensor in zip(problem.input_names, blocks, problem.inputs):
        mat = matrix(block, output.shape, tensor.shape)
        rows.append(matrix_table(f"d output / d {name}  ({mat.shape[0]} x {mat.shape[1]})",
                                 mat, "output", name))
    emit(fmt, payload, rows, check)
