"""``gradtool check -n N``: the selected checks run in N worker processes.

Each worker is a fresh interpreter (``python -m gradtool.parallel``, a hidden entry point)
that loads a spec file itself, from its path, and runs checks of it by name: nothing but
file names, check names and settings crosses the pipe, so a check sees the same process
state it would in a serial run (each check's inputs are drawn from its own seed).  Results
come back as pickled outcomes and are reported in the serial order; ``--save-failures``
files are written by the parent, in that order, so their names are those of a serial run.

A worker that dies (a segfault, ``os._exit``, the out-of-memory killer) turns the check it
was running into an error naming it; a new worker takes the remaining checks.  Workers run
in a session of their own: on Ctrl-C the parent kills them and reports what finished."""

from __future__ import annotations

import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from .render.report import Outcome
from .runner import Overrides, Selected, load_all, run_check, save_inputs, user_packages

#: BLAS / OpenMP thread counts a worker gets unless the user set them: N workers of one
#: thread each do not oversubscribe N cores
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
_HEADER = struct.Struct("!Q")


def available_cores() -> int:
    """The cores this process may run on (``-n auto``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Settings:
    """What every worker needs to load and run checks the way the parent would."""

    overrides: Overrides
    allow_python: bool
    debug: bool
    limits: object          # gradtool.engine.limits.Limits or None


@dataclass(frozen=True)
class Task:
    """One check, by its file and its name (unique within the file)."""

    index: int              # position in the run (the serial order)
    file: str
    name: str


def _write(stream, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read(stream):
    """One message, or None at the end of the stream (the other side is gone)."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    size = _HEADER.unpack(header)[0]
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


