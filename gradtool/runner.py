"""Find spec files, load them, select checks, run them: what ``gradtool check`` and the
pytest plugin share.  Every check ends as an :class:`~gradtool.render.report.Outcome`;
every file that cannot be loaded as a :class:`~gradtool.render.report.LoadError`.
Nothing is skipped silently: a check that cannot run is an ``error`` outcome."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from .engine.grad_mode import MODE
from .engine.limits import Limits, memory_budget, time_limit
from .engine.limits import reset as reset_limits
from .errors import GradcheckError, GradtoolError, UsageError
from .spec.schema import did_you_mean
from .render.report import LoadError, Outcome, result_metrics

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
    nondet_tol: float | None = None

    def applied_to(self, spec):
        """The check spec with the overrides that shape its inputs (the seed draws them, eps
        sets the margin kept from kinks) put in, so that ``--seed`` changes what is built."""
        changes = {key: getattr(self, key) for key in ("seed", "eps")
                   if getattr(self, key) is not None}
        return dataclasses.replace(spec, **changes) if changes else spec

    def apply(self, settings: dict) -> dict:
        for key in ("eps", "atol", "rtol", "mode", "method", "seed", "nondet_tol"):
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


#: folders never searched for spec files (pytest's ``norecursedirs`` and then some):
#: hidden folders (``.venv``, ``.git``, ``.tox``...) are skipped by their leading dot
SKIPPED_DIRS = frozenset(("node_modules", "build", "dist", "__pycache__", "venv", "env",
                          "site-packages", "_darcs", "CVS", "{arch}"))
#: top-level keys that make a YAML mapping found in a folder a spec file
SPEC_KEYS = frozenset(("checks", "functions", "version"))


def _skipped_dir(path: Path) -> bool:
    """True for folders pytest would not recurse into: hidden ones, ``*.egg``, the names
    of SKIPPED_DIRS, and virtualenvs (a ``pyvenv.cfg`` or a ``conda-meta`` folder)."""
    name = path.name
    return (name.startswith(".") or name.endswith(".egg") or name in SKIPPED_DIRS
            or (path / "pyvenv.cfg").is_file() or (path / "conda-meta").is_dir())


def looks_like_spec(path: Path) -> bool:
    """True if the YAML file is a mapping with a ``checks:``, ``functions:`` or
    ``version:`` key, or cannot be read or parsed, or is over the size limit (then loading
    it reports the error): other YAML in a spec folder (a workflow, mkdocs.yml) is not a
    spec.  Reads YAML events only as far as the first top-level key that decides."""
    import yaml

    from .spec.yaml_source import MAX_FILE_BYTES
    try:
        if os.path.getsize(path) > MAX_FILE_BYTES:
            return True         # loading it says it is too large: never skipped unread
        with open(path, encoding="utf-8") as handle:
            depth, expect_key = 0, False
            for event in yaml.parse(handle, Loader=yaml.SafeLoader):
                if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                    if depth == 0 and not isinstance(event, yaml.MappingStartEvent):
                        return False        # a list document
                    depth += 1
                    expect_key = expect_key or depth == 1
                elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                    depth -= 1
                    if depth == 0:
                        return False        # the top mapping ended without a spec key
                    if depth == 1:          # a nested value (or complex key) ended
                        expect_key = not expect_key
                elif isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)):
                    if depth == 0:
                        return False        # a scalar document
                    if depth == 1:
                        if expect_key and getattr(event, "value", None) in SPEC_KEYS:
                            return True
                        expect_key = not expect_key
            return False
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return True


def _walk(root: Path, errors: list[LoadError]) -> list[Path]:
    """Spec files under a folder, without recursion, skipping what pytest skips; YAML that
    is not a regular file (a dangling symlink, a device) is an error, never skipped."""
    found: list[Path] = []
    pending = [root]
    seen: set[Path] = set()         # symbolic links to folders are followed, once each
    while pending:
        folder = pending.pop()
        real = folder.resolve()
        if real in seen:
            continue
        seen.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as error:
            errors.append(LoadError(display_path(folder), f"cannot read the folder: "
                                    f"{error.strerror or error}"))
            continue
        subfolders = []
        for entry in entries:
            path = Path(entry.path)
            if _is_folder(entry):
                if not _skipped_dir(path):
                    subfolders.append(path)
                continue
            if path.suffix not in SPEC_SUFFIXES:
                continue
            problem = _not_a_file(path)
            if problem:
                errors.append(LoadError(display_path(path), problem))
            elif looks_like_spec(path):
                found.append(path)
        pending.extend(reversed(subfolders))
    return sorted(found)


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:         # a link loop: not a folder (reported as a file if it is YAML)
        return False


def _not_a_file(path: Path) -> str | None:
    """Why ``path`` cannot be a spec file (a dangling link, a device, a FIFO), or None."""
    try:
        if path.is_file():
            return None
    except OSError as error:
        return f"cannot read: {error.strerror or error}"
    if path.is_symlink() and not path.exists():
        return f"broken symbolic link (to {os.readlink(path)})"
    if path.is_dir():
        return "a folder named like a spec file: not a spec file"
    return "not a regular file (a device, a FIFO or a socket): not a spec file"


def split_target(raw: str) -> tuple[str, str | None]:
    """``specs/a.yaml::name`` -> (``specs/a.yaml``, ``name``): the ids ``check`` prints
    select one check, as pytest's node ids do."""
    path, sep, name = str(raw).partition("::")
    if sep and path and not Path(raw).exists():
        return path, name
    return str(raw), None


