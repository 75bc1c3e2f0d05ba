"""Graph rendering against torch (a Python walk of ``grad_fn.next_functions``, what a torch
user writes to inspect or draw a graph), same run, same machine.

    python bench/graph.py [--quick]

One row per workload as it finishes:

* ``gradtool graph --full --format F`` of a 100,000-op chain (``y = y * 1.0001`` in a spec
  module), for F in tree, dot, json, mermaid: the whole command in a fresh process (start-up,
  building the chain, rendering), with its peak RSS and output bytes per node; torch: a fresh
  process building the same chain and writing it as DOT with an iterative walk.  Goals:
  each < 5 s, peak RSS < 1 GiB, < 200 bytes per node.
* the default (bounded) summary of a 1,000,000-node chain, in process: gradtool's walk and
  tree against torch's walk counting nodes by type.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import HEADER, need_torch, row  # noqa: E402

import gradtool as gt  # noqa: E402
from gradtool.render.graphview import build_view  # noqa: E402
from gradtool.render.tree import render_text  # noqa: E402

torch = need_torch("bench/graph.py")
ROOT = Path(__file__).resolve().parents[1]

CHAIN_MODULE = '''
import gradtool as gt


class Chain(gt.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.n = n

    def forward(self, x):
        for _ in range(self.n):
            x = x * 1.0001
        return x
'''

SPEC = """version: 1
modules:
  chain: {{python: bench_graph_chain:Chain, args: [{n}]}}
checks:
  - name: chain
    expr: chain(x)
    inputs:
      x: [1.0, 2.0, 3.0]
"""

# a child process that runs a command, then reports its own peak RSS (KiB) on stderr
MEASURED = """
import resource, runpy, sys
sys.argv = {argv!r}
try:
    runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
except SystemExit as stop:
    if stop.code not in (0, None):
        raise
print("peak-rss-kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""

TORCH_DOT = """
import sys, torch
n = int(sys.argv[1])
x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
y = x
for _ in range(n):
    y = y * 1.0001
names, lines, stack = {}, ["digraph backward {"], [y.grad_fn]
names[y.grad_fn] = "n0"
while stack:
    node = stack.pop()
    key = names[node]
    lines.append(f'  {key} [label="{type(node).__name__}"];')
    for child, _ in node.next_functions:
        if child is None:
            continue
        if child not in names:
            names[child] = f"n{len(names)}"
            stack.append(child)
        lines.append(f"  {key} -> {names[child]};")
lines.append("}")
sys.stdout.write("\\n".join(lines) + "\\n")
"""
TORCH_EXIT = "sys.stdout.flush()\nsys.stderr.flush()\nimport os\nos._exit(0)\n"


TORCH_SUMMARY = """
import os, sys, time, torch
n = int(sys.argv[1])
x = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
y = x
for _ in range(n):
    y = y * 1.0
start = time.perf_counter()
counts, seen, stack = {}, {y.grad_fn}, [y.grad_fn]
while stack:
    node = stack.pop()
    counts[type(node).__name__] = counts.get(type(node).__name__, 0) + 1
    for child, _ in node.next_functions:
        if child is not None and child not in seen:
            seen.add(child)
            stack.append(child)
print(time.perf_counter() - start, flush=True)
os._exit(0)
"""


def run_measured(code: str, cwd: str) -> tuple[float, int, int]:
    """(seconds, peak RSS in KiB, stdout bytes) of ``python -c code`` in ``cwd``."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"benchmark child failed:\n{proc.stderr.decode(errors='replace')}")
    peak = 0
    for line in proc.stderr.decode().splitlines():
        if line.startswith("peak-rss-kib"):
            peak = int(line.split()[1])
    return elapsed, peak, len(proc.stdout)


def full_render_rows(n: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "bench_graph_chain.py").write_text(CHAIN_MODULE)
        Path(folder, "chain.yaml").write_text(SPEC.format(n=n))
        torch_code = TORCH_DOT.replace("import sys, torch", "import sys, torch\n"
                                       f"sys.argv = ['x', '{n}']") + \
            "\nimport resource\nprint('peak-rss-kib', resource.getrusage(" \
            "resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n" + TORCH_EXIT
        theirs, their_peak, _ = run_measured(torch_code, folder)
        for fmt in ("tree", "dot", "json", "mermaid"):
            argv = ["gradtool", "graph", "--spec", "chain.yaml", "--check", "chain", "--full",
                    "--format", fmt]
            code = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + \
                MEASURED.format(argv=argv, module="gradtool")
            ours, peak, size = run_measured(code, folder)
            row(f"graph --full --format {fmt}, {n:,}-op chain (CLI, s)", ours, theirs,
                unit="s", note=f"peak RSS {peak / 1024:.0f} MiB (torch {their_peak / 1024:.0f}), "
                               f"{size / (n + 1):.0f} bytes/node")


def summary_row(n: int) -> None:
    x = gt.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(n):
        y = y * 1.0
    start = time.perf_counter()
    text = render_text(build_view([y], {id(x): "x"}))
    ours = time.perf_counter() - start
    # torch's side in a child process: freeing a deep torch graph whose nodes were seen from
    # Python overflows the C stack (a segfault at exit), so the child leaves with os._exit
    proc = subprocess.run([sys.executable, "-c", TORCH_SUMMARY, str(n)], capture_output=True,
                          check=True)
    theirs = float(proc.stdout.decode().split()[-1])
    row(f"graph summary of a {n:,}-node chain (walk + tree, s)", ours, theirs, unit="s",
        note=f"{len(text.splitlines())} lines")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller graphs")
    args = parser.parse_args()
    print(HEADER, flush=True)
    full_render_rows(20_000 if args.quick else 100_000)
    summary_row(100_000 if args.quick else 1_000_000)


if __name__ == "__main__":
    main()
