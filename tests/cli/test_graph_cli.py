"""``gradtool graph`` on the seed examples: PyTorch's node names, sharing, formats, files."""

import json
import shutil
from pathlib import Path

import pytest

BASICS = "((x + 2) * (x + 2) * 3).mean()"
SPECS = Path(__file__).resolve().parents[2] / "specs"


def test_seed_example_tree(run):
    result = run("graph", "y = x + 2\n(y * y * 3).mean()", "-i", "x=[1,2,3]")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("MeanBackward0")
    assert lines[1] == "└── MulBackward0"
    assert lines[2] == "    └── MulBackward0"
    assert lines[3] == "        ├── AddBackward0 #1"
    assert lines[4] == "        │   └── AccumulateGrad  x: float64[3]"
    assert lines[5] == "        └── ↑ AddBackward0 #1 (shared, shown above)"
    assert "5 nodes, 5 edges, depth 4, 1 leaf" in result.stdout


def test_two_additions_share_the_leaf(run):
    result = run("graph", BASICS, "-i", "x=[1,2,3]")
    assert result.exit_code == 0
    assert result.stdout.count("AddBackward0") == 2 + 1     # two nodes + by-type line
    assert "↑ AccumulateGrad #1 (shared, shown above)" in result.stdout


def test_saved_and_grads(run):
    result = run("graph", BASICS, "-i", "x=[1,2,3]", "--saved", "--grads")
    assert result.exit_code == 0
    assert "_saved_self = float64[3] [3., 4., 5.]" in result.stdout
    assert "grad = float64[3] [ 6.,  8., 10.]" in result.stdout    # d/dx at the leaf


@pytest.mark.parametrize("fmt,marker", [("dot", "digraph backward {"),
                                        ("mermaid", "flowchart TD"),
                                        ("json", '"kind": "graph"')])
def test_formats(run, fmt, marker):
    result = run("graph", BASICS, "-i", "x=[1,2,3]", "--format", fmt)
    assert result.exit_code == 0 and marker in result.stdout
    assert "MeanBackward0" in result.stdout


def test_json_graph(run):
    data = json.loads(run("graph", "(x * w).sum()", "-i", "x=[1,2]", "-i", "w=[3,4]",
                          "--format", "json").stdout)
    assert data["version"] == 1
    assert [n["name"] for n in data["nodes"]] == ["SumBackward0", "MulBackward0",
                                                   "AccumulateGrad", "AccumulateGrad"]
    assert [n["variable"]["name"] for n in data["nodes"][2:]] == ["x", "w"]
    assert data["stats"]["by_type"] == {"AccumulateGrad": 2, "MulBackward0": 1,
                                        "SumBackward0": 1}


def test_output_file_format_from_extension(run, tmp_path):
    target = tmp_path / "g.mmd"
    result = run("graph", BASICS, "-i", "x=[1,2,3]", "-o", target)
    assert result.exit_code == 0 and result.stdout == ""
    assert target.read_text().startswith("flowchart TD")


