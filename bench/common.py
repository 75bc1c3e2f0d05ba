"""Shared by the benchmarks: one BLAS thread on both sides, timing that alternates gradtool
and torch in CPU time (load from other processes is not counted), one printed row per
workload.

Import this before numpy: it sets ``OPENBLAS_NUM_THREADS=1`` (and the OpenMP/MKL
equivalents) unless the caller set them, and torch's intra-op threads to 1."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

try:
    import torch
    torch.set_num_threads(1)
except ImportError:     # pragma: no cover
    torch = None


def need_torch(script: str):
    if torch is None:
        sys.exit(f"{script} needs torch: every row is a ratio against torch in the same run")
    return torch


#: The clock of the in-process rows: the CPU time of this process.  Both sides run on one
#: thread here, so it is their compute time; unlike the wall clock it does not count the
#: time other processes hold the CPU (on a shared 2-core machine, wall-clock ratios of the
#: small rows moved by +-15% from run to run).
clock = time.process_time


def best_times(first, second, repeat: int, rounds: int = 3) -> tuple[float, float]:
    """Best time of each callable over ``rounds`` rounds of ``repeat`` runs, the two
    alternating by blocks, after one warm-up call of each (CPU time, see ``clock``)."""
    first()
    second()
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for k, fn in enumerate((first, second)):
            for _ in range(repeat):
                start = clock()
                fn()
                best[k] = min(best[k], clock() - start)
    return best[0], best[1]


HEADER = f"{'workload':52s} {'gradtool':>11s} {'torch':>11s} {'ratio':>7s}"


def row(name: str, ours: float, theirs: float, unit: str = "ms", note: str = "") -> float:
    """Print one row (times in seconds, shown in ``unit``) and return the ratio."""
    scale = {"s": 1.0, "ms": 1e3, "us": 1e6}[unit]
    ratio = ours / theirs
    print(f"{name:52s} {ours * scale:9.3f}{unit:>2s} {theirs * scale:9.3f}{unit:>2s} "
          f"{ratio:7.2f}{'  ' + note if note else ''}", flush=True)
    return ratio
