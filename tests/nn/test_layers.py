"""Layers: gradients against finite differences (inputs and parameters, float64), and
outputs, gradients and node names against torch given the same weights."""

import math

import numpy as np
import pytest

import gradtool as gt
import gradtool.nn as nn
import gradtool.nn.functional as F

from .fd import check_grads
from .mirror import copy_weights, import_torch, to_torch


def _input(*shape, distinct=False):
    if distinct:   # well-separated values: max pooling's argmax is stable under eps
        n = int(np.prod(shape))
        data = (np.random.default_rng(5).permutation(n).reshape(shape) - n / 2) * 0.05 + 0.0137
        return gt.tensor(data, requires_grad=True)
    return gt.randn(*shape, requires_grad=True)


# (gradtool layer factory, torch layer factory, input shape, distinct input values)
LAYERS = {
    "linear_2d": (lambda: nn.Linear(5, 3), lambda t: t.nn.Linear(5, 3), (4, 5), False),
    "linear_3d": (lambda: nn.Linear(5, 3), lambda t: t.nn.Linear(5, 3), (2, 4, 5), False),
    "linear_1d": (lambda: nn.Linear(5, 3), lambda t: t.nn.Linear(5, 3), (5,), False),
    "linear_nobias": (lambda: nn.Linear(5, 3, bias=False),
                      lambda t: t.nn.Linear(5, 3, bias=False), (4, 5), False),
    "linear_nobias_3d": (lambda: nn.Linear(5, 3, bias=False),
                         lambda t: t.nn.Linear(5, 3, bias=False), (2, 4, 5), False),
    "conv": (lambda: nn.Conv2d(2, 3, 3), lambda t: t.nn.Conv2d(2, 3, 3), (2, 2, 5, 6), False),
    "conv_stride_pad": (lambda: nn.Conv2d(2, 3, (3, 2), stride=2, padding=1),
                        lambda t: t.nn.Conv2d(2, 3, (3, 2), stride=2, padding=1),
                        (2, 2, 7, 6), False),
    "conv_dilation_nobias": (lambda: nn.Conv2d(2, 2, 2, padding=(0, 1), dilation=2, bias=False),
                             lambda t: t.nn.Conv2d(2, 2, 2, padding=(0, 1), dilation=2,
                                                   bias=False), (1, 2, 6, 5), False),
    "conv_same": (lambda: nn.Conv2d(1, 2, 4, padding="same"),
                  lambda t: t.nn.Conv2d(1, 2, 4, padding="same"), (2, 1, 5, 5), False),
    "conv_unbatched": (lambda: nn.Conv2d(2, 3, 3), lambda t: t.nn.Conv2d(2, 3, 3), (2, 4, 4),
                       False),
    "maxpool": (lambda: nn.MaxPool2d(2), lambda t: t.nn.MaxPool2d(2), (2, 3, 6, 6), True),
    "maxpool_overlap": (lambda: nn.MaxPool2d(3, stride=1, padding=1),
                        lambda t: t.nn.MaxPool2d(3, stride=1, padding=1), (1, 2, 5, 5), True),
    "maxpool_ceil": (lambda: nn.MaxPool2d((2, 3), stride=2, ceil_mode=True),
                     lambda t: t.nn.MaxPool2d((2, 3), stride=2, ceil_mode=True),
                     (2, 1, 5, 7), True),
    "maxpool_dilation": (lambda: nn.MaxPool2d(2, stride=1, dilation=2),
                         lambda t: t.nn.MaxPool2d(2, stride=1, dilation=2), (1, 2, 5, 5), True),
    "adaptive_divides": (lambda: nn.AdaptiveAvgPool2d((2, 3)),
                         lambda t: t.nn.AdaptiveAvgPool2d((2, 3)), (2, 3, 4, 6), False),
    "adaptive_general": (lambda: nn.AdaptiveAvgPool2d((3, 4)),
                         lambda t: t.nn.AdaptiveAvgPool2d((3, 4)), (2, 2, 5, 7), False),
    "adaptive_global": (lambda: nn.AdaptiveAvgPool2d(1), lambda t: t.nn.AdaptiveAvgPool2d(1),
                        (2, 3, 4, 4), False),
    "adaptive_none": (lambda: nn.AdaptiveAvgPool2d((None, 2)),
                      lambda t: t.nn.AdaptiveAvgPool2d((None, 2)), (1, 2, 3, 5), False),
    "relu": (lambda: nn.ReLU(), lambda t: t.nn.ReLU(), (3, 4), True),
    "tanh": (lambda: nn.Tanh(), lambda t: t.nn.Tanh(), (3, 4), False),
    "sigmoid": (lambda: nn.Sigmoid(), lambda t: t.nn.Sigmoid(), (3, 4), False),
    "flatten": (lambda: nn.Flatten(), lambda t: t.nn.Flatten(), (2, 3, 2, 2), False),
    "dropout_eval": (lambda: nn.Dropout(0.3).eval(), lambda t: t.nn.Dropout(0.3).eval(),
                     (3, 4), False),
    "batchnorm2d": (lambda: nn.BatchNorm2d(3), lambda t: t.nn.BatchNorm2d(3), (4, 3, 2, 2),
                    False),
    "batchnorm1d_eval": (lambda: _with_stats(nn.BatchNorm1d(3)).eval(),
                         lambda t: _with_stats(t.nn.BatchNorm1d(3)).eval(), (5, 3), False),
    "batchnorm1d_no_stats": (lambda: nn.BatchNorm1d(3, affine=False, track_running_stats=False),
                             lambda t: t.nn.BatchNorm1d(3, affine=False,
                                                        track_running_stats=False), (5, 3, 2),
                             False),
    "layernorm": (lambda: nn.LayerNorm((2, 3)), lambda t: t.nn.LayerNorm((2, 3)), (4, 2, 3),
                  False),
    "sequential": (lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(),
                                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3)),
                   lambda t: t.nn.Sequential(t.nn.Conv2d(1, 2, 3, padding=1), t.nn.ReLU(),
                                             t.nn.MaxPool2d(2), t.nn.Flatten(),
                                             t.nn.Linear(8, 3)), (2, 1, 4, 4), True),
}


