"""The backward graph as a Mermaid flowchart (renders in GitHub markdown)."""

from __future__ import annotations

from .dot import node_text, truncation_note
from .graphview import GraphView, gc_paused


def _label(text: str) -> str:
    """Mermaid quoted label: quotes and markup-like characters as entity codes."""
    escaped = (text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;")
               .replace(">", "#gt;"))
    return '"' + escaped.replace("\n", "<br/>") + '"'


@gc_paused()
def render_mermaid(view: GraphView) -> str:
    lines = ["flowchart TD"]
    for key in view.nodes:
        label, attrs = node_text(view, key)
        node = view.nodes[key]
        lines.append(f"  {key}[{_label(label)}]")
        if node.variable is not None:
            lines.append(f"  class {key} leaf")
        elif node.kind == "run":
            lines.append(f"  class {key} run")
    for index, (key, tensor) in enumerate(view.outputs):
        if key is None:
            continue
        shape = ", ".join(map(str, tensor._data.shape))
        lines.append(f"  out{index}([{_label(f'output {tensor._data.dtype}[{shape}]')}])")
        lines.append(f"  out{index} --> {key}")
    for key, node in view.nodes.items():
        for child, _index, _nr in node.inputs:
            lines.append(f"  {key} --> {child}")
    if view.truncated:
        lines.append(f"  note[{_label(truncation_note(view))}]")
    lines.append("  classDef leaf fill:#add8e6,stroke:#333")
    lines.append("  classDef run stroke-dasharray: 5 5")
    return "\n".join(lines) + "\n"
