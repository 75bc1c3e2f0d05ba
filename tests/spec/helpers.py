"""Helpers for the spec tests: load spec text with exact positions."""

import textwrap
from pathlib import Path

import pytest

from gradtool.errors import SpecError, SpecErrors
from gradtool.spec import loads

FIXTURES = Path(__file__).parent / "fixtures"


def load_text(text: str, **kwargs):
    """Load dedented spec text named ``a.yaml`` (line 1 is the first line of ``text``)."""
    return loads(textwrap.dedent(text).lstrip("\n"), "a.yaml", **kwargs)


def errors_of(text: str, **kwargs) -> list[str]:
    """Every error message (``file:line:col: message``) loading ``text`` gives."""
    with pytest.raises(SpecError) as info:
        load_text(text, **kwargs)
    error = info.value
    items = error.errors if isinstance(error, SpecErrors) else [error]
    return [f"{e.location}: {e.message}" for e in items]


def one_error(text: str, **kwargs) -> str:
    errors = errors_of(text, **kwargs)
    assert len(errors) == 1, errors
    return errors[0]
