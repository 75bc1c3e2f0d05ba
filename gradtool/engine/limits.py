"""Resource limits for untrusted work (spec checks, expressions on the command line).

Three limits, one spelling everywhere (``limits: {max_memory, max_elements, timeout}`` in a
spec, ``--max-memory``, ``--max-elements``, ``--timeout`` on the command line):

* **max_elements**: no single tensor may have more elements.  Every primitive and every
  factory (``ones``, ``eye``, ``arange``, ...) checks the size before allocating.
* **max_memory**: a budget of *live* tensor bytes.  Every array the engine allocates while a
  budget is active (primitive outputs, factory results, and what the spec runner registers:
  inputs, module parameters) is counted from its allocation until it is freed (a weak
  reference's callback subtracts it).  A primitive or factory whose output would push the
  total over the budget is refused before allocating.  Views share their base's memory and
  are not counted twice.  Not counted: numpy temporaries inside one op, and arrays made
  outside the engine (the checker's Jacobian matrices, whose size the checker's mode bounds).
* **timeout**: seconds of wall-clock time.  On the main thread of a Unix process a SIGALRM
  timer raises :class:`TimeLimitError` between two Python bytecodes (numpy-heavy loops are
  interrupted at the next op); the timer re-fires every second, so code that swallows the
  error once is interrupted again.  Elsewhere the deadline is checked between the ops of
  the engine (at each primitive, when any limit is active).

A ``LimitError`` raised here has no location; the spec evaluator puts it at the expression
node being evaluated.
"""

from __future__ import annotations

import contextlib
import math
import re
import signal
import threading
import time
import weakref
from dataclasses import dataclass

import numpy as np

from ..errors import LimitError
from .grad_mode import MODE

DEFAULT_MAX_ELEMENTS = 10**8
DEFAULT_MAX_MEMORY = 512 * 2**20        # 512 MiB
DEFAULT_TIMEOUT = 30.0                  # seconds per check
NO_CAP = 2**63 - 1                      # max_elements: 0 means no cap, i.e. this one

MEMORY_HINT = "raise the budget with 'limits: {max_memory: 2GiB}' (in the check or under " \
    "defaults:) or --max-memory 2GiB"
ELEMENTS_HINT = "use smaller shapes, or raise the cap with 'limits: {max_elements: ...}' or " \
    "--max-elements"
TIMEOUT_HINT = "raise it with 'limits: {timeout: 5m}' (in the check or under defaults:) or " \
    "--timeout 5m; 0 means no time limit"


class TimeLimitError(LimitError):
    """The time budget of a check (or a command) ran out."""


# ---- human-friendly values ------------------------------------------------------------------
#: units of memory sizes: SI (kB, MB, GB: powers of 1000) and binary (KiB, MiB: of 1024)
BYTE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2,
              "g": 1000**3, "gb": 1000**3, "t": 1000**4, "tb": 1000**4,
              "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
#: units of durations
TIME_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "ms": 0.001, "m": 60.0, "min": 60.0,
              "h": 3600.0}
_AMOUNT = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$")
#: the largest value any limit takes (2**63: what the engine's integers hold)
_MAX_VALUE = 2**63


def _split(value, what: str) -> tuple[float, str]:
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected a number, got {value}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        unit = ""
    elif isinstance(value, str):
        match = _AMOUNT.match(value)
        if match is None:
            raise ValueError(f"{what}: cannot read {value!r} (write e.g. 512MiB, 2GB, "
                             "1000000, 30s)")
        number, unit = float(match.group(1)), match.group(2).lower()
    else:
        raise ValueError(f"{what}: expected a number or a string, got "
                         f"{type(value).__name__}")
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{what}: expected a finite number >= 0, got {value}")
    return number, unit


def parse_bytes(value, what: str = "max_memory") -> int:
    """``512MiB``, ``2GB``, ``1e9``, 1000000 -> bytes; 0 means no limit.  ValueError with a
    message naming ``what`` for anything else."""
    number, unit = _split(value, what)
    if unit not in BYTE_UNITS:
        raise ValueError(f"{what}: unknown unit {unit!r} in {value!r} (use B, kB, MB, GB, TB, "
                         "KiB, MiB, GiB or TiB)")
    total = number * BYTE_UNITS[unit]
    if total >= _MAX_VALUE:
        raise ValueError(f"{what}: {value} is too large")
    return int(total)


def parse_count(value, what: str = "max_elements") -> int:
    """An element count: an integer, ``1e8`` or ``100M`` (k, M, G: powers of 1000)."""
    number, unit = _split(value, what)
    scale = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3}.get(unit)
    if scale is None:
        raise ValueError(f"{what}: unknown unit {unit!r} in {value!r} (a count: 1000000, "
                         "1e6 or 1M)")
    total = number * scale
    if total != int(total):
        raise ValueError(f"{what}: expected a whole number, got {value}")
    if total >= _MAX_VALUE:
        raise ValueError(f"{what}: {value} is too large")
    return int(total)


