"""Hostile input and resources through the command line (issue 11): limits on the command
line, paths that are not files, control characters, thousands of errors, --save-failures
names, --output written whole, stdout that cannot be written."""

import errno
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from gradtool.cli import files

PASSING = "checks:\n  - name: square\n    expr: (x * x).sum()\n    inputs: {x: [1.0, 2.0]}\n"
FAILING = ("checks:\n  - name: wrong\n    expr: Bad(x).sum()\n    inputs: {x: [1.0, 2.0]}\n"
           "functions:\n  Bad:\n    args: [x]\n    forward: x * x\n    backward: {x: grad * x}\n")


def no_traceback(result):
    assert "Traceback" not in result.stdout + result.stderr


# ---- limits on the command line --------------------------------------------------------------
@pytest.mark.parametrize("option, value, words", [
    ("--max-memory", "12ZB", "unknown unit"), ("--max-memory", "-1", "cannot read"),
    ("--max-elements", "1.5", "whole number"), ("--timeout", "3x", "unknown unit"),
    ("--timeout", "nan", "cannot read"), ("--max-memory", "1e40", "too large")])
@pytest.mark.parametrize("command", [["check"], ["graph", "(x*x).sum()", "-i", "x=[1]"],
                                     ["jacobian", "x*x", "-i", "x=[1]"]])
def test_bad_limit_values_are_usage_errors(run, spec_dir, command, option, value, words):
    spec_dir("a.yaml", PASSING)
    args = command + (["a.yaml"] if command == ["check"] else []) + [option, value]
    result = run(*args)
    assert result.exit_code == 2 and words in result.stderr and option in result.stderr
    no_traceback(result)


def test_command_line_limits_win_over_the_spec(run, spec_dir):
    spec_dir("big.yaml", "defaults:\n  limits: {max_elements: 10}\nchecks:\n"
                         "  - name: big\n    expr: (ones(100) * x).sum()\n"
                         "    inputs: {x: 1.0}\n")
    result = run("check", "big.yaml")
    assert result.exit_code == 2 and "over the limit of 10" in result.stdout
    assert "big.yaml:5:12" in result.stdout
    assert run("check", "big.yaml", "--max-elements", "1k").exit_code == 0


def test_memory_budget_on_the_command_line(run, spec_dir):
    spec_dir("m.yaml", "checks:\n  - name: m\n    expr: (ones(100000) * x).sum()\n"
                       "    inputs: {x: 1.0}\n")
    result = run("check", "m.yaml", "--max-memory", "500kB")
    assert result.exit_code == 2
    assert "over the memory budget of 488.3 KiB" in result.stdout
    assert "--max-memory" in result.stdout
    # the checker evaluates perturbed copies in a batch: a few times the expression's size
    assert run("check", "m.yaml", "--max-memory", "8MiB").exit_code == 0
    result = run("graph", "(ones(100000) * x).sum()", "-i", "x=1.0", "--max-memory", "500kB")
    assert result.exit_code == 2 and "<expr>:1:2: ones() would allocate" in result.stderr


def test_timeout_on_the_command_line_ends_a_runaway_check(run, spec_dir):
    spec_dir("spinmod2.py", "import numpy as np\nimport gradtool as gt\n"
                            "class Spin(gt.autograd.Function):\n"
                            "    @staticmethod\n    def forward(ctx, x):\n"
                            "        a = np.ones(10)\n        while True:\n"
                            "            a = a * 1.0\n"
                            "    @staticmethod\n    def backward(ctx, g):\n        return g\n")
    spec_dir("spin.yaml", "functions:\n  Spin: {python: spinmod2:Spin}\nchecks:\n"
                          "  - name: spin\n    expr: Spin(x)\n    inputs: {x: [1.0]}\n"
                          "  - name: fine\n    expr: (x * x).sum()\n    inputs: {x: [1.0]}\n")
    start = time.monotonic()
    result = run("check", "spin.yaml", "--timeout", "0.5s", "--format", "json")
    assert time.monotonic() - start < 30
    assert result.exit_code == 2
    import json
    report = json.loads(result.stdout)
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["spin"]["status"] == "error"
    assert "ran longer than the time limit of 0.5 s" in by_name["spin"]["message"]
    assert by_name["fine"]["status"] == "passed"


