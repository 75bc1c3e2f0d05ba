"""Batching rules: how a primitive runs on a batch of examples at once (``gt.vmap``, and the
checker's batched finite differences).  A primitive names its rule in its op-table entry
(``Primitive(..., batch=batching.elementwise)``); :mod:`gradtool.engine.vmap` calls it.

``batch`` rules: ``rule(prim, args, batched, size, params)`` returns the dense batch (batch
axis 0); ``args`` are arrays (batched ones with the batch axis first) or constants, and
``batched[i]`` says which.  ``delta`` rules propagate a :class:`Delta` (a batch of arrays
that differ from one base in one element each) in O(batch), or return None to densify.
"""

from __future__ import annotations

import numpy as np


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


def elementwise(prim, args, batched, size, params):
    ndim = max(_example_ndim(a, b) for a, b in zip(args, batched))
    return prim.forward(*_align(args, batched, ndim), **params)


def _shift(dims):
    if isinstance(dims, (tuple, list)):
        return tuple(int(d) + 1 for d in dims)
    return int(dims) + 1


def dims_shifted(*names):
    """Forward with the named dim parameters (non-negative, normalized by ops) shifted."""
    def rule(prim, args, batched, size, params):
        new = dict(params)
        for name in names:
            if name in new:
                new[name] = tuple(range(1, args[0].ndim)) if new[name] is None else \
                    _shift(new[name])
        return prim.forward(*args, **new)
    return rule


def reduce_all(np_fn):
    def rule(prim, args, batched, size, params):
        (x,) = args
        return np_fn(x.reshape(x.shape[0], -1), axis=1)
    return rule


def view_like(prim, args, batched, size, params):
    # the primitive keeps the C order of the elements: reshape to the example's output shape
    (x,) = args
    out_shape = prim.forward(np.empty(x.shape[1:], dtype=bool), **params).shape
    return x.reshape((x.shape[0],) + tuple(out_shape))


def transpose_2d(prim, args, batched, size, params):
    (x,) = args
    return np.swapaxes(x, 1, 2) if x.ndim == 3 else x


def permute(prim, args, batched, size, params):
    (x,) = args
    return np.transpose(x, (0,) + tuple(int(d) + 1 for d in params["dims"]))


def expand(prim, args, batched, size, params):
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


def index(prim, args, batched, size, params):
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


def cat(prim, args, batched, size, params):
    return np.concatenate([_full(a, b, size) for a, b in zip(args, batched)],
                          axis=params["dim"] + 1)


def stack(prim, args, batched, size, params):
    return np.stack([_full(a, b, size) for a, b in zip(args, batched)], axis=params["dim"] + 1)


def index_put(prim, args, batched, size, params):
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


def matmul(prim, args, batched, size, params):
    ndim = max(_example_ndim(a, b) for a, b in zip(args, batched))
    a, b = _align(args, batched, ndim)
    return np.matmul(a, b)


def dot(prim, args, batched, size, params):
    a, b = args
    return np.einsum("...i,...i->...", a, b)


def mv(prim, args, batched, size, params):
    a, v = args
    return np.matmul(a, v[..., None])[..., 0]


def direct(prim, args, batched, size, params):
    """The forward already treats extra leading axes as batch axes."""
    return prim.forward(*args, **params)


def per_example(prim, args, batched, size, params):
    """Correct for any primitive, vectorized for none: one forward per example."""
    rows = [prim.forward(*[a[i] if b else a for a, b in zip(args, batched)], **params)
            for i in range(size)]
    return np.stack([np.asarray(r) for r in rows])


def addmm(prim, args, batched, size, params):
    bias, m1, m2 = args
    prod = np.matmul(m1, m2)
    return (_align([bias], [True], 2)[0] if batched[0] else bias) + prod


