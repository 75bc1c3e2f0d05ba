"""Fixtures of the spec tests."""

import sys

import pytest

from .helpers import FIXTURES


@pytest.fixture
def fixtures_on_path(monkeypatch):
    """Make ``tests/spec/fixtures/mypkg`` importable (``python: mypkg.ops:...``)."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    yield FIXTURES
    for name in [m for m in sys.modules if m == "mypkg" or m.startswith("mypkg.")]:
        del sys.modules[name]

