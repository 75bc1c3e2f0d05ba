"""What ``gradtool jvp``, ``vjp``, ``jacobian`` and ``hessian`` share: building the function,
formatting tensors, checking against finite differences, printing table or JSON."""

from __future__ import annotations

import json

import click
import numpy as np
from rich.table import Table
from rich.text import Text

from ..engine.tensor import Tensor
from ..errors import UsageError
from ..render.report import json_safe, result_metrics
from . import console

JSON_VERSION = 1


def array_text(value) -> str:
    arr = value._data if isinstance(value, Tensor) else np.asarray(value)
    if arr.ndim == 0:
        return f"{arr.item():.8g}"
    if arr.dtype.kind == "f":
        return np.array2string(arr, separator=", ", max_line_width=100, threshold=400,
                               formatter={"float_kind": lambda v: f"{v:.6g}"})
    return np.array2string(arr, separator=", ", max_line_width=100, threshold=400)


def array_json(value) -> dict:
    arr = value._data if isinstance(value, Tensor) else np.asarray(value)
    out = arr.tolist()
    if arr.dtype.kind == "c":
        out = {"real": arr.real.tolist(), "imag": arr.imag.tolist()}
    return {"shape": list(arr.shape), "dtype": str(arr.dtype), "value": out}


def check_matrix_size(what: str, label: str, rows: int, cols: int) -> None:
    """A Jacobian or Hessian block over the element cap is a usage error before it is
    computed (it would be a MemoryError, or minutes of work, otherwise)."""
    from ..spec.evaluate import DEFAULT_MAX_ELEMENTS
    if rows * cols > DEFAULT_MAX_ELEMENTS:
        raise UsageError(f"the {what} block {label} would have {rows:,} x {cols:,} = "
                         f"{rows * cols:,} elements, over the limit of "
                         f"{DEFAULT_MAX_ELEMENTS:,}",
                         hint="gradtool vjp and jvp give vᵀJ and J·v without the whole matrix")


def matrix(block, out_shape, in_shape) -> np.ndarray:
    """A Jacobian block (out.shape + in.shape) as a 2-D matrix (outputs x inputs)."""
    arr = block._data if isinstance(block, Tensor) else np.asarray(block)
    rows = int(np.prod(out_shape, dtype=np.int64))
    cols = int(np.prod(in_shape, dtype=np.int64))
    return arr.reshape(rows, cols)


def matrix_table(title: str, mat: np.ndarray, row_label: str, col_label: str) -> Table:
    table = Table(title=title, title_justify="left", box=None, pad_edge=False,
                  header_style="dim", title_style="bold")
    table.add_column(f"{row_label} \\ {col_label}", style="dim")
    cols = min(mat.shape[1], 12)
    for j in range(cols):
        table.add_column(str(j), justify="right")
    if mat.shape[1] > cols:
        table.add_column("…")
    for i in range(min(mat.shape[0], 40)):
        row = [f"{mat[i, j]:.6g}" for j in range(cols)]
        if mat.shape[1] > cols:
            row.append("…")
        table.add_row(str(i), *row)
    if mat.shape[0] > 40:
        table.add_row("…", *["…"] * (cols + (mat.shape[1] > cols)))
    return table


def parse_tangents(pairs, problem) -> dict:
    """``--v NAME=VALUE`` (or a bare ``--v VALUE`` when there is one input) -> arrays."""
    from .problem import input_value
    names = list(problem.input_names)
    out = {}
    for text in pairs:
        name, sep, value = text.partition("=")
        if not sep or name.strip() not in names:
            if len(names) == 1 and not (sep and name.strip().isidentifier()):
                name, value = names[0], text
            else:
                raise UsageError(f"--v {text!r}: expected NAME=VALUE with NAME one of "
                                 f"{', '.join(names)}")
        name = name.strip()
        if name in out:
            raise UsageError(f"--v {name} given twice")
        target = problem.inputs[names.index(name)]
        out[name] = input_value(value, f"--v {name}", like=target)
    return out


def finite_difference_check(problem, *, gradgrad: bool = False, forward_ad: bool = False):
    """The checker's verdict on the function's derivatives (``gradtool.check``)."""
    from ..checker import check
    # auto: every Jacobian entry when there are at most a few million, else projections
    return check(problem.fn, problem.inputs, input_names=problem.input_names,
                 gradgrad=gradgrad, forward_ad=forward_ad, mode="auto")


def check_summary(result) -> dict:
    """What ``--check`` adds to the output: verdict, largest errors, the report if failed."""
    metrics = result_metrics(result)
    return {"passed": bool(result.passed), "max_abs_error": metrics["max_abs_error"],
            "max_rel_error": metrics["max_rel_error"], "evaluations": metrics["evaluations"],
            "report": None if result.passed else result.report()}


def emit(fmt: str, payload: dict, renderables: list, check) -> None:
    """Print as JSON or as rich tables; exit 1 when the finite-difference check failed."""
    if check is not None:
        payload["check"] = check_summary(check)
    if fmt == "json":
        click.echo(json.dumps(json_safe({"version": JSON_VERSION, **payload}), indent=2,
                              allow_nan=False))
    else:
        out = console.stdout()
        for item in renderables:
            out.print(item)
        if check is not None:
            summary = payload["check"]
            if summary["passed"]:
                out.print(Text("✓ matches finite differences", style="green"))
            else:
                out.print(Text("✗ does not match finite differences", style="bold red"))
                for line in (summary["report"] or "").splitlines():
                    out.print(Text("  " + line))
    if check is not None and not check.passed:
        raise click.exceptions.Exit(1)


def input_rows(problem) -> Table:
    table = Table(box=None, pad_edge=False, header_style="dim")
    table.add_column("input")
    table.add_column("shape")
    table.add_column("value")
    for name, tensor in problem.all_inputs.items():
        table.add_row(Text(name), str(list(tensor.shape)), Text(array_text(tensor)))
    return table
