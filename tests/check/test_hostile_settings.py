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
