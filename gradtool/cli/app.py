"""The click group and the one error boundary that maps gradtool errors to exit codes.

Exit codes: 0 success, 1 a gradient check failed, 2 usage or spec error, 3 internal error
(a bug in gradtool: one line plus "please report"; the traceback with ``--debug`` or
``GRADTOOL_DEBUG=1``).  Commands raise; only ``GradtoolGroup.invoke`` catches broadly.
"""

from __future__ import annotations

import errno
import io
import sys
import traceback
import warnings

import click
from rich.text import Text

from .._version import __version__
from ..errors import GradtoolError, UsageError
from . import console

#: ``ctx.meta`` key: packages of the spec's ``python:`` code (set by ``--spec`` loading)
USER_PACKAGES = "gradtool.user_packages"

INTERRUPTED = console.INTERRUPTED

#: errors of writing the output that are the machine's, not gradtool's (exit 2, one line)
OUTPUT_ERRNOS = frozenset(getattr(errno, name) for name in
                          ("ENOSPC", "EFBIG", "EIO", "EDQUOT", "EROFS", "ENXIO")
                          if hasattr(errno, name))


class GradtoolGroup(click.Group):
    """A click group whose ``invoke`` is the error boundary of every command."""

    def invoke(self, ctx: click.Context):
        try:
            with warnings.catch_warnings():
                # warnings as one plain line, not Python's "file.py:123: UserWarning" form
                warnings.showwarning = _show_warning
                try:
                    return super().invoke(ctx)
                finally:        # a full disk shows here, not at exit
                    _flush_stdout()
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except GradtoolError as error:
            console.print_error(error)
            ctx.exit(error.exit_code)
        except SystemExit as error:     # sys.exit() in a spec's python: code is no verdict
            from ..runner import USER_CODE_HINT, user_code_frame
            frame = user_code_frame(error, ctx.meta.get(USER_PACKAGES, frozenset()))
            if frame is None:
                raise
            console.print_error(UsageError(f"{frame[2]} ({frame[0]}:{frame[1]}) called "
                                           f"sys.exit({error.code!r})", hint=USER_CODE_HINT))
            ctx.exit(2)
        except BrokenPipeError:     # click.echo to a reader that went away
            console.stop_on_broken_pipe()
        except KeyboardInterrupt:
            console.stderr().print(Text("interrupted", style="bold red"))
            ctx.exit(INTERRUPTED)
        except Exception as error:  # noqa: BLE001  (the boundary: everything else is a bug)
            if isinstance(error, OSError) and error.errno in OUTPUT_ERRNOS:
                # the disk is full, the file too large, the device failing: not a bug
                where = error.filename if error.filename is not None else "standard output"
                console.print_error(UsageError(f"cannot write {where}: "
                                               f"{error.strerror or error}"))
                console.discard_stdout()
                ctx.exit(2)
            from ..runner import USER_CODE_HINT, user_code_frame, user_code_message
            frame = user_code_frame(error, ctx.meta.get(USER_PACKAGES, frozenset()))
            if frame is None:
                internal_error(error, ctx)
                ctx.exit(3)
            # raised in the code of a spec's python: reference: the spec's error, not ours
            if console.debug_enabled(ctx):
                console.stderr().file.write("".join(traceback.format_exception(error)))
            console.print_error(UsageError(user_code_message(error, frame),
                                           hint=USER_CODE_HINT))
            ctx.exit(2)


def _flush_stdout() -> None:
    """Flush stdout so that a write error (disk full, file too large) is raised here.  A
    write cut short by the file size limit leaves the rest buffered without an error: the
    second flush reports it."""
    sys.stdout.flush()
    sys.stdout.flush()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    console.stderr().print(Text(f"warning: {str(message).strip()}", style="yellow"))


def internal_error(error: BaseException, ctx: click.Context | None = None) -> None:
    """One line and "please report"; the traceback only when debugging."""
    err = console.stderr()
    debug = console.debug_enabled(ctx)
    if debug:
        err.file.write("".join(traceback.format_exception(error)))
    line = Text("internal error: ", style="bold red")
    line.append(f"{type(error).__name__}: {error}")
    err.print(line)
    err.print(Text(f"  this is a bug in gradtool {__version__}; please report it, with the "
                   "command line and the spec file" +
                   ("" if debug else " (rerun with --debug to see the traceback)"),
                   style="dim"))


@click.group(cls=GradtoolGroup, context_settings={"help_option_names": ["-h", "--help"],
                                                  "max_content_width": 100})
@click.version_option(__version__, prog_name="gradtool")
@console.debug_option
def cli() -> None:
    """gradtool: check gradients of expressions and custom autograd Functions.

    \b
    Examples:
      gradtool check specs/                  run every check of every spec file
      gradtool graph "(x * x).sum()" -i x=[1,2,3]
      gradtool vjp "x * 2 ** 11" -i x=[1,2,3] --v [0.1,1.0,0.0001]
    """


def _register() -> None:
    from . import check, graph, hessian, jacobian, jvp, ops, report, schema, vjp
    for module in (check, graph, jvp, vjp, jacobian, hessian, schema, ops, report):
        cli.add_command(module.command)


_register()


#: the stdout replaced by :func:`_buffered_stdout` (kept: collecting it would close fd 1)
_REPLACED_STDOUT: list = []


def _buffered_stdout() -> None:
    """Under PYTHONUNBUFFERED=1 stdout writes straight to its file descriptor, and a write
    the file size limit cuts short loses the rest without an error.  A BufferedWriter
    (flushed at every line, as before) writes everything or raises."""
    raw = getattr(sys.stdout, "buffer", None)
    if isinstance(raw, io.FileIO) and not _REPLACED_STDOUT:
        _REPLACED_STDOUT.append(sys.stdout)
        sys.stdout = io.TextIOWrapper(io.BufferedWriter(raw), encoding=sys.stdout.encoding,
                                      errors=sys.stdout.errors, line_buffering=True,
                                      write_through=True)


def main(argv=None) -> None:
    """Console-script entry point."""
    _buffered_stdout()
    cli.main(args=argv, prog_name="gradtool", standalone_mode=True)