# ---- paths that are not regular files --------------------------------------------------------
@pytest.fixture
def fifo(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("where", ["fifo", "device", "folder"])
def test_graph_spec_refuses_what_is_not_a_file(run, fifo, tmp_path, where):
    path = {"fifo": fifo, "device": os.devnull, "folder": tmp_path}[where]
    start = time.monotonic()
    result = run("graph", "--spec", path, "--check", "a")
    assert result.exit_code == 2 and time.monotonic() - start < 30
    assert "not a regular file" in result.stderr or "is a directory" in result.stderr
    no_traceback(result)


def test_spec_load_refuses_fifos(fifo):
    from gradtool.errors import SpecError
    from gradtool.spec import load
    with pytest.raises(SpecError, match="not a regular file \\(a named pipe\\)"):
        load(fifo)


@pytest.mark.parametrize("command", [["graph", "(x*x).sum()", "-i", "x=[1]", "-o"],
                                     ["check", "a.yaml", "--format", "junit", "--output"]])
def test_output_onto_a_fifo_or_device_is_refused(run, spec_dir, fifo, command):
    spec_dir("a.yaml", PASSING)
    for target in (fifo, os.devnull):
        result = run(*command, target)
        assert result.exit_code == 2 and "not a regular file" in result.stderr
        no_traceback(result)


# ---- control characters ---------------------------------------------------------------------
def test_control_characters_in_names_are_refused_where_written(run, spec_dir):
    spec_dir("esc.yaml", 'checks:\n  - name: "evil\\e]0;pwned\\a"\n    expr: x\n'
                         '    inputs: {x: 1.0}\n')
    result = run("check", "esc.yaml")
    assert result.exit_code == 2
    assert "esc.yaml:2:11: a check name cannot contain control characters" in result.stderr
    assert "\x1b" not in result.stdout + result.stderr and "\a" not in result.stderr


@pytest.mark.parametrize("fmt", ["table", "github"])
def test_untrusted_text_is_escaped_in_human_formats(run, spec_dir, fmt):
    spec_dir("esc.yaml", 'checks:\n  - name: skipped\n    expr: x\n    inputs: {x: 1.0}\n'
                         '    skip: "\\e[2J\\e]0;title\\a cleared"\n'
                         '  - name: message\n    expr: "mse_loss(x, x, reduction=\\"\\e[31m\\")"\n'
                         '    inputs: {x: 1.0}\n')
    result = run("check", "esc.yaml", "--format", fmt, "-v")
    out = result.stdout + result.stderr
    assert "\x1b" not in out and "\a" not in out
    assert "\\x1b[31m" in out
    listing = run("check", "esc.yaml", "--collect-only")
    assert "\x1b" not in listing.stdout and "\a" not in listing.stdout
    assert "skip: \\x1b[2J\\x1b]0;title" in listing.stdout


def test_the_table_in_a_file_is_escaped_too(run, spec_dir, tmp_path):
    spec_dir("esc.yaml", 'checks:\n  - name: m\n'
                         '    expr: "mse_loss(x, x, reduction=\\"\\e[31m\\")"\n'
                         '    inputs: {x: 1.0}\n')
    run("check", "esc.yaml", "--output", "report.txt")
    text = (tmp_path / "report.txt").read_text()
    assert "\\x1b[31m" in text and "\x1b" not in text


def test_loading_is_under_the_time_limit(run, spec_dir):
    spec_dir("loopmod.py", "import gradtool as gt\nclass Net(gt.nn.Module):\n"
                           "    def __init__(self):\n        super().__init__()\n"
                           "        while True:\n            pass\n")
    spec_dir("loop.yaml", "modules:\n  net: {python: loopmod:Net}\nchecks:\n"
                          "  - name: a\n    expr: net(x)\n    inputs: {x: [1.0]}\n")
    result = run("check", "loop.yaml", "--timeout", "0.5")
    assert result.exit_code == 2
    assert "loop.yaml:2:17: module 'net': loopmod:Net: loading loop.yaml ran longer than " \
           "the time limit of 0.5 s" in result.stderr
    assert "--timeout" in result.stderr


def test_json_keeps_text_as_written(run, spec_dir):
    spec_dir("esc.yaml", 'checks:\n  - name: s\n    expr: x\n    inputs: {x: 1.0}\n'
                         '    skip: "a\\e[2Jb"\n')
    import json
    report = json.loads(run("check", "esc.yaml", "--format", "json").stdout)
    assert report["checks"][0]["message"] == "a\x1b[2Jb"


# ---- thousands of errors ---------------------------------------------------------------------
def _many_errors(n: int, pad: int) -> str:
    lines = ["checks:"]
    for i in range(n):
        lines += [f"  - name: c{i}", f"    expr: (x * y{i}).sum()", "    inputs: {x: [1.0]}",
                  "# " + "p" * pad]
    return "\n".join(lines) + "\n"


def test_errors_are_capped_per_file(run, spec_dir):
    spec_dir("many.yaml", _many_errors(120, 10))
    result = run("check", "many.yaml")
    assert result.exit_code == 2
    assert result.stderr.count("unknown name 'y") == 50
    assert "many.yaml: ... and 70 more errors in this file" in result.stderr


def test_error_reporting_grows_linearly_with_the_file(run, spec_dir):
    """2,000 errors in a 4 MB file: the time grows like the file (read once, each error
    located without rescanning), not like errors x size (124 s before)."""
    def timed(n):
        spec_dir(f"e{n}.yaml", _many_errors(n, 2000))
        start = time.perf_counter()
        result = run("check", f"e{n}.yaml")
        assert result.exit_code == 2 and "more errors in this file" in result.stderr
        return time.perf_counter() - start
    small = min(timed(200) for _ in range(2))
    large = timed(2000)         # 10x the errors and the bytes: quadratic would be ~100x
    assert large < 25 * small + 1.0, (small, large)


# ---- --save-failures names ------------------------------------------------------------------
def test_save_failures_names_never_collide(run, spec_dir, tmp_path):
    body = ("    expr: Bad(x).sum()\n    inputs: {x: [1.0, 2.0]}\n")
    spec_dir("s.yaml", "functions:\n  Bad:\n    args: [x]\n    forward: x * x\n"
                       "    backward: {x: grad * x}\nchecks:\n"
                       "  - name: a/b\n" + body + "  - name: a_b\n" + body +
                       "  - name: a?b\n" + body)
    spec_dir("other/s.yaml", "functions:\n  Bad:\n    args: [x]\n    forward: x * x\n"
                             "    backward: {x: grad * x}\nchecks:\n  - name: a_b\n" + body)
    result = run("check", "s.yaml", "other/s.yaml", "--save-failures", "saved")
    assert result.exit_code == 1
    saved = sorted(p.name for p in (tmp_path / "saved").iterdir())
    assert len(saved) == 4 and "s__a_b.npz" in saved
    assert all(name.startswith("s__a_b") for name in saved)
    for name in saved:
        assert f"saved/{name}" in result.stdout.replace(os.sep, "/")


# ---- --output written whole ------------------------------------------------------------------
def test_output_is_replaced_atomically(run, spec_dir, tmp_path):
    spec_dir("a.yaml", PASSING)
    report = tmp_path / "report.xml"
    report.write_text("previous")
    assert run("check", "a.yaml", "--output", "report.xml").exit_code == 0
    assert ET.fromstring(report.read_text()).tag == "testsuites"
    assert sorted(os.listdir(tmp_path)) == ["a.yaml", "report.xml"]


def test_a_failed_write_keeps_the_previous_report(run, spec_dir, tmp_path, monkeypatch):
    spec_dir("a.yaml", PASSING)
    report = tmp_path / "report.xml"
    report.write_text("<previous/>")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(files.os, "fsync", full)
    result = run("check", "a.yaml", "--output", "report.xml")
    assert result.exit_code == 2
    assert "cannot write report.xml: No space left on device" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 2       # the error and its hint
    assert report.read_text() == "<previous/>"
    assert sorted(os.listdir(tmp_path)) == ["a.yaml", "report.xml"]   # no temporary left


def test_write_atomic_follows_symlinks_and_keeps_the_mode(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    os.chmod(target, 0o640)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    files.write_atomic(str(link), "new")
    assert link.is_symlink() and target.read_text() == "new"
    assert oct(os.stat(target).st_mode & 0o777) == oct(0o640)


# ---- stdout that cannot be written -----------------------------------------------------------
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["check", "a.yaml"], ["check", "a.yaml", "--format", "json"],
                                  ["graph", "(x*x).sum()", "-i", "x=[1,2]"]])
