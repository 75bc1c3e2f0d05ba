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


def general_apply(prim, args, params=P._EMPTY):
    """``apply``'s general path with its conditions for recording a node (an input that
    requires grad, grad mode, a differentiable primitive, a floating output)."""
    datas, need, _ = P._unwrap(args)
    out = _make(P._run_forward(prim, datas, params))
    if need and gt.is_grad_enabled() and prim.differentiable and \
            out._data.dtype.kind in "fc":
        P._record_node(prim, args, datas, params, out)
    return out


def _two_input_samples():
    """(prim, first input, constant second input, params) for every sample of the op table
    whose first input is an array (nll_loss's target, gather's index, a mask, a number, or
    an array standing for a Tensor that needs no gradient)."""
    from gradtool.engine import ops  # noqa: F401  (registers every primitive)
    cases = []
    for name in sorted(P.REGISTRY):
        prim = P.REGISTRY[name]
        if prim.sample is None:
            continue
        for k, (args, params) in enumerate(prim.sample()):
            if len(args) == 2 and isinstance(args[0], np.ndarray) \
                    and np.asarray(args[0]).dtype.kind in "fc":
                cases.append(pytest.param(prim, args[0], args[1], params, id=f"{name}-{k}"))
    return cases


@pytest.mark.parametrize("prim, first, const, params", _two_input_samples())
@pytest.mark.parametrize("kind", ["leaf", "nonleaf", "no-grad", "second-output"])
def test_tensor_and_constant_path_records_the_general_node(prim, first, const, params, kind):
    """``apply(prim, (tensor, constant))`` takes ``_apply_const``: the same node, saved
    values, versions, broadcast shapes and output as the general path, for every two-input
    sample of the op table (and the same error when the forward refuses)."""
    def make():
        if kind == "second-output":
            both = gt.stack([_leaf(first), _leaf(first) * 2.0]) * 1.0
            return gt.unbind(both, 0)[1]
        a = _leaf(first, rg=kind != "no-grad")
        return a * 1.0 if kind == "nonleaf" else a
    a = make()
    fast = P._apply_const(prim, a, const, params)
    slow = general_apply(prim, (a, const), params)
    if slow.grad_fn is None:
        assert fast.grad_fn is None and not fast.requires_grad
        np.testing.assert_array_equal(fast.numpy(), slow.numpy())
        assert fast.dtype == slow.dtype
    else:
        assert_same_node(fast, slow)
        assert fast.dtype == slow.dtype


def test_apply_takes_the_constant_path_and_keeps_errors():
    """A Tensor and an array through ``apply``: the constant path's node, and the general
    path's errors (a wrong target dtype, an out-of-range index, a shape mismatch)."""
    from gradtool.engine.prims import loss
    x = _leaf([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]])
    target = np.array([2, 0])
    params = {"reduction": "mean", "weight": None, "ignore_index": -100}
    assert_same_node(P.apply(loss.nll_loss, (x, target), params),
                     general(loss.nll_loss, (x, target), params))
    for bad in (np.array([0.5, 1.0]), np.array([5, 0]), np.array([0, 1, 2])):
        with pytest.raises(Exception) as fast_error:
            P.apply(loss.nll_loss, (x, bad), params)
        with pytest.raises(Exception) as slow_error:
            general_apply(loss.nll_loss, (x, bad), params)
        assert type(fast_error.value) is type(slow_error.value)
        assert str(fast_error.value) == str(slow_error.value)


def test_constant_that_is_a_tensor_requiring_grad_takes_the_two_tensor_path():
    """A second argument that is a Tensor (one that requires grad, or an integer one) is no
    constant: it keeps its edge, as on the general path; the same values as an array do
    not get one."""
    from gradtool.engine.prims import elementwise as ew
    a, b = _leaf([1.0, 2.0]), _leaf([3.0, 4.0])
    out = P.apply(ew.mul, (a, b))
    assert all(f is not None for f, _ in out.grad_fn.next_functions)
    assert_same_node(out, general_apply(ew.mul, (a, b)))
    ints = gt.tensor([3, 4])
    assert_same_node(P.apply(ew.mul, (a, ints)), general_apply(ew.mul, (a, ints)))
    const = np.array([3.0, 4.0])
    c = P.apply(ew.mul, (a, const))
    assert c.grad_fn.next_functions[1][0] is None
    assert_same_node(c, general_apply(ew.mul, (a, const)))


@pytest.mark.parametrize("shape", [(3, 2), ((3, 2),), ([3, 2],), (-1,), (2, -1), (6, 1, 1),
                                   (np.int64(3), 2), (7,), (-1, -1), (0, -1), (4, -1),
                                   (-2, -3)])
def test_reshape_shapes_as_torch(shape):
    """reshape's shape argument (ints taken as they are, the rest converted, checked
    against the size: -1 inferred, a wrong size refused) as torch's."""
    torch = pytest.importorskip("torch")
    data = np.arange(6.0).reshape(2, 3)
    try:
        expected = tuple(torch.tensor(data).reshape(*shape).shape)
    except (RuntimeError, TypeError, ValueError) as exc:
        expected = type(exc)
    x = gt.tensor(data, requires_grad=True)
    try:
        y = x.reshape(*shape)
        ours = tuple(y.shape)
    except (RuntimeError, TypeError, ValueError) as exc:
        ours = RuntimeError if isinstance(exc, RuntimeError) else type(exc)
    if isinstance(expected, tuple):
        assert ours == expected
        y.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 3)))
    else:
        assert not isinstance(ours, tuple)
