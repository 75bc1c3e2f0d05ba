"""``gradtool check``: run the checks of spec files and report them."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import warnings

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text

from ..check.gradcheck import METHODS, MODES
from ..errors import Location, UsageError
from ..render import report
from . import console, options
from .files import require_regular, write_atomic
from .runner import Overrides, discover, load_all, run_check, select

EXTENSION_FORMATS = {".xml": "junit", ".json": "json", ".txt": "table"}
PROGRESS_AFTER = 4     # a progress bar for runs of more checks than this (on a terminal)


@click.command("check", short_help="Run the gradient checks of spec files.")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("-k", "keyword", metavar="TEXT",
              help="Only checks whose 'file::name' contains TEXT (case-insensitive).")
@click.option("-m", "tags", multiple=True, metavar="TAG",
              help="Only checks with this tag (repeatable: any of them).")
@click.option("-x", "--fail-fast", is_flag=True, help="Stop at the first failure or error.")
@click.option("--eps", type=options.POSITIVE, help="Finite-difference step for every check.")
@click.option("--atol", type=options.NON_NEGATIVE, help="Absolute tolerance for every check.")
@click.option("--rtol", type=options.NON_NEGATIVE, help="Relative tolerance for every check.")
@click.option("--mode", type=click.Choice(MODES),
              help="Checker mode for every check: full Jacobians, fast projections, auto.")
@click.option("--method", type=click.Choice(METHODS),
              help="Finite-difference method for every check.")
@click.option("--seed", type=options.SEED, help="Seed for every check's generated inputs.")
@click.option("-v", "--verbose", is_flag=True,
              help="Show the Jacobian blocks of failures (numbers, or a heatmap when large).")
@click.option("-q", "--quiet", is_flag=True, help="Only problems and the summary line.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "junit", "github"]),
              default=None, help="Report format (default: table).")
@click.option("--output", "output", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write the report to FILE, in the format of its extension (.xml "
                   "junit, .json json) or --format; stdout shows the table (or --format "
                   "when that differs).")
@click.option("--collect-only", is_flag=True, help="List the selected checks, run nothing.")
@click.option("--save-failures", type=click.Path(file_okay=False), metavar="DIR",
              help="Write each failing check's inputs to DIR/<file>__<check>.npz.")
@click.option("--no-python", is_flag=True, help="Refuse specs with 'python:' references.")
@options.common
@options.limits_options
def command(paths, keyword, tags, fail_fast, eps, atol, rtol, mode, method, seed, verbose,
            quiet, fmt, output, collect_only, save_failures, no_python, limits) -> None:
    """Run the gradient checks of spec files (default: the specs/ folder).

    PATHS are spec files or folders (searched for *.yaml and *.yml).  Exit code: 0 all
    passed, 1 a check failed (or an 'expect: fail' check passed), 2 a usage or spec error,
    3 an internal error; the highest wins.

    \b
    Examples:
      gradtool check                                 every spec under specs/
      gradtool check specs/my_relu.yaml -k relu -v
      gradtool check -m fast --format junit --output report.xml
      gradtool check --format github                 annotations for GitHub Actions
      gradtool check --max-memory 2GiB --timeout 5m   raise the limits of every check
    """
    debug = console.debug_enabled()
    file_fmt = None
    if output:
        # the file's format: its extension, else --format; stdout keeps --format when it
        # differs (--format github --output report.xml), else shows the table
        ext = os.path.splitext(output)[1].lower()
        file_fmt = EXTENSION_FORMATS.get(ext) or fmt
        if file_fmt is None:
            raise UsageError(f"--output {output}: cannot tell the format from the extension",
                             hint="add --format junit|json|github|table")
        if fmt == file_fmt:
            fmt = None
        # before anything runs: a FIFO would block the end of the run, a device eat it
        require_regular(os.path.realpath(output), "--output", may_be_missing=True)
    fmt = fmt or "table"
    if save_failures:
        try:        # before anything runs: a run should not end in "cannot save"
            os.makedirs(save_failures, exist_ok=True)
        except OSError as error:
            raise UsageError(f"--save-failures {save_failures}: cannot create the folder: "
                             f"{error.strerror or error}") from None
    files, load_errors = discover(paths)
    # what imported user code prints goes to stderr: stdout holds only the report (JSON...)
    with contextlib.redirect_stdout(sys.stderr):
        checks, errors = load_all(files, allow_python=not no_python, debug=debug,
                                  limits=limits)
    load_errors += errors
    _print_load_errors(load_errors)
    checks = select(checks, keyword, tags)
    if collect_only:
        _collect(checks, load_errors, fmt)
        raise click.exceptions.Exit(report.exit_code([], load_errors))
    if fail_fast and load_errors:
        checks = []        # as pytest -x: errors while collecting stop the run before it starts
    overrides = Overrides(eps, atol, rtol, mode, method, seed)
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        outcomes = _run(checks, overrides, fail_fast=fail_fast, save_failures=save_failures,
                        debug=debug, progress=fmt == "table" and not quiet)
    elapsed = time.perf_counter() - start
    _emit(fmt, outcomes, load_errors, elapsed, verbose=verbose, quiet=quiet)
    if output:
        write_atomic(output, _render(file_fmt, outcomes, load_errors, elapsed))
    raise click.exceptions.Exit(report.exit_code(outcomes, load_errors))


def _print_load_errors(load_errors) -> None:
    """On stderr: ``file:line:col: message``, the line with a ``^`` under the span, hint."""
    err = console.stderr()
    for error in load_errors:
        err.print(Text(f"{error.where}: {error.message}", style="bold"))
        location = Location(error.file, error.line, error.column, error.end_column)
        for line in console.source_excerpt(location):
            err.print(Text(line))
        if error.hint:
            err.print(Text(f"  hint: {error.hint}", style="dim"))


def _run(checks, overrides, *, fail_fast, save_failures, debug, progress) -> list:
    outcomes = []
    err = console.stderr()
    show = progress and err.is_terminal and len(checks) > PROGRESS_AFTER
    bar = Progress(TextColumn("{task.description}", markup=False), BarColumn(),
                   MofNCompleteColumn(),
                   console=err, transient=True, disable=not show)
    with bar:
        task = bar.add_task("checking", total=len(checks))
        for item in checks:
            bar.update(task, description=f"checking {item.name}")
            # warnings (float32 inputs, ...) are shown at the check, once each, not as
            # Python's "gradtool/cli/check.py:129: UserWarning" lines
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                outcome = run_check(item, overrides, save_failures=save_failures,
                                    debug=debug)
            outcomes.append(outcome)
            for message in dict.fromkeys(str(w.message).strip() for w in caught):
                err.print(Text(f"{outcome.where}: warning: {outcome.name}: {message}",
                               style="yellow"))
            bar.advance(task)
            if fail_fast and outcome.problem:
                break
    return outcomes


def _render(fmt, outcomes, load_errors, elapsed) -> str:
    if fmt == "table":
        from io import StringIO
        buffer = StringIO()
        plain = console.plain(buffer)
        report.render_table(plain, outcomes, load_errors, elapsed=elapsed)
        return buffer.getvalue()
    return report.FORMATS[fmt](outcomes, load_errors, elapsed=elapsed)


def _emit(fmt, outcomes, load_errors, elapsed, *, verbose, quiet) -> None:
    if fmt == "table":
        report.render_table(console.stdout(), outcomes, load_errors, elapsed=elapsed,
                            verbose=verbose, quiet=quiet, show_load_errors=False)
    else:
        click.echo(_render(fmt, outcomes, load_errors, elapsed), nl=False)


def _collect(checks, load_errors, fmt) -> None:
    if fmt == "json":
        click.echo(json.dumps({"version": report.REPORT_JSON_VERSION, "checks": [
            {"id": c.id, "file": c.file, "line": c.line, "name": c.name, "tags": list(c.tags),
             "expect": c.expect, "skip": c.skip} for c in checks],
            "errors": [{"file": e.file, "line": e.line, "column": e.column,
                        "message": e.message, "hint": e.hint} for e in load_errors]},
            indent=2))
        return
    out = console.stdout()
    for c in checks:
        line = Text(f"{c.file}:{c.line}: " if c.line else f"{c.file}: ", style="dim")
        line.append(c.name, style="bold")
        if c.tags:
            line.append(f"  [{', '.join(c.tags)}]", style="cyan")
        if c.expect == "fail":
            line.append("  expect: fail", style="yellow")
        if c.skip:      # one line per check, whatever the reason holds
            line.append(f"  skip: {c.skip}".replace("\r", "\\r").replace("\n", "\\n"),
                        style="yellow")
        out.print(line)
    out.print(Text(f"{len(checks)} check{'s' if len(checks) != 1 else ''} collected"))
