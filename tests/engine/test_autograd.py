"""Engine semantics beyond the seeds: grad API, higher order, hooks, errors, custom Functions."""

import gc
import weakref

import numpy as np
import pytest

import gradtool as gt


def test_autograd_grad_returns_without_accumulating():
    x = gt.tensor([1.0, 2.0], requires_grad=True)
    y = (x ** 3).sum()
    (g,) = gt.autograd.grad(y, x)
    np.testing.assert_allclose(g.numpy(), [3.0, 12.0])
    assert x.grad is None


def test_grad_of_unused_input():
    x = gt.tensor([1.0], requires_grad=True)
    z = gt.tensor([1.0], requires_grad=True)
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        gt.autograd.grad(y, [x, z], retain_graph=True)
    gx, gz = gt.autograd.grad(y, [x, z], allow_unused=True)
    assert gz is None and gx.item() == 2.0


def test_grad_wrt_non_leaf():
    x = gt.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    y = (h * h).sum()
    (gh,) = gt.autograd.grad(y, h)
    np.testing.assert_allclose(gh.numpy(), 2 * h.detach().numpy())


def test_create_graph_gives_higher_derivatives():
    x = gt.tensor([0.3, -1.2], requires_grad=True)
    y = (gt.sin(x) * x).sum()
    (g,) = gt.autograd.grad(y, x, create_graph=True)
    assert g.requires_grad
    (h,) = gt.autograd.grad(g.sum(), x, create_graph=True)
    (t,) = gt.autograd.grad(h.sum(), x)
    xs = x.detach().numpy()
    np.testing.assert_allclose(g.detach().numpy(), np.cos(xs) * xs + np.sin(xs))
    np.testing.assert_allclose(h.detach().numpy(), 2 * np.cos(xs) - xs * np.sin(xs))
    np.testing.assert_allclose(t.numpy(), -3 * np.sin(xs) - xs * np.cos(xs))


def test_backward_create_graph_then_backward_through_grad():
    x = gt.tensor(2.0, requires_grad=True)
    y = x ** 3
    y.backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    x.grad = None
    g.backward()
    assert x.grad.item() == pytest.approx(12.0)


def test_retain_grad_and_non_leaf_grad_warning():
    x = gt.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    z = y * 3
    with pytest.warns(UserWarning, match="is not a leaf Tensor is being accessed"):
        assert z.grad is None
    y.retain_grad()
    z.sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [3.0, 3.0])


def test_inplace_on_saved_tensor_is_detected():
    x = gt.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    z = y * y
    with gt.no_grad():
        y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*is at version 1; "
                                           "expected version 0"):
        z.sum().backward()


def test_inplace_through_a_view_is_detected():
    x = gt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.exp()
    v = y[0:2]
    with gt.no_grad():
        v.mul_(2)
    with pytest.raises(RuntimeError, match="output 0 of Exp,"):
        y.sum().backward()


def test_inplace_on_leaf_requiring_grad():
    x = gt.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used "
                                           "in an in-place operation."):
        x.mul_(2)
    with gt.no_grad():
        x.mul_(2)
    assert x.item() == 2.0


def test_differentiable_inplace_on_non_leaf():
    x = gt.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.mul_(x)          # y = 2x * x
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])
    x.grad = None
    y = x * 1
    y[0] = 5.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 1.0])


def test_node_structure_and_accumulate_grad_shared():
    x = gt.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    (a, _), (b, _) = y.grad_fn.next_functions
    assert a is b and a.name() == "AccumulateGrad" and a.variable is x
    assert x.grad_fn is None
    c = gt.tensor([1.0, 2.0])
    z = x + c
    assert z.grad_fn.next_functions[1] == (None, 0)


def test_graph_release_frees_saved_arrays():
    x = gt.randn(1000, requires_grad=True)
    y = x.exp()
    z = (y * y).sum()
    exp_node = z.grad_fn.next_functions[0][0].next_functions[0][0]
    assert exp_node.name() == "ExpBackward0"
    ref = weakref.ref(exp_node.out_data)
    del y
    z.backward()
    gc.collect()
    assert ref() is None


def test_retain_graph_keeps_saved_arrays():
    x = gt.randn(10, requires_grad=True)
    y = x.exp()
    node = y.grad_fn
    y.sum().backward(retain_graph=True)
    assert node.out_data is not None
    y.sum().backward()
    assert node.out_data is None


def test_million_op_chain_backward_without_recursion():
    x = gt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x
    for _ in range(1_000_000):
        y = y * 1.0000001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), (1.0000001) ** 1_000_000, rtol=1e-9)


