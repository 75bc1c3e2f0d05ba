"""gradtool's gradcheck and gradgradcheck against torch.autograd's (float64), same workloads,
same run.

    python bench/gradcheck.py [--budget SECONDS]

One row per workload and mode as it finishes: gradtool time, torch time, ratio (gradtool /
torch; lower is better).  One BLAS thread on both sides.  Times are the best of alternating
blocks of runs (one warm-up run each first); the number of runs adapts to the workload so
that each row takes about ``--budget`` seconds (default 1.5); rows of seconds (tanh(x)*sin(x)
of 4000 and 8000, full) take the better of two runs per side.

gradgradcheck rows (``gradgradcheck full`` / ``fast``), after a workload's gradcheck rows, for
the workloads up to tanh(x)*sin(x) of 1000 (second derivatives through the first-order
graph; over 1000 elements a full gradgradcheck takes seconds on both sides): a third of the
budget each, and a row whose runs take over 0.3 s is one run per side (warmed up by the
workload's gradcheck rows).
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import HEADER, best_times, clock, need_torch, row  # noqa: E402

import numpy as np  # noqa: E402

import gradtool as gt  # noqa: E402

torch = need_torch("bench/gradcheck.py")


# ---- workloads: (name, gradtool fn, gradtool inputs, torch fn, torch inputs, gradcheck modes,
# ----             gradgradcheck modes) ------------------------------------------------------------
class LegendreP3(gt.autograd.Function):
    """P3(x) = (5x^3 - 3x) / 2, with its hand-written backward, written as the seed writes
    it (no batching declaration: the engine finds that it batches)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 0.5 * (5 * x ** 3 - 3 * x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * x ** 2 - 1)


class TorchLegendreP3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 0.5 * (5 * x ** 3 - 3 * x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * x ** 2 - 1)


def _pair(arr, requires_grad=True):
    g = gt.tensor(arr, requires_grad=requires_grad)
    t = torch.tensor(arr, dtype=torch.float64, requires_grad=requires_grad)
    return g, t


def workloads():
    rng = np.random.default_rng(0)
    out = []

    x = np.linspace(-1, 1, 200)
    gx, tx = _pair(x, False)
    scalars = [_pair(np.array(v)) for v in rng.standard_normal(4) * 0.5]
    out.append(("legendre a+b*P3(c+d*x), x: 200",
                lambda a, b, c, d: a + b * LegendreP3.apply(c + d * gx),
                tuple(s[0] for s in scalars),
                lambda a, b, c, d: a + b * TorchLegendreP3.apply(c + d * tx),
                tuple(s[1] for s in scalars), ("full", "fast"), ("full", "fast")))

    n, d_in, h, d_out = 8, 20, 10, 5
    gxx, txx = _pair(rng.standard_normal((n, d_in)), False)
    gy, ty = _pair(rng.standard_normal((n, d_out)), False)
    gw1, tw1 = _pair(rng.standard_normal((d_in, h)))
    gw2, tw2 = _pair(rng.standard_normal((h, d_out)))
    out.append(("2-layer net loss (w1, w2)",
                lambda w1, w2: ((gxx.mm(w1).clamp(min=0).mm(w2) - gy) ** 2).sum(), (gw1, gw2),
                lambda w1, w2: ((txx.mm(w1).clamp(min=0).mm(w2) - ty) ** 2).sum(), (tw1, tw2),
                ("full", "fast"), ("full", "fast")))

    g, t = _pair(rng.standard_normal(100))
    out.append(("((x+2)*(x+2)*3).mean(), 100",
                lambda x: ((x + 2) * (x + 2) * 3).mean(), (g,),
                lambda x: ((x + 2) * (x + 2) * 3).mean(), (t,), ("full", "fast"),
                ("full", "fast")))

    if hasattr(gt, "cross_entropy"):
        g, t = _pair(rng.standard_normal((16, 10)))
        target = rng.integers(0, 10, 16)
        gtarget, ttarget = gt.tensor(target), torch.tensor(target)
        out.append(("cross_entropy 16x10",
                    lambda z: gt.cross_entropy(z, gtarget), (g,),
                    lambda z: torch.nn.functional.cross_entropy(z, ttarget), (t,),
                    ("full", "fast"), ("full", "fast")))
    else:
        print("(cross_entropy: gt.cross_entropy does not exist yet, skipped)")

    for size, modes, gg_modes in ((1000, ("full", "fast"), ("full", "fast")),
                                  (4000, ("full",), ()), (8000, ("full",), ())):
        g, t = _pair(rng.standard_normal(size))
        out.append((f"tanh(x)*sin(x), {size}",
                    lambda x: gt.tanh(x) * gt.sin(x), (g,),
                    lambda x: torch.tanh(x) * torch.sin(x), (t,), modes, gg_modes))
    return out


def _timed(fn) -> float:
    start = clock()
    assert fn() is not False
    return clock() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=1.5,
                        help="seconds of timed runs per row (default 1.5)")
    args = parser.parse_args()
    print(HEADER, flush=True)
    checkers = {"gradcheck": (gt.gradcheck, torch.autograd.gradcheck),
                "gradgradcheck": (gt.gradgradcheck, torch.autograd.gradgradcheck)}
    for name, gfn, gin, tfn, tin, modes, gg_modes in workloads():
        for checker, checker_modes in (("gradcheck", modes), ("gradgradcheck", gg_modes)):
            ours_check, theirs_check = checkers[checker]
            budget = args.budget / (3 if checker == "gradgradcheck" else 1)
            for mode in checker_modes:
                fast = mode == "fast"
                ours_fn = functools.partial(ours_check, gfn, gin, fast_mode=fast)
                theirs_fn = functools.partial(theirs_check, tfn, tin, fast_mode=fast)
                first = [_timed(ours_fn), _timed(theirs_fn)]
                repeat = max(1, min(5, int(budget / (3 * sum(first)))))
                if checker == "gradgradcheck" and sum(first) > 0.3:
                    ours, theirs = first      # warmed up by the workload's gradcheck rows
                elif repeat == 1:
                    # rows of seconds: the first runs were the warm-up, one more run each
                    ours = min(first[0], _timed(ours_fn))
                    theirs = min(first[1], _timed(theirs_fn))
                else:
                    ours, theirs = best_times(ours_fn, theirs_fn, repeat, rounds=3)
                row(f"{checker} {mode}: {name}", ours, theirs)


if __name__ == "__main__":
    main()
