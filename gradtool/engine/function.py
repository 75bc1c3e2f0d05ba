"""Custom autograd Functions, as ``torch.autograd.Function``.

``MyFn.apply(*args)`` runs ``forward(ctx, *args)`` with grad mode off and, when an input
requires grad, returns outputs whose ``grad_fn`` is ``ctx`` itself: a node named
``MyFnBackward`` whose ``apply`` calls ``MyFn.backward(ctx, *grads)`` and checks what comes
back (count, shapes) with torch's error messages.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from ..errors import EngineError
from .grad_mode import MODE
from .node import SECOND_BACKWARD, Node, _version_error, grad_accumulator, unbroadcast
from .tensor import Tensor, _make, version_counter


class FunctionCtx(Node):
    """The ``ctx`` of a custom Function, which is also its backward node."""

    __slots__ = ("_fn_cls", "_saved", "_saved_versions", "_released", "needs_input_grad",
                 "_non_differentiable", "_dirty", "_materialize", "_input_meta",
                 "_forward_saved", "_n_outputs", "_output_meta", "_attrs", "_batched")

    def __init__(self) -> None:
        self.next_nodes = ()
        self.next_nrs = None
        self._hooks = None
        self._extra = None
        self._saved = None
        self._saved_versions = None
        self._released = False
        self.needs_input_grad = ()
        self._non_differentiable = ()
        self._dirty = ()
        self._materialize = True
        self._input_meta = ()
        self._forward_saved = None
        self._n_outputs = 1
        self._output_meta = ()
        self._attrs = {}
        self._batched = False

    # ctx.anything = value (torch allows arbitrary attributes on ctx)
    def __getattr__(self, name):
        try:
            return object.__getattribute__(self, "_attrs")[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value) -> None:
        if name in FunctionCtx.__slots__ or name in Node.__slots__:
            object.__setattr__(self, name, value)
        else:
            self._attrs[name] = value

    @property
    def n_outputs(self) -> int:
        return self._n_outputs

    def save_for_backward(self, *tensors) -> None:
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError("save_for_backward can only save variables, but argument "
                                f"{i} is of type {type(t).__name__}")
        self._saved = tensors
        self._saved_versions = tuple(None if t is None else version_counter(t)[0]
                                     for t in tensors)

    def save_for_forward(self, *tensors) -> None:
        self._forward_saved = tensors

    @property
    def saved_tensors(self) -> tuple:
        if self._released:
            raise EngineError(SECOND_BACKWARD)
        if self._saved is None:
            return ()
        for t, v in zip(self._saved, self._saved_versions):
            if t is not None and t._version != v:
                _version_error(t._data, t.grad_fn, t._nr, t._version, v)
        return self._saved

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_differentiable = tensors

    def mark_dirty(self, *tensors) -> None:
        self._dirty = tensors

    def set_materialize_grads(self, value: bool) -> None:
        self._materialize = bool(value)

    def name(self) -> str:
        return self._fn_cls.__name__ + "Backward"

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"

    def release(self) -> None:
        if self._saved is not None:
            self._released = True
        self._saved = None

    def _saved_repr(self) -> dict:
        if not self._saved:
            return {}
        return {f"saved_tensors[{i}]": t._data for i, t in enumerate(self._saved)
                if t is not None}

    def apply(self, grads: list, create_graph: bool, batched: bool):
        if batched and not self._fn_cls._batch_polymorphic:
            result = None if create_graph else self._apply_vmapped(grads)
            return result if result is not None else self._apply_looped(grads, create_graph)
        return self._call(grads, create_graph, batched)

    def _apply_vmapped(self, grads: list):
        """A batch of cotangents through the user's backward under :func:`vmap`: the
        backward sees one example's cotangents (as under ``torch.func.vmap``), so the dims it
        names (``sum(1)``, ``softmax(-1)``, ``t()``, ``reshape``) are those of the unbatched
        tensors, while every primitive computes on the whole batch.  None when it cannot run
        so (it reads values, uses numpy, updates a tensor in place...): then one call per
        cotangent, which also raises any genuine error of the backward."""
        from . import vmap
        size = next(g.shape[0] for g in grads if g is not None)
        args, batches = [], {}
        for i, (g, (shape, dtype)) in enumerate(zip(grads, self._output_meta)):
            if g is None:     # the same zeros (or None) for every example
                args.append(self._undefined_grad(shape, dtype))
            else:
                args.append(None)
                batches[i] = g._data if isinstance(g, Tensor) else g
        is_none = []

        def backward(*example_grads):
            result = self._fn_cls.backward(self, *example_grads)
            result = result if isinstance(result, tuple) else (result,)
            is_none[:] = [r is None for r in result]
            return tuple(r for r in result if r is not None)

        prev = MODE.grad_enabled
        MODE.grad_enabled = False
        try:
            outs, _ = vmap.call_batched(backward, tuple(args), batches, size)
        except vmap.VmapFallback as exc:
            for listen in BACKWARD_FALLBACK_LISTENERS:
                listen(self.name(), str(exc))
            return None
        finally:
            MODE.grad_enabled = prev
        batched = iter(outs)
        result = tuple(None if none else
                       _make(np.ascontiguousarray(vmap.as_dense(next(batched), size)))
                       for none in is_none)
        return self._check_result(result, False, True)

    def _call(self, grads: list, create_graph: bool, batched: bool):
        fn = self._fn_cls
        wrapped = []
        for g, (shape, dtype) in zip(grads, self._output_meta):
            if g is None:
                wrapped.append(self._undefined_grad(shape, dtype))
            else:
                wrapped.append(g if isinstance(g, Tensor) else _make(g))
        prev = MODE.grad_enabled
        MODE.grad_enabled = create_graph
        try:
            result = fn.backward(self, *wrapped)
        finally:
            MODE.grad_enabled = prev
        return self._check_result(result, create_graph, batched)

    def _undefined_grad(self, shape, dtype):
        """What backward gets for an output gradient that is undefined: zeros, or None
        after ``ctx.set_materialize_grads(False)``."""
        return _make(np.zeros(shape, dtype)) if self._materialize else None

    def _check_result(self, result, create_graph: bool, batched: bool) -> list:
        """What backward returned, checked as torch checks it (count, types, shapes) and
        summed down to the inputs' shapes: per input an array, a Tensor (create_graph) or
        None."""
        if not isinstance(result, tuple):
            result = (result,)
        n_inputs = len(self.next_nodes)
        if len(result) != n_inputs:
            if len(result) > n_inputs and all(r is None for r in result[n_inputs:]):
                result = result[:n_inputs]
            else:
                raise EngineError(f"function {self.name()} returned an incorrect number of "
                                  f"gradients (expected {n_inputs}, got {len(result)})")
        out = []
        for i, (g, node) in enumerate(zip(result, self.next_nodes)):
            if g is None:
                out.append(None)
                continue
            if not isinstance(g, Tensor):
                raise EngineError(f"expected Variable or None (got {_type_name(g)})")
            if self._input_meta[i] is None:
                raise EngineError(f"function {self.name()} returned a gradient different than "
                                  f"None at position {i + 1}, but the corresponding forward "
                                  "input was not a Variable")
            if node is None:
                out.append(None)
                continue
            g = self._fit(i, g, batched)
            out.append(g if create_graph else g._data)
        return out

    def _fit(self, i: int, g: Tensor, batched: bool) -> Tensor:
        """Sum a broadcastable gradient down to the input's shape; refuse anything else."""
        shape, dtype = self._input_meta[i]
        gshape = tuple(g.shape[1:]) if batched else tuple(g.shape)
        if gshape != tuple(shape):
            # torch's rule: the input's shape must expand to the gradient's; then sum down.
            try:
                fits = np.broadcast_shapes(tuple(shape), gshape) == gshape
            except ValueError:
                fits = False
            if not fits:
                raise EngineError(
                    f"Function {self.name()} returned an invalid gradient at index {i} - got "
                    f"{list(gshape)} but expected shape compatible with {list(shape)}")
            g = unbroadcast(g, tuple(shape), batched)
        if g._data.dtype != dtype and dtype.kind in "fc":
            g = g.to(dtype)
        return g

    def _apply_looped(self, grads: list, create_graph: bool):
        """Batched cotangents through a Python backward that may not batch: one call each."""
        from . import ops
        n = next(g.shape[0] for g in grads if g is not None)
        rows = []
        for k in range(n):
            rows.append(self._call([None if g is None else g[k] for g in grads],
                                   create_graph, False))
        out = []
        for i in range(len(self.next_nodes)):
            column = [r[i] for r in rows]
            if any(c is None for c in column):
                out.append(None)
            elif create_graph:
                out.append(ops.stack(column))
            else:
                out.append(np.stack(column))
        return out


