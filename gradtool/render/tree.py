"""The backward graph as an indented tree (``gradtool graph``, the default format).

Lines are ``rich.text.Text`` (styled on a terminal; ``.plain`` for files and golden tests).
Names a user chose (input names) are added as plain text, never parsed as rich markup.
"""

from __future__ import annotations

from functools import lru_cache

from rich.text import Text

from .graphview import MAX_INDENT, GraphView, TreeLine, ViewNode, gc_paused

TOP_TYPES = 8


@lru_cache(maxsize=4096)
def _guides_text(guides: tuple) -> str:
    """The ``│`` columns of the ancestors below the root (one tuple is shared by siblings
    and by every line past MAX_INDENT: cached)."""
    return "".join("│   " if more else "    " for more in guides[1:])


def _prefix(line: TreeLine) -> str:
    if line.depth == 0:
        return ""
    if line.depth > MAX_INDENT:       # flat from here on: the depth says where a line sits
        return f"{_guides_text(line.guides)}┆ [depth {line.depth:,}] "
    return _guides_text(line.guides) + ("└── " if line.last else "├── ")


def _detail_prefix(line: TreeLine, has_inputs: bool) -> str:
    """Indentation of lines printed under a node (saved tensors, gradients)."""
    below = "│   " if has_inputs else "    "
    if line.depth == 0:
        return below
    if line.depth > MAX_INDENT:
        return f"{_guides_text(line.guides)}┆   {below}"
    return _guides_text(line.guides) + ("    " if line.last else "│   ") + below


def node_label(view: ViewNode, tag: str | None) -> list[tuple]:
    """``MulBackward0``, ``AccumulateGrad  x: float64[3]``, ``MulBackward0 × 999,998``,
    as (text, style) segments."""
    if view.kind == "run":
        return [(view.name, "bold magenta"), (f" × {view.count:,}", "magenta"),
                ("  (collapsed chain)", "dim")]
    if view.variable is not None:
        var = view.variable
        out = [(view.name, "green"), ("  ", None), (var.name or "(unnamed leaf)", "bold"),
               (f": {var.dtype}[{', '.join(map(str, var.shape))}]", "dim")]
    else:
        out = [(view.name, "bold cyan")]
    if tag:
        out.append((f" {tag}", "yellow"))
    return out


def line_segments(view: GraphView):
    """Each line of the tree as a list of (text, style) segments: styled by
    ``render_lines`` (a terminal), joined by ``render_text`` (files, pipes, golden tests)."""
    output_of = {key: t for key, t in view.outputs if key is not None}
    nodes, labels = view.nodes, view.labels
    for line in view.lines:
        prefix = (_prefix(line), "dim")        # only the guides are dim, not the names
        if line.key is None:
            yield [prefix, (line.note or "…", "dim italic")]
            continue
        node = nodes[line.key]
        tag = labels.get(line.key)
        if line.ref:
            row = [prefix, ("↑ ", "dim"), (node.name, None)]
            if line.output_nr:
                row.append((f" [output {line.output_nr}]", "dim"))
            row.append((f" {tag} (shared, shown above)" if tag else " (shown above)",
                        "dim yellow"))
            yield row
            continue
        row = [prefix]
        row += node_label(node, tag)
        if line.output_nr:
            row.append((f" [output {line.output_nr}]", "dim"))
        if line.key in output_of:
            data = output_of[line.key]._data
            row.append((f"  (output: {data.dtype}[{', '.join(map(str, data.shape))}])",
                        "dim"))
        yield row
        if node.saved is None and node.grad is None:
            continue
        detail = (_detail_prefix(line, node.kind == "run" or _has_inputs(node)), "dim")
        for name, desc in (node.saved or {}).items():
            yield [detail, (f"{name} = ", "blue"), (desc, None)]
        if node.grad is not None:
            for nr, desc in enumerate(node.grad):
                label = "grad" if len(node.grad) == 1 else f"grad[{nr}]"
                yield [detail, (f"{label} = ", "green"),
                       (desc if desc is not None else "None", None)]


@gc_paused()
def render_lines(view: GraphView, *, summary: bool = True) -> list[Text]:
    """The tree, then (``summary``) the totals over the whole graph."""
    out: list[Text] = []
    for segments in line_segments(view):
        text = Text()
        for part, style in segments:
            text.append(part, style=style)
        out.append(text)
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
    body = Text()
    body.append("by type: ", style="dim")
    body.append(", ".join(f"{name} {count:,}" for name, count in types[:TOP_TYPES]))
    if len(types) > TOP_TYPES:
        body.append(f", … {len(types) - TOP_TYPES} more types", style="dim")
    return [Text(""), head, body]


@gc_paused()
def render_text(view: GraphView, *, summary: bool = True) -> str:
    """Plain text (no styles): for files, pipes and golden tests."""
    rows = ["".join([part for part, _style in segments]) for segments in line_segments(view)]
    if summary:
        rows.extend(line.plain for line in summary_lines(view))
    return "\n".join(rows) + "\n"
