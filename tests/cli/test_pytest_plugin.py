"""The pytest plugin: spec checks as test items (run through pytester, in process)."""

import pytest

# pytester runs pytest in this process and afterwards drops the modules a run imported;
# import what the plugin imports lazily now, so every run shares one copy of them
import gradtool.check  # noqa: F401,E402
import gradtool.cli.runner  # noqa: F401,E402
import gradtool.spec  # noqa: F401,E402

pytest_plugins = ["pytester"]

SPEC = """\
version: 1
functions:
  wrong_square:
    args: [x]
    forward: x * x
    backward:
      x: grad * x
checks:
  - name: square
    expr: (x * x).sum()
    inputs:
      x: [1.0, 2.0, 3.0]
    tags: [fast]
  - name: later
    expr: x.sum()
    inputs:
      x: [1.0]
    skip: not written yet
  - name: factor_two
    expr: wrong_square(x)
    inputs:
      x: {shape: [4], avoid: [0.0]}
  - name: found_it
    expr: wrong_square(x)
    inputs:
      x: {shape: [3], avoid: [0.0]}
    expect: fail
"""


@pytest.fixture
def project(pytester):
    pytester.makefile(".yaml", **{"specs/checks": SPEC})
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    return pytester


def test_off_by_default(project):
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_collects_every_check(project):
    result = project.runpytest("-p", "no:cacheprovider", "--gradtool", "specs", "-rsx")
    result.assert_outcomes(passed=2, failed=1, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines([
        "*specs/checks.yaml:19:5: factor_two: failed*",
        "*FAILED (scale)*analytical = 0.5*",
        "SKIPPED [[]1[]] specs/checks.yaml:14: not written yet",
        "XFAIL specs/checks.yaml::found_it - *FAILED*",
    ])


def test_tags_are_markers(project):
    result = project.runpytest("-p", "no:cacheprovider", "--gradtool", "specs", "-m", "fast")
    result.assert_outcomes(passed=1, deselected=4)


def test_ini_option(project):
    project.makeini("[pytest]\ngradtool_specs = specs\n")
    result = project.runpytest("-p", "no:cacheprovider", "-k", "square")
    result.assert_outcomes(passed=1, deselected=4)


def test_bad_spec_is_a_collection_error(project):
    project.makefile(".yaml", **{"specs/broken": "version: 1\nchecks:\n  - name: x\n"})
    result = project.runpytest("-p", "no:cacheprovider", "--gradtool", "specs")
    result.stdout.fnmatch_lines(["*specs/broken.yaml:3:*", "*1 error*"])


def test_unexpected_pass_fails(project):
    project.makefile(".yaml", **{"specs/xpass": (
        "version: 1\nchecks:\n  - name: lucky\n    expr: (x * x).sum()\n"
        "    inputs:\n      x: [1.0]\n    expect: fail\n")})
    result = project.runpytest("-p", "no:cacheprovider", "--gradtool", "specs/xpass.yaml")
    result.assert_outcomes(passed=1, failed=1)       # test_plain.py, and the XPASS
    result.stdout.fnmatch_lines(["*XPASS(strict)*"])
