"""A bounded, deterministic view of a backward graph: what every graph renderer draws.

``build_view`` walks the graph from the outputs' ``grad_fn`` down to the ``AccumulateGrad``
leaves (explicit stacks, never recursion: 1,000,000-node graphs are routine) and produces

* ``GraphStats``: totals over the *whole* graph (nodes, edges, node counts by type, depth);
* a list of ``ViewNode`` (what is drawn) and a tree layout (``TreeLine``) in depth-first
  order, following ``next_functions`` order, so output is stable enough for golden files.

Readability rules, all off with ``full=True``:

* a node reached a second time (a shared subgraph) is drawn once and referenced after;
* a chain of same-named nodes (``a = a * 2`` a million times) collapses into one
  ``MulBackward0 × 999,998`` line between its first and last node;
* the tree stops at ``max_depth`` and after ``max_lines`` lines, saying what it left out.

Always on: the tree's indentation stops at ``MAX_INDENT`` levels.  Deeper lines are drawn at
that column with their depth written out (``[depth 1,234] MulBackward0``), so a deep chain
prints flat and every line costs O(1), whatever the depth (a million-node chain with
``--full`` is a million short lines, not a million lines of growing indentation).
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ..engine.function import FunctionCtx
from ..engine.node import AccumulateGrad
from ..engine.tensor import Tensor

DEFAULT_MAX_DEPTH = 24
DEFAULT_MAX_LINES = 80
MIN_RUN = 3   # shorter chains of same-named nodes are drawn node by node
MAX_INDENT = 8    # tree levels drawn as indentation; deeper lines are flat, depth written out

_NAME_CACHE: dict = {}


def node_name(node) -> str:
    """``node.name()``, cached per class (custom Function nodes share one class)."""
    cls = type(node)
    name = _NAME_CACHE.get(cls)
    if name is None:
        name = node.name()
        if cls is not FunctionCtx:      # one class per custom Function: cacheable
            _NAME_CACHE[cls] = name
    return name


@dataclass
class GraphStats:
    """Totals over every node reachable from the outputs."""

    nodes: int
    edges: int
    depth: int
    by_type: dict[str, int]
    leaves: int


@dataclass
class Variable:
    """What an ``AccumulateGrad`` accumulates into."""

    name: str | None
    shape: tuple
    dtype: str


@dataclass(slots=True)
class ViewNode:
    """One drawn box: a graph node, or a collapsed run of ``count`` same-named nodes."""

    key: str
    name: str
    kind: str = "node"                 # "node" | "run"
    count: int = 1
    node: object = None                # the engine node (first of a run)
    variable: Variable | None = None   # for AccumulateGrad
    shared: bool = False               # more than one edge points at it
    truncated: bool = False            # inputs not drawn (depth or line limit)
    inputs: list = field(default_factory=list)   # [(key, input_index, output_nr)]
    saved: dict | None = None          # name -> short description
    grad: list | None = None           # per output: short description, or None


@dataclass(slots=True)
class TreeLine:
    """One line of the tree layout: ``guides`` says, per ancestor level, whether that
    ancestor has siblings still to come (draw ``│``); it holds at most ``MAX_INDENT`` levels
    (the ancestors a line deeper than that are not drawn as indentation)."""

    key: str | None          # the ViewNode drawn, None for a "…" line
    guides: tuple
    last: bool
    depth: int
    ref: bool = False        # a reference to a node drawn above
    note: str | None = None  # text of a "…" line
    output_nr: int = 0       # which output of the drawn node this edge takes


@dataclass
class GraphView:
    outputs: list            # [(key or None, Tensor)]
    nodes: dict              # key -> ViewNode, in drawing order
    lines: list              # [TreeLine]
    stats: GraphStats
    shown: int               # engine nodes drawn (a run counts its members)
    truncated: bool
    max_depth: int | None
    full: bool
    labels: dict = field(default_factory=dict)   # key -> "#n" tag of shared nodes


@contextmanager
def gc_paused():
    """Walking a big graph allocates little but sees many objects: Python's cyclic GC
    would rescan the whole graph again and again for nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def walk_stats(roots: list) -> tuple[GraphStats, dict]:
    """Totals and in-degrees (edge counts into each node) over the whole graph."""
    with gc_paused():
        return _walk_stats(roots)


