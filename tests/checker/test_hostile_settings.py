"""The checker refuses steps and tolerances that would make its verdict meaningless."""

import math

import pytest

import gradtool as gt
from gradtool.errors import UserError


@pytest.mark.parametrize("settings", [
    {"eps": math.nan}, {"eps": 0.0}, {"eps": -1e-6}, {"eps": math.inf},
    {"atol": -1.0}, {"atol": math.nan}, {"rtol": math.inf}, {"nondet_tol": -1.0},
])
def test_bad_step_or_tolerance_is_a_user_error(settings):
    x = gt.randn(3, requires_grad=True)
    with pytest.raises(UserError, match="must be a finite number"):
        gt.check(lambda a: a * 2, (x,), **settings)


def test_good_settings_still_pass():
    x = gt.randn(3, requires_grad=True)
    assert gt.check(lambda a: a * 2, (x,), eps=1e-3, atol=1e-8, rtol=0).passed


def test_non_finite_point_is_not_misdiagnosed():
    """At log(0) the Jacobian is inf: no "not multiplied by grad_output" (0 * inf is NaN)
    and no "nondeterministic backward" (inf == inf) on top of the NaN/Inf report."""
    x = gt.tensor([0.0, 1.0], requires_grad=True)
    result = gt.check(gt.log, (x,))
    assert not result.passed
    text = result.report()
    assert "in the analytical Jacobian" in text
    assert "grad_output" not in text
    assert "nondeterministic" not in text


def test_backward_ignoring_a_zero_grad_output_is_still_found():
    class Leaky(gt.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 2 + 1e-3

    x = gt.randn(3, requires_grad=True)
    result = gt.check(Leaky.apply, (x,), atol=1e-2)
    assert "backward not multiplied by grad_output" in result.report()


def test_random_function_is_diagnosed_as_not_deterministic():

    def noisy(a):
        return a * gt.randn(*a.shape)

    x = gt.randn(4, requires_grad=True)
    result = gt.check(noisy, (x,))
    assert not result.passed
    assert result.blocks[0].kind == "nondeterministic"
    assert "the function is not deterministic" in result.report()


def test_one_warning_for_all_float32_inputs():
    x = gt.randn(3, requires_grad=True).float()
    y = gt.randn(3, requires_grad=True).float()
    with pytest.warns(UserWarning) as caught:
        gt.check(lambda a, b: a * b, (x.detach().requires_grad_(), y.detach().requires_grad_()))
    messages = [str(w.message) for w in caught if "double precision" in str(w.message)]
    assert len(messages) == 1
    assert messages[0].startswith("Inputs #0, #1 require gradient and are not double precision")


def test_reports_name_inputs_everywhere():
    class Ignores(gt.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return (a * a).sum()

        @staticmethod
        def backward(ctx, grad):
            (a,) = ctx.saved_tensors
            return 2 * a           # not multiplied by grad

    class Detached(gt.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a ** 3

        @staticmethod
        def backward(ctx, grad):
            (a,) = ctx.saved_tensors
            return grad * 3 * a.detach() ** 2

    x = gt.randn(3, requires_grad=True)
    text = gt.check(Ignores.apply, (x,), input_names=["x"]).report()
    assert "input x got a nonzero gradient" in text and "input 0" not in text
    text = gt.check(Detached.apply, (x,), input_names=["x"], gradgrad=True).report()
    assert "second order: d output 0 / d x" in text


def test_wrong_backward_does_not_hide_behind_a_nan_elsewhere():
    class LogTimesOneAndAHalf(gt.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a.log()

        @staticmethod
        def backward(ctx, grad):
            (a,) = ctx.saved_tensors
            return grad / a * 1.5

    x = gt.tensor([-1.0, 2.0, 3.0], requires_grad=True)     # log(-1) is NaN
    block = gt.check(LogTimesOneAndAHalf.apply, (x,)).blocks[0]
    assert block.kind == "scale"
    assert block.diagnosis.startswith("where both sides are finite: constant factor: "
                                      "analytical = 1.5 x numerical; also NaN in")
