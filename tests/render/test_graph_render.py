"""Graph views and their renderings, built through the Python API (no spec package)."""

import json
import time

import numpy as np


import gradtool as gt
from gradtool.render.dot import render_dot
from gradtool.render.graph_json import graph_dict
from gradtool.render.graphview import build_view, record_grads
from gradtool.render.mermaid import render_mermaid
from gradtool.render.tree import render_text


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
    assert [l.strip("│├└─ ") .split()[0] for l in lines[1:6]] == [
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
