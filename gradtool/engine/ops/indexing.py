"""Indexing, slicing, joining: ``x[key]``, cat, stack, split, gather, scatter, pad, flip,
repeat, diagonal."""

from __future__ import annotations

import builtins

import numpy as np

from ...errors import EngineError, ShapeError
from ..primitive import apply
from ..prims import linalg as linalg_prims
from ..prims import shape as shape_prims
from ..tensor import Tensor, _make, _norm_dim, version_counter
from .common import _dims, _shape_arg, _share_version, _t, _tensor_of, size_at
from .shape import unsqueeze

_bool = builtins.bool
_int = builtins.int
_sum = builtins.sum
_builtins_max = builtins.max

__all__ = [
    "cat", "chunk", "concat", "concatenate", "diagonal", "flip", "gather", "index_select",
    "nonzero", "pad", "repeat", "select", "scatter_add", "split", "stack", "trace", "unbind",
]


def _index_key(key):
    """Normalize an index: Tensors and lists to arrays; bool masks stay masks."""
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    for k in key:
        if isinstance(k, Tensor):
            k = k._data
        elif isinstance(k, list):
            k = np.asarray(k)
        if isinstance(k, np.ndarray) and k.dtype.kind not in "iub":
            raise IndexError("tensors used as indices must be long, int, byte or bool "
                             "tensors")
        out.append(k)
    return tuple(out)


def _is_int(k) -> bool:
    return isinstance(k, (_int, np.integer)) and not isinstance(k, (_bool, np.bool_)) or (
        isinstance(k, np.ndarray) and k.ndim == 0 and k.dtype.kind in "iu")


def _consumed(k) -> int:
    if k is None or k is Ellipsis:
        return 0
    if isinstance(k, np.ndarray) and k.dtype == np.bool_:
        return k.ndim
    if isinstance(k, (_bool, np.bool_)):
        return 0
    return 1


_builtins_min = builtins.min


def _select(input: Tensor, dim: int, index: int) -> Tensor:
    n = input.shape[dim]
    if not -n <= index < n:
        raise IndexError(f"index {index} is out of bounds for dimension {dim} with size {n}")
    key = (slice(None),) * dim + (index % n,)
    return _share_version(apply(shape_prims.select, (input,),
                                {"key": key, "out_ndim": input.ndim - 1}), input)


def _slice(input: Tensor, dim: int, k: slice) -> Tensor:
    if k.step is not None and k.step <= 0:
        raise ValueError("slice step cannot be zero" if k.step == 0 else
                         "step must be greater than zero")
    start, stop, step = k.indices(input.shape[dim])
    stop = _builtins_max(stop, start)
    key = (slice(None),) * dim + (slice(start, stop, step),)
    return _share_version(apply(shape_prims.slice_, (input,), {"key": key, "out_ndim": input.ndim}),
                          input)


def _full_slice(k: slice, n: int) -> bool:
    """Whether torch skips this slice in a tuple index: start 0 or None, step 1 or None and
    a stop past the end, as written (x[-3:] on a 3-long dim is still recorded)."""
    return k.start in (None, 0) and k.step in (None, 1) and (k.stop is None or k.stop >= n)


def getitem(input, key) -> Tensor:
    """Indexing as torch records it: ints select, slices slice, None unsqueezes (one node per
    step, views), then one IndexBackward0 for integer-array and boolean-mask indices."""
    input = _t(input)
    if input._data.ndim == 0 and isinstance(key, (slice, _int, Tensor)) \
            and not isinstance(key, _bool):
        if isinstance(key, slice):
            raise IndexError("slice() cannot be applied to a 0-dim tensor.")
        if not isinstance(key, Tensor) or key._data.dtype != np.bool_:
            raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python "
                             "or `tensor.item<T>()` in C++ to convert a 0-dim tensor to a "
                             "number")
    if isinstance(key, slice):
        return _slice(input, 0, key)          # torch records even x[:]
    key = _index_key(key)
    n_used = _sum(_consumed(k) for k in key)
    if n_used > input.ndim:
        raise IndexError(f"too many indices for tensor of dimension {input.ndim}")
    out = input
    dim = 0
    advanced = []
    has_advanced = False
    for k in key:
        if k is None:
            out = unsqueeze(out, dim)
            advanced.append(slice(None))
            dim += 1
        elif k is Ellipsis:
            n = input.ndim - n_used
            advanced.extend([slice(None)] * n)
            dim += n
        elif _is_int(k):
            out = _select(out, dim, _int(k))
        elif isinstance(k, slice):
            if not _full_slice(k, out.shape[dim]):
                out = _slice(out, dim, k)
            advanced.append(slice(None))
            dim += 1
        elif isinstance(k, (_bool, np.bool_)) or (isinstance(k, np.ndarray)
                                                  and k.dtype == np.bool_ and k.ndim == 0):
            k = _bool(k)
            out = unsqueeze(out, dim)
            advanced.append(np.array([0]) if k else np.zeros(0, dtype=np.int64))
            has_advanced = True
            dim += 1
        else:
            advanced.append(k)
            has_advanced = True
            dim += _consumed(k)
    if has_advanced:
        index_key = tuple(advanced)
        params = {"key": index_key, "out_ndim": None}
        try:
            result = apply(shape_prims.index, (out,), params)
        except IndexError as exc:
            raise IndexError(str(exc).split(": ", 1)[-1]) from None
        params["out_ndim"] = result.ndim
        return result
    if out is input:
        return _share_version(apply(shape_prims.alias, (input,)), input)
    return out


