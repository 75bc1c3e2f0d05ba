"""The primitive mechanism: one object per primitive holding its forward, its VJP (one rule
per input) and its JVP (one rule per input) side by side, and ``apply`` which runs a
primitive on tensors and records the graph.

Rule signatures are fixed: ``vjp_i(grad, *inputs, out, **params)`` returns the gradient for
input ``i``; ``jvp_i(tangent_i, *inputs, out, **params)`` returns input ``i``'s contribution
to the output tangent.  Rules are written with operators and :mod:`gradtool.engine.backend`
functions so that the same rule runs on numpy arrays (plain backward) and on Tensors
(``create_graph=True``, which makes the backward differentiable).  ``grad`` may carry one
extra leading batch axis (``is_grads_batched``): rules must broadcast over it (index axes
from the end, use ``swapaxes(-1, -2)`` rather than ``.T``).  Broadcasting is undone by the
engine (``unbroadcast``) for primitives declared ``broadcasts=True``.
"""

from __future__ import annotations

import numpy as np

from ..errors import EngineError, LimitError, ShapeError
from . import backend
from .dtypes import promoted
from .grad_mode import MODE
from .limits import ELEMENTS_HINT, check_deadline
from .node import OpNode, grad_accumulator, saved_properties
from .tensor import Tensor, _init, _make, new_version_counter

_ndarray = np.ndarray
_EMPTY: dict = {}

REGISTRY: dict[str, Primitive] = {}

SAVE_MODES = ("inputs", "out", "both", "shapes", "none")


class ShapeOnly:
    """Stands in for an input a rule needs only the shape/dtype of (``save="shapes"``)."""

    __slots__ = ("shape", "dtype", "ndim", "size")

    def __init__(self, arr) -> None:
        self.shape = arr.shape
        self.dtype = arr.dtype
        self.ndim = arr.ndim
        self.size = arr.size


_new_shape_only = object.__new__


class Primitive:
    """One entry of the op table."""

    def __init__(self, name: str, node_name: str, forward, *, save: str = "inputs",
                 broadcasts: bool = False, analytic: bool = True, differentiable: bool = True,
                 input_names: tuple = ("self",), out_shape=None, doc: str = "",
                 sample=None, batch=None, delta=None, domain=None, needs=None,
                 shape_only: tuple = (), quiet: bool = False, promotes: bool = True, vjp=(),
                 jvp=()) -> None:
        if save not in SAVE_MODES:
            raise ValueError(f"save must be one of {SAVE_MODES}")
        if name in REGISTRY:
            raise ValueError(f"primitive '{name}' registered twice")
        self.name = name
        self.node_name = node_name
        # quiet: numpy's warnings silenced (log(0), sqrt(-1), 1/0, exp overflow), as torch
        # returns inf/NaN silently.  The arithmetic of the hot path (add, sub, mul, neg) is not
        # quiet: it warns only on overflow or inf - inf, and the wrapper costs ~0.4 us a call.
        self.forward = backend.quiet(forward) if quiet else forward
        self.save = save
        self.broadcasts = broadcasts
        # promotes: a broadcasting primitive's result has its inputs' promoted dtype (False:
        # the forward's own dtype, e.g. huber_loss's is its input's)
        self.promotes = promotes
        self.analytic = analytic            # False: not complex-analytic (complex step refused)
        self.differentiable = differentiable
        self.input_names = tuple(input_names)
        self.out_shape = out_shape          # (shapes..., **params) -> shape, for the element cap
        self.doc = doc
        self.sample = sample                # () -> list of (args, params) for the table tests
        # how it runs on a batch (gt.vmap, batched finite differences): a rule of
        # gradtool.engine.batching; delta: the O(batch) rule for one-element perturbations
        self.batch = batch
        self.delta = delta
        self.domain = domain                # where generated test inputs must lie (or None)
        # one VJP and one JVP rule per input (None: no gradient / tangent for that input); a
        # single callable for a one-input primitive; Variadic(rule) for cat/stack-like ones
        self.vjps = vjp if isinstance(vjp, (tuple, Variadic)) else (vjp,)
        self.jvps = jvp if isinstance(jvp, (tuple, Variadic)) else (jvp,)
        # needs[i]: the inputs the VJP of input i reads (None: all).  Inputs no needed rule
        # reads are not saved (x * 2.0 keeps no reference to x), as torch does.
        self.needs: tuple | None = needs
        # shape_only: inputs whose values no rule reads, only their shape and dtype (gather's
        # and index_select's self): saved as a ShapeOnly, so changing them in place later is
        # no error, as torch saves only their sizes
        self.shape_only = frozenset(shape_only)
        # inputs torch records an edge for: those with a VJP rule (an index, a mask, a
        # class-index target is no input of torch's node); None: all of them
        self.edge_inputs = None if isinstance(self.vjps, Variadic) or all(
            rule is not None for rule in self.vjps) else tuple(
                i for i, rule in enumerate(self.vjps) if rule is not None)
        self._keep_by_mask: dict = {}
        self.node_cls = type(node_name, (OpNode,), {"__slots__": (), "_name": node_name,
                                                    **saved_properties(input_names or ())})
        REGISTRY[name] = self

    @property
    def _keep_binary(self) -> tuple:
        """keep flags per requires-grad mask (a: 1, b: 2) of a binary primitive."""
        table = self._keep_by_mask.get("binary")
        if table is None:
            table = tuple(_kept_inputs(self, [m & 1 or None, m & 2 or None]) or (True, True)
                          for m in range(4))
            self._keep_by_mask["binary"] = table
        return table

    def __call__(self, *args, **params):
        return apply(self, args, params)

    def __repr__(self) -> str:
        return f"<primitive {self.name} ({self.node_name})>"


