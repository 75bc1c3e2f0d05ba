"""The backward graph as an indented tree (``gradtool graph``, the default format).

Lines are ``rich.text.Text`` (styled on a terminal; ``.plain`` for files and golden tests).
Names a user chose (input names) are added as plain text, never parsed as rich markup.
"""

from __future__ import annotations

from rich.text import Text

from .graphview import GraphView, TreeLine, ViewNode

TOP_TYPES = 8


def _prefix(line: TreeLine) -> str:
    if line.depth == 0:
        return ""
    body = "".join("│   " if more else "    " for more in line.guides[1:])
    return body + ("└── " if line.last else "├── ")


def _detail_prefix(line: TreeLine, has_inputs: bool) -> str:
    """Indentation of lines printed under a node (saved tensors, gradients)."""
    below = "│   " if has_inputs else "    "
    if line.depth == 0:
        return below
    body = "".join("│   " if more else "    " for more in line.guides[1:])
    return body + ("    " if line.last else "│   ") + below


def node_label(view: ViewNode, tag: str | None) -> Text:
    """``MulBackward0``, ``AccumulateGrad  x: float64[3]``, ``MulBackward0 × 999,998``."""
    text = Text()
    if view.kind == "run":
        text.append(view.name, style="bold magenta")
        text.append(f" × {view.count:,}", style="magenta")
        text.append("  (collapsed chain)", style="dim")
        return text
    if view.variable is not None:
        text.append(view.name, style="green")
        var = view.variable
        text.append("  ")
        text.append(var.name or "(unnamed leaf)", style="bold")
        text.append(f": {var.dtype}[{', '.join(map(str, var.shape))}]", style="dim")
    else:
        text.append(view.name, style="bold cyan")
    if tag:
        text.append(f" {tag}", style="yellow")
    return text


def render_lines(view: GraphView, *, summary: bool = True) -> list[Text]:
    """The tree, then (``summary``) the totals over the whole graph."""
    out: list[Text] = []
    output_of = {key: t for key, t in view.outputs if key is not None}
    for line in view.lines:
        text = Text(_prefix(line), style="dim")
        if line.key is None:
            text.append(line.note or "…", style="dim italic")
            out.append(text)
            continue
        node = view.nodes[line.key]
        tag = view.labels.get(line.key)
        if line.ref:
            text.append("↑ ", style="dim")
            text.append(node.name, style="dim")
            if line.output_nr:
                text.append(f" [output {line.output_nr}]", style="dim")
            text.append(f" {tag} (shared, shown above)" if tag else " (shown above)",
                        style="dim yellow")
            out.append(text)
            continue
        text.append_text(node_label(node, tag))
        if line.output_nr:
            text.append(f" [output {line.output_nr}]", style="dim")
        if line.key in output_of:
            data = output_of[line.key]._data
            text.append(f"  (output: {data.dtype}[{', '.join(map(str, data.shape))}])",
                        style="dim")
        out.append(text)
        detail = _detail_prefix(line, node.kind == "run" or _has_inputs(node))
        for name, desc in (node.saved or {}).items():
            row = Text(detail, style="dim")
            row.append(f"{name} = ", style="blue")
            row.append(desc)
            out.append(row)
        if node.grad is not None:
            for nr, desc in enumerate(node.grad):
                row = Text(detail, style="dim")
                label = "grad" if len(node.grad) == 1 else f"grad[{nr}]"
                row.append(f"{label} = ", style="green")
                row.append(desc if desc is not None else "None")
                out.append(row)
    if summary:
        out.extend(summary_lines(view))
    return out


def _has_inputs(node: ViewNode) -> bool:
    engine_node = node.node
    return engine_node is not None and any(n is not None for n in engine_node.next_nodes)


def summary_lines(view: GraphView) -> list[Text]:
    stats = view.stats
    plural = "" if stats.nodes == 1 else "s"
    head = Text()
    head.append(f"{stats.nodes:,} node{plural}", style="bold")
    head.append(f", {stats.edges:,} edge{'' if stats.edges == 1 else 's'}, "
                f"depth {stats.depth:,}, "
                f"{stats.leaves:,} {'leaf' if stats.leaves == 1 else 'leaves'}")
    if view.shown < stats.nodes:
        head.append(f" (tree shows {view.shown:,}", style="dim")
        collapsed = sum(n.count for n in view.nodes.values() if n.kind == "run")
        if collapsed:
            head.append(f", {collapsed:,} in collapsed chains", style="dim")
        head.append(")", style="dim")
    types = list(stats.by_type.items())
    body = Text("by type: ", style="dim")
    body.append(", ".join(f"{name} {count:,}" for name, count in types[:TOP_TYPES]))
    if len(types) > TOP_TYPES:
        body.append(f", … {len(types) - TOP_TYPES} more types", style="dim")
    return [Text(""), head, body]


def render_text(view: GraphView, *, summary: bool = True) -> str:
    """Plain text (no styles): for files and golden tests."""
    return "\n".join(line.plain for line in render_lines(view, summary=summary)) + "\n"