def index_const(input, key) -> Tensor:
    """input[key] as one IndexBackward0 node (used by backward rules)."""
    input = _t(input)
    params = {"key": key, "out_ndim": None}
    result = apply(shape_prims.index, (input,), params)
    params["out_ndim"] = result.ndim
    return result


def cat(tensors, dim=0, *, axis=None) -> Tensor:
    tensors = [_t(x) for x in tensors]
    if not tensors:
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    for k, x in enumerate(tensors):
        if x.ndim == 0:
            raise EngineError(f"zero-dimensional tensor (at position {k}) cannot be "
                              "concatenated")
    # torch's legacy rule: 1-d empty tensors are skipped (their shapes are not checked)
    shaped = [x for x in tensors if x.shape != (0,)]
    if not shaped:
        return apply(shape_prims.cat, tuple(tensors), {"dim": 0})
    dim = _norm_dim(axis if axis is not None else dim, shaped[0].ndim)
    first = shaped[0].shape
    for k, x in enumerate(tensors):
        if x.shape == (0,) and len(first) > 1:
            continue
        if x.ndim != len(first):
            raise ShapeError(f"Tensors must have same number of dimensions: got {len(first)} and "
                             f"{x.ndim}")
        for d, (a, b) in enumerate(zip(first, x.shape)):
            if d != dim and a != b:
                raise ShapeError(f"Sizes of tensors must match except in dimension {dim}. "
                                 f"Expected size {a} but got size {b} for tensor number {k} in "
                                 "the list.")
    return apply(shape_prims.cat, tuple(tensors), {"dim": dim})


concatenate = concat = cat


def stack(tensors, dim=0, *, axis=None) -> Tensor:
    tensors = [_t(x) for x in tensors]
    if not tensors:
        raise EngineError("stack expects a non-empty TensorList")
    dim = _norm_dim(axis if axis is not None else dim, tensors[0].ndim + 1)
    for k, x in enumerate(tensors[1:], 1):
        if x.shape != tensors[0].shape:
            raise ShapeError(f"stack expects each tensor to be equal size, but got "
                             f"{list(tensors[0].shape)} at entry 0 and {list(x.shape)} at entry "
                             f"{k}")
    return apply(shape_prims.stack, tuple(tensors), {"dim": dim})


def split(tensor, split_size_or_sections, dim=0) -> tuple:
    """Pieces of ``split_size`` along dim (the last may be smaller; SplitBackward0), or of
    the given sizes (SplitWithSizesBackward0).  All pieces share one backward node."""
    tensor = _t(tensor)
    if tensor.ndim == 0:
        raise EngineError("split expects at least a 1-dimensional tensor")
    d = _norm_dim(_int(dim), tensor.ndim)
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sections = tuple(_int(k) for k in split_size_or_sections)
        if _sum(sections) != n or _builtins_min(sections, default=0) < 0:
            raise EngineError(f"split_with_sizes expects split_sizes to sum exactly to {n} "
                              f"(input tensor's size at dimension {d}), but got split_sizes="
                              f"{list(sections)}")
        prim = shape_prims.split_with_sizes
    else:
        size = _int(split_size_or_sections)
        if size <= 0 and not (size == 0 and n == 0):
            raise EngineError(f"split_size can only be 0 if dimension size is 0, but got "
                              f"dimension size of {n}")
        sections = tuple(_builtins_min(size, n - i) for i in range(0, n, size)) or (0,)
        prim = shape_prims.split
    return _multi_views("Split", shape_prims.apply_multi(prim, tensor,
                                                         {"dim": d, "sections": sections}),
                        tensor)


