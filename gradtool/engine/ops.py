"""Public operations: functions (``gt.exp``), operators and Tensor methods.

Each function normalizes its arguments (dims, shapes, scalars) and calls a primitive from
the op table; composite operations are written in terms of primitives and get their
derivatives for free.  ``BUILTINS`` and ``TENSOR_METHODS`` are what the spec language may
call.
"""

from __future__ import annotations

import builtins

import numpy as np

from ..errors import EngineError
from . import dtypes
from .grad_mode import MODE, no_grad
from .prims import elementwise as E
from .prims import linalg as L
from .prims import reduce as R
from .prims import shape as S
from .primitive import apply
from .tensor import Tensor, _make, _norm_dim, _to_array, bump_version, version_counter

_bool = builtins.bool
_int = builtins.int
_float = builtins.float
_sum = builtins.sum


def _t(x) -> Tensor:
    """x as a Tensor (constants become tensors that do not require grad)."""
    if isinstance(x, Tensor):
        return x
    return _make(_to_array(x, None))


def _dims(dim, ndim: int) -> tuple:
    if isinstance(dim, (list, tuple)):
        return tuple(sorted({_norm_dim(_int(d), ndim) for d in dim}))
    return (_norm_dim(_int(dim), ndim),)


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = shape[0]
    return tuple(_int(s) for s in shape)


def _keepdim(keepdim, keepdims):
    return _bool(keepdim if keepdims is None else keepdims)


def _share_version(out: Tensor, base: Tensor) -> Tensor:
    """Views share their base's version counter, as in torch."""
    if out._data.base is not None:
        out._vc = version_counter(base)
        out._set("base", base)
    return out


# ---- arithmetic -----------------------------------------------------------------------------
def add(input, other, *, alpha=1) -> Tensor:
    if alpha != 1:
        other = mul(other, alpha)
    return apply(E.add, (input, other))


def sub(input, other, *, alpha=1) -> Tensor:
    if alpha != 1:
        other = mul(other, alpha)
    if not isinstance(input, Tensor):
        return apply(E.rsub, (other, input))
    return apply(E.sub, (input, other))


def mul(input, other) -> Tensor:
    return apply(E.mul, (input, other))


def div(input, other, *, rounding_mode=None) -> Tensor:
    if rounding_mode is not None:
        with no_grad():
            data = np.true_divide(_t(input)._data, _t(other)._data)
            return _make(np.floor(data) if rounding_mode == "floor" else np.trunc(data))
    if not isinstance(input, Tensor):
        return mul(reciprocal(other), input)
    return apply(E.div, (input, other))


true_divide = divide = div
multiply = mul
subtract = sub


def neg(input) -> Tensor:
    return apply(E.neg, (input,))


negative = neg


def pow(input, exponent) -> Tensor:
    if not isinstance(input, Tensor):
        return apply(E.rpow, (exponent,), {"base": input})
    if isinstance(exponent, Tensor):
        return apply(E.pow, (input, exponent))
    if isinstance(exponent, (np.ndarray, list, tuple)):
        return apply(E.pow, (input, _t(exponent)))
    if isinstance(exponent, _float) and exponent.is_integer():
        exponent = _int(exponent) if input._data.dtype.kind in "fc" else exponent
    if isinstance(exponent, _int) and input._data.dtype.kind in "iu" and exponent < 0:
        raise EngineError("Integers to negative integer powers are not allowed.")
    return apply(E.pow_scalar, (input,), {"exponent": exponent})


def square(input) -> Tensor:
    return pow(input, 2)


def _unary(prim):
    def op(input) -> Tensor:
        return apply(prim, (input,))
    op.__name__ = prim.name
    op.__doc__ = f"Elementwise {prim.name} (backward node {prim.node_name})."
    return op


exp = _unary(E.exp)
log = _unary(E.log)
log1p = _unary(E.log1p)
expm1 = _unary(E.expm1)
sqrt = _unary(E.sqrt)
sin = _unary(E.sin)
cos = _unary(E.cos)
tan = _unary(E.tan)
tanh = _unary(E.tanh)
sinh = _unary(E.sinh)
cosh = _unary(E.cosh)
arcsin = asin = _unary(E.arcsin)
arccos = acos = _unary(E.arccos)
arctan = atan = _unary(E.arctan)
sigmoid = _unary(E.sigmoid)
relu = _unary(E.relu)
abs = absolute = _unary(E.abs)
sign = _unary(E.sign)
reciprocal = _unary(E.reciprocal)