def conv_like(prim, args, batched, size, params):
    # fold the batch into the N axis when only the input (or grad) is batched
    x = args[0]
    if batched[0] and not any(batched[1:]):
        n = x.shape[1]
        out = prim.forward(x.reshape((size * n,) + x.shape[2:]), *args[1:], **params)
        return out.reshape((size, n) + out.shape[1:])
    return per_example(prim, args, batched, size, params)


def embedding(prim, args, batched, size, params):
    (w,) = args
    return w[:, params["indices"]]


def solve(prim, args, batched, size, params):
    # give both operands the same number of stacking axes after the batch axis
    a, b = args
    core = (2, 1 if params["vector"] else 2)
    stack = [_example_ndim(x, bt) - c for x, bt, c in zip(args, batched, core)]
    m = max(stack)
    a, b = [x.reshape((size,) + (1,) * (m - k) + x.shape[1:]) if bt and k < m else x
            for x, bt, k in zip(args, batched, stack)]
    return prim.forward(a, b, **params)


def trace(prim, args, batched, size, params):
    return np.trace(args[0], axis1=1, axis2=2)


def repeat(prim, args, batched, size, params):
    (x,) = args
    reps = tuple(params["repeats"])
    x = _align([x], [True], len(reps))[0]
    return np.tile(x, (1,) + reps)


def gather(prim, args, batched, size, params):
    from .prims.shape import _along
    x, index = args
    if batched[1]:
        raise VmapFallback("gather with a batched index")
    nd = x.ndim - 1
    return x[(slice(None),) + _along(None, index, params["dim"] - nd)]


def einsum(prim, args, batched, size, params):
    equation = params["equation"].replace(" ", "")
    if "->" not in equation or "..." in equation:
        return per_example(prim, args, batched, size, params)
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


def elementwise_loss(prim, args, batched, size, params):
    ndim = max(_example_ndim(a, b) for a, b in zip(args, batched))
    loss = prim.forward(*_align(args, batched, ndim), **dict(params, reduction="none"))
    return _example_reduce(np.asarray(loss), params["reduction"]).astype(loss.dtype)


def nll_loss(prim, args, batched, size, params):
    from .prims import loss as loss_prims
    x, target = args
    if batched[1]:
        raise VmapFallback("nll_loss with a batched target")
    weights, picked = loss_prims._nll_weights(x[0], target, params["weight"],
                                              params["ignore_index"])
    loss = -np.sum(weights * x, axis=loss_prims._class_axis(x.ndim - 1) + 1)
    return _example_reduce(loss, params["reduction"], np.sum(picked)).astype(x.dtype)


def multi_output(prim, args, batched, size, params):
    # apply_multi cuts the carrier's example-shaped data into pieces outside apply(): the
    # pieces would be example 0's, so these run example by example (the whole function)
    raise VmapFallback(f"several-output primitive '{prim.name}'")


# ---- Delta propagation (one perturbed element per example) -----------------------------------
def delta_elementwise(prim, args, params):
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


def delta_view(prim, args, params):
    (d,) = args
    return Delta(np.asarray(prim.forward(d.base, **params)), d.index, d.value)


def delta_reduce(prim, args, params):
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


def delta_lane(prim, args, params):
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


def delta_nll(prim, args, params):
    """nll_loss is linear in its input: the change of the loss is a weighted sum."""
    from .prims import loss as loss_prims
    d, target = args
    if not isinstance(d, Delta) or isinstance(target, Delta) or params["reduction"] == "none":
        return None
    weights, picked = loss_prims._nll_weights(d.base, target, params["weight"],
                                              params["ignore_index"])
    base_out = np.asarray(prim.forward(d.base, target, **params))
    change = -(weights.reshape(-1)[d.index] * (d.value - d.base.reshape(-1)[d.index]))
    if change.ndim == 2:
        change = change.sum(axis=1)
    if params["reduction"] == "mean":
        change = change / np.sum(picked)
    return (base_out + change).astype(base_out.dtype)