# written with primitives (mean, var, ...): torch's fused kernel names their nodes differently
COMPOSITES = {"batchnorm2d", "batchnorm1d_eval", "batchnorm1d_no_stats", "layernorm"}


def _with_stats(bn):
    """A BatchNorm whose running statistics are not the initial zeros/ones."""
    bn.running_mean.data = bn.running_mean.data + 0.3
    bn.running_var.data = bn.running_var.data * 2.0
    return bn


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_gradcheck(name):
    make, _, shape, distinct = LAYERS[name]
    layer = make()
    x = _input(*shape, distinct=distinct)
    check_grads(lambda: layer(x), [x] + list(layer.parameters()))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_matches_torch(name):
    torch = import_torch()
    make, make_torch, shape, distinct = LAYERS[name]
    layer = make()
    ref = make_torch(torch).double()
    copy_weights(layer, ref)
    x = _input(*shape, distinct=distinct)
    xt = to_torch(x)
    out, out_t = layer(x), ref(xt)
    np.testing.assert_allclose(out._data, out_t.detach().numpy(), rtol=1e-12, atol=1e-13)
    if name not in COMPOSITES:
        assert (out.grad_fn and out.grad_fn.name()) == \
            (out_t.grad_fn and out_t.grad_fn.name())
    g = np.random.default_rng(7).standard_normal(out.shape)
    out.backward(gt.tensor(g))
    out_t.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad._data, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for (pname, p), pt in zip(layer.named_parameters(), ref.parameters()):
        np.testing.assert_allclose(p.grad._data, pt.grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=pname)


def test_graph_node_names_match_torch():
    torch = import_torch()
    lin = nn.Linear(3, 2)
    out = lin(gt.randn(4, 3))
    assert out.grad_fn.name() == "AddmmBackward0"
    assert [type(n).__name__ if n is not None else None for n, _ in
            out.grad_fn.next_functions] == ["AccumulateGrad", None, "TBackward0"]
    ref = torch.nn.Linear(3, 2)(torch.randn(4, 3))
    assert [n and n.name().split("::")[-1] for n, _ in ref.grad_fn.next_functions] == \
        ["AccumulateGrad", None, "TBackward0"]
    assert nn.Linear(3, 2, bias=False)(gt.randn(4, 3)).grad_fn.name() == "MmBackward0"
    conv = nn.Conv2d(1, 2, 3)(gt.randn(1, 1, 4, 4))
    assert conv.grad_fn.name() == "ConvolutionBackward0"
    assert F.max_pool2d(conv, 2).grad_fn.name() == "MaxPool2DWithIndicesBackward0"
    assert F.adaptive_avg_pool2d(conv, 2).grad_fn.name() == "AdaptiveAvgPool2DBackward0"
    assert F.adaptive_avg_pool2d(conv, 1).grad_fn.name() == "MeanBackward1"   # as torch
    emb = nn.Embedding(5, 2)(gt.tensor([1, 3]))
    assert emb.grad_fn.name() == "EmbeddingBackward0"
    assert len(emb.grad_fn.next_functions) == 1


