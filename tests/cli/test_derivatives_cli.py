"""``gradtool jvp``, ``vjp``, ``jacobian``, ``hessian``."""

import json

import numpy as np


def value(data, *keys):
    for key in keys:
        data = data[key]
    return np.array(data["value"])


def test_vjp_seed_example(run):
    # y = x * 2 ** 11 so vᵀJ = 2048 v
    result = run("vjp", "x * 2 ** 11", "-i", "x=[1,2,3]", "--v", "[0.1,1.0,0.0001]")
    assert result.exit_code == 0, result.stderr
    assert "vᵀJ w.r.t. x = [204.8, 2048, 0.2048]" in result.stdout


def test_vjp_json_and_check(run):
    result = run("vjp", "x * 2 ** 11", "-i", "x=[1,2,3]", "--v", "[0.1,1.0,0.0001]",
                 "--format", "json", "--check")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["version"] == 1 and data["kind"] == "vjp"
    np.testing.assert_allclose(value(data, "vjp", "x"), [204.8, 2048, 0.2048])
    assert data["check"]["passed"] is True and data["check"]["max_abs_error"] < 1e-4
    assert data["check"]["evaluations"] > 0 and data["check"]["report"] is None


def test_vjp_needs_v_for_non_scalar(run):
    result = run("vjp", "x * 2", "-i", "x=[1,2,3]")
    assert result.exit_code == 2 and "--v" in result.stderr


def test_vjp_scalar_default(run):
    data = json.loads(run("vjp", "((x + 2) * (x + 2) * 3).mean()", "-i", "x=[1,2,3]",
                          "--format", "json").stdout)
    np.testing.assert_allclose(value(data, "vjp", "x"), [6, 8, 10])


def test_vjp_wrong_shape(run):
    result = run("vjp", "x * 2", "-i", "x=[1,2,3]", "--v", "[1,2]")
    assert result.exit_code == 2 and "shape" in result.stderr


def test_jvp_forward_mode(run):
    data = json.loads(run("jvp", "(a * b)", "-i", "a=[1,2]", "-i", "b=[3,4]", "--v",
                          "a=[1,1]", "--format", "json", "--check").stdout)
    np.testing.assert_allclose(value(data, "jvp"), [3, 4])     # d(ab) = b da
    assert data["check"]["passed"]


def test_jvp_bare_tangent_for_single_input(run):
    result = run("jvp", "x * x", "-i", "x=[1,2,3]", "--v", "[1,0,0]")
    assert result.exit_code == 0 and "J·v    = [2, 0, 0]" in result.stdout


def test_jvp_unknown_name(run):
    result = run("jvp", "a * b", "-i", "a=[1]", "-i", "b=[2]", "--v", "c=[1]")
    assert result.exit_code == 2 and "NAME one of a, b" in result.stderr


def test_jacobian(run):
    result = run("jacobian", "x * x", "-i", "x=[1,2,3]", "--format", "json")
    data = json.loads(result.stdout)
    np.testing.assert_allclose(value(data, "jacobian", "x"), np.diag([2, 4, 6]))
    table = run("jacobian", "x * x", "-i", "x=[1,2,3]", "--check")
    assert table.exit_code == 0 and "d output / d x  (3 x 3)" in table.stdout
    assert "matches finite differences" in table.stdout


def test_hessian(run):
    data = json.loads(run("hessian", "(x ** 3).sum()", "-i", "x=[1,2,3]", "--format",
                          "json", "--check").stdout)
    np.testing.assert_allclose(value(data, "hessian", "x,x"), np.diag([6, 12, 18]))
    assert data["check"]["passed"]


def test_hessian_of_two_inputs(run):
    data = json.loads(run("hessian", "(a * b * b).sum()", "-i", "a=[1,2]", "-i", "b=[3,4]",
                          "--format", "json").stdout)
    np.testing.assert_allclose(value(data, "hessian", "b,b"), np.diag([2, 4]))
    np.testing.assert_allclose(value(data, "hessian", "a,b"), np.diag([6, 8]))


def test_hessian_needs_scalar(run):
    result = run("hessian", "x * x", "-i", "x=[1,2,3]")
    assert result.exit_code == 2 and "scalar" in result.stderr


def test_check_failure_exits_1(run, monkeypatch):
    from gradtool.checker.result import CheckResult
    from gradtool.cli import jacobian
    monkeypatch.setattr(jacobian, "finite_difference_check", lambda problem, **kw: CheckResult(
        False, problems=["d output / d x: sign error"]))
    result = run("jacobian", "x * x", "-i", "x=[1,2,3]", "--check")
    assert result.exit_code == 1
    assert "does not match finite differences" in result.stdout
    assert "gradient check FAILED" in result.stdout and "sign error" in result.stdout
    assert "bound method" not in result.stdout