def _type_name(value) -> str:
    cls = type(value)
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__name__}"


class _FunctionMeta(type):
    def __init__(cls, name, bases, namespace) -> None:
        super().__init__(name, bases, namespace)
        cls._backward_cls = type(name + "Backward", (FunctionCtx,), {"__slots__": ()})


class Function(metaclass=_FunctionMeta):
    """Base class of custom autograd Functions (``forward``/``backward`` staticmethods)."""

    # gradtool's own identity-like Functions set this: their backward is written for a leading
    # batch axis of cotangents.  Every other backward runs under vmap (see FunctionCtx.apply).
    _batch_polymorphic = False

    def __init__(self, *args, **kwargs) -> None:
        warnings.warn(f"{type(self)} should not be instantiated. Methods on autograd functions "
                      "are all static, so you should invoke them on the class itself. "
                      "Instantiating an autograd function will raise an error in a future "
                      "version of PyTorch.", DeprecationWarning, stacklevel=2)

    def __call__(self, *args, **kwargs):
        raise EngineError("Legacy autograd function with non-static forward method is "
                           "deprecated. Please use new-style autograd function with static "
                           "forward method. (Example: "
                           "https://pytorch.org/docs/stable/autograd.html"
                           "#torch.autograd.Function)")

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for "
                                  "your custom autograd.Function to use it with backward "
                                  "mode AD.")

    vjp = backward

    @staticmethod
    def jvp(ctx, *grad_inputs):
        raise NotImplementedError("You must implement the jvp function for custom "
                                  "autograd.Function to use it with forward mode AD.")

    @classmethod
    def apply(cls, *args, **kwargs):
        return _apply_function(cls, args, kwargs)