def test_conv_second_order_matches_torch():
    torch = import_torch()
    conv = nn.Conv2d(2, 2, 3, padding=1, stride=2)
    ref = torch.nn.Conv2d(2, 2, 3, padding=1, stride=2).double()
    copy_weights(conv, ref)
    x = gt.randn(1, 2, 5, 5, requires_grad=True)
    xt = to_torch(x)
    (gx,) = gt.autograd.grad((conv(x) ** 2).sum(), [x], create_graph=True)
    (gxt,) = torch.autograd.grad((ref(xt) ** 2).sum(), [xt], create_graph=True)
    (gw,) = gt.autograd.grad((gx ** 2).sum(), [conv.weight])
    (gwt,) = torch.autograd.grad((gxt ** 2).sum(), [ref.weight])
    np.testing.assert_allclose(gw._data, gwt.numpy(), rtol=1e-10)


def test_max_pool_return_indices_match_torch():
    torch = import_torch()
    x = _input(2, 2, 5, 7, distinct=True)
    out, idx = F.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
    out_t, idx_t = torch.nn.functional.max_pool2d(to_torch(x), 3, stride=2, padding=1,
                                                  return_indices=True)
    np.testing.assert_array_equal(idx._data, idx_t.numpy())
    np.testing.assert_allclose(out._data, out_t.detach().numpy())


def test_max_pool_ties_pick_the_first_maximum_as_torch():
    torch = import_torch()
    x = gt.tensor(np.ones((1, 1, 4, 4)), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    xt = to_torch(x)
    torch.nn.functional.max_pool2d(xt, 2).sum().backward()
    np.testing.assert_array_equal(x.grad._data, xt.grad.numpy())


def test_pool_errors():
    with pytest.raises(RuntimeError, match="pad should be at most half"):
        F.max_pool2d(gt.randn(1, 1, 4, 4), 2, padding=2)


def test_embedding_padding_idx_matches_torch():
    torch = import_torch()
    emb = nn.Embedding(6, 3, padding_idx=2)
    assert np.all(emb.weight._data[2] == 0)
    ref = torch.nn.Embedding(6, 3, padding_idx=2).double()
    copy_weights(emb, ref)
    idx = gt.tensor([[0, 2, 5], [2, 2, 1]])
    out, out_t = emb(idx), ref(torch.tensor(idx._data))
    g = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(gt.tensor(g))
    out_t.backward(torch.tensor(g))
    np.testing.assert_allclose(emb.weight.grad._data, ref.weight.grad.numpy())
    assert np.all(emb.weight.grad._data[2] == 0)


def test_embedding_gradcheck():
    emb = nn.Embedding(5, 3)
    idx = gt.tensor([[0, 4, 4], [1, 0, 3]])
    check_grads(lambda: emb(idx), [emb.weight])


def test_dropout_seeded_and_scaled():
    layer = nn.Dropout(0.25)
    x = gt.ones(200, 50, requires_grad=True)
    gt.manual_seed(3)
    a = layer(x)
    gt.manual_seed(3)
    b = layer(x)
    np.testing.assert_array_equal(a._data, b._data)
    kept = a._data != 0
    assert set(np.unique(a._data)) == {0.0, 1 / 0.75}
    assert abs(kept.mean() - 0.75) < 0.02
    assert a.grad_fn.name() == "NativeDropoutBackward0"
    a.sum().backward()
    np.testing.assert_array_equal(x.grad._data, a._data)

    def dropped():
        gt.manual_seed(1)            # the same mask on every evaluation
        return F.dropout(x[:3, :4], 0.5)
    check_grads(dropped, [x])
    layer.eval()
    assert layer(x) is x
    y = gt.ones(4, 5)
    assert F.dropout(y, 0.5, inplace=True) is y and set(np.unique(y._data)) <= {0.0, 2.0}
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        F.dropout(x, 0.5, inplace=True)


def test_functional_activations_match_torch():
    torch = import_torch()
    x = gt.randn(3, 5, requires_grad=True)
    xt = to_torch(x)
    pairs = [(F.leaky_relu(x, 0.1), torch.nn.functional.leaky_relu(xt, 0.1)),
             (F.elu(x), torch.nn.functional.elu(xt)),
             (F.silu(x), torch.nn.functional.silu(xt)),
             (F.gelu(x, approximate="tanh"), torch.nn.functional.gelu(xt, approximate="tanh")),
             (nn.GELU()(x), torch.nn.GELU()(xt)),
             (F.softmax(x, dim=1), torch.softmax(xt, dim=1)),
             (F.log_softmax(x, dim=0), torch.log_softmax(xt, dim=0)),
             (F.pad(x, (1, 2)), torch.nn.functional.pad(xt, (1, 2))),
             (F.pad(x, (1, 0, 0, 2), value=3.0), torch.nn.functional.pad(xt, (1, 0, 0, 2),
                                                                            value=3.0)),
             (F.avg_pool2d(x.reshape(1, 1, 3, 5), 2),
              torch.nn.functional.avg_pool2d(xt.reshape(1, 1, 3, 5), 2)),
             (F.normalize(x), torch.nn.functional.normalize(xt)),
             (F.bilinear(x, x[:, :2], x.reshape(5, 3)[:4, None, :2].expand(4, 5, 2), x[0, :4]),
              torch.nn.functional.bilinear(xt, xt[:, :2],
                                           xt.reshape(5, 3)[:4, None, :2].expand(4, 5, 2),
                                           xt[0, :4]))]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours._data, theirs.detach().numpy(), rtol=1e-12,
                                   atol=1e-14)


