"""Shapes and views: reshape, view, transpose, permute, squeeze, broadcast, ``to``,
triangles and ``narrow``."""

from __future__ import annotations

import numpy as np

from ...errors import EngineError, ShapeError
from .. import dtypes
from ..primitive import apply
from ..prims import shape as shape_prims
from ..tensor import Tensor, _norm_dim
from .common import _dims, _shape_arg, _share_version, _t, _tensor_of

__all__ = [
    "as_strided", "broadcast_to", "clone", "expand", "expand_as", "expand_dims", "flatten",
    "narrow", "numel", "permute", "ravel", "reshape", "squeeze", "swapaxes", "swapdims", "t", "to",
    "transpose", "tril", "triu", "unsqueeze", "view",
]


# ---- shapes ---------------------------------------------------------------------------------
def _resolve_shape(shape: tuple, size: int) -> tuple:
    if -1 in shape:
        known = 1
        for s in shape:
            if s != -1:
                known *= s
        if shape.count(-1) > 1:
            raise EngineError("only one dimension can be inferred")
        if known == 0 or size % known:
            raise EngineError(f"shape '{list(shape)}' is invalid for input of size {size}")
        shape = tuple(size // known if s == -1 else s for s in shape)
    n = 1
    for s in shape:
        n *= s
    if n != size:
        raise EngineError(f"shape '{list(shape)}' is invalid for input of size {size}")
    return shape


def _viewable(data: np.ndarray, shape: tuple) -> bool:
    try:
        np.reshape(data, shape, copy=False)
    except ValueError:
        return False
    return True


def reshape(input, *shape) -> Tensor:
    """A view when the memory layout allows one, else a copy, named as torch names them:
    ViewBackward0 (contiguous), ReshapeAliasBackward0 (strided view) or CloneBackward0 +
    UnsafeViewBackward0 (copy)."""
    if not isinstance(input, Tensor):
        input = _t(input)
    data = input._data
    shape = _shape_arg(shape)
    size = 1
    for n in shape:
        size *= n
    if size != data.size or -1 in shape:     # else it is valid as it is
        shape = _resolve_shape(shape, data.size)
    if data.flags.c_contiguous:
        return _share_version(apply(shape_prims.reshape, (input,), {"shape": shape}), input)
    if _viewable(data, shape):
        return _share_version(apply(shape_prims.reshape_alias, (input,), {"shape": shape}), input)
    return _unsafe_view(clone(input), shape)


def _unsafe_view(input: Tensor, shape: tuple) -> Tensor:
    return apply(shape_prims.unsafe_view, (input,), {"shape": shape})


def view(input, *shape) -> Tensor:
    input = _t(input)
    shape = _resolve_shape(_shape_arg(shape, "view", "size"), input._data.size)
    if not input._data.flags.c_contiguous and not _viewable(input._data, shape):
        raise EngineError("view size is not compatible with input tensor's size and stride (at "
                          "least one dimension spans across two contiguous subspaces). Use "
                          ".reshape(...) instead.")
    return _share_version(apply(shape_prims.reshape, (input,), {"shape": shape}), input)


def flatten(input, start_dim=0, end_dim=-1) -> Tensor:
    input = _t(input)
    s = _norm_dim(start_dim, input.ndim)
    e = _norm_dim(end_dim, input.ndim)
    if input.ndim == 0:
        return reshape(input, 1)
    if s == e:
        return input
    shape = input.shape
    return reshape(input, shape[:s] + (-1,) + shape[e + 1:])


def ravel(input) -> Tensor:
    return reshape(input, -1)


def transpose(input, dim0=None, dim1=None) -> Tensor:
    """Swap two dims (torch); with no dims, reverse them all (numpy's transpose)."""
    input = _t(input)
    if dim0 is None and dim1 is None:
        return _T(input)
    nd = input.ndim
    # a 0-d tensor counts as having one dim (0 or -1), as in torch
    d0, d1 = _norm_dim(dim0, max(nd, 1)), _norm_dim(dim1, max(nd, 1))
    return _share_version(apply(shape_prims.transpose, (input,), {"dim0": d0, "dim1": d1}), input)


swapaxes = swapdims = transpose


def t(input) -> Tensor:
    input = _t(input)
    if input.ndim > 2:
        raise EngineError(f"t() expects a tensor with <= 2 dimensions, but self is "
                          f"{input.ndim}D")
    return _share_version(apply(shape_prims.t, (input,)), input)


def permute(input, *dims) -> Tensor:
    input = _t(input)
    dims = _shape_arg(dims, "permute", "dims")
    if len(dims) != input.ndim:
        raise EngineError(f"permute(sparse_coo): number of dimensions in the tensor input "
                          f"does not match the length of the desired ordering of dimensions "
                          f"i.e. input.dim() = {input.ndim} is not equal to len(dims) = "
                          f"{len(dims)}")
    dims = tuple(_norm_dim(d, input.ndim) for d in dims)
    if len(set(dims)) != len(dims):
        raise EngineError("permute(): duplicate dims are not allowed.")
    return _share_version(apply(shape_prims.permute, (input,), {"dims": dims}), input)


def _T(self) -> Tensor:
    return permute(self, tuple(range(self.ndim - 1, -1, -1)))    # 0-d too (PermuteBackward0)


def _mT(self) -> Tensor:
    return transpose(self, -2, -1)


def _expand_checks(data: np.ndarray, shape: tuple) -> tuple:
    """expand's errors for expanding ``data`` to ``shape`` (with -1 for kept sizes); the
    target shape."""
    nd_new = len(shape) - data.ndim
    if nd_new < 0:
        raise EngineError(f"expand(torch.{dtypes.legacy_type_name(data)}"
                          f"{{{list(data.shape)}}}, size={list(shape)}): the number of sizes "
                          f"provided ({len(shape)}) must be greater or equal to the number of "
                          f"dimensions in the tensor ({data.ndim})")
    for i, s in enumerate(shape[:nd_new]):
        if s < 0:
            raise EngineError(f"The expanded size of the tensor ({s}) isn't allowed in a "
                              f"leading, non-existing dimension {i}")
    given = list(shape)
    shape = tuple(data.shape[i - nd_new] if s == -1 else s for i, s in enumerate(shape))
    for i in reversed(range(data.ndim)):     # torch checks from the last dim
        n = data.shape[i]
        if n != 1 and n != shape[i + nd_new]:
            raise ShapeError(f"The expanded size of the tensor ({shape[i + nd_new]}) must match "
                             f"the existing size ({n}) at non-singleton dimension "
                             f"{i + nd_new}.  Target sizes: {given}.  Tensor sizes: "
                             f"{list(data.shape)}")
    return shape


def broadcast_to(input, *shape) -> Tensor:
    input = _t(input)
    shape = _expand_checks(input._data, _shape_arg(shape, "expand", "size"))
    return _share_version(apply(shape_prims.expand, (input,), {"shape": shape}), input)


expand = broadcast_to


def expand_as(input, other) -> Tensor:
    return broadcast_to(input, other.shape)


def squeeze(input, dim=None) -> Tensor:
    input = _t(input)
    if dim is None:
        return _share_version(apply(shape_prims.squeeze, (input,)), input)
    if isinstance(dim, (tuple, list)):
        dims = _dims(dim, input.ndim)
        return _share_version(apply(shape_prims.squeeze_dims, (input,), {"dims": dims}), input)
    d = _norm_dim(dim, input.ndim)
    return _share_version(apply(shape_prims.squeeze_dim, (input,), {"dim": d}), input)


def unsqueeze(input, dim) -> Tensor:
    input = _t(input)
    d = _norm_dim(dim, input.ndim + 1)
    return _share_version(apply(shape_prims.unsqueeze, (input,), {"dim": d}), input)


expand_dims = unsqueeze


def clone(input, *, memory_format=None) -> Tensor:
    return apply(shape_prims.clone, (input,))


def to(input, *args, dtype=None, **kwargs) -> Tensor:
    for a in args:
        if isinstance(a, (dtypes.dtype, np.dtype, type)) or a in dtypes.BY_NAME:
            dtype = a
    if dtype is None:
        return input
    np_dtype = dtypes.to_np(dtype)
    if input._data.dtype == np_dtype:
        return input
    return apply(shape_prims.to_dtype, (input,), {"dtype": np_dtype})


def _triangle(input, diagonal: int, upper: bool) -> Tensor:
    input = _tensor_of(input)
    if input.ndim < 2:
        raise EngineError(f"{'triu' if upper else 'tril'}: input tensor must have at "
                          "least 2 dimensions")
    prim = shape_prims.triu if upper else shape_prims.tril
    return apply(prim, (input,), {"diagonal": int(diagonal)})


def tril(input, diagonal: int = 0) -> Tensor:
    return _triangle(input, diagonal, upper=False)


def triu(input, diagonal: int = 0) -> Tensor:
    return _triangle(input, diagonal, upper=True)


def narrow(input, dim: int, start: int, length: int) -> Tensor:
    input = _tensor_of(input)
    if input.ndim == 0:
        raise EngineError("narrow() cannot be applied to a 0-dim tensor.")
    axis = _norm_dim(dim, input.ndim)
    size = input.shape[axis]
    if start < 0:
        start += size
    if not 0 <= start <= size or length < 0 or start + length > size:
        raise EngineError(f"start ({start}) + length ({length}) exceeds dimension size "
                          f"({size}).")
    # always a SliceBackward0 (x[key] skips a slice over the whole dim: AliasBackward0)
    key = (slice(None),) * axis + (slice(start, start + length),)
    return _share_version(apply(shape_prims.slice_, (input,),
                                {"key": key, "out_ndim": input.ndim}), input)


def as_strided(input, size, stride, storage_offset=None) -> Tensor:
    """A view of the input's memory (AsStridedBackward0).  Strides and the offset count
    elements from the input's first element; the input must be contiguous (torch reads its
    whole storage, which a gradtool tensor does not expose)."""
    input = _tensor_of(input)
    size, stride = tuple(int(n) for n in size), tuple(int(s) for s in stride)
    offset = 0 if storage_offset is None else int(storage_offset)
    if len(size) != len(stride):
        raise EngineError("mismatch in length of strides and shape")
    if any(n < 0 for n in size) or any(s < 0 for s in stride) or offset < 0:
        raise EngineError("as_strided: Negative strides are not supported at the moment, "
                          f"got strides: {list(stride)}")
    if not input._data.flags.c_contiguous:
        raise EngineError("as_strided: gradtool supports contiguous input only; call "
                          ".contiguous() first")
    needed = 0 if 0 in size else offset + 1 + sum((n - 1) * s for n, s in zip(size, stride))
    if needed > input._data.size:
        itemsize = input._data.itemsize
        raise EngineError(f"setStorage: sizes {list(size)}, strides {list(stride)}, storage "
                          f"offset {offset}, and itemsize {itemsize} requiring a storage size "
                          f"of {needed * itemsize} are out of bounds for storage of size "
                          f"{input._data.size * itemsize}")
    return _share_version(apply(shape_prims.as_strided, (input,),
                                {"size": size, "stride": stride, "storage_offset": offset}),
                          input)


def numel(input) -> int:
    return _tensor_of(input).numel()
