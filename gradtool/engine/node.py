"""Graph nodes: what ``grad_fn`` points at.

A node knows its edges to the nodes of its inputs (``next_functions``), what it saved for
backward, and how to turn output gradients into input gradients (``apply``).  Three kinds:
``OpNode`` (one subclass per primitive, named as torch names it), ``AccumulateGrad`` (the
sink of a leaf) and the nodes of custom ``Function``\\ s (see ``function.py``).
"""

from __future__ import annotations

import weakref

import numpy as np

from ..errors import EngineError
from . import dtypes
from .tensor import RemovableHandle, Tensor, _make, bump_version

SECOND_BACKWARD = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward.")


def type_name(arr) -> str:
    """torch's legacy type name for an array, used in version-counter errors."""
    return dtypes.legacy_type_name(arr)


class Node:
    """Base of every backward node."""

    __slots__ = ("next_nodes", "next_nrs", "_hooks", "_extra", "__weakref__")
    _name = "Node"

    def name(self) -> str:
        return self._name

    @property
    def next_functions(self):
        """((node, output_nr), ...) per input; (None, 0) for inputs outside the graph."""
        nrs = self.next_nrs
        return tuple((n, 0 if n is None or nrs is None else nrs[i])
                     for i, n in enumerate(self.next_nodes))

    @property
    def metadata(self) -> dict:
        return self._meta("metadata", dict)

    def _meta(self, key, factory=None):
        extra = self._extra
        if extra is None:
            if factory is None:
                return None
            extra = self._extra = {}
        value = extra.get(key)
        if value is None and factory is not None:
            value = extra[key] = factory()
        return value

    def __repr__(self) -> str:
        return f"<{self._name} object at {id(self):#x}>"

    # ---- hooks ---------------------------------------------------------------------------
    def register_hook(self, fn):
        """``fn(grad_inputs, grad_outputs)`` after the node ran; may return new grad_inputs."""
        return RemovableHandle.add(self._meta("post_hooks", dict), fn)

    def register_prehook(self, fn):
        """``fn(grad_outputs)`` before the node runs; may return new grad_outputs."""
        return RemovableHandle.add(self._meta("pre_hooks", dict), fn)

    def _add_tensor_pre_hook(self, nr: int, fn):
        per_output = self._meta("tensor_pre_hooks", dict)
        return RemovableHandle.add(per_output.setdefault(nr, {}), fn)

    def _retain(self, nr: int, tensor: Tensor) -> None:
        self._meta("retain", dict)[nr] = weakref.ref(tensor)

    # ---- to be provided by subclasses ---------------------------------------------------
    n_outputs = 1

    def apply(self, grads: list, create_graph: bool, batched: bool):
        raise NotImplementedError

    def release(self) -> None:
        """Free what was saved for backward (after a backward without retain_graph)."""

    def _saved_repr(self) -> dict:
        """Saved tensors, name -> array or Tensor (for ``gradtool graph --saved``)."""
        return {}


class AccumulateGrad(Node):
    """Sink of a leaf: adds incoming gradients into ``variable.grad``."""

    __slots__ = ("variable",)
    _name = "AccumulateGrad"

    def __init__(self, variable: Tensor) -> None:
        self.variable = variable
        self.next_nodes = ()
        self.next_nrs = None
        self._hooks = None
        self._extra = None

    def accumulate(self, grad, create_graph: bool) -> None:
        var = self.variable
        if not create_graph:
            self._accumulate_data(grad._data if isinstance(grad, Tensor) else grad)
            return
        if not isinstance(grad, Tensor):
            grad = _make(grad)
        if grad._data.shape != var._data.shape:
            grad = grad.expand(var.shape)
        if grad._data.dtype != var._data.dtype:
            grad = grad.to(var._data.dtype)
        old = var._grad
        var._grad = grad if old is None else old + grad

    def _accumulate_data(self, data) -> None:
        """``accumulate`` of an array with grad mode off (every plain ``backward()``)."""
        var = self.variable
        target = var._data
        if data.shape != target.shape:
            data = np.broadcast_to(data, target.shape)
        if data.dtype != target.dtype:
            data = data.astype(target.dtype)
        old = var._grad
        if old is None:
            var._grad = _make(np.array(data, copy=True))
        else:
            # in place, as torch does with grad mode off (even into a grad that has a graph,
            # from an earlier backward(create_graph=True): x.grad stays the same object)
            if old._data.flags.writeable:
                old._data += data
            else:
                old._data = old._data + data
            bump_version(old)


