"""Graph views and their renderings, built through the Python API (no spec package)."""

import json
import time

import numpy as np
import pytest

import gradtool as gt
from gradtool.render.dot import render_dot
from gradtool.render.graph_json import graph_dict, render_json
from gradtool.render.graphview import MAX_INDENT, build_view, record_grads
from gradtool.render.mermaid import render_mermaid
from gradtool.render.tree import render_lines, render_text


def leaf(values, name):
    t = gt.tensor(values, dtype=gt.float64, requires_grad=True)
    return t, {id(t): name}


def autograd_basics():
    """The seed's first example: y = x + 2; z = y * y * 3; out = z.mean()."""
    x, names = leaf([1.0, 2.0, 3.0], "x")
    y = x + 2
    return ((y * y) * 3).mean(), names


def doubled():
    """The seed's Jacobian example: y = x * 2, doubled 10 more times."""
    x, names = leaf([0.5, -1.0, 2.0], "x")
    y = x * 2
    for _ in range(10):
        y = y * 2
    return y, names


def two_layer_net():
    # fixed values (not the RNG's), so the golden file only changes when rendering does
    def values(*shape):
        return np.sin(np.arange(1, np.prod(shape) + 1)).reshape(shape)
    x = gt.tensor(values(4, 3))
    y = gt.tensor(values(4, 2))
    w1 = gt.tensor(values(3, 5), requires_grad=True)
    w2 = gt.tensor(values(5, 2), requires_grad=True)
    loss = (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum()
    return loss, {id(w1): "w1", id(w2): "w2"}


def test_autograd_basics_tree_names_and_sharing(golden):
    out, names = autograd_basics()
    view = build_view([out], names)
    text = render_text(view)
    lines = text.splitlines()
    assert lines[0].startswith("MeanBackward0")
    assert [line.strip("│├└─ ") .split()[0] for line in lines[1:6]] == [
        "MulBackward0", "MulBackward0", "AddBackward0", "AccumulateGrad", "↑"]
    assert "AddBackward0 #1" in lines[3] and "shared" in lines[5]
    assert "x: float64[3]" in lines[4]
    assert view.stats.nodes == 5 and view.stats.edges == 5 and view.stats.depth == 4
    golden("autograd_basics.txt", text)


def test_shared_node_is_drawn_once_in_every_format():
    out, names = autograd_basics()
    view = build_view([out], names)
    data = graph_dict(view)
    assert [n["name"] for n in data["nodes"]] == [
        "MeanBackward0", "MulBackward0", "MulBackward0", "AddBackward0", "AccumulateGrad"]
    add = data["nodes"][3]
    assert add["shared"] and data["nodes"][2]["inputs"] == [
        {"node": "n3", "input": 0, "output_nr": 0}, {"node": "n3", "input": 1, "output_nr": 0}]
    assert data["nodes"][4]["variable"] == {"name": "x", "shape": [3], "dtype": "float64"}
    dot = render_dot(view)
    assert dot.count("AddBackward0") == 1 and dot.count("n2 -> n3;") == 2
    assert render_mermaid(view).count("AddBackward0") == 1


def test_doubled_chain_collapses(golden):
    out, names = doubled()
    text = render_text(build_view([out], names))
    assert "MulBackward0 × 9" in text
    golden("doubled.txt", text)
    full = render_text(build_view([out], names, full=True))
    assert full.count("MulBackward0") == 11 + 1   # 11 nodes + the by-type line


def test_two_layer_net_saved_and_grads(golden):
    out, names = two_layer_net()
    view = build_view([out], names, saved=True)
    record_grads(view, [out])
    text = render_text(view)
    for name in ("SumBackward0", "PowBackward0", "SubBackward0", "MmBackward0",
                 "Clamp", "w1: float64[3, 5]", "w2: float64[5, 2]",
                 "_saved_mat2", "grad = float64[] 1"):
        assert name in text
    golden("two_layer_net.txt", text)


def test_grads_match_backward():
    out, names = autograd_basics()
    view = build_view([out], names)
    record_grads(view, [out])
    leaf_node = [n for n in view.nodes.values() if n.variable is not None][0]
    # d mean(3 (x+2)^2) / dx = 2 (x + 2) = [6, 8, 10]
    assert leaf_node.grad == ["float64[3] [ 6.,  8., 10.]"]


def test_depth_and_line_limits():
    x, names = leaf([1.0], "x")
    y = x
    for i in range(300):
        y = y * x if i % 2 else y + x        # alternating: nothing collapses
    view = build_view([y], names, max_depth=10)
    text = render_text(view)
    assert "inputs below depth 10 not shown" in text
    assert len(text.splitlines()) < 40
    view = build_view([y], names, max_depth=None, max_lines=50)
    assert view.truncated and len(render_text(view).splitlines()) <= 55


def test_multiple_roots_and_custom_function_names():
    class MyReLU(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.clamp(min=0)

        @staticmethod
        def backward(ctx, grad):
            x, = ctx.saved_tensors
            return grad * (x > 0)

    x, names = leaf([1.0, -2.0], "x")
    a = MyReLU.apply(x)
    b = x.exp()
    view = build_view([a, b], names, saved=True)
    text = render_text(view)
    assert text.startswith("MyReLUBackward")
    assert "ExpBackward0" in text and "saved_tensors[0]" in text
    assert view.stats.by_type["MyReLUBackward"] == 1


def test_million_node_chain_summary_is_fast():
    x, names = leaf([1.0], "x")
    y = x
    n = 200_000
    for _ in range(n):
        y = y * 1.0
    start = time.perf_counter()
    text = render_text(build_view([y], names))
    elapsed = time.perf_counter() - start
    assert f"MulBackward0 × {n - 2:,}" in text
    assert f"{n + 1:,} nodes" in text
    assert len(text.splitlines()) <= 100
    assert elapsed < 5, elapsed


def test_no_recursion_on_deep_graph_in_full_mode():
    x, names = leaf([1.0], "x")
    y = x
    for i in range(5000):
        y = y * x if i % 2 else y + x
    view = build_view([y], names, full=True)
    assert view.stats.depth == 5000
    json.dumps(graph_dict(view))
    render_dot(view)


def test_chain_with_a_shared_weight_collapses_and_keeps_the_weight():
    x, names = leaf([1.0, 2.0], "x")
    w, more = leaf([0.5, 0.5], "w")
    names.update(more)
    y = x
    for _ in range(1000):
        y = y * w
    view = build_view([y], names)
    text = render_text(view)
    assert "MulBackward0 × 998" in text
    assert "AccumulateGrad  w: float64[2]" in text and "AccumulateGrad  x: float64[2]" in text
    assert len(text.splitlines()) < 15
    data = graph_dict(view)
    run = [n for n in data["nodes"] if n["kind"] == "run"][0]
    assert run["count"] == 998 and data["stats"]["nodes"] == 1002


def test_different_side_inputs_do_not_collapse():
    x, names = leaf([1.0], "x")
    y = x
    for i in range(6):
        y = y * gt.tensor([float(i + 1)], requires_grad=True)
    text = render_text(build_view([y], names))
    assert "collapsed" not in text and text.count("MulBackward0") == 6 + 1


def test_dot_mermaid_json_golden(golden):
    out, names = autograd_basics()
    view = build_view([out], names, saved=True)
    golden("autograd_basics.dot", render_dot(view))
    golden("autograd_basics.mmd", render_mermaid(view))
    golden("autograd_basics.json", json.dumps(graph_dict(view), indent=2) + "\n")


# ---- deep graphs with --full: linear time, bounded lines (issue 14) --------------------------
RENDERERS = {"tree": render_text, "dot": render_dot, "mermaid": render_mermaid,
             "json": render_json}


def chain(n, side=None):
    """``y = y * 1.0001`` (or ``y * side``) n times on a 3-element leaf."""
    x, names = leaf([1.0, 2.0, 3.0], "x")
    y = x
    for _ in range(n):
        y = y * (1.0001 if side is None else side)
    return y, names


@pytest.fixture(scope="module")
def chains():
    """Two chains, one four times as long, shared by the four formats."""
    return {n: chain(n) for n in (8_000, 32_000)}


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_full_render_of_a_chain_is_linear_with_bounded_output(fmt, chains):
    """4x the nodes costs < 8x the CPU time (linear: 4x; the old tree layout was quadratic
    in depth: 16x), and every node costs < 200 bytes of output, whatever its depth."""
    render = RENDERERS[fmt]
    times, texts = {}, {}
    for n, (out, names) in chains.items():
        best = float("inf")
        for _ in range(3):
            start = time.process_time()
            text = render(build_view([out], names, full=True, layout=fmt == "tree"))
            best = min(best, time.process_time() - start)
        times[n], texts[n] = best, text
    assert times[32_000] < 8 * times[8_000], times
    for n, text in texts.items():
        assert len(text.encode()) < 200 * n, len(text.encode()) / n
        assert text.count("MulBackward0") >= n
    if fmt == "json":
        data = json.loads(texts[8_000])
        assert len(data["nodes"]) == 8_001 and data["stats"]["depth"] == 8_000


def test_tree_indentation_stops_at_max_indent_and_names_the_depth():
    out, names = chain(MAX_INDENT + 30)
    lines = render_text(build_view([out], names, full=True)).splitlines()
    widths = {len(line) - len(line.lstrip(" │├└─┆")) for line in lines[:MAX_INDENT + 31]}
    assert max(widths) == 4 * MAX_INDENT
    assert lines[MAX_INDENT].endswith("└── MulBackward0")
    assert lines[MAX_INDENT + 1].strip() == f"┆ [depth {MAX_INDENT + 1}] MulBackward0"
    assert lines[MAX_INDENT + 30].strip() == (f"┆ [depth {MAX_INDENT + 30}] AccumulateGrad  "
                                             "x: float64[3]")


def test_deep_chain_with_a_shared_side_input_keeps_every_edge_and_short_lines():
    w, more = leaf([0.5, 0.5, 0.5], "w")
    out, names = chain(3000, side=w)
    names.update(more)
    view = build_view([out], names, full=True)
    text = render_text(view)
    assert text.count("↑ AccumulateGrad #1 (shared, shown above)") == 2999
    assert len(text.encode()) < 200 * 3002
    assert "[depth 3,000] AccumulateGrad  x: float64[3]" in text
    data = json.loads(render_json(build_view([out], names, full=True, layout=False)))
    assert sum(len(n["inputs"]) for n in data["nodes"]) == data["stats"]["edges"] == 6000


def test_views_without_layout_draw_the_same_nodes_and_edges():
    out, names = autograd_basics()
    with_lines = build_view([out], names, saved=True)
    without = build_view([out], names, saved=True, layout=False)
    assert without.lines == [] and with_lines.lines
    assert render_dot(with_lines) == render_dot(without)
    assert render_json(with_lines) == render_json(without)
    # the line limit still counts the lines the tree would have drawn
    x, more = leaf([1.0], "x")
    deep = x
    for i in range(300):
        deep = deep * x if i % 2 else deep + x        # alternating: nothing collapses
    limited = build_view([deep], more, max_depth=None, max_lines=50, layout=False)
    assert limited.truncated and limited.nodes == build_view(
        [deep], more, max_depth=None, max_lines=50).nodes


def test_on_a_terminal_only_the_guides_are_dim():
    out, names = autograd_basics()
    lines = render_lines(build_view([out], names))
    deep = lines[2]                  # "    └── MulBackward0"
    assert deep.plain == "    └── MulBackward0"
    assert "dim" not in str(deep.style)
    styles = {deep.plain[span.start:span.end]: str(span.style) for span in deep.spans}
    assert styles["    └── "] == "dim" and styles["MulBackward0"] == "bold cyan"
    by_type = lines[-1]
    assert "dim" not in str(by_type.style)
    assert any(by_type.plain[s.start:s.end] == "by type: " and str(s.style) == "dim"
               for s in by_type.spans)


def test_json_rows_are_exactly_the_node_dicts():
    """render_json writes the common node entry itself: it must say what node_dict says,
    for every kind of node (runs, shared, truncated, leaves, saved, grads, odd names)."""
    from gradtool.render.graph_json import node_dict

    class Quoted(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    Quoted.__name__ = 'Odd"Name\\'
    out, names = autograd_basics()
    chained, more = chain(10)
    names.update(more)
    odd = Quoted.apply(chained).sum()
    with_grads = build_view([out, odd], names, max_depth=2)
    record_grads(with_grads, [out])
    views = (build_view([out, odd], names, saved=True), build_view([out, odd], names),
             with_grads, build_view([out, odd], names, full=True))
    assert 'Odd"Name\\Backward' in [n.name for n in views[1].nodes.values()]
    assert any(n.kind == "run" for n in views[1].nodes.values())
    assert any(n.truncated for n in with_grads.nodes.values())
    for view in views:
        data = json.loads(render_json(view))
        assert data["nodes"] == [node_dict(view, key) for key in view.nodes]
        assert data == json.loads(json.dumps(graph_dict(view)))
