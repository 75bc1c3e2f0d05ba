"""User inputs that once gave exit 3 ("a bug in gradtool"): each gets a verdict or a located
user error."""

import pytest

SPECS = {
    "gradgrad_forward_integer_output": ("""\
version: 1
checks:
  - name: c
    expr: {expr}
    inputs: {{x: {{shape: [3]}}}}
    gradgrad: true
    method: forward
""", ["x.long()", "x.argmax()", "x.sum().long()", "(x * 2).to(int64)"], 0),
    "forward_ad_empty_input": ("""\
version: 1
checks:
  - name: c
    expr: {expr}
    inputs: {{x: {{shape: [0]}}, y: {{shape: [2]}}}}
    forward_ad: true
""", ["x * 2", "x.sum() + y * y", "y.tanh()"], 0),
    "forward_ad_fast_huge_value": ("""\
version: 1
checks:
  - name: c
    expr: {expr}
    inputs: {{x: {{value: [1e20, 2.0, -3.0]}}}}
    forward_ad: true
    mode: fast
""", ["x * x", "x.exp() * 0 + x * x"], 1),
}


@pytest.mark.parametrize("case", sorted(SPECS))
def test_no_internal_error(run, spec_dir, case):
    template, exprs, expected = SPECS[case]
    for expr in exprs:
        spec_dir("s.yaml", template.format(expr=expr))
        result = run("check", "s.yaml")
        assert result.exit_code == expected, (expr, result.output)
        assert "internal error" not in result.output


def test_module_constructor_failing_when_a_check_builds_it(run, spec_dir):
    spec_dir("flaky.py", """\
import gradtool as gt
BUILT = [0]


class Flaky(gt.nn.Module):
    def __init__(self):
        super().__init__()
        BUILT[0] += 1
        if BUILT[0] > 1:
            raise MemoryError()
        self.lin = gt.nn.Linear(3, 3)

    def forward(self, x):
        return self.lin(x)
""")
    spec_dir("s.yaml", """\
version: 1
modules:
  f: {python: "flaky:Flaky"}
checks:
  - name: c
    expr: f(x)
    inputs: {x: {shape: [3]}}
""")
    result = run("check", "s.yaml")
    assert result.exit_code == 2, result.output
    assert "s.yaml:3:" in result.output and "cannot be built: MemoryError" in result.output
    assert "internal error" not in result.output and "_BuildError" not in result.output
