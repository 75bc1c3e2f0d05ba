"""Small CLI things: --nondet-tol, --seed help, the vjp hint, graph's unknown names, the
vmap note once per run."""

from io import StringIO

import pytest
from rich.console import Console

from gradtool.cli.vjp import example_vector
from gradtool.render import report
from gradtool.render.report import Outcome

NOISY = '''\
import numpy as np
from gradtool.autograd import Function

RNG = np.random.default_rng(0)


class Noisy(Function):
    """x * x whose backward adds 1e-9 of noise: nondeterministic, otherwise right."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        return grad * (2 * x + x.new_tensor(RNG.normal(size=x.shape) * 1e-9))
'''
SPEC = """\
functions:
  Noisy: {python: "noisypkg:Noisy"}
checks:
  - name: noisy
    expr: Noisy(x).sum()
    inputs:
      x: [1.0, 2.0]
"""


def test_nondet_tol_on_the_command_line(run, spec_dir):
    spec_dir("noisypkg/__init__.py", NOISY)
    spec_dir("nd.yaml", SPEC)
    strict = run("check", "nd.yaml")
    assert strict.exit_code == 1 and "nondeterministic" in strict.stdout
    tolerant = run("check", "nd.yaml", "--nondet-tol", "1e-6")
    assert tolerant.exit_code == 0, tolerant.stdout
    bad = run("check", "nd.yaml", "--nondet-tol", "-1")
    assert bad.exit_code == 2


@pytest.mark.parametrize("command", ["jvp", "vjp", "jacobian", "hessian", "graph"])
def test_seed_help_names_no_spec_where_there_is_none(run, command):
    text = run(command, "--help").stdout
    seed_help = " ".join(text.split("--seed", 1)[1].split("--debug")[0].split())
    assert "spec's" not in seed_help
    assert ("--spec" in seed_help) == (command == "graph")


@pytest.mark.parametrize("shape, vector", [
    ([3], "[1, 0, 0]"), ([2, 3], "[[1, 0, 0], [0, 0, 0]]"), ([1, 2], "[[1, 0]]"),
    ([2, 1, 2], "[[[1, 0]], [[0, 0]]]"), ([40], "{shape: [40], init: ones}")])
def test_the_vjp_hint_vector_has_the_outputs_shape(run, shape, vector):
    assert example_vector(shape) == vector
    assert run("vjp", "x * 1.0", "-i", f"x={vector}", "--v", vector).exit_code == 0


def test_vjp_without_v_hints_a_vector_of_the_output_shape(run):
    result = run("vjp", "x.sum(0)", "-i", "x=[[1,2,3],[4,5,6]]")
    assert result.exit_code == 2
    assert "(shape [3])" in result.stderr and 'e.g. --v "[1, 0, 0]"' in result.stderr


def test_graph_without_inputs_is_one_error_listing_the_names(run):
    result = run("graph", "x * x + y * x")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "<expr>:1:1: unknown names 'x', 'y'"
    assert lines[-1] == "  hint: give them with -i x=... -i y=..."
    assert sum("unknown" in line for line in lines) == 1
    one = run("graph", "xx * x", "-i", "x=[1.0]")
    assert one.stderr.splitlines()[0] == "<expr>:1:1: unknown name 'xx' (did you mean 'x'?)"
    assert one.stderr.splitlines()[-1] == "  hint: give it with -i xx=..."


def test_messages_name_the_no_python_flag(run, spec_dir):
    spec_dir("p.yaml", SPEC)
    result = run("check", "p.yaml", "--no-python")
    assert result.exit_code == 2
    assert "(--no-python)" in result.stderr and "allow_python=False)" not in \
        result.stderr.splitlines()[0]


def test_the_vmap_note_is_printed_once_per_run():
    reason = "Sq(): In order to use an autograd.Function with functorch transforms (vmap)…"
    message = ("gradient check FAILED (method central; 32 function evaluations, looped "
               f"(torch.func.vmap failed: {reason}))\n  first order: d out / d x: FAILED")
    outcomes = [Outcome("a.yaml", name, status="failed", message=message, exit_code=1)
                for name in ("a", "b", "c")]
    buffer = StringIO()
    report.render_table(Console(file=buffer, width=200, color_system=None), outcomes)
    text = buffer.getvalue()
    assert text.count(reason) == 1
    assert text.count("looped (torch.func.vmap failed, see the note))") == 3
    assert f"note: torch.func.vmap failed: {reason}; " in text
