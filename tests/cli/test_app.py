"""The group: help texts with examples, the error boundary and its exit codes."""

from pathlib import Path

import pytest

from gradtool.cli import app, ops

SPECS = Path(__file__).resolve().parents[2] / "specs"


@pytest.mark.parametrize("command", ["check", "graph", "jvp", "vjp", "jacobian", "hessian",
                                     "ops", "schema"])
def test_every_help_shows_an_example(run, command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout and f"gradtool {command}" in result.stdout


def test_version(run):
    assert run("--version").stdout.startswith("gradtool, version ")


def test_unknown_option_is_usage_error(run):
    result = run("check", "--no-such-option")
    assert result.exit_code == 2 and "No such option" in result.stderr


def boom(*args, **kwargs):
    raise RuntimeError("kaboom")


def test_internal_error_is_exit_3_one_line_no_traceback(run, monkeypatch):
    monkeypatch.setattr(ops, "builtin_rows", boom)
    result = run("ops")
    assert result.exit_code == 3
    assert "internal error: RuntimeError: kaboom" in result.stderr
    assert "please report" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("how", ["group", "command", "env"])
def test_debug_shows_the_traceback(run, monkeypatch, how):
    monkeypatch.setattr(ops, "builtin_rows", boom)
    if how == "group":
        result = run("--debug", "ops")
    elif how == "command":
        result = run("ops", "--debug")
    else:
        result = run("ops", env={"GRADTOOL_DEBUG": "1"})
    assert result.exit_code == 3
    assert "Traceback" in result.stderr and "kaboom" in result.stderr


def test_user_error_is_exit_2_without_traceback(run):
    result = run("graph")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: give an expression")
    assert "Traceback" not in result.stderr


def test_ops_lists_builtins_with_modes(run):
    result = run("ops", "-k", "clamp")
    assert result.exit_code == 0
    assert "clamp_min" in result.stdout and "ClampMinBackward0" in result.stdout
    import json
    data = json.loads(run("ops", "--format", "json").stdout)
    rows = {r["name"]: r for r in data["functions"]}
    assert data["version"] == 1
    assert rows["mul"]["arity"] == "2" and rows["mul"]["reverse"] and rows["mul"]["forward"]
    assert rows["eq"]["reverse"] is False
    assert rows["zeros"]["kind"] == "constructor"
    assert "ExpBackward0" in rows["exp"]["nodes"]


def test_schema_is_json_schema(run):
    import json

    import jsonschema
    schema = json.loads(run("schema").stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    import yaml
    for path in sorted(SPECS.glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_ctrl_c_is_130(run, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(ops, "builtin_rows", interrupted)
    result = run("ops")
    assert result.exit_code == 130 and "interrupted" in result.stderr


def test_main_runs_the_group(monkeypatch, capsys):
    with pytest.raises(SystemExit) as info:
        app.main(["--version"])
    assert info.value.code == 0 and "gradtool, version" in capsys.readouterr().out


def test_pre_commit_hook():
    import re

    import yaml
    hooks = yaml.safe_load((SPECS.parent / ".pre-commit-hooks.yaml").read_text())
    hook = {h["id"]: h for h in hooks}["gradtool-check"]
    assert hook["entry"] == "gradtool check --skip-non-specs" and hook["language"] == "python"
    assert hook["pass_filenames"] is True
    pattern = re.compile(hook["files"])
    assert pattern.search("specs/a.yaml") and pattern.search("pkg/specs/b.yml")
    assert not pattern.search("c.json") and not pattern.search("specs/c.json")
    assert not pattern.search(".github/workflows/ci.yml") and not pattern.search("mkdocs.yml")