def _uses_setup_context(cls) -> bool:
    return getattr(cls, "setup_context", None) is not None and \
        cls.setup_context is not getattr(Function, "setup_context", None)


def _apply_function(cls, args, kwargs):
    ctx = cls._backward_cls()
    object.__setattr__(ctx, "_fn_cls", cls)
    tensor_args = [a for a in args if isinstance(a, Tensor)]
    needs = tuple(isinstance(a, Tensor) and a._rg for a in args)
    ctx.needs_input_grad = needs
    record = MODE.grad_enabled and any(needs)
    prev = MODE.grad_enabled
    MODE.grad_enabled = False
    try:
        if _uses_setup_context(cls):
            outputs = cls.forward(*args, **kwargs)
            cls.setup_context(ctx, args, outputs)
        else:
            outputs = cls.forward(ctx, *args, **kwargs)
    finally:
        MODE.grad_enabled = prev
    single = not isinstance(outputs, tuple)
    outs = (outputs,) if single else outputs
    if record:
        for t in ctx._dirty:
            if isinstance(t, Tensor) and t.grad_fn is None and t._rg:
                raise EngineError("a leaf Variable that requires grad has been used in an "
                                  "in-place operation.")
    result = []
    non_diff = {id(t) for t in ctx._non_differentiable}
    for o in outs:
        if isinstance(o, Tensor) and any(o is a for a in tensor_args) and \
                not any(o is d for d in ctx._dirty):
            alias = _make(o._data)     # an input returned as is: a new tensor, same data
            alias._vc = version_counter(o)
            if id(o) in non_diff:
                non_diff.add(id(alias))
            o = alias
        result.append(o)
    if record:
        nodes, nrs = [], []
        for a in args:
            if isinstance(a, Tensor) and a._rg:
                nodes.append(a.grad_fn if a.grad_fn is not None else grad_accumulator(a))
                nrs.append(a._nr)
            else:
                nodes.append(None)
                nrs.append(0)
        ctx.next_nodes = tuple(nodes)
        ctx.next_nrs = tuple(nrs) if any(nrs) else None
        ctx._input_meta = tuple((a._data.shape, a._data.dtype) if isinstance(a, Tensor)
                                else None for a in args)
        ctx._n_outputs = len(result)
        ctx._output_meta = tuple((o._data.shape, o._data.dtype) if isinstance(o, Tensor)
                                 else ((), np.dtype(np.float64)) for o in result)
        if MODE.anomaly:
            import traceback
            ctx._meta("metadata", dict)["traceback_"] = traceback.format_stack()[:-2]
        for i, o in enumerate(result):
            if not isinstance(o, Tensor):
                continue
            if id(o) in non_diff or o._data.dtype.kind not in "fc":
                o._rg = False
                continue
            o.grad_fn = ctx
            o._nr = i
            o._rg = True
    if MODE.fw_level and any(isinstance(a, Tensor) and a._fw is not None and
                             a._fw[0] == MODE.fw_level for a in args):
        _function_jvp(cls, ctx, args, result)
    return result[0] if single else tuple(result)


