"""Verdicts on real custom Functions (forward and backward as people write them), right and
with the bugs people make, agree with torch.autograd.gradcheck: in gradtool (gt Functions),
through the torch bridge (torch Functions), in full and fast mode, on several input shapes."""

import numpy as np
import pytest

import gradtool as gt

torch = pytest.importorskip("torch")


def _sig(t):
    return 1 / (1 + (-t).exp())


# name -> (forward(x), backward(x, out, grad) right, backward wrong)
FUNCTIONS = {
    "swish": (lambda x: x * _sig(x),
              lambda x, y, g: g * (_sig(x) + x * _sig(x) * (1 - _sig(x))),
              lambda x, y, g: g * (_sig(y) + x * _sig(y) * (1 - _sig(y)))),
    "softmax_rows": (lambda x: x.softmax(1),
                     lambda x, y, g: y * (g - (g * y).sum(1, keepdim=True)),
                     lambda x, y, g: y * (g - (g * y).sum(0, keepdim=True))),
    "softmax_last": (lambda x: x.softmax(-1),
                     lambda x, y, g: y * (g - (g * y).sum(-1, keepdim=True)),
                     lambda x, y, g: x.softmax(-1) * (g - (g * x).sum(-1, keepdim=True))),
    "logsumexp": (lambda x: x.logsumexp(1),
                  lambda x, y, g: g.unsqueeze(1) * (x - y.unsqueeze(1)).exp(),
                  lambda x, y, g: g.unsqueeze(1) * (x - y.unsqueeze(1))),
    "layer_norm": (lambda x: (x - x.mean(1, keepdim=True)) /
                   (x.var(1, unbiased=False, keepdim=True) + 1e-5).sqrt(),
                   None, None),     # backward filled below (long)
    "cumsum_exp": (lambda x: x.exp().cumsum(1),
                   lambda x, y, g: g.flip(1).cumsum(1).flip(1) * x.exp(),
                   lambda x, y, g: g.cumsum(1) * x.exp()),
    "gram": (lambda x: x @ x.t(),
             lambda x, y, g: (g + g.t()) @ x,
             lambda x, y, g: g @ x),
    "mish_like": (lambda x: x * (1 + x.exp()).log().tanh(),
                  lambda x, y, g: g * ((1 + x.exp()).log().tanh() + x * _sig(x) *
                                       (1 - (1 + x.exp()).log().tanh() ** 2)),
                  lambda x, y, g: g * ((1 + x.exp()).log().tanh() + x * _sig(x) *
                                       (1 + (1 + x.exp()).log().tanh() ** 2))),
}


def _layer_norm_backward(x, y, g, wrong=False):
    n = x.shape[1]
    std = (x.var(1, unbiased=False, keepdim=True) + 1e-5).sqrt()
    mean_g = g.mean(1, keepdim=True)
    mean_gy = (g * y).mean(1, keepdim=True)
    if wrong:
        return (g - mean_g - y * mean_gy) / std * (n / (n - 1))
    return (g - mean_g - y * mean_gy) / std


FUNCTIONS["layer_norm"] = (FUNCTIONS["layer_norm"][0], _layer_norm_backward,
                           lambda x, y, g: _layer_norm_backward(x, y, g, wrong=True))


def _pair(name, forward, backward):
    def fwd(ctx, x):
        y = forward(x)
        ctx.save_for_backward(x, y)
        return y

    def bwd(ctx, g):
        x, y = ctx.saved_tensors
        return backward(x, y, g)

    members = {"forward": staticmethod(fwd), "backward": staticmethod(bwd)}
    return (type(name, (gt.autograd.Function,), dict(members)),
            type(name, (torch.autograd.Function,), dict(members)))


def _torch_verdict(fn, x, fast):
    try:
        return torch.autograd.gradcheck(fn, (x,), fast_mode=fast, raise_exception=False)
    except RuntimeError:
        return False


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("which", ["right", "wrong"])
@pytest.mark.parametrize("shape", [(3, 5), (1, 4), (6, 2)])
def test_verdicts_agree_with_torch(name, which, shape):
    forward, right, wrong = FUNCTIONS[name]
    gt_cls, torch_cls = _pair(f"{name}_{which}", forward, right if which == "right" else wrong)
    data = np.random.default_rng(hash((name, shape)) % 2**32).standard_normal(shape)
    xt = torch.tensor(data, requires_grad=True)
    xg = gt.tensor(data, requires_grad=True)
    full = _torch_verdict(torch_cls.apply, xt, fast=False)
    assert full is (which == "right"), "the case itself is off"
    for mode in ("full", "fast"):
        ours = gt.check(gt_cls.apply, (xg,), mode=mode)
        bridged = gt.check(torch_cls.apply, (xt,), mode=mode)
        if mode == "full" or full:
            # full mode, and any right Function: exactly torch's verdict
            assert ours.passed is full, (mode, ours.report())
            assert bridged.passed is full, (mode, bridged.report())
        elif ours.passed or bridged.passed:
            # a wrong Function may pass fast mode (random projections) only where torch's
            # fast mode lets it pass too
            assert _torch_verdict(torch_cls.apply, xt, fast=True), (ours.report(),
                                                                    bridged.report())


