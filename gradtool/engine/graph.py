"""The backward pass: iterative, dependency-counted, no recursion over graph depth.

1. Walk the graph from the roots with an explicit stack, counting for every node how many
   edges point at it (its dependencies).
2. Run nodes whose gradients are complete (dependency count reached zero), newest first,
   summing gradients arriving at the same (node, output) pair.

Gradients are numpy arrays in a plain backward and Tensors under ``create_graph=True``
(then the rules run with grad mode on, so the backward itself is recorded).
"""

from __future__ import annotations

import numpy as np

from ..errors import EngineError
from .backend import errors_off, errors_restore
from .grad_mode import MODE
from .node import AccumulateGrad, Node, grad_accumulator, type_name
from .tensor import Tensor, _make


def _root_edge(t: Tensor):
    if t.grad_fn is not None:
        return (t.grad_fn, t._nr)
    if t._rg:
        acc = grad_accumulator(t)       # None for a view made under no_grad (torch: no edge)
        return None if acc is None else (acc, 0)
    return None


def _make_root_grads(tensors, grad_tensors, create_graph, batched):
    grads = []
    for i, t in enumerate(tensors):
        g = None if grad_tensors is None else grad_tensors[i]
        if g is None:
            if t._rg and t._data.size != 1:
                raise EngineError("grad can be implicitly created only for scalar outputs")
            if batched:
                raise EngineError("is_grads_batched=True needs explicit grad_outputs")
            g = np.ones(t._data.shape, t._data.dtype)
        elif isinstance(g, Tensor):
            expected = t._data.shape
            got = g._data.shape[1:] if batched else g._data.shape
            if got != expected:
                raise EngineError(
                    f"Mismatch in shape: grad_output[{i}] has a shape of {_size(got)} and "
                    f"output[{i}] has a shape of {_size(expected)}.")
            g = g if create_graph else g._data
        else:
            g = np.asarray(g, dtype=t._data.dtype)
            got = g.shape[1:] if batched else g.shape
            if got != t._data.shape:
                raise EngineError(
                    f"Mismatch in shape: grad_output[{i}] has a shape of {_size(got)} and "
                    f"output[{i}] has a shape of {_size(t._data.shape)}.")
        if create_graph and not isinstance(g, Tensor):
            g = _make(g)
        grads.append(g)
    return grads


def _check_grad_types(grads) -> None:
    for g in grads:   # arrays: internal callers (the checker)
        if g is not None and not isinstance(g, (Tensor, np.ndarray)):
            raise TypeError(f"gradients can be either Tensors or None, but got "
                            f"{type(g).__name__}")