def arctan2(input, other) -> Tensor:
    return apply(E.arctan2, (input, other))


atan2 = arctan2


def rsqrt(input) -> Tensor:
    return reciprocal(sqrt(input))


def log2(input) -> Tensor:
    return div(log(input), _float(np.log(2.0)))


def log10(input) -> Tensor:
    return div(log(input), _float(np.log(10.0)))


def softplus(input, beta=1.0, threshold=20.0) -> Tensor:
    return apply(E.softplus, (input,), {"beta": _float(beta), "threshold": _float(threshold)})


def clamp(input, min=None, max=None) -> Tensor:
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = input
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    if min is None and max is None:
        raise EngineError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if max is None:
        return apply(E.REGISTRY["clamp_min"], (input,), {"min": min})
    if min is None:
        return apply(E.REGISTRY["clamp_max"], (input,), {"max": max})
    return apply(E.clamp, (input,), {"min": min, "max": max})


clip = clamp


def clamp_min(input, min) -> Tensor:
    return clamp(input, min=min)


def clamp_max(input, max) -> Tensor:
    return clamp(input, max=max)


def maximum(input, other) -> Tensor:
    return apply(E.maximum, (input, other))


def minimum(input, other) -> Tensor:
    return apply(E.minimum, (input, other))


def where(condition, input=None, other=None) -> Tensor:
    if input is None and other is None:
        return tuple(_make(i) for i in np.nonzero(_t(condition)._data))
    cond = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    return apply(E.where, (cond.astype(_bool), input, other))


def _comparison(prim):
    def op(input, other) -> Tensor:
        return apply(prim, (input, other))
    op.__name__ = prim.name
    return op


eq = _comparison(E.eq)
ne = _comparison(E.ne)
lt = less = _comparison(E.lt)
le = less_equal = _comparison(E.le)
gt = greater = _comparison(E.gt)
ge = greater_equal = _comparison(E.ge)
logical_and = _comparison(E.logical_and)
logical_or = _comparison(E.logical_or)


def logical_not(input) -> Tensor:
    return apply(E.logical_not, (input,))


# ---- reductions -----------------------------------------------------------------------------
def sum(input, dim=None, keepdim=False, *, keepdims=None, axis=None, dtype=None) -> Tensor:
    input = _t(input)
    if dtype is not None:
        input = input.to(dtype)
    dim = axis if dim is None else dim
    keepdim = _keepdim(keepdim, keepdims)
    if dim is None or (isinstance(dim, (tuple, list)) and not dim and not keepdim):
        if keepdim:
            return apply(R.sum_dim, (input,), {"dim": tuple(range(input.ndim)),
                                               "keepdim": True})
        return apply(R.sum_all, (input,))
    return apply(R.sum_dim, (input,), {"dim": _dims(dim, input.ndim), "keepdim": keepdim})


def mean(input, dim=None, keepdim=False, *, keepdims=None, axis=None, dtype=None) -> Tensor:
    input = _t(input)
    if dtype is not None:
        input = input.to(dtype)
    if input._data.dtype.kind not in "fc":
        raise EngineError("mean(): could not infer output dtype. Input dtype must be either "
                          f"a floating point or complex dtype. Got: {input.dtype.name}")
    dim = axis if dim is None else dim
    keepdim = _keepdim(keepdim, keepdims)
    if dim is None:
        if keepdim:
            return apply(R.mean_dim, (input,), {"dim": tuple(range(input.ndim)),
                                                "keepdim": True})
        return apply(R.mean_all, (input,))
    return apply(R.mean_dim, (input,), {"dim": _dims(dim, input.ndim), "keepdim": keepdim})


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


def reshape(input, *shape) -> Tensor:
    input = _t(input)
    shape = _resolve_shape(_shape_arg(shape), input._data.size)
    return _share_version(apply(S.reshape, (input,), {"shape": shape}), input)


def view(input, *shape) -> Tensor:
    return reshape(input, *shape)


def flatten(input, start_dim=0, end_dim=-1) -> Tensor:
    input = _t(input)
    if input.ndim == 0:
        return reshape(input, 1)
    s = _norm_dim(start_dim, input.ndim)
    e = _norm_dim(end_dim, input.ndim)
    if s == e:
        return input
    shape = input.shape
    return reshape(input, shape[:s] + (-1,) + shape[e + 1:])


