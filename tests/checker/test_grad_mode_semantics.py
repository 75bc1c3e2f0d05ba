"""The numerical side calls the function as torch's gradcheck does: grad mode on, inputs
requiring grad as the user's.  A function that depends on that (``is_grad_enabled()``,
``y.requires_grad``, a hook on an intermediate, ``autograd.grad`` inside it) gets torch's
verdict, not a false failure or an error: in gradtool, through the torch bridge, in full and
fast mode."""

import numpy as np
import pytest

import gradtool as gt


def _functions(lib):
    """name -> (function of (x, w), torch's verdict)."""

    def grad_inside(x, w):              # a gradient as the output: force = -dE/dx
        energy = ((x ** 3) * w).sum()
        g, = lib.autograd.grad(energy, x, create_graph=True)
        return g

    def branch_on_grad_mode(x, w):      # the same function either way, by two formulas
        return x * w * 2 if lib.is_grad_enabled() else x * w * 3

    def reads_requires_grad(x, w):
        y = (x * w).sin()
        return y * float(y.requires_grad)

    def tensor_hook_doubles(x, w):      # a hook that makes the gradient wrong: must fail
        y = (x * w).sin()
        y.register_hook(lambda g: g * 2)
        return y * 1.5

    def node_hook_doubles(x, w):
        y = (x * w).sin()
        y.grad_fn.register_hook(lambda gi, go: tuple(None if g is None else g * 2 for g in gi))
        return y.cos()

    def tensor_hook_identity(x, w):     # a hook that changes nothing: must pass
        y = (x * w).sin()
        y.register_hook(lambda g: g)
        return y.exp()

    def backward_inside(x, w):          # a backward on a detached copy: w's value is used
        with lib.enable_grad():
            z = x.detach().requires_grad_()
            (z ** 2).sum().backward()
        return x * z.grad * w

    return {
        "grad_inside": (grad_inside, True),
        "branch_on_grad_mode": (branch_on_grad_mode, True),
        "reads_requires_grad": (reads_requires_grad, True),
        "tensor_hook_doubles": (tensor_hook_doubles, False),
        "node_hook_doubles": (node_hook_doubles, False),
        "tensor_hook_identity": (tensor_hook_identity, True),
        "backward_inside": (backward_inside, False),
    }


NAMES = list(_functions(gt))
SIZES = [3, 40]     # small batches run looped; larger ones batched and spot-checked


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_gradtool_verdict(name, fast, size):
    fn, expected = _functions(gt)[name]
    rng = np.random.default_rng(size)
    x = gt.tensor(rng.uniform(-1, 1, size), requires_grad=True)
    w = gt.tensor(rng.uniform(0.5, 1.5, size), requires_grad=True)
    assert gt.gradcheck(fn, (x, w), fast_mode=fast, raise_exception=False) is expected


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_same_verdict_as_torch_and_through_the_bridge(name, fast):
    torch = pytest.importorskip("torch")
    fn, expected = _functions(torch)[name]
    rng = np.random.default_rng(7)
    x = torch.tensor(rng.uniform(-1, 1, 5), dtype=torch.float64, requires_grad=True)
    w = torch.tensor(rng.uniform(0.5, 1.5, 5), dtype=torch.float64, requires_grad=True)
    theirs = torch.autograd.gradcheck(fn, (x, w), fast_mode=fast, raise_exception=False)
    assert theirs is expected
    assert gt.gradcheck(fn, (x, w), fast_mode=fast, raise_exception=False) is expected


def test_a_function_raising_without_grad_mode_is_not_an_error():
    """The batched evaluation runs without a graph; autograd.grad inside the function
    raises there, and the check goes on with plain calls (reported as the path taken)."""
    fn, _ = _functions(gt)["grad_inside"]
    x = gt.tensor(np.linspace(-1, 1, 30), requires_grad=True)
    w = gt.tensor(np.linspace(0.5, 1.5, 30), requires_grad=True)
    result = gt.check(fn, (x, w), mode="full")
    assert result.passed
    assert "looped" in result.path


def test_a_true_error_of_the_function_is_still_raised():
    def broken(x):
        if not gt.is_grad_enabled():
            return x * 2
        raise ValueError("broken at the top")
    x = gt.tensor(np.linspace(-1, 1, 30), requires_grad=True)
    with pytest.raises(Exception, match="broken at the top"):
        gt.gradcheck(broken, (x,))


@pytest.mark.parametrize("fast", [False, True])
def test_bridge_fast_mode_with_several_inputs(fast):
    """Fast mode perturbs several small inputs in one batch: the torch bridge runs it too
    (it raised a TypeError before)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    a = torch.randn(3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    c = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert gt.gradcheck(lambda a, b, c: (a * b).sin() + c.exp(), (a, b, c), fast_mode=fast)

    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            return g * b, g * b         # the second should be g * a

    assert gt.gradcheck(Wrong.apply, (a, b), fast_mode=fast, raise_exception=False) is False


@pytest.mark.parametrize("fast", [False, True])
def test_gradgradcheck_of_a_backward_that_needs_grad_mode(fast):
    """gradgradcheck's batched numerical side runs backwards without recording; a backward
    that needs grad mode (autograd.grad inside it) is then called as torch calls it."""

    def cube(lib):
        class Cube(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x ** 3

            @staticmethod
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                d, = lib.autograd.grad((x ** 3).sum(), x, create_graph=True)
                return g * d
        return Cube.apply

    x = gt.tensor(np.linspace(-1, 1, 6), requires_grad=True)
    assert gt.gradgradcheck(cube(gt), (x,), fast_mode=fast)
    torch = pytest.importorskip("torch")
    tx = torch.tensor(np.linspace(-1, 1, 6), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(cube(torch), (tx,), fast_mode=fast)
