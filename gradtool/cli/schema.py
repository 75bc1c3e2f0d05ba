"""``gradtool schema``: the JSON Schema of spec files (for editors and CI validation)."""

from __future__ import annotations

import json

import click

from . import options


@click.command("schema", short_help="Print the JSON Schema of spec files.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file.")
@options.common
def command(output) -> None:
    """Print the JSON Schema of gradtool spec files.

    \b
    Examples:
      gradtool schema > gradtool-spec.schema.json
      # VS Code (YAML extension), first line of a spec:
      # yaml-language-server: $schema=./gradtool-spec.schema.json
    """
    from ..spec.schema import json_schema
    text = json.dumps(json_schema(), indent=2) + "\n"
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        click.echo(text, nl=False)
