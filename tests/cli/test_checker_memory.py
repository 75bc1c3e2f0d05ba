"""Under a memory budget (spec checks) the checker's own arrays count too: a check whose
Jacobians or fast-mode directions would not fit is refused before it starts, quickly."""

import time

import pytest

SPEC = """\
version: 1
modules:
  lin: {{Linear: [{n}, {n}]}}
checks:
  - name: big
    expr: {expr}
    inputs: {{x: {{shape: [{n}]}}}}
    wrt: [params]
    mode: {mode}
"""


@pytest.mark.parametrize("mode, n, expr", [("fast", 600, "lin(x).sum()"),
                                           ("auto", 600, "lin(x).sum()"),
                                           ("full", 200, "lin(x)")])
def test_checker_working_memory_is_charged(run, spec_dir, mode, n, expr):
    spec_dir("s.yaml", SPEC.format(n=n, mode=mode, expr=expr))
    start = time.perf_counter()
    result = run("check", "s.yaml", "--max-memory", "16MB")
    assert result.exit_code == 2, result.output
    assert "the checker's working memory" in result.output
    assert "--max-memory" in result.output
    assert time.perf_counter() - start < 30          # refused up front, not after the work
    if mode != "full":
        assert run("check", "s.yaml", "--max-memory", "1GiB").exit_code == 0