class Variadic:
    """``vjps[i]`` for a variadic primitive: the shared rule with ``i`` bound."""

    __slots__ = ("rule",)

    def __init__(self, rule) -> None:
        self.rule = rule

    def __getitem__(self, i: int):
        rule = self.rule

        def bound(g, *inputs, **kw):
            return rule(i, g, *inputs, **kw)
        return bound


#: Hooks that take over ``apply`` (``gt.vmap``'s batching rules, the checker's op recorder).
#: Empty in ordinary use, so the hot path pays one truth test.  A hook is called as
#: ``hook(prim, args, params)`` and is removed from the list while it runs, so calling
#: ``apply`` from inside it reaches the next hook, or the plain path.
INTERCEPTORS: list = MODE.interceptors


def _intercepted(prim: Primitive, args: tuple, params: dict):
    hook = INTERCEPTORS.pop()
    try:
        return hook(prim, args, params)
    finally:
        INTERCEPTORS.append(hook)


def apply(prim: Primitive, args: tuple, params: dict = _EMPTY) -> Tensor:
    """Run ``prim`` on ``args`` (Tensors or constants) and record the backward node.

    The steps: hand over to an interceptor (vmap, the checker's recorder) if one is active;
    take a fast path for one Tensor, two Tensors, or a Tensor and a constant, without
    forward tangents; else unwrap the arguments, check the size limits, run the forward,
    count the output against the memory budget, record the node (edges, saved values,
    broadcast shapes) and the forward tangent.  ``_apply_one``, ``_apply_two``,
    ``_apply_const`` and ``apply_binary`` are the same steps written out without loops,
    temporary lists or helper calls (a call costs ~0.1 us, and these paths are the per-op
    cost of long graphs); tests/engine/test_apply_paths.py checks that every path records
    the same node as this one."""
    if INTERCEPTORS:
        return _intercepted(prim, args, params)
    if len(args) == 1:
        a = args[0]
        if isinstance(a, Tensor) and a._fw is None:
            if not MODE.limited:
                return _apply_one(prim, a, params)
            check_size(prim, [a._data], params)
            return _accounted(prim, _apply_one(prim, a, params))
    elif len(args) == 2:
        a, b = args
        if isinstance(a, Tensor) and a._fw is None:
            if not isinstance(b, Tensor):
                if not MODE.limited:
                    return _apply_const(prim, a, b, params)
            elif b._fw is None:
                if not MODE.limited:
                    return _apply_two(prim, a, b, params)
                check_size(prim, [a._data, b._data], params)
                return _accounted(prim, _apply_two(prim, a, b, params))
    datas, need, fw = _unwrap(args)
    limited = MODE.limited
    if limited:
        check_size(prim, datas, params)
    out_data = _run_forward(prim, datas, params)
    out = _make(out_data)
    if limited and MODE.budget is not None:
        account(prim, out_data)
    if need and MODE.grad_enabled and prim.differentiable and out_data.dtype.kind in "fc":
        _record_node(prim, args, datas, params, out)
    if fw and MODE.fw_level:
        _forward_tangent(prim, args, datas, params, out)
    return out


