"""The [tool.ruff] rule set of pyproject.toml holds for the whole tree (ruff is a dev tool:
skipped where it is not installed)."""

import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install ruff, or the 'dev' extra)")
    done = subprocess.run([ruff, "check", "--no-cache", "gradtool", "tests", "bench"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
