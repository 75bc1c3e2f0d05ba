"""Find spec files, load them, select checks, run them: what ``gradtool check`` and the
pytest plugin share.  Every check ends as an :class:`~gradtool.render.report.Outcome`;
every file that cannot be loaded as a :class:`~gradtool.render.report.LoadError`.
Nothing is skipped silently: a check that cannot run is an ``error`` outcome."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from ..engine.grad_mode import MODE
from ..engine.limits import Limits, memory_budget, time_limit
from ..engine.limits import reset as reset_limits
from ..errors import GradcheckError, GradtoolError, UsageError
from ..render.report import LoadError, Outcome, result_metrics

SPEC_SUFFIXES = (".yaml", ".yml")
DEFAULT_PATH = "specs"


@dataclass(frozen=True)
class Overrides:
    """Command-line values that win over a check's own settings (None: keep the spec's)."""

    eps: float | None = None
    atol: float | None = None
    rtol: float | None = None
    mode: str | None = None
    method: str | None = None
    seed: int | None = None

    def applied_to(self, spec):
        """The check spec with the overrides that shape its inputs (the seed draws them, eps
        sets the margin kept from kinks) put in, so that ``--seed`` changes what is built."""
        changes = {key: getattr(self, key) for key in ("seed", "eps")
                   if getattr(self, key) is not None}
        return dataclasses.replace(spec, **changes) if changes else spec

    def apply(self, settings: dict) -> dict:
        for key in ("eps", "atol", "rtol", "mode", "method", "seed"):
            value = getattr(self, key)
            if value is not None:
                settings[key] = value
        return settings


@dataclass
class Selected:
    """A check chosen to run, with the file it came from."""

    file: str          # as displayed (relative to the working directory when below it)
    spec: object       # gradtool.spec CheckSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def id(self) -> str:
        return f"{self.file}::{self.spec.name}"

    @property
    def line(self) -> int | None:
        return getattr(getattr(self.spec, "location", None), "line", None)

    @property
    def column(self) -> int | None:
        return getattr(getattr(self.spec, "location", None), "column", None)

    @property
    def tags(self) -> tuple:
        return tuple(getattr(self.spec, "tags", None) or ())

    @property
    def expect(self) -> str:
        return "fail" if str(getattr(self.spec, "expect", "pass") or "pass") == "fail" \
            else "pass"

    @property
    def skip(self) -> str | None:
        reason = getattr(self.spec, "skip", None)
        if reason in (None, False, ""):
            return None
        return "skipped" if reason is True else str(reason)


def display_path(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:      # another drive (Windows)
        return str(path)
    return str(path) if rel.startswith("..") else rel.replace(os.sep, "/")


def discover(paths) -> tuple[list[Path], list[LoadError]]:
    """Spec files under ``paths`` (folders recurse into *.yaml/*.yml), sorted, no repeats."""
    files: list[Path] = []
    errors: list[LoadError] = []
    for raw in paths or (DEFAULT_PATH,):
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES
                           and p.is_file())
            if not found:
                errors.append(LoadError(display_path(path), "no spec files (*.yaml, *.yml) "
                                        "in this folder"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif path.exists():
            errors.append(LoadError(display_path(path), "not a regular file (a spec file "
                                    "or a folder of them)"))
        else:
            hint = "run from the folder that holds specs/, or give spec files" \
                if raw == DEFAULT_PATH and not paths else None
            errors.append(LoadError(display_path(path), "no such file or folder", hint=hint))
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique, errors


def load_error(file: str, error: BaseException) -> list[LoadError]:
    """A spec package error (or a list of them) as load errors, with locations."""
    nested = getattr(error, "errors", None)
    if nested:
        out = []
        for item in nested:
            out.extend(load_error(file, item))
        return out
    location = getattr(error, "location", None)
    return [LoadError(
        getattr(location, "file", None) or file, getattr(error, "message", None) or str(error),
        getattr(location, "line", None), getattr(location, "column", None),
        getattr(error, "hint", None), getattr(error, "exit_code", 2),
        getattr(location, "end_column", None))]


def internal_load_error(file: str, error: BaseException, debug: bool) -> LoadError:
    message = f"internal error while loading: {type(error).__name__}: {error}"
    if debug:
        message += "\n" + "".join(traceback.format_exception(error))
    return LoadError(file, message, exit_code=3,
                     hint="this is a bug in gradtool; please report it" +
                          ("" if debug else " (rerun with --debug to see the traceback)"))


def load_all(files, *, allow_python: bool = True, debug: bool = False,
             limits: Limits | None = None) -> tuple[list[Selected], list[LoadError]]:
    """Load every file; a file that fails contributes load errors and no checks.
    ``limits``: its non-None fields win over the specs' (the command line's)."""
    from .. import spec as spec_package
    selected: list[Selected] = []
    errors: list[LoadError] = []
    seconds = Limits().updated(limits).timeout or 0
    for path in files:
        shown = display_path(path)
        # loading runs code too (python: imports, module constructors): the same time limit
        timer = time_limit(seconds, f"loading {shown}",
                           hint="raise it with --timeout 5m (0: no time limit)")
        try:
            with timer:
                spec = spec_package.load(shown, allow_python=allow_python, limits=limits)
            if timer.expired:
                raise timer.error()
        except GradtoolError as error:
            errors.extend(load_error(shown, error))
            continue
        except OSError as error:
            errors.append(LoadError(shown, f"cannot read: {error.strerror}"))
            continue
        except Exception as error:  # noqa: BLE001  (a bug: exit 3, the other files still run)
            errors.append(internal_load_error(shown, error, debug))
            continue
        selected.extend(Selected(shown, check) for check in spec.checks)
    return selected, errors


def select(checks: list[Selected], keyword: str | None = None, tags=()) -> list[Selected]:
    """``-k``: substring of ``file::name`` (case-insensitive); ``-m``: any of the tags."""
    out = checks
    if keyword:
        needle = keyword.lower()
        out = [c for c in out if needle in c.id.lower()]
    if tags:
        wanted = set(tags)
        out = [c for c in out if wanted & set(c.tags)]
    if (keyword or tags) and checks and not out:
        what = " and ".join(x for x in (f"-k {keyword!r}" if keyword else "",
                                        f"-m {', '.join(tags)!r}" if tags else "") if x)
        raise UsageError(f"{what} matched none of the {len(checks)} checks",
                         hint="see them with --collect-only")
    return out


def check_settings(spec, overrides: Overrides) -> dict:
    """Keyword arguments of ``gradtool.check`` for one check spec."""
    settings = {}
    for key in ("eps", "atol", "rtol", "method", "mode", "gradgrad", "forward_ad",
                "nondet_tol", "seed"):
        value = getattr(spec, key, None)
        if value is not None:
            settings[key] = value
    return overrides.apply(settings)


def run_check(item: Selected, overrides: Overrides = Overrides(), *,
              save_failures: str | None = None, debug: bool = False) -> Outcome:
    """Build and check one spec check; never raises for a problem of that check."""
    outcome = Outcome(item.file, item.name, item.line, item.column, expect=item.expect,
                      tags=item.tags)
    if item.skip is not None:
        outcome.status, outcome.message = "skipped", item.skip
        return outcome
    start = time.perf_counter()
    nested = MODE.limited       # run inside limits already (a caller's): leave them be
    limits = getattr(item.spec, "limits", None) or Limits()
    timer = time_limit(limits.timeout or 0, f"check '{item.name}'")
    try:
        return _run_limited(item, overrides, outcome, timer, limits, start,
                            save_failures=save_failures, debug=debug)
    finally:
        if not nested:          # nothing an interrupted check left half set stays in force
            reset_limits()


def _run_limited(item: Selected, overrides: Overrides, outcome: Outcome, timer, limits,
                 start: float, *, save_failures: str | None, debug: bool) -> Outcome:
    from ..check import check
    try:
        # the check's time and memory budgets cover building it, the checker and backward
        with timer, memory_budget(limits.max_memory or 0):
            built = overrides.applied_to(item.spec).build()
            result = check(built.fn, tuple(built.inputs),
                           input_names=list(built.input_names),
                           **check_settings(item.spec, overrides))
    except GradcheckError as error:
        outcome.time = time.perf_counter() - start
        result = error.result
        if result is None:
            return _failed_without_result(outcome, error)
    except GradtoolError as error:
        outcome.time = time.perf_counter() - start
        location = getattr(error, "location", None)
        if location is not None and location.line is not None:
            outcome.line, outcome.column = location.line, location.column
        outcome.status = "error"
        outcome.message = getattr(error, "message", None) or str(error)
        outcome.hint = getattr(error, "hint", None)
        outcome.exit_code = max(error.exit_code, 2)
        return outcome
    except SystemExit as error:     # sys.exit() in a python: reference's code: not a verdict
        outcome.time = time.perf_counter() - start
        outcome.status, outcome.exit_code = "error", 2
        frame = user_code_frame(error, user_packages(item.spec))
        where = f"{frame[2]} ({display_path(Path(frame[0]))}:{frame[1]}) " if frame else ""
        outcome.message = f"{where}called sys.exit({error.code!r}) while the check ran"
        outcome.hint = USER_CODE_HINT
        return outcome
    except Exception as error:  # noqa: BLE001  (a bug: reported as exit 3, the run goes on)
        outcome.time = time.perf_counter() - start
        outcome.status, outcome.exit_code = "error", 3
        frame = user_code_frame(error, user_packages(item.spec))
        if frame is not None:        # raised in the Python code of a 'python:' reference
            outcome.exit_code = 2
            outcome.message = user_code_message(error, frame)
            outcome.hint = USER_CODE_HINT + ("" if debug else
                                             " (rerun with --debug to see the traceback)")
            if debug:
                outcome.message += "\n" + "".join(traceback.format_exception(error))
            return outcome
        outcome.message = f"internal error: {type(error).__name__}: {error}"
        outcome.hint = "this is a bug in gradtool; please report it" + (
            "" if debug else " (rerun with --debug to see the traceback)")
        if debug:
            outcome.message += "\n" + "".join(traceback.format_exception(error))
        return outcome
    outcome.time = time.perf_counter() - start
    if timer.expired:       # the time limit's error was caught (and ignored) by user code
        return _errored(outcome, timer.error())
    return finish(outcome, result, save_failures)


def _errored(outcome: Outcome, error: GradtoolError) -> Outcome:
    outcome.status, outcome.exit_code = "error", max(error.exit_code, 2)
    outcome.message = getattr(error, "message", None) or str(error)
    outcome.hint = getattr(error, "hint", None)
    return outcome


#: top-level packages that are never the user's code, even when a spec names them
_NOT_USER_CODE = frozenset(("gradtool", "numpy", "torch", "functorch", "click", "rich",
                            "yaml", "builtins"))
USER_CODE_HINT = "the error is in the Python code a 'python:' reference of the spec imports"


def user_packages(spec) -> frozenset[str]:
    """Top-level packages of the classes a check's ``python:`` references name (its
    Functions and modules): the user's code."""
    classes = list(getattr(spec, "functions", {}).values())
    for mdef in getattr(spec, "modules", {}).values():
        classes.extend(getattr(mdef, "classes", {}).values())
    packages = {str(getattr(cls, "__module__", "") or "").split(".")[0] for cls in classes}
    return frozenset(packages - _NOT_USER_CODE - {""})


def user_code_frame(error: BaseException,
                    packages: frozenset[str]) -> tuple[str, int, str] | None:
    """``(file, line, function)`` of the innermost frame of ``error``'s traceback in one of
    ``packages`` (the user's code, see :func:`user_packages`): a Function's backward that
    raises is the spec's error (exit code 2), not a bug in gradtool.  None otherwise."""
    found = None
    tb = error.__traceback__
    while tb is not None and packages:
        frame = tb.tb_frame
        module = str(frame.f_globals.get("__name__", ""))
        if module.split(".")[0] in packages:
            found = (frame.f_code.co_filename, tb.tb_lineno, frame.f_code.co_qualname)
        tb = tb.tb_next
    return found


def user_code_message(error: BaseException, frame: tuple[str, int, str]) -> str:
    filename, line, function = frame
    return (f"{function} ({display_path(Path(filename))}:{line}) raised "
            f"{type(error).__name__}: {str(error).strip() or '(no message)'}")


def _failed_without_result(outcome: Outcome, error) -> Outcome:
    outcome.status = "xfailed" if outcome.expect == "fail" else "failed"
    outcome.exit_code = 0 if outcome.expect == "fail" else 1
    outcome.message = str(error)
    return outcome


def finish(outcome: Outcome, result, save_failures: str | None = None) -> Outcome:
    """Fill an outcome from a CheckResult, with ``expect: fail`` semantics."""
    outcome.result = result
    outcome.details = result.to_dict()
    outcome.details.update(result_metrics(result))
    if result.passed:
        if outcome.expect == "fail":
            outcome.status, outcome.exit_code = "xpassed", 1
            outcome.message = "marked 'expect: fail' but every gradient matched"
        else:
            outcome.status = "passed"
        return outcome
    outcome.message = result.report()
    if outcome.expect == "fail":
        outcome.status = "xfailed"
        return outcome
    outcome.status, outcome.exit_code = "failed", 1
    if save_failures:
        target = failure_path(save_failures, outcome.file, outcome.name)
        try:
            os.makedirs(save_failures, exist_ok=True)
            result.save_inputs(target)
        except OSError as error:
            outcome.message += f"\ncannot save the inputs to {target}: " \
                               f"{error.strerror or error}"
            outcome.exit_code = 2
        else:
            outcome.message += f"\ninputs saved to {target}"
    return outcome


def _safe(name: str) -> str:
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_"
                   for ch in name)


#: --save-failures files given out in this process: path -> the check id it holds
_SAVED: dict[str, str] = {}


def failure_path(folder: str, file: str, name: str) -> str:
    """``folder/<file stem>__<check name>.npz``, readable and unique: a name that had to be
    changed to be a file name (``a/b`` -> ``a_b``) gets a short hash of the check's id, as
    does a check whose file name another check (of a same-named spec file in another
    folder) already took in this run; no check overwrites another's file."""
    check_id = f"{file}::{name}"
    stem, safe_name = _safe(Path(file).stem), _safe(name)
    base = f"{stem}__{safe_name}"
    digest = hashlib.sha1(check_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    if stem != Path(file).stem or safe_name != name or len(base) > 120:
        base = f"{base[:120]}-{digest}"
    target = os.path.join(folder, base + ".npz")
    key = os.path.abspath(target)
    if _SAVED.setdefault(key, check_id) != check_id:
        target = os.path.join(folder, f"{base[:120]}-{digest}.npz")
        _SAVED[os.path.abspath(target)] = check_id
    return target
