"""``gradtool check`` as pytest users expect it: ids, -k expressions, discovery that skips
what pytest skips, streaming off a terminal, Ctrl-C, -x, ids that never break."""

import os
import sys

import pytest

from gradtool import runner
from gradtool.runner import KeywordExpression, Selected
from gradtool.errors import UsageError

TWO = """\
version: 1
checks:
  - name: relu_one
    expr: x.relu().sum()
    inputs:
      x: [1.0, 2.0]
    tags: [fast]
  - name: relu_two
    expr: (x * x).sum()
    inputs:
      x: [1.0, 2.0]
  - name: tanh
    expr: x.tanh().sum()
    inputs:
      x: [1.0, 2.0]
    tags: [slow]
"""


def _ran(stdout: str) -> list[str]:
    """The ids in the table rows of a run's stdout."""
    return [line.split()[0] for line in stdout.splitlines() if "::" in line.split(" ")[0]]


# ------------------------------------------------------------------ ids and -k
def test_an_id_it_prints_selects_that_check(run, spec_dir):
    spec_dir("specs/a.yaml", TWO)
    result = run("check", "specs/a.yaml::relu_two")
    assert result.exit_code == 0, result.output
    assert _ran(result.stdout) == ["specs/a.yaml::relu_two"]
    both = run("check", "specs/a.yaml::tanh", "specs/a.yaml::relu_one")
    assert _ran(both.stdout) == ["specs/a.yaml::relu_one", "specs/a.yaml::tanh"]


def test_an_unknown_name_in_an_id_is_a_usage_error(run, spec_dir):
    spec_dir("specs/a.yaml", TWO)
    result = run("check", "specs/a.yaml::relu_tw")
    assert result.exit_code == 2
    assert "no check named 'relu_tw'" in result.stderr and "relu_two" in result.stderr
    missing = run("check", "specs/nope.yaml::x")
    assert missing.exit_code == 2 and "specs/nope.yaml: no such file" in missing.stderr


@pytest.mark.parametrize("expression, expected", [
    ("relu", ["relu_one", "relu_two"]),
    ("relu and not two", ["relu_one"]),
    ("not relu", ["tanh"]),
    ("(two or tanh) and not slow", ["relu_two"]),
    ("fast or slow", ["relu_one", "tanh"]),
    ("not not RELU_ONE", ["relu_one"]),
    ("a.yaml and (one or (tanh))", ["relu_one", "tanh"]),
])
def test_k_takes_pytest_expressions(run, spec_dir, expression, expected):
    spec_dir("a.yaml", TWO)
    result = run("check", "a.yaml", "-k", expression)
    assert result.exit_code == 0, result.output
    assert _ran(result.stdout) == [f"a.yaml::{name}" for name in expected]


@pytest.mark.parametrize("expression, message", [
    ("relu and", "expected a word or '(' at the end"),
    ("(relu", "expected ')' at the end"),
    ("relu)", "unexpected ')' at column 5"),
    ("and relu", "expected a word or '(', got 'and' at column 1"),
    ("relu two", "unexpected 'two' at column 6"),
    ("()", "expected a word or '(', got ')' at column 2"),
    ("(" * 200 + "x" + ")" * 200, "nested more than 100 deep"),
])
def test_bad_k_expressions_are_usage_errors(expression, message):
    with pytest.raises(UsageError) as info:
        KeywordExpression(expression)
    assert message in info.value.message


def test_k_never_evaluates_python():
    item = Selected("a.yaml", type("Spec", (), {"name": "os.system", "tags": ()})())
    assert KeywordExpression("os.system").matches(item)      # a word, not an attribute
    assert not KeywordExpression("not os.system").matches(item)
    with pytest.raises(UsageError):
        KeywordExpression("__import__('os')")


# ------------------------------------------------------------------ discovery
WORKFLOW = """\
name: ci
on: [push]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: pytest
"""
MKDOCS = """\
site_name: demo
markdown_extensions:
  - pymdownx.emoji:
      emoji_generator: !!python/name:material.extensions.emoji.to_svg
"""


