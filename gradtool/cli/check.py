"""``gradtool check``: run the checks of spec files and report them."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import warnings

import click
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn)
from rich.text import Text

from ..checker.gradcheck import METHODS, MODES
from ..errors import Location, UsageError
from ..render import report
from .. import parallel, sharding
from . import console, options
from .files import require_regular, write_atomic
from ..runner import Overrides, discover, load_all, run_check, select, select_named

EXTENSION_FORMATS = {".xml": "junit", ".json": "json", ".txt": "table"}
PROGRESS_AFTER = 4     # a progress bar for runs of more checks than this (on a terminal)


@click.command("check", short_help="Run the gradient checks of spec files.")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("-k", "keyword", metavar="EXPR",
              help="Only checks matching EXPR, as pytest's -k: words matched against "
                   "'file::name' and the tags (case-insensitive), with and/or/not and "
                   "parentheses: -k 'relu and not slow'.")
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
@click.option("--nondet-tol", type=options.NON_NEGATIVE, metavar="TOL",
              help="Tolerance for nondeterministic backward passes, for every check (as a "
                   "spec's nondet_tol: two backward passes may differ by this much).")
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
@click.option("--skip-non-specs", is_flag=True,
              help="Skip files named on the command line that are not spec files (YAML "
                   "without checks:, functions: or version:), as in folders; for "
                   "pre-commit, which passes every changed YAML file.")
@click.option("-n", "--workers", type=options.WORKERS, default=None, metavar="N|auto",
              help="Run the checks in N worker processes (auto: one per core); the report "
                   "is the serial run's. Workers get OPENBLAS_NUM_THREADS=1 (and OMP, MKL) "
                   "unless set.")
@click.option("--shard", metavar="K/N",
              help="Run only part K of N of the selected checks (CI matrices; combine the "
                   "parts' JSON reports with 'gradtool report merge').")
@click.option("--durations-file", type=click.Path(dir_okay=False), metavar="PATH",
              help="With --shard: balance the parts by the check times in PATH; the run "
                   "writes its times there (nothing is read or written without it).")
@options.common
@options.limits_options
def command(paths, keyword, tags, fail_fast, eps, atol, rtol, mode, method, seed, nondet_tol,
            verbose, quiet, fmt, output, collect_only, save_failures, no_python,
            skip_non_specs, workers, shard, durations_file, limits) -> None:
    """Run the gradient checks of spec files (default: the specs/ folder).

    PATHS are spec files, check ids (file.yaml::name, as printed) or folders, searched
    for *.yaml and *.yml files holding a mapping with checks:, functions: or version:
    (other YAML is skipped; hidden folders, virtualenvs, node_modules, build, dist and
    __pycache__ are not searched).  Exit code: 0 all passed, 1 a check failed (or an
    'expect: fail' check passed), 2 a usage or spec error, 3 an internal error, 130
    interrupted (Ctrl-C: the checks that finished are reported); the highest wins.

    \b
    Examples:
      gradtool check                                 every spec under specs/
      gradtool check specs/my_relu.yaml -k relu -v
      gradtool check specs/my_relu.yaml::my_relu     one check, by its id
      gradtool check -k "relu and not fail"          pytest's -k expressions
      gradtool check -m fast --format junit --output report.xml
      gradtool check --format github                 annotations for GitHub Actions
      gradtool check --max-memory 2GiB --timeout 5m   raise every check's limits
      gradtool check -n auto                         one worker process per core
      gradtool check --shard 2/4 --format json --output part2.json
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
    part = sharding.parse_shard(shard) if shard is not None else None
    durations = sharding.read_durations(durations_file) if durations_file else None
    if durations_file:
        require_regular(os.path.realpath(durations_file), "--durations-file",
                        may_be_missing=True)
    if save_failures:
        try:        # before anything runs: a run should not end in "cannot save"
            os.makedirs(save_failures, exist_ok=True)
        except OSError as error:
            raise UsageError(f"--save-failures {save_failures}: cannot create the folder: "
                             f"{error.strerror or error}") from None
    overrides = Overrides(eps, atol, rtol, mode, method, seed, nondet_tol)
    settings = parallel.Settings(overrides, not no_python, debug, limits)
    # -n: the workers start now, importing gradtool while this process loads the specs
    pool = parallel.Pool(settings, workers) if (workers or 1) > 1 and not collect_only \
        else contextlib.nullcontext()
    with pool:
        files, load_errors = discover(paths, sniff_named=skip_non_specs)
        # what imported user code prints goes to stderr: stdout holds only the report
        with contextlib.redirect_stdout(sys.stderr):
            checks, errors = load_all(files, allow_python=not no_python, debug=debug,
                                      limits=limits)
        load_errors += errors
        _print_load_errors(load_errors)
        checks = select(select_named(checks, paths), keyword, tags)
        shard_info = None
        if part is not None:
            index, count = part
            positions = sharding.split([c.id for c in checks], count, durations)[index - 1]
            checks = [checks[p] for p in positions]
            shard_info = {"index": index, "count": count, "positions": positions}
        if collect_only:
            _collect(checks, load_errors, fmt)
            raise click.exceptions.Exit(report.exit_code([], load_errors))
        if fail_fast and load_errors:
            checks = []     # as pytest -x: errors while collecting stop the run before it starts
        # off a terminal (CI logs, a pipe) each row is printed as its check finishes
        stream = console.stdout() if fmt == "table" and not quiet and \
            not console.is_terminal(sys.stdout) else None
        start, started = time.perf_counter(), time.time()
        with contextlib.redirect_stdout(sys.stderr):
            outcomes, interrupted = _run(
                checks, overrides, fail_fast=fail_fast, save_failures=save_failures,
                debug=debug, progress=fmt == "table" and not quiet, stream=stream,
                pool=pool if isinstance(pool, parallel.Pool) else None)
        elapsed = time.perf_counter() - start
        not_run = len(checks) - len(outcomes)
        _emit(fmt, outcomes, load_errors, elapsed, verbose=verbose, quiet=quiet,
              rows=stream is None, not_run=not_run, interrupted=interrupted, started=started,
              shard=shard_info)
        if output:
            write_atomic(output, _render(file_fmt, outcomes, load_errors, elapsed, started,
                                         not_run, interrupted, shard=shard_info))
        if durations_file:
            write_atomic(durations_file, sharding.durations_text(durations, outcomes),
                         option="--durations-file")
        if interrupted:
            raise click.exceptions.Exit(console.INTERRUPTED)
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


