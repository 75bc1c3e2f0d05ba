"""One exception hierarchy for gradtool.

Two families:

* ``UserError`` and its subclasses are mistakes in what a user wrote (a spec, an expression,
  a command line).  They carry a :class:`Location` and an optional hint, and the CLI maps them
  to exit code 2 without a traceback.
* Engine errors mirror PyTorch: they subclass ``RuntimeError`` (as torch's do) so code written
  against torch (``except RuntimeError``) keeps working, and use torch's wording.

``GradcheckError`` is raised by ``gradcheck`` when a gradient is wrong (exit code 1 in the CLI).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where in a user's file something is: 1-based line and column."""

    file: str | None = None
    line: int | None = None
    column: int | None = None
    end_column: int | None = None

    def __str__(self) -> str:
        parts = [self.file or "<input>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


class GradtoolError(Exception):
    """Base class of every error gradtool raises on purpose."""

    exit_code = 3


class UserError(GradtoolError):
    """A mistake in user input.  ``str()`` gives ``file:line:col: message``."""

    exit_code = 2

    def __init__(self, message: str, location: Location | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class UsageError(UserError):
    """Bad command-line usage (unknown option values, -k matching nothing, ...)."""


class SpecError(UserError):
    """A spec file that cannot be loaded or run: syntax, types, names, shapes, limits."""


class LimitError(SpecError):
    """A resource limit was hit (element cap, nesting depth, exponent size, alias bombs)."""


class EngineError(GradtoolError, RuntimeError):
    """An error of the autograd engine, worded as PyTorch words it."""

    exit_code = 2


class ShapeError(EngineError, ValueError):
    """Operands whose shapes do not fit together."""


class GradcheckError(GradtoolError, RuntimeError):
    """A gradient check failed; the message is the checker's report."""

    exit_code = 1

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class GradcheckUsageError(UserError, ValueError, AssertionError):
    """gradcheck/gradgradcheck called with arguments that do not go together (torch 2.13
    raises AssertionError with the same words, earlier versions ValueError)."""


class InternalError(GradtoolError):
    """A bug in gradtool itself (exit code 3)."""

    exit_code = 3


class SpecErrors(SpecError):
    """Every error found while loading one spec file (loading reports all it can find, not
    just the first).  ``.errors`` holds the individual ``SpecError``s, each with its location;
    ``str()`` gives them one per line."""

    def __init__(self, errors: list[SpecError]):
        self.errors = list(errors)
        first = self.errors[0] if self.errors else None
        super().__init__(f"{len(self.errors)} errors in spec",
                         first.location if first else None)

    def __str__(self) -> str:
        return "\n".join(f"{e.location}: {e.message}" if e.location else e.message
                         for e in self.errors)