def ravel(input) -> Tensor:
    return reshape(input, -1)


def transpose(input, dim0, dim1) -> Tensor:
    input = _t(input)
    nd = input.ndim
    d0, d1 = _norm_dim(dim0, nd), _norm_dim(dim1, nd)
    return _share_version(apply(S.transpose, (input,), {"dim0": d0, "dim1": d1}), input)


swapaxes = swapdims = transpose


def t(input) -> Tensor:
    input = _t(input)
    if input.ndim > 2:
        raise EngineError(f"t() expects a tensor with <= 2 dimensions, but self is "
                          f"{input.ndim}D")
    return _share_version(apply(S.t, (input,)), input)


def permute(input, *dims) -> Tensor:
    input = _t(input)
    dims = _shape_arg(dims)
    if len(dims) != input.ndim:
        raise EngineError(f"permute(sparse_coo): number of dimensions in the tensor input "
                          f"does not match the length of the desired ordering of dimensions "
                          f"i.e. input.dim() = {input.ndim} is not equal to len(dims) = "
                          f"{len(dims)}")
    dims = tuple(_norm_dim(d, input.ndim) for d in dims)
    return _share_version(apply(S.permute, (input,), {"dims": dims}), input)


def _T(self) -> Tensor:
    if self.ndim < 2:
        return self
    return permute(self, tuple(range(self.ndim - 1, -1, -1)))


def _mT(self) -> Tensor:
    return transpose(self, -2, -1)


def broadcast_to(input, *shape) -> Tensor:
    input = _t(input)
    shape = _shape_arg(shape)
    nd_new = len(shape) - input.ndim
    if nd_new < 0:
        raise EngineError(f"expand: the number of sizes provided ({len(shape)}) must be "
                          f"greater or equal to the number of dimensions in the tensor "
                          f"({input.ndim})")
    shape = tuple(input.shape[i - nd_new] if s == -1 else s for i, s in enumerate(shape))
    if shape == tuple(input.shape):
        return input
    return _share_version(apply(S.expand, (input,), {"shape": shape}), input)


expand = broadcast_to


def expand_as(input, other) -> Tensor:
    return broadcast_to(input, other.shape)


def squeeze(input, dim=None) -> Tensor:
    input = _t(input)
    if dim is None:
        return _share_version(apply(S.squeeze, (input,)), input)
    d = _norm_dim(dim, input.ndim)
    return _share_version(apply(S.squeeze_dim, (input,), {"dim": d}), input)


def unsqueeze(input, dim) -> Tensor:
    input = _t(input)
    d = _norm_dim(dim, input.ndim + 1)
    return _share_version(apply(S.unsqueeze, (input,), {"dim": d}), input)


expand_dims = unsqueeze


def clone(input, *, memory_format=None) -> Tensor:
    return apply(S.clone, (input,))


def to(input, *args, dtype=None, **kwargs) -> Tensor:
    for a in args:
        if isinstance(a, (dtypes.dtype, np.dtype, type)) or a in dtypes.BY_NAME:
            dtype = a
    if dtype is None:
        return input
    np_dtype = dtypes.to_np(dtype)
    if input._data.dtype == np_dtype:
        return input
    return apply(S.to_dtype, (input,), {"dtype": np_dtype})


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


def getitem(input, key) -> Tensor:
    input = _t(input)
    key = _index_key(key)
    simple = all(isinstance(k, (_int, np.integer)) for k in key)
    basic = all(isinstance(k, (_int, np.integer, slice)) or k is None or k is Ellipsis
                for k in key)
    if simple:
        prim = S.select
    elif basic:
        prim = S.slice_
    else:
        prim = S.index
    params = {"key": key, "out_ndim": None}
    try:
        out = apply(prim, (input,), params)
    except IndexError as exc:
        raise IndexError(str(exc).split(": ", 1)[-1]) from None
    params["out_ndim"] = out.ndim
    return _share_version(out, input) if basic else out


def cat(tensors, dim=0, *, axis=None) -> Tensor:
    tensors = [_t(x) for x in tensors]
    if not tensors:
        raise EngineError("torch.cat(): expected a non-empty list of Tensors")
    dim = _norm_dim(axis if axis is not None else dim, tensors[0].ndim)
    return apply(S.cat, tuple(tensors), {"dim": dim})


