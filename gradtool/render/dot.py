"""The backward graph in Graphviz DOT (``gradtool graph --format dot``, ``-o graph.svg``).

Edges go from a node to its inputs (``next_functions``), as the tree reads: output at the
top, ``AccumulateGrad`` leaves at the bottom.  Collapsed chains are dashed boxes."""

from __future__ import annotations

import shutil
import subprocess

from ..errors import UsageError
from .graphview import GraphView, gc_paused

INSTALL_HINT = ("install Graphviz (apt install graphviz, brew install graphviz, or "
                "https://graphviz.org/download/), or write --format dot and render it yourself")


def quote(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def node_text(view: GraphView, key: str) -> tuple[str, dict]:
    """Label and attributes of one drawn node."""
    node = view.nodes[key]
    attrs = {"shape": "box", "style": "rounded"}
    if node.kind == "run":
        label = f"{node.name} × {node.count:,}\n(collapsed chain)"
        attrs["style"] = "rounded,dashed"
    elif node.variable is not None:
        var = node.variable
        label = f"{var.name or '(unnamed leaf)'}\n{var.dtype}[{', '.join(map(str, var.shape))}]"
        label = f"{node.name}\n{label}"
        attrs.update(style="rounded,filled", fillcolor="lightblue")
    else:
        label = node.name
    tag = view.labels.get(key)
    if tag:
        label += f" {tag}"
    for name, desc in (node.saved or {}).items():
        label += f"\n{name} = {desc}"
    for nr, desc in enumerate(node.grad or ()):
        label += f"\ngrad{'' if len(node.grad) == 1 else f'[{nr}]'} = {desc}"
    if node.truncated:
        label += "\n… (inputs not shown)"
        attrs["color"] = "gray"
    return label, attrs


@gc_paused()
def render_dot(view: GraphView) -> str:
    lines = ["digraph backward {", '  graph [rankdir=TB, fontname="Helvetica"];',
             '  node [fontname="Helvetica", fontsize=11];', '  edge [arrowsize=0.7];']
    for key in view.nodes:
        label, attrs = node_text(view, key)
        extra = "".join(f", {k}={quote(v)}" for k, v in attrs.items())
        lines.append(f"  {key} [label={quote(label)}{extra}];")
    for index, (key, tensor) in enumerate(view.outputs):
        if key is None:
            continue
        shape = ", ".join(map(str, tensor._data.shape))
        lines.append(f"  out{index} [label={quote(f'output {tensor._data.dtype}[{shape}]')}, "
                     'shape=ellipse, style=filled, fillcolor="darkolivegreen1"];')
        lines.append(f"  out{index} -> {key};")
    for key, node in view.nodes.items():
        for child, _index, _nr in node.inputs:
            lines.append(f"  {key} -> {child};")
    if view.truncated:
        lines.append(f"  note [label={quote(truncation_note(view))}, shape=plaintext];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def truncation_note(view: GraphView) -> str:
    return (f"showing {view.shown:,} of {view.stats.nodes:,} nodes; "
            "use --depth or --full to see more")


def render_image(dot_source: str, path: str, fmt: str) -> None:
    """Run Graphviz ``dot`` to write ``path`` (svg, png, pdf)."""
    exe = shutil.which("dot")
    if exe is None:
        raise UsageError(f"cannot write {path}: Graphviz 'dot' is not installed",
                         hint=INSTALL_HINT)
    proc = subprocess.run([exe, f"-T{fmt}", "-o", path], input=dot_source.encode(),
                          capture_output=True, check=False)
    if proc.returncode != 0:
        raise UsageError(f"Graphviz dot failed: {proc.stderr.decode(errors='replace').strip()}")