def _walk_stats(roots: list) -> tuple[GraphStats, dict]:
    indeg: dict = {}
    by_class: dict = {}       # class -> number of nodes
    examples: dict = {}       # class -> one node of it (for its name)
    custom = []               # nodes of custom Functions sharing the FunctionCtx class
    edges = 0
    stack = []
    for root in roots:
        if root is not None and root not in indeg:
            indeg[root] = 0
            stack.append(root)
    pop, push, seen_count, count_of = stack.pop, stack.append, indeg.get, by_class.get
    while stack:
        node = pop()
        cls = type(node)
        count = count_of(cls)
        if count is None:
            by_class[cls] = 1
            examples[cls] = node
        else:
            by_class[cls] = count + 1
        if cls is FunctionCtx:
            custom.append(node)
        for nxt in node.next_nodes:
            if nxt is None:
                continue
            edges += 1
            count = seen_count(nxt)
            if count is None:
                indeg[nxt] = 1
                push(nxt)
            else:
                indeg[nxt] = count + 1
    by_type: dict = {}
    for cls, count in by_class.items():
        if cls is not FunctionCtx:
            name = node_name(examples[cls])
            by_type[name] = by_type.get(name, 0) + count
    for node in custom:
        name = node.name()
        by_type[name] = by_type.get(name, 0) + 1
    depth = _longest_path(roots, indeg)
    ranked = dict(sorted(by_type.items(), key=lambda item: (-item[1], item[0])))
    return GraphStats(len(indeg), edges, depth, ranked, by_class.get(AccumulateGrad, 0)), indeg


def _longest_path(roots: list, indeg: dict) -> int:
    """Longest output-to-leaf path, in edges (Kahn's order: no recursion)."""
    remaining = dict(indeg)
    level: dict = {}
    ready = []
    for root in roots:
        if root is not None and remaining.get(root) == 0 and root not in level:
            level[root] = 0
            ready.append(root)
    pop, push, level_of = ready.pop, ready.append, level.get
    deepest = 0
    while ready:
        node = pop()
        below = level[node] + 1
        for nxt in node.next_nodes:
            if nxt is None:
                continue
            if level_of(nxt, -1) < below:
                level[nxt] = below
            left = remaining[nxt] - 1
            remaining[nxt] = left
            if left == 0:
                push(nxt)
                if below > deepest:
                    deepest = below
    return deepest


def describe_array(value, values: int = 6) -> str:
    """Short text for a saved value or a gradient: dtype[shape] and, if small, the values."""
    if isinstance(value, Tensor):
        value = value._data
    if isinstance(value, np.ndarray):
        head = f"{value.dtype}[{', '.join(map(str, value.shape))}]"
        if value.size <= values:
            body = np.array2string(value.reshape(-1) if value.ndim > 1 else value,
                                   precision=4, separator=", ", suppress_small=False)
            return f"{head} {body}" if value.ndim else f"{head} {value.item():.6g}"
        finite = value[np.isfinite(value)] if value.dtype.kind in "fc" else value
        if finite.size and value.dtype.kind in "fiu":
            low, high = finite.min(), finite.max()
            if low == high:
                return f"{head} all {low:.4g}"
            return f"{head} min {low:.4g} max {high:.4g}"
        return head
    if hasattr(value, "shape") and hasattr(value, "dtype"):      # ShapeOnly
        return f"{value.dtype}[{', '.join(map(str, value.shape))}] (shape only)"
    return repr(value)


def _variable(node, names: dict) -> Variable | None:
    if type(node) is not AccumulateGrad:
        return None
    var = node.variable
    name = names.get(id(var)) or var.name
    return Variable(name, tuple(var._data.shape), str(var._data.dtype))


def _same_kind(a, b) -> bool:
    cls = type(a)
    return cls is type(b) and (cls is not FunctionCtx or a._fn_cls is b._fn_cls)


