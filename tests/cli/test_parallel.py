"""Scale-out: ``check -n N`` reports what a serial run reports, a crashed worker is an error
naming its check, ``--shard K/N`` splits deterministically, ``report merge`` of the parts is
the serial report."""

import json
import random

import numpy as np
import pytest
from click.testing import CliRunner

from gradtool import sharding
from gradtool.cli.app import cli

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
    inputs: {x: {shape: [5]}}
  - name: wrong
    expr: wrong_square(x)
    inputs: {x: {shape: [4], avoid: [0.0]}}
  - name: found_it
    expr: wrong_square(x)
    inputs: {x: {shape: [3], avoid: [0.0]}}
    expect: fail
  - name: later
    expr: x.sum()
    inputs: {x: [1.0]}
    skip: not yet
  - name: bad_shapes
    expr: x.mm(x)
    inputs: {x: {shape: [3]}}
"""

OTHER = """\
version: 1
checks:
  - name: tanh
    expr: x.tanh().sum()
    inputs: {x: {shape: [3, 4]}}
    tags: [fast]
  - name: mixed
    expr: (x.exp() * y).sum()
    inputs: {x: {shape: [6]}, y: {shape: [6]}}
    seed: 3
  - name: softplus
    expr: (1 + x.exp()).log()
    inputs: {x: {shape: [7]}}
"""

CRASH = """\
import os
import gradtool as gt


class Boom(gt.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        os._exit(7)

    @staticmethod
    def backward(ctx, grad):
        return grad
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs" / "more").mkdir(parents=True)
    (tmp_path / "specs" / "a.yaml").write_text(SPEC)
    (tmp_path / "specs" / "more" / "b.yaml").write_text(OTHER)
    return tmp_path


def _check(*args):
    # --mode full: mode=auto decides by a timing, so its label differs between any two runs
    result = CliRunner().invoke(cli, ["check", "specs", "--mode", "full", *args])
    return result.exit_code, result.output


def _stable(document):
    """A JSON report without what differs between two identical runs (times, its date)."""
    if isinstance(document, dict):
        return {key: _stable(value) for key, value in document.items()
                if key not in ("time", "wall_time", "created")}
    if isinstance(document, list):
        return [_stable(value) for value in document]
    return document


def _report(path):
    return _stable(json.loads(path.read_text()))


def test_workers_report_what_a_serial_run_reports(project):
    code, _ = _check("--format", "json", "--output", "serial.json", "--save-failures", "s1")
    assert code == 2                     # a failure (1) and an error (2): the highest wins
    code_n, _ = _check("-n", "2", "--format", "json", "--output", "parallel.json",
                       "--save-failures", "s2")
    assert code_n == code
    serial, parallel = _report(project / "serial.json"), _report(project / "parallel.json")
    serial_messages = [c["message"] for c in serial["checks"]]
    assert [c["status"] for c in serial["checks"]] == \
        ["passed", "failed", "xfailed", "skipped", "error", "passed", "passed", "passed"]
    # the save-failures folder differs by name only
    parallel["checks"][1]["message"] = parallel["checks"][1]["message"].replace("s2", "s1")
    assert parallel == serial
    assert "inputs saved to s1/a__wrong.npz" in serial_messages[1]
    assert sorted(p.name for p in (project / "s1").iterdir()) == \
        sorted(p.name for p in (project / "s2").iterdir()) == ["a__wrong.npz"]
    first, second = np.load(project / "s1" / "a__wrong.npz"), \
        np.load(project / "s2" / "a__wrong.npz")
    assert first.files == second.files
    for name in first.files:
        np.testing.assert_array_equal(first[name], second[name])


def test_workers_keep_the_serial_order_and_fail_fast(project):
    code, serial = _check("-x")
    code_n, parallel = _check("-x", "-n", "3")
    assert code == code_n == 1
    assert [line.split()[0:2] for line in serial.splitlines() if "::" in line] == \
        [line.split()[0:2] for line in parallel.splitlines() if "::" in line]
    assert "not run (-x)" in parallel


def test_a_crashed_worker_is_an_error_naming_its_check(project):
    (project / "specs" / "crash").mkdir()
    (project / "specs" / "crash" / "crashing.py").write_text(CRASH)
    (project / "specs" / "crash" / "c.yaml").write_text(
        'version: 1\nfunctions:\n  Boom: {python: "crashing:Boom"}\nchecks:\n'
        "  - name: boom\n    expr: Boom(x)\n    inputs: {x: {shape: [2]}}\n")
    code, output = _check("-k", "boom or more", "-n", "2", "--format", "json")
    report = json.loads(output)
    assert code == 2
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses == {"boom": "error", "tanh": "passed", "mixed": "passed",
                        "softplus": "passed"}
    boom = next(c for c in report["checks"] if c["name"] == "boom")
    assert "worker process running check 'boom' exited with code 7" in boom["message"]
    assert "python: code" in boom["message"]


def test_workers_option_is_checked(project):
    code, output = _check("-n", "many")
    assert code == 2 and "expected a number of workers or 'auto'" in output
    code, output = _check("-n", "auto", "-k", "tanh", "-q")
    assert code == 0 and "1 passed" in output


# ---------------------------------------------------------------------------- sharding
@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_shard_parts_are_disjoint_complete_and_even(count):
    rng = random.Random(count)
    for size in (0, 1, 7, 40):
        ids = [f"f{rng.randrange(5)}.yaml::c{i}" for i in range(size)]
        parts = sharding.split(ids, count)
        assert parts == sharding.split(list(ids), count)           # deterministic
        flat = [p for part in parts for p in part]
        assert sorted(flat) == list(range(size))                    # complete, disjoint
        assert all(part == sorted(part) for part in parts)          # serial order kept
        sizes = [len(part) for part in parts]
        assert max(sizes) - min(sizes) <= 1


def test_shard_parts_balance_durations():
    rng = random.Random(0)
    ids = [f"s.yaml::c{i}" for i in range(30)]
    durations = {i: rng.choice([0.01, 0.02, 0.5, 3.0]) for i in ids[:-3]}   # 3 never timed
    for count in (2, 3, 4):
        parts = sharding.split(ids, count, durations)
        assert parts == sharding.split(ids, count, dict(reversed(durations.items())))
        assert sorted(p for part in parts for p in part) == list(range(30))
        mean = sum(durations.values()) / len(durations)
        totals = [sum(durations.get(ids[p], mean) for p in part) for part in parts]
        # greedy longest-first: no part exceeds the ideal share by more than one check
        assert max(totals) <= sum(totals) / count + max(durations.values()) + 1e-9
        by_count = sharding.split(ids, count)
        by_count_totals = [sum(durations.get(ids[p], mean) for p in part) for part in by_count]
        assert max(totals) <= max(by_count_totals) + 1e-9


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "a/b", "2", "-1/2"])
def test_bad_shard_values_are_usage_errors(project, text):
    code, output = _check("--shard", text)
    assert code == 2 and "--shard" in output and "Traceback" not in output


