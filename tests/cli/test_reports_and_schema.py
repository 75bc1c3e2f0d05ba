"""JUnit details CI tools show, the shipped JSON report schema, ``schema -o``."""

import datetime
import json
import time
import xml.etree.ElementTree as ET

import jsonschema

from gradtool.checker.result import BlockResult, CheckResult
from gradtool.render import report
from gradtool.render.report import LoadError, Outcome
from gradtool.render.report_schema import REPORT_SCHEMA


def _block(name, kind, error, diagnosis, passed=False):
    return BlockResult(0, 0, "out", name, passed, kind=kind, diagnosis=diagnosis,
                       max_abs_error=error, max_rel_error=error)


def test_a_failure_message_is_the_worst_blocks_diagnosis():
    result = CheckResult(False, blocks=[
        _block("a", "ok", 1e-9, "", passed=True),
        _block("b", "scale", 0.5, "analytical = 0.5 × numerical"),
        _block("c", "sign", 2.0, "analytical = -1 × numerical: a sign error"),
        _block("d", "nondeterministic", 1e-16, "two backward passes differ"),
    ], input_names=["a", "b", "c", "d"])
    outcome = Outcome("s.yaml", "f", status="failed", message=result.report(),
                      result=result, exit_code=1)
    root = ET.fromstring(report.render_junit([outcome]))
    failure = root.find("testsuite/testcase/failure")
    assert failure.get("message") == ("first order: d out / d c: FAILED (sign): analytical "
                                      "= -1 × numerical: a sign error")
    nan = CheckResult(False, blocks=[_block("b", "scale", 0.5, "x"),
                                     _block("n", "nan", float("nan"), "NaN in the gradient")])
    assert report.worst_diagnosis(Outcome("s", "f", result=nan)).endswith("NaN in the gradient")


def test_a_file_that_does_not_load_is_one_testcase():
    errors = [LoadError("specs/bad.yaml", "unknown key 'chekcs'", 1, 1, hint="checks?"),
              LoadError("specs/bad.yaml", "expected a number", 4, 9),
              LoadError("specs/other.yaml", "YAML syntax error", 2, 3)]
    suite = ET.fromstring(report.render_junit([], errors)).find("testsuite")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("specs.bad", "(load)"), ("specs.other", "(load)")]
    assert suite.get("tests") == "2" and suite.get("errors") == "2"
    error = cases[0].find("error")
    assert error.get("message") == "specs/bad.yaml:1:1: unknown key 'chekcs' (and 1 more)"
    assert "specs/bad.yaml:4:9: expected a number" in error.text


def test_the_timestamp_is_the_runs_start_with_a_timezone():
    started = time.time() - 3600
    suite = ET.fromstring(report.render_junit([], started=started)).find("testsuite")
    stamp = datetime.datetime.fromisoformat(suite.get("timestamp"))
    assert stamp.tzinfo is not None
    assert abs(stamp.timestamp() - started) < 1


def test_the_cli_stamps_junit_with_the_start_of_the_run(run, spec_dir, monkeypatch):
    spec_dir("a.yaml", "checks:\n  - name: a\n    expr: x.sum()\n    inputs:\n      x: [1.0]\n")
    before = time.time()
    result = run("check", "a.yaml", "--format", "junit")
    suite = ET.fromstring(result.stdout).find("testsuite")
    stamp = datetime.datetime.fromisoformat(suite.get("timestamp")).timestamp()
    assert before - 1 <= stamp <= time.time()


def test_schema_report_is_the_schema_reports_validate_against(run, spec_dir, tmp_path):
    spec_dir("a.yaml", "checks:\n  - name: a\n    expr: x.sum()\n    inputs:\n      x: [1.0]\n"
             "  - name: b\n    expr: x.sum()\n    inputs:\n      x: [1.0]\n    skip: true\n")
    printed = run("schema", "--report")
    assert printed.exit_code == 0
    document = json.loads(printed.stdout)
    assert document == json.loads(json.dumps(REPORT_SCHEMA))
    jsonschema.Draft202012Validator.check_schema(document)
    data = json.loads(run("check", "a.yaml", "--format", "json").stdout)
    jsonschema.validate(data, document)
    assert document["properties"]["version"]["const"] == report.REPORT_JSON_VERSION
    bad = dict(data, version=2)
    assert list(jsonschema.Draft202012Validator(document).iter_errors(bad))


def test_schema_dash_o_says_what_it_wrote(run, tmp_path):
    for args, what in ((["schema"], "spec files"), (["schema", "--report"], "JSON reports")):
        target = tmp_path / f"{len(args)}.json"
        result = run(*args, "-o", target)
        assert result.exit_code == 0 and result.stdout == ""
        assert result.stderr == f"wrote {target} (the JSON Schema of gradtool {what})\n"
        assert json.loads(target.read_text())["$schema"].startswith("https://json-schema")
    result = run("schema", "-o", tmp_path / "missing" / "x.json")
    assert result.exit_code == 2 and result.stderr.startswith("error: cannot write ")


def test_xfail_message_is_the_diagnosis_too():
    result = CheckResult(False, blocks=[_block("x", "sign", 2.0, "a sign error")])
    outcome = Outcome("s.yaml", "f", status="xfailed", expect="fail", result=result,
                      message=result.report())
    skipped = ET.fromstring(report.render_junit([outcome])).find("testsuite/testcase/skipped")
    assert skipped.get("message") == ("expected failure: first order: d out / d x: FAILED "
                                      "(sign): a sign error")