def _run(checks, overrides, *, fail_fast, save_failures, debug, progress,
         stream=None, pool=None) -> tuple[list, bool]:
    """Run the checks; returns their outcomes and whether Ctrl-C stopped the run (then the
    outcomes are those of the checks that finished).  ``stream``: a console to print each
    check's table row on as it finishes; ``pool``: run them in its worker processes
    (:mod:`gradtool.parallel`), reported in the same order."""
    outcomes = []
    err = console.stderr()
    show = progress and err.is_terminal and len(checks) > PROGRESS_AFTER
    bar = Progress(TextColumn("{task.description}", markup=False), BarColumn(),
                   MofNCompleteColumn(), TextColumn("{task.fields[tally]}", markup=False),
                   TimeElapsedColumn(), console=err, transient=True, disable=not show)
    layout = report.TableLayout.fit([c.id for c in checks], stream.width) \
        if stream is not None and checks else None
    def finished(outcome, caught) -> None:
        outcomes.append(outcome)
        for message in caught:
            err.print(Text(f"{outcome.where}: warning: {outcome.name}: {message}",
                           style="yellow"))
        if layout is not None:
            if len(outcomes) == 1:
                stream.print(layout.header())
            stream.print(layout.row(outcome))
        tally = report.counts(outcomes)
        bar.update(task, advance=1, tally=f"{tally['passed']} passed, "
                   f"{tally['failed'] + tally['xpassed'] + tally['error']} failed")

    try:
        with bar:
            task = bar.add_task("checking", total=len(checks), tally="")
            if pool is not None:
                bar.update(task, description=f"checking ({len(pool.workers)} workers)")
                _, interrupted = parallel.run_parallel(
                    checks, pool, fail_fast=fail_fast, save_failures=save_failures,
                    on_outcome=finished)
                return outcomes, interrupted
            for item in checks:
                bar.update(task, description=f"checking {item.name}")
                # warnings (float32 inputs, ...) are shown at the check, once each, not as
                # Python's "gradtool/cli/check.py:129: UserWarning" lines
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    outcome = run_check(item, overrides, save_failures=save_failures,
                                        debug=debug)
                finished(outcome, dict.fromkeys(str(w.message).strip() for w in caught))
                if fail_fast and outcome.problem:
                    break
    except KeyboardInterrupt:       # report what finished, then exit 130
        return outcomes, True
    return outcomes, False


def _render(fmt, outcomes, load_errors, elapsed, started=None, not_run=0,
            interrupted=False, shard=None) -> str:
    if fmt == "table":
        from io import StringIO
        buffer = StringIO()
        plain = console.plain(buffer)
        report.render_table(plain, outcomes, load_errors, elapsed=elapsed, excerpt=_excerpt,
                            not_run=not_run, interrupted=interrupted)
        return buffer.getvalue()
    if fmt == "json":
        return report.render_json(outcomes, load_errors, elapsed=elapsed, not_run=not_run,
                                  interrupted=interrupted, shard=shard)
    return report.FORMATS[fmt](outcomes, load_errors, elapsed=elapsed, started=started,
                               not_run=not_run, interrupted=interrupted)


def _emit(fmt, outcomes, load_errors, elapsed, *, verbose, quiet, rows=True, not_run=0,
          interrupted=False, started=None, shard=None) -> None:
    if fmt == "table":
        report.render_table(console.stdout(), outcomes, load_errors, elapsed=elapsed,
                            verbose=verbose, quiet=quiet, show_load_errors=False, rows=rows,
                            not_run=not_run, interrupted=interrupted, excerpt=_excerpt)
    else:
        click.echo(_render(fmt, outcomes, load_errors, elapsed, started, not_run,
                           interrupted, shard), nl=False)


def _excerpt(outcome) -> list[str]:
    """The spec line of an error outcome with a ``^`` under its span."""
    return console.source_excerpt(Location(outcome.file, outcome.line, outcome.column,
                                           outcome.end_column))


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
        # the id first: what PATHS accept (gradtool check file.yaml::name), as pytest's
        line = Text(c.id, style="bold")
        if c.tags:
            line.append(f"  [{', '.join(c.tags)}]", style="cyan")
        if c.expect == "fail":
            line.append("  expect: fail", style="yellow")
        if c.skip:      # one line per check, whatever the reason holds
            line.append(f"  skip: {c.skip}".replace("\r", "\\r").replace("\n", "\\n"),
                        style="yellow")
        if c.line:
            line.append(f"  ({c.file}:{c.line})", style="dim")
        out.print(line)
    out.print(Text(f"{len(checks)} check{'s' if len(checks) != 1 else ''} collected"))