def _unwrap(args: tuple) -> tuple:
    """The arrays (and constants) of ``args``, whether any requires grad, whether any
    carries a forward-mode tangent."""
    datas = []
    need = False
    fw = False
    for a in args:
        if isinstance(a, Tensor):
            datas.append(a._data)
            if a._rg:
                need = True
            if a._fw is not None:
                fw = True
        else:
            datas.append(a)
    return datas, need, fw


def _run_forward(prim: Primitive, datas: list, params: dict) -> np.ndarray:
    """The forward on arrays; numpy's errors become torch's, mixed dtypes are promoted."""
    try:
        out_data = prim.forward(*datas, **params) if params else prim.forward(*datas)
    except (ValueError, IndexError, TypeError, np.linalg.LinAlgError) as exc:
        raise op_error(prim, exc, datas) from None
    if type(out_data) is not _ndarray:
        out_data = np.asarray(out_data)
    if prim.broadcasts:
        arrays = [d for d in datas if type(d) is _ndarray]
        if len(arrays) > 1 and len({d.dtype for d in arrays}) > 1 and prim.promotes:
            out_data = promoted(out_data, arrays)
    return out_data


def _new_node(prim: Primitive, params: dict):
    """An empty backward node of ``prim`` (every path fills its edges and saved values)."""
    node = prim.node_cls.__new__(prim.node_cls)
    node._hooks = None
    node._extra = None
    node.prim = prim
    node.params = params
    node.released = False
    return node


def _attach(node, out: Tensor) -> None:
    """Make ``node`` the producer of ``out`` (anomaly mode: with the forward's trace)."""
    if MODE.anomaly:
        _record_trace(node)
    out.grad_fn = node
    out._rg = True


def _save_output(node, save: str, out: Tensor, out_data: np.ndarray) -> None:
    """Save the output for the rules that read it (``save="out"``/``"both"``)."""
    if save == "out" or save == "both":
        node.out_data = out_data
        node.out_vc = out._vc = new_version_counter()
        node.out_version = 0
    else:
        node.out_data = None
        node.out_vc = None


def _record_node(prim: Primitive, args: tuple, datas: list, params: dict, out: Tensor) -> None:
    """The backward node of the general path: edges, saved values, broadcast shapes."""
    node = _new_node(prim, params)
    nodes, nrs = _edges(prim, args)
    node._set_edges(nodes)
    node.next_nrs = nrs
    save = prim.save
    if save == "inputs" or save == "both":
        node.saved, node.vcs, node.versions = _saved_inputs(prim, args, datas, nodes)
    elif save == "shapes":
        node.saved = tuple([ShapeOnly(d) if isinstance(d, _ndarray) else d for d in datas])
        node.vcs = None
    else:
        node.saved = None
        node.vcs = None
    out_data = out._data
    _save_output(node, save, out, out_data)
    if prim.broadcasts:
        shape = out_data.shape
        node.meta = tuple([None if sh == shape else sh for sh in map(_shape_of, datas)])
    else:
        node.meta = None
    _attach(node, out)


