"""``python:`` references to torch.autograd.Functions and torch.nn.Modules: checked through
the torch bridge (torch's autograd against gradtool's finite differences), the language
such checks may use, and the errors without torch or with python refs disabled."""

import sys

import numpy as np
import pytest

from gradtool.checker import check
from gradtool.errors import SpecError

from .helpers import FIXTURES, errors_of, load_text, one_error

torch = pytest.importorskip("torch")

SPEC = """
functions:
  Cube: {python: torchpkg.ops:Cube}
  WrongCube: {python: torchpkg.ops:WrongCube}
  MulAdd: {python: torchpkg.ops:MulAdd}
modules:
  mlp: {python: torchpkg.ops:TinyMLP, args: [4, 8], kwargs: {n_out: 2}}
checks:
  - name: cube
    expr: Cube(x)
    inputs: {x: {shape: [5]}}
  - name: wrong_cube
    expr: WrongCube(x)
    inputs: {x: {shape: [5]}}
    expect: fail
  - name: mul_add
    expr: (MulAdd(a, b) * 2).sum()
    inputs: {a: {shape: [3]}, b: {shape: [3]}}
  - name: mlp
    expr: ((mlp(x) - y) ** 2).mean()
    inputs: {x: {shape: [6, 4]}, y: {shape: [6, 2], requires_grad: false}}
    wrt: [params, x]
"""