def _run_end(parent, pos: int, first, indeg: dict):
    """If ``first`` (input ``pos`` of ``parent``) starts a chain of nodes named like
    ``parent``, each with the same other inputs as ``parent``, return (count, last): the
    ``count`` nodes from ``first`` on are collapsed, ``last`` is drawn after them.
    (The hot loop of million-node chains: plain comparisons, no helper calls.)"""
    sides = parent.next_nodes
    width = len(sides)
    others = tuple(i for i in range(width) if i != pos)
    cls = type(parent)
    custom = cls is FunctionCtx          # one class shared by every custom Function
    get = indeg.get
    count = 0
    node = first
    while type(node) is cls and get(node, 0) == 1 and \
            (not custom or node._fn_cls is parent._fn_cls):
        nxt = node.next_nodes
        if len(nxt) != width:
            break
        if any(nxt[i] is not sides[i] for i in others) if width > 2 else \
                (width == 2 and nxt[others[0]] is not sides[others[0]]):
            break
        follow = nxt[pos]
        if follow is None or type(follow) is not cls or get(follow, 0) != 1 or \
                (custom and follow._fn_cls is not parent._fn_cls):
            break
        count += 1
        node = follow
    return count, node


def build_view(outputs, names: dict | None = None, *, max_depth: int | None = DEFAULT_MAX_DEPTH,
               max_lines: int | None = DEFAULT_MAX_LINES, full: bool = False,
               saved: bool = False, stats: GraphStats | None = None,
               indeg: dict | None = None, layout: bool = True) -> GraphView:
    """The view of the backward graph of ``outputs`` (Tensors); ``names`` maps ``id(leaf)``
    to the name shown on its ``AccumulateGrad``.  ``full`` draws every node.  ``layout=False``
    leaves ``lines`` empty: the formats other than the tree (dot, json, mermaid) draw nodes
    and edges only (the line limit still counts the lines the tree would have)."""
    with gc_paused():
        return _build_view(outputs, names, max_depth, max_lines, full, saved, stats, indeg,
                           layout)


def _build_view(outputs, names, max_depth, max_lines, full, saved, stats, indeg,
                layout) -> GraphView:
    names = names or {}
    if full:
        max_depth = max_lines = None
    roots = [t.grad_fn if t.grad_fn is not None else _leaf_node(t) for t in outputs]
    if stats is None or indeg is None:
        stats, indeg = walk_stats(roots)
    nodes: dict = {}
    drawn: dict = {}          # engine node -> key
    lines: list = []
    add_line = lines.append if layout else _drop
    line_count = 0
    shown = 0
    truncated = False
    out_keys = []

    # stack items: (kind, payload, depth, guides, last, parent_key, input_index, output_nr);
    # ``guides`` stops growing at MAX_INDENT levels, and one tuple is shared by siblings
    stack = []
    for i in range(len(roots) - 1, -1, -1):
        stack.append(("node", roots[i], 0, (), i == len(roots) - 1, None, 0, 0))
    root_keys: dict = {}
    runs: list = []           # (view, first member, position of the chain's input)
    while stack:
        kind, payload, depth, guides, last, parent, index, nr = stack.pop()
        if max_lines is not None and line_count >= max_lines:
            truncated = True
            add_line(TreeLine(None, (), True, 0,
                              note=f"… stopped after {max_lines} lines "
                                   "(use --full to see every node)"))
            break
        if kind == "node" and payload is None:
            continue
        line_count += 1
        if kind == "node" and payload in drawn:
            key = drawn[payload]
            nodes[key].shared = True
            add_line(TreeLine(key, guides, last, depth, ref=True, output_nr=nr))
            if parent is not None:
                nodes[parent].inputs.append((key, index, nr))
            continue
        key = f"n{len(nodes)}"
        if kind == "run":
            first, count = payload[0], payload[1]
            view = ViewNode(key, node_name(first), kind="run", count=count, node=first)
            runs.append((view, first, payload[3]))
            shown += count
        else:
            view = ViewNode(key, node_name(payload), node=payload,
                            variable=_variable(payload, names))
            drawn[payload] = key
            shown += 1
            if saved:
                view.saved = {k: describe_array(v) for k, v in payload._saved_repr().items()}
        if depth == 0:
            root_keys[payload] = key
        nodes[key] = view
        add_line(TreeLine(key, guides, last, depth, output_nr=nr))
        if parent is not None:
            nodes[parent].inputs.append((key, index, nr))
        children = _children(kind, payload, indeg, full)
        if not children:
            continue
        child_guides = guides + (not last,) if len(guides) < MAX_INDENT else guides
        if max_depth is not None and depth >= max_depth:
            view.truncated = True
            truncated = True
            line_count += 1
            add_line(TreeLine(None, child_guides, True, depth + 1,
                              note=f"… inputs below depth {max_depth} not shown"))
            continue
        for j in range(len(children) - 1, -1, -1):
            ckind, cpayload, cindex, cnr = children[j]
            stack.append((ckind, cpayload, depth + 1, child_guides, j == len(children) - 1,
                          key, cindex, cnr))
    for view, first, pos in runs:
        # every member of a collapsed chain also takes the chain's other inputs
        for i, side in enumerate(first.next_nodes):
            if i != pos and side is not None and side in drawn:
                view.inputs.append((drawn[side], i, _nr_of(first, i)))
        view.inputs.sort(key=lambda edge: edge[1])
    for t, root in zip(outputs, roots):
        out_keys.append((root_keys.get(root) or drawn.get(root), t))
    labels = {}
    for key, view in nodes.items():
        if view.shared:
            labels[key] = f"#{len(labels) + 1}"
    return GraphView(out_keys, nodes, lines, stats, shown, truncated,
                     max_depth, full, labels)


