"""The graph gradtool draws has the nodes PyTorch records, in the same order."""

import numpy as np
import pytest

import gradtool as gt
from gradtool.render.graph_json import graph_dict
from gradtool.render.graphview import build_view

torch = pytest.importorskip("torch")


def torch_names(root) -> list[str]:
    """Node names in depth-first preorder, following next_functions, each node once."""
    seen, out, stack = set(), [], [root]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        out.append(node.name().split("::")[-1])
        stack.extend(fn for fn, _ in reversed(node.next_functions))
    return out


EXAMPLES = {
    "autograd_basics": ("y = x + 2; (y * y * 3).mean()",
                        lambda m, x: (lambda y: (y * y * 3).mean())(x + 2)),
    "doubled": ("y = x * 2, ten more times",
                lambda m, x: x * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2),
    "regression": ("((w x - y)^2).mean()",
                   lambda m, x: ((x * 0.5 - m.ones(3, dtype=m.float64)) ** 2).mean()),
    "two_layer": ("x.mm(w1).clamp(min=0).mm(w2)",
                  lambda m, x: (x.reshape(1, 3).mm(x.reshape(3, 1)).clamp(min=0)
                                .mm(x.reshape(1, 3)) - 1).pow(2).sum()),
    "legendre": ("a + b * P3(c + d * x), P3 inlined",
                 lambda m, x: 0.5 * (5 * (0.1 + 0.3 * x) ** 3 - 3 * (0.1 + 0.3 * x))),
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_same_nodes_as_torch(name):
    _, build = EXAMPLES[name]
    data = np.array([0.5, -1.0, 2.0])
    x = gt.tensor(data, requires_grad=True)
    ours = [n["name"] for n in graph_dict(build_view([build(gt, x)], full=True))["nodes"]]
    tx = torch.tensor(data, requires_grad=True)
    assert ours == torch_names(build(torch, tx).grad_fn)
