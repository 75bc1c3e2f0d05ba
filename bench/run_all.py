"""Every benchmark, one after the other, each row printed as it finishes:

    python bench/run_all.py [--quick]

engine.py (per-op cost, tiny tensors, the 2-layer net, long chains), graph.py (graph
rendering) and gradcheck.py (the checker), each in its own process with one BLAS thread:
every row is gradtool's time, torch's time measured in the same run, and their ratio.
scale_out.py (``check -n 2`` vs serial, shards, merge; always ``--quick`` here: checks of
0.2 s instead of 0.5 s, about 25 s).
About 2.5 minutes on 2 cores (``--quick``: about 1.5).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ("engine.py", "graph.py", "gradcheck.py", "scale_out.py")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads")
    args = parser.parse_args()
    start = time.perf_counter()
    failed = []
    for script in SCRIPTS:
        extra = ["--quick"] if args.quick and script != "gradcheck.py" else []
        if args.quick and script == "gradcheck.py":
            extra = ["--budget", "0.5"]
        if script == "scale_out.py":
            extra = ["--quick"]
        print(f"\n== bench/{script} {' '.join(extra)}".rstrip(), flush=True)
        if subprocess.run([sys.executable, str(HERE / script), *extra], check=False).returncode:
            failed.append(script)
    print(f"\nall benchmarks: {time.perf_counter() - start:.0f} s"
          + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
