"""The click group and the one error boundary that maps gradtool errors to exit codes."""

from __future__ import annotations

import sys

import click

from .. import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gradtool")
def cli() -> None:
    """gradtool: check gradients of expressions and custom autograd Functions."""


def main(argv=None) -> None:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="gradtool", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