def test_shards_together_run_the_serial_set_and_merge_to_its_report(project):
    code, _ = _check("--format", "json", "--output", "serial.json")
    parts, durations = [], project / "durations.json"
    _check("--durations-file", str(durations), "-q")               # times of a first run
    assert set(json.loads(durations.read_text())["durations"]) == \
        {c["id"] for c in json.loads((project / "serial.json").read_text())["checks"]
         if c["status"] != "skipped"}
    for k in (1, 2, 3):     # each part on its own machine, with its copy of the durations
        out, copy = project / f"part{k}.json", project / f"durations{k}.json"
        copy.write_text(durations.read_text())
        _check("--shard", f"{k}/3", "--durations-file", str(copy), "--format", "json",
               "--output", str(out))
        parts.append(str(out))
    try:
        import jsonschema
    except ImportError:         # the test extra has it; the rest of the test runs anyway
        jsonschema = None
    if jsonschema is not None:
        from gradtool.render.report_schema import REPORT_SCHEMA
        for path in parts:
            jsonschema.validate(json.loads(open(path).read()), REPORT_SCHEMA)
    ids = [c["id"] for p in parts for c in json.loads(open(p).read())["checks"]]
    serial = _report(project / "serial.json")
    assert sorted(ids) == sorted(c["id"] for c in serial["checks"]) and len(set(ids)) == 8
    merged = CliRunner().invoke(cli, ["report", "merge", *reversed(parts), "--format", "json",
                                      "--output", "merged.json"])
    assert merged.exit_code == code == 2
    assert _report(project / "merged.json") == serial
    junit = CliRunner().invoke(cli, ["report", "merge", *parts, "--format", "junit",
                                     "--durations-file", "merged-durations.json"])
    assert junit.exit_code == 2 and junit.output.count("<testcase") == 8
    merged_durations = json.loads((project / "merged-durations.json").read_text())
    assert set(merged_durations["durations"]) == set(json.loads(durations.read_text())
                                                    ["durations"])


def test_without_durations_file_nothing_is_written(project):
    before = sorted(p.name for p in project.rglob("*"))
    _check("--shard", "1/2", "-q")
    assert sorted(p.name for p in project.rglob("*")) == before


def test_merge_refuses_reports_that_do_not_fit(project):
    for k in (1, 2):
        _check("--shard", f"{k}/2", "--format", "json", "--output", f"p{k}.json")
    _check("--format", "json", "--output", "whole.json")

    def merge(*paths):
        result = CliRunner().invoke(cli, ["report", "merge", *paths])
        assert result.exit_code == 2 and "Traceback" not in result.output
        return result.output

    assert "part 2 of 2 missing" in merge("p1.json")
    assert "given twice" in merge("p1.json", "p1.json")
    assert "is in two reports" in merge("whole.json", "whole.json")
    assert "some are not" in merge("p1.json", "p2.json", "whole.json")
    other = json.loads((project / "p2.json").read_text())
    other["gradtool_version"] = "0.0.1"
    (project / "old.json").write_text(json.dumps(other))
    assert "different gradtool versions" in merge("p1.json", "old.json")
    other["version"] = 99
    (project / "future.json").write_text(json.dumps(other))
    assert "a version 99 report" in merge("p1.json", "future.json")
    (project / "junk.json").write_text("{not json")
    assert "not a JSON report" in merge("p1.json", "junk.json")
    assert "report missing.json: no such file" in merge("p1.json", "missing.json")