def _edges(prim: Primitive, args: tuple) -> tuple:
    """Per input, the node its gradient flows to (None: no gradient), and the output
    numbers of multi-output producers (None when all are 0)."""
    nodes = []
    nrs = None
    vjps = prim.vjps
    for i, a in enumerate(args):
        if isinstance(a, Tensor) and a._rg and vjps[i] is not None:
            fn = a.grad_fn
            if fn is None:
                nodes.append(grad_accumulator(a))
            else:
                nodes.append(fn)
                if a._nr:
                    if nrs is None:
                        nrs = [0] * len(args)
                    nrs[i] = a._nr
        else:
            nodes.append(None)
    return nodes, None if nrs is None else tuple(nrs)


def _saved_inputs(prim: Primitive, args: tuple, datas: list, nodes: list) -> tuple:
    """The input arrays the rules read, with their version counters and versions (checked
    when the backward runs: an in-place change in between is torch's error)."""
    keep = _kept_inputs(prim, nodes)
    shape_only = prim.shape_only
    vcs = []
    versions = []
    saved = []
    for i, a in enumerate(args):
        if keep is not None and not keep[i]:
            saved.append(None)
            vcs.append(None)
            versions.append(None)
        elif i in shape_only:
            saved.append(ShapeOnly(datas[i]) if isinstance(datas[i], _ndarray) else datas[i])
            vcs.append(None)
            versions.append(None)
        elif isinstance(a, Tensor):
            saved.append(datas[i])
            vc = a._vc
            if vc is None:
                vc = a._vc = new_version_counter()
            vcs.append(vc)
            versions.append(vc[0])
        else:
            saved.append(datas[i])
            vcs.append(None)
            versions.append(None)
    return tuple(saved), tuple(vcs), tuple(versions)


def _apply_one(prim: Primitive, a: Tensor, params: dict) -> Tensor:
    """``apply`` for one Tensor input without a forward-mode tangent (unary ops, views,
    reductions): the same semantics with no loops or temporary lists."""
    data = a._data
    try:
        out_data = prim.forward(data, **params) if params else prim.forward(data)
    except (ValueError, IndexError, TypeError, np.linalg.LinAlgError) as exc:
        raise op_error(prim, exc, [data]) from None
    if type(out_data) is not _ndarray:
        out_data = np.asarray(out_data)
    out = _make(out_data)
    if not (a._rg and MODE.grad_enabled and prim.differentiable
            and out_data.dtype.kind in "fc"):
        return out
    node = prim.node_cls.__new__(prim.node_cls)
    node._arity = 1
    node._edge1 = None
    node._edges = None
    node.next_nrs = None
    if prim.vjps[0] is not None:
        edge = node._edge0 = a.grad_fn or grad_accumulator(a)
        if a._nr:
            node.next_nrs = (a._nr,)
    else:
        edge = node._edge0 = None
    node._hooks = None
    node._extra = None
    node.prim = prim
    node.params = params
    node.released = False
    save = prim.save
    if save == "inputs" or save == "both":
        keep = _kept_inputs(prim, [edge])
        if keep is not None and not keep[0]:
            node.saved = node.vcs = node.versions = (None,)
        else:
            vc = a._vc
            if vc is None:
                vc = a._vc = new_version_counter()
            node.saved = (data,)
            node.vcs = (vc,)
            node.versions = (vc[0],)
    elif save == "shapes":
        # ShapeOnly(data) without its __init__ call (views and reductions save this)
        shapes = _new_shape_only(ShapeOnly)
        shapes.shape = data.shape
        shapes.dtype = data.dtype
        shapes.ndim = data.ndim
        shapes.size = data.size
        node.saved = (shapes,)
        node.vcs = None
    else:
        node.saved = None
        node.vcs = None
    if save == "out" or save == "both":
        node.out_data = out_data
        node.out_vc = out._vc = new_version_counter()
        node.out_version = 0
    else:
        node.out_data = None
        node.out_vc = None
    if prim.broadcasts:
        node.meta = (None if data.shape == out_data.shape else data.shape,)
    else:
        node.meta = None
    if MODE.anomaly:
        _record_trace(node)
    out.grad_fn = node
    out._rg = True
    return out