def parse_seconds(value, what: str = "timeout") -> float:
    """``30s``, ``5m``, ``1h``, ``500ms``, 30 -> seconds; 0 means no limit."""
    number, unit = _split(value, what)
    if unit not in TIME_UNITS:
        raise ValueError(f"{what}: unknown unit {unit!r} in {value!r} (use ms, s, m or h)")
    seconds = number * TIME_UNITS[unit]
    if seconds > 10**9:
        raise ValueError(f"{what}: {value} is too large")
    return seconds


def format_bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} B"


def format_seconds(s: float) -> str:
    return f"{s:g} s"


@dataclass(frozen=True)
class Limits:
    """The three limits; 0 lifts one.  ``None`` fields (in overrides) keep another's."""

    max_memory: int | None = DEFAULT_MAX_MEMORY
    max_elements: int | None = DEFAULT_MAX_ELEMENTS
    timeout: float | None = DEFAULT_TIMEOUT

    def updated(self, other: Limits | None) -> Limits:
        """These limits with the non-None fields of ``other`` put in."""
        if other is None:
            return self
        return Limits(*(mine if theirs is None else theirs for mine, theirs in
                        ((self.max_memory, other.max_memory),
                         (self.max_elements, other.max_elements),
                         (self.timeout, other.timeout))))


# ---- the element cap ------------------------------------------------------------------------
def _refresh() -> None:
    MODE.limited = bool(MODE.max_elements or MODE.budget is not None or MODE.deadline)


@contextlib.contextmanager
def element_limit(max_elements: int):
    """Inside this block every primitive and factory refuses, before allocating, an output
    with more than ``max_elements`` elements (``LimitError``).  0 lifts the cap; nested
    limits keep the smallest."""
    prev = MODE.max_elements
    max_elements = int(max_elements)
    MODE.max_elements = max_elements if not prev else (min(prev, max_elements)
                                                       if max_elements else prev)
    _refresh()
    try:
        yield
    finally:
        MODE.max_elements = prev
        _refresh()


def check_elements(n: int, what: str) -> None:
    """Refuse a new tensor of ``n`` elements over the cap (``what`` names the call)."""
    cap = MODE.max_elements
    if cap and n > cap:
        raise LimitError(f"{what} would create a tensor of {n:,} elements, over the limit "
                         f"of {cap:,}", hint=ELEMENTS_HINT)


def check_new(shape, itemsize: int, what: str) -> None:
    """The checks a factory makes before allocating an array of ``shape``: the element cap,
    the memory budget and the deadline."""
    if not MODE.limited:
        return
    n = 1
    for s in shape:
        n *= max(int(s), 0)
    check_elements(n, what)
    budget = MODE.budget
    if budget is not None:
        budget.charge(n * itemsize, what)
    check_deadline()


def track(array) -> None:
    """Count ``array`` against the active memory budget until it is freed."""
    budget = MODE.budget
    if budget is not None and isinstance(array, np.ndarray):
        budget.track(array)


# ---- the memory budget ----------------------------------------------------------------------
class _Ref(weakref.ref):
    __slots__ = ("key", "nbytes")