def _size(shape) -> str:
    return f"torch.Size({list(shape)})"


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False,
             inputs=None) -> None:
    """``torch.autograd.backward``: accumulate gradients of ``tensors`` into leaves."""
    if grad_tensors is None and inputs is None and not create_graph \
            and type(tensors) is tuple and len(tensors) == 1:
        # the common call, loss.backward(): one scalar root, its gradient 1 (the checks and
        # the general path's lists cost as much as running a small graph)
        t = tensors[0]
        if isinstance(t, Tensor) and t._rg and t._data.size == 1:
            data = t._data
            fn = t.grad_fn
            one = np.empty(data.shape, data.dtype)
            one.fill(1)
            run([(fn, t._nr) if fn is not None else (grad_accumulator(t), 0)], [one],
                bool(retain_graph), False)
            return
    if isinstance(tensors, Tensor):
        tensors = (tensors,)
    tensors = tuple(tensors)
    if grad_tensors is not None:
        # torch: a Tensor is one gradient, anything else is iterated (a float is refused
        # with "'float' object is not iterable", a list of floats element by element)
        if isinstance(grad_tensors, (Tensor, np.ndarray)):
            grad_tensors = (grad_tensors,)
        grad_tensors = tuple(grad_tensors)
        _check_grad_types(grad_tensors)
        if len(grad_tensors) != len(tensors):
            raise EngineError(f"got {len(grad_tensors)} gradients for {len(tensors)} "
                              "tensors")
    if retain_graph is None:
        retain_graph = create_graph
    # torch makes (and checks) the root gradients before it looks at the graph
    grads = _make_root_grads(tensors, grad_tensors, create_graph, False)
    for i, t in enumerate(tensors):
        if _root_edge(t) is None:
            raise EngineError(f"element {i} of tensors does not require grad and does not "
                              "have a grad_fn")
    roots = [_root_edge(t) for t in tensors]
    targets = None
    if inputs is not None:
        if isinstance(inputs, Tensor):
            inputs = (inputs,)
        inputs = tuple(inputs)
        if not inputs:
            raise EngineError("`inputs` argument to `backward()` cannot be empty.")
        targets = {}
        for t in inputs:
            edge = _root_edge(t)
            if edge is None:
                raise EngineError("One of the differentiated Tensors does not require grad")
            targets[edge] = t
    run(roots, grads, retain_graph, create_graph, accumulate_into=targets)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """``torch.autograd.grad``: gradients of ``outputs`` w.r.t. ``inputs``, returned, not
    accumulated.  ``is_grads_batched`` treats the first axis of ``grad_outputs`` as a batch
    of cotangents (one backward pass computes all of them)."""
    if isinstance(outputs, Tensor):
        outputs = (outputs,)
    outputs = tuple(outputs)
    single = isinstance(inputs, Tensor)
    inputs = (inputs,) if single else tuple(inputs)
    if grad_outputs is not None:
        if isinstance(grad_outputs, Tensor):
            grad_outputs = (grad_outputs,)
        grad_outputs = tuple(grad_outputs)
        _check_grad_types(grad_outputs)
        if len(grad_outputs) != len(outputs):
            raise EngineError(f"grad requires one grad_output per output: got "
                              f"{len(grad_outputs)} for {len(outputs)}")
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when "
                         "materialize_grads=True, but got: allow_unused=False.")
    if allow_unused is None:
        allow_unused = materialize_grads
    if retain_graph is None:
        retain_graph = create_graph
    grads = _make_root_grads(outputs, grad_outputs, create_graph, is_grads_batched)
    for i, t in enumerate(outputs):
        if _root_edge(t) is None:
            raise EngineError(f"element {i} of tensors does not require grad and does not "
                              "have a grad_fn")
    targets = {}
    for t in inputs:
        if not isinstance(t, Tensor):
            raise EngineError("all inputs have to be Tensors or GradientEdges, but got "
                              f"{type(t).__name__}")
        edge = _root_edge(t)
        if edge is None:
            raise EngineError("One of the differentiated Tensors does not require grad")
        targets.setdefault(edge, t)
    roots = [_root_edge(t) for t in outputs]
    captured = run(roots, grads, retain_graph, create_graph, capture=targets,
                   batched=is_grads_batched)
    result = []
    for index, t in enumerate(inputs):
        g = captured.get(_root_edge(t))
        if g is None:
            if materialize_grads:
                shape = ((grads[0].shape[0],) if is_grads_batched else ()) + t._data.shape
                result.append(_make(np.zeros(shape, t._data.dtype)))
                continue
            if not allow_unused:
                raise EngineError(f"The differentiated Tensor at index {index} appears to not "
                                  "have been used in the graph. Set allow_unused=True if this "
                                  "is the desired behavior.")
            result.append(None)
            continue
        if not isinstance(g, Tensor):
            # (numpy's arithmetic on 0-d arrays gives scalars: a Tensor holds an array)
            owned = type(g) is np.ndarray and g.flags.owndata
            g = _make(g if owned else np.array(g, copy=True))
        if g._data.dtype != t._data.dtype:
            # a gradient has its input's dtype (torch's validate_outputs: float32 inputs of
            # an op with a float64 operand get float32 gradients)
            g = g.to(t.dtype) if create_graph else _make(g._data.astype(t._data.dtype))
        result.append(g)
    return tuple(result)


