"""Documented sample output is generated from real runs: each ``<!-- sample: COMMAND -->``
block of the docs must be what COMMAND prints (times and error magnitudes aside: they vary
with the machine).  ``GRADTOOL_UPDATE_DOCS=1 pytest tests/test_docs.py`` rewrites them."""

import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradtool.cli.app import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SAMPLE = re.compile(r"<!-- sample: (?P<command>[^\n]*?) -->\n```[^\n]*\n(?P<body>.*?)```",
                    re.DOTALL)
#: what varies between machines and runs: timings, and the last digits of tiny errors
VARYING = [(re.compile(r" *\b\d+(\.\d+)? ?(ms|s)\b"), " <time>"),
           (re.compile(r"[-+]?\d\.\d\de[-+]\d\d"), "<num>")]


def _samples():
    for path in DOCS:
        for match in SAMPLE.finditer(path.read_text(encoding="utf-8")):
            yield pytest.param(path, match.group("command"),
                               id=f"{path.name}: {match.group('command')}")


def _normalized(text: str) -> str:
    for pattern, placeholder in VARYING:
        text = pattern.sub(placeholder, text)
    return "\n".join(line.rstrip() for line in text.splitlines())


def _run(command: str, monkeypatch) -> str:
    args = shlex.split(command)
    assert args[0] == "gradtool"
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(cli, args[1:], env={"NO_COLOR": "1", "COLUMNS": "100"},
                                catch_exceptions=False)
    assert result.exit_code in (0, 1, 2), result.output
    return result.stdout


@pytest.mark.parametrize("path, command", list(_samples()))
def test_documented_output_is_a_real_run(path, command, monkeypatch):
    output = _run(command, monkeypatch)
    text = path.read_text(encoding="utf-8")
    match = next(m for m in SAMPLE.finditer(text) if m.group("command") == command)
    if os.environ.get("GRADTOOL_UPDATE_DOCS"):
        start, end = match.span("body")
        path.write_text(text[:start] + output.rstrip("\n") + "\n" + text[end:],
                        encoding="utf-8")
        return
    assert _normalized(match.group("body")) == _normalized(output)


def test_every_doc_has_its_samples():
    assert len(list(_samples())) >= 3


#: a path a doc presents as a file of this repository: a YAML block's "# specs/x.yaml"
#: label, a load("specs/x.yaml") call, a sample's command
PRESENTED = re.compile(r"(?:^# |load\(\"|<!-- sample: gradtool [^\n]*?)"
                       r"((?:specs|docs/samples)/[\w./-]+\.ya?ml)", re.MULTILINE)
LABELED_BLOCK = re.compile(r"```yaml\n# (specs/[\w./-]+\.ya?ml)[^\n]*\n(.*?)```", re.DOTALL)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_files_the_docs_present_exist(path):
    for name in PRESENTED.findall(path.read_text(encoding="utf-8")):
        assert (ROOT / name).is_file(), f"{path.name} names {name}, which does not exist"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_a_spec_shown_as_a_file_is_that_files_content(path):
    """A YAML block labeled ``# specs/x.yaml`` loads, and its checks are the file's."""
    from gradtool.spec import load, loads
    for name, body in LABELED_BLOCK.findall(path.read_text(encoding="utf-8")):
        shown = loads(body, name)
        real = {c.name: c for c in load(ROOT / name).checks}
        for check in shown.checks:
            assert check.name in real, f"{path.name}: {name} has no check {check.name}"
            assert check.expr == real[check.name].expr