def test_a_walk_skips_what_pytest_skips_and_yaml_that_is_not_a_spec(run, spec_dir):
    spec_dir("specs/a.yaml", TWO)
    spec_dir("specs/nested/b.yml", TWO.replace("relu_", "b_"))
    spec_dir("mkdocs.yml", MKDOCS)
    spec_dir(".github/workflows/ci.yaml", WORKFLOW)
    spec_dir("config.yaml", "- just\n- a list\n")
    spec_dir("scalar.yaml", "hello\n")
    spec_dir("empty.yaml", "")
    for skipped in (".venv/lib/site-packages/pkg", "node_modules/x", "build", "dist",
                    "__pycache__", "env_like", "thing.egg"):
        spec_dir(f"{skipped}/broken.yaml", "checks: [\n")      # would be an error
    spec_dir("env_like/pyvenv.cfg", "home = /usr\n")
    result = run("check", ".")
    assert result.exit_code == 0, result.output
    files = {i.split("::")[0] for i in _ran(result.stdout)}
    assert files == {"specs/a.yaml", "specs/nested/b.yml"}
    # a folder named explicitly is searched, even a hidden one
    spec_dir(".hidden/c.yaml", TWO)
    assert run("check", ".hidden").exit_code == 0


@pytest.mark.parametrize("text", ["version: 1\n", "functions: {}\nother: 1\n",
                                  "{x: 1, checks: []}\n", "? [complex]\n: 1\nchecks: []\n"])
def test_a_mapping_with_a_spec_key_is_a_spec(tmp_path, text):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    assert runner.looks_like_spec(path)


@pytest.mark.parametrize("text", [WORKFLOW, MKDOCS, "a: {checks: 1}\n", "- checks\n",
                                  "checks\n", "x: [checks, version]\n", "", "a: 1\n---\n"
                                  "checks: []\n"])
def test_other_yaml_is_not(tmp_path, text):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    assert not runner.looks_like_spec(path)


def test_unparsable_yaml_in_a_folder_is_an_error(run, spec_dir):
    spec_dir("specs/a.yaml", TWO)
    spec_dir("specs/broken.yaml", "name: x\nsteps: {a: [1, 2\n")
    spec_dir("specs/latin1.yaml", "")
    (spec_dir("specs/latin1.yaml", "")).write_bytes(b"name: caf\xe9\n")
    result = run("check", "specs")
    assert result.exit_code == 2
    assert "specs/broken.yaml:2:12: YAML syntax error" in result.stderr
    assert "specs/latin1.yaml" in result.stderr and "UTF-8" in result.stderr


def test_a_file_named_is_always_a_spec(run, spec_dir):
    spec_dir("mkdocs.yml", MKDOCS)
    result = run("check", "mkdocs.yml")
    assert result.exit_code == 2 and result.stderr.startswith("mkdocs.yml:")


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks and devices")
def test_dangling_and_device_symlinks_in_a_folder_are_errors(run, spec_dir, tmp_path):
    spec_dir("specs/a.yaml", TWO)
    os.symlink(tmp_path / "gone.yaml", tmp_path / "specs" / "dangling.yaml")
    os.symlink("/dev/zero", tmp_path / "specs" / "zero.yaml")
    os.mkfifo(tmp_path / "specs" / "fifo.yml")
    result = run("check", "specs")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert any(line.startswith("specs/dangling.yaml: broken symbolic link") for line in lines)
    assert any(line.startswith("specs/zero.yaml: not a regular file") for line in lines)
    assert any(line.startswith("specs/fifo.yml: not a regular file") for line in lines)
    assert "3 errors loading 3 files" in result.stdout
    assert run("check", "specs/zero.yaml").exit_code == 2
    assert run("check", "specs/dangling.yaml").exit_code == 2


# ------------------------------------------------------------------ streaming, Ctrl-C, -x
@pytest.fixture
def stdout_buffer(monkeypatch):
    """The byte buffer behind click's test runner's stdout, readable while a run goes on."""
    import contextlib

    from click.testing import CliRunner
    real, captured = CliRunner.isolation, []

    @contextlib.contextmanager
    def isolation(self, *args, **kwargs):
        with real(self, *args, **kwargs) as streams:
            captured[:] = [streams[0]]
            yield streams
    monkeypatch.setattr(CliRunner, "isolation", isolation)
    return lambda: captured[0].getvalue().decode()


def test_off_a_terminal_each_check_is_printed_when_it_finishes(run, spec_dir, monkeypatch,
                                                                stdout_buffer):
    spec_dir("a.yaml", TWO)
    import gradtool.cli.check as check_command
    real, seen = runner.run_check, []

    def spy(item, *args, **kwargs):
        seen.append(stdout_buffer())        # what the report showed when this check began
        return real(item, *args, **kwargs)
    monkeypatch.setattr(check_command, "run_check", spy)
    result = run("check", "a.yaml")
    assert result.exit_code == 0
    assert [len(_ran(text)) for text in seen] == [0, 1, 2]
    assert _ran(result.stdout) == ["a.yaml::relu_one", "a.yaml::relu_two", "a.yaml::tanh"]
    assert result.stdout.count("max abs err") == 1      # one header, no second table