def discover(paths, *, sniff_named: bool = False) -> tuple[list[Path], list[LoadError]]:
    """Spec files under ``paths``, sorted, no repeats.  A file named is always a spec
    (``sniff_named``: only if it looks like one, as in folders); a folder is searched for
    *.yaml/*.yml that look like specs (:func:`looks_like_spec`), skipping hidden folders,
    virtualenvs, node_modules, build, dist and __pycache__.  ``file::name`` ids are
    accepted (the name is chosen by :func:`select_named`)."""
    files: list[Path] = []
    errors: list[LoadError] = []
    for raw in paths or (DEFAULT_PATH,):
        shown, name = split_target(raw)
        path = Path(shown)
        if name is not None and path.is_dir():
            raise UsageError(f"{raw}: a check id names a spec file and a check "
                             "(file.yaml::name), not a folder",
                             hint="see the ids with --collect-only")
        if path.is_dir():
            known = len(errors)
            found = _walk(path, errors)
            if not found and len(errors) == known:
                errors.append(LoadError(display_path(path), "no spec files (*.yaml, *.yml "
                                        "with checks:) in this folder"))
            files.extend(found)
        elif path.is_file():
            if not sniff_named or looks_like_spec(path):
                files.append(path)
        elif path.is_symlink() or path.exists():
            errors.append(LoadError(display_path(path), _not_a_file(path) or
                                    "not a regular file (a spec file or a folder of them)"))
        else:
            hint = "run from the folder that holds specs/, or give spec files" \
                if raw == DEFAULT_PATH and not paths else None
            errors.append(LoadError(display_path(path), "no such file or folder", hint=hint))
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique, errors


def select_named(checks: list[Selected], paths) -> list[Selected]:
    """Keep, of the files named with ``file::name``, only the named checks (the other
    files keep all theirs).  An unknown name is a usage error, as in pytest."""
    wanted: dict[Path, list[str]] = {}
    whole: set[Path] = set()
    for raw in paths or ():
        path, name = split_target(raw)
        resolved = Path(path).resolve()
        if name is None:
            whole.add(resolved)
        else:
            wanted.setdefault(resolved, []).append(name)
    if not wanted:
        return checks
    by_file: dict[Path, list[Selected]] = {}
    for item in checks:
        by_file.setdefault(Path(item.file).resolve(), []).append(item)
    for path, names in wanted.items():
        present = {c.name for c in by_file.get(path, ())}
        for name in names:
            if path in by_file and name not in present:
                raise UsageError(f"{display_path(path)}::{name}: no check named '{name}' in "
                                 f"{display_path(path)}" + did_you_mean(name, present),
                                 hint="see the ids with --collect-only")
    return [c for c in checks if Path(c.file).resolve() in whole or
            c.name in wanted.get(Path(c.file).resolve(), (c.name,))]


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
    from . import spec as spec_package
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


