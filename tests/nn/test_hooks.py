"""Module hooks: forward pre/post hooks, full backward (pre-)hooks, handles; compared with
torch's behaviour on the same modules."""

import warnings

import numpy as np
import pytest

import gradtool as gt
import gradtool.nn as nn

from .mirror import copy_weights, import_torch, to_torch


def mix_class(base):
    """A module of ``base`` (gt.nn or torch.nn) with two tensor inputs and a non-tensor
    one, and two outputs."""

    class Mix(base.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = base.Linear(3, 3)

        def forward(self, x, y, scale):
            h = self.lin(x) * y * scale
            return h.tanh(), h.sum(dim=1)
    return Mix


def test_forward_pre_hook_replaces_args_and_wraps_single_values():
    lin = nn.Linear(2, 2)
    seen = []
    h1 = lin.register_forward_pre_hook(lambda m, args: seen.append(("first", args)))
    h2 = lin.register_forward_pre_hook(lambda m, args: args[0] * 0)   # single value
    out = lin(gt.ones(1, 2))
    np.testing.assert_allclose(out._data, lin.bias._data[None])
    assert seen[0][0] == "first" and isinstance(seen[0][1], tuple)
    h2.remove()
    h1.remove()
    lin(gt.ones(1, 2))
    assert len(seen) == 1


def test_forward_hooks_order_replacement_prepend_and_kwargs():
    lin = nn.Linear(2, 2)
    order = []
    lin.register_forward_hook(lambda m, a, o: order.append("a"))
    lin.register_forward_hook(lambda m, a, o: order.append("b") or o * 0 + 7)
    lin.register_forward_hook(lambda m, a, o: order.append("first"), prepend=True)
    lin.register_forward_hook(lambda m, a, kw, o: order.append(("kw", kw)), with_kwargs=True)
    out = lin(gt.ones(1, 2))
    assert order == ["first", "a", "b", ("kw", {})]
    assert np.all(out._data == 7)

    class Kw(nn.Module):
        def forward(self, x, *, shift=0.0):
            return x + shift

    m = Kw()
    m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"shift": 5.0}),
                                with_kwargs=True)
    assert m(gt.zeros(1)).item() == 5.0
    with pytest.raises(RuntimeError, match="forward pre-hook must return None or a tuple"):
        bad = Kw()
        bad.register_forward_pre_hook(lambda mod, args, kwargs: 3, with_kwargs=True)
        bad(gt.zeros(1))


def _record(log, tag):
    def hook(module, *grads):
        log.append((tag,) + tuple(tuple(None if g is None else g.numpy().copy() for g in gs)
                                  for gs in grads))
    return hook


def test_full_backward_hooks_match_torch():
    torch = import_torch()
    ours, theirs = mix_class(nn)(), mix_class(torch.nn)().double()
    copy_weights(ours, theirs)
    x = gt.randn(4, 3, requires_grad=True)
    y = gt.randn(4, 3)                       # does not require grad: its grad_input is None
    logs = {"ours": [], "theirs": []}
    for model, key in ((ours, "ours"), (theirs, "theirs")):
        model.register_full_backward_pre_hook(_record(logs[key], "pre"))
        model.register_full_backward_hook(_record(logs[key], "post"))
    a, b = ours(x, y, 2.0)
    (a.sum() + (b ** 2).sum()).backward()
    xt, yt = to_torch(x), to_torch(y)
    at, bt = theirs(xt, yt, 2.0)
    (at.sum() + (bt ** 2).sum()).backward()
    assert [entry[0] for entry in logs["ours"]] == ["pre", "post"]
    assert [entry[0] for entry in logs["theirs"]] == ["pre", "post"]
    for mine, ref in zip(logs["ours"], logs["theirs"]):
        for group, group_ref in zip(mine[1:], ref[1:]):
            assert len(group) == len(group_ref)
            for g, gr in zip(group, group_ref):
                if g is None and gr is not None:
                    # torch passes zeros for a tensor input that does not require grad;
                    # gradtool passes None there (there is no gradient to speak of)
                    assert not np.any(gr)
                    continue
                assert (g is None) == (gr is None)
                if g is not None:
                    np.testing.assert_allclose(g, gr, rtol=1e-12)
    post = logs["ours"][1]
    assert post[1][1] is None and post[1][2] is None    # y and the float: no gradient
    np.testing.assert_allclose(x.grad._data, xt.grad.numpy(), rtol=1e-12)


