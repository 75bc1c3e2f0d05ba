"""``gradtool check --shard K/N``: one of N deterministic parts of the selected checks, for
CI matrices, and the durations file that balances them (``--durations-file``).

Without durations the split is by count: part K holds the K-th run of consecutive checks,
the sizes differ by at most one.  With durations (seconds per check id, from earlier runs)
the checks are dealt greedily, longest first, to the part with the least total so far (a
check never timed counts as the mean of the known ones).  Either way each part keeps the
serial order, and the parts together are the selected checks, each exactly once."""

from __future__ import annotations

import json
import re

from .errors import UsageError

DURATIONS_VERSION = 1
_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``; K counts from 1."""
    match = _SHARD.fullmatch(text or "")
    if not match:
        raise UsageError(f"--shard {text}: expected K/N, as 2/4 (part 2 of 4)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise UsageError(f"--shard {text}: K must be between 1 and N (N >= 1)",
                         hint="the parts of a 4-way split are 1/4, 2/4, 3/4 and 4/4")
    return index, count


def split(ids: list[str], count: int, durations: dict[str, float] | None = None) \
        -> list[list[int]]:
    """The positions of ``ids`` in each of ``count`` parts (each part in increasing
    order)."""
    if count < 1:
        raise ValueError("count must be >= 1")
    if not durations:
        size, extra = divmod(len(ids), count)
        parts, start = [], 0
        for part in range(count):
            end = start + size + (1 if part < extra else 0)
            parts.append(list(range(start, end)))
            start = end
        return parts
    known = [durations[i] for i in ids if i in durations]
    default = sum(known) / len(known) if known else 1.0
    cost = [durations.get(i, default) for i in ids]
    # longest first; ties by position, so the split depends only on ids and durations
    order = sorted(range(len(ids)), key=lambda position: (-cost[position], position))
    totals = [0.0] * count
    members: list[list[int]] = [[] for _ in range(count)]
    for position in order:
        part = min(range(count), key=lambda p: (totals[p], len(members[p]), p))
        totals[part] += cost[position]
        members[part].append(position)
    return [sorted(part) for part in members]


def read_durations(path: str) -> dict[str, float]:
    """The durations file (``{}`` when it does not exist yet: the first run writes it)."""
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise UsageError(f"--durations-file {path}: cannot read: "
                         f"{error.strerror or error}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise UsageError(f"--durations-file {path}: not a durations file ({error})",
                         hint="delete it: the next run writes a new one") from None
    durations = data.get("durations") if isinstance(data, dict) else None
    if not isinstance(durations, dict) or data.get("version") != DURATIONS_VERSION:
        raise UsageError(f"--durations-file {path}: not a version {DURATIONS_VERSION} "
                         "durations file", hint="delete it: the next run writes a new one")
    out = {}
    for check_id, seconds in durations.items():
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) \
                and seconds >= 0 and seconds == seconds and seconds != float("inf"):
            out[str(check_id)] = float(seconds)
    return out


def durations_text(previous: dict[str, float], outcomes) -> str:
    """The durations file after a run: the earlier entries, updated with the time of every
    check that ran (skipped ones keep theirs); ids sorted, so the file diffs well."""
    merged = dict(previous)
    for outcome in outcomes:
        if outcome.status != "skipped":
            merged[outcome.id] = round(float(outcome.time), 6)
    return json.dumps({"version": DURATIONS_VERSION,
                       "durations": dict(sorted(merged.items()))}, indent=1) + "\n"

