"""The offending line of a source file and a ``^`` under the span of an error: what the
CLI and the pytest plugin show under ``file:line:col: message``."""

from __future__ import annotations

import os
import stat

from ..errors import Location


#: source text of things that are not files (``<expr>``: the EXPR argument), for excerpts
SOURCES: dict[str, str] = {}


#: the lines of the last file read for excerpts: (path, size, mtime) -> lines.  Errors come
#: file by file, so one entry reads each file once (not once per error).
_LINES_CACHE: dict[tuple, list[str]] = {}


def _source_lines(file: str) -> list[str] | None:
    text = SOURCES.get(file)
    if text is not None:
        return text.splitlines()
    try:
        info = os.stat(file)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(info.st_mode):      # never read a FIFO or a device for an excerpt
        return None
    key = (file, info.st_size, info.st_mtime_ns)
    lines = _LINES_CACHE.get(key)
    if lines is None:
        try:
            with open(file, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except (OSError, UnicodeDecodeError):
            return None
        _LINES_CACHE.clear()
        _LINES_CACHE[key] = lines
    return lines


def source_excerpt(location: Location | None) -> list[str]:
    """The offending line and a ``^`` under the span, when the source can be read."""
    if location is None or location.line is None or location.column is None:
        return []
    lines = _source_lines(location.file or "")
    if lines is None or not 1 <= location.line <= len(lines):
        return []
    line = lines[location.line - 1]
    start = max(location.column - 1, 0)
    end = location.end_column - 1 if location.end_column and \
        location.end_column > location.column else start + 1
    line, start, end = cut_around(line, start, end)
    return ["    " + line, "    " + " " * start + "^" * max(end - start, 1)]


#: longest source line an excerpt shows whole; longer ones are cut around the caret
EXCERPT_WIDTH = 100


def cut_around(line: str, start: int, end: int,
               width: int = EXCERPT_WIDTH) -> tuple[str, int, int]:
    """``line`` cut to about ``width`` characters around ``[start, end)`` (the span the
    caret marks), with ``…`` where text was left out; the span moved to match."""
    if len(line) <= width:
        return line, start, end
    end = min(max(end, start + 1), start + width // 2)      # a long span: its start
    left = max(0, min(start - width // 4, len(line) - width))
    right = min(len(line), left + width)
    head = "…" if left > 0 else ""
    tail = "…" if right < len(line) else ""
    shift = left - len(head)
    return head + line[left:right] + tail, start - shift, end - shift
