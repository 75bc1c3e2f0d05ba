"""Verdicts agree with torch.autograd.gradcheck; the torch bridge checks torch functions."""

import numpy as np
import pytest

import gradtool as gt
from gradtool.errors import UserError

torch = pytest.importorskip("torch")


def _function_pair(name, forward, backward):
    """The same custom Function in gradtool and in torch (``forward``/``backward`` written
    with tensor methods, which both libraries share)."""
    def fwd(ctx, x):
        ctx.save_for_backward(x)
        return forward(x)

    def bwd(ctx, g):
        (x,) = ctx.saved_tensors
        return backward(x, g)

    members = {"forward": staticmethod(fwd), "backward": staticmethod(bwd)}
    return (type(name, (gt.autograd.Function,), dict(members)).apply,
            type(name, (torch.autograd.Function,), dict(members)).apply)


P3 = (lambda x: 0.5 * (5 * x ** 3 - 3 * x), lambda x, g: g * 1.5 * (5 * x ** 2 - 1))
CASES = {
    "tanh*sin": (lambda x: x.tanh() * x.sin(), lambda x: x.tanh() * x.sin()),
    "mean 3(x+2)^2": (lambda x: ((x + 2) * (x + 2) * 3).mean(),) * 2,
    "exp.sum(0)": (lambda x: x.reshape(2, 3).exp().sum(0),) * 2,
    "P3 right": _function_pair("P3", *P3),
    "P3 wrong factor": _function_pair("P3x2", P3[0], lambda x, g: 2 * P3[1](x, g)),
    "P3 wrong sign": _function_pair("P3neg", P3[0], lambda x, g: -P3[1](x, g)),
    "sin with cos backward off by 1e-4": _function_pair(
        "SinOff", lambda x: x.sin(), lambda x, g: g * (x.cos() + 1e-4)),
    "sin with cos backward off by 1e-2": _function_pair(
        "SinOff2", lambda x: x.sin(), lambda x, g: g * (x.cos() + 1e-2)),
    "square, gradient of x": _function_pair("SqWrong", lambda x: x * x, lambda x, g: g * x),
    "relu at a kink": (lambda x: x.relu(), lambda x: x.relu()),
    "detached factor": (lambda x: x * x.detach(), lambda x: x * x.detach()),
    "clamp inside the bounds": (lambda x: x.clamp(-5.0, 5.0) * 2,) * 2,
    "exp, gradient of exp(x)/2": _function_pair("ExpHalf", lambda x: x.exp(),
                                                lambda x, g: g * x.exp() / 2),
}
DATA = {"relu at a kink": np.array([0.5, -1.0, 0.0, 2.0, 1e-7, -0.3])}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("fast", [False, True])
def test_verdicts_agree_with_torch(name, fast):
    gfn, tfn = CASES[name]
    data = DATA.get(name, np.random.default_rng(3).standard_normal(6))
    ours = gt.gradcheck(gfn, (gt.tensor(data, requires_grad=True),), fast_mode=fast,
                        raise_exception=False)
    theirs = torch.autograd.gradcheck(
        tfn, (torch.tensor(data, requires_grad=True),), fast_mode=fast, raise_exception=False)
    assert ours == theirs


def test_bridge_checks_a_torch_function_with_a_wrong_backward():
    _, bad = _function_pair("P3x2t", P3[0], lambda x, g: 2 * P3[1](x, g))
    x = torch.randn(8, dtype=torch.float64, requires_grad=True)
    result = gt.check(bad, (x,))
    assert not result.passed
    assert result.failures[0].kind == "scale"
    assert result.failures[0].factor == pytest.approx(2.0)
    assert not gt.gradcheck(bad, (x,), raise_exception=False)


def test_bridge_passes_correct_torch_functions_and_converts_to_float64():
    x = torch.randn(5, dtype=torch.float32, requires_grad=True)
    w = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    result = gt.check(lambda x, w: torch.tanh(x @ w).sum(), (x, w), input_names=["x", "w"])
    assert result.passed, result.report()
    assert [b.input_name for b in result.blocks] == ["x", "w"]
    _, good = _function_pair("P3t", *P3)
    assert gt.gradcheck(good, (x.double().detach().requires_grad_(),))
    assert gt.check(good, (torch.randn(4, dtype=torch.float64, requires_grad=True),),
                    mode="fast").passed


def test_bridge_refuses_complex_step():
    with pytest.raises(UserError, match="complex"):
        gt.check(torch.sin, (torch.randn(3, dtype=torch.float64, requires_grad=True),),
                 method="complex")


# ---- the bridge blames the right party --------------------------------------------------------
class WrongShape(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        return (grad * 2).sum(0)


class NotReentrant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.acc = torch.ones_like(x)
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        ctx.acc *= grad + 1
        return grad * ctx.acc


def test_wrong_gradient_shape_is_the_users_error_at_the_function():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    with pytest.raises(UserError) as info:
        gt.check(WrongShape.apply, (x,))
    error = info.value
    assert "'WrongShape'" in error.message and "invalid gradient" in error.message
    assert error.location.file == __file__
    assert error.location.line == WrongShape.backward.__code__.co_firstlineno + 1  # the def


def test_not_reentrant_through_the_bridge():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    result = gt.check(NotReentrant.apply, (x,))
    assert not result.passed
    assert result.blocks[0].kind == "nondeterministic"
    assert "not reentrant" in result.blocks[0].diagnosis
    with pytest.raises(Exception, match="not reentrant"):
        torch.autograd.gradcheck(NotReentrant.apply, (x,))


def test_cli_exit_2_for_a_torch_function_with_a_wrong_gradient_shape(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from gradtool.cli.app import cli
    (tmp_path / "tops.py").write_text(
        "import torch\n\n\nclass WrongShape(torch.autograd.Function):\n"
        "    @staticmethod\n    def forward(ctx, x):\n        return x * 2\n\n"
        "    @staticmethod\n    def backward(ctx, grad):\n        return (grad * 2).sum(0)\n")
    (tmp_path / "spec.yaml").write_text(
        "version: 1\nfunctions:\n  W: {python: 'tops:WrongShape'}\nchecks:\n"
        "  - name: w\n    expr: W(x)\n    inputs: {x: {shape: [3, 4]}}\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["check", "spec.yaml"])
    assert result.exit_code == 2, result.output
    assert "WrongShape" in result.output and "internal error" not in result.output
    assert "tops.py:10" in result.output


class BroadcastBug(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.softmax(1)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        y = x.softmax(1)
        return y * (grad - (grad * y).sum(1))       # forgot keepdim: (4, 6) - (4,)


def test_error_inside_a_torch_backward_points_at_its_line():
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    with pytest.raises(UserError) as info:
        gt.check(BroadcastBug.apply, (x,))
    error = info.value
    assert "'BroadcastBug'" in error.message and "must match" in error.message
    assert error.location.line == BroadcastBug.backward.__code__.co_firstlineno + 4
