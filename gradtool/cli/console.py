"""Where the CLI writes: rich consoles for humans (plain when not a terminal or when
NO_COLOR is set: rich honours both), and the one function that prints a user error."""

from __future__ import annotations

import os
import sys

import click
from rich.console import Console
from rich.segment import Segment
from rich.text import Text

from ..errors import Location
from ..render.excerpt import (EXCERPT_WIDTH, SOURCES, cut_around,  # noqa: F401
                              source_excerpt)
from ..render.report import escape_control


#: width of tables when output goes to a file or a pipe (no terminal to fit)
PIPE_WIDTH = 200


#: exit code when the reader of stdout went away (``gradtool check | head``): 128 + SIGPIPE,
#: as a shell reports a process killed by it; 1 would say that a check failed
BROKEN_PIPE = 141
#: exit code of a run stopped with Ctrl-C (128 + SIGINT, as shells report it)
INTERRUPTED = 130


def discard_stdout() -> None:
    """Send the rest of stdout nowhere: after a closed pipe or a full disk, the flush at
    exit must not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):   # no real file descriptor (a test buffer)
        pass


def stop_on_broken_pipe() -> None:
    """Send the rest of stdout nowhere (no second error at exit) and stop with 141."""
    discard_stdout()
    raise SystemExit(BROKEN_PIPE)


class _Console(Console):
    """rich's Console, but a closed pipe stops with 141, not rich's exit code 1, and the
    control characters of printed text (a check name with ESC in it...) are escaped:
    only rich's own styling reaches the terminal."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        stop_on_broken_pipe()

    def _render_buffer(self, buffer) -> str:
        return super()._render_buffer(
            segment if segment.control else
            Segment(escape_control(segment.text), segment.style, segment.control)
            for segment in buffer)


def stdout() -> Console:
    """A console on the current stdout (looked up per call: click's test runner swaps it)."""
    return _Console(file=sys.stdout, highlight=False,
                   soft_wrap=True, emoji=False, markup=False,
                   width=None if is_terminal(sys.stdout) else PIPE_WIDTH,
                   **_plain_if_no_color())


def plain(file) -> Console:
    """A console writing plain text (no colour, 120 columns) to ``file``: the table report
    in a file, with control characters escaped as on a terminal."""
    return _Console(file=file, no_color=True, width=120, soft_wrap=True, highlight=False,
                    markup=False, emoji=False)


def stderr() -> Console:
    return _Console(file=sys.stderr, highlight=False, soft_wrap=True,
                   emoji=False, markup=False,
                   width=None if is_terminal(sys.stderr) else PIPE_WIDTH,
                   **_plain_if_no_color())


def _plain_if_no_color() -> dict:
    """NO_COLOR set (to anything but ""): no escape codes at all, bold and dim included
    (rich's ``no_color`` alone keeps those)."""
    return {"color_system": None} if os.environ.get("NO_COLOR") else {}


def location_text(location: Location | None) -> str:
    return "" if location is None else f"{location}: "


def error_lines(error: BaseException) -> list[str]:
    """``file:line:col: message``, the source line with a ``^`` under the span, and
    ``  hint: ...``, for one error or each error of a list."""
    nested = getattr(error, "errors", None)
    if nested:
        out = []
        for item in nested:
            out.extend(error_lines(item))
        return out
    location = getattr(error, "location", None)
    message = getattr(error, "message", None) or str(error)
    lines = [f"{location_text(location)}{message}" if location is not None
             else f"error: {message}"]
    lines.extend(source_excerpt(location))
    hint = getattr(error, "hint", None)
    if hint:
        lines.append(f"  hint: {hint}")
    return lines


def print_error(error: BaseException) -> None:
    """A user error on stderr (``file:line:col: message``), never a traceback."""
    console = stderr()
    for line in error_lines(error):
        style = "dim" if line.lstrip().startswith("hint:") else \
            "" if line.startswith(" ") else "bold"
        console.print(Text(line, style=style))


def is_terminal(stream=None) -> bool:
    stream = stream or sys.stdout
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