concatenate = concat = cat


def stack(tensors, dim=0, *, axis=None) -> Tensor:
    tensors = [_t(x) for x in tensors]
    if not tensors:
        raise EngineError("stack expects a non-empty TensorList")
    dim = _norm_dim(axis if axis is not None else dim, tensors[0].ndim + 1)
    return apply(S.stack, tuple(tensors), {"dim": dim})


# ---- products -------------------------------------------------------------------------------
def mm(input, mat2) -> Tensor:
    a, b = _t(input), _t(mat2)
    if a.ndim != 2:
        raise EngineError(f"self must be a matrix")
    if b.ndim != 2:
        raise EngineError(f"mat2 must be a matrix")
    if a.shape[1] != b.shape[0]:
        raise EngineError(f"mat1 and mat2 shapes cannot be multiplied ({a.shape[0]}x"
                          f"{a.shape[1]} and {b.shape[0]}x{b.shape[1]})")
    return apply(L.mm, (a, b))


def dot(input, other) -> Tensor:
    a, b = _t(input), _t(other)
    if a.ndim != 1 or b.ndim != 1:
        raise EngineError(f"1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    if a.shape[0] != b.shape[0]:
        raise EngineError("inconsistent tensor size, expected tensor [{}] and src [{}] to have "
                          "the same number of elements, but got {} and {} elements "
                          "respectively".format(a.shape[0], b.shape[0], a.shape[0],
                                                b.shape[0]))
    return apply(L.dot, (a, b))


def mv(input, vec) -> Tensor:
    a, v = _t(input), _t(vec)
    if a.ndim != 2 or v.ndim != 1 or a.shape[1] != v.shape[0]:
        raise EngineError(f"size mismatch, got input ({a.shape[0] if a.ndim else ''}), mat "
                          f"({'x'.join(map(str, a.shape))}), vec ({v.shape[0] if v.ndim else ''})")
    return apply(L.mv, (a, v))


def matmul(input, other) -> Tensor:
    a, b = _t(input), _t(other)
    if a.ndim == 0 or b.ndim == 0:
        raise EngineError("both arguments to matmul need to be at least 1D, but they are "
                          f"{a.ndim}D and {b.ndim}D")
    if a.ndim == 1 and b.ndim == 1:
        return dot(a, b)
    if a.ndim == 2 and b.ndim == 1:
        return mv(a, b)
    if a.ndim == 1 and b.ndim == 2:
        return squeeze(mm(unsqueeze(a, 0), b), 0)
    if a.ndim == 2 and b.ndim == 2:
        return mm(a, b)
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else -1]:
        raise EngineError("Expected size for first two dimensions of batch2 tensor to be: "
                          f"[{a.shape[-1]}] but got: [{b.shape[-2 if b.ndim > 1 else -1]}].")
    if b.ndim == 1:
        return squeeze(apply(L.bmm, (a, unsqueeze(b, -1))), -1)
    if a.ndim == 1:
        return squeeze(apply(L.bmm, (unsqueeze(a, 0), b)), -2)
    return apply(L.bmm, (a, b))


def outer(input, vec2) -> Tensor:
    return mul(reshape(input, -1, 1), vec2)


# ---- factories ------------------------------------------------------------------------------
def tensor(data, dtype=None, requires_grad=False) -> Tensor:
    """A new leaf tensor copying ``data`` (python floats become float64)."""
    return Tensor(data, dtype=dtype, requires_grad=requires_grad)


def as_tensor(data, dtype=None) -> Tensor:
    if isinstance(data, Tensor) and (dtype is None or data.dtype == dtype):
        return data
    return Tensor(data, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``array`` (dtype kept)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    return _make(array)


def _factory_dtype(dtype, default=dtypes.DEFAULT_FLOAT):
    return dtypes.to_np(dtype) if dtype is not None else default.np


def _leaf(arr, requires_grad) -> Tensor:
    out = _make(arr)
    if requires_grad:
        out.requires_grad_(True)
    return out


def zeros(*size, dtype=None, requires_grad=False, device=None) -> Tensor:
    return _leaf(np.zeros(_shape_arg(size), _factory_dtype(dtype)), requires_grad)


def ones(*size, dtype=None, requires_grad=False, device=None) -> Tensor:
    return _leaf(np.ones(_shape_arg(size), _factory_dtype(dtype)), requires_grad)


def empty(*size, dtype=None, requires_grad=False, device=None) -> Tensor:
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False, device=None) -> Tensor:
    if dtype is None:
        dtype = dtypes.int64 if isinstance(fill_value, (_int, np.integer)) and \
            not isinstance(fill_value, _bool) else (dtypes.bool if isinstance(fill_value, _bool)
                                                    else dtypes.DEFAULT_FLOAT)
    return _leaf(np.full(_shape_arg((size,)) if not isinstance(size, (_int, np.integer))
                         else (_int(size),), fill_value, dtypes.to_np(dtype)), requires_grad)


