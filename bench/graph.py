"""How long ``gradtool graph`` takes to summarize a 1,000,000-node graph (not a test).

Builds ``x * 1.0`` chained 1,000,000 times through the Python API (1,000,000 MulBackward0
nodes and the AccumulateGrad leaf), then times the walk (totals, in-degrees, depth) and
the bounded tree render separately.  Target: render under 5 s.

    python bench/graph.py [N]
"""

from __future__ import annotations

import sys
import time

import gradtool as gt
from gradtool.render.graphview import build_view, walk_stats
from gradtool.render.tree import render_text


def main(n_ops: int = 1_000_000) -> None:
    x = gt.tensor([1.0], requires_grad=True)
    start = time.perf_counter()
    y = x
    for _ in range(n_ops):
        y = y * 1.0
    built = time.perf_counter()
    stats, indeg = walk_stats([y.grad_fn])
    walked = time.perf_counter()
    view = build_view([y], {id(x): "x"}, stats=stats, indeg=indeg)
    text = render_text(view)
    rendered = time.perf_counter()
    print(text)
    print(f"graph of {stats.nodes:,} nodes: build {built - start:.2f} s (not counted), "
          f"walk {walked - built:.2f} s, view + tree {rendered - walked:.2f} s, "
          f"render total {rendered - built:.2f} s, {len(text.splitlines())} lines")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