def _drop(_line) -> None:
    """Where tree lines go when no tree is drawn."""


def _nr_of(node, pos: int) -> int:
    nrs = node.next_nrs
    return 0 if nrs is None else nrs[pos]


def _leaf_node(t: Tensor):
    if t._rg:
        from ..engine.node import grad_accumulator
        return grad_accumulator(t)
    return None


def _children(kind: str, payload, indeg: dict, full: bool) -> list:
    """[(kind, payload, input_index, output_nr)] drawn under a node or run."""
    if kind == "run":
        _, _, last, pos, nr = payload
        return [("node", last, pos, nr)]
    node = payload
    nxt = node.next_nodes
    nrs = node.next_nrs
    keep = getattr(getattr(node, "prim", None), "edge_inputs", None)
    out = []
    run_done = full
    for i, child in enumerate(nxt):
        if child is None:
            continue
        nr = 0 if nrs is None else nrs[i]
        # the position in next_functions (an index or mask input of the primitive is no
        # edge there: where(c, a, b)'s a is input 0)
        position = i if keep is None else keep.index(i)
        if not run_done and _same_kind(child, node):
            run_done = True
            count, last = _run_end(node, i, child, indeg)
            if count >= MIN_RUN:
                out.append(("run", (child, count, last, i, _nr_of(child, i)), position, nr))
                continue
        out.append(("node", child, position, nr))
    return out


def record_grads(view: GraphView, outputs) -> None:
    """Run backward (seed: ones, as ``out.backward(torch.ones_like(out))``) and store, on
    every drawn node, the gradient flowing into it (a node pre-hook: the gradient w.r.t.
    the node's outputs).  The graph is retained, so ``--saved`` still works after."""
    from ..engine.graph import backward
    from ..engine.tensor import _make

    seen: dict = {}
    handles = []

    def hook_for(key):
        def hook(grad_outputs):
            seen[key] = [None if g is None else describe_array(g) for g in grad_outputs]
        return hook

    for key, node in view.nodes.items():
        if node.kind == "node":
            handles.append(node.node.register_prehook(hook_for(key)))
    tensors = [t for t in outputs if t._rg]
    try:
        backward(tuple(tensors), tuple(_make(np.ones_like(t._data)) for t in tensors),
                 retain_graph=True)
    finally:
        for handle in handles:
            handle.remove()
    for key, node in view.nodes.items():
        if node.kind == "node":
            node.grad = seen.get(key, [None])