def test_default_init_bounds_and_seeding():
    gt.manual_seed(0)
    a = nn.Linear(50, 20)
    gt.manual_seed(0)
    b = nn.Linear(50, 20)
    np.testing.assert_array_equal(a.weight._data, b.weight._data)
    bound = 1 / math.sqrt(50)
    assert np.abs(a.weight._data).max() <= bound and np.abs(a.bias._data).max() <= bound
    assert np.abs(a.weight._data).max() > 0.9 * bound
    conv = nn.Conv2d(3, 4, 3)
    assert np.abs(conv.weight._data).max() <= 1 / math.sqrt(27)
    assert a.weight.dtype == gt.float64 and a.weight.requires_grad and a.weight.is_leaf


def test_init_functions():
    w = nn.Parameter(gt.zeros(30, 40))
    nn.init.xavier_uniform_(w)
    assert np.abs(w._data).max() <= math.sqrt(6 / 70)
    nn.init.constant_(w, 0.5)
    assert np.all(w._data == 0.5)
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(w._data.std() - math.sqrt(2 / 40)) < 0.02
    nn.init.trunc_normal_(w, std=1.0, a=-0.5, b=0.5)
    assert np.abs(w._data).max() <= 0.5
    assert nn.init.calculate_gain("tanh") == 5 / 3
    with pytest.raises(ValueError, match="Fan in and fan out"):
        nn.init.xavier_uniform_(gt.zeros(3))


@pytest.mark.parametrize("name", ["conv_stride_pad", "maxpool_overlap", "adaptive_general",
                                  "linear_3d"])
def test_layers_pass_the_project_checker(name):
    # gt.gradcheck / gt.gradgradcheck (gradtool.check) agree with the local helper above
    if not hasattr(gt, "gradgradcheck"):
        pytest.skip("gt.gradcheck is not wired up")
    make, _, shape, distinct = LAYERS[name]
    layer = make()
    x = _input(*shape, distinct=distinct)
    inputs = (x,) + tuple(layer.parameters())

    def fn(x, *weights):   # the checker passes its own copies: route them into the layer
        return _with_params(layer, weights, lambda: layer(x))
    assert gt.gradcheck(fn, inputs)
    assert gt.gradgradcheck(fn, inputs)


def _with_params(layer, values, run):
    """Run ``run()`` with ``layer``'s parameters temporarily replaced by ``values`` (tensors
    that may carry a graph), so a functional checker can differentiate through them."""
    saved = dict(layer._parameters)
    try:
        for (name, _), value in zip(saved.items(), values):
            layer._parameters[name] = value
        return run()
    finally:
        layer._parameters.update(saved)


def test_batch_norm_running_statistics_follow_torch():
    torch = import_torch()
    ours, theirs = nn.BatchNorm2d(2, momentum=None), torch.nn.BatchNorm2d(2, momentum=None)
    copy_weights(ours, theirs.double())
    for _ in range(3):
        x = gt.randn(4, 2, 3, 3)
        ours(x)
        theirs(to_torch(x))
    for key, value in ours.state_dict().items():
        np.testing.assert_allclose(value._data, theirs.state_dict()[key].numpy(), rtol=1e-12)
    assert int(ours.num_batches_tracked) == 3
    with pytest.raises(ValueError, match="expected 4D input"):
        ours(gt.randn(2, 2))