SECOND_ORDER = {
    "right": (lambda x: 0.5 * (5 * x ** 3 - 3 * x), lambda x, y, g: g * 1.5 * (5 * x ** 2 - 1),
              True),
    "detached": (lambda x: 0.5 * (5 * x ** 3 - 3 * x),
                 lambda x, y, g: g * 1.5 * (5 * x.detach() ** 2 - 1), False),
    "grad_squared": (lambda x: x.sin(), lambda x, y, g: g * g * x.cos(), True),
    "softmax": (lambda x: x.softmax(1),
                lambda x, y, g: x.softmax(1) * (g - (g * x.softmax(1)).sum(1, keepdim=True)),
                True),
    "softmax_saved_out": (lambda x: x.softmax(1),
                          lambda x, y, g: y.detach() * (g - (g * y.detach()).sum(1, keepdim=True)),
                          False),
}


@pytest.mark.parametrize("name", sorted(SECOND_ORDER))
@pytest.mark.parametrize("fast", [False, True])
def test_gradgradcheck_verdicts_agree_with_torch(name, fast):
    """gradgradcheck's numerical side evaluates the first-order gradient at perturbed
    grad_outputs in one batched backward, at perturbed inputs through one backward of
    several graphs: the verdicts stay torch's, in full and fast mode."""
    forward, backward, expected = SECOND_ORDER[name]
    gt_cls, torch_cls = _pair(name, forward, backward)
    data = np.random.default_rng(5).standard_normal((3, 4))
    xt = torch.tensor(data, requires_grad=True)
    assert torch.autograd.gradgradcheck(torch_cls.apply, (xt,), fast_mode=fast,
                                        raise_exception=False) is expected
    xg = gt.tensor(data, requires_grad=True)
    assert gt.gradgradcheck(gt_cls.apply, (xg,), fast_mode=fast,
                            raise_exception=False) is expected


def _p3(x):
    return 0.5 * (5 * x ** 3 - 3 * x)


# name -> (forward(*inputs), backward(*inputs, grad) -> one gradient per input, right?):
# first-order gradients all right; the wrong ones differentiate wrongly a second time
SECOND_ORDER_MANY = {
    "p3_right": (_p3, lambda x, g: g * 1.5 * (5 * x ** 2 - 1), True),
    "p3_detached": (_p3, lambda x, g: g * 1.5 * (5 * x.detach() ** 2 - 1), False),
    "p3_half_curvature": (_p3, lambda x, g: g * 1.5 * (5 * x * x.detach() - 1), False),
    "scale_right": (lambda x, w: x * w.exp(),
                    lambda x, w, g: (g * w.exp(), g * x * w.exp()), True),
    "scale_detached": (lambda x, w: x * w.exp(),
                       lambda x, w, g: (g * w.detach().exp(), g * x * w.exp()), False),
}


def _saving_all(name, lib, forward, backward):
    def fwd(ctx, *xs):
        ctx.save_for_backward(*xs)
        return forward(*xs)

    def bwd(ctx, g):
        return backward(*ctx.saved_tensors, g)

    base = gt.autograd.Function if lib is gt else torch.autograd.Function
    return type(name, (base,), {"forward": staticmethod(fwd), "backward": staticmethod(bwd)})


@pytest.mark.parametrize("name", sorted(SECOND_ORDER_MANY))
@pytest.mark.parametrize("fast", [False, True])
def test_gradgradcheck_of_several_inputs_agrees_with_torch(name, fast):
    """Several inputs (the numerical side perturbs each, fast mode all of them in one
    batch): a + b P3(c + d x) for P3 Functions, and a Function of two tensors."""
    forward, backward, expected = SECOND_ORDER_MANY[name]
    rng = np.random.default_rng(3)
    scalars, tensors = rng.standard_normal(4) * 0.5, rng.standard_normal((2, 3, 4))
    verdicts = []
    for lib in (torch, gt):
        cls = _saving_all(name, lib, forward, backward)

        def leaf(data, lib=lib):
            return torch.tensor(data, requires_grad=True) if lib is torch else \
                gt.tensor(data, requires_grad=True)
        if name.startswith("p3"):
            x = lib.tensor(np.linspace(-1, 1, 20))
            inputs = tuple(leaf(np.array(v)) for v in scalars)

            def fn(a, b, c, d, cls=cls, x=x):
                return a + b * cls.apply(c + d * x)
        else:
            inputs = tuple(leaf(d) for d in tensors)
            fn = cls.apply
        check = torch.autograd.gradgradcheck if lib is torch else gt.gradgradcheck
        verdicts.append(check(fn, inputs, fast_mode=fast, raise_exception=False))
    assert verdicts == [expected, expected]