def test_backward_hook_replacing_grad_input_reaches_inputs_as_torch():
    torch = import_torch()
    ours = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
                                 torch.nn.Linear(4, 2)).double()
    copy_weights(ours, theirs)

    def triple(module, grad_input, grad_output):
        return (grad_input[0] * 3,)

    ours[2].register_full_backward_hook(triple)
    theirs[2].register_full_backward_hook(triple)
    x = gt.randn(5, 3, requires_grad=True)
    xt = to_torch(x)
    ours(x).pow(2).sum().backward()
    theirs(xt).pow(2).sum().backward()
    np.testing.assert_allclose(x.grad._data, xt.grad.numpy(), rtol=1e-12)
    for p, pt in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad._data, pt.grad.numpy(), rtol=1e-12)


def test_backward_pre_hook_replacing_grad_output():
    lin = nn.Linear(3, 2)
    x = gt.randn(4, 3, requires_grad=True)
    lin(x).sum().backward()
    plain = x.grad._data.copy()
    x.grad = None
    lin.register_full_backward_pre_hook(lambda m, grad_output: (grad_output[0] * -2,))
    lin(x).sum().backward()
    np.testing.assert_allclose(x.grad._data, -2 * plain)
    np.testing.assert_allclose(lin.bias.grad._data, np.full(2, 4.0 - 2 * 4.0))


def test_removed_backward_hooks_never_fire_and_order_is_registration_order():
    lin = nn.Linear(2, 2)
    calls = []
    h1 = lin.register_full_backward_hook(lambda m, gi, go: calls.append(1))
    lin.register_full_backward_hook(lambda m, gi, go: calls.append(2))
    x = gt.randn(3, 2, requires_grad=True)
    lin(x).sum().backward()
    assert calls == [1, 2]
    h1.remove()
    lin(x).sum().backward()
    assert calls == [1, 2, 2]
    out = lin(x)
    lin._backward_hooks.clear()      # removed between forward and backward: still silent
    out.sum().backward()
    assert calls == [1, 2, 2]


def test_backward_hook_without_inputs_requiring_grad():
    lin = nn.Linear(2, 2)
    seen = []
    lin.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go[0].shape)))
    with pytest.warns(UserWarning, match="no inputs require gradients"):
        lin(gt.randn(3, 2)).sum().backward()
    assert seen == [((None,), (3, 2))]
    lin.register_full_backward_hook(lambda m, gi, go: (gt.ones(3, 2),))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="should always return None"):
            lin(gt.randn(3, 2)).sum().backward()


def test_backward_hook_wrong_count():
    lin = nn.Linear(2, 2)
    lin.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="invalid number of grad_input, got 2, but "
                                           "expected 1"):
        lin(gt.randn(3, 2, requires_grad=True)).sum().backward()


def test_hooks_with_no_grad_and_handles_as_context_managers():
    lin = nn.Linear(2, 2)
    fired = []
    with lin.register_forward_hook(lambda m, a, o: fired.append(1)):
        with gt.no_grad():
            lin(gt.randn(1, 2))
    lin(gt.randn(1, 2))
    assert fired == [1]
    lin.register_full_backward_hook(lambda m, gi, go: fired.append(2))
    with gt.no_grad():
        out = lin(gt.randn(1, 2, requires_grad=True))
    assert out.grad_fn is None


def test_module_gradients_unchanged_by_observing_hooks():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 1))
    x = gt.randn(4, 3, requires_grad=True)
    model(x).sum().backward()
    expected = [p.grad._data.copy() for p in model.parameters()] + [x.grad._data.copy()]
    model.zero_grad()
    x.grad = None
    for layer in model:
        layer.register_full_backward_hook(lambda m, gi, go: None)
        layer.register_forward_hook(lambda m, a, o: None)
    model(x).sum().backward()
    got = [p.grad._data for p in model.parameters()] + [x.grad._data]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e)