class CopySlices(Node):
    """torch's CopySlices: an in-place op ``fn`` on a view, recorded on the view's base.

    Its edges are the base's old node, then ``fn``'s edges but the first (the view's old
    value).  Backward: the base's gradient passes through except at the view's elements
    (flat ``positions`` in the base), where ``fn``'s gradient for the old view goes."""

    __slots__ = ("fn", "positions", "overlap", "inputs")
    _name = "CopySlices"

    def __init__(self, base_node, base_nr: int, fn: Node, positions, overlap: bool) -> None:
        self.fn = fn
        self.positions = positions
        # an expanded view (elements sharing memory): torch's backward refuses to write it
        self.overlap = overlap
        # fn's inputs after the view that have an edge in torch (an index or mask argument
        # of a primitive has none: its ``edge_inputs``, when it declares them)
        keep = getattr(getattr(fn, "prim", None), "edge_inputs", None)
        self.inputs = tuple(i for i in range(1, len(fn.next_nodes)) if keep is None or i in keep)
        self.next_nodes = (base_node,) + tuple(fn.next_nodes[i] for i in self.inputs)
        fn_nrs = fn.next_nrs
        nrs = (base_nr,) + tuple(0 if fn_nrs is None else fn_nrs[i] for i in self.inputs)
        self.next_nrs = nrs if any(nrs) else None
        self._hooks = None
        self._extra = None

    def apply(self, grads: list, create_graph: bool, batched: bool):
        g = grads[0]
        if g is None:
            return (None,) * len(self.next_nodes)
        if self.overlap:
            raise EngineError("unsupported operation: more than one element of the written-to "
                              "tensor refers to a single memory location. Please clone() the "
                              "tensor before performing the operation.")
        positions = self.positions
        shape = tuple(g.shape)
        prefix = shape[:1] if batched else ()
        if create_graph:
            from .ops.indexing import index_const
            from .prims import shape as shape_prims
            if not isinstance(g, Tensor):
                g = _make(g)
            flat = g.reshape(prefix + (-1,))
            res = self.fn.apply([index_const(flat, (Ellipsis, positions))], True, batched)
            inner = res[0]
            if inner is None:
                inner = _make(np.zeros(prefix + np.shape(positions), dtype=g._data.dtype))
            out = shape_prims.index_put(flat, inner, key=(Ellipsis, positions)).reshape(shape)
        else:
            data = g._data if isinstance(g, Tensor) else g
            flat = np.array(data, copy=True).reshape(prefix + (-1,))
            res = self.fn.apply([np.asarray(flat[..., positions])], False, batched)
            inner = res[0]
            flat[..., positions] = 0 if inner is None else \
                (inner._data if isinstance(inner, Tensor) else inner)
            out = flat.reshape(shape)
        return [out] + [res[i] for i in self.inputs]

    def release(self) -> None:
        self.fn.release()

    def _saved_repr(self) -> dict:
        return self.fn._saved_repr()


def unbroadcast(grad, shape: tuple, batched: bool):
    """Sum ``grad`` down to ``shape`` (undoing broadcasting); keeps a leading batch axis."""
    gshape = grad.shape
    lead = len(gshape) - len(shape) - (1 if batched else 0)
    if lead == 0 and gshape[1 if batched else 0:] == shape:
        return grad
    start = 1 if batched else 0
    axes = list(range(start, start + lead))
    for i, n in enumerate(shape):
        if n == 1 and gshape[start + lead + i] != 1:
            axes.append(start + lead + i)
    if isinstance(grad, Tensor):
        out = grad.sum(dim=tuple(axes), keepdim=True) if axes else grad
        target = ((gshape[0],) if batched else ()) + tuple(shape)
        return out.reshape(target)
    out = grad.sum(axis=tuple(axes), keepdims=True) if axes else grad
    return out.reshape(((gshape[0],) if batched else ()) + tuple(shape))