def _discover(roots, targets):
    """Dependency counts of every node reachable from ``roots`` (explicit stack), and, when
    ``targets`` are given, the set of nodes on a path to one of them (the rest need not run).
    """
    deps: dict = {}
    seen = set()
    stack = []
    for edge in roots:
        if edge is not None and edge[0] not in seen:
            seen.add(edge[0])
            stack.append(edge[0])
    parents: dict | None = {} if targets is not None else None
    while stack:
        node = stack.pop()
        for nxt in node.next_nodes:
            if nxt is None:
                continue
            deps[nxt] = deps.get(nxt, 0) + 1
            if parents is not None:
                parents.setdefault(nxt, []).append(node)
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    if targets is None:
        return deps, None
    needed = set()
    stack = [edge[0] for edge in targets if edge[0] in seen]
    while stack:
        node = stack.pop()
        if node in needed:
            continue
        needed.add(node)
        stack.extend(parents.get(node, ()))
    return deps, needed


def plan(outputs, inputs) -> tuple:
    """(roots, targets, discovery) of ``autograd.grad(outputs, inputs)``, for a caller that
    runs the same backward many times (the checker): the graph reachable from a node never
    changes (edges are set when a node is made), so the walk is done once."""
    roots = [_root_edge(t) for t in outputs]
    targets = {}
    for t in inputs:
        edge = _root_edge(t)
        if edge is None:
            raise EngineError("One of the differentiated Tensors does not require grad")
        targets.setdefault(edge, t)
    return roots, targets, _discover(roots, targets)


def run(roots, root_grads, retain_graph, create_graph, capture=None, batched=False,
        accumulate_into=None, discovered=None):
    """Execute the backward pass.  ``capture`` maps (node, output_nr) edges whose gradient
    is returned instead of accumulated (``autograd.grad``); ``discovered``: the discovery
    of these roots and targets from :func:`plan`."""
    if capture is None and accumulate_into is None and not create_graph and not batched:
        _run_plain(roots, root_grads, retain_graph)
        return {}
    if discovered is None:
        deps, needed = _discover(roots, capture if capture is not None else accumulate_into)
    else:
        deps, needed = dict(discovered[0]), discovered[1]      # run counts deps down
    buffers: dict = {}
    for edge, g in zip(roots, root_grads):
        if edge is None:
            continue
        node, nr = edge
        buf = buffers.get(node)
        if buf is None:
            buf = buffers[node] = [None] * node.n_outputs
        buf[nr] = g if buf[nr] is None else buf[nr] + g
    ready = [node for node in buffers if deps.get(node, 0) == 0]
    captured = {}
    # the nodes with a captured output: one set lookup per node, (node, nr) keys only there
    capture_nodes = None if capture is None else {edge[0] for edge in capture}
    prev_mode = MODE.grad_enabled
    MODE.grad_enabled = create_graph
    anomaly = MODE.anomaly
    # NaN/Inf in gradients are results, not warnings (torch is silent; anomaly mode and the
    # checker's diagnosis report them)
    errstate = errors_off()
    pop_ready, push_ready, pop_buffer = ready.pop, ready.append, buffers.pop
    try:
        while ready:
            node = pop_ready()
            grads = pop_buffer(node, None)
            in_grads = None
            if grads is not None and (needed is None or node in needed):
                leaf = type(node) is AccumulateGrad
                if node._extra is not None or (leaf and node.variable._extra is not None):
                    grads = _pre_hooks(node, grads, create_graph)
                if capture_nodes is not None and node in capture_nodes:
                    for nr, g in enumerate(grads):
                        if g is not None and (node, nr) in capture:
                            captured[(node, nr)] = g
                if leaf:
                    if capture is None and (accumulate_into is None
                                            or (node, 0) in accumulate_into) \
                            and grads[0] is not None:
                        node.accumulate(grads[0], create_graph)
                        if node.variable._extra is not None:
                            _post_accumulate_hooks(node.variable)
                    continue
                if accumulate_into is not None:
                    _accumulate_non_leaves(node, grads, accumulate_into, create_graph)
                in_grads = node.apply(grads, create_graph, batched)
                if anomaly:
                    _anomaly_check(node, in_grads)
                if node._extra is not None:
                    in_grads = _post_hooks(node, in_grads, grads, create_graph)
                if not retain_graph:
                    node.release()
            nrs = node.next_nrs
            for i, nxt in enumerate(node.next_nodes):
                if nxt is None:
                    continue
                if in_grads is not None:
                    g = in_grads[i]
                    if g is not None:
                        nr = 0 if nrs is None else nrs[i]
                        buf = buffers.get(nxt)
                        if buf is None:
                            buf = buffers[nxt] = [None] * nxt.n_outputs
                        old = buf[nr]
                        buf[nr] = g if old is None else old + g
                count = deps[nxt] - 1
                deps[nxt] = count
                if count == 0:
                    push_ready(nxt)
    finally:
        MODE.grad_enabled = prev_mode
        errors_restore(errstate)
    return captured


