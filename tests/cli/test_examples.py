"""Every example in the commands' --help texts and in docs/cli.md runs as documented."""

import re
import shlex
import shutil
from pathlib import Path

import pytest

from gradtool.cli.app import cli

ROOT = Path(__file__).resolve().parents[2]
IMAGE = re.compile(r"\.(svg|png|pdf)$")


def help_examples() -> list[str]:
    out = []
    commands = [cli] + [cli.commands[name] for name in sorted(cli.commands)]
    for command in commands:
        text = command.help or ""
        block = text.split("Examples:", 1)[1] if "Examples:" in text else ""
        joined = re.sub(r"\\+\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip()
            if line.startswith("gradtool "):
                out.append(re.split(r"\s{3,}", line)[0])      # drop the description
    return out


def doc_examples() -> list[str]:
    """``gradtool ...`` lines of the shell blocks of docs/cli.md and README.md."""
    text = "".join((ROOT / name).read_text(encoding="utf-8")
                   for name in ("docs/cli.md", "README.md") if (ROOT / name).exists())
    out = []
    for block in re.findall(r"```(?:sh|bash)\n(.*?)```", text, flags=re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            if line.startswith("gradtool "):
                out.append(line)
    return out


def test_examples_are_found():
    assert len(help_examples()) >= 20 and len(doc_examples()) >= 10


@pytest.mark.parametrize("line", help_examples() + doc_examples())
def test_example_runs(line, run, tmp_path, monkeypatch):
    (tmp_path / "specs").symlink_to(ROOT / "specs")
    monkeypatch.chdir(tmp_path)
    args = shlex.split(line, comments=True)[1:]
    if ">" in args:
        args = args[:args.index(">")]
    result = run(*args)
    wants_image = any(IMAGE.search(a) for a in args)
    if wants_image and shutil.which("dot") is None:
        assert result.exit_code == 2 and "Graphviz" in result.stderr
        return
    assert result.exit_code == 0, f"{line}\n{result.stdout}\n{result.stderr}"