def test_a_full_disk_on_stdout_is_one_line_and_exit_2(console_script, spec_dir, args):
    spec_dir("a.yaml", PASSING)
    with open("/dev/full", "w") as full:
        proc = subprocess.run(console_script + args, stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "error: cannot write standard output: No space left on " \
                                  "device"


@pytest.mark.skipif(sys.platform == "win32", reason="needs ulimit")
def test_a_file_too_large_on_stdout_is_exit_2(console_script, spec_dir, tmp_path):
    import resource
    spec_dir("a.yaml", PASSING * 1)
    out = tmp_path / "out.txt"

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))
    with open(out, "w") as handle:
        proc = subprocess.run(console_script + ["check", "a.yaml", "--format", "json"],
                              stdout=handle, stderr=subprocess.PIPE, text=True, timeout=120,
                              preexec_fn=limit)
    assert proc.returncode == 2, proc.stderr
    assert "cannot write standard output: File too large" in proc.stderr
    assert "Traceback" not in proc.stderr


# ---- the reproductions of issue 11, through `gradtool check` ----------------------------------
N = "n = k.sum().long() * 0 + 300000000\n      "
HOSTILE = [
    pytest.param(N + "ones(n).sum() * x", "ones() would create", id="ones"),
    pytest.param(N + "zeros(n).sum() * x", "zeros() would create", id="zeros"),
    pytest.param(N + "empty(n).sum() * x", "", id="empty"),
    pytest.param(N + "full((n,), 2.0).sum() * x", "full() would create", id="full"),
    pytest.param(N + "linspace(0.0, 1.0, n).sum() * x", "linspace() would create",
                 id="linspace"),
    pytest.param("n = k.sum().long() * 0 + 30000\n      eye(n).sum() * x", "eye() would create",
                 id="eye"),
    pytest.param("a = ones(50000) * x\n      b = ones(50000) * x\n      c = ones(50000) * x\n"
                 "      (a + b + c).sum()", "over the memory budget", id="memory"),
]