def _apply_two(prim: Primitive, a: Tensor, b: Tensor, params: dict) -> Tensor:
    """``apply`` for two Tensor inputs without forward-mode tangents (mm, dot, mv, where
    ...): the same semantics with no loops or temporary lists."""
    da = a._data
    db = b._data
    try:
        out_data = prim.forward(da, db, **params) if params else prim.forward(da, db)
    except (ValueError, IndexError, TypeError, np.linalg.LinAlgError) as exc:
        raise op_error(prim, exc, [da, db]) from None
    if type(out_data) is not _ndarray:
        out_data = np.asarray(out_data)
    if prim.broadcasts and da.dtype != db.dtype and prim.promotes:
        out_data = promoted(out_data, [da, db])
    out = _make(out_data)
    rga = a._rg
    rgb = b._rg
    if not ((rga or rgb) and MODE.grad_enabled and prim.differentiable
            and out_data.dtype.kind in "fc"):
        return out
    node = prim.node_cls.__new__(prim.node_cls)
    node._arity = 2
    node._edges = None
    node.next_nrs = None
    vjps = prim.vjps
    edge0 = edge1 = None
    if rga and vjps[0] is not None:
        edge0 = a.grad_fn or grad_accumulator(a)
        if a._nr:
            node.next_nrs = (a._nr, 0)
    if rgb and vjps[1] is not None:
        edge1 = b.grad_fn or grad_accumulator(b)
        if b._nr:
            node.next_nrs = (a._nr if edge0 is not None else 0, b._nr)
    node._edge0 = edge0
    node._edge1 = edge1
    node._hooks = None
    node._extra = None
    node.prim = prim
    node.params = params
    node.released = False
    save = prim.save
    if save == "inputs" or save == "both":
        table = prim._keep_by_mask.get("binary") or prim._keep_binary
        keep = table[(edge0 is not None) + 2 * (edge1 is not None)]
        shape_only = prim.shape_only
        if not keep[0]:
            sa = vca = va = None
        elif shape_only and 0 in shape_only:
            sa, vca, va = ShapeOnly(da), None, None
        else:
            vca = a._vc
            if vca is None:
                vca = a._vc = new_version_counter()
            sa, va = da, vca[0]
        if not keep[1]:
            sb = vcb = vb = None
        elif shape_only and 1 in shape_only:
            sb, vcb, vb = ShapeOnly(db), None, None
        else:
            vcb = b._vc
            if vcb is None:
                vcb = b._vc = new_version_counter()
            sb, vb = db, vcb[0]
        node.saved = (sa, sb)
        node.vcs = (vca, vcb)
        node.versions = (va, vb)
    elif save == "shapes":
        node.saved = (ShapeOnly(da), ShapeOnly(db))
        node.vcs = None
    else:
        node.saved = None
        node.vcs = None
    if save == "out" or save == "both":
        node.out_data = out_data
        node.out_vc = out._vc = new_version_counter()
        node.out_version = 0
    else:
        node.out_data = None
        node.out_vc = None
    if prim.broadcasts:
        shape = out_data.shape
        node.meta = (None if da.shape == shape else da.shape,
                     None if db.shape == shape else db.shape)
    else:
        node.meta = None
    if MODE.anomaly:
        _record_trace(node)
    out.grad_fn = node
    out._rg = True
    return out