class OpNode(Node):
    """Backward node of a primitive; one subclass per primitive carries torch's node name.

    Saved inputs are kept as raw data plus version counters (like torch's SavedVariable),
    not as Tensor objects: under ``create_graph`` a saved input is re-attached to the graph
    through the edge that already points at its producer."""

    __slots__ = ("prim", "params", "saved", "vcs", "versions", "out_data", "out_vc",
                 "out_version", "meta", "released", "_edge0", "_edge1", "_edges", "_arity")

    # Edges of unary and binary nodes live in two slots instead of a tuple: one object per
    # op for Python's cyclic GC to walk, not two (its full collections dominate the cost of
    # building long graphs).
    @property
    def next_nodes(self) -> tuple:
        arity = self._arity
        if arity == 2:
            return (self._edge0, self._edge1)
        if arity == 1:
            return (self._edge0,)
        return self._edges

    @property
    def next_functions(self):
        """torch's edges: one per differentiable input (an index or mask argument of the
        primitive has none; an input that does not require grad is (None, 0))."""
        edges = Node.next_functions.fget(self)
        keep = self.prim.edge_inputs
        return edges if keep is None else tuple([edges[i] for i in keep])

    def _set_edges(self, nodes: list) -> None:
        arity = self._arity = len(nodes)
        if arity <= 2:
            self._edge0 = nodes[0] if arity else None
            self._edge1 = nodes[1] if arity == 2 else None
            self._edges = None
        else:
            self._edge0 = self._edge1 = None
            self._edges = tuple(nodes)

    def _check_versions(self) -> None:
        vcs = self.vcs
        stale = []
        if vcs is not None:
            for i, vc in enumerate(vcs):
                if vc is not None and vc[0] != self.versions[i]:
                    stale.append(i)
        if self.out_vc is not None and self.out_vc[0] != self.out_version:
            stale.append(-1)
        if stale:
            self._raise_version_error(stale)

    def _raise_version_error(self, stale: list) -> None:
        # torch checks saved values in the order of their names ("other" before "self",
        # "result" before "self"): the first stale one in that order is reported
        names = self.prim.input_names

        def name(i):
            if i == -1:
                return "result"
            return names[i] if i < len(names) else f"input{i}"
        i = min(stale, key=name)
        if i == -1:
            _version_error(self.out_data, self, 0, self.out_vc[0], self.out_version)
        node = self.next_nodes[i]
        producer = None if node is None or type(node) is AccumulateGrad else node
        nr = 0 if self.next_nrs is None else self.next_nrs[i]
        _version_error(self.saved[i], producer, nr, self.vcs[i][0], self.versions[i],
                       saved_input=True)

    def _saved_input(self, i: int):
        """Saved input ``i`` as a Tensor attached to the graph (for create_graph)."""
        data = self.saved[i]
        node = self.next_nodes[i]
        if node is None:
            return data
        if type(node) is AccumulateGrad:
            return node.variable
        t = _make(data, node, True)
        if self.next_nrs is not None:
            t._nr = self.next_nrs[i]
        return t

    def apply(self, grads: list, create_graph: bool, batched: bool):
        if self.released:
            raise EngineError(SECOND_BACKWARD)
        g = grads[0]
        nodes = self.next_nodes
        if g is None:
            return (None,) * len(nodes)
        if self.vcs is not None or self.out_vc is not None:
            self._check_versions()
        prim = self.prim
        saved = self.saved
        if create_graph:
            if not isinstance(g, Tensor):
                g = _make(g)
            if saved is None:
                inputs = (None,) * len(nodes)
            elif self.vcs is None:
                inputs = saved
            else:
                inputs = tuple([self._saved_input(i) for i in range(len(saved))])
            out = None
            if self.out_data is not None:
                out = _make(self.out_data, self, True)   # re-attach out to this node
        else:
            if isinstance(g, Tensor):
                g = g._data
            inputs = saved if saved is not None else (None,) * len(nodes)
            out = self.out_data
        params = self.params
        vjps = prim.vjps
        meta = self.meta if prim.broadcasts else None
        result = []
        for i, node in enumerate(nodes):
            if node is None:
                result.append(None)
                continue
            if params:
                gi = vjps[i](g, *inputs, out=out, **params)
            else:
                gi = vjps[i](g, *inputs, out=out)
            if meta is not None and meta[i] is not None:
                gi = unbroadcast(gi, meta[i], batched)
            result.append(gi)
        return result

    def release(self) -> None:
        # Shape-only records stay (torch keeps sizes too: a second backward through
        # SumBackward0 works); saved tensors are freed and the node refuses to run again.
        # A saved python number counts (torch wraps it: x * 2 saves 2 in MulBackward0).
        if self.vcs is None and self.out_data is None:
            saved = self.saved
            if saved is None or self.prim.save == "shapes":
                return
            for value in saved:
                if value is not None:
                    break
            else:
                return
        self.released = True
        self.saved = None
        self.out_data = None

    def _saved_value(self, name: str):
        """torch's node attributes for what was saved (``y.grad_fn._saved_self``,
        ``._saved_result``); properties of each primitive's node class call this (not a
        ``__getattr__``: that would slow every attribute read of every node)."""
        if self.released:
            raise EngineError(SECOND_BACKWARD)
        shown = self._saved_repr()
        if name == "_saved_result" and self.out_data is not None:
            return _make(self.out_data, self, True)   # the output, on this node
        names = self.prim.input_names
        if name in shown and name[7:] in names and self.saved is not None:
            value = self._saved_input(names.index(name[7:]))   # the input, attached
            return _make(value) if isinstance(value, np.ndarray) else value
        if name in shown:
            value = shown[name]
            return _make(value) if isinstance(value, np.ndarray) else value
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def _saved_repr(self) -> dict:
        names = self.prim.input_names
        shown = {}
        if self.saved is not None:
            for i, data in enumerate(self.saved):
                if self.vcs is not None and self.vcs[i] is not None:
                    shown["_saved_" + (names[i] if i < len(names) else f"input{i}")] = data
        if self.out_data is not None:
            shown["_saved_result"] = self.out_data
        for k, v in self.params.items():
            shown["_saved_" + k] = v
        return shown


