"""The engine's fast paths (issue 14) give exactly what the general paths give, as torch does:
in-place arithmetic written with numpy's ``out=``, one-input ``apply``, the backward's
bookkeeping, and the gradient of a full sum as a zero-stride view."""

import warnings

import numpy as np
import pytest

import gradtool as gt
from gradtool.engine.backend import expand_dims

torch = pytest.importorskip("torch")


def pair(values, dtype="float32", requires_grad=False):
    g = gt.tensor(np.array(values, dtype=dtype), requires_grad=requires_grad)
    t = torch.tensor(np.array(values, dtype=dtype), requires_grad=requires_grad)
    return g, t


@pytest.mark.parametrize("method", ["add_", "sub_", "mul_", "div_"])
@pytest.mark.parametrize("other", ["python float", "python int", "same tensor", "0-d tensor",
                                   "float64 tensor", "broadcast row", "zero"])
def test_in_place_arithmetic_without_tracking_matches_torch(method, other):
    g, t = pair([[1.5, -2.0, 3.0], [0.25, 4.0, -1.0]])
    ident = id(g._data)
    version = g._version
    values = {"python float": (0.5, 0.5), "python int": (3, 3),
              "same tensor": pair([[2.0, 3.0, 4.0], [5.0, 6.0, 7.0]]),
              "0-d tensor": pair(2.5),
              "float64 tensor": pair([[2.0, 3.0, 4.0], [5.0, 6.0, 7.0]], "float64"),
              "broadcast row": pair([2.0, -3.0, 4.0]),
              "zero": (0.0, 0.0)}[other]
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # inf and NaN silently, as torch
        getattr(g, method)(values[0])
    getattr(t, method)(values[1])
    assert g.dtype == gt.float32 and id(g._data) == ident
    assert g._version == version + 1 == t._version
    np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-6)
    assert np.seterr()["divide"] == "warn"      # numpy's own state is left alone


def test_in_place_operators_under_no_grad_write_into_the_same_memory():
    w, tw = pair([1.0, 2.0, 3.0], requires_grad=True)
    (w * w).sum().backward()
    (tw * tw).sum().backward()
    grad = w.grad
    with gt.no_grad():
        w -= 0.1 * w.grad
        w.grad.zero_()
    with torch.no_grad():
        tw -= 0.1 * tw.grad
        tw.grad.zero_()
    assert w.grad is grad and w.is_leaf and w.requires_grad
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), rtol=1e-6)
    assert w._version == tw._version


def test_in_place_fast_path_keeps_torch_errors_and_tracking():
    i = gt.tensor([1, 2, 3])
    with pytest.raises(Exception, match="can't be cast to the desired output type"):
        i.sub_(0.5)
    with pytest.raises(Exception, match="doesn't match the broadcast shape"):
        gt.tensor([1.0, 2.0]).add_(gt.tensor([[1.0, 2.0], [3.0, 4.0]]))
    x = gt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(Exception, match="leaf Variable that requires grad"):
        x.mul_(2.0)
    y = x * 1.0
    y.mul_(3.0)                                 # tracked: recorded, not written blindly
    assert y.grad_fn.name() == "MulBackward0"
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_saved_tensor_modified_in_place_without_grad_is_still_detected():
    x = gt.tensor([1.0, 2.0], requires_grad=True)
    a = x * 1.0
    b = a * a                                   # saves a
    with gt.no_grad():
        a.add_(1.0)                             # the numpy path bumps the version too
    with pytest.raises(Exception, match="modified by an inplace operation"):
        b.sum().backward()


@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (0, 2)])
def test_full_sum_gradient_is_a_read_only_broadcast(shape):
    x = gt.tensor(np.arange(np.prod(shape), dtype=float).reshape(shape), requires_grad=True)
    x.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(shape))
    assert x.grad._data.flags.writeable and x.grad._data.flags.owndata
    grads = []
    y = x * 2
    y.register_hook(lambda g: grads.append(g))
    y.sum().backward()
    assert not grads[0]._data.flags.writeable and grads[0].shape == shape
    np.testing.assert_array_equal(x.grad.numpy(), np.full(shape, 3.0))


@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
@pytest.mark.parametrize("axis", [0, -1, 1, 2, -3, 5, (0,), (0, -1), (1, 0), (0, 0), (-1, -2)])
def test_expand_dims_matches_numpy(shape, axis):
    x = np.zeros(shape)
    try:
        expected = np.expand_dims(x, axis).shape
    except Exception as error:                  # noqa: BLE001  (numpy's error, whatever it is)
        with pytest.raises(type(error)):
            expand_dims(x, axis)
        return
    assert expand_dims(x, axis).shape == expected


@pytest.mark.parametrize("op", ["exp", "tanh", "sum", "reshape", "clamp"])
def test_one_input_ops_record_what_torch_records(op):
    g, t = pair([0.5, -1.0, 2.0], "float64", requires_grad=True)
    run = {"exp": lambda a: a.exp(), "tanh": lambda a: a.tanh(), "sum": lambda a: a.sum(),
           "reshape": lambda a: a.reshape(3, 1), "clamp": lambda a: a.clamp(min=0)}[op]
    out_g, out_t = run(g), run(t)
    assert out_g.grad_fn.name() == out_t.grad_fn.name()
    assert [n is None for n, _ in out_g.grad_fn.next_functions] == \
        [n is None for n, _ in out_t.grad_fn.next_functions]
    out_g.sum().backward()
    out_t.sum().backward()
    np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-12)
    with gt.no_grad():
        assert run(g).grad_fn is None