def _apply_const(prim: Primitive, a: Tensor, b, params: dict) -> Tensor:
    """``apply`` for a Tensor without a forward-mode tangent and a constant (nll_loss's
    class-index target, an index, a mask, a number): the same semantics as the general
    path (the constant has no edge; it is saved as a value with no version counter) with
    no loops or temporary lists."""
    da = a._data
    try:
        out_data = prim.forward(da, b, **params) if params else prim.forward(da, b)
    except (ValueError, IndexError, TypeError, np.linalg.LinAlgError) as exc:
        raise op_error(prim, exc, [da, b]) from None
    if type(out_data) is not _ndarray:
        out_data = np.asarray(out_data)
    if prim.broadcasts and prim.promotes and type(b) is _ndarray and b.dtype != da.dtype:
        out_data = promoted(out_data, [da, b])
    out = _make(out_data)
    if not (a._rg and MODE.grad_enabled and prim.differentiable
            and out_data.dtype.kind in "fc"):
        return out
    node = prim.node_cls.__new__(prim.node_cls)
    node._arity = 2
    node._edges = None
    node._edge1 = None
    node.next_nrs = None
    if prim.vjps[0] is not None:
        edge = node._edge0 = a.grad_fn or grad_accumulator(a)
        if a._nr:
            node.next_nrs = (a._nr, 0)
    else:
        edge = node._edge0 = None
    node._hooks = None
    node._extra = None
    node.prim = prim
    node.params = params
    node.released = False
    save = prim.save
    if save == "inputs" or save == "both":
        keep = _kept_inputs(prim, [edge, None])
        shape_only = prim.shape_only
        if keep is not None and not keep[0]:
            sa = vca = va = None
        elif 0 in shape_only:
            sa, vca, va = ShapeOnly(da), None, None
        else:
            vca = a._vc
            if vca is None:
                vca = a._vc = new_version_counter()
            sa, va = da, vca[0]
        if keep is not None and not keep[1]:
            sb = None
        elif 1 in shape_only and isinstance(b, _ndarray):
            sb = ShapeOnly(b)
        else:
            sb = b
        node.saved = (sa, sb)
        node.vcs = (vca, None)
        node.versions = (va, None)
    elif save == "shapes":
        node.saved = (ShapeOnly(da), ShapeOnly(b) if isinstance(b, _ndarray) else b)
        node.vcs = None
    else:
        node.saved = None
        node.vcs = None
    if save == "out" or save == "both":
        node.out_data = out_data
        node.out_vc = out._vc = new_version_counter()
        node.out_version = 0
    else:
        node.out_data = None
        node.out_vc = None
    if prim.broadcasts:
        shape = out_data.shape
        shape_b = _shape_of(b)
        node.meta = (None if da.shape == shape else da.shape,
                     None if shape_b == shape else shape_b)
    else:
        node.meta = None
    if MODE.anomaly:
        _record_trace(node)
    out.grad_fn = node
    out._rg = True
    return out


# what the arithmetic operators take besides Tensors (arrays: the rules' constants)
_OPERAND_TYPES = frozenset({int, float, bool, complex, np.ndarray, np.float64, np.float32,
                            np.int64, np.int32, np.bool_, np.complex128})


#: what torch's operators take besides a Tensor: numbers, numpy scalars and arrays; with
#: anything else (a list, a tuple, None, a string) they return NotImplemented, and Python
#: then raises its TypeError (``x == [1, 2]`` is False; for ``tensor * [1, 2]`` the list is
#: asked to repeat itself a tensor number of times, as with torch)
OPERANDS = (Tensor, int, float, complex, np.number, np.bool_, np.ndarray)


def _foreign_operand(a, b, tensor_first: bool) -> bool:
    """``tensor + [1, 2]``, ``tensor * None``, ``tensor - "a"`` (see ``OPERANDS``)."""
    return not isinstance(b if tensor_first else a, OPERANDS)


