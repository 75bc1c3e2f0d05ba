"""Grad mode, forward-AD levels, anomaly mode, the element cap and apply interceptors: the
engine's only global switches.

PyTorch keeps these per thread; gradtool keeps one set per process, in one object, so that
the hot path reads a single attribute (``MODE.grad_enabled``).
"""

from __future__ import annotations

import contextlib
import warnings
import functools


class _Mode:
    __slots__ = ("grad_enabled", "fw_level", "fw_next_level", "anomaly", "anomaly_check_nan",
                 "max_elements", "interceptors", "budget", "deadline", "limited")

    def __init__(self) -> None:
        self.grad_enabled = True
        self.fw_level = 0          # id of the innermost live dual level; 0 = none
        self.anomaly = False
        self.anomaly_check_nan = True
        self.fw_next_level = 1     # id the next dual level gets
        self.max_elements = 0      # 0 = no element cap (see gradtool.engine.limits)
        self.budget = None         # live-bytes budget (gradtool.engine.limits.MemoryBudget)
        self.deadline = 0.0        # time.monotonic() deadline when no signal timer; 0 = none
        self.limited = False       # any of the three: the engine checks before allocating
        self.interceptors = []     # hooks taking over primitive.apply (gt.vmap, recorders)


MODE = _Mode()


class _GradModeContext:
    """Base of no_grad / enable_grad / set_grad_enabled: context manager and decorator."""

    _target: bool

    def __enter__(self) -> None:
        self._prev = MODE.grad_enabled
        MODE.grad_enabled = self._target

    def __exit__(self, *exc) -> None:
        MODE.grad_enabled = self._prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__() if not isinstance(self, set_grad_enabled) else \
                    set_grad_enabled(self._target):
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradModeContext):
    """Disable graph recording: ``with gt.no_grad(): w -= lr * w.grad``."""

    _target = False


class enable_grad(_GradModeContext):
    """Enable graph recording inside a ``no_grad`` block."""

    _target = True


class set_grad_enabled(_GradModeContext):
    """``set_grad_enabled(False)`` works as a call, a context manager and a decorator."""

    def __init__(self, mode: bool) -> None:
        self._target = bool(mode)
        self._prev = MODE.grad_enabled
        MODE.grad_enabled = self._target

    def __enter__(self) -> None:
        pass


class inference_mode(no_grad):
    """Alias of ``no_grad`` (gradtool has no separate inference tensors)."""


def is_grad_enabled() -> bool:
    return MODE.grad_enabled


class set_detect_anomaly:
    """Anomaly mode: nodes remember the forward stack; backward names the op producing NaN."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self._prev = (MODE.anomaly, MODE.anomaly_check_nan)
        MODE.anomaly = bool(mode)
        MODE.anomaly_check_nan = bool(check_nan)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        MODE.anomaly, MODE.anomaly_check_nan = self._prev


class detect_anomaly:
    """Context manager enabling anomaly detection, as ``torch.autograd.detect_anomaly``."""

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan
        warnings.warn("Anomaly Detection has been enabled. This mode will increase the "
                      "runtime and should only be enabled for debugging.", UserWarning,
                      stacklevel=2)

    def __enter__(self) -> None:
        self._prev = (MODE.anomaly, MODE.anomaly_check_nan)
        MODE.anomaly, MODE.anomaly_check_nan = True, self.check_nan

    def __exit__(self, *exc) -> None:
        MODE.anomaly, MODE.anomaly_check_nan = self._prev


def is_anomaly_enabled() -> bool:
    return MODE.anomaly


@contextlib.contextmanager
def _restore_grad_mode(enabled: bool):
    prev = MODE.grad_enabled
    MODE.grad_enabled = enabled
    try:
        yield
    finally:
        MODE.grad_enabled = prev