# torch's backward nodes of view ops: a saved view whose version changed has been given a
# new node by torch (AsStridedBackward0) by the time the error is raised
_VIEW_NODES = frozenset({
    "AliasBackward0", "AsStridedBackward0", "DiagonalBackward0", "ExpandBackward0",
    "NarrowBackward0", "PermuteBackward0", "ReshapeAliasBackward0", "SelectBackward0",
    "SliceBackward0", "SqueezeBackward0", "SqueezeBackward1", "SqueezeBackward2",
    "TBackward0", "TransposeBackward0", "UnsqueezeBackward0", "ViewBackward0",
})
_MULTI_VIEW_NODES = frozenset({"SplitBackward0", "SplitWithSizesBackward0",
                               "UnbindBackward0"})


def node_label(node) -> str:
    """A node as torch's version error names it: ExpBackward0 -> Exp, FillBackward2 ->
    Fill2, CopySlices -> torch::autograd::CopySlices."""
    name = node.name()
    if name in ("CopySlices", "CopyBackwards"):
        return "torch::autograd::" + name
    stem, sep, number = name.rpartition("Backward")
    if sep and number.isdigit():
        return stem + ("" if number == "0" else number)
    return name


def _current(node, nr):
    """The node a tensor made by output ``nr`` of ``node`` has now: in-place ops rebase a
    tensor and leave a link on its old node (ops/inplace.py)."""
    seen = 0
    while node is not None and node._extra is not None and seen < 10_000:
        following = node._extra.get("rebased", {}).get(nr)
        if following is None:
            break
        node, nr = following, 0
        seen += 1
    return node, nr


def _version_error(arr, node, nr, now, expected, *, saved_input: bool = False):
    """torch's error for a saved value modified in place.  For a saved input torch names the
    node the tensor has now (after in-place ops on it, or AsStridedBackward0 for a view);
    for a saved output, the node that saved it."""
    if node is not None and saved_input:
        node, nr = _current(node, nr)
        name = node.name()
        if name in _MULTI_VIEW_NODES:
            raise EngineError(
                f"Output {nr} of {node_label(node)} is a view and its base or another view of "
                "its base has been modified inplace. This view is the output of a function "
                "that returns multiple views. Such functions do not allow the output views to "
                "be modified inplace. You should replace the inplace operation by an "
                "out-of-place one.")
        if name in _VIEW_NODES:
            label, nr = "AsStrided", 0
        else:
            label = node_label(node)
    elif node is not None:
        label = node_label(node)
    what = f"[torch.{type_name(arr)} {list(arr.shape)}]"
    where = f", which is output {nr} of {label}," if node is not None else ""
    raise EngineError(
        "one of the variables needed for gradient computation has been modified by an "
        f"inplace operation: {what}{where} is at version {now}; expected version {expected} "
        "instead. Hint: enable anomaly detection to find the operation that failed to "
        "compute its gradient, with torch.autograd.set_detect_anomaly(True, "
        "check_nan=False).")


def grad_accumulator(t: Tensor) -> AccumulateGrad:
    """The AccumulateGrad node of a leaf that requires grad, shared by all its uses (the
    leaf holds it weakly, the graph strongly, as in torch)."""
    ref = t._acc
    acc = ref() if ref is not None else None
    if acc is None:
        if t._extra is not None and t._extra.get("no_grad_view"):
            return None      # a view made under no_grad: requires grad, its gradient is dropped
        acc = AccumulateGrad(t)
        t._acc = weakref.ref(acc)
    return acc



def saved_properties(input_names) -> dict:
    """``_saved_<input>`` and ``_saved_result`` properties for a primitive's node class."""
    names = ["_saved_" + n for n in input_names] + ["_saved_result"]
    return {name: property(lambda self, name=name: self._saved_value(name)) for name in names
            if not hasattr(OpNode, name)}   # _saved_input is OpNode's own method
