"""``gradtool check``: selection, statuses, exit codes, formats, files."""

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import numpy as np
from gradtool.render import report_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = report_schema.REPORT_SCHEMA

GOOD = """\
version: 1
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
"""

BAD = """\
version: 1
functions:
  wrong_square:
    args: [x]
    forward: x * x
    backward:
      x: grad * x
  right_square:
    args: [x]
    forward: x * x
    backward:
      x: 2 * grad * x
checks:
  - name: factor_two
    expr: wrong_square(x)
    inputs:
      x: {shape: [4], avoid: [0.0]}
  - name: found_it
    expr: wrong_square(x)
    inputs:
      x: {shape: [3], avoid: [0.0]}
    expect: fail
  - name: not_broken_after_all
    expr: right_square(x)
    inputs:
      x: {shape: [3]}
    expect: fail
"""

SPEC_ERROR = """\
version: 1
checks:
  - name: typo
    expr: sigmod(x)
    inputs:
      x: [1.0, 2.0]
"""

RUNTIME_ERROR = """\
version: 1
checks:
  - name: shapes
    expr: x * y
    inputs:
      x: {shape: [2]}
      y: {shape: [3]}
"""


def test_passing_file(run, spec_dir):
    spec_dir("good.yaml", GOOD)
    result = run("check", "good.yaml")
    assert result.exit_code == 0, result.output
    assert "good.yaml::square" in result.stdout and "PASSED" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].startswith("1 passed, 1 skipped in ")


def test_default_path_is_specs_folder(run, spec_dir):
    spec_dir("specs/a.yaml", GOOD)
    result = run("check")
    assert result.exit_code == 0 and "specs/a.yaml::square" in result.stdout


def test_missing_default_folder_is_usage_error(run, spec_dir):
    result = run("check")
    assert result.exit_code == 2
    assert result.stderr.startswith("specs: no such file or folder")
    assert "hint:" in result.stderr


def test_failures_xfail_and_xpass(run, spec_dir):
    spec_dir("bad.yaml", BAD)
    result = run("check", "bad.yaml")
    assert result.exit_code == 1
    out = result.stdout
    assert "1 failed, 1 xpassed, 1 xfailed" in out
    assert "FAILED bad.yaml:14:5: factor_two" in out
    assert "0.5" in out                     # the diagnosis names the factor
    assert "XPASS bad.yaml:23:5: not_broken_after_all" in out


def test_only_expected_failures_exit_0(run, spec_dir):
    spec_dir("bad.yaml", BAD)
    assert run("check", "bad.yaml", "-k", "found_it").exit_code == 0


def test_verbose_shows_jacobians(run, spec_dir):
    spec_dir("bad.yaml", BAD)
    result = run("check", "bad.yaml", "-k", "factor_two", "-v")
    assert "numerical" in result.stdout and "analytical" in result.stdout


def test_spec_error_is_2_with_location(run, spec_dir):
    spec_dir("good.yaml", GOOD)
    spec_dir("typo.yaml", SPEC_ERROR)
    result = run("check", ".")
    assert result.exit_code == 2
    assert result.stderr.startswith("typo.yaml:4:11: ") and "sigmoid" in result.stderr
    assert "1 passed, 1 skipped, 1 error loading 1 file" in result.stdout


def test_highest_exit_code_wins(run, spec_dir):
    spec_dir("bad.yaml", BAD)
    spec_dir("typo.yaml", SPEC_ERROR)
    assert run("check", "bad.yaml", "typo.yaml").exit_code == 2


def test_runtime_error_is_2(run, spec_dir):
    spec_dir("shapes.yaml", RUNTIME_ERROR)
    result = run("check", "shapes.yaml")
    assert result.exit_code == 2
    # one file:line:col: message line (problem matchers), then the excerpt with a caret
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("shapes.yaml:4:13: "))
    assert "size of tensor" in lines[at] and lines[at - 1] == "ERROR shapes.yaml::shapes"
    assert lines[at + 1] == "        expr: x * y" and lines[at + 2] == " " * 16 + "^"


