"""``gt.vmap``: run a function written for one example on a whole batch at once.

``vmap(fn, in_dims=0)(*batched_args)`` calls ``fn`` once, on :class:`BatchedTensor`\\ s that
look like one example (their ``shape``, ``ndim`` and ``dtype`` are an example's) while their
primitives compute on every example: :func:`gradtool.engine.primitive.apply` hands each
primitive to its *batching rule* (``prim.batch``, declared in its op-table entry; the rules
are in :mod:`gradtool.engine.batching`) that runs the
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
``fn`` once per example instead (the returned function's ``path`` attribute says which path
its last call took and why).
"""

from __future__ import annotations

import numpy as np

from ..errors import EngineError
from . import primitive as P
from .batching import Delta, VmapFallback
from .grad_mode import MODE, no_grad
from .tensor import Tensor, _init, _make


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

    def detach(self) -> BatchedTensor:
        return _wrap_like(self)

    @property
    def data(self) -> BatchedTensor:
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
    _init(t, _guard(arr[0] if arr.shape[0] else np.empty(arr.shape[1:], arr.dtype)), None,
          False)
    t._bt = arr
    t._delta = None
    return t


def _from_delta(d: Delta) -> BatchedTensor:
    t = BatchedTensor.__new__(BatchedTensor)
    _init(t, _guard(d.base), None, False)
    t._bt = None
    t._delta = d
    return t


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
        rule = prim.batch
        if rule is None:
            raise VmapFallback(f"no batching rule for primitive '{prim.name}'")
        delta_rule = prim.delta
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
    return tuple(stack(col) for col in zip(*rows)), single


def stack(arrays) -> np.ndarray:
    """``np.stack(arrays)``; of same-shaped arrays, one array call (np.stack's wrapper
    costs more than stacking a few small examples)."""
    shape = arrays[0].shape
    if all(type(a) is np.ndarray and a.shape == shape for a in arrays):
        return np.array(arrays)
    return np.stack(arrays)
