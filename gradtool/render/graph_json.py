"""The backward graph as JSON (``gradtool graph --format json``); format in docs/cli.md."""

from __future__ import annotations

import json

from .graphview import GraphView, gc_paused
from .report import json_safe

GRAPH_JSON_VERSION = 1


def node_dict(view: GraphView, key: str) -> dict:
    """One entry of ``nodes``."""
    node = view.nodes[key]
    var = node.variable
    return {
        "id": key,
        "name": node.name,
        "kind": "leaf" if var is not None else node.kind,
        "count": node.count,
        "shared": node.shared,
        "truncated": node.truncated,
        "variable": None if var is None else {
            "name": var.name, "shape": list(var.shape), "dtype": var.dtype},
        "inputs": [{"node": child, "input": index, "output_nr": nr}
                   for child, index, nr in node.inputs],
        "saved": node.saved,
        "grad": node.grad,
    }


def graph_dict(view: GraphView, *, nodes: bool = True) -> dict:
    """The whole document (``nodes=False``: an empty ``nodes`` list, filled by the caller)."""
    stats = view.stats
    return {
        "version": GRAPH_JSON_VERSION,
        "kind": "graph",
        "outputs": [{"node": key, "shape": list(t._data.shape), "dtype": str(t._data.dtype)}
                    for key, t in view.outputs],
        "nodes": [node_dict(view, key) for key in view.nodes] if nodes else [],
        "stats": {"nodes": stats.nodes, "edges": stats.edges, "depth": stats.depth,
                  "leaves": stats.leaves, "by_type": stats.by_type,
                  "shown": view.shown, "truncated": view.truncated,
                  "max_depth": view.max_depth, "full": view.full},
    }


_NODE_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


_NAMES_JSON: dict = {}
_FLAG = {True: "true", False: "false"}


def _node_row(view: GraphView, key: str) -> str:
    """``node_dict(view, key)`` as compact JSON.  The common entry (no variable, nothing
    saved or recorded) is written directly, the rest through the encoder; a test checks
    that both agree with ``node_dict``."""
    node = view.nodes[key]
    if node.variable is not None or node.saved is not None or node.grad is not None:
        return _NODE_ENCODER.encode(node_dict(view, key))
    name = _NAMES_JSON.get(node.name)
    if name is None:
        name = _NAMES_JSON[node.name] = json.dumps(node.name)
    inputs = ",".join([f'{{"node":"{child}","input":{index},"output_nr":{nr}}}'
                       for child, index, nr in node.inputs])
    return (f'{{"id":"{key}","name":{name},"kind":"{node.kind}","count":{node.count},'
            f'"shared":{_FLAG[node.shared]},"truncated":{_FLAG[node.truncated]},'
            f'"variable":null,"inputs":[{inputs}],"saved":null,"grad":null}}')


@gc_paused()
def render_json(view: GraphView) -> str:
    """Indented JSON with one node per line: readable, and linear in the node count (a
    100,000-node graph with ``--full`` is 100,000 short lines, not 2,000,000).  Node
    entries hold only strings, ints, bools and None (``saved`` and ``grad`` are already
    text): only the rest goes through ``json_safe``."""
    data = graph_dict(view, nodes=False)
    parts = []
    for key, value in data.items():
        if key == "nodes":     # one entry at a time: a million nodes are never all dicts
            rows = ",\n    ".join([_node_row(view, node) for node in view.nodes])
            text = f"[\n    {rows}\n  ]" if rows else "[]"
        else:
            text = json.dumps(json_safe(value), indent=2, allow_nan=False).replace("\n", "\n  ")
        parts.append(f"  {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"