# The checker's check_batched_grad / check_batched_forward_grad listen here (empty
# otherwise): each custom backward that could not run under vmap for a batch of cotangents
# (so ran once per cotangent), as (node name, reason); each custom jvp that ran, as (class
# name, a function calling it again with other tangents, its tangents, its result).
BACKWARD_FALLBACK_LISTENERS: list = []
JVP_LISTENERS: list = []


def _function_jvp(cls, ctx, args, result) -> None:
    level = MODE.fw_level
    tangents = []
    for a in args:
        if isinstance(a, Tensor):
            tan = a._fw[1] if a._fw is not None and a._fw[0] == level else \
                np.zeros_like(a._data)
            tangents.append(_make(tan))
        else:
            tangents.append(None)

    def run_jvp(*tangents):
        prev = MODE.grad_enabled
        MODE.grad_enabled = False
        # in jvp, ctx.saved_tensors are the tensors given to save_for_forward (torch)
        backward_saved = ctx._saved, ctx._saved_versions
        if ctx._forward_saved is not None:
            ctx.save_for_backward(*ctx._forward_saved)
        try:
            out = cls.jvp(ctx, *tangents)
        finally:
            MODE.grad_enabled = prev
            ctx._saved, ctx._saved_versions = backward_saved
        return out if isinstance(out, tuple) else (out,)

    out_tangents = run_jvp(*tangents)
    for listen in JVP_LISTENERS:
        listen(cls.__name__, run_jvp, tangents, out_tangents)
    for o, t in zip(result, out_tangents):
        if isinstance(o, Tensor) and t is not None:
            arr = t._data if isinstance(t, Tensor) else np.asarray(t)
            if arr.shape != o._data.shape:
                arr = np.broadcast_to(arr, o._data.shape)
            o._fw = (level, arr)


def once_differentiable(fn):
    """Decorate a ``backward`` that is not itself differentiable: it runs with grad mode off,
    and a second differentiation through it raises instead of returning wrong zeros."""

    @functools.wraps(fn)
    def wrapper(ctx, *args):
        tracking = MODE.grad_enabled and any(isinstance(a, Tensor) and a._rg for a in args)
        prev = MODE.grad_enabled
        MODE.grad_enabled = False
        try:
            outputs = fn(ctx, *args)
        finally:
            MODE.grad_enabled = prev
        if not tracking:
            return outputs
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        marked = _delayed_error(outs)
        return marked[0] if single else marked
    return wrapper


def _delayed_error(outputs: tuple) -> tuple:
    """Attach outputs to a node that raises when differentiated (torch's DelayedError)."""
    ctx = _DelayedError._backward_cls()
    object.__setattr__(ctx, "_fn_cls", _DelayedError)
    ctx.next_nodes = (None,)
    ctx._n_outputs = len(outputs)
    ctx._output_meta = tuple((o._data.shape, o._data.dtype) if isinstance(o, Tensor)
                             else ((), np.dtype(np.float64)) for o in outputs)
    marked = []
    for i, o in enumerate(outputs):
        if isinstance(o, Tensor) and o._data.dtype.kind in "fc":
            o = _make(o._data, ctx, True)
            o._nr = i
        marked.append(o)
    return tuple(marked)


class _DelayedError(Function):
    @staticmethod
    def backward(ctx, grad):
        raise EngineError("trying to differentiate twice a function that was marked with "
                          "@once_differentiable")