def test_image_without_graphviz_says_how_to_install(run, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    result = run("graph", BASICS, "-i", "x=[1,2,3]", "-o", tmp_path / "g.svg")
    assert result.exit_code == 2
    assert "Graphviz 'dot' is not installed" in result.stderr
    assert "install graphviz" in result.stderr.lower()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz not installed")
def test_image_with_graphviz(run, tmp_path):
    target = tmp_path / "g.svg"
    assert run("graph", BASICS, "-i", "x=[1,2,3]", "-o", target).exit_code == 0
    assert "<svg" in target.read_text()


def test_doubled_chain_collapses_and_full_expands(run):
    expr = "x * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2"
    result = run("graph", expr, "-i", "x=[1,2,3]")
    assert "MulBackward0 × 9  (collapsed chain)" in result.stdout
    full = run("graph", expr, "-i", "x=[1,2,3]", "--full")
    assert "collapsed" not in full.stdout and full.stdout.count("MulBackward0") == 12


def test_depth_limit(run):
    result = run("graph", "x.exp().sin().cos().tanh().sum()", "-i", "x=[1.0]", "--depth", "2")
    assert "inputs below depth 2 not shown" in result.stdout
    assert "AccumulateGrad" in result.stdout        # still counted in the summary


def test_from_spec(run):
    result = run("graph", "--spec", SPECS / "autograd_basics.yaml", "--check",
                 "mean_of_squares")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("MeanBackward0")
    assert "AddBackward0 #1" in result.stdout


def test_from_spec_custom_function_node(run):
    result = run("graph", "--spec", SPECS / "my_relu.yaml", "--check", "my_relu")
    assert result.exit_code == 0, result.stderr
    assert "Backward" in result.stdout.splitlines()[0]


def test_from_spec_unknown_check_suggests(run):
    result = run("graph", "--spec", SPECS / "autograd_basics.yaml", "--check",
                 "mean_of_square")
    assert result.exit_code == 2
    assert "did you mean 'mean_of_squares'?" in result.stderr


def test_errors_have_locations(run):
    result = run("graph", "sigmod(x)", "-i", "x=[1,2,3]")
    assert result.exit_code == 2
    first, source, caret = result.stderr.splitlines()[:3]
    assert first.startswith("<expr>:1:1: ") and "sigmoid" in first
    assert source.strip() == "sigmod(x)" and caret.strip().startswith("^")


@pytest.mark.parametrize("value,needle", [("[1,2", "YAML"), ("{shap: [3]}", "shape"),
                                          ("{shape: [3], init: gaussian}", "init")])
def test_bad_input_values(run, value, needle):
    result = run("graph", "x.sum()", "-i", f"x={value}")
    assert result.exit_code == 2
    assert result.stderr.startswith("<input x>:1:") and needle in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_equals(run):
    result = run("graph", "x.sum()", "-i", "x")
    assert result.exit_code == 2 and "expected NAME=VALUE" in result.stderr


def test_no_graph(run):
    result = run("graph", "x.sum()", "-i", "x={value: [1, 2], requires_grad: false}")
    assert result.exit_code == 2 and "no backward graph" in result.stderr


def test_user_strings_are_not_markup(run):
    result = run("graph", "(x * 2).sum()", "-i", "x=[1,2]", env={"NO_COLOR": "1"})
    assert "\x1b[" not in result.stdout


CHAIN_MODULE = '''
import gradtool as gt


class Chain(gt.nn.Module):
    """y = y * 1.0001, n times: a graph as deep as it is long."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def forward(self, x):
        for _ in range(self.n):
            x = x * 1.0001
        return x
'''


@pytest.mark.parametrize("fmt", ["tree", "dot", "json", "mermaid"])
def test_full_graph_of_a_deep_chain_in_every_format(run, tmp_path, fmt):
    """``--full`` of a chain deeper than any indentation: every node drawn, < 200 bytes of
    output per node, the tree's lines flat past the indentation limit."""
    n = 5000
    (tmp_path / "graph_chain_module.py").write_text(CHAIN_MODULE)
    spec = tmp_path / "chain.yaml"
    spec.write_text("version: 1\nmodules:\n  chain: {python: graph_chain_module:Chain, "
                    f"args: [{n}]}}\nchecks:\n  - name: chain\n    expr: chain(x)\n"
                    "    inputs:\n      x: [1.0, 2.0, 3.0]\n")
    result = run("graph", "--spec", spec, "--check", "chain", "--full", "--format", fmt)
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.encode()) < 200 * n
    assert result.stdout.count("MulBackward0") >= n
    if fmt == "tree":
        assert f"┆ [depth {n:,}] AccumulateGrad  x: float64[3]" in result.stdout
        assert max(map(len, result.stdout.splitlines())) < 80
    if fmt == "json":
        assert json.loads(result.stdout)["stats"]["nodes"] == n + 1