def test_anomaly_mode_names_the_failing_node():
    x = gt.tensor([0.0, 1.0], requires_grad=True)
    with gt.autograd.set_detect_anomaly(True):
        y = gt.sqrt(x) * 0.0
        with pytest.raises(RuntimeError, match="Function 'SqrtBackward0' returned nan values "
                                               "in its 0th output."):
            with pytest.warns(RuntimeWarning, match="Traceback of forward call"):
                y.sum().backward()


def test_tensor_hook_on_leaf_runs_before_accumulation_and_handle_removes():
    x = gt.tensor([1.0], requires_grad=True)
    calls = []
    handle = x.register_hook(lambda g: calls.append(g.item()))
    (x * 3).sum().backward()
    handle.remove()
    (x * 3).sum().backward()
    assert calls == [3.0]
    assert x.grad.item() == 6.0


def test_node_hooks():
    x = gt.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    seen = []
    y.grad_fn.register_hook(lambda gi, go: seen.append((gi[0].numpy().copy(),
                                                        go[0].numpy().copy())))
    y.grad_fn.register_prehook(lambda go: (go[0] * 10,))
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [20.0, 20.0])
    np.testing.assert_allclose(seen[0][1], [10.0, 10.0])


# ---- custom Functions -------------------------------------------------------------------------
class WrongShape(gt.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g.reshape(-1, 1)


class WrongCount(gt.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g, g


class Broadcasting(gt.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return (g * 2).expand(4, 3)


def test_function_errors_use_torch_wording():
    x = gt.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Function WrongShapeBackward returned an invalid "
                                           r"gradient at index 0 - got \[3, 1\] but expected "
                                           r"shape compatible with \[3\]"):
        WrongShape.apply(x).sum().backward()
    with pytest.raises(RuntimeError, match=r"function WrongCountBackward returned an incorrect "
                                           r"number of gradients \(expected 1, got 2\)"):
        WrongCount.apply(x).sum().backward()


def test_function_gradient_broadcast_is_summed_down():
    x = gt.randn(3, requires_grad=True)
    Broadcasting.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [8.0, 8.0, 8.0])


class SortWithIndices(gt.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        order = gt.from_numpy(np.argsort(x.detach().numpy()))
        ctx.mark_non_differentiable(order)
        ctx.save_for_backward(order)
        return x[order], order

    @staticmethod
    def backward(ctx, g, _g_order):
        (order,) = ctx.saved_tensors
        out = gt.zeros_like(g)
        out[order] = g
        return out


def test_multiple_outputs_and_non_differentiable():
    x = gt.tensor([3.0, 1.0, 2.0], requires_grad=True)
    values, order = SortWithIndices.apply(x)
    assert values.requires_grad and not order.requires_grad
    (values * gt.tensor([1.0, 10.0, 100.0])).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [100.0, 1.0, 10.0])


class SetupContextSquare(gt.autograd.Function):
    @staticmethod
    def forward(x):
        return x * x

    @staticmethod
    def setup_context(ctx, inputs, output):
        (x,) = inputs
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g

    @staticmethod
    def jvp(ctx, x_t):
        (x,) = ctx.saved_tensors
        return 2 * x * x_t


def test_setup_context_and_jvp():
    x = gt.tensor([1.5, -2.0], requires_grad=True)
    SetupContextSquare.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, -4.0])
    _, tangent = gt.functional.jvp(SetupContextSquare.apply, gt.tensor([1.5, -2.0]),
                                   gt.tensor([1.0, 1.0]))
    np.testing.assert_allclose(tangent.numpy(), [3.0, -4.0])


