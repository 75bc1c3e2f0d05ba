"""Where the CLI writes: rich consoles for humans (plain when not a terminal or when
NO_COLOR is set: rich honours both), and the one function that prints a user error."""

from __future__ import annotations

import os
import sys

import click
from rich.console import Console
from rich.text import Text

from ..errors import Location


def stdout() -> Console:
    """A console on the current stdout (looked up per call: click's test runner swaps it)."""
    return Console(file=click.get_text_stream("stdout"), highlight=False,
                   soft_wrap=True, emoji=False, markup=False,
                   no_color=bool(os.environ.get("NO_COLOR")) or None)


def stderr() -> Console:
    return Console(file=click.get_text_stream("stderr"), highlight=False, soft_wrap=True,
                   emoji=False, markup=False,
                   no_color=bool(os.environ.get("NO_COLOR")) or None)


def location_text(location: Location | None) -> str:
    return "" if location is None else f"{location}: "


def error_lines(error: BaseException) -> list[str]:
    """``file:line:col: message`` (+ ``  hint: ...``) for one error or an error list."""
    nested = getattr(error, "errors", None)
    if nested:
        out = []
        for item in nested:
            out.extend(error_lines(item))
        return out
    location = getattr(error, "location", None)
    message = getattr(error, "message", None) or str(error)
    lines = [f"{location_text(location)}{message}"]
    caret = getattr(error, "caret", None)
    if caret:
        lines.extend(str(caret).splitlines())
    hint = getattr(error, "hint", None)
    if hint:
        lines.append(f"  hint: {hint}")
    return lines


def print_error(error: BaseException, prefix: str = "error") -> None:
    """A user error on stderr, never a traceback."""
    console = stderr()
    for i, line in enumerate(error_lines(error)):
        text = Text()
        if i == 0:
            text.append(f"{prefix}: ", style="bold red")
        text.append(line, style="dim" if line.lstrip().startswith("hint:") else "")
        console.print(text)


def is_terminal(stream=None) -> bool:
    stream = stream or click.get_text_stream("stdout")
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def debug_enabled(ctx: click.Context | None = None) -> bool:
    """``--debug`` anywhere on the command line, or ``GRADTOOL_DEBUG=1``."""
    ctx = ctx or click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().meta.get("gradtool.debug"):
        return True
    return os.environ.get("GRADTOOL_DEBUG", "") not in ("", "0")


def _set_debug(ctx: click.Context, param, value: bool) -> bool:
    if value:
        ctx.find_root().meta["gradtool.debug"] = True
    return value


def debug_option(fn):
    """``--debug``: tracebacks of internal errors (accepted by the group and every command)."""
    return click.option("--debug", is_flag=True, expose_value=False, is_eager=True,
                        callback=_set_debug,
                        help="Show tracebacks of internal errors (also GRADTOOL_DEBUG=1).")(fn)


def flush() -> None:
    sys.stdout.flush()
