"""Paths the command line reads and writes: only regular files (a FIFO would block, a
device never end), and reports written whole or not at all."""

from __future__ import annotations

import os
import stat
import tempfile

from ..errors import UsageError


def file_kind(mode: int) -> str | None:
    """What a path that is not a regular file is, in words (None for a regular file)."""
    for test, kind in ((stat.S_ISREG, None), (stat.S_ISDIR, "a folder"),
                       (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def require_regular(path: str, option: str, *, may_be_missing: bool = False) -> None:
    """Refuse (exit 2) a path that is a folder, a FIFO, a device or a socket; a missing
    path too unless ``may_be_missing`` (an output file)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if may_be_missing:
            return
        raise UsageError(f"{option} {path}: no such file") from None
    except OSError as error:
        raise UsageError(f"{option} {path}: {error.strerror or error}") from None
    kind = file_kind(info.st_mode)
    if kind is not None:
        raise UsageError(f"{option} {path}: not a regular file ({kind})",
                         hint="give the path of a file")


def write_atomic(path: str, text: str, *, option: str = "--output") -> None:
    """Write ``text`` to ``path`` whole or not at all: into a temporary file in the same
    folder, then renamed over ``path``.  If anything fails (disk full, no permission),
    ``path`` keeps its previous content and a one-line UsageError (exit 2) says why.  A
    symbolic link is followed (its target is replaced); a path that is not a regular file
    (a FIFO, a device, a folder) is refused."""
    target = os.path.realpath(path)
    require_regular(target, option, may_be_missing=True)
    folder = os.path.dirname(target) or "."
    try:
        previous_mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        previous_mode = 0o666 & ~umask
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(target)}.",
                                             suffix=".tmp")
        with os.fdopen(handle, "wb") as stream:
            stream.write(text.encode("utf-8"))
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, previous_mode)
        os.replace(temporary, target)
        temporary = None
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}",
                         hint="the previous file, if any, is unchanged") from None
    finally:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except OSError:
                pass
