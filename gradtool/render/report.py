"""Reports of a ``gradtool check`` run: rich table, JSON, JUnit XML, GitHub annotations.

An ``Outcome`` is one check's result as the CLI and the pytest plugin see it; every
renderer here reads only outcomes (and the load errors of files that produced no checks).
The JSON format is versioned (``version``) and documented in docs/cli.md.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from .._version import __version__

REPORT_JSON_VERSION = 1
#: exit code of an interrupted run (128 + SIGINT), in the JSON report's summary
INTERRUPTED = 130

# status -> (label, style); order is the order of the summary line
STATUSES = {
    "passed": ("PASSED", "green"),
    "failed": ("FAILED", "bold red"),
    "xpassed": ("XPASS", "bold red"),
    "error": ("ERROR", "bold red"),
    "skipped": ("SKIPPED", "yellow"),
    "xfailed": ("XFAIL", "yellow"),
}


@dataclass
class Outcome:
    """One check of one spec file, after running (or skipping) it."""

    file: str
    name: str
    line: int | None = None
    column: int | None = None
    status: str = "passed"
    expect: str = "pass"
    tags: tuple = ()
    time: float = 0.0
    message: str = ""           # the checker's report, a skip reason, or an error message
    hint: str | None = None
    exit_code: int = 0          # what this outcome contributes to the run's exit code
    result: object = None       # the checker's CheckResult (None when it did not run)
    details: dict = field(default_factory=dict)   # result.to_dict(), JSON-safe
    end_column: int | None = None   # end of the offending span of an error (for the ^^^)

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}"

    @property
    def where(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    @property
    def problem(self) -> bool:
        return self.status in ("failed", "xpassed", "error")

    def metric(self, key: str):
        value = self.details.get(key)
        return value if isinstance(value, (int, float)) else None


@dataclass
class LoadError:
    """A spec file (or path) that could not be loaded: no check of it ran."""

    file: str
    message: str
    line: int | None = None
    column: int | None = None
    hint: str | None = None
    exit_code: int = 2
    end_column: int | None = None

    @property
    def where(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


def result_metrics(result) -> dict:
    """The largest errors over a CheckResult's blocks, and its function evaluations."""
    blocks = list(getattr(result, "blocks", ()) or ())
    abs_errors = [b.max_abs_error for b in blocks if b.max_abs_error is not None]
    rel_errors = [b.max_rel_error for b in blocks if b.max_rel_error is not None]
    return {"max_abs_error": max(abs_errors, default=None),
            "max_rel_error": max(rel_errors, default=None),
            "evaluations": getattr(result, "n_evals", None)}


def counts(outcomes) -> dict:
    out = dict.fromkeys(STATUSES, 0)
    for item in outcomes:
        out[item.status] += 1
    return out


def exit_code(outcomes, load_errors=()) -> int:
    """The highest exit code any outcome or load error asks for."""
    codes = [item.exit_code for item in outcomes] + [e.exit_code for e in load_errors]
    return max(codes, default=0)


def summary_text(outcomes, load_errors=(), elapsed: float | None = None, *,
                 not_run: int = 0, interrupted: bool = False) -> Text:
    """``3 passed, 1 failed, 2 xfailed in 0.41s`` (pytest's wording); ``not_run``: checks
    left after ``-x`` stopped the run or Ctrl-C interrupted it."""
    text = Text()
    parts = []
    for status, count in counts(outcomes).items():
        if count:
            parts.append((f"{count} {status}" if status != "error" else
                          f"{count} error{'s' if count > 1 else ''}", STATUSES[status][1]))
    if load_errors:
        n, files = len(load_errors), len({e.file for e in load_errors})
        parts.append((f"{n} error{'s' if n > 1 else ''} loading {files} "
                      f"file{'s' if files > 1 else ''}", "bold red"))
    if not_run:
        parts.append((f"{not_run} not run ({'interrupted' if interrupted else '-x'})",
                      "yellow"))
    elif interrupted:
        parts.append(("interrupted", "yellow"))
    if not parts:
        parts.append(("no checks ran", "yellow"))
    for i, (chunk, style) in enumerate(parts):
        if i:
            text.append(", ")
        text.append(chunk, style=style)
    if elapsed is not None:
        text.append(f" in {elapsed:.2f}s")
    return text


