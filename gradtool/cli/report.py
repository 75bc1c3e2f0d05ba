"""``gradtool report``: work with the JSON reports of ``gradtool check``."""

from __future__ import annotations

import json
import os

import click

from .. import sharding
from ..render import report as render
from ..render.merge import merge as merge_reports
from . import console, options
from .check import _excerpt
from .files import require_regular, write_atomic


@click.group("report", short_help="Combine the JSON reports of gradtool check runs.")
def command() -> None:
    """Work with the JSON reports of 'gradtool check --format json'."""


@command.command("merge", short_help="Merge shard reports into the report of one run.")
@click.argument("reports", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "junit", "github"]),
              default="table", help="Report format (default: table).")
@click.option("--output", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the report to FILE instead of stdout.")
@click.option("--durations-file", type=click.Path(dir_okay=False), metavar="PATH",
              help="Also update PATH with the check times of the merged run (the file "
                   "'gradtool check --shard K/N --durations-file PATH' balances by).")
@options.common
def merge(reports, fmt, output, durations_file) -> None:
    """Merge the JSON reports of 'gradtool check --shard K/N' runs into the report a
    single run would have written (its checks in the same order), with the same exit
    code.  Every part of the split must be given, once; a check may be in one report only.

    \b
    Examples:
      gradtool check --shard 1/2 --format json --output part1.json
      gradtool check --shard 2/2 --format json --output part2.json
      gradtool report merge part1.json part2.json --format junit --output report.xml
      gradtool report merge part*.json --durations-file .gradtool-durations.json
    """
    for path in reports:
        require_regular(path, "report")
    if output:
        require_regular(os.path.realpath(output), "--output", may_be_missing=True)
    run = merge_reports(list(reports))
    durations = sharding.read_durations(durations_file) if durations_file else None
    if fmt == "table":
        if output:
            from io import StringIO
            buffer = StringIO()
            render.render_table(console.plain(buffer), run.outcomes, run.load_errors,
                                elapsed=run.elapsed, not_run=run.not_run,
                                interrupted=run.interrupted, excerpt=_excerpt)
            text = buffer.getvalue()
        else:
            render.render_table(console.stdout(), run.outcomes, run.load_errors,
                                elapsed=run.elapsed, not_run=run.not_run,
                                interrupted=run.interrupted, excerpt=_excerpt)
            text = None
    elif fmt == "json":
        document = render.report_dict(run.outcomes, run.load_errors, elapsed=run.elapsed,
                                      not_run=run.not_run, interrupted=run.interrupted)
        document["gradtool_version"] = run.gradtool_version
        document["summary"]["exit_code"] = run.exit_code
        text = json.dumps(document, indent=2) + "\n"
    else:
        text = render.FORMATS[fmt](run.outcomes, run.load_errors, elapsed=run.elapsed,
                                   not_run=run.not_run, interrupted=run.interrupted)
    if text is not None:
        if output:
            write_atomic(output, text)
        else:
            click.echo(text, nl=False)
    if durations_file:
        write_atomic(durations_file, sharding.durations_text(durations, run.outcomes),
                     option="--durations-file")
    raise click.exceptions.Exit(run.exit_code)

