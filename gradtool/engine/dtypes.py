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


#: how torch names each dtype in its messages: the ScalarType ("Double", "Long") and the
#: C++ type ("double", "long int")
_TORCH_NAMES = {
    np.dtype(np.float64): ("Double", "double"), np.dtype(np.float32): ("Float", "float"),
    np.dtype(np.float16): ("Half", "c10::Half"),
    np.dtype(np.complex128): ("ComplexDouble", "c10::complex<double>"),
    np.dtype(np.complex64): ("ComplexFloat", "c10::complex<float>"),
    np.dtype(np.int64): ("Long", "long int"), np.dtype(np.int32): ("Int", "int"),
    np.dtype(np.int16): ("Short", "short int"), np.dtype(np.int8): ("Char", "signed char"),
    np.dtype(np.uint8): ("Byte", "unsigned char"), np.dtype(np.bool_): ("Bool", "bool"),
}


def _np_of(d) -> np.dtype:
    if isinstance(d, dtype):
        return d.np
    return np.dtype(getattr(d, "dtype", d)) if not isinstance(d, np.dtype) else d


def scalar_type_name(d) -> str:
    """torch's ScalarType name ("Double", "Long", "Bool") of a dtype, numpy dtype or array."""
    np_dtype = _np_of(d)
    return _TORCH_NAMES[np_dtype][0] if np_dtype in _TORCH_NAMES else str(np_dtype)


def c_type_name(d) -> str:
    """torch's C++ type name ("double", "long int") of a dtype, numpy dtype or array."""
    np_dtype = _np_of(d)
    return _TORCH_NAMES[np_dtype][1] if np_dtype in _TORCH_NAMES else str(np_dtype)


def legacy_type_name(d) -> str:
    """torch's legacy tensor type name ("DoubleTensor", "LongTensor") of a dtype or array."""
    return scalar_type_name(d) + "Tensor"


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


def _category(np_dtype) -> int:
    return {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}.get(np_dtype.kind, 2)


def _promote_same_rank(dtypes_) -> np.dtype:
    """torch.promote_types over tensors of one rank: the highest category wins outright
    (int64 + float32 -> float32, where numpy says float64)."""
    top = max(_category(d) for d in dtypes_)
    winners = [d for d in dtypes_ if _category(d) == top]
    result = winners[0]
    for d in winners[1:]:
        result = np.promote_types(result, d)
    if top == 3 and any(d == np.float64 for d in dtypes_):
        result = np.promote_types(result, np.complex128)
    return result


def promote_types(dtypes_) -> np.dtype:
    """torch's result dtype of ops joining tensors of one rank (cat, stack): int64 with
    float32 is float32 (numpy: float64)."""
    return _promote_same_rank([np.dtype(d) for d in dtypes_])


def torch_result_dtype(arrays) -> np.dtype:
    """The dtype torch gives an elementwise op of these arrays: dimensioned tensors decide,
    unless a 0-d tensor is of a higher category (float32 * tensor(2.0, float64) is float32;
    numpy, treating 0-d arrays as strong, says float64)."""
    dims = [a.dtype for a in arrays if a.ndim]
    zeros = [a.dtype for a in arrays if not a.ndim]
    if not dims or not zeros:
        return _promote_same_rank(dims or zeros)
    result = _promote_same_rank(dims)
    zero = _promote_same_rank(zeros)
    return zero if _category(zero) > _category(result) else result


def promoted(out: np.ndarray, arrays) -> np.ndarray:
    """``out`` of an elementwise op on arrays of different dtypes, cast to torch's result
    dtype where numpy's promotion differs (within a kind: comparisons stay bool, true
    division of integers stays floating)."""
    if out.dtype.kind not in "fciu":
        return out
    target = torch_result_dtype(arrays)
    if target != out.dtype and (_category(target) == _category(out.dtype)):
        return out.astype(target)
    return out