def test_ctrl_c_reports_the_finished_checks_then_exits_130(run, spec_dir, monkeypatch,
                                                            tmp_path):
    spec_dir("a.yaml", TWO)
    import gradtool.cli.check as check_command
    real = runner.run_check
    calls = []

    def interrupted_on_the_third(item, *args, **kwargs):
        calls.append(item.name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(item, *args, **kwargs)
    monkeypatch.setattr(check_command, "run_check", interrupted_on_the_third)
    result = run("check", "a.yaml", "--output", tmp_path / "report.json")
    assert result.exit_code == 130
    assert _ran(result.stdout) == ["a.yaml::relu_one", "a.yaml::relu_two"]
    assert "2 passed, 1 not run (interrupted) in" in result.stdout
    import json
    report = json.loads((tmp_path / "report.json").read_text())
    assert [c["name"] for c in report["checks"]] == ["relu_one", "relu_two"]
    assert report["summary"]["not_run"] == 1 and report["summary"]["interrupted"] is True
    assert report["summary"]["exit_code"] == 130
    import jsonschema

    from gradtool.render.report_schema import REPORT_SCHEMA
    jsonschema.validate(report, REPORT_SCHEMA)


def test_ctrl_c_in_a_real_process(spec_dir, console_script, tmp_path):
    """SIGINT to a running gradtool: the finished checks and the summary, exit 130."""
    import signal
    import subprocess
    spec_dir("slow.yaml", "version: 1\nchecks:\n" + "".join(
        f"  - name: big{i}\n    expr: (x @ x).sum()\n    inputs:\n      x: {{shape: [40, 40]}}\n"
        "    mode: full\n" for i in range(200)))
    process = subprocess.Popen(console_script + ["check", "slow.yaml"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = process.stdout.readline()           # the header: the run has started
    assert first.startswith("check ")
    first += process.stdout.readline()          # one check finished: its row is there
    assert _ran(first) == ["slow.yaml::big0"]
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    rows = _ran(first + out)
    assert rows and rows[0] == "slow.yaml::big0"
    assert f"{len(rows)} passed, {200 - len(rows)} not run (interrupted) in" in out


def test_fail_fast_says_how_many_did_not_run(run, spec_dir):
    spec_dir("a.yaml", TWO.replace("x.relu().sum()", "(x * ones(3)).sum()"))
    result = run("check", "a.yaml", "-x")
    assert result.exit_code == 2
    assert "1 error, 2 not run (-x) in" in result.stdout


# ------------------------------------------------------------------ ids never break
LONG = "a_check_with_a_really_quite_long_and_descriptive_name_that_goes_on_and_on"


@pytest.mark.parametrize("width", [40, 80, 120, 200])
def test_ids_are_never_broken(run, spec_dir, width):
    spec_dir("specs/some_folder/a_spec_file_with_a_long_name.yaml",
             TWO.replace("relu_one", LONG))
    result = run("check", "specs", env={"COLUMNS": str(width)})
    assert result.exit_code == 0
    ident = f"specs/some_folder/a_spec_file_with_a_long_name.yaml::{LONG}"
    row = next(line for line in result.stdout.splitlines() if line.startswith(ident))
    assert row.split()[1] == "PASSED"


def test_the_table_drops_numeric_columns_before_breaking_an_id():
    from rich.console import Console

    from gradtool.render.report import Outcome, TableLayout
    ids = ["specs/x.yaml::" + "n" * 40]
    wide = TableLayout.fit(ids, 200)
    assert [c[0] for c in wide.columns] == ["max abs err", "max rel err", "evals", "time"]
    narrow = TableLayout.fit(ids, 80)
    assert [c[0] for c in narrow.columns] == ["max abs err"]
    tiny = TableLayout.fit(ids, 30)
    assert tiny.columns == ()
    outcome = Outcome("specs/x.yaml", "n" * 40, details={"max_abs_error": 1e-9})
    for layout, width in ((wide, 200), (narrow, 80), (tiny, 30)):
        console = Console(width=width, soft_wrap=True, color_system=None)
        with console.capture() as capture:
            console.print(layout.header())
            console.print(layout.row(outcome))
        header, row = capture.get().splitlines()
        assert row.startswith(ids[0] + "  PASSED")
        assert len(row) <= max(width, len(ids[0]) + 8)


def test_every_id_collect_only_prints_runs_that_check(run, spec_dir):
    spec_dir("specs/a.yaml", TWO)
    listed = run("check", "specs", "--collect-only").stdout.splitlines()[:-1]
    ids = [line.split()[0] for line in listed]
    assert ids == ["specs/a.yaml::relu_one", "specs/a.yaml::relu_two", "specs/a.yaml::tanh"]
    for ident in ids:
        assert _ran(run("check", ident).stdout) == [ident]


def test_long_source_lines_are_cut_around_the_caret():
    from gradtool.cli.console import EXCERPT_WIDTH, cut_around
    line = "x + " * 200 + "sigmod(x)" + " + x" * 200
    start = line.index("sigmod")
    cut, begin, end = cut_around(line, start, start + 6)
    assert len(cut) <= EXCERPT_WIDTH + 2 and cut.startswith("…") and cut.endswith("…")
    assert cut[begin:end] == "sigmod"
    short, begin, end = cut_around("expr: sigmod(x)", 6, 12)
    assert (short, begin, end) == ("expr: sigmod(x)", 6, 12)
    head, begin, end = cut_around("sigmod(x)" + " + x" * 100, 0, 6)
    assert head[begin:end] == "sigmod" and not head.startswith("…") and head.endswith("…")
    tail_line = "x + " * 100 + "sigmod(x)"
    tail, begin, end = cut_around(tail_line, len(tail_line) - 9, len(tail_line) - 3)
    assert tail[begin:end] == "sigmod" and tail.startswith("…") and not tail.endswith("…")


def test_the_progress_bar_shows_counts_and_elapsed_time(run, spec_dir):
    spec_dir("a.yaml", "checks:\n" + "".join(
        f"  - name: c{i}\n    expr: x.sum()\n    inputs:\n      x: [1.0]\n" for i in range(6))
        + "  - name: bad\n    expr: (x * ones(2)).sum()\n    inputs:\n      x: [1.0, 2.0, 3.0]\n")
    result = run("check", "a.yaml", env={"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1",
                                         "TTY_INTERACTIVE": "1"})
    assert result.exit_code == 2
    import re
    plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", result.stderr)
    assert re.search(r"\d passed, \d failed", plain), plain
    assert re.search(r"\d:\d\d:\d\d", plain), plain


def test_a_huge_yaml_in_a_folder_is_reported_not_read(run, spec_dir, monkeypatch):
    from gradtool.spec import yaml_source
    monkeypatch.setattr(yaml_source, "MAX_FILE_BYTES", 1000)
    spec_dir("specs/a.yaml", TWO)
    spec_dir("specs/data.yaml", "rows:\n" + "  - 1\n" * 500)
    result = run("check", "specs")
    assert result.exit_code == 2 and "specs/data.yaml" in result.stderr
    assert "too large" in result.stderr


def test_a_folder_with_only_a_broken_link_says_so_once(run, spec_dir, tmp_path):
    os.makedirs(tmp_path / "specs")
    os.symlink(tmp_path / "gone.yaml", tmp_path / "specs" / "x.yaml")
    result = run("check", ".")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0].startswith("specs/x.yaml: broken symbolic link")
    assert "no spec files" not in result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks")
def test_linked_folders_are_followed_once(run, spec_dir, tmp_path):
    spec_dir("shared/a.yaml", TWO)
    os.makedirs(tmp_path / "specs")
    os.symlink(tmp_path / "shared", tmp_path / "specs" / "linked")
    os.symlink(tmp_path / "specs", tmp_path / "specs" / "loop")      # a cycle
    result = run("check", "specs")
    assert result.exit_code == 0, result.output
    # shown by the real path (each file once, however many links lead to it)
    assert _ran(result.stdout) == ["shared/a.yaml::relu_one", "shared/a.yaml::relu_two",
                                   "shared/a.yaml::tanh"]
    one = run("check", "specs/linked/a.yaml::tanh")
    assert _ran(one.stdout) == ["shared/a.yaml::tanh"]


@pytest.mark.parametrize("target, message", [
    ("::", "::: no such file or folder"),
    ("specs::relu_one", "specs::relu_one: a check id names a spec file and a check"),
    ("specs/a.yaml::", "no check named ''"),
])
def test_malformed_ids_are_usage_errors(run, spec_dir, target, message):
    spec_dir("specs/a.yaml", TWO)
    result = run("check", target)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
