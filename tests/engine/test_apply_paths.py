"""The fast paths of ``apply`` (one Tensor, two Tensors, the arithmetic operators) record
the same backward node as its general path, step by step: edges, output numbers, saved
values and their versions, the saved output, broadcast shapes."""

import numpy as np
import pytest

import gradtool as gt
from gradtool.engine import primitive as P
from gradtool.engine.prims import elementwise, linalg, reduce, shape
from gradtool.engine.primitive import ShapeOnly
from gradtool.engine.tensor import _make


def general(prim, args, params=P._EMPTY):
    """``apply``'s general path, whatever the arguments."""
    datas, _, _ = P._unwrap(args)
    out = _make(P._run_forward(prim, datas, params))
    P._record_node(prim, args, datas, params, out)
    return out


def _same_saved(x, y):
    if isinstance(x, ShapeOnly):
        return isinstance(y, ShapeOnly) and (x.shape, x.dtype) == (y.shape, y.dtype)
    if isinstance(x, np.ndarray):
        return x is y
    return x == y


def assert_same_node(fast, slow):
    n, m = fast.grad_fn, slow.grad_fn
    assert type(n) is type(m) and fast.requires_grad == slow.requires_grad
    assert [f for f, _ in n.next_functions] == [f for f, _ in m.next_functions]
    assert [k for _, k in n.next_functions] == [k for _, k in m.next_functions]
    assert n.params == m.params
    # broadcast shapes matter for the inputs that get a gradient (the others have no edge)
    edges = [f is not None for f, _ in n.next_functions]
    if n.meta is None:
        assert m.meta is None or not any(s for s, e in zip(m.meta, edges) if e)
    else:
        assert [s for s, e in zip(n.meta, edges) if e] == [s for s, e in zip(m.meta, edges) if e]
    if n.saved is None:
        assert m.saved is None
    else:
        assert all(_same_saved(a, b) for a, b in zip(n.saved, m.saved, strict=True))
    for name in ("vcs",):
        a, b = getattr(n, name), getattr(m, name)
        assert (a is None and (b is None or all(v is None for v in b))) or \
            all(u is v for u, v in zip(a, b, strict=True))
    if n.vcs is not None:
        assert tuple(n.versions) == tuple(m.versions)
    assert (n.out_data is None) == (m.out_data is None)
    np.testing.assert_array_equal(fast.detach().numpy(), slow.detach().numpy())


def _leaf(values, rg=True):
    return gt.tensor(np.asarray(values, dtype=np.float64), requires_grad=rg)


def _second_output():
    """A tensor that is output 1 of a multi-output node (next_nrs must name it)."""
    return gt.unbind(_leaf([[1.0, 2.0, 0.5], [3.0, 4.0, 1.5]]) * 1.0, 0)[1]


@pytest.mark.parametrize("prim, params", [
    (elementwise.exp, {}), (elementwise.tanh, {}), (elementwise.neg, {}),
    (shape.reshape, {"shape": (3, 1)}), (reduce.sum_dim, {"dim": (0,), "keepdim": True}),
    (elementwise.pow_scalar, {"exponent": 2.5})])
@pytest.mark.parametrize("make", [lambda: _leaf([0.5, 1.5, 2.5]),
                                  lambda: _leaf([0.5, 1.5, 2.5]) * 2.0,
                                  _second_output])
def test_one_tensor_path_records_the_general_node(prim, params, make):
    a = make()
    assert_same_node(P._apply_one(prim, a, params), general(prim, (a,), params))


@pytest.mark.parametrize("prim", [linalg.mm, elementwise.mul, elementwise.add, elementwise.div])
@pytest.mark.parametrize("grads", [(True, True), (True, False), (False, True)])
def test_two_tensor_path_records_the_general_node(prim, grads):
    a = _leaf([[1.0, 2.0], [3.0, 4.0]], grads[0])
    b = _leaf([[0.5, -1.0], [2.0, 1.5]], grads[1])
    assert_same_node(P._apply_two(prim, a, b, P._EMPTY), general(prim, (a, b)))


@pytest.mark.parametrize("prim", [elementwise.add, elementwise.sub, elementwise.mul,
                                  elementwise.div])
@pytest.mark.parametrize("operands", [
    lambda: (_leaf([[1.0], [2.0]]), _leaf([0.5, 1.5, 2.5])),          # broadcast: meta
    lambda: (_leaf([1.0, 2.0]), 1.5), lambda: (2.0, _leaf([1.0, 2.0])),
    lambda: (_second_output(), _leaf([3.0, 4.0, 5.0], rg=False))])
def test_operator_path_records_the_general_node(prim, operands):
    a, b = operands()
    assert_same_node(P.apply_binary(prim, a, b), general(prim, (a, b)))
