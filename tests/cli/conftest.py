import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradtool.cli.app import cli
from gradtool.render import report_schema

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
REPORT_SCHEMA = report_schema.REPORT_SCHEMA


@pytest.fixture
def run(monkeypatch):
    """Invoke the CLI in-process; returns click's Result (stdout and stderr apart)."""
    monkeypatch.delenv("GRADTOOL_DEBUG", raising=False)

    def invoke(*args, env=None):
        runner = CliRunner()
        return runner.invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)
    return invoke


@pytest.fixture
def console_script():
    """The installed console script (or ``python -m gradtool``)."""
    exe = shutil.which("gradtool") or (str(Path(sys.executable).parent / "gradtool")
                                       if (Path(sys.executable).parent / "gradtool").exists()
                                       else None)
    return [exe] if exe else [sys.executable, "-m", "gradtool"]


@pytest.fixture
def spec_dir(tmp_path, monkeypatch):
    """A scratch folder (the working directory) to write spec files into."""
    monkeypatch.chdir(tmp_path)

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path
    return write
