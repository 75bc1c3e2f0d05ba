"""``gt.vmap``: run a function written for one example on a whole batch at once.

``vmap(fn, in_dims=0)(*batched_args)`` calls ``fn`` once, on :class:`BatchedTensor`\\ s that
look like one example (their ``shape``, ``ndim`` and ``dtype`` are an example's) while their
primitives compute on every example: :func:`gradtool.engine.primitive.apply` hands each
primitive to a *batching rule* (``BATCH_RULES``, keyed by primitive name) that runs the
primitive's forward on arrays carrying a leading batch axis.  Categories:

* elementwise and broadcasting primitives: align the ranks (an example of ndim k in a batch
  whose output has ndim m gets ``m - k`` unit axes after the batch axis), then the forward;
* reductions and dim-taking shape primitives: dims shift by one;
* shape primitives: the batch axis is prepended to shape parameters;
* the matmul family: numpy's matmul broadcasts over the batch axis;
* indexing: a leading ``slice(None)`` in the key (numpy's rule for separated advanced
  indices moves the batch axis, which the rule moves back);
* primitives whose vectorized rule is not worth it run their forward once per example.

Custom ``gt.autograd.Function``\\ s need no rule: their forward calls primitives.

A second representation serves the gradient checker: a batch of inputs that differ from one
base value in ONE element each (finite-difference perturbations) is kept as
``(base, flat_index, value)`` (:class:`Delta`), and elementwise primitives, reductions and
reshapes propagate it in O(batch) instead of O(batch x size); anything else densifies it.

When a primitive has no rule, or the function needs a value (``.item()``, ``bool(x)``,
``.numpy()``, autograd inside, or numpy run on a tensor's ``_data`` outside the op table,
which :class:`_Example` guards), :class:`VmapFallback` is raised inside and ``vmap`` runs
``fn`` once per example instead (the returned function's ``path`` attribute says which path its last call took and why).
"""

from __future__ import annotations

import numpy as np

from ..errors import EngineError
from . import primitive as P
from .grad_mode import MODE, no_grad
from .tensor import Tensor, _make


class VmapFallback(BaseException):
    """Raised inside a batched call when the batch must be run example by example.

    A BaseException, like KeyboardInterrupt: control flow that user code and evaluators
    catching ``Exception`` (to report their own errors) must let through."""


class Delta:
    """A batch of arrays equal to ``base`` except at one flat position each:
    example b is ``base`` with ``base.flat[index[b]] = value[b]``.  ``index`` and ``value``
    may also be (batch, K): K distinct positions per example (after a softmax-like op the
    whole lane through the perturbed element changes)."""

    __slots__ = ("base", "index", "value")

    def __init__(self, base: np.ndarray, index: np.ndarray, value: np.ndarray) -> None:
        self.base = base
        self.index = index
        self.value = value

    def example(self, k: int) -> np.ndarray:
        out = np.array(self.base, dtype=np.result_type(self.base.dtype, self.value.dtype))
        out.reshape(-1)[self.index[k]] = self.value[k]
        return out

    def dense(self) -> np.ndarray:
        n = len(self.index)
        dtype = np.result_type(self.base.dtype, self.value.dtype)
        out = np.empty((n,) + self.base.shape, dtype=dtype)
        out[...] = self.base
        flat = out.reshape(n, -1)
        rows = np.arange(n) if self.index.ndim == 1 else np.arange(n)[:, None]
        flat[rows, self.index] = self.value
        return out