@pytest.fixture
def torchpkg(monkeypatch):
    """Make ``tests/spec/fixtures/torchpkg`` importable, and forget it afterwards."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    yield
    for name in [m for m in sys.modules if m.split(".")[0] == "torchpkg"]:
        del sys.modules[name]


@pytest.fixture
def spec(torchpkg):
    return load_text(SPEC)


def run(spec, name):
    item = next(c for c in spec.checks if c.name == name)
    built = item.build()
    return built, check(built.fn, built.inputs, input_names=built.input_names)


def test_torch_function_with_a_correct_backward_passes(spec):
    built, result = run(spec, "cube")
    assert isinstance(built.inputs[0], torch.Tensor)
    assert built.inputs[0].dtype == torch.float64
    assert result.passed
    assert [b.input_name for b in result.blocks] == ["x"]


def test_torch_function_with_a_wrong_backward_fails_with_a_diagnosis(spec):
    _, result = run(spec, "wrong_cube")
    assert not result.passed
    (block,) = result.blocks
    assert block.kind == "scale"                 # backward misses the constant factor 3
    assert "0.333333" in block.diagnosis
    assert "constant factor" in result.report()


def test_torch_function_with_two_inputs_in_a_small_expression(spec):
    _, result = run(spec, "mul_add")
    assert result.passed
    assert [b.input_name for b in result.blocks] == ["a", "b"]


def test_torch_module_checked_wrt_its_parameters(spec):
    built, result = run(spec, "mlp")
    names = ["mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias", "x"]
    assert built.input_names == names
    assert result.passed
    assert [b.input_name for b in result.blocks] == names
    assert result.path.startswith("batched")          # torch.func.vmap over the parameters


def test_torch_module_parameters_are_deterministic_and_leave_torch_alone(spec):
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    first = [p.detach().clone() for p in run(spec, "mlp")[0].inputs]
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())
    again = [p.detach() for p in run(spec, "mlp")[0].inputs]
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    assert first[0].dtype == torch.float64


def test_broken_torch_module_fails(torchpkg):
    spec = load_text("""
        functions:
          WrongCube: {python: torchpkg.ops:WrongCube}
        modules:
          mlp: {python: torchpkg.ops:TinyMLP, args: [3, 4]}
        checks:
          - {name: a, expr: WrongCube(mlp(x)).sum(), inputs: {x: {shape: [2, 3]}},
             wrt: [mlp.fc2.bias]}
        """)
    _, result = run(spec, "a")
    assert not result.passed
    assert [b.input_name for b in result.blocks] == ["mlp.fc2.bias"]


def test_cli_runs_torch_checks(torchpkg, tmp_path):
    from click.testing import CliRunner

    from gradtool.cli.app import cli
    path = tmp_path / "torch.yaml"
    path.write_text(SPEC)
    result = CliRunner().invoke(cli, ["check", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "3 passed, 1 xfailed" in result.output


# ---- what such checks may use ----------------------------------------------------------------
def test_only_the_torch_language_is_allowed(torchpkg):
    errors = errors_of("""
        functions:
          Cube: {python: torchpkg.ops:Cube}
          Sq: {args: [x], forward: x * x, backward: {x: 2 * x * grad}}
        modules:
          mlp: {python: torchpkg.ops:TinyMLP, args: [4, 8]}
          fc: {Linear: [1, 1]}
        checks:
          - {name: a, expr: relu(Cube(x)).sum() + Sq(x).sum(), inputs: {x: {shape: [2]}}}
          - {name: b, expr: mlp(x).exp().cumsum(0), inputs: {x: {shape: [2, 4]}}, gradgrad: true}
          - {name: c, expr: mlp(fc(x)), inputs: {x: {shape: [2, 4]}}, method: complex}
        """)  # noqa: E501
    assert errors == [
        "a.yaml:8:21: 'relu' cannot be called in a check of torch Functions or modules: its "
        "expression runs on torch tensors",
        "a.yaml:8:43: 'Sq' cannot be called in a check of torch Functions or modules: its "
        "expression runs on torch tensors",
        "a.yaml:9:34: '.cumsum' is not available in a check of torch Functions or modules",
        "a.yaml:9:85: second-order checks (gradgrad: true) are not available for torch "
        "Functions and modules",
        "a.yaml:10:25: 'fc' cannot be called in a check of torch Functions or modules: its "
        "expression runs on torch tensors",
        "a.yaml:10:71: method: complex is not available for torch Functions and modules",
    ]


def test_torch_module_cannot_be_a_gradtool_layer(torchpkg):
    error = one_error("""
        modules:
          seq: {Sequential: [{python: torchpkg.ops:TinyMLP, args: [4, 8]}]}
        checks:
          - {name: a, expr: x, inputs: {x: {shape: [2, 4]}}}
        """)
    assert error == ("a.yaml:2:31: module 'seq': a torch.nn.Module cannot be a layer of a "
                     "gradtool Sequential")


def test_torch_module_with_bad_arguments(torchpkg):
    error = one_error("""
        modules:
          mlp: {python: torchpkg.ops:TinyMLP, kwargs: {n_inn: 3}}
        checks:
          - {name: a, expr: mlp(x), inputs: {x: {shape: [2, 4]}}}
        """)
    assert error == ("a.yaml:2:47: module 'mlp': torchpkg.ops:TinyMLP: no argument 'n_inn' "
                     "(did you mean 'n_in'?)")


def test_errors_while_running_point_into_the_expression(spec):
    spec = load_text(SPEC.replace("shape: [6, 4]", "shape: [6, 5]"))
    built = next(c for c in spec.checks if c.name == "mlp").build()
    with pytest.raises(SpecError) as info:
        built.fn(*built.inputs)
    assert str(info.value.location) == "a.yaml:19:13"
    assert info.value.message.startswith("mlp(): ")


# ---- refused: no torch, no python ------------------------------------------------------------
def test_without_torch_the_spec_says_to_install_it(torchpkg, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)       # import torch fails
    errors = errors_of(SPEC)
    assert errors[0] == "a.yaml:2:18: 'torchpkg.ops:Cube' needs PyTorch, which is not installed"
    assert len(errors) == 4
    with pytest.raises(SpecError) as info:
        load_text(SPEC)
    assert "pip install torch" in info.value.errors[0].hint


def test_without_torch_the_cli_exits_2(torchpkg, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from gradtool.cli.app import cli
    monkeypatch.setitem(sys.modules, "torch", None)
    path = tmp_path / "torch.yaml"
    path.write_text(SPEC)
    result = CliRunner().invoke(cli, ["check", str(path)], catch_exceptions=False)
    assert result.exit_code == 2
    assert "needs PyTorch" in result.output + getattr(result, "stderr", "")


def test_no_python_refuses_torch_refs(torchpkg, tmp_path):
    from click.testing import CliRunner

    from gradtool.cli.app import cli
    errors = errors_of(SPEC, allow_python=False)
    assert errors == [
        "a.yaml:2:18: function 'Cube': python functions are disabled (--no-python)",
        "a.yaml:3:23: function 'WrongCube': python functions are disabled "
        "(--no-python)",
        "a.yaml:4:20: function 'MulAdd': python functions are disabled (--no-python)",
        "a.yaml:6:17: module 'mlp': python modules are disabled (--no-python)",
    ]
    path = tmp_path / "torch.yaml"
    path.write_text(SPEC)
    result = CliRunner().invoke(cli, ["check", "--no-python", str(path)],
                                catch_exceptions=False)
    assert result.exit_code == 2
