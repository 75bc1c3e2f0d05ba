"""The seed examples (PyTorch autograd posts), as tests of the engine."""

import numpy as np
import pytest

import gradtool as gt


def test_autograd_basics_mean_of_3y2():
    x = gt.tensor([0.5, -1.0, 2.0], requires_grad=True)
    y = x + 2
    z = y * y * 3
    out = z.mean()
    assert y.grad_fn.name() == "AddBackward0"
    assert z.grad_fn.name() == "MulBackward0"
    assert out.grad_fn.name() == "MeanBackward0"
    assert x.grad is None
    out.backward()
    # d/dx mean(3 (x+2)^2) = 6 (x + 2) / 3 = 2 (x + 2)
    np.testing.assert_allclose(x.grad.numpy(), 2 * (np.array([0.5, -1.0, 2.0]) + 2))


def test_jacobian_vector_product_example():
    x = gt.randn(3, requires_grad=True)
    y = x * 2
    for _ in range(10):
        y = y * 2
    v = gt.tensor([0.1, 1.0, 0.0001], dtype=gt.float32)
    y.backward(v)
    np.testing.assert_allclose(x.grad.numpy(), 2048 * v.numpy().astype(np.float64))


def test_backward_on_non_scalar_needs_gradient():
    x = gt.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar "
                                           "outputs"):
        (x * 2).backward()


def test_gradients_accumulate_and_can_be_zeroed():
    x = gt.ones(2, 2, requires_grad=True)
    for expected in (4.0, 8.0, 12.0):
        (x * 4).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), np.full((2, 2), expected))
    x.grad.zero_()
    np.testing.assert_allclose(x.grad.numpy(), 0.0)
    x.grad = None
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2.0)


def test_second_backward_needs_retain_graph():
    x = gt.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second "
                                           "time .*retain_graph=True"):
        y.backward()


def test_backward_on_tensor_without_grad():
    x = gt.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad and "
                                           "does not have a grad_fn"):
        (x * 2).sum().backward()


def test_linear_regression_converges_to_w_2():
    x = gt.tensor([1.0, 2.0, 3.0, 4.0])
    y = 2 * x
    w = gt.tensor(0.0, requires_grad=True)
    for _ in range(100):
        loss = ((w * x - y) ** 2).mean()
        loss.backward()
        with gt.no_grad():
            w -= 0.01 * w.grad
        w.grad.zero_()
    assert abs(w.item() - 2.0) < 1e-3
    assert loss.item() < 1e-5


def test_two_layer_net_with_mm_and_clamp_loses_loss():
    gt.manual_seed(0)
    n, d_in, h, d_out = 64, 1000, 100, 10
    x = gt.randn(n, d_in)
    y = gt.randn(n, d_out)
    w1 = gt.randn(d_in, h, requires_grad=True)
    w2 = gt.randn(h, d_out, requires_grad=True)
    lr = 1e-6
    losses = []
    for _ in range(50):
        y_pred = x.mm(w1).clamp(min=0).mm(w2)
        loss = (y_pred - y).pow(2).sum()
        losses.append(loss.item())
        loss.backward()
        with gt.no_grad():
            w1 -= lr * w1.grad
            w2 -= lr * w2.grad
            w1.grad.zero_()
            w2.grad.zero_()
    assert losses[-1] < 0.1 * losses[0]


class LegendrePolynomial3(gt.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)


def test_legendre_fit_with_custom_p3():
    x = gt.linspace(-np.pi, np.pi, 2000)
    y = gt.sin(x)
    a = gt.full((), 0.0, requires_grad=True)
    b = gt.full((), -1.0, requires_grad=True)
    c = gt.full((), 0.0, requires_grad=True)
    d = gt.full((), 0.3, requires_grad=True)
    lr = 5e-6
    for _ in range(2000):
        y_pred = a + b * LegendrePolynomial3.apply(c + d * x)
        loss = (y_pred - y).pow(2).sum()
        loss.backward()
        with gt.no_grad():
            for p in (a, b, c, d):
                p -= lr * p.grad
                p.grad = None
    assert y_pred.grad_fn.next_functions[1][0].next_functions[1][0].name() == \
        "LegendrePolynomial3Backward"
    # reference run (the PyTorch tutorial converges to about these coefficients)
    np.testing.assert_allclose([a.item(), b.item(), c.item(), d.item()],
                               [0.0, -2.208, 0.0, 0.255], atol=0.02)
    assert loss.item() < 10.0


class MyReLU(gt.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return input.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad_input[input < 0] = 0
        return grad_input


def test_my_relu():
    x = gt.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    y = MyReLU.apply(x)
    assert y.grad_fn.name() == "MyReLUBackward"
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 1.0, 1.0])


class LinearFunction(gt.autograd.Function):
    @staticmethod
    def forward(ctx, input, weight, bias=None):
        ctx.save_for_backward(input, weight, bias)
        output = input.mm(weight.t())
        if bias is not None:
            output += bias.unsqueeze(0).expand_as(output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        input, weight, bias = ctx.saved_tensors
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = grad_output.mm(weight)
        if ctx.needs_input_grad[1]:
            grad_weight = grad_output.t().mm(input)
        if bias is not None and ctx.needs_input_grad[2]:
            grad_bias = grad_output.sum(0)
        return grad_input, grad_weight, grad_bias


def test_linear_function_matches_builtin_ops():
    x = gt.randn(4, 3, requires_grad=True)
    w = gt.randn(2, 3, requires_grad=True)
    b = gt.randn(2, requires_grad=True)
    LinearFunction.apply(x, w, b).pow(2).sum().backward()
    grads = [t.grad.numpy().copy() for t in (x, w, b)]
    for t in (x, w, b):
        t.grad = None
    (x.mm(w.t()) + b).pow(2).sum().backward()
    for got, t in zip(grads, (x, w, b)):
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-12)


class MulConstant(gt.autograd.Function):
    @staticmethod
    def forward(ctx, tensor, constant):
        ctx.constant = constant
        return tensor * constant

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * ctx.constant, None


def test_mul_constant():
    x = gt.tensor([1.0, 2.0], requires_grad=True)
    y = MulConstant.apply(x, 5.5)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.5, 5.5])


def test_hooks_capture_and_replace_gradients():
    x = gt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    seen = []
    h1 = y.register_hook(lambda g: seen.append(g.numpy().copy()))
    h2 = x.register_hook(lambda g: g * 100)
    y.sum().backward()
    np.testing.assert_allclose(seen[0], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(x.grad.numpy(), [200.0, 200.0, 200.0])
    h1.remove()
    h2.remove()
    x.grad = None
    (x * 2).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0, 2.0])


def test_no_grad_detach_requires_grad_():
    x = gt.randn(3, requires_grad=True)
    with gt.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    z = x.detach()
    assert not z.requires_grad and z.grad_fn is None
    assert np.shares_memory(z.numpy(), x.detach().numpy())
    a = gt.randn(2)
    assert not a.requires_grad
    a.requires_grad_()
    assert a.requires_grad and a.is_leaf
    b = a * 2
    with pytest.raises(RuntimeError, match="only change requires_grad flags of leaf"):
        b.requires_grad_(False)
    with gt.set_grad_enabled(False):
        assert not (a * 2).requires_grad
    assert gt.is_grad_enabled()

    @gt.no_grad()
    def doubled(t):
        return t * 2
    assert not doubled(a).requires_grad
    with gt.no_grad():
        with gt.enable_grad():
            assert (a * 2).requires_grad