@pytest.mark.parametrize("expr, words", HOSTILE)
def test_issue_reproductions_are_refused_where_written(run, spec_dir, expr, words):
    spec_dir("h.yaml", "defaults:\n  limits: {max_memory: 1MiB}\nchecks:\n  - name: h\n"
                       f"    expr: |\n      {expr}\n"
                       "    inputs: {x: 1.0, k: {shape: [3], requires_grad: false}}\n")
    result = run("check", "h.yaml", "--format", "github")
    assert result.exit_code == 2
    assert re.search(r"file=h\.yaml,line=(7|8|9),col=\d+", result.stdout), result.stdout
    assert words in result.stdout
    no_traceback(result)


def test_linear_modules_over_the_budget_are_refused_before_running(run, spec_dir):
    spec_dir("lin.yaml", "defaults:\n  limits: {max_memory: 8MB}\nmodules:\n"
             + "".join(f"  l{i}: {{Linear: [300, 1000]}}\n" for i in range(8))
             + "checks:\n  - name: lin\n    expr: (" + " + ".join(f"l{i}(x)" for i in range(8))
             + ").sum()\n    inputs: {x: {shape: [1, 300]}}\n")
    result = run("check", "lin.yaml")
    assert result.exit_code == 2
    assert "lin.yaml:15:13: check 'lin': its inputs and module parameters take 18.37 MiB, " \
           "over the memory budget of 7.629 MiB" in result.stderr
    no_traceback(result)


def test_graph_of_a_runaway_check_ends_at_the_timeout(run, spec_dir):
    spec_dir("spinmod3.py", "import numpy as np\nimport gradtool as gt\n"
                            "class Spin(gt.autograd.Function):\n"
                            "    @staticmethod\n    def forward(ctx, x):\n"
                            "        while True:\n            try:\n"
                            "                np.ones(10) * 2\n"
                            "            except Exception:\n                pass\n"
                            "    @staticmethod\n    def backward(ctx, g):\n        return g\n")
    spec_dir("spin.yaml", "functions:\n  Spin: {python: spinmod3:Spin}\nchecks:\n"
                          "  - name: spin\n    expr: Spin(x).sum()\n    inputs: {x: [1.0]}\n")
    result = run("graph", "--spec", "spin.yaml", "--check", "spin", "--timeout", "300ms")
    assert result.exit_code == 2
    assert "spin.yaml:5:11: " in result.stderr
    assert "graph' ran longer than the time limit of 0.3 s" in result.stderr
    assert "hint: raise it with --timeout" in result.stderr
