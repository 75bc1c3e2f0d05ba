"""dtypes: thin named wrappers over numpy dtypes, printed the way torch prints its own."""

from __future__ import annotations

import numpy as np


class dtype:
    """A gradtool dtype; compares equal to the numpy dtype it wraps."""

    __slots__ = ("name", "np", "is_floating_point", "is_complex")

    def __init__(self, name: str, np_dtype) -> None:
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = self.np.kind == "f"
        self.is_complex = self.np.kind == "c"

    def __repr__(self) -> str:
        return f"gradtool.{self.name}"

    def __eq__(self, other) -> bool:
        if isinstance(other, dtype):
            return self.np == other.np
        try:
            return self.np == np.dtype(other)
        except TypeError:
            return NotImplemented

    def __hash__(self) -> int:
        return hash(self.np)

    @property
    def itemsize(self) -> int:
        return self.np.itemsize


float16 = half = dtype("float16", np.float16)
float32 = float = dtype("float32", np.float32)
float64 = double = dtype("float64", np.float64)
complex64 = dtype("complex64", np.complex64)
complex128 = cdouble = dtype("complex128", np.complex128)
int8 = dtype("int8", np.int8)
int16 = short = dtype("int16", np.int16)
int32 = int = dtype("int32", np.int32)
int64 = long = dtype("int64", np.int64)
uint8 = dtype("uint8", np.uint8)
bool = dtype("bool", np.bool_)

_BY_NP = {d.np: d for d in (float16, float32, float64, complex64, complex128, int8, int16,
                            int32, int64, uint8, bool)}
DEFAULT_FLOAT = float64
BY_NAME = {d.name: d for d in _BY_NP.values()}


def from_np(np_dtype) -> dtype:
    """The gradtool dtype of a numpy dtype."""
    try:
        return _BY_NP[np_dtype]
    except KeyError:
        d = np.dtype(np_dtype)
        if d in _BY_NP:
            return _BY_NP[d]
        raise TypeError(f"unsupported dtype {d}") from None


def to_np(d) -> np.dtype | None:
    """numpy dtype for a gradtool dtype, a numpy dtype, a name or None."""
    if d is None:
        return None
    if isinstance(d, dtype):
        return d.np
    if isinstance(d, str):
        if d in BY_NAME:
            return BY_NAME[d].np
        raise TypeError(f"unknown dtype '{d}'")
    return np.dtype(d)


def is_differentiable(np_dtype) -> bool:
    """Only floating and complex tensors can require gradients (torch's rule)."""
    return np_dtype.kind in "fc"