class MemoryBudget:
    """Live bytes of the arrays registered with :meth:`track`, against ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = int(limit)
        self.live = 0
        self.peak = 0
        self._refs: dict[int, _Ref] = {}

    def charge(self, nbytes: int, what: str) -> None:
        """Refuse a new allocation of ``nbytes`` that would go over the budget."""
        if self.limit and self.live + nbytes > self.limit:
            raise LimitError(
                f"{what} would allocate {format_bytes(nbytes)}, taking the live tensors to "
                f"{format_bytes(self.live + nbytes)}, over the memory budget of "
                f"{format_bytes(self.limit)}", hint=MEMORY_HINT)

    def track(self, array: np.ndarray) -> None:
        root = array
        while isinstance(root.base, np.ndarray):
            root = root.base
        key = id(root)
        known = self._refs.get(key)
        if known is not None and known() is root:
            return
        nbytes = root.nbytes
        ref = _Ref(root, self._freed)
        ref.key, ref.nbytes = key, nbytes
        self._refs[key] = ref
        self.live += nbytes
        if self.live > self.peak:
            self.peak = self.live

    def _freed(self, ref: _Ref) -> None:
        if self._refs.get(ref.key) is ref:
            del self._refs[ref.key]
            self.live -= ref.nbytes

    def over(self, what: str) -> None:
        """After an allocation whose size could not be known before: refuse to go on when
        the live tensors are over the budget."""
        if self.limit and self.live > self.limit:
            raise LimitError(f"{what}: the live tensors take {format_bytes(self.live)}, over "
                             f"the memory budget of {format_bytes(self.limit)}",
                             hint=MEMORY_HINT)


@contextlib.contextmanager
def memory_budget(max_bytes: int, budget: MemoryBudget | None = None):
    """Count allocations against a budget of ``max_bytes`` live bytes (or against
    ``budget``, to keep counting what an earlier block registered).  An enclosing budget
    stays in force (a check's budget covers the Functions it calls).  0: no budget."""
    if MODE.budget is not None or not (max_bytes or budget is not None):
        yield MODE.budget
        return
    MODE.budget = budget if budget is not None else MemoryBudget(max_bytes)
    _refresh()
    try:
        yield MODE.budget
    finally:
        MODE.budget = None
        _refresh()


# ---- the time budget ------------------------------------------------------------------------
_TIMER = [None]     # the active time limit (one per process: SIGALRM is one per process)


def check_deadline() -> None:
    """Without a signal timer (another thread, no SIGALRM): refuse to go on past the
    deadline.  Called at every primitive while a time limit is active."""
    deadline = MODE.deadline
    if deadline and time.monotonic() > deadline:
        timer = _TIMER[0]
        if timer is not None:
            timer.expired = True
            raise timer.error()
        raise TimeLimitError("the time limit ran out", hint=TIMEOUT_HINT)


class TimeLimit:
    """A time budget of ``seconds``: ``expired`` says whether it ran out (even if the
    error it raised was caught by the code it interrupted)."""

    def __init__(self, seconds: float, what: str, hint: str = TIMEOUT_HINT) -> None:
        self.seconds = float(seconds)
        self.what = what
        self.hint = hint
        self.expired = False
        self._previous = None
        self._signal = False

    def message(self) -> str:
        return f"{self.what} ran longer than the time limit of {format_seconds(self.seconds)}"

    def error(self) -> TimeLimitError:
        return TimeLimitError(self.message(), hint=self.hint)

    def _alarm(self, signum, frame) -> None:
        self.expired = True
        if frame is not None and (frame.f_code in _NO_RAISE or
                                  frame.f_code.co_name == "__del__"):
            # an exception there would be "ignored" with a traceback on stderr, or leave
            # the limits half restored: try again in a moment
            signal.setitimer(signal.ITIMER_REAL, 0.01, 1.0)
            return
        raise self.error()

    def __enter__(self) -> TimeLimit:
        if not self.seconds or _TIMER[0] is not None:
            self._nested = True         # no limit, or an enclosing one is in force
            return self
        self._nested = False
        _TIMER[0] = self
        usable = hasattr(signal, "setitimer") and \
            threading.current_thread() is threading.main_thread()
        if usable:
            try:
                self._previous = signal.signal(signal.SIGALRM, self._alarm)
                # re-fires every second: code that catches the error once is stopped again
                signal.setitimer(signal.ITIMER_REAL, self.seconds, 1.0)
                self._signal = True
            except (ValueError, OSError):
                self._signal = False
        if not self._signal:
            MODE.deadline = time.monotonic() + self.seconds
            _refresh()
        return self

    def __exit__(self, *exc) -> None:
        if self._nested:
            return
        if self._signal:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous or signal.SIG_DFL)
        elif MODE.deadline and time.monotonic() > MODE.deadline:
            self.expired = True
        MODE.deadline = 0.0
        _refresh()
        _TIMER[0] = None


#: code the time limit's signal never raises in (weak reference callbacks, the limits' own
#: bookkeeping): it comes back 10 ms later instead
_NO_RAISE = frozenset((MemoryBudget._freed.__code__, TimeLimit.__exit__.__code__,
                       TimeLimit.__enter__.__code__))


def reset() -> None:
    """Back to no limits at all: after a top-level check, whatever an interrupted block
    left behind."""
    if _TIMER[0] is not None and not _TIMER[0]._nested:
        _TIMER[0].__exit__(None, None, None)
    MODE.budget = None
    MODE.deadline = 0.0
    MODE.max_elements = 0
    _refresh()


def time_limit(seconds: float, what: str = "the check",
               hint: str = TIMEOUT_HINT) -> TimeLimit:
    """``with time_limit(30, "check 'x'") as timer:``: raise :class:`TimeLimitError` in the
    block after ``seconds`` (0: no limit); ``timer.expired`` afterwards."""
    return TimeLimit(seconds, what, hint)


@contextlib.contextmanager
def limits(active: Limits, what: str = "the check", timeout_hint: str = TIMEOUT_HINT):
    """All three limits of ``active`` for the block; yields the TimeLimit (``.expired``)."""
    with time_limit(active.timeout or 0, what, timeout_hint) as timer, \
            element_limit(active.max_elements or 0), \
            memory_budget(active.max_memory or 0):
        yield timer
