"""The backward graph as JSON (``gradtool graph --format json``); format in docs/cli.md."""

from __future__ import annotations

import json

from .graphview import GraphView
from .report import json_safe

GRAPH_JSON_VERSION = 1


def graph_dict(view: GraphView) -> dict:
    nodes = []
    for key, node in view.nodes.items():
        var = node.variable
        nodes.append({
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
        })
    stats = view.stats
    return {
        "version": GRAPH_JSON_VERSION,
        "kind": "graph",
        "outputs": [{"node": key, "shape": list(t._data.shape), "dtype": str(t._data.dtype)}
                    for key, t in view.outputs],
        "nodes": nodes,
        "stats": {"nodes": stats.nodes, "edges": stats.edges, "depth": stats.depth,
                  "leaves": stats.leaves, "by_type": stats.by_type,
                  "shown": view.shown, "truncated": view.truncated,
                  "max_depth": view.max_depth, "full": view.full},
    }


def render_json(view: GraphView) -> str:
    return json.dumps(json_safe(graph_dict(view)), indent=2, allow_nan=False) + "\n"