class OnceCube(gt.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    @gt.autograd.once_differentiable
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x ** 2 * g


def test_once_differentiable_refuses_double_backward():
    x = gt.tensor([2.0], requires_grad=True)
    v = gt.tensor([1.0], requires_grad=True)
    (g,) = gt.autograd.grad(OnceCube.apply(x), x, grad_outputs=v, create_graph=True)
    assert g.item() == 12.0
    with pytest.raises(RuntimeError, match="marked with @once_differentiable"):
        g.sum().backward()


def test_saved_tensors_after_release():
    x = gt.tensor([2.0], requires_grad=True)
    y = OnceCube.apply(x)
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


# ---- forward mode and functional API ------------------------------------------------------------
def test_forward_ad_dual_numbers():
    from gradtool.autograd import forward_ad as fwAD
    x = gt.tensor([0.5, 1.5])
    v = gt.tensor([1.0, 2.0])
    with fwAD.dual_level():
        dual = fwAD.make_dual(x, v)
        out = (dual.exp() * dual).sum()
        primal, tangent = fwAD.unpack_dual(out)
    xs = x.numpy()
    assert tangent.item() == pytest.approx(float(((np.exp(xs) * (xs + 1)) * [1, 2]).sum()))
    assert primal.item() == pytest.approx(float((np.exp(xs) * xs).sum()))


def test_functional_api_shapes_and_values():
    def f(a, b):
        return (a * b).exp(), a.sum() * b
    a, b = gt.tensor([0.1, 0.2]), gt.tensor([1.0, -1.0])
    jac = gt.functional.jacobian(f, (a, b))
    assert len(jac) == 2 and len(jac[0]) == 2
    assert tuple(jac[0][0].shape) == (2, 2)
    np.testing.assert_allclose(jac[0][0].numpy(), np.diag(np.exp([0.1, -0.2]) * [1.0, -1.0]))
    out, vjp = gt.functional.vjp(lambda x: x ** 2, gt.tensor([1.0, 3.0]), gt.tensor([1.0, 1.0]))
    np.testing.assert_allclose(vjp.numpy(), [2.0, 6.0])
    _, hvp = gt.functional.hvp(lambda x: (x ** 3).sum(), gt.tensor([1.0, 2.0]),
                               gt.tensor([1.0, 0.0]))
    np.testing.assert_allclose(hvp.numpy(), [6.0, 0.0])
    hess = gt.functional.hessian(lambda x: (x[0] * x[1] ** 2), gt.tensor([1.0, 2.0]))
    np.testing.assert_allclose(hess.numpy(), [[0.0, 4.0], [4.0, 2.0]])


def test_functional_matches_torch():
    torch = pytest.importorskip("torch")
    xs = np.array([0.3, -0.7, 1.1])

    def f_gt(x):
        return (gt.tanh(x) * x.sum()).exp()

    def f_torch(x):
        return (torch.tanh(x) * x.sum()).exp()
    j = gt.functional.jacobian(f_gt, gt.tensor(xs)).numpy()
    jt = torch.autograd.functional.jacobian(f_torch, torch.tensor(xs)).numpy()
    np.testing.assert_allclose(j, jt, rtol=1e-12)
    h = gt.functional.hessian(lambda x: f_gt(x).sum(), gt.tensor(xs)).numpy()
    ht = torch.autograd.functional.hessian(lambda x: f_torch(x).sum(), torch.tensor(xs)).numpy()
    np.testing.assert_allclose(h, ht, rtol=1e-10)


def test_repr_in_torch_style():
    x = gt.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"
    assert repr(x * 2) == "tensor([2., 4.], grad_fn=<MulBackward0>)"
    assert repr(gt.tensor([1, 2])) == "tensor([1, 2])"
    assert "dtype=gradtool.float32" in repr(gt.ones(2, dtype=gt.float32))


def test_numpy_on_requires_grad_tensor():
    x = gt.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Can't call numpy\(\) on Tensor that requires grad"):
        x.numpy()
    with gt.no_grad():          # torch: allowed with grad mode off
        assert x.numpy().tolist() == [1.0, 1.0]


def test_numpy_of_a_saved_tensor_in_a_custom_backward():
    """A backward runs with grad mode off: .numpy() of a saved input works there, as in
    torch (numpy code in backward is common in custom Functions)."""
    class NumpyBackward(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 2

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * gt.from_numpy(2 * x.numpy())

    x = gt.tensor([1.0, -3.0], requires_grad=True)
    NumpyBackward.apply(x * 1).sum().backward()
    NumpyBackward.apply(x).sum().backward()
    assert x.grad.tolist() == [4.0, -12.0]


class Coupled(gt.autograd.Function):
    """A backward that mixes rows when handed a batch (grad.sum() over everything)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x.sum()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x.sum() + (g * x).sum()


class Cubic(gt.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 0.5 * (5 * x ** 3 - 3 * x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 1.5 * (5 * x ** 2 - 1)


@pytest.mark.parametrize("fn", [Cubic, Coupled], ids=["elementwise", "coupled"])
def test_batched_cotangents_through_python_backward(fn):
    x = gt.tensor([0.3, -0.5, 1.2, 2.0, 0.7], requires_grad=True)
    out = fn.apply(x)
    eye = gt.tensor(np.eye(5))
    (batched,) = gt.autograd.grad(out, x, eye, retain_graph=True, is_grads_batched=True)
    rows = [gt.autograd.grad(out, x, eye[k], retain_graph=True)[0].numpy() for k in range(5)]
    np.testing.assert_allclose(batched.numpy(), np.stack(rows), rtol=1e-12)


def test_torch_import_paths_of_gradcheck_and_once_differentiable():
    from gradtool.autograd.function import once_differentiable
    assert once_differentiable is gt.autograd.once_differentiable
    x = gt.randn(4, requires_grad=True)
    assert gt.autograd.gradcheck(gt.tanh, (x,))
    assert gt.autograd.gradgradcheck(gt.tanh, (x,))