def apply_binary(prim: Primitive, a, b) -> Tensor:
    """``apply`` for the arithmetic operators (``+ - * /``): the same steps as ``apply``
    with no loops, temporary lists or helper calls (each call costs ~0.1 us here, where
    the per-op overhead of long graphs is spent); the op-table walker runs the same
    primitives through ``apply`` and the operators through this path."""
    ta = isinstance(a, Tensor)
    tb = isinstance(b, Tensor)
    if not (ta and tb) and type(b if ta else a) not in _OPERAND_TYPES and \
            _foreign_operand(a, b, ta):
        return NotImplemented
    if INTERCEPTORS or MODE.limited or MODE.fw_level:
        return apply(prim, (a, b))
    da = a._data if ta else a
    db = b._data if tb else b
    if MODE.max_elements:
        check_size(prim, [da, db], _EMPTY)
    try:
        out_data = prim.forward(da, db)
    except (ValueError, TypeError) as exc:
        raise op_error(prim, exc, [da, db]) from None
    if type(out_data) is not _ndarray:
        out_data = np.asarray(out_data)
    if ta and tb and da.dtype is not db.dtype:
        out_data = promoted(out_data, (da, db))
    out = Tensor.__new__(Tensor)
    _init(out, out_data, None, False)       # the one Tensor initialiser (as _make's)
    rga = ta and a._rg
    rgb = tb and b._rg
    if (rga or rgb) and MODE.grad_enabled and out_data.dtype.kind in "fc":
        node = prim.node_cls.__new__(prim.node_cls)
        node._arity = 2
        node._edges = None
        node.next_nrs = None
        shape = out_data.shape
        sa = sb = None
        if rga:
            node._edge0 = a.grad_fn or grad_accumulator(a)
            if a._nr:
                node.next_nrs = (a._nr, 0)
            if da.shape != shape:
                sa = da.shape
        else:
            node._edge0 = None
        if rgb:
            node._edge1 = b.grad_fn or grad_accumulator(b)
            if b._nr:
                node.next_nrs = (a._nr if rga else 0, b._nr)
            if db.shape != shape:
                sb = db.shape
        else:
            node._edge1 = None
        node._hooks = None
        node._extra = None
        node.prim = prim
        node.params = _EMPTY
        node.released = False
        node.out_data = None
        node.out_vc = None
        node.meta = (sa, sb)
        if prim.save == "inputs":
            table = prim._keep_by_mask.get("binary") or prim._keep_binary
            keep = table[rga + 2 * rgb]
            vca = vcb = va = vb = None
            if keep[0]:
                if ta:
                    vca = a._vc
                    if vca is None:
                        vca = a._vc = new_version_counter()
                    va = vca[0]
            else:
                da = None
            if keep[1]:
                if tb:
                    vcb = b._vc
                    if vcb is None:
                        vcb = b._vc = new_version_counter()
                    vb = vcb[0]
            else:
                db = None
            node.saved = (da, db)
            node.vcs = None if vca is None and vcb is None else (vca, vcb)
            node.versions = (va, vb)
        else:
            node.saved = None
            node.vcs = None
        if MODE.anomaly:
            _record_trace(node)
        out.grad_fn = node
        out._rg = True
    return out


def _kept_inputs(prim: Primitive, nodes: list):
    """Which inputs must be saved, given which inputs will receive a gradient."""
    needs = prim.needs
    if needs is None:
        return None
    mask = 0
    for i, n in enumerate(nodes):
        if n is not None:
            mask |= 1 << i
    keep = prim._keep_by_mask.get(mask)
    if keep is None:
        wanted = set()
        for i in range(len(nodes)):
            if mask >> i & 1:
                wanted.update(needs[i])
        keep = prim._keep_by_mask[mask] = tuple(i in wanted for i in range(len(nodes)))
    return keep


def _shape_of(d) -> tuple:
    if type(d) is _ndarray:
        return d.shape
    if isinstance(d, (int, float, complex, bool)):
        return ()
    return np.shape(d)


def _forward_tangent(prim, args, datas, params, out) -> None:
    level = MODE.fw_level
    tangent = None
    jvps = prim.jvps
    quiet = backend.errors_off()        # inf/NaN tangents are results, as in the backward
    try:
        for i, a in enumerate(args):
            if isinstance(a, Tensor) and a._fw is not None and a._fw[0] == level \
                    and jvps[i] is not None:
                ti = jvps[i](a._fw[1], *datas, out=out._data, **params)
                tangent = ti if tangent is None else tangent + ti
    finally:
        backend.errors_restore(quiet)
    if tangent is not None and prim.differentiable and out._data.dtype.kind in "fc":
        tangent = np.asarray(tangent)
        if tangent.shape != out._data.shape:
            tangent = np.broadcast_to(tangent, out._data.shape)
        if tangent.dtype != out._data.dtype:
            tangent = tangent.astype(out._data.dtype)
        out._fw = (level, tangent)


