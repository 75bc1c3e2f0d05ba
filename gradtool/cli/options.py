"""Options shared by several commands, as decorators (one definition each)."""

from __future__ import annotations

import click

from . import console


def inputs_option(fn):
    return click.option(
        "-i", "--input", "inputs", multiple=True, metavar="NAME=VALUE",
        help="An input, valued as in a spec's inputs (YAML flow syntax): -i x=[1,2,3], "
             "-i 'w={shape: [3, 4]}', -i c=0.5.  Repeatable.")(fn)


def seed_option(fn):
    return click.option("--seed", type=int, default=None,
                        help="Seed for generated inputs (default: the spec's, else 0).")(fn)


def format_option(*choices: str, default: str):
    def decorate(fn):
        return click.option("--format", "fmt", type=click.Choice(choices), default=default,
                            show_default=True, help="Output format.")(fn)
    return decorate


def check_flag(fn):
    return click.option("--check", "verify", is_flag=True,
                        help="Also compare with finite differences (exit 1 on mismatch).")(fn)


def common(fn):
    """--debug on every command."""
    return console.debug_option(fn)