class _Example(np.ndarray):
    """The example-shaped ``_data`` of a BatchedTensor: code that reads only shape, dtype or
    layout (ops normalizing their arguments) works; code reading values (a mask taken from
    ``_data``, an argmax) would see one example only, so it raises :class:`VmapFallback`."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        raise VmapFallback(f"the function computes on tensor values outside the op table "
                           f"({ufunc.__name__})")

    def __array_function__(self, func, types, args, kwargs):
        if func in _SHAPE_FUNCTIONS:
            plain = [a.view(np.ndarray) if isinstance(a, _Example) else a for a in args]
            out = func(*plain, **kwargs)
            return out.view(_Example) if isinstance(out, np.ndarray) else out
        raise VmapFallback(f"the function computes on tensor values outside the op table "
                           f"(numpy.{func.__name__})")

    def _values(self, *args, **kwargs):
        raise VmapFallback("the function reads tensor values outside the op table")

    astype = copy = tolist = item = fill = __bool__ = __float__ = __int__ = _values
    __getitem__ = __setitem__ = __iter__ = _values


_SHAPE_FUNCTIONS = {np.shape, np.ndim, np.size, np.swapaxes, np.transpose, np.reshape,
                    np.expand_dims, np.moveaxis, np.broadcast_to, np.squeeze}


def _guard(arr: np.ndarray) -> np.ndarray:
    return arr.view(_Example)


class BatchedTensor(Tensor):
    """One example's view of a batch: ``_data`` is an example-shaped array (the base of a
    Delta, or example 0 of a dense batch) so shape logic in ops sees an example; the
    batch is ``_bt`` (dense, batch axis 0) or ``_delta``."""

    __slots__ = ("_bt", "_delta")

    def _values_needed(self, *args, **kwargs):
        raise VmapFallback("the function reads tensor values (item/bool/numpy) under vmap")

    item = __bool__ = __float__ = __int__ = __index__ = tolist = numpy = _values_needed

    def __array__(self, dtype=None, copy=None):
        raise VmapFallback("the function converts a tensor to numpy under vmap")

    def detach(self) -> "BatchedTensor":
        return _wrap_like(self)

    @property
    def data(self) -> "BatchedTensor":
        return _wrap_like(self)

    def batch(self) -> np.ndarray:
        """The dense batch (batch axis first)."""
        if self._bt is None:
            self._bt = self._delta.dense()
        return self._bt


def _wrap_like(t: BatchedTensor) -> BatchedTensor:
    return _batched(t._bt) if t._delta is None else _from_delta(t._delta)


def _batched(arr: np.ndarray) -> BatchedTensor:
    if MODE.budget is not None:      # a batch counts against the memory budget as it lives
        MODE.budget.track(arr)
        MODE.budget.over("a batched operation")
    t = BatchedTensor.__new__(BatchedTensor)
    _init(t, _guard(arr[0] if arr.shape[0] else np.empty(arr.shape[1:], arr.dtype)))
    t._bt = arr
    t._delta = None
    return t


def _from_delta(d: Delta) -> BatchedTensor:
    t = BatchedTensor.__new__(BatchedTensor)
    _init(t, _guard(d.base))
    t._bt = None
    t._delta = d
    return t


def _init(t: Tensor, data) -> None:
    t._data = data
    t._rg = False
    t._grad = None
    t.grad_fn = None
    t._nr = 0
    t._vc = None
    t._fw = None
    t._acc = None
    t._extra = None


# ---- batching rules --------------------------------------------------------------------------
# rule(prim, args, batched, size, params) -> dense batch (batch axis 0); ``args`` are arrays
# (batched ones with the batch axis first) or constants, ``batched[i]`` says which.

def _example_ndim(a, is_batched: bool) -> int:
    return np.ndim(a) - (1 if is_batched else 0)


def _align(args, batched, ndim: int) -> list:
    """Give every batched argument ``ndim`` example axes (unit axes after the batch axis)."""
    out = []
    for a, b in zip(args, batched):
        if b:
            k = a.ndim - 1
            if k < ndim:
                a = a.reshape((a.shape[0],) + (1,) * (ndim - k) + a.shape[1:])
        out.append(a)
    return out


def _elementwise(prim, args, batched, size, params):
    ndim = max(_example_ndim(a, b) for a, b in zip(args, batched))
    return prim.forward(*_align(args, batched, ndim), **params)


def _shift(dims):
    if isinstance(dims, (tuple, list)):
        return tuple(int(d) + 1 for d in dims)
    return int(dims) + 1


def _dims_shifted(*names):
    """Forward with the named dim parameters (non-negative, normalized by ops) shifted."""
    def rule(prim, args, batched, size, params):
        new = dict(params)
        for name in names:
            if name in new:
                new[name] = tuple(range(1, args[0].ndim)) if new[name] is None else \
                    _shift(new[name])
        return prim.forward(*args, **new)
    return rule


def _reduce_all(np_fn):
    def rule(prim, args, batched, size, params):
        (x,) = args
        return np_fn(x.reshape(x.shape[0], -1), axis=1)
    return rule


def _view_like(prim, args, batched, size, params):
    # the primitive keeps the C order of the elements: reshape to the example's output shape
    (x,) = args
    out_shape = prim.forward(np.empty(x.shape[1:], dtype=bool), **params).shape
    return x.reshape((x.shape[0],) + tuple(out_shape))


def _transpose_2d(prim, args, batched, size, params):
    (x,) = args
    return np.swapaxes(x, 1, 2) if x.ndim == 3 else x


def _permute(prim, args, batched, size, params):
    (x,) = args
    return np.transpose(x, (0,) + tuple(int(d) + 1 for d in params["dims"]))


def _expand(prim, args, batched, size, params):
    (x,) = args
    shape = tuple(params["shape"])
    x = _align([x], [True], len(shape))[0]
    return np.broadcast_to(x, (x.shape[0],) + shape)


def _advanced_ndim(key) -> int | None:
    """Rank of the broadcast advanced indices when numpy moves them to the front (advanced
    indices separated by a slice), else None."""
    positions = [i for i, k in enumerate(key)
                 if isinstance(k, (np.ndarray, int, np.integer)) and not isinstance(k, bool)]
    arrays = [k for k in key if isinstance(k, np.ndarray)]
    if not arrays or positions == list(range(positions[0], positions[-1] + 1)):
        return None
    if any(k.dtype == bool for k in arrays):
        raise VmapFallback("boolean mask mixed with separated indices")
    return len(np.broadcast_shapes(*[np.shape(k) for k in key
                                     if isinstance(k, (np.ndarray, int, np.integer))]))


def _index(prim, args, batched, size, params):
    (x,) = args[:1]
    key = params["key"]
    out = prim.forward(x, **dict(params, key=(slice(None),) + tuple(key)))
    front = _advanced_ndim(tuple(key))
    if front:
        out = np.moveaxis(out, front, 0)
    return out


def _full(a, b: bool, size: int) -> np.ndarray:
    a = np.asarray(a)
    return a if b else np.broadcast_to(a, (size,) + a.shape)


def _cat(prim, args, batched, size, params):
    return np.concatenate([_full(a, b, size) for a, b in zip(args, batched)],
                          axis=params["dim"] + 1)


def _stack(prim, args, batched, size, params):
    return np.stack([_full(a, b, size) for a, b in zip(args, batched)], axis=params["dim"] + 1)


def _index_put(prim, args, batched, size, params):
    x, v = args
    key = (slice(None),) + tuple(params["key"])
    xb = _full(x, batched[0], size)
    out = np.array(xb, copy=True, dtype=np.result_type(x, v))
    target_shape = out[key].shape
    example = np.empty(xb.shape[1:], dtype=bool)[tuple(params["key"])].shape
    if target_shape != (size,) + example:
        raise VmapFallback("index_put with separated advanced indices")
    if batched[1]:
        v = _align([v], [True], len(example))[0]
    out[key] = v
    return out


def _matmul(prim, args, batched, size, params):
    ndim = max(_example_ndim(a, b) for a, b in zip(args, batched))
    a, b = _align(args, batched, ndim)
    return np.matmul(a, b)


def _dot(prim, args, batched, size, params):
    a, b = args
    return np.einsum("...i,...i->...", a, b)


def _mv(prim, args, batched, size, params):
    a, v = args
    return np.matmul(a, v[..., None])[..., 0]


def _direct(prim, args, batched, size, params):
    """The forward already treats extra leading axes as batch axes."""
    return prim.forward(*args, **params)


def _per_example(prim, args, batched, size, params):
    """Correct for any primitive, vectorized for none: one forward per example."""
    rows = [prim.forward(*[a[i] if b else a for a, b in zip(args, batched)], **params)
            for i in range(size)]
    return np.stack([np.asarray(r) for r in rows])


def _addmm(prim, args, batched, size, params):
    bias, m1, m2 = args
    prod = np.matmul(m1, m2)
    return (_align([bias], [True], 2)[0] if batched[0] else bias) + prod


def _conv_like(prim, args, batched, size, params):
    # fold the batch into the N axis when only the input (or grad) is batched
    x = args[0]
    if batched[0] and not any(batched[1:]):
        n = x.shape[1]
        out = prim.forward(x.reshape((size * n,) + x.shape[2:]), *args[1:], **params)
        return out.reshape((size, n) + out.shape[1:])
    return _per_example(prim, args, batched, size, params)


def _embedding(prim, args, batched, size, params):
    (w,) = args
    return w[:, params["indices"]]


def _solve(prim, args, batched, size, params):
    # give both operands the same number of stacking axes after the batch axis
    a, b = args
    core = (2, 1 if params["vector"] else 2)
    stack = [_example_ndim(x, bt) - c for x, bt, c in zip(args, batched, core)]
    m = max(stack)
    a, b = [x.reshape((size,) + (1,) * (m - k) + x.shape[1:]) if bt and k < m else x
            for x, bt, k in zip(args, batched, stack)]
    return prim.forward(a, b, **params)


def _trace(prim, args, batched, size, params):
    return np.trace(args[0], axis1=1, axis2=2)


def _repeat(prim, args, batched, size, params):
    (x,) = args
    reps = tuple(params["repeats"])
    x = _align([x], [True], len(reps))[0]
    return np.tile(x, (1,) + reps)


def _gather(prim, args, batched, size, params):
    from .prims.shape import _along
    x, index = args
    if batched[1]:
        raise VmapFallback("gather with a batched index")
    nd = x.ndim - 1
    return x[(slice(None),) + _along(None, index, params["dim"] - nd)]


def _einsum(prim, args, batched, size, params):
    equation = params["equation"].replace(" ", "")
    if "->" not in equation or "..." in equation:
        return _per_example(prim, args, batched, size, params)
    free = next(c for c in "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkjihgfedcba"
                if c not in equation)
    lhs, rhs = equation.split("->")
    terms = [(free + t if b else t) for t, b in zip(lhs.split(","), batched)]
    return np.einsum(",".join(terms) + "->" + free + rhs, *args)


def _example_reduce(loss, reduction: str, denom=None):
    """Reduce a batch of per-element losses example by example (torch's reductions)."""
    if reduction == "none":
        return loss
    flat = loss.reshape(loss.shape[0], -1)
    total = flat.sum(axis=1)
    if reduction == "sum":
        return total
    return total / (flat.shape[1] if denom is None else denom)


def _elementwise_loss(prim, args, batched, size, params):
    ndim = max(_example_ndim(a, b) for a, b in zip(args, batched))
    loss = prim.forward(*_align(args, batched, ndim), **dict(params, reduction="none"))
    return _example_reduce(np.asarray(loss), params["reduction"]).astype(loss.dtype)


def _nll_loss(prim, args, batched, size, params):
    from .prims import loss as L
    x, target = args
    if batched[1]:
        raise VmapFallback("nll_loss with a batched target")
    weights, picked = L._nll_weights(x[0], target, params["weight"], params["ignore_index"])
    loss = -np.sum(weights * x, axis=L._class_axis(x.ndim - 1) + 1)
    return _example_reduce(loss, params["reduction"], np.sum(picked)).astype(x.dtype)


def _multi_output(prim, args, batched, size, params):
    # apply_multi cuts the carrier's example-shaped data into pieces outside apply(): the
    # pieces would be example 0's, so these run example by example (the whole function)
    raise VmapFallback(f"several-output primitive '{prim.name}'")


ELEMENTWISE = (
    "add", "sub", "rsub", "mul", "div", "neg", "pow_scalar", "pow", "rpow", "exp", "log",
    "log1p", "expm1", "sqrt", "sin", "cos", "tan", "tanh", "sinh", "cosh", "arcsin", "arccos",
    "arctan", "arctan2", "sigmoid", "reciprocal", "abs", "sign", "relu", "softplus", "clamp",
    "clamp_min", "clamp_max", "maximum", "minimum", "where", "eq", "ne", "lt", "le", "gt", "ge",
    "logical_not", "logical_and", "logical_or", "clone", "to_dtype", "native_dropout", "rsqrt",
    "clamp_tensor", "masked_fill", "masked_fill_tensor", "log2", "log10", "remainder",
    "clamp_min_tensor", "clamp_max_tensor", "remainder_scalar",
)
VIEW_LIKE = ("reshape", "unsafe_view", "squeeze", "squeeze_dim", "unsqueeze", "alias",
             "reshape_alias", "squeeze_dims", "matmul_squeeze")
REDUCE_DIMS = ("sum_dim", "mean_dim", "max_dim", "min_dim", "amax", "amin", "prod_dim", "var",
               "std", "vector_norm", "logsumexp", "softmax", "log_softmax", "cumsum")

BATCH_RULES: dict = {name: _elementwise for name in ELEMENTWISE}
BATCH_RULES.update({name: _view_like for name in VIEW_LIKE})
BATCH_RULES.update({name: _dims_shifted("dim") for name in REDUCE_DIMS})
BATCH_RULES.update({
    "sum": _reduce_all(np.sum), "mean": _reduce_all(np.mean), "max": _reduce_all(np.max),
    "min": _reduce_all(np.min), "prod": _reduce_all(np.prod),
    "transpose": _dims_shifted("dim0", "dim1"), "t": _transpose_2d, "permute": _permute,
    "expand": _expand, "select": _index, "slice": _index, "index": _index,
    "index_backward": _direct, "select_backward": _direct, "slice_backward": _direct,
    "index_select_backward": _direct, "index_put": _index_put, "cat": _cat, "stack": _stack,
    "split": _multi_output, "split_with_sizes": _multi_output, "unbind": _multi_output,
    "gather": _gather, "scatter_add": _per_example, "index_select": _dims_shifted("dim"),
    "constant_pad": _direct, "flip": _dims_shifted("dims"), "repeat": _repeat,
    "diagonal": _dims_shifted("dim1", "dim2"), "diagonal_backward": _direct,
    "mm": _matmul, "bmm": _matmul, "matmul": _matmul, "dot": _dot, "mv": _mv,
    "inv": _direct, "det": _direct, "solve": _solve, "trace": _trace, "einsum": _einsum,
    "nll_loss": _nll_loss, "mse_loss": _elementwise_loss,
    "binary_cross_entropy_with_logits": _elementwise_loss,
    "addmm": _addmm, "convolution": _conv_like, "convolution_backward_input": _per_example,
    "convolution_backward_weight": _per_example, "max_pool2d": _conv_like,
    "max_pool2d_backward": _per_example, "max_pool2d_gather": _per_example,
    "adaptive_avg_pool2d": _direct, "embedding": _embedding,
})


def register_batch_rule(name: str, rule=None):
    """Register ``rule(prim, args, batched, size, params)`` for primitive ``name``; ``rule``
    may be one of "elementwise", "per_example", "direct" (the forward already batches)."""
    named = {"elementwise": _elementwise, "per_example": _per_example, "direct": _direct}
    BATCH_RULES[name] = named.get(rule, rule) if isinstance(rule, str) else rule
    return BATCH_RULES[name]


# ---- Delta propagation (one perturbed element per example) -----------------------------------
def _delta_elementwise(prim, args, params):
    """All batched args are Deltas of the output's shape sharing one index array."""
    index = None
    shape = None
    bases, values = [], []
    for a in args:
        if isinstance(a, Delta):
            if index is None:
                index, shape = a.index, a.base.shape
            elif a.index is not index and not np.array_equal(a.index, index):
                return None
            if a.base.shape != shape:
                return None
            bases.append(a.base)
            values.append(a.value)
        else:
            bases.append(a)
            values.append(None)
    out_base = np.asarray(prim.forward(*bases, **params))
    if out_base.shape != shape:
        return None
    vals = [v if v is not None else _gather_at(b, shape, index) for b, v in zip(bases, values)]
    return Delta(out_base, index, np.asarray(prim.forward(*vals, **params)))


def _gather_at(a, shape, index):
    if a is None or np.ndim(a) == 0:
        return a
    a = np.asarray(a)
    if a.shape == shape:
        return a.reshape(-1)[index]
    if a.ndim == 0:
        return a
    return np.broadcast_to(a, shape).reshape(-1)[index]


def _delta_view(prim, args, params):
    (d,) = args
    return Delta(np.asarray(prim.forward(d.base, **params)), d.index, d.value)


def _delta_reduce(prim, args, params):
    (d,) = args
    base_out = np.asarray(prim.forward(d.base, **params))
    change = d.value - d.base.reshape(-1)[d.index]
    if change.ndim == 2:
        if prim.name not in ("sum", "mean"):
            return None           # several positions may land on one output element
        change = change.sum(axis=1)
    if prim.name in ("sum", "mean"):
        if prim.name == "mean":
            change = change / max(d.base.size, 1)
        return base_out + change   # a dense batch of scalars
    dims = params["dim"]
    coords = np.unravel_index(d.index, d.base.shape)
    if params["keepdim"]:
        out_coords = tuple(np.zeros_like(c) if i in dims else c for i, c in enumerate(coords))
    else:
        out_coords = tuple(c for i, c in enumerate(coords) if i not in dims)
    out_index = np.ravel_multi_index(out_coords, base_out.shape) if base_out.ndim else \
        np.zeros_like(d.index)
    if prim.name == "mean_dim":
        n = 1
        for i in dims:
            n *= d.base.shape[i]
        change = change / n
    value = base_out.reshape(-1)[out_index] + change
    return Delta(base_out, out_index, value)


def _delta_lane(prim, args, params):
    """softmax / log_softmax along ``dim``: the lane through the perturbed element changes."""
    (d,) = args
    if d.index.ndim != 1:
        return None
    dim = params["dim"]
    shape = d.base.shape
    coords = list(np.unravel_index(d.index, shape))
    at = coords[dim].copy()
    lane = np.arange(shape[dim])
    coords = [c[:, None] for c in coords]
    coords[dim] = lane[None, :]
    index = np.ravel_multi_index(tuple(np.broadcast_arrays(*coords)), shape)
    rows = d.base.reshape(-1)[index].astype(np.result_type(d.base, d.value))
    rows[np.arange(len(at)), at] = d.value
    return Delta(np.asarray(prim.forward(d.base, **params)), index,
                 np.asarray(prim.forward(rows, **dict(params, dim=1))))


def _delta_nll(prim, args, params):
    """nll_loss is linear in its input: the change of the loss is a weighted sum."""
    from .prims import loss as L
    d, target = args
    if not isinstance(d, Delta) or isinstance(target, Delta) or params["reduction"] == "none":
        return None
    weights, picked = L._nll_weights(d.base, target, params["weight"], params["ignore_index"])
    base_out = np.asarray(prim.forward(d.base, target, **params))
    change = -(weights.reshape(-1)[d.index] * (d.value - d.base.reshape(-1)[d.index]))
    if change.ndim == 2:
        change = change.sum(axis=1)
    if params["reduction"] == "mean":
        change = change / np.sum(picked)
    return (base_out + change).astype(base_out.dtype)


DELTA_RULES: dict = {name: _delta_elementwise for name in ELEMENTWISE}
DELTA_RULES.update({"softmax": _delta_lane, "log_softmax": _delta_lane,
                    "nll_loss": _delta_nll})
DELTA_RULES.update({name: _delta_view for name in VIEW_LIKE})
DELTA_RULES.update({name: _delta_reduce for name in ("sum", "mean", "sum_dim", "mean_dim")})
DELTA_RULES.pop("native_dropout")


# ---- the interceptor -------------------------------------------------------------------------
class _Batching:
    """The apply() hook active inside a batched call."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, prim, args, params):
        if not any(type(a) is BatchedTensor for a in args):
            return P.apply(prim, args, params)
        if MODE.grad_enabled and any(isinstance(a, Tensor) and a._rg for a in args):
            raise VmapFallback("the function runs autograd on batched values")
        if MODE.fw_level and any(isinstance(a, Tensor) and a._fw is not None for a in args):
            raise VmapFallback("forward-mode AD under vmap")
        rule = BATCH_RULES.get(prim.name)
        if rule is None:
            raise VmapFallback(f"no batching rule for primitive '{prim.name}'")
        delta_rule = DELTA_RULES.get(prim.name)
        if delta_rule is not None and all(
                type(a) is not BatchedTensor or a._delta is not None for a in args):
            out = delta_rule(prim, [a._delta if type(a) is BatchedTensor else _raw(a)
                                    for a in args], params)
            if isinstance(out, Delta):
                return _from_delta(out)
            if out is not None:
                return _batched(np.asarray(out))
        datas, batched = [], []
        for a in args:
            if type(a) is BatchedTensor:
                datas.append(a.batch())
                batched.append(True)
            else:
                datas.append(_raw(a))
                batched.append(False)
        try:
            out = rule(prim, datas, batched, self.size, params)
        except (ValueError, IndexError, TypeError) as exc:
            raise VmapFallback(f"batching rule of '{prim.name}' failed: {exc}") from None
        out = np.asarray(out)
        if out.ndim == 0 or out.shape[0] != self.size:
            raise VmapFallback(f"batching rule of '{prim.name}' lost the batch axis")
        return _batched(out)


def _raw(a):
    return a._data if isinstance(a, Tensor) else a


def call_batched(fn, args: tuple, batched: dict, size: int):
    """Run ``fn(*args)`` with ``args[i]`` replaced by the batch ``batched[i]`` (a dense
    array with the batch axis first, or a :class:`Delta`).  Returns a tuple of outputs, each
    a dense batch array, a :class:`Delta`, or an unbatched array (the same for every example);
    raises :class:`VmapFallback` when the function cannot run batched."""
    call_args = list(args)
    for i, b in batched.items():
        call_args[i] = _from_delta(b) if isinstance(b, Delta) else _batched(b)
    hook = _Batching(size)
    P.INTERCEPTORS.append(hook)
    try:
        out = fn(*call_args)
    except VmapFallback:
        raise
    # Anything else raised while running batched (user code meeting a BatchedTensor, a rule
    # meeting an unforeseen argument) means: run example by example.  A genuine error of
    # the function is raised again there, by a plain call.
    except Exception as exc:  # noqa: BLE001
        raise VmapFallback(f"{type(exc).__name__}: {exc}") from None
    finally:
        P.INTERCEPTORS.remove(hook)
    single = not isinstance(out, (tuple, list))
    outs = (out,) if single else tuple(out)
    result = []
    for o in outs:
        if type(o) is BatchedTensor:
            result.append(o._delta if o._delta is not None else o._bt)
        elif isinstance(o, Tensor):
            result.append(Unbatched(o._data))
        else:
            raise VmapFallback(f"the function returned a {type(o).__name__}, not a Tensor")
    return tuple(result), single


class Unbatched:
    """An output that does not depend on the batched inputs (the same for every example)."""

    __slots__ = ("value",)

    def __init__(self, value: np.ndarray) -> None:
        self.value = value


def as_dense(value, size: int) -> np.ndarray:
    """A :func:`call_batched` output as a dense batch array."""
    if isinstance(value, Delta):
        return value.dense()
    if isinstance(value, Unbatched):
        return np.broadcast_to(value.value, (size,) + value.value.shape)
    return value


def vmap(fn, in_dims=0, out_dims=0):
    """Vectorize ``fn`` over a batch axis (``torch.vmap``): ``in_dims`` is an int, or one int
    or None per argument (None: not batched); outputs get the batch axis at ``out_dims``."""

    def batched_fn(*args):
        dims = in_dims if isinstance(in_dims, (tuple, list)) else (in_dims,) * len(args)
        if len(dims) != len(args):
            raise EngineError(f"vmap: in_dims has {len(dims)} entries for {len(args)} "
                              "arguments")
        batches, size = {}, None
        for i, (a, d) in enumerate(zip(args, dims)):
            if d is None or not isinstance(a, Tensor):
                continue
            arr = np.moveaxis(a._data, d, 0)
            if size is not None and arr.shape[0] != size:
                raise EngineError(f"vmap: Expected all tensors to have the same size in the "
                                  f"mapped dimension, got sizes {size} and {arr.shape[0]}")
            size = arr.shape[0]
            batches[i] = arr
        if size is None:
            raise EngineError("vmap: at least one input must be batched")
        try:
            with no_grad():
                outs, single = call_batched(fn, args, batches, size)
            outs = tuple(as_dense(o, size) for o in outs)
            batched_fn.path = "batched"
        except VmapFallback as exc:
            outs, single = loop_batched(fn, args, batches, size)
            batched_fn.path = f"looped ({exc})"
        odims = out_dims if isinstance(out_dims, (tuple, list)) else (out_dims,) * len(outs)
        res = tuple(_make(np.ascontiguousarray(np.moveaxis(o, 0, d)))
                    for o, d in zip(outs, odims))
        return res[0] if single else res

    batched_fn.path = None
    return batched_fn


def example(batch, k: int) -> np.ndarray:
    """Example ``k`` of a dense batch or a :class:`Delta`."""
    return batch.example(k) if isinstance(batch, Delta) else batch[k]


def loop_batched(fn, args, batches, size):
    """The fallback: ``fn`` once per example (``batches[i]`` dense, batch axis first)."""
    rows = []
    single = True
    with no_grad():
        for k in range(size):
            call = list(args)
            for i, arr in batches.items():
                call[i] = _make(example(arr, k))
            out = fn(*call)
            single = not isinstance(out, (tuple, list))
            rows.append([o._data for o in ((out,) if single else out)])
    return tuple(np.stack(col) for col in zip(*rows)), single
