"""Side by side with torch: the same snippet run with ``torch`` and with ``gradtool``
must give the same values, error types and messages (autograd corner cases)."""

import warnings

import numpy as np
import pytest

import gradtool as gt

torch = pytest.importorskip("torch")


def _outcome(fn, lib, warnings_too=True):
    """What ``fn(lib)`` gives: a nested structure of arrays/values, or (error type, message)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = _plain(fn(lib))
        except (RuntimeError, TypeError, ValueError, IndexError) as err:
            kind = next(c for c in type(err).__mro__ if c.__module__ == "builtins")
            result = ("error", kind.__name__, str(err).split("\n")[0])
    return result, [str(w.message)[:60] for w in caught] if warnings_too else []


def _plain(value):
    if isinstance(value, (torch.Tensor, gt.Tensor)):
        return ("tensor", value.detach().numpy().tolist(), value.requires_grad)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def same(fn, warnings_too=True):
    expected = _outcome(fn, torch, warnings_too)
    got = _outcome(fn, gt, warnings_too)
    assert got == expected


def tensor(lib, values, **kw):
    return lib.tensor(values, dtype=lib.float64, **kw)


# ---- tensor hooks -------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["size", "dtype", "int"])
def test_tensor_hook_returning_a_bad_value(bad):
    replace = {"size": lambda g: g.sum(), "dtype": lambda g: g.float(), "int": lambda g: 3}[bad]

    def fn(lib):
        x = tensor(lib, [1., 2.], requires_grad=True)
        x.register_hook(replace)
        (x * 3).sum().backward()
        return x.grad
    same(fn)


def test_non_leaf_hook_returning_a_bad_value():
    def fn(lib):
        x = tensor(lib, [1., 2.], requires_grad=True)
        y = x * 2
        y.register_hook(lambda g: g[:1])
        (y * 3).sum().backward()
    same(fn)


# ---- backward / grad arguments ------------------------------------------------------------
def test_backward_inputs_non_leaf_gets_grad():
    def fn(lib):
        x = tensor(lib, [1., 2.], requires_grad=True)
        y = x * 2
        (y * y).sum().backward(inputs=[y])
        return x.grad, y.grad
    same(fn)


def test_backward_inputs_empty():
    def fn(lib):
        x = tensor(lib, [1., 2.], requires_grad=True)
        (x * x).sum().backward(inputs=[])
    same(fn)


def test_grad_unused_names_the_index():
    def fn(lib):
        x = tensor(lib, [1., 2.], requires_grad=True)
        z = tensor(lib, [1., 2.], requires_grad=True)
        return lib.autograd.grad((x * x).sum(), [x, z])
    same(fn)


def test_grad_materialize_refuses_allow_unused_false():
    def fn(lib):
        x = tensor(lib, [1., 2.], requires_grad=True)
        z = tensor(lib, [1., 2.], requires_grad=True)
        return lib.autograd.grad((x * x).sum(), [x, z], allow_unused=False,
                                 materialize_grads=True)
    same(fn)


@pytest.mark.parametrize("gradient", [1.0, [1.0, 2.0], "text", (None,)])
def test_backward_gradient_must_be_a_tensor(gradient):
    def fn(lib):
        x = tensor(lib, [1., 2.], requires_grad=True)
        (x * 2).backward(gradient)
        return x.grad
    same(fn)


def test_non_leaf_grad_warning_only_when_grad_is_none():
    def fn(lib):
        x = tensor(lib, [1., 2.], requires_grad=True)
        y = x * 2
        (y * y).sum().backward(inputs=[y])
        return y.grad
    same(fn)


def test_accumulating_into_a_grad_with_a_graph_is_in_place():
    def fn(lib):
        x = tensor(lib, [1., 2.], requires_grad=True)
        (x ** 3).sum().backward(create_graph=True)
        first = x.grad
        (x ** 2).sum().backward()
        return x.grad, x.grad is first
    same(fn, warnings_too=False)   # torch's reference-cycle warning is once per process


# ---- requires_grad on integer tensors -----------------------------------------------------
@pytest.mark.parametrize("how", ["method", "setter", "tensor", "zeros", "parameter"])
def test_integer_tensors_cannot_require_grad(how):
    def fn(lib):
        x = lib.tensor([1, 2])
        if how == "method":
            x.requires_grad_()
        elif how == "setter":
            x.requires_grad = True
        elif how == "tensor":
            lib.tensor([1, 2], requires_grad=True)
        elif how == "zeros":
            lib.zeros(2, dtype=lib.int64, requires_grad=True)
        else:
            lib.nn.Parameter(x)
    same(fn)


# ---- custom Functions ---------------------------------------------------------------------
def _function(lib, forward, backward):
    return type("Fn", (lib.autograd.Function,), {"forward": staticmethod(forward),
                                                 "backward": staticmethod(backward)})


@pytest.mark.parametrize("returned", ["float", "array"])
def test_function_backward_returning_a_non_tensor(returned):
    def fn(lib):
        value = (lambda g: 3.0) if returned == "float" else (lambda g: g.detach().numpy())
        f = _function(lib, lambda ctx, x: x * 2, lambda ctx, g: value(g))
        x = tensor(lib, [1., 2.], requires_grad=True)
        f.apply(x).sum().backward()
    same(fn)


def test_function_gradient_for_a_non_tensor_input():
    def fn(lib):
        f = _function(lib, lambda ctx, x, k: x * k, lambda ctx, g: (g, g))
        x = tensor(lib, [1., 2.], requires_grad=True)
        f.apply(x, 3).sum().backward()
    same(fn)


def test_function_saving_a_non_tensor():
    def forward(ctx, x):
        ctx.save_for_backward(x, 3)
        return x * 2

    def fn(lib):
        f = _function(lib, forward, lambda ctx, g: g)
        f.apply(tensor(lib, [1., 2.], requires_grad=True))
    same(fn)


def test_function_mark_dirty_on_a_leaf():
    def forward(ctx, x):
        x.mul_(2)
        ctx.mark_dirty(x)
        return x

    def fn(lib):
        f = _function(lib, forward, lambda ctx, g: g * 2)
        f.apply(tensor(lib, [1., 2.], requires_grad=True))
    same(fn)


def test_function_legacy_instantiation_message():
    def fn(lib):
        cls = type("Legacy", (lib.autograd.Function,), {"forward": lambda self, x: x})
        cls()(tensor(lib, [1.]))
    got, expected = _outcome(fn, gt), _outcome(fn, torch)
    assert got[0] == expected[0]
    assert [w.split(">")[1] for w in got[1]] == [w.split(">")[1] for w in expected[1]]
