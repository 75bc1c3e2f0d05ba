"""Resource limits for untrusted expressions (the spec language)."""

from __future__ import annotations

import contextlib

from .grad_mode import MODE


@contextlib.contextmanager
def element_limit(max_elements: int):
    """Inside this block every primitive refuses, before allocating, an output with more than
    ``max_elements`` elements (raising ``gradtool.errors.LimitError``).  0 lifts the cap."""
    prev = MODE.max_elements
    MODE.max_elements = int(max_elements)
    try:
        yield
    finally:
        MODE.max_elements = prev