def _record_trace(node) -> None:
    import traceback
    node._meta("metadata", dict)["traceback_"] = traceback.format_stack()[:-3]


def check_size(prim: Primitive, datas: list, params: dict) -> None:
    """Refuse an output over the element cap or the memory budget before allocating it,
    and stop past the deadline (see gradtool.engine.limits)."""
    if MODE.deadline:
        check_deadline()
    if prim.out_shape is None and not prim.broadcasts:
        return      # known after the forward: see account()
    shapes = [d.shape if type(d) is _ndarray else np.shape(d) for d in datas]
    try:
        if prim.out_shape is not None:
            shape = prim.out_shape(*shapes, **params)
        else:
            shape = _common_shape(shapes)
    except ValueError:
        return   # the forward raises the real shape error
    size = 1
    for n in shape:
        size *= int(n)
    if MODE.max_elements and size > MODE.max_elements:
        raise LimitError(
            f"{prim.name} would create a tensor of shape {tuple(int(n) for n in shape)} "
            f"({size:,} elements), over the limit of {MODE.max_elements:,} elements",
            hint=ELEMENTS_HINT)
    budget = MODE.budget
    if budget is not None:
        arrays = [d for d in datas if type(d) is _ndarray]
        # an output larger than every input (broadcasting, outer products, repeat, cat) is
        # refused before it exists; one no larger than an input may be a view of it (a
        # reshape, a slice: no new memory), so it is counted once made (account())
        if size > max((d.size for d in arrays), default=0):
            itemsize = max((d.dtype.itemsize for d in arrays), default=8)
            budget.charge(size * itemsize, prim.name)


def _accounted(prim: Primitive, out: Tensor) -> Tensor:
    """``out``, counted against the memory budget when one is active."""
    if MODE.budget is not None:
        account(prim, out._data)
    return out


def account(prim: Primitive, out_data) -> None:
    """Count a new output against the memory budget until it is freed, and refuse to go on
    when the live tensors are over it (outputs not checked before: see check_size)."""
    budget = MODE.budget
    budget.track(out_data)
    budget.over(prim.name)


def _common_shape(shapes: list) -> tuple:
    """The broadcast shape; without numpy's general machinery when every shape is the same
    or a scalar's (``x * 1.0001``, ``a + b`` of equal shapes)."""
    shape = ()
    for other in shapes:
        if other == shape or not other:
            continue
        if shape:
            return np.broadcast_shapes(*shapes)
        shape = other
    return shape


class EngineIndexError(EngineError, IndexError):
    """An index out of range or of the wrong type: an IndexError, as torch raises."""


def op_error(prim: Primitive, exc: Exception, datas: list) -> EngineError:
    """Turn a numpy error inside a forward into an engine error naming the op and shapes."""
    shapes = [tuple(np.shape(d)) for d in datas if isinstance(d, _ndarray)]
    text = str(exc)
    if "broadcast" in text and len(shapes) >= 2:
        a, b = shapes[0], shapes[1]
        for i in range(1, max(len(a), len(b)) + 1):
            da = a[-i] if i <= len(a) else 1
            db = b[-i] if i <= len(b) else 1
            if da != db and da != 1 and db != 1:
                return ShapeError(
                    f"The size of tensor a ({da}) must match the size of tensor b ({db}) at "
                    f"non-singleton dimension {max(len(a), len(b)) - i}")
        return ShapeError(f"{prim.name}: shapes {' and '.join(map(str, map(list, shapes)))} "
                          "cannot be broadcast together")
    if isinstance(exc, IndexError):
        if text.startswith("only integers, slices"):
            text = ("only integers, slices (`:`), ellipsis (`...`), None and long or byte "
                    "Variables are valid indices")
        return EngineIndexError(text.replace(" for axis ", " for dimension "))
    shown = ", ".join(str(list(s)) for s in shapes)
    return ShapeError(f"{prim.name}: {text} (input shapes: {shown})") \
        if isinstance(exc, ValueError) else EngineError(f"{prim.name}: {text}")
