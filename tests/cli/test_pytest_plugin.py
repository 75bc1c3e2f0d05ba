"""The pytest plugin: spec checks as test items (run through pytester, in process)."""

import pytest

# pytester runs pytest in this process and afterwards drops the modules a run imported;
# import what the plugin imports lazily now, so every run shares one copy of them
import gradtool.checker  # noqa: F401,E402
import gradtool.runner  # noqa: F401,E402
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
    # --gradtool is a flag: specs is pytest's path, so test_plain.py does not run
    result = project.runpytest("-p", "no:cacheprovider", "--gradtool", "specs", "-rsx")
    result.assert_outcomes(passed=1, failed=1, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines([
        "*specs/checks.yaml:19:5: factor_two: failed*",
        "*FAILED (scale)*analytical = 0.5*",
        "SKIPPED [[]1[]] specs/checks.yaml:14: not written yet",
        "XFAIL specs/checks.yaml::found_it - *FAILED*",
    ])


def test_tags_are_markers(project):
    result = project.runpytest("-p", "no:cacheprovider", "--gradtool", "specs", "-m", "fast")
    result.assert_outcomes(passed=1, deselected=3)


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
    result.assert_outcomes(failed=1)       # the XPASS
    result.stdout.fnmatch_lines(["*XPASS(strict)*"])


def test_the_flag_before_the_path_takes_no_value(project):
    result = project.runpytest("-p", "no:cacheprovider", "specs", "--gradtool")
    result.assert_outcomes(passed=1, failed=1, skipped=1, xfailed=1)
    result = project.runpytest("-p", "no:cacheprovider", "--gradtool")    # default specs/
    result.assert_outcomes(passed=1, failed=1, skipped=1, xfailed=1)


def test_a_node_id_selects_one_check(project):
    result = project.runpytest("-p", "no:cacheprovider", "specs/checks.yaml::square",
                               "--gradtool", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["specs/checks.yaml::square PASSED*"])
    result = project.runpytest("-p", "no:cacheprovider", "--gradtool",
                               "specs/checks.yaml::factor_two", "specs/checks.yaml::found_it")
    result.assert_outcomes(failed=1, xfailed=1)


def test_items_share_no_state(project):
    """A check gives the same numbers alone, after the others, and run twice."""
    project.makefile(".yaml", **{"specs/state": (
        "version: 1\nmodules:\n  lin: {Linear: [3, 2]}\nchecks:\n"
        "  - name: a\n    expr: lin(x).sum()\n    inputs:\n      x: {shape: [3]}\n"
        "  - name: b\n    expr: (lin(x) * x[0]).sum()\n    inputs:\n      x: {shape: [3]}\n")})
    project.makeconftest("""
import pytest
REPORTS = []

@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    yield
    built = item.selected.spec.build()
    REPORTS.append((item.name, [t.detach().numpy().tolist() for t in built.inputs]))

def pytest_sessionfinish(session):
    import json, os
    with open(os.path.join(str(session.config.rootpath), "inputs.jsonl"), "a") as f:
        for name, values in REPORTS:
            f.write(json.dumps([name, values]) + "\\n")
    REPORTS.clear()
""")
    import json
    out = project.path / "inputs.jsonl"
    project.runpytest("-p", "no:cacheprovider", "--gradtool", "specs/state.yaml::b")
    project.runpytest("-p", "no:cacheprovider", "--gradtool", "specs/state.yaml",
                      "specs/state.yaml::b")
    runs = [json.loads(line) for line in out.read_text().splitlines()]
    b_runs = [values for name, values in runs if name == "b"]
    assert len(b_runs) == 2 and b_runs[0] == b_runs[1]


def test_walked_yaml_that_is_not_a_spec_is_left_alone(project):
    project.makefile(".yaml", **{"specs/.github/workflows/ci": "on: [push]\njobs: {}\n",
                                 "specs/mkdocs": "site_name: x\nnav: []\n"})
    result = project.runpytest("-p", "no:cacheprovider", "--gradtool", "specs")
    result.assert_outcomes(passed=1, failed=1, skipped=1, xfailed=1)


def test_ini_value_collects_beside_the_tests_but_not_elsewhere(project):
    project.makeini("[pytest]\ngradtool_specs = specs\n")
    project.makefile(".yaml", **{"other/checks": SPEC})
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1, skipped=1, xfailed=1)
    result = project.runpytest("-p", "no:cacheprovider", "test_plain.py")
    result.assert_outcomes(passed=1)


def test_an_error_is_one_located_line_with_the_excerpt(project):
    project.makefile(".yaml", **{"specs/shapes": (
        "checks:\n  - name: shapes\n    expr: (x * y).sum()\n    inputs:\n"
        "      x: [1.0, 2.0]\n      y: [1.0, 2.0, 3.0]\n")})
    result = project.runpytest("-p", "no:cacheprovider", "--gradtool", "specs/shapes.yaml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["specs/shapes.yaml:3:14: operator '*' on shapes *",
                                 "        expr: (x * y).sum()",
                                 "                 ^"])