class KeywordExpression:
    """``-k``: pytest's expression language.  ``relu and not (two or slow)``: each word
    matches a check whose ``file::name`` or one of whose tags contains it (case-
    insensitive); ``and``, ``or``, ``not`` and parentheses combine them.  Parsed once,
    by recursive descent over a flat token list (no eval)."""

    TOKEN = re.compile(r"\s*(?:(?P<paren>[()])|(?P<word>[^\s()]+))")
    OPERATORS = ("and", "or", "not")

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, int]] = []      # (token, column)
        position = 0
        while position < len(text):
            match = self.TOKEN.match(text, position)
            if match is None:       # only trailing blanks are left
                break
            token = match.group("paren") or match.group("word")
            self.tokens.append((token, match.start(match.lastgroup) + 1))
            position = match.end()
        self.position = 0
        self.depth = 0
        # the tree: ("word", w) | ("not", t) | ("and"|"or", [terms]) | ("all",)
        self.tree = self._expression() if self.tokens else ("all",)
        if self.position < len(self.tokens):
            token, column = self.tokens[self.position]
            self._fail(f"unexpected '{token}'", column)

    def _fail(self, message: str, column: int | None = None):
        at = f" at column {column}" if column else " at the end"
        raise UsageError(f"-k {self.text!r}: {message}{at}",
                         hint="words, and/or/not and parentheses, as pytest's -k: "
                              "-k 'relu and not (two or slow)'")

    def _peek(self) -> str | None:
        return self.tokens[self.position][0] if self.position < len(self.tokens) else None

    def _expression(self):
        terms = [self._conjunction()]
        while self._peek() == "or":
            self.position += 1
            terms.append(self._conjunction())
        return terms[0] if len(terms) == 1 else ("or", terms)

    def _conjunction(self):
        terms = [self._negation()]
        while self._peek() == "and":
            self.position += 1
            terms.append(self._negation())
        return terms[0] if len(terms) == 1 else ("and", terms)

    def _negation(self):
        count = 0
        while self._peek() == "not":
            self.position += 1
            count += 1
        term = self._atom()
        return ("not", term) if count % 2 else term

    def _atom(self):
        if self.position >= len(self.tokens):
            self._fail("expected a word or '('")
        token, column = self.tokens[self.position]
        self.position += 1
        if token == "(":
            self.depth += 1
            if self.depth > 100:
                self._fail("parentheses nested more than 100 deep", column)
            inner = self._expression()
            if self._peek() != ")":
                self._fail("expected ')'", self.tokens[self.position][1]
                           if self.position < len(self.tokens) else None)
            self.position += 1
            self.depth -= 1
            return inner
        if token == ")" or token in self.OPERATORS:
            self._fail(f"expected a word or '(', got '{token}'", column)
        return ("word", token.lower())

    def matches(self, item: Selected) -> bool:
        haystacks = [item.id.lower(), *(str(tag).lower() for tag in item.tags)]
        return self._evaluate(self.tree, haystacks)

    def _evaluate(self, node, haystacks: list[str]) -> bool:
        kind = node[0]
        if kind == "all":
            return True
        if kind == "word":
            return any(node[1] in text for text in haystacks)
        if kind == "not":
            return not self._evaluate(node[1], haystacks)
        results = (self._evaluate(term, haystacks) for term in node[1])
        return all(results) if kind == "and" else any(results)


def select(checks: list[Selected], keyword: str | None = None, tags=()) -> list[Selected]:
    """``-k``: a pytest keyword expression (:class:`KeywordExpression`); ``-m``: any of
    the tags."""
    out = checks
    if keyword:
        expression = KeywordExpression(keyword)
        out = [c for c in out if expression.matches(c)]
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
    from .checker import check
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
        outcome.status = "error"
        outcome.message = getattr(error, "message", None) or str(error)
        if location is not None and location.line is not None:
            if _same_file(location.file, item.file):
                outcome.line, outcome.column = location.line, location.column
                outcome.end_column = getattr(location, "end_column", None)
            else:       # in the user's Python code (a torch Function's backward)
                where = f"{display_path(Path(location.file))}:{location.line}"
                outcome.message = f"{where}: {outcome.message}"
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


def _same_file(a, b) -> bool:
    if a is None:
        return True
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, TypeError, ValueError):
        return False


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
