"""Scale-out (issue 17): 40 generated checks of about 0.5 s each, run by the CLI

    python bench/scale_out.py [--quick] [--checks 40] [--seconds 0.5]

* ``gradtool check -n 2`` against the serial run: wall time ratio (target <= 0.6 on 2 cores);
  their JSON reports are compared too (times and dates left out);
* ``--shard 1/4`` .. ``4/4``: together exactly the serial set of checks, each once;
* ``gradtool report merge`` of the 4 shard reports: equal to the serial report, same exit code.

Each check's size is calibrated first (a full-mode check whose cost grows about as the
square of its input's rows: its batched Jacobian columns are rows x 8 of rows x 8 each) so
that one check takes about ``--seconds`` on this machine.  ``--quick``: checks of about
0.2 s (what bench/run_all.py runs).  One BLAS thread everywhere (the workers' default).
The -n 2 target needs 2 idle cores: the checks' own times are printed beside the wall
times, and grow when other load takes a core.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))

CHECK = """\
  - name: c{index:02d}
    expr: (x.tanh().mm(w)).sin().sum()
    inputs: {{x: {{shape: [{rows}, 8]}}, w: {{shape: [8, 8]}}}}
    seed: {index}
    mode: full
"""


def write_specs(folder: Path, count: int, rows: int) -> None:
    """``count`` checks over 4 spec files (so shards and workers cross file boundaries)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    for part in range(4):
        body = "".join(CHECK.format(index=i, rows=rows) for i in range(count) if i % 4 == part)
        if body:
            (folder / f"part{part}.yaml").write_text("version: 1\nchecks:\n" + body)


def gradtool(*args, cwd: Path) -> tuple[int, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gradtool", "check", *args], cwd=cwd,
                          env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, check=False)
    if done.returncode not in (0, 1):
        sys.exit(f"gradtool check {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.returncode, time.perf_counter() - start


def calibrate(folder: Path, seconds: float) -> tuple[int, float]:
    """Rows for one check to take about ``seconds`` (its cost grows about as rows^2)."""
    rows = 250
    for _ in range(3):
        write_specs(folder, 1, rows)
        _, _ = gradtool("specs", "--format", "json", "--output", "one.json", cwd=folder.parent)
        took = json.loads((folder.parent / "one.json").read_text())["checks"][0]["time"]
        step = (seconds / max(took, 1e-3)) ** 0.5
        rows = max(8, int(rows * min(2.0, max(0.5, step))))     # a step at most 2x
    return rows, took


def stable(document):
    if isinstance(document, dict):
        return {key: stable(value) for key, value in document.items()
                if key not in ("time", "wall_time", "created")}
    if isinstance(document, list):
        return [stable(value) for value in document]
    return document


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="checks of about 0.2 s")
    parser.add_argument("--checks", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=None,
                        help="time of one check (default 0.5, --quick 0.2)")
    args = parser.parse_args()
    seconds = args.seconds or (0.2 if args.quick else 0.5)
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        specs = work / "specs"
        rows, took = calibrate(specs, seconds)
        write_specs(specs, args.checks, rows)
        print(f"{args.checks} checks of {rows} x 8 rows (one took {took:.2f} s at the last "
              f"calibration step); {os.cpu_count()} cores", flush=True)
        code, serial = gradtool("specs", "--format", "json", "--output", "serial.json",
                                cwd=work)
        code_n, parallel = gradtool("specs", "-n", "2", "--format", "json", "--output",
                                    "parallel.json", cwd=work)
        ratio = parallel / serial
        # the checks' own times: in -n 2 they grow when the 2 workers do not get 2 cores
        # (other load on the machine), which the wall time ratio alone would not tell
        sums = [sum(c["time"] for c in json.loads((work / name).read_text())["checks"])
                for name in ("serial.json", "parallel.json")]
        print(f"{'serial':28s} {serial:7.2f} s   checks' own times {sums[0]:.2f} s",
              flush=True)
        print(f"{'-n 2':28s} {parallel:7.2f} s   checks' own times {sums[1]:.2f} s   "
              f"ratio {ratio:.2f} (target <= 0.6)", flush=True)
        print(f"{'load average (1 min)':28s} {os.getloadavg()[0]:7.2f}", flush=True)
        reference = stable(json.loads((work / "serial.json").read_text()))
        if stable(json.loads((work / "parallel.json").read_text())) != reference \
                or code != code_n:
            problems.append("-n 2 report differs from the serial one")
        if ratio > 0.6:     # a target, not a correctness problem: reported, exit 0
            print(f"MISSED TARGET: -n 2 / serial = {ratio:.2f} > 0.6 (needs 2 idle cores)",
                  flush=True)
        ids, shard_time = [], 0.0
        for k in range(1, 5):
            _, took = gradtool("specs", "--shard", f"{k}/4", "--format", "json", "--output",
                               f"shard{k}.json", cwd=work)
            shard_time += took
            ids += [c["id"] for c in json.loads((work / f"shard{k}.json").read_text())
                    ["checks"]]
        same_set = sorted(ids) == sorted(c["id"] for c in reference["checks"]) and \
            len(ids) == len(set(ids))
        print(f"{'shards 1/4..4/4 (one by one)':28s} {shard_time:7.2f} s   "
              f"exactly the serial set: {same_set}", flush=True)
        if not same_set:
            problems.append("the shards do not run exactly the serial set")
        merged = subprocess.run([sys.executable, "-m", "gradtool", "report", "merge",
                                 *(f"shard{k}.json" for k in range(1, 5)), "--format",
                                 "json", "--output", "merged.json"], cwd=work, env=ENV,
                                check=False, capture_output=True, text=True)
        equal = merged.returncode == code and \
            stable(json.loads((work / "merged.json").read_text())) == reference
        print(f"{'report merge of 4 shards':28s} equal to the serial report, same exit "
              f"code: {equal}", flush=True)
        if not equal:
            problems.append("the merged report differs from the serial one")
    for problem in problems:
        print(f"PROBLEM: {problem}", flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