def _multi_views(name: str, pieces: tuple, base: Tensor) -> tuple:
    """Mark views returned together (split, unbind): torch refuses in-place ops on them.
    They share the input's version counter, as torch's views (an in-place change of the
    input shows in every piece's ``_version``)."""
    vc = version_counter(base)
    for i, piece in enumerate(pieces):
        piece._vc = vc
        _share_version(piece, base)    # a view of base (in-place ops through base see it)
        if piece._rg:
            piece._set("multi_view", (name, i))
    return pieces


def chunk(input, chunks, dim=0) -> tuple:
    """At most ``chunks`` pieces of equal size (torch: split with ceil(n / chunks))."""
    input = _t(input)
    if input.ndim == 0:
        raise EngineError("chunk expects at least a 1-dimensional tensor")
    if _int(chunks) <= 0:
        raise EngineError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    n = input.shape[_norm_dim(_int(dim), input.ndim)]
    if n == 0:      # torch: `chunks` empty pieces (split_with_sizes)
        return split(input, [0] * _int(chunks), dim)
    return split(input, _builtins_max(1, -(-n // _int(chunks))), dim)


def unbind(input, dim=0) -> tuple:
    """The slices along dim, as a tuple (UnbindBackward0)."""
    input = _t(input)
    d = _norm_dim(_int(dim), input.ndim)
    if input.ndim == 0:
        raise IndexError(f"Dimension specified as {d} but tensor has no dimensions")
    return _multi_views("Unbind", shape_prims.apply_multi(shape_prims.unbind, input,
                                                {"dim": d, "sections": (1,) * input.shape[d]}),
                        input)


#: torch's message for an index tensor that is not integral, per op
_INDEX_DTYPE_ERRORS = {
    "gather": "gather(): Expected dtype int32/int64 for index",
    "scatter_add": "scatter(): Expected dtype int64 for index",
    "index_select": "index_select(): Expected dtype int32 or int64 for index",
}


def _index_array(index, name: str) -> np.ndarray:
    data = index._data if isinstance(index, Tensor) else np.asarray(index)
    if data.dtype.kind not in "iu":
        raise EngineError(_INDEX_DTYPE_ERRORS[name])
    return data.astype(np.int64, copy=False)


def _check_index_range(index: np.ndarray, dim: int, n: int) -> None:
    """gather/scatter's RuntimeError for an index outside [0, n) (negative ones too)."""
    bad = (index < 0) | (index >= n)
    if bad.any():
        raise EngineError(f"index {int(index[bad].reshape(-1)[0])} is out of bounds for "
                          f"dimension {dim} with size {n}")


def gather(input, dim, index) -> Tensor:
    """out[i][j] = input[i][index[i][j]] along dim (GatherBackward0)."""
    input = _t(input)
    index = _index_array(index, "gather")
    d = _norm_dim(_int(dim), input.ndim)
    if index.ndim != input.ndim:
        raise EngineError("Index tensor must have the same number of dimensions as input "
                          "tensor")
    for i, (a, b) in enumerate(zip(index.shape, input.shape)):
        if i != d and a > b:
            raise EngineError(f"Size does not match at dimension {i} expected index "
                              f"{list(index.shape)} to be no larger than self "
                              f"{list(input.shape)} apart from dimension {d}")
    _check_index_range(index, d, size_at(input.shape, d))
    return apply(shape_prims.gather, (input, index), {"dim": d})


def scatter_add(input, dim, index, src) -> Tensor:
    """input with src added at index along dim, repeated indices accumulating
    (ScatterAddBackward0)."""
    input, src = _t(input), _t(src)
    index = _index_array(index, "scatter_add")
    d = _norm_dim(_int(dim), input.ndim)
    if index.ndim != input.ndim or src.ndim != input.ndim:
        raise EngineError("Index tensor must have the same number of dimensions as self tensor")
    if any((i != d and a > b) or a > c
           for i, (a, b, c) in enumerate(zip(index.shape, input.shape, src.shape))):
        raise EngineError(f"Expected index {list(index.shape)} to be no larger than self "
                          f"{list(input.shape)} apart from dimension {d} and to be no larger "
                          f"size than src {list(src.shape)}")
    _check_index_range(index, d, size_at(input.shape, d))
    return apply(shape_prims.scatter_add, (input, index, src), {"dim": d})


def index_select(input, dim, index) -> Tensor:
    """input's slices at the (1-D) index along dim (IndexSelectBackward0)."""
    input = _t(input)
    index = _index_array(index, "index_select")
    if index.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    d = _norm_dim(_int(dim), input.ndim)
    if input.ndim == 0 and index.size != 1:
        raise EngineError("index_select(): Index to scalar can have only 1 value, got "
                          f"{index.size} value(s)")
    n = size_at(input.shape, d)
    if n == 0 and index.size and input.ndim > 1:
        raise EngineError("index_select(): self indexing axis dim should be positive")
    bad = (index < 0) | (index >= n)
    if bad.any():
        if input.ndim <= 1:     # torch's 1-d kernel has its own message
            raise IndexError("index out of range in self")
        raise EngineError("INDICES element is out of DATA bounds, "
                          f"id={int(index[bad].reshape(-1)[0])} axis_dim={n}")
    return apply(shape_prims.index_select, (input, index.reshape(-1)), {"dim": d})


def pad(input, pad, mode="constant", value=None) -> Tensor:
    """torch.nn.functional.pad, constant mode: pad = (last_lo, last_hi, prev_lo, ...)."""
    input = _t(input)
    if mode != "constant":
        raise EngineError(f"pad: mode '{mode}' is not supported (only 'constant')")
    pad = tuple(_int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise EngineError(f"Padding length must be divisible by 2 and at most twice the number "
                          f"of dimensions of the input, got {len(pad)}")
    if _builtins_min(pad, default=0) < 0:
        raise EngineError("pad: negative padding (cropping) is not supported")
    return apply(shape_prims.constant_pad, (input,), {"pad": pad, "value": 0.0 if value is None
                                           else value})


def flip(input, *dims, axis=None) -> Tensor:
    """Reverse the order of elements along dims (``x.flip(0, 1)``, ``flip(x, (0, 1))``,
    numpy's ``flip(x, axis=0)``; no dims: all of them)."""
    input = _t(input)
    if axis is not None:
        dims = (axis,)
    if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
        dims = tuple(dims[0])
    if not dims:
        dims = tuple(range(input.ndim))
    return apply(shape_prims.flip, (input,), {"dims": _dims(dims, input.ndim)})


def repeat(input, *sizes) -> Tensor:
    """Tile input (torch's Tensor.repeat; numpy's tile)."""
    input = _t(input)
    sizes = _shape_arg(sizes, "repeat", "repeats")
    if len(sizes) < input.ndim:
        raise EngineError("Number of dimensions of repeat dims can not be smaller than number "
                          "of dimensions of tensor")
    return apply(shape_prims.repeat, (input,), {"repeats": sizes})


def select(input, dim, index) -> Tensor:
    """input[..., index, ...] at dim: a view without that dim (SelectBackward0)."""
    input = _t(input)
    if input.ndim == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = _norm_dim(_int(dim), input.ndim)
    n = input.shape[d]
    if not -n <= _int(index) < n:
        raise IndexError(f"select(): index {index} out of range for tensor of size "
                         f"{list(input.shape)} at dimension {d}")
    return input[(slice(None),) * d + (_int(index),)]


def diagonal(input, offset=0, dim1=0, dim2=1) -> Tensor:
    input = _t(input)
    d1, d2 = _norm_dim(dim1, input.ndim), _norm_dim(dim2, input.ndim)
    if d1 == d2:
        raise EngineError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return _share_version(apply(shape_prims.diagonal, (input,),
                                {"offset": _int(offset), "dim1": d1, "dim2": d2}), input)


def trace(input) -> Tensor:
    input = _t(input)
    if input.ndim != 2:
        raise EngineError("trace: expected a matrix, but got tensor with dim "
                          f"{input.ndim}")
    return apply(linalg_prims.trace, (input,))


def nonzero(input, *, as_tuple: bool = False):
    data = _tensor_of(input)._data
    if as_tuple:
        return tuple(_make(i.astype(np.int64)) for i in np.nonzero(data))
    return _make(np.argwhere(data).astype(np.int64))
