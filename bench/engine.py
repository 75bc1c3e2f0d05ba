"""Engine benchmarks against torch (CPU), measured in the same run on the same machine.

    python bench/engine.py [--quick]

Prints one line per workload: gradtool time, torch time, ratio (gradtool / torch; < 1 means
gradtool is faster).  Workloads:

* the seeds' 2-layer net training step (N=64, D_in=1000, H=100, D_out=10), 100 steps, float32
  on both sides (``x.mm(w1).clamp(min=0).mm(w2)``, squared-error sum, SGD under no_grad);
* a chain of 100,000 ops ``y = y * 1.0001`` on a 3-element tensor, forward + backward
  (per-op overhead, in microseconds per op);
* a chain of 1,000,000 ops (must complete; memory grows with the graph only).

numpy's BLAS is OpenBLAS; torch uses its own. On machines that set OPENBLAS_CORETYPE (see
the env notes), run with ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`` for numpy's
fastest kernels; the script prints which BLAS settings it ran with.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import gradtool as gt  # noqa: E402


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def two_layer(lib, steps: int):
    n, d_in, h, d_out = 64, 1000, 100, 10
    rng = np.random.default_rng(0)
    data = [rng.standard_normal(s).astype(np.float32)
            for s in ((n, d_in), (n, d_out), (d_in, h), (h, d_out))]

    def run():
        if lib == "gradtool":
            x, y = gt.from_numpy(data[0]), gt.from_numpy(data[1])
            w1 = gt.tensor(data[2], requires_grad=True)
            w2 = gt.tensor(data[3], requires_grad=True)
            no_grad = gt.no_grad
        else:
            import torch
            x, y = torch.from_numpy(data[0]), torch.from_numpy(data[1])
            w1 = torch.tensor(data[2], requires_grad=True)
            w2 = torch.tensor(data[3], requires_grad=True)
            no_grad = torch.no_grad
        lr = 1e-6
        for _ in range(steps):
            y_pred = x.mm(w1).clamp(min=0).mm(w2)
            loss = (y_pred - y).pow(2).sum()
            loss.backward()
            with no_grad():
                w1 -= lr * w1.grad
                w2 -= lr * w2.grad
                w1.grad.zero_()
                w2.grad.zero_()
        return loss.item()
    return run


def chain(lib, n: int):
    def run():
        if lib == "gradtool":
            x = gt.tensor([1.0, 2.0, 3.0], requires_grad=True)
        else:
            import torch
            x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
        y = x
        for _ in range(n):
            y = y * 1.0001
        y.sum().backward()
        return x.grad
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeat = 2 if args.quick else 5
    try:
        import torch
        torch.set_num_threads(os.cpu_count() or 1)
    except ImportError:
        torch = None
    blas = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    print(f"numpy {np.__version__}, torch {torch.__version__ if torch else 'absent'}, "
          f"BLAS env {blas}")
    print(f"{'workload':44s} {'gradtool':>10s} {'torch':>10s} {'ratio':>7s}")

    def report(name, ours, theirs, unit="s", scale=1.0):
        ratio = f"{ours / theirs:7.2f}" if theirs else "    n/a"
        theirs_s = f"{theirs * scale:9.3f}{unit}" if theirs else "       n/a"
        print(f"{name:44s} {ours * scale:9.3f}{unit} {theirs_s} {ratio}")

    ours = best_of(two_layer("gradtool", 100), repeat)
    theirs = best_of(two_layer("torch", 100), repeat) if torch else None
    report("2-layer net, 100 SGD steps, float32", ours, theirs)

    n = 100_000
    ours = best_of(chain("gradtool", n), repeat)
    theirs = best_of(chain("torch", n), repeat) if torch else None
    report(f"chain of {n:,} muls, fwd+bwd (us/op)", ours / n, theirs / n if theirs else None,
           unit="us", scale=1e6)

    n = 1_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ours = best_of(chain("gradtool", n), 1)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    theirs = best_of(chain("torch", n), 1) if torch else None
    report(f"chain of {n:,} muls, fwd+bwd", ours, theirs)
    print(f"  peak RSS grew by {(after - before) / 1024:.0f} MiB during the gradtool 1M chain "
          f"({(after - before) * 1024 / n:.0f} bytes per op)")


if __name__ == "__main__":
    main()