def zeros_like(input, dtype=None, requires_grad=False) -> Tensor:
    d = dtypes.to_np(dtype) or input._data.dtype
    return _leaf(np.zeros(input.shape, d), requires_grad)


def ones_like(input, dtype=None, requires_grad=False) -> Tensor:
    d = dtypes.to_np(dtype) or input._data.dtype
    return _leaf(np.ones(input.shape, d), requires_grad)


def full_like(input, fill_value, dtype=None, requires_grad=False) -> Tensor:
    d = dtypes.to_np(dtype) or input._data.dtype
    return _leaf(np.full(input.shape, fill_value, d), requires_grad)


def arange(start, end=None, step=1, *, dtype=None, requires_grad=False, device=None) -> Tensor:
    if end is None:
        start, end = 0, start
    values = (start, end, step)
    if dtype is None:
        is_int = all(isinstance(v, (_int, np.integer)) for v in values)
        dtype = dtypes.int64 if is_int else dtypes.DEFAULT_FLOAT
    return _leaf(np.arange(start, end, step, dtype=dtypes.to_np(dtype)), requires_grad)


def linspace(start, end, steps, *, dtype=None, requires_grad=False, device=None) -> Tensor:
    return _leaf(np.linspace(start, end, _int(steps), dtype=_factory_dtype(dtype)),
                 requires_grad)


def eye(n, m=None, *, dtype=None, requires_grad=False, device=None) -> Tensor:
    return _leaf(np.eye(n, m, dtype=_factory_dtype(dtype)), requires_grad)


# ---- in-place -------------------------------------------------------------------------------
LEAF_INPLACE = ("a leaf Variable that requires grad is being used in an in-place operation.")


def _inplace(self: Tensor, compute, *others) -> Tensor:
    """Run ``compute(self, *others)`` out of place and write the result into ``self``.

    With grad mode on and something requiring grad, ``self`` is rebased onto the new node
    (the old value is snapshotted so the new node's saved inputs stay valid); the version
    counter is bumped so nodes that saved the old value refuse to backward."""
    tracking = MODE.grad_enabled and (self._rg or any(
        isinstance(o, Tensor) and o._rg for o in others))
    if tracking:
        if self._rg and self.grad_fn is None:
            raise EngineError(LEAF_INPLACE)
        base = self._get("base")
        if base is not None and (base._rg or self._rg):
            raise EngineError("gradtool does not support in-place operations on a view of a "
                              "tensor that requires grad; use the out-of-place operation "
                              "(e.g. y = y + 1) instead")
        old = _make(self._data.copy(), self.grad_fn, self._rg)
        old._nr = self._nr
        result = compute(old, *others)
    else:
        with no_grad():
            result = compute(self, *others)
    data = result._data
    if data.dtype != self._data.dtype and not np.can_cast(data.dtype, self._data.dtype,
                                                          "same_kind"):
        raise EngineError(f"result type {dtypes.from_np(data.dtype).name.capitalize()} can't "
                          f"be cast to the desired output type "
                          f"{dtypes.from_np(self._data.dtype).name.capitalize()}")
    if data.shape != self._data.shape:
        try:
            data = np.broadcast_to(data, self._data.shape)
        except ValueError:
            raise EngineError(f"output with shape {list(self._data.shape)} doesn't match the "
                              f"broadcast shape {list(data.shape)}") from None
    np.copyto(self._data, data, casting="unsafe")
    bump_version(self)
    if tracking:
        self.grad_fn = result.grad_fn
        self._nr = result._nr
        self._rg = result._rg
    return self


def add_(self, other, *, alpha=1):
    return _inplace(self, lambda s, o: add(s, o, alpha=alpha), other)