def fmt_error(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return f"{value:.2e}"


def fmt_time(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


# --------------------------------------------------------------------------- table
#: the numeric columns of the table, right-justified: (header, width); some are dropped
#: when the ids need the room (an id is never broken)
COLUMNS = (("max abs err", 11), ("max rel err", 11), ("evals", 7), ("time", 7))
#: columns dropped first when the line is too narrow: evals, then rel err, time, abs err
DROP_ORDER = ("evals", "max rel err", "time", "max abs err")
STATUS_WIDTH = 7


@dataclass
class TableLayout:
    """Widths of the check table: the id column fits the longest id, numeric columns are
    dropped (never the id folded) when the line would be wider than the console."""

    id_width: int
    columns: tuple

    @classmethod
    def fit(cls, ids, width: int | None) -> TableLayout:
        id_width = max([len("check"), *(len(i) for i in ids)])
        columns = list(COLUMNS)
        for name in DROP_ORDER:
            total = id_width + 2 + STATUS_WIDTH + sum(2 + w for _, w in columns)
            if width is None or total <= width:
                break
            columns = [c for c in columns if c[0] != name]
        return cls(id_width, tuple(columns))

    def header(self) -> Text:
        text = Text("check".ljust(self.id_width) + "  " + "status".ljust(STATUS_WIDTH),
                    style="bold")
        for name, width in self.columns:
            text.append("  " + name.rjust(width), style="bold")
        return text

    def row(self, item: Outcome) -> Text:
        label, style = STATUSES[item.status]
        text = Text(item.id.ljust(self.id_width) + "  ")
        text.append(label.ljust(STATUS_WIDTH) if self.columns else label, style=style)
        evals = item.metric("evaluations")
        values = {"max abs err": fmt_error(item.metric("max_abs_error")),
                  "max rel err": fmt_error(item.metric("max_rel_error")),
                  "evals": "–" if evals is None else f"{evals:,}",
                  "time": fmt_time(item.time)}
        for name, width in self.columns:
            text.append("  " + values[name].rjust(width))
        return text


def render_table(console: Console, outcomes, load_errors=(), *, elapsed=None,
                 verbose: bool = False, quiet: bool = False,
                 show_load_errors: bool = True, rows: bool = True,
                 not_run: int = 0, interrupted: bool = False,
                 excerpt: Callable | None = None) -> None:
    """The human report: one row per check, then every problem expanded, then the summary
    (which counts the load errors; ``show_load_errors=False`` when they went to stderr;
    ``rows=False`` when the rows were printed as the checks finished)."""
    if show_load_errors:
        print_load_errors(console, load_errors)
    if rows and not quiet and outcomes:
        layout = TableLayout.fit([item.id for item in outcomes], console.width)
        console.print(layout.header())
        for item in outcomes:
            console.print(layout.row(item))
    notes: list[str] = []
    for item in outcomes:
        # with -v, expected failures show their diagnosis too (what gradtool found)
        if item.problem or (verbose and item.status == "xfailed"):
            message, note = _vmap_note(item.message)
            if note:
                notes.append(note)
                item = dataclasses.replace(item, message=message)
            render_problem(console, item, verbose=verbose, excerpt=excerpt)
    for note in dict.fromkeys(notes):     # once per run, not once per check
        console.print()
        console.print(Text(f"note: torch.func.vmap failed: {note}; the checks marked "
                           "'looped' called the function once per perturbed input",
                           style="dim"))
    if outcomes and not quiet:
        console.print()
    console.print(summary_text(outcomes, load_errors, elapsed, not_run=not_run,
                               interrupted=interrupted))


_VMAP_FAILED = re.compile(r"looped \(torch\.func\.vmap failed: (.*)\)\)$", re.MULTILINE)


def _vmap_note(message: str) -> tuple[str, str | None]:
    """A checker report without the reason torch.func.vmap failed (said once per run by
    the table), and that reason."""
    found = _VMAP_FAILED.search(message or "")
    if found is None:
        return message, None
    start, end = found.span(1)
    return message[:start - len(" failed: ") + 1] + "failed, see the note)" + \
        message[end + 1:], found.group(1)


def print_load_errors(console: Console, load_errors) -> None:
    """``file:line:col: message`` and ``  hint: ...`` per load error."""
    for error in load_errors:
        text = Text(f"{error.where}: ", style="bold")
        text.append(error.message, style="red")
        console.print(text)
        if error.hint:
            console.print(Text(f"  hint: {error.hint}", style="dim"))


def render_problem(console: Console, item: Outcome, *, verbose: bool = False,
                   excerpt: Callable | None = None) -> None:
    """A failure expanded: where, what, the checker's report and diagnosis.  An error is
    ``file:line:col: message`` on one line, then the source line with a ``^`` under the
    span (``excerpt(outcome)`` gives those lines), as load errors are printed, so that
    editors' and CI's problem matchers find it."""
    label, style = STATUSES[item.status]
    console.print()
    lines = (item.message or "").splitlines()
    if item.status == "error":
        console.print(Text(f"{label} {item.id}", style=style))
        head = Text(f"{item.where}: ", style="bold")
        head.append(lines[0] if lines else "error", style="bold")
        console.print(head)
        for line in (excerpt(item) if excerpt else ()):
            console.print(Text(line))
        lines = lines[1:]
    else:
        head = Text(f"{label} ", style=style)
        head.append(f"{item.where}: {item.name}", style="bold")
        console.print(head)
    if item.status == "xpassed":
        # the outcome's message says it already (runner.finish); said once, in red
        console.print(Text("  " + (lines[0] if lines else
                                   "marked 'expect: fail' but the check passed"), style="red"))
        lines = lines[1:]
    for line in lines:
        console.print(Text("  " + line))
    if item.hint:
        console.print(Text(f"  hint: {item.hint}", style="dim"))
    if verbose and item.result is not None:
        for renderable in jacobian_views(item.result):
            console.print(renderable)


# --------------------------------------------------------------------------- -v: Jacobians
HEAT = " ░▒▓█"
NOT_FINITE = "!"    # heatmap cells where the error is NaN or Inf
MAX_TABLE = 8       # blocks up to 8 x 8 are shown as numbers, larger ones as a heatmap
MAX_HEAT = 48


def _blocks(result) -> list:
    """(title, numerical, analytical) of every failing Jacobian block of a result."""
    out = []
    for block in getattr(result, "blocks", None) or ():
        if getattr(block, "passed", True):
            continue
        numerical = getattr(block, "numerical", None)
        analytical = getattr(block, "analytical", None)
        if numerical is None or analytical is None:
            continue
        title = f"{getattr(block, 'stage', '')}: {getattr(block, 'name', 'Jacobian block')}"
        out.append((title.strip(": "), np.asarray(numerical), np.asarray(analytical)))
    return out


def jacobian_views(result) -> list:
    """Rich renderables for ``-v``: numbers for small blocks, a heatmap of |error| else."""
    views = []
    for title, numerical, analytical in _blocks(result):
        num = numerical.reshape(numerical.shape[0], -1) if numerical.ndim > 1 else \
            numerical.reshape(-1, 1)
        ana = analytical.reshape(num.shape)
        diff = np.abs(num - ana)
        if num.shape[0] <= MAX_TABLE and num.shape[1] <= MAX_TABLE:
            views.append(Text(f"  {title} (rows: output elements, columns: input elements)",
                              style="bold"))
            finite = np.isfinite(diff)
            scale = float(diff[finite].max()) if finite.any() else 0.0
            bad = ~finite | (diff > 1e-3 * (scale or 1.0))     # NaN/Inf: marked too
            pair = Table.grid(padding=(0, 4))
            pair.add_row(_number_table("numerical", num, bad),
                         _number_table("analytical", ana, bad))
            views.append(Padding(pair, (0, 0, 0, 2), expand=False))
        else:
            views.append(Text(f"  {title}: |numerical - analytical|, {num.shape[0]} x "
                              f"{num.shape[1]}", style="bold"))
            views.append(_heatmap(diff))
    return views


def _number_table(title: str, values, bad) -> Table:
    table = Table(box=None, show_header=True, header_style="dim", pad_edge=False)
    table.add_column(title, style="dim", justify="right")
    for j in range(values.shape[1]):
        table.add_column(str(j), justify="right")
    for i in range(values.shape[0]):
        table.add_row(str(i), *[Text(f"{values[i, j] + 0.0:.4g}",
                                     style="red" if bad[i, j] else "")
                                for j in range(values.shape[1])])
    return table


def _heatmap(diff) -> Group:
    rows = diff[:MAX_HEAT, :MAX_HEAT]
    finite = np.isfinite(rows)
    top = (float(rows[finite].max()) if finite.any() else 0.0) or 1.0
    lines = []
    for row in rows:
        text = Text("    ")
        for value in row:
            if not np.isfinite(value):      # NaN or Inf on either side
                text.append(NOT_FINITE * 2, style="bold red")
                continue
            level = int(round((len(HEAT) - 1) * value / top))
            text.append(HEAT[level] * 2, style="red" if level else "")
        lines.append(text)
    if diff.shape[0] > MAX_HEAT or diff.shape[1] > MAX_HEAT:
        lines.append(Text(f"  (first {MAX_HEAT} x {MAX_HEAT} shown)", style="dim"))
    legend = f"  scale: █ = {top:.3g}"
    if not finite.all():
        legend += f"; {NOT_FINITE * 2} = NaN or Inf"
    lines.append(Text(legend, style="dim"))
    return Group(*lines)


# --------------------------------------------------------------------------- JSON
def json_safe(value):
    """``value`` as strict JSON data: NaN and infinities as the strings "nan", "inf",
    "-inf" (JSON has no such numbers), numpy values as Python ones."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    if isinstance(value, complex):
        return [value.real, value.imag]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def report_dict(outcomes, load_errors=(), *, elapsed: float = 0.0, not_run: int = 0,
                interrupted: bool = False, shard: dict | None = None) -> dict:
    """The JSON report; ``not_run``/``interrupted``: checks -x or Ctrl-C left (an
    interrupted run's exit code is 130, whatever the checks that finished say);
    ``shard``: ``--shard``'s part and the positions of its checks (for ``report merge``)."""
    summary = counts(outcomes)
    summary.update(total=len(outcomes), file_errors=len(load_errors),
                   exit_code=INTERRUPTED if interrupted else exit_code(outcomes, load_errors),
                   time=round(elapsed, 6), not_run=not_run, interrupted=interrupted)
    return {
        "version": REPORT_JSON_VERSION,
        "tool": "gradtool",
        "gradtool_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "summary": summary,
        "checks": [{
            "id": item.id,
            "file": item.file,
            "line": item.line,
            "column": item.column,
            "name": item.name,
            "status": item.status,
            "expect": item.expect,
            "tags": list(item.tags),
            "time": round(item.time, 6),
            "max_abs_error": json_safe(item.metric("max_abs_error")),
            "max_rel_error": json_safe(item.metric("max_rel_error")),
            "evaluations": item.metric("evaluations"),
            "message": item.message or None,
            "hint": item.hint,
            "result": json_safe(item.details) if item.details else None,
        } for item in outcomes],
        "errors": [{"file": e.file, "line": e.line, "column": e.column,
                    "message": e.message, "hint": e.hint} for e in load_errors],
    } | ({"shard": shard} if shard is not None else {})


def render_json(outcomes, load_errors=(), *, elapsed: float = 0.0,
                started: float | None = None, not_run: int = 0,
                interrupted: bool = False, shard: dict | None = None) -> str:
    return json.dumps(report_dict(outcomes, load_errors, elapsed=elapsed, not_run=not_run,
                                  interrupted=interrupted, shard=shard), indent=2) + "\n"


# --------------------------------------------------------------------------- JUnit
def worst_diagnosis(item: Outcome) -> str:
    """One line saying what is wrong with a check: the diagnosis of its worst failing
    Jacobian block (largest error; NaN counts as the largest), else its message's first
    line.  What CI list views show of a failure."""
    blocks = [b for b in getattr(item.result, "blocks", None) or ()
              if not getattr(b, "passed", True)]
    if blocks:
        def badness(block) -> float:
            value = getattr(block, "max_abs_error", 0.0)
            value = 0.0 if value is None else float(value)
            return math.inf if math.isnan(value) else value
        worst = max(blocks, key=badness)
        return f"{worst.stage}: {worst.name}: FAILED ({worst.kind}): {worst.diagnosis}"
    lines = (item.message or "").strip().splitlines()
    return lines[0] if lines else item.status


def _timestamp(started: float | None, elapsed: float) -> str:
    """The run's start, ISO 8601 with the time zone (UTC)."""
    start = time.time() - elapsed if started is None else started
    return datetime.datetime.fromtimestamp(start, datetime.timezone.utc) \
        .isoformat(timespec="seconds")


def render_junit(outcomes, load_errors=(), *, elapsed: float = 0.0,
                 started: float | None = None, not_run: int = 0,
                 interrupted: bool = False) -> str:
    """JUnit XML: one ``testcase`` per check (pytest's conventions for skip and xfail);
    a file that failed to load is one ``testcase`` named ``(load)`` with an ``error``
    holding all its errors.  ``started``: the run's start (``time.time()``)."""
    c = counts(outcomes)
    by_file: dict[str, list[LoadError]] = {}
    for error in load_errors:
        by_file.setdefault(error.file, []).append(error)
    suite = ET.Element("testsuite", {
        "name": "gradtool",
        "tests": str(len(outcomes) + len(by_file)),
        "failures": str(c["failed"] + c["xpassed"]),
        "errors": str(c["error"] + len(by_file)),
        "skipped": str(c["skipped"] + c["xfailed"]),
        "time": f"{elapsed:.3f}",
        "timestamp": _timestamp(started, elapsed),
    })
    for item in outcomes:
        case = ET.SubElement(suite, "testcase", {
            "classname": _classname(item.file), "name": item.name, "file": item.file,
            "line": str(item.line or 0), "time": f"{item.time:.3f}"})
        first = (item.message or "").strip().splitlines()
        summary = first[0] if first else item.status
        if item.status == "failed":
            node = ET.SubElement(case, "failure", {"message": worst_diagnosis(item),
                                                   "type": "GradcheckError"})
            node.text = item.message
        elif item.status == "xpassed":
            node = ET.SubElement(case, "failure", {
                "message": "[XPASS(strict)] marked 'expect: fail' but the check passed",
                "type": "XPASS"})
        elif item.status == "error":
            node = ET.SubElement(case, "error", {"message": f"{item.where}: {summary}"})
            node.text = item.message + (f"\nhint: {item.hint}" if item.hint else "")
        elif item.status == "skipped":
            ET.SubElement(case, "skipped", {"message": item.message or "skipped",
                                            "type": "pytest.skip"})
        elif item.status == "xfailed":
            ET.SubElement(case, "skipped", {"message": "expected failure: "
                                            + worst_diagnosis(item), "type": "pytest.xfail"})
    for file, errors in by_file.items():
        first = errors[0]
        case = ET.SubElement(suite, "testcase", {
            "classname": _classname(file), "name": "(load)", "file": file,
            "line": str(first.line or 0), "time": "0"})
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        node = ET.SubElement(case, "error", {"message": f"{first.where}: {first.message}"
                                                        f"{more}"})
        node.text = "\n".join(f"{e.where}: {e.message}" + (f"\n  hint: {e.hint}" if e.hint
                                                            else "") for e in errors)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    text = ET.tostring(root, "unicode")
    # characters XML 1.0 cannot hold at all (control characters in a check's name or an
    # error message) are written as \xNN, so the file stays well-formed
    text = _XML_INVALID.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + text + "\n"


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _classname(path: str) -> str:
    stem = path.rsplit(".", 1)[0] if path.endswith((".yaml", ".yml")) else path
    return stem.replace("\\", "/").replace("/", ".").lstrip(".")


# --------------------------------------------------------------------------- GitHub
#: characters a terminal acts on (C0 controls but newline and tab, DEL, C1 controls): text a
#: user wrote (check names, messages, skip reasons, expressions) shows them escaped, \x1b
_TERMINAL_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape_control(text: str) -> str:
    """``text`` with the control characters a terminal would act on (ESC starting an escape
    sequence, BEL, carriage return, backspace, ...) written as ``\\xNN``, as pytest shows
    ids; newlines and tabs are kept."""
    if not _TERMINAL_CONTROLS.search(text):
        return text
    return _TERMINAL_CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _gh_data(text: str) -> str:
    text = escape_control(text)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(outcomes, load_errors=(), *, elapsed: float | None = None,
                  started: float | None = None, not_run: int = 0,
                  interrupted: bool = False) -> str:
    """One ``::error file=F,line=L,title=T::message`` workflow command per problem,
    then the plain summary line."""
    lines = []
    for error in load_errors:
        props = f"file={_gh_property(error.file)}"
        if error.line:
            props += f",line={error.line}"
            if error.column:
                props += f",col={error.column}"
        message = error.message + (f"\nhint: {error.hint}" if error.hint else "")
        lines.append(f"::error {props},title={_gh_property('gradtool: spec error')}::"
                     f"{_gh_data(message)}")
    for item in outcomes:
        if not item.problem:
            continue
        props = f"file={_gh_property(item.file)}"
        if item.line:
            props += f",line={item.line}"
            if item.column:
                props += f",col={item.column}"
        title = {"failed": "gradient check failed", "xpassed": "unexpected pass",
                 "error": "check error"}[item.status]
        message = item.message or ""
        if item.status == "xpassed":
            message = "marked 'expect: fail' but the check passed"
        if item.hint:
            message += f"\nhint: {item.hint}"
        lines.append(f"::error {props},title={_gh_property(f'gradtool: {title}: {item.name}')}"
                     f"::{_gh_data(message)}")
    lines.append(summary_text(outcomes, load_errors, elapsed, not_run=not_run,
                              interrupted=interrupted).plain)
    return "\n".join(lines) + "\n"


FORMATS = {"json": render_json, "junit": render_junit, "github": render_github}