# --------------------------------------------------------------------------- worker side
def worker_main() -> None:
    """The hidden entry point: read a Settings, then Tasks until the end of stdin; answer
    each with ``(index, outcome, warnings)``.  What user code prints goes to stderr."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)        # the parent decides when to stop
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    settings: Settings = _read(requests)
    loaded: dict[str, dict[str, Selected]] = {}
    while True:
        task = _read(requests)
        if task is None:
            return
        outcome, caught = _run_task(task, settings, loaded)
        _write(replies, (task.index, outcome, caught))


def _run_task(task: Task, settings: Settings, loaded: dict) -> tuple[Outcome, list[str]]:
    if task.file not in loaded:
        checks, errors = load_all([Path(task.file)], allow_python=settings.allow_python,
                                  debug=settings.debug, limits=settings.limits)
        loaded[task.file] = {item.name: item for item in checks}
        if errors and not checks:
            loaded[task.file] = errors
    found = loaded[task.file]
    if not isinstance(found, dict) or task.name not in found:
        outcome = Outcome(task.file, task.name, status="error", exit_code=2)
        reason = found[0].message if not isinstance(found, dict) and found else \
            "the check is not in the file any more"
        outcome.message = f"a worker could not load the check: {reason}"
        return outcome, []
    item = found[task.name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome = run_check(item, settings.overrides, save_failures=None, debug=settings.debug)
    messages = list(dict.fromkeys(str(w.message).strip() for w in caught))
    result = outcome.result
    if result is not None and outcome.status == "passed":
        # only failures show Jacobians (-v) or save inputs: do not ship a passed check's
        for block in getattr(result, "blocks", ()):
            block.numerical = block.analytical = None
        result.inputs = []
    try:
        pickle.dumps(outcome.result)
    except Exception:  # noqa: BLE001  (a result holding unpicklable user objects: the report
        outcome.result = None                   # keeps its text and numbers, not its arrays)
    return outcome, messages


# --------------------------------------------------------------------------- parent side
def worker_environment() -> dict[str, str]:
    env = dict(os.environ)
    for name in THREAD_VARIABLES:
        env.setdefault(name, "1")
    # the worker imports this very gradtool: unless it is installed (site-packages) or in
    # the current folder, the folder it came from goes first on the worker's path
    import site
    root = Path(__file__).resolve().parent.parent
    found_anyway = {Path(entry).resolve() for entry in
                    [os.getcwd(), *site.getsitepackages(), site.getusersitepackages()]}
    if root not in found_anyway:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH"))
                                            if p)
    return env


class _Worker:
    def __init__(self, number: int, settings: Settings, replies: queue.Queue) -> None:
        self.number = number
        self.task: Task | None = None
        self.started = 0.0
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gradtool.parallel"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=worker_environment(),
            # a session of its own: a terminal's Ctrl-C reaches the parent only, which
            # then stops the workers (they would die mid-import with a traceback)
            start_new_session=True)
        self._send(settings)
        self.reader = threading.Thread(target=self._read, args=(replies,), daemon=True)
        self.reader.start()

    def _read(self, replies: queue.Queue) -> None:
        while True:
            try:
                message = _read(self.process.stdout)
            except Exception as error:  # noqa: BLE001  (a reply that cannot be unpickled)
                message = None
                replies.put((self, "broken", repr(error)))
                return
            if message is None:
                replies.put((self, "died", None))
                return
            replies.put((self, "done", message))

    def send(self, task: Task) -> None:
        self.task, self.started = task, time.perf_counter()
        self._send(task)

    def _send(self, message) -> None:
        try:
            _write(self.process.stdin, message)
        except OSError:     # it died: its reader reports that, with the task it was given
            pass

    def close(self) -> None:
        try:
            self.process.stdin.close()
        except OSError:
            pass

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.close()
        self.process.wait()


def died_message(process: subprocess.Popen) -> str:
    code = process.wait()
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        how = f"was killed by {name}"
        if -code == signal.SIGKILL:
            how += " (out of memory?)"
    else:
        how = f"exited with code {code}"
    return how


def crashed(item: Selected, process: subprocess.Popen, seconds: float = 0.0) -> Outcome:
    """The outcome of a check whose worker process died while running it."""
    outcome = Outcome(item.file, item.name, item.line, item.column, expect=item.expect,
                      tags=item.tags, status="error", time=seconds)
    how = died_message(process)
    if user_packages(item.spec):
        outcome.exit_code = 2
        outcome.message = (f"the worker process running check '{item.name}' {how}: the "
                           "check's python: code ended the process (a crash or os._exit "
                           "in user code)")
        outcome.hint = f"run it alone to see: gradtool check '{item.id}'"
    else:
        outcome.exit_code = 3
        outcome.message = (f"the worker process running check '{item.name}' {how}: a "
                           "gradtool bug (the check runs no python: code)")
        outcome.hint = "please report it, with the spec file"
    return outcome


class Pool:
    """``count`` worker processes, started at once: they import gradtool while the parent
    finds and loads the spec files.  A context manager: leaving it kills what is left."""

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings, self.replies, self.count = settings, queue.Queue(), count
        self.workers: list[_Worker] = []
        # one per core now; more (-n above the cores) once the number of checks is known
        for number in range(min(count, available_cores())):
            self.workers.append(_Worker(number, settings, self.replies))

    def grow(self, checks: int) -> None:
        """Up to ``count`` workers, but no more than there are checks."""
        for number in range(len(self.workers), min(self.count, checks)):
            self.workers.append(_Worker(number, self.settings, self.replies))

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc) -> None:
        for worker in self.workers:
            worker.kill()


def run_parallel(checks: list[Selected], started: Pool, *, fail_fast: bool = False,
                 save_failures: str | None = None, on_outcome=None) \
        -> tuple[list[Outcome], bool]:
    """Run ``checks`` in the pool's worker processes.  Returns the outcomes in the serial
    order and whether Ctrl-C stopped the run.  ``on_outcome(outcome, warnings)`` is called
    in the serial order, as soon as every check before it has finished.  With
    ``fail_fast`` the outcomes end at the first problem, as a serial ``-x`` run's do."""
    tasks = [Task(index, item.file, item.name) for index, item in enumerate(checks)]
    results: dict[int, Outcome] = {}
    pending = list(reversed(tasks))
    started.grow(len(tasks))
    settings, replies = started.settings, started.replies
    pool = started.workers          # the live workers (a dead one is replaced in place)
    stop_after = len(tasks)            # -x: no check after the first problem is reported
    reported = 0
    interrupted = False

    def report_ready(gaps: bool = False) -> None:
        """Hand on the outcomes whose predecessors all finished (``gaps``: every finished
        one, when Ctrl-C ended the run)."""
        nonlocal reported
        ready = sorted(i for i in results if reported <= i < stop_after) if gaps else []
        while reported < stop_after and reported in results:
            ready.append(reported)
            reported += 1
        for index in dict.fromkeys(ready):
            outcome, caught = results[index]
            if save_failures and outcome.status == "failed" and outcome.result is not None:
                save_inputs(outcome, outcome.result, save_failures)
            if on_outcome is not None:
                on_outcome(outcome, caught)
        if gaps:
            reported = stop_after

    def feed(worker: _Worker) -> bool:
        while pending and pending[-1].index >= stop_after:
            pending.pop()
        if not pending:
            worker.task = None
            worker.close()
            return False
        worker.send(pending.pop())
        return True

    try:
        for worker in list(pool):
            feed(worker)
        while any(w.task is not None for w in pool):
            worker, kind, message = replies.get()
            if worker not in pool:          # killed by -x, or already replaced
                continue
            task = worker.task
            if task is None:                # ended after its last task: nothing lost
                pool.remove(worker)
                worker.process.wait()
                continue
            if kind == "done":
                index, outcome, caught = message
                results[index] = (outcome, caught)
            else:                           # died (or answered garbage) while running it
                seconds = time.perf_counter() - worker.started
                if kind == "broken":
                    worker.kill()
                    outcome = Outcome(task.file, task.name, checks[task.index].line,
                                      checks[task.index].column, status="error",
                                      exit_code=3, time=seconds,
                                      message=f"the worker's report of check '{task.name}' "
                                              f"could not be read: {message}")
                else:
                    outcome = crashed(checks[task.index], worker.process, seconds)
                results[task.index] = (outcome, [])
                pool.remove(worker)
                worker.kill()
            if fail_fast and results[task.index][0].problem:
                stop_after = min(stop_after, task.index + 1)
                for other in list(pool):    # checks after the first problem are not run
                    if other.task is not None and other.task.index >= stop_after:
                        pool.remove(other)
                        other.kill()
            report_ready()
            if kind == "done":
                feed(worker)
            elif any(t.index < stop_after for t in pending):
                replacement = _Worker(worker.number, settings, replies)
                pool.append(replacement)
                feed(replacement)
    except KeyboardInterrupt:               # report what finished, then exit 130
        interrupted = True
    finally:
        for worker in list(pool):
            worker.kill()
            pool.remove(worker)
    report_ready(gaps=interrupted)
    return [results[i][0] for i in sorted(results) if i < stop_after], interrupted

if __name__ == "__main__":
    worker_main()