def _run_plain(roots, root_grads, retain_graph) -> None:
    """``run`` for a plain ``backward()`` (gradients into the leaves' ``.grad``, no
    ``inputs=``, no ``create_graph``, no batch): the same steps, with the discovery inlined
    and none of the per-node tests the other cases need (every ``backward()`` pays them)."""
    deps: dict = {}
    seen = set()
    stack = []
    buffers: dict = {}
    for edge, g in zip(roots, root_grads):
        if edge is None:
            continue
        node, nr = edge
        if node not in seen:
            seen.add(node)
            stack.append(node)
        buf = buffers.get(node)
        if buf is None:
            buf = buffers[node] = [None] * node.n_outputs
        buf[nr] = g if buf[nr] is None else buf[nr] + g
    get = deps.get
    while stack:
        for nxt in stack.pop().next_nodes:
            if nxt is not None:
                deps[nxt] = get(nxt, 0) + 1
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
    ready = [node for node in buffers if get(node, 0) == 0]
    prev_mode = MODE.grad_enabled
    MODE.grad_enabled = False
    anomaly = MODE.anomaly
    errstate = errors_off()       # NaN/Inf in gradients are results (see run)
    pop_ready, push_ready, pop_buffer = ready.pop, ready.append, buffers.pop
    try:
        while ready:
            node = pop_ready()
            grads = pop_buffer(node, None)
            if grads is None:
                in_grads = None
            elif type(node) is AccumulateGrad:
                # a leaf's _extra holds its views too: only its hooks matter here
                variable = node.variable
                if node._extra is not None or variable._get("hooks"):
                    grads = _pre_hooks(node, grads, False)
                if grads[0] is not None:
                    node.accumulate(grads[0], False)
                    if variable._get("post_accumulate_hooks"):
                        _post_accumulate_hooks(variable)
                continue
            else:
                if node._extra is not None:
                    grads = _pre_hooks(node, grads, False)
                in_grads = node.apply(grads, False, False)
                if anomaly:
                    _anomaly_check(node, in_grads)
                if node._extra is not None:
                    in_grads = _post_hooks(node, in_grads, grads, False)
                if not retain_graph:
                    node.release()
            nrs = node.next_nrs
            for i, nxt in enumerate(node.next_nodes):
                if nxt is None:
                    continue
                if in_grads is not None:
                    g = in_grads[i]
                    if g is not None:
                        nr = 0 if nrs is None else nrs[i]
                        buf = buffers.get(nxt)
                        if buf is None:
                            buf = buffers[nxt] = [None] * nxt.n_outputs
                        old = buf[nr]
                        buf[nr] = g if old is None else old + g
                count = deps[nxt] - 1
                deps[nxt] = count
                if count == 0:
                    push_ready(nxt)
    finally:
        MODE.grad_enabled = prev_mode
        errors_restore(errstate)


def _accumulate_non_leaves(node: Node, grads, targets: dict, create_graph: bool) -> None:
    """``backward(inputs=[y])`` with a non-leaf ``y``: its gradient goes into ``y.grad``."""
    for nr, g in enumerate(grads):
        t = targets.get((node, nr))
        if t is not None and g is not None:
            _add_grad(t, g, create_graph)


def _add_grad(t: Tensor, g, create_graph: bool) -> None:
    value = g if create_graph and isinstance(g, Tensor) else _make(
        np.array(g._data if isinstance(g, Tensor) else g, copy=True))
    t._grad = value if t._grad is None else t._grad + value


