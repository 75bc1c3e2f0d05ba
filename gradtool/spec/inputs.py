"""Inputs of a check: how they are written, validated and generated.

Generated values are reproducible: each input draws from its own generator seeded with the
check's seed and a CRC32 of the input's name (never Python's salted ``hash``), so the same
spec gives the same inputs on every run and adding an input does not change the others.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from ..engine.ops import tensor as make_tensor
from ..engine.tensor import Tensor
from ..engine.grad_mode import MODE
from ..engine.limits import ELEMENTS_HINT
from ..errors import LimitError, Location, SpecError
from .schema import INPUT, INPUT_VALUE, Context, Item
from .yaml_source import Source, compose

FLOAT_DTYPES = ("float64", "float32", "complex128")
#: distance kept from 'avoid' points by default (and at least 1000 * eps)
DEFAULT_MARGIN = 0.1
#: default [low, high) of uniform integers
INT_RANGE = (0, 10)


@dataclass(frozen=True)
class InputSpec:
    """One input of a check, as written (defaults resolved at build time)."""

    name: str
    value: object = None
    shape: tuple[int, ...] | None = None
    init: str = "normal"
    low: float | None = None
    high: float | None = None
    mean: float = 0.0
    std: float = 1.0
    linspace: tuple[float, float, int] | None = None
    dtype: str | None = None
    requires_grad: bool | None = None
    avoid: tuple[float, ...] = ()
    margin: float | None = None
    positive: bool = False
    location: Location | None = None

    def resolved_dtype(self, check_dtype: str) -> str:
        """The input's dtype: its own, else the check's float dtype."""
        return self.dtype or check_dtype

    def differentiable(self, check_dtype: str) -> bool:
        return self.resolved_dtype(check_dtype) in FLOAT_DTYPES

    def wants_grad(self, check_dtype: str) -> bool:
        """Floating inputs require grad unless ``requires_grad: false``."""
        return self.differentiable(check_dtype) and self.requires_grad is not False

    def elements(self) -> int:
        if self.value is not None:
            return int(np.size(self.value))
        if self.linspace is not None:
            return int(self.linspace[2])
        return math.prod(self.shape or ())

    def make(self, *, seed: int = 0, dtype: str = "float64", eps: float = 1e-6,
             requires_grad: bool = False, max_elements: int = 10**8) -> Tensor:
        """The input as a gradtool tensor (checked against the element cap first)."""
        n = self.elements()
        if n > max_elements:
            raise LimitError(f"input '{self.name}' would have {n:,} elements, over the limit "
                             f"of {max_elements:,}", self.location,
                             hint=ELEMENTS_HINT)
        dtype = self.resolved_dtype(dtype)
        np_dtype = np.dtype(dtype)
        budget = MODE.budget
        if budget is not None:      # refused before generating (which takes a few copies)
            try:
                budget.charge(n * np_dtype.itemsize, f"input '{self.name}'")
            except LimitError as error:
                raise LimitError(error.message, self.location, error.hint) from None
        if self.value is not None:
            try:
                array = np.array(self.value, dtype=np_dtype)
            except (ValueError, OverflowError, TypeError) as exc:
                raise SpecError(f"input '{self.name}': cannot make a {dtype} tensor of this "
                                f"value ({exc})", self.location) from None
        else:
            try:
                array = self._generate(seed, np_dtype, eps)
            except (ValueError, TypeError, OverflowError) as exc:
                raise SpecError(f"input '{self.name}': cannot generate values ({exc})",
                                self.location) from None
        out = make_tensor(array, requires_grad=requires_grad)
        if budget is not None:
            budget.track(out._data)
        return out

    def _generate(self, seed: int, np_dtype: np.dtype, eps: float) -> np.ndarray:
        rng = np.random.default_rng([seed, zlib.crc32(self.name.encode("utf-8"))])
        if self.linspace is not None:
            start, stop, n = self.linspace
            values = np.linspace(start, stop, int(n))
        else:
            values = self._draw(rng, np_dtype)
        if np_dtype.kind in "iub":
            return values.astype(np_dtype)
        margin = self.margin if self.margin is not None else max(DEFAULT_MARGIN, 1000 * eps)
        if self.positive:
            values = np.abs(values) + margin
        for point in self.avoid:
            values = _push_away(values, point, margin)
        return values.astype(np_dtype)

    def _draw(self, rng: np.random.Generator, np_dtype: np.dtype) -> np.ndarray:
        shape = self.shape or ()
        init = self.init
        if init == "zeros":
            return np.zeros(shape)
        if init == "ones":
            return np.ones(shape)
        if init == "arange":
            return np.arange(math.prod(shape), dtype=np.float64).reshape(shape)
        if np_dtype.kind == "b":
            return rng.random(shape) < 0.5
        if np_dtype.kind in "iu":
            low = INT_RANGE[0] if self.low is None else self.low
            high = INT_RANGE[1] if self.high is None else self.high
            return rng.integers(int(low), int(high), size=shape)
        if init == "uniform":
            low = 0.0 if self.low is None else self.low
            high = 1.0 if self.high is None else self.high
            draw = lambda: rng.uniform(low, high, size=shape)  # noqa: E731
        else:
            draw = lambda: rng.normal(self.mean, self.std, size=shape)  # noqa: E731
        if np_dtype.kind == "c":
            return draw() + 1j * draw()
        return draw()


def _push_away(values: np.ndarray, point: float, margin: float) -> np.ndarray:
    """Move values closer than ``margin`` to ``point`` out to exactly ``margin`` away, on
    their own side (values exactly at the point go up)."""
    offset = values - point
    distance = np.abs(offset)
    direction = np.where(distance > 0, offset / np.where(distance > 0, distance, 1), 1)
    return np.where(distance < margin, point + direction * margin, values)


def input_from_item(name: str, item: Item, ctx: Context) -> InputSpec | None:
    """An InputSpec from a validated input item; cross-key errors go to ``ctx``."""
    if not isinstance(item.value, dict):
        if not _rectangular(item.value):
            ctx.error(RAGGED.format(name=name), item.location)
            return None
        return InputSpec(name, value=item.value, location=item.location)
    if not item.complete:
        return None
    fields = {key: sub.plain() for key, sub in item.value.items()}
    where = item.key_locations
    ok = True

    def conflict(key: str, message: str) -> None:
        nonlocal ok
        ok = False
        ctx.error(message, where[key])

    for key, message in INPUT.broken_rules(fields):
        conflict(key, message.format(name=name, key=key, dtype=fields.get("dtype")))
    init = fields.get("init", "normal")
    if "value" in fields and not _rectangular(fields["value"]):
        conflict("value", RAGGED.format(name=name))
    if "linspace" in fields and (fields["linspace"][2] != int(fields["linspace"][2])
                                 or fields["linspace"][2] < 0):
        conflict("linspace", f"input '{name}': linspace [start, stop, n] needs an integer "
                 "n >= 0")
    if "low" in fields and "high" in fields and fields["low"] >= fields["high"]:
        conflict("high", f"input '{name}': 'high' must be greater than 'low'")
    if not ok:
        return None
    linspace = fields.get("linspace")
    return InputSpec(
        name, value=fields.get("value"),
        shape=tuple(fields["shape"]) if "shape" in fields else
        (None if "value" in fields or linspace else ()),
        init=init, low=fields.get("low"), high=fields.get("high"),
        mean=fields.get("mean", 0.0), std=fields.get("std", 1.0),
        linspace=(linspace[0], linspace[1], int(linspace[2])) if linspace else None,
        dtype=fields.get("dtype"), requires_grad=fields.get("requires_grad"),
        avoid=tuple(fields.get("avoid", ())), margin=fields.get("margin"),
        positive=bool(fields.get("positive", False)), location=item.location)


RAGGED = "input '{name}': nested lists must be rectangular (all rows the same length)"


def _rectangular(value) -> bool:
    try:
        np.array(value, dtype=np.float64)
    except (ValueError, OverflowError):
        return False
    return True


def parse_input_value(yaml_text: str, name: str) -> InputSpec:
    """An InputSpec from a YAML flow value (``[1, 2, 3]``, ``{shape: [3], init: uniform}``),
    as given on the command line (``gradtool graph EXPR -i x=[1,2,3]``)."""
    filename = f"<input {name}>"
    node = compose(yaml_text, filename)
    ctx = Context(Source(filename, yaml_text))
    if node is None:
        raise SpecError(f"input '{name}' has no value", Location(filename, 1, 1))
    item = INPUT_VALUE.convert(node, ctx)
    spec = input_from_item(name, item, ctx) if item is not None else None
    _raise_collected(ctx)
    return spec


def _raise_collected(ctx: Context) -> None:
    from ..errors import SpecErrors
    if len(ctx.errors) == 1:
        raise ctx.errors[0]
    if ctx.errors:
        raise SpecErrors(ctx.errors)