def test_a_corrupt_durations_file_is_a_usage_error(project):
    (project / "d.json").write_text("[1, 2]")
    code, output = _check("--shard", "1/2", "--durations-file", "d.json")
    assert code == 2 and "not a version 1 durations file" in output


def test_a_check_does_not_depend_on_what_ran_before_it(project):
    # what lets workers run any subset in any order: each check draws its inputs from its
    # own seed and leaves nothing behind for the next one
    from gradtool.runner import Overrides, discover, load_all, run_check
    files, _ = discover(["specs"])
    checks, _ = load_all(files)
    overrides = Overrides(mode="full")

    def run(order):
        outcomes = {}
        for item in order:
            outcome = run_check(item, overrides)
            outcomes[item.id] = (outcome.status, outcome.message,
                                 json.dumps(_stable(outcome.details), default=repr))
        return outcomes

    assert run(checks) == run(list(reversed(checks))) == run(checks[::2] + checks[1::2])


def test_pytest_plugin_under_xdist(project):
    pytest.importorskip("xdist")
    import subprocess
    import sys
    (project / "specs" / "crash").mkdir()
    (project / "specs" / "crash" / "crashing.py").write_text(CRASH)
    (project / "specs" / "crash" / "c.yaml").write_text(
        'version: 1\nfunctions:\n  Boom: {python: "crashing:Boom"}\nchecks:\n'
        "  - name: boom\n    expr: Boom(x)\n    inputs: {x: {shape: [2]}}\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "--gradtool", "specs", "-n", "2",
                           "-p", "no:cacheprovider", "-rA", "--rootdir", str(project)],
                          cwd=project, capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 1, out
    assert "3 failed, 4 passed, 1 skipped, 1 xfailed" in out, out
    for failed in ("specs/a.yaml::wrong", "specs/a.yaml::bad_shapes",
                   "specs/crash/c.yaml::boom"):
        assert f"FAILED {failed}" in out, out
    assert "crashed while running 'specs/crash/c.yaml::boom'" in out


SLOW = """\
import time
import gradtool as gt


class Slow(gt.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        time.sleep(60)
        return x * 1

    @staticmethod
    def backward(ctx, grad):
        return grad
"""


def test_ctrl_c_stops_the_workers_and_reports_what_finished(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    (tmp_path / "slow.py").write_text(SLOW)
    (tmp_path / "s.yaml").write_text(
        'version: 1\nfunctions:\n  Slow: {python: "slow:Slow"}\nchecks:\n'
        "  - name: quick\n    expr: x.sin()\n    inputs: {x: {shape: [3]}}\n"
        "  - name: slow1\n    expr: Slow(x)\n    inputs: {x: {shape: [1]}}\n"
        "  - name: slow2\n    expr: Slow(x)\n    inputs: {x: {shape: [1]}}\n")
    start = time.monotonic()
    run = subprocess.Popen([sys.executable, "-m", "gradtool", "check", "s.yaml", "-n", "2",
                            "--timeout", "0"], cwd=tmp_path, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        for line in run.stdout:             # off a terminal: each row as its check ends
            if "s.yaml::quick" in line:
                break
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 130, err
    assert "1 passed, 2 not run (interrupted)" in out
    assert "Traceback" not in err
    assert time.monotonic() - start < 50     # the 60 s sleeps were cut short


def test_merge_reports_a_load_error_once_with_its_exit_code(project):
    (project / "specs" / "broken.yaml").write_text("version: 1\nchecks:\n  - name: [\n")
    code, _ = _check("-k", "more", "--format", "json", "--output", "serial.json")
    for k in (1, 2):
        _check("-k", "more", "--shard", f"{k}/2", "--format", "json", "--output", f"p{k}.json")
    merged = CliRunner().invoke(cli, ["report", "merge", "p1.json", "p2.json", "--format",
                                      "json", "--output", "merged.json"])
    assert code == merged.exit_code == 2
    serial = _report(project / "serial.json")
    assert len(serial["errors"]) == 1 and _report(project / "merged.json") == serial


def test_more_workers_than_checks(project):
    code, output = _check("-k", "tanh", "-n", "7", "--format", "json")
    assert code == 0 and [c["name"] for c in json.loads(output)["checks"]] == ["tanh"]


def test_workers_write_the_serial_junit_and_github_reports(project):
    import re

    def without_times(text):
        return re.sub(r'(time|timestamp)="[^"]*"| in [0-9.]+s', "", text)

    for fmt in ("junit", "github"):
        serial = _check("--format", fmt)
        parallel = _check("--format", fmt, "-n", "2")
        assert serial[0] == parallel[0] == 2
        assert without_times(serial[1]) == without_times(parallel[1])