def test_internal_error_in_a_check_is_3_and_the_run_goes_on(run, spec_dir, monkeypatch):
    import sys
    check_package = sys.modules["gradtool.checker"]
    spec_dir("good.yaml", GOOD)
    spec_dir("bad.yaml", BAD)
    real = check_package.check
    calls = []

    def flaky(fn, inputs, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise ZeroDivisionError("oops")
        return real(fn, inputs, **kw)
    monkeypatch.setattr(check_package, "check", flaky)
    result = run("check", "bad.yaml", "good.yaml")
    assert result.exit_code == 3
    assert "internal error: ZeroDivisionError: oops" in result.stdout
    assert "please report" in result.stdout and "Traceback" not in result.stdout
    assert "1 passed" in result.stdout


def test_k_and_m_select(run, spec_dir):
    spec_dir("good.yaml", GOOD)
    spec_dir("bad.yaml", BAD)
    result = run("check", ".", "-m", "fast")
    assert result.exit_code == 0 and "1 passed in" in result.stdout
    result = run("check", ".", "-k", "SQUARE")
    assert result.exit_code == 0 and "1 passed in" in result.stdout


def test_k_matching_nothing_is_2(run, spec_dir):
    spec_dir("good.yaml", GOOD)
    result = run("check", "good.yaml", "-k", "nothing-like-this")
    assert result.exit_code == 2
    assert "matched none of the 2 checks" in result.stderr


def test_fail_fast(run, spec_dir):
    spec_dir("bad.yaml", BAD)
    result = run("check", "bad.yaml", "-x")
    assert result.exit_code == 1 and "1 failed, 2 not run (-x) in" in result.stdout


def test_collect_only(run, spec_dir):
    spec_dir("good.yaml", GOOD)
    spec_dir("bad.yaml", BAD)
    result = run("check", ".", "--collect-only")
    assert result.exit_code == 0
    assert "good.yaml::square  [fast]  (good.yaml:3)" in result.stdout
    assert "skip: not written yet" in result.stdout and "5 checks collected" in result.stdout
    data = json.loads(run("check", ".", "--collect-only", "--format", "json").stdout)
    assert [c["name"] for c in data["checks"]][:3] == [
        "factor_two", "found_it", "not_broken_after_all"]


def test_overrides_reach_the_checker(run, spec_dir):
    spec_dir("good.yaml", GOOD)
    data = json.loads(run("check", "good.yaml", "--format", "json", "--eps", "1e-4",
                          "--method", "forward", "--mode", "full", "--seed", "3").stdout)
    result = data["checks"][0]["result"]
    assert (result["eps"], result["method"], result["mode"], result["seed"]) == (
        1e-4, "forward", "full", 3)


def test_json_report_validates(run, spec_dir):
    spec_dir("good.yaml", GOOD)
    spec_dir("bad.yaml", BAD)
    spec_dir("typo.yaml", SPEC_ERROR)
    result = run("check", ".", "--format", "json")
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    jsonschema.validate(data, SCHEMA)
    assert data["summary"]["exit_code"] == 2
    statuses = {c["name"]: c["status"] for c in data["checks"]}
    assert statuses == {"factor_two": "failed", "found_it": "xfailed",
                        "not_broken_after_all": "xpassed", "square": "passed",
                        "later": "skipped"}
    assert data["errors"][0]["line"] == 4


def test_junit_to_file_while_table_prints(run, spec_dir, tmp_path):
    spec_dir("good.yaml", GOOD)
    spec_dir("bad.yaml", BAD)
    result = run("check", ".", "--format", "junit", "--output", "report.xml")
    assert result.exit_code == 1
    assert "good.yaml::square" in result.stdout          # the table
    suite = ET.parse(tmp_path / "report.xml").getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 5 and {c.get("name") for c in cases} == {
        "square", "later", "factor_two", "found_it", "not_broken_after_all"}
    assert suite.get("failures") == "2" and suite.get("skipped") == "2"


def test_github_annotations_and_junit_in_one_run(run, spec_dir, tmp_path):
    spec_dir("bad.yaml", BAD)
    result = run("check", "bad.yaml", "--format", "github", "--output", "junit.xml")
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == 2
    assert errors[0].startswith("::error file=bad.yaml,line=14,col=5,title=gradtool%3A "
                                "gradient check failed%3A factor_two::")
    assert (tmp_path / "junit.xml").exists()


def test_output_needs_a_known_format(run, spec_dir):
    spec_dir("good.yaml", GOOD)
    result = run("check", "good.yaml", "--output", "report.dat")
    assert result.exit_code == 2 and "cannot tell the format" in result.stderr


def test_save_failures(run, spec_dir, tmp_path):
    spec_dir("bad.yaml", BAD)
    result = run("check", "bad.yaml", "--save-failures", "saved")
    assert result.exit_code == 1
    saved = tmp_path / "saved" / "bad__factor_two.npz"
    data = np.load(saved)
    assert data["x"].shape == (4,) and "__seed__" in data
    assert sorted(p.name for p in (tmp_path / "saved").iterdir()) == ["bad__factor_two.npz"]


def test_no_python_refuses_python_refs(run, spec_dir):
    spec_dir("py.yaml", """\
version: 1
functions:
  F:
    python: os.path:join
checks:
  - name: c
    expr: F(x)
    inputs:
      x: [1.0]
""")
    result = run("check", "py.yaml", "--no-python")
    assert result.exit_code == 2 and "py.yaml:" in result.stderr


def test_example_specs_all_pass(run, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = run("check", "specs", "-q")
    assert result.exit_code == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed, 5 xfailed in [\d.]+s", summary), summary


def test_console_script_subprocess(console_script, spec_dir, tmp_path):
    spec_dir("good.yaml", GOOD)
    spec_dir("bad.yaml", BAD)
    ok = subprocess.run(console_script + ["check", "good.yaml", "--format", "json"],
                        capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["summary"]["passed"] == 1
    failed = subprocess.run(console_script + ["check", "bad.yaml"], capture_output=True,
                            text=True, cwd=tmp_path, timeout=120,
                            env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"})
    assert failed.returncode == 1 and "\x1b[" not in failed.stdout
    usage = subprocess.run(console_script + ["check", "missing.yaml"], capture_output=True,
                           text=True, cwd=tmp_path, timeout=120)
    assert usage.returncode == 2
    assert usage.stderr.startswith("missing.yaml: no such file or folder")


def test_user_strings_are_not_rich_markup(run, spec_dir, tmp_path):
    spec_dir("m.yaml", GOOD.replace("name: square", "name: '[red]sq[/red] :thumbs_up:'"))
    result = run("check", "m.yaml", "--output", "r.txt")
    assert "[red]sq[/red] :thumbs_up:" in result.stdout
    assert "[red]sq[/red] :thumbs_up:" in (tmp_path / "r.txt").read_text()


def test_seed_override_draws_other_inputs():
    from gradtool.runner import Overrides
    from gradtool.spec import loads
    spec = loads("checks:\n  - name: c\n    expr: x.exp().sum()\n    inputs: {x: {shape: [3]}}\n")
    [check] = spec.checks
    same = check.build().inputs[0].detach().numpy()
    other = Overrides(seed=check.seed + 1).applied_to(check).build().inputs[0]
    assert not np.allclose(same, other.detach().numpy())
    assert np.allclose(same, Overrides().applied_to(check).build().inputs[0].detach().numpy())
