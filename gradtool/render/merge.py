"""``gradtool report merge``: the JSON reports of ``gradtool check --shard K/N`` runs (or of
any runs of disjoint checks) as the one report a single run would have written.

Shard reports carry the position of each of their checks among the selected ones, so the
merged checks are in the order of a single run; reports without it are concatenated in the
order given.  Every part of a split must be there, each once; a check may appear in one
report only; the reports must be of the same format version and gradtool version.  The
exit code is the highest of the parts' (an interrupted part makes the whole 130)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..errors import UsageError
from .report import INTERRUPTED, REPORT_JSON_VERSION, LoadError, Outcome

#: what an outcome of each status contributes to the exit code (whether an error was a 2 or
#: a 3 is not in the report: the parts' summaries carry the run's exit code, which wins)
STATUS_EXIT = {"passed": 0, "skipped": 0, "xfailed": 0, "failed": 1, "xpassed": 1,
               "error": 2}
METRICS = ("max_abs_error", "max_rel_error")
NOT_FINITE = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


@dataclass
class Merged:
    """The merged run, ready for the renderers of :mod:`gradtool.render.report`."""

    outcomes: list[Outcome] = field(default_factory=list)
    load_errors: list[LoadError] = field(default_factory=list)
    elapsed: float = 0.0
    not_run: int = 0
    interrupted: bool = False
    exit_code: int = 0
    gradtool_version: str = ""


def read_report(path: str) -> dict:
    """One JSON report, checked to be a gradtool ``check --format json`` report."""
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except OSError as error:
        raise UsageError(f"{path}: cannot read: {error.strerror or error}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: not a JSON report ({error})",
                         hint="write one with gradtool check --format json --output F") \
            from None
    if not isinstance(data, dict) or data.get("tool") != "gradtool" or \
            not isinstance(data.get("checks"), list) or \
            not isinstance(data.get("summary"), dict):
        raise UsageError(f"{path}: not a gradtool JSON report",
                         hint="write one with gradtool check --format json --output F")
    if data.get("version") != REPORT_JSON_VERSION:
        raise UsageError(f"{path}: a version {data.get('version')!r} report; this gradtool "
                         f"reads version {REPORT_JSON_VERSION}")
    return data


def _number(value):
    if isinstance(value, str) and value in NOT_FINITE:
        return NOT_FINITE[value]
    return value


def _outcome(path: str, check: dict) -> Outcome:
    try:
        status = check["status"]
        if status not in STATUS_EXIT:
            raise ValueError(status)
        outcome = Outcome(str(check["file"]), str(check["name"]), check.get("line"),
                          check.get("column"), status=status,
                          expect=check.get("expect") or "pass",
                          tags=tuple(check.get("tags") or ()),
                          time=float(check.get("time") or 0.0),
                          message=check.get("message") or "", hint=check.get("hint"),
                          exit_code=STATUS_EXIT[status])
    except (KeyError, TypeError, ValueError) as error:
        raise UsageError(f"{path}: a check entry the report format does not allow "
                         f"({error!r})") from None
    details = dict(check.get("result") or {})
    for key in METRICS:
        if key in details:
            details[key] = _number(details[key])
    if check.get("evaluations") is not None:
        details.setdefault("evaluations", check.get("evaluations"))
    outcome.details = details
    return outcome


def merge(paths: list[str]) -> Merged:
    """The reports at ``paths`` as one run; a UsageError for parts that do not fit."""
    if not paths:
        raise UsageError("report merge: no reports given",
                         hint="gradtool report merge part1.json part2.json ...")
    reports = [(path, read_report(path)) for path in paths]
    versions = {data.get("gradtool_version") for _, data in reports}
    if len(versions) > 1:
        listed = ", ".join(f"{path}: {data.get('gradtool_version')}" for path, data in reports)
        raise UsageError(f"the reports come from different gradtool versions ({listed})",
                         hint="run every part with the same gradtool")
    shards = [data.get("shard") for _, data in reports]
    ordered = all(isinstance(s, dict) for s in shards)
    if ordered:
        _check_split(reports)
    elif any(isinstance(s, dict) for s in shards):
        raise UsageError("some reports are parts of a --shard split and some are not",
                         hint="merge the parts of one split")
    merged = Merged(gradtool_version=str(versions.pop()))
    seen: dict[str, str] = {}
    entries = []
    errors_seen = set()
    for number, (path, data) in enumerate(reports):
        summary = data["summary"]
        positions = data["shard"].get("positions") if ordered else None
        if ordered and not isinstance(positions, list):
            raise UsageError(f"{path}: its shard entry has no positions")
        if positions is not None and len(positions) != len(data["checks"]):
            raise UsageError(f"{path}: its shard positions do not match its checks")
        for place, check in enumerate(data["checks"]):
            outcome = _outcome(path, check if isinstance(check, dict) else {})
            if outcome.id in seen:
                raise UsageError(f"check {outcome.id} is in two reports: {seen[outcome.id]} "
                                 f"and {path}", hint="merge the reports of disjoint parts "
                                 "(the --shard K/N parts of one split)")
            seen[outcome.id] = path
            key = (positions[place],) if positions is not None else (number, place)
            entries.append((key, outcome))
        for error in data.get("errors") or ():     # every part reports the same load errors
            if not isinstance(error, dict):
                continue
            fields = (error.get("file"), error.get("line"), error.get("column"),
                      error.get("message"), error.get("hint"))
            if fields not in errors_seen:
                errors_seen.add(fields)
                merged.load_errors.append(LoadError(str(fields[0]), str(fields[3]),
                                                    fields[1], fields[2], fields[4]))
        merged.elapsed += float(summary.get("time") or 0.0)
        merged.not_run += int(summary.get("not_run") or 0)
        merged.interrupted |= bool(summary.get("interrupted"))
        code = summary.get("exit_code")
        merged.exit_code = max(merged.exit_code, code if isinstance(code, int) else 2)
    if len({key for key, _ in entries}) != len(entries):
        raise UsageError("two reports claim the same check position: not parts of one split")
    merged.outcomes = [outcome for _, outcome in sorted(entries, key=lambda e: e[0])]
    if merged.interrupted:
        merged.exit_code = INTERRUPTED
    return merged


def _check_split(reports) -> None:
    """Check that the shard reports are the parts of one split, each once, none missing."""
    counts = {data["shard"].get("count") for _, data in reports}
    if len(counts) != 1:
        raise UsageError("the reports are parts of different splits (--shard K/N with "
                         f"different N: {sorted(map(str, counts))})")
    count = counts.pop()
    indexes = [data["shard"].get("index") for _, data in reports]
    for (path, _), index in zip(reports, indexes):
        if indexes.count(index) > 1:
            raise UsageError(f"{path}: part {index}/{count} is given twice")
    missing = [str(k) for k in range(1, count + 1) if k not in indexes]
    if missing:
        raise UsageError(f"part{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(missing)} of {count} missing",
                         hint="merge the reports of every --shard K/N part")
