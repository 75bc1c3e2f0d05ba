"""Options shared by several commands, as decorators (one definition each)."""

from __future__ import annotations

import functools
import math

import click

from ..engine import limits as engine_limits
from . import console


class FiniteFloat(click.ParamType):
    """A finite number above a bound (``> low`` or ``>= low``): what the spec's settings
    accept, so ``--eps -1``, ``--eps nan`` or ``--atol inf`` is a usage error, as it would
    be in a spec file."""

    name = "number"

    def __init__(self, low: float = 0.0, *, strict: bool) -> None:
        self.low, self.strict = low, strict

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            number = value
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"expected a finite number, got {value}", param, ctx)
        if number < self.low or (self.strict and number == self.low):
            self.fail(f"expected a number {'>' if self.strict else '>='} {self.low:g}, "
                      f"got {value}", param, ctx)
        return number


#: --eps (> 0) and --atol/--rtol (>= 0)
POSITIVE = FiniteFloat(strict=True)
NON_NEGATIVE = FiniteFloat(strict=False)
#: --seed: an integer >= 0, as a spec's ``seed:``
SEED = click.IntRange(min=0)


class ExprCommand(click.Command):
    """A command whose EXPR may start with '-' (``gradtool graph "-x * 2" -i x=[1]``):
    a word click would take for an unknown short option is the expression instead, as if
    written after ``--``.  Unknown long options (``--fromat``) stay errors."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, list(args))
        except click.NoSuchOption as error:
            word = next((a for a in args if a.startswith(error.option_name)), None)
            if word is None or word.startswith("--") or "--" in args:
                raise
            rest = list(args)
            rest.remove(word)
            return super().parse_args(ctx, rest + ["--", word])


def inputs_option(fn):
    return click.option(
        "-i", "--input", "inputs", multiple=True, metavar="NAME=VALUE",
        help="An input, valued as in a spec's inputs (YAML flow syntax): -i x=[1,2,3], "
             "-i 'w={shape: [3, 4]}', -i c=0.5.  Repeatable.")(fn)


def seed_option(fn):
    return click.option("--seed", type=SEED, default=None,
                        help="Seed for the inputs -i generates, e.g. -i 'x={shape: [3]}' "
                             "(default 0).")(fn)


def graph_seed_option(fn):
    return click.option("--seed", type=SEED, default=None,
                        help="Seed for the inputs -i generates (default 0); a --spec check "
                             "draws its inputs with its own seed.")(fn)


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


class LimitValue(click.ParamType):
    """A resource limit in the spelling a spec's ``limits:`` takes (``512MiB``, ``1e8``,
    ``30s``); a bad value is a usage error naming the option."""

    def __init__(self, name: str, parse) -> None:
        self.name = name
        self.parse = parse

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return self.parse(value, "value")
        except ValueError as error:
            self.fail(str(error).removeprefix("value: "), param, ctx)


MEMORY = LimitValue("size", engine_limits.parse_bytes)
COUNT = LimitValue("count", engine_limits.parse_count)
SECONDS = LimitValue("duration", engine_limits.parse_seconds)


def limits_options(fn):
    """--max-memory, --max-elements, --timeout: ``limits`` (a gradtool Limits whose
    None fields keep the specs' own values) is passed to the command."""
    @functools.wraps(fn)
    def wrapper(*args, max_memory, max_elements, timeout, **kwargs):
        return fn(*args, limits=engine_limits.Limits(max_memory, max_elements, timeout),
                  **kwargs)
    options = [
        click.option("--timeout", type=SECONDS, default=None, metavar="DURATION",
                     help="Time budget of each check (or of the command): 30s, 5m, 1h; 0 "
                          f"for none (default {engine_limits.DEFAULT_TIMEOUT:g}s, or the "
                          "spec's limits:)."),
        click.option("--max-elements", type=COUNT, default=None, metavar="COUNT",
                     help="Most elements of one tensor: 1e8, 100M; 0 for no cap (default "
                          f"{engine_limits.DEFAULT_MAX_ELEMENTS:.0e}, or the spec's)."),
        click.option("--max-memory", type=MEMORY, default=None, metavar="SIZE",
                     help="Budget of live tensor bytes of each check: 512MiB, 2GB; 0 for "
                          "none (default 512MiB, or the spec's)."),
    ]
    for option in options:
        wrapper = option(wrapper)
    return wrapper


def limited_command(fn):
    """--max-memory, --max-elements, --timeout for a command working on one expression:
    the limits (defaults, or the options) hold for the whole command."""
    @functools.wraps(fn)
    def run(*args, limits, **kwargs):
        active = engine_limits.Limits().updated(limits)
        ctx = click.get_current_context()
        ctx.meta[LIMITS] = limits
        with engine_limits.limits(active, f"'{ctx.command_path}'",
                                  "raise it with --timeout 5m (0: no time limit)") as timer:
            result = fn(*args, **kwargs)
        if timer.expired:       # the error was caught by the code it interrupted
            raise timer.error()
        return result
    return limits_options(run)


#: ``ctx.meta`` key: the command line's limits (None fields: the spec's)
LIMITS = "gradtool.limits"