def sub_(self, other, *, alpha=1):
    return _inplace(self, lambda s, o: sub(s, o, alpha=alpha), other)


def mul_(self, other):
    return _inplace(self, mul, other)


def div_(self, other):
    return _inplace(self, div, other)


def pow_(self, exponent):
    return _inplace(self, pow, exponent)


def clamp_(self, min=None, max=None):
    return _inplace(self, lambda s: clamp(s, min, max))


def zero_(self):
    return fill_(self, 0)


def fill_(self, value):
    if MODE.grad_enabled and self._rg and self.grad_fn is None:
        raise EngineError(LEAF_INPLACE)
    if MODE.grad_enabled and self._rg:
        return _inplace(self, lambda s: mul(s, 0.0) + value)
    self._data[...] = value.item() if isinstance(value, Tensor) else value
    bump_version(self)
    return self


def copy_(self, src, non_blocking=False):
    src = _t(src)
    if MODE.grad_enabled and (self._rg or src._rg):
        return _inplace(self, lambda s, o: add(mul(s, 0.0), to(o, s._data.dtype)), src)
    np.copyto(self._data, np.broadcast_to(src._data, self._data.shape), casting="unsafe")
    bump_version(self)
    return self


def setitem(self, key, value) -> None:
    """``x[key] = value``: in place; under grad tracking recorded as torch's CopySlices."""
    key = _index_key(key)
    tracking = MODE.grad_enabled and (self._rg or (isinstance(value, Tensor) and value._rg))
    if not tracking:
        self._data[key] = value._data if isinstance(value, Tensor) else value
        bump_version(self)
        return
    from .prims import shape as shape_prims
    _inplace(self, lambda s, v: apply(shape_prims.index_put, (s, _t(v)), {"key": key}),
             value)


def uniform_(self, a=0.0, b=1.0, generator=None):
    from .random import _rng
    return _fill_random(self, _rng(generator).uniform(a, b, self.shape))


def normal_(self, mean=0.0, std=1.0, generator=None):
    from .random import _rng
    return _fill_random(self, _rng(generator).normal(mean, std, self.shape))


def _fill_random(self, values):
    if MODE.grad_enabled and self._rg and self.grad_fn is None:
        raise EngineError(LEAF_INPLACE)
    self._data[...] = values
    bump_version(self)
    return self


# ---- what the package and the spec language export ------------------------------------------
_NOT_PUBLIC = {"apply", "setitem", "getitem", "LEAF_INPLACE", "no_grad"}
__all__ = sorted(
    name for name, value in list(globals().items())
    if not name.startswith("_") and callable(value) and not name.endswith("_")
    and getattr(value, "__module__", None) == __name__ and name not in _NOT_PUBLIC)

#: name -> function for the spec language's expressions (numpy and torch spellings)
BUILTINS = {name: globals()[name] for name in __all__}



METHOD_NAMES = (
    "add", "sub", "mul", "div", "true_divide", "multiply", "subtract", "divide", "neg",
    "negative", "pow", "square", "exp", "log", "log1p", "expm1", "log2", "log10", "sqrt",
    "rsqrt", "sin", "cos", "tan", "tanh", "sinh", "cosh", "asin", "acos", "atan", "arcsin",
    "arccos", "arctan", "atan2", "arctan2", "sigmoid", "relu", "abs", "absolute", "sign",
    "reciprocal", "softplus", "clamp", "clip", "clamp_min", "clamp_max", "maximum", "minimum",
    "eq", "ne", "lt", "le", "gt", "ge", "logical_not", "logical_and", "logical_or",
    "sum", "mean", "reshape", "view", "flatten", "ravel", "transpose", "swapaxes", "swapdims",
    "t", "permute", "broadcast_to", "expand_as", "squeeze", "unsqueeze", "clone", "to",
    "mm", "dot", "mv", "matmul", "outer",
    "add_", "sub_", "mul_", "div_", "pow_", "clamp_", "zero_", "fill_", "copy_", "uniform_",
    "normal_",
)

#: methods and attributes a spec expression may use on a tensor
TENSOR_METHODS = frozenset(
    {"T", "mT", "shape", "dtype", "ndim", "float", "double", "long", "int", "bool",
     "detach", "size", "dim", "numel", "item", "contiguous", "type_as", "expand",
     "requires_grad"} | {name for name in METHOD_NAMES if not name.endswith("_")})