def _post_accumulate_hooks(variable: Tensor) -> None:
    hooks = variable._get("post_accumulate_hooks")
    if hooks:
        for hook in list(hooks.values()):
            hook(variable)


def _as_tensor(g, create_graph):
    return g if isinstance(g, Tensor) else _make(g)


def _from_tensor(value, create_graph):
    if value is None:
        return None
    if create_graph:
        return value if isinstance(value, Tensor) else _make(np.asarray(value))
    return value._data if isinstance(value, Tensor) else np.asarray(value)


def _tensor_hook_result(hook, res, old, create_graph: bool):
    """A tensor hook's replacement gradient, checked as torch checks it."""
    if not isinstance(res, Tensor):
        raise TypeError(f"expected Variable, but hook returned '{type(res).__name__}'")
    name = getattr(hook, "__name__", type(hook).__name__)
    old_arr = old._data if isinstance(old, Tensor) else old
    if res._data.shape != old_arr.shape:
        raise EngineError(f"hook '{name}' has changed the size of value")
    if res._data.dtype != old_arr.dtype:
        raise EngineError(f"hook '{name}' has changed the type of value (was "
                          f"torch.{type_name(old_arr)} got torch.{type_name(res._data)})")
    return _from_tensor(res, create_graph)


def _pre_hooks(node: Node, grads: list, create_graph: bool) -> list:
    extra = node._extra or {}
    tensor_hooks = extra.get("tensor_pre_hooks")
    if tensor_hooks:
        grads = list(grads)
        for nr, hooks in tensor_hooks.items():
            for hook in list(hooks.values()):
                if grads[nr] is None:
                    continue
                res = hook(_as_tensor(grads[nr], create_graph))
                if res is not None:
                    grads[nr] = _tensor_hook_result(hook, res, grads[nr], create_graph)
    pre = extra.get("pre_hooks")
    if pre:
        for hook in list(pre.values()):
            res = hook(tuple(None if g is None else _as_tensor(g, create_graph)
                             for g in grads))
            if res is not None:
                grads = [_from_tensor(r, create_graph) for r in res]
    retain = extra.get("retain")
    if retain:
        for nr, ref in retain.items():
            t = ref()
            if t is not None and grads[nr] is not None:
                _add_grad(t, grads[nr], create_graph)
    if type(node) is AccumulateGrad:
        hooks = node.variable._leaf_hooks()
        if hooks:
            grads = list(grads)
            for hook in hooks:
                res = hook(_as_tensor(grads[0], create_graph))
                if res is not None:
                    grads[0] = _tensor_hook_result(hook, res, grads[0], create_graph)
    return grads


def _post_hooks(node: Node, in_grads, out_grads, create_graph: bool):
    post = node._extra.get("post_hooks")
    if not post:
        return in_grads
    # hooks see one gradient per edge of next_functions (none for an index or mask input)
    keep = getattr(getattr(node, "prim", None), "edge_inputs", None)
    for hook in list(post.values()):
        shown = in_grads if keep is None else [in_grads[i] for i in keep]
        res = hook(tuple(None if g is None else _as_tensor(g, create_graph) for g in shown),
                   tuple(None if g is None else _as_tensor(g, create_graph)
                         for g in out_grads))
        if res is not None:
            res = [_from_tensor(r, create_graph) for r in res]
            if keep is not None:
                full = [None] * len(in_grads)
                for i, r in zip(keep, res):
                    full[i] = r
                res = full
            in_grads = res
    return in_grads


def _anomaly_check(node: Node, in_grads) -> None:
    if not MODE.anomaly_check_nan:
        return
    for i, g in enumerate(in_grads):
        if g is None:
            continue
        arr = g._data if isinstance(g, Tensor) else np.asarray(g)
        if arr.dtype.kind in "fc" and np.isnan(arr).any():
            trace = node._meta("metadata", dict).get("traceback_")
            if trace:
                import warnings
                warnings.warn("Error detected in " + node.name() + ". Traceback of forward "
                              "call that caused the error:\n" + "".join(trace),
                              RuntimeWarning, stacklevel=2)
            raise EngineError(f"Function '{node.name()}' returned nan values in its {i}th "
                              "output.")
