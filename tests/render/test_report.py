"""Check-run reports (table, JSON, JUnit, GitHub) from hand-made outcomes."""

import json
import xml.etree.ElementTree as ET
from io import StringIO

import jsonschema
import numpy as np
from rich.console import Console

from gradtool.checker.result import BlockResult, CheckResult
from gradtool.render import report
from gradtool.render.report import LoadError, Outcome
from gradtool.render import report_schema

#: The JSON report format (documented in docs/cli.md, shipped as gradtool schema --report)
REPORT_SCHEMA = report_schema.REPORT_SCHEMA


def failing_result():
    numerical = np.eye(2)
    analytical = -np.eye(2)
    block = BlockResult(0, 0, "out", "x", False, kind="sign",
                        diagnosis="analytical = -1 × numerical: a sign error",
                        max_abs_error=2.0, max_rel_error=2.0, worst_index=((0,), (0,)),
                        numerical_value=1.0, analytical_value=-1.0,
                        numerical=numerical, analytical=analytical)
    return CheckResult(False, blocks=[block], input_names=["x"], n_evals=4)


def outcomes():
    bad = Outcome("specs/a.yaml", "sign, error", line=7, column=5, status="failed",
                  message="gradient check FAILED\n  d out / d x: sign error", exit_code=1,
                  result=failing_result(),
                  details={"max_abs_error": 2.0, "max_rel_error": 2.0, "evaluations": 4})
    return [
        Outcome("specs/a.yaml", "good", line=3, column=5, status="passed", tags=("fast",),
                details={"max_abs_error": 1e-10, "max_rel_error": 1e-9, "evaluations": 6}),
        bad,
        Outcome("specs/b.yaml", "later", line=2, status="skipped", message="not yet"),
        Outcome("specs/b.yaml", "broken", line=9, status="xfailed", expect="fail",
                message="gradient check FAILED"),
        Outcome("specs/b.yaml", "lucky", line=12, status="xpassed", expect="fail",
                exit_code=1),
        Outcome("specs/b.yaml", "raises", line=15, column=11, status="error",
                message="name 'y' is not defined", hint="did you mean 'x'?", exit_code=2),
    ]


LOAD_ERRORS = [LoadError("specs/c.yaml", "unknown key 'chekcs'", 1, 1,
                         hint="did you mean 'checks'?")]


def test_exit_code_is_the_highest():
    assert report.exit_code(outcomes(), LOAD_ERRORS) == 2
    assert report.exit_code(outcomes()[:2]) == 1
    assert report.exit_code(outcomes()[:1]) == 0
    assert report.exit_code([], [LoadError("f", "m", exit_code=3)]) == 3


def test_summary_line():
    text = report.summary_text(outcomes(), LOAD_ERRORS, 0.5).plain
    assert text == ("1 passed, 1 failed, 1 xpassed, 1 error, 1 skipped, 1 xfailed, "
                    "1 error loading 1 file in 0.50s")


def test_json_validates_against_schema():
    data = json.loads(report.render_json(outcomes(), LOAD_ERRORS, elapsed=0.25))
    jsonschema.validate(data, REPORT_SCHEMA)
    assert data["summary"]["exit_code"] == 2
    assert [c["status"] for c in data["checks"]] == [
        "passed", "failed", "skipped", "xfailed", "xpassed", "error"]
    assert data["checks"][1]["id"] == "specs/a.yaml::sign, error"


def test_junit_one_testcase_per_check():
    root = ET.fromstring(report.render_junit(outcomes(), LOAD_ERRORS, elapsed=1.0))
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 6 + 1
    assert suite.get("tests") == "7" and suite.get("failures") == "2"
    assert suite.get("errors") == "2" and suite.get("skipped") == "2"
    by_name = {c.get("name"): c for c in cases}
    assert by_name["good"].find("failure") is None
    assert "sign error" in by_name["sign, error"].find("failure").text
    assert by_name["later"].find("skipped").get("message") == "not yet"
    assert by_name["broken"].find("skipped").get("type") == "pytest.xfail"
    assert by_name["lucky"].find("failure") is not None
    assert by_name["raises"].find("error") is not None
    assert by_name["sign, error"].get("classname") == "specs.a"


def test_github_annotations_escape_and_point_at_checks():
    lines = report.render_github(outcomes(), LOAD_ERRORS).splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    assert len(errors) == 4     # the load error, failed, xpassed, error
    assert errors[0].startswith("::error file=specs/c.yaml,line=1,col=1,title=")
    failed = errors[1]
    assert failed.startswith("::error file=specs/a.yaml,line=7,col=5,title=gradtool%3A "
                             "gradient check failed%3A sign%2C error::")
    assert "%0A" in failed and "\n" not in failed
    assert lines[-1].startswith("1 passed, 1 failed")


def test_table_expands_failures_and_verbose_jacobians():
    buffer = StringIO()
    console = Console(file=buffer, width=120, no_color=True)
    report.render_table(console, outcomes(), LOAD_ERRORS, elapsed=0.1, verbose=True)
    text = buffer.getvalue()
    assert "specs/c.yaml:1:1: unknown key 'chekcs'" in text
    assert "specs/a.yaml::good" in text and "PASSED" in text and "2.00e+00" in text
    assert "FAILED specs/a.yaml:7:5: sign, error" in text
    assert "d out / d x: sign error" in text
    assert "numerical" in text and "analytical" in text
    assert "marked 'expect: fail' but the check passed" in text
    assert "hint: did you mean 'x'?" in text
    assert text.rstrip().endswith("1 error loading 1 file in 0.10s")


def test_quiet_table_has_problems_and_summary_only():
    buffer = StringIO()
    report.render_table(Console(file=buffer, width=100, no_color=True), outcomes()[:2],
                        quiet=True)
    text = buffer.getvalue()
    assert "specs/a.yaml::good" not in text and "FAILED" in text


def test_heatmap_for_large_blocks():
    views = report.jacobian_views(CheckResult(False, blocks=[BlockResult(
        0, 0, "y", "w", False, numerical=np.zeros((20, 30)), analytical=np.eye(20, 30))]))
    buffer = StringIO()
    console = Console(file=buffer, width=120, no_color=True)
    for v in views:
        console.print(v)
    assert "20 x 30" in buffer.getvalue() and "█" in buffer.getvalue()
