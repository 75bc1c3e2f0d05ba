"""Engine benchmarks against torch (CPU, one BLAS thread on both sides), same run, same machine.

    python bench/engine.py [--quick]

One row per workload as it finishes: gradtool time, torch time, ratio (gradtool / torch;
< 1 means gradtool is faster).  Workloads:

* tiny tensors: two 3-element leaves created from lists, one op, ``.sum()``, ``backward()``
  (add, mul, exp, tanh, matmul, reshape; then their median ratio): the fixed per-call cost;
* the seeds' 2-layer net training step (N=64, D_in=1000, H=100, D_out=10), float32 on both
  sides (``x.mm(w1).clamp(min=0).mm(w2)``, squared-error sum, SGD in place under no_grad);
* a chain of 100,000 ops ``y = y * 1.0001`` on a 3-element tensor, forward + backward
  (per-op overhead, in microseconds per op);
* a chain of 1,000,000 ops (must complete), and the memory returned once it is dropped.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import HEADER, best_times, need_torch, row  # noqa: E402

import numpy as np  # noqa: E402

import gradtool as gt  # noqa: E402

torch = need_torch("bench/engine.py")

TINY_OPS = {
    "add": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "exp": lambda a, b: a.exp(),
    "tanh": lambda a, b: a.tanh(),
    "matmul": lambda a, b: a @ b,
    "reshape": lambda a, b: a.reshape(3, 1),
}


def tiny(lib, op, steps: int):
    def run():
        for _ in range(steps):
            a = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
            b = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
            op(a, b).sum().backward()
    return run


def two_layer(lib, steps: int):
    n, d_in, h, d_out = 64, 1000, 100, 10
    rng = np.random.default_rng(0)
    data = [rng.standard_normal(s).astype(np.float32)
            for s in ((n, d_in), (n, d_out), (d_in, h), (h, d_out))]

    def run():
        x, y = lib.from_numpy(data[0]), lib.from_numpy(data[1])
        w1 = lib.tensor(data[2], requires_grad=True)
        w2 = lib.tensor(data[3], requires_grad=True)
        lr = 1e-6
        for _ in range(steps):
            y_pred = x.mm(w1).clamp(min=0).mm(w2)
            loss = (y_pred - y).pow(2).sum()
            loss.backward()
            with lib.no_grad():
                w1 -= lr * w1.grad
                w2 -= lr * w2.grad
                w1.grad.zero_()
                w2.grad.zero_()
        return loss.item()
    return run


def largest_product(steps: int):
    """The step's largest matrix product (done twice per step: x @ w1 forward, xᵀ @ g
    backward) in numpy's BLAS and in torch's: the part of the step's ratio that is the BLAS
    libraries', not gradtool's."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((64, 1000)).astype(np.float32)
    b = rng.standard_normal((1000, 100)).astype(np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)

    def ours():
        for _ in range(steps):
            np.matmul(a, b)

    def theirs():
        for _ in range(steps):
            torch.mm(ta, tb)
    return ours, theirs


def chain(lib, n: int):
    def run():
        if lib is gt:
            x = gt.tensor([1.0, 2.0, 3.0], requires_grad=True)
        else:
            x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
        y = x
        for _ in range(n):
            y = y * 1.0001
        y.sum().backward()
        return x.grad
    return run


def rss_mib() -> float:
    """Resident memory now (not the peak), from /proc; 0 where there is none."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
    except OSError:
        return 0.0
    import resource
    return pages * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no 1M chain")
    args = parser.parse_args()
    repeat = 2 if args.quick else 3
    print(f"numpy {np.__version__}, torch {torch.__version__}, one BLAS thread")
    print(HEADER)

    ratios = []
    steps = 200
    for name, op in TINY_OPS.items():
        ours, theirs = best_times(tiny(gt, op, steps), tiny(torch, op, steps), repeat)
        ratios.append(row(f"tiny: two leaves, {name}, sum, backward (us/step)",
                          ours / steps, theirs / steps, unit="us"))
    print(f"{'tiny: median ratio of the six':52s} {'':>11s} {'':>11s} "
          f"{statistics.median(ratios):7.2f}", flush=True)

    steps = 20
    ours, theirs = best_times(two_layer(gt, steps), two_layer(torch, steps), repeat)
    blas = best_times(*largest_product(steps), repeat)
    row("2-layer net step, float32 (ms/step)", ours / steps, theirs / steps,
        note=f"its largest product alone, 64x1000 @ 1000x100: numpy {blas[0] / steps * 1e6:.0f} "
             f"us, torch {blas[1] / steps * 1e6:.0f} us ({blas[0] / blas[1]:.2f})")

    n = 100_000
    ours, theirs = best_times(chain(gt, n), chain(torch, n), 1, rounds=1)
    row(f"chain of {n:,} muls, fwd+bwd (us/op)", ours / n, theirs / n, unit="us")

    if args.quick:
        return
    n = 1_000_000
    gc.collect()
    before = rss_mib()
    start = time.perf_counter()
    chain(gt, n)()
    ours = time.perf_counter() - start
    gc.collect()
    after = rss_mib()
    start = time.perf_counter()
    chain(torch, n)()
    theirs = time.perf_counter() - start
    row(f"chain of {n:,} muls, fwd+bwd (s)", ours, theirs, unit="s",
        note=f"RSS {before:.0f} MiB before, {after:.0f} MiB after (graph freed)")


if __name__ == "__main__":
    main()
