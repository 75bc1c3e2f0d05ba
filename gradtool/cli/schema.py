"""``gradtool schema``: the JSON Schema of spec files (for editors and CI validation), or
with ``--report`` the JSON Schema of ``gradtool check --format json`` reports."""

from __future__ import annotations

import json

import click

from . import console, options


@click.command("schema", short_help="Print the JSON Schema of spec files (or of reports).")
@click.option("--report", "of_report", is_flag=True,
              help="The schema of 'gradtool check --format json' reports instead.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file.")
@options.common
def command(of_report, output) -> None:
    """Print the JSON Schema of gradtool spec files (or, with --report, of the JSON
    reports of 'gradtool check --format json', a stable format).

    \b
    Examples:
      gradtool schema > gradtool-spec.schema.json
      gradtool schema -o gradtool-spec.schema.json
      gradtool schema --report -o gradtool-report.schema.json
      # VS Code (YAML extension), first line of a spec:
      # yaml-language-server: $schema=./gradtool-spec.schema.json
    """
    if of_report:
        from ..render.report_schema import REPORT_SCHEMA as document
    else:
        from ..spec.schema import json_schema
        document = json_schema()
    text = json.dumps(document, indent=2) + "\n"
    if output:
        from ..errors import UsageError
        try:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as error:
            raise UsageError(f"cannot write {output}: {error.strerror or error}") from None
        what = "JSON report" if of_report else "spec file"
        console.stderr().print(f"wrote {output} (the JSON Schema of gradtool {what}s)")
    else:
        click.echo(text, nl=False)
