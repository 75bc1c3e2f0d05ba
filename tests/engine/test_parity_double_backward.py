"""First gradients taken with create_graph=True, side by side with torch: for every op, each
leaf's first gradient must agree with torch's in whether it requires grad, the name of its
grad_fn (torch records the backward itself as a node: ThresholdBackwardBackward0 for relu,
NllLossBackwardBackward0, ...), the names along that node's edges, and its values; and the
gradients of those gradients (double backward, ``allow_unused``) must be torch's numbers
(torch's zeros where a backward is constant in its input, instead of gradtool raising
"does not require grad"). Where torch's first gradient does not require grad, gradtool's
does not either, and a second ``autograd.grad`` raises the same error type in both.
"""

import warnings

import numpy as np
import pytest

import gradtool as gt
import gradtool.nn.functional as GF

torch = pytest.importorskip("torch")
TF = pytest.importorskip("torch.nn.functional")


@pytest.fixture(autouse=True)
def torch_default_float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _index(lib, *values):
    return lib.tensor(list(values))


# (id, shapes of the float64 leaves, program(lib, F, *leaves)); the leaves are standard normal
# (seeded), so kinks (0 for relu/abs, the clamp bounds) are hit with probability zero.
CASES = [
    # piecewise-linear activations: their backwards are nodes constant in x
    ("relu", [(3, 4)], lambda lib, F, x: F.relu(x)),
    ("relu_method", [(2, 3)], lambda lib, F, x: (x * 2).relu()),
    ("relu_twice", [(3, 4)], lambda lib, F, x: F.relu(F.relu(x) - 0.3)),
    ("threshold", [(3, 4)], lambda lib, F, x: F.threshold(x, 0.1, -2.0)),
    ("threshold_of_square", [(3, 4)], lambda lib, F, x: F.threshold(x * x, 0.5, 3.0)),
    ("threshold_in_place", [(3, 4)],
     lambda lib, F, x: F.threshold(x * 1, 0.2, 0.5, inplace=True) * x),
    ("abs", [(3, 4)], lambda lib, F, x: x.abs()),
    ("abs_of_difference", [(3, 4), (3, 4)], lambda lib, F, x, y: (x - y).abs()),
    ("l1_loss", [(3, 4), (3, 4)], lambda lib, F, x, y: F.l1_loss(x, y)),
    ("sign_times_x", [(3, 4)], lambda lib, F, x: x.sign() * x),
    ("cosh_of_sign", [(3, 4)], lambda lib, F, x: x.sign().cosh()),
    ("hardtanh", [(3, 4)], lambda lib, F, x: F.hardtanh(x, -0.5, 0.5)),
    ("relu6", [(3, 4)], lambda lib, F, x: F.relu6(x * 5)),
    ("leaky_relu", [(3, 4)], lambda lib, F, x: F.leaky_relu(x, 0.2)),
    # selections: constant masks, gradients that do not require grad (as torch's)
    ("clamp", [(3, 4)], lambda lib, F, x: x.clamp(-0.5, 0.5)),
    ("clamp_min", [(3, 4)], lambda lib, F, x: x.clamp_min(0.1)),
    ("clamp_max", [(3, 4)], lambda lib, F, x: x.clamp_max(0.1)),
    ("where", [(3, 4), (3, 4)], lambda lib, F, x, y: lib.where(x > 0, x, y)),
    ("max", [(3, 4)], lambda lib, F, x: x.max()),
    ("max_dim", [(3, 4)], lambda lib, F, x: x.max(1)[0]),
    ("min_dim", [(3, 4)], lambda lib, F, x: x.min(0)[0]),
    ("amax", [(3, 4)], lambda lib, F, x: x.amax(1)),
    ("maximum", [(3, 4), (3, 4)], lambda lib, F, x, y: lib.maximum(x, y)),
    ("minimum", [(3, 4), (3, 4)], lambda lib, F, x, y: lib.minimum(x, y)),
    ("masked_fill", [(3, 4)], lambda lib, F, x: x.masked_fill(x > 0, 1.0)),
    ("sort", [(3, 4)], lambda lib, F, x: x.sort(1)[0]),
    ("topk", [(3, 4)], lambda lib, F, x: x.topk(2)[0]),
    ("gather", [(3, 4)], lambda lib, F, x: x.gather(1, lib.tensor([[0], [1], [2]]))),
    ("index_select", [(3, 4)], lambda lib, F, x: x.index_select(0, _index(lib, 0, 2))),
    ("advanced_index", [(3, 4)], lambda lib, F, x: x[_index(lib, 0, 2, 2)]),
    ("scatter_add", [(3, 4), (1, 4)],
     lambda lib, F, x, y: x.scatter_add(0, lib.tensor([[0, 1, 2, 0]]), y)),
    ("floor", [(3, 4)], lambda lib, F, x: x.floor()),
    ("round", [(3, 4)], lambda lib, F, x: x.round()),
    ("frac", [(3, 4)], lambda lib, F, x: x.frac()),
    ("tril", [(3, 4)], lambda lib, F, x: x.tril()),
    ("cumsum", [(3, 4)], lambda lib, F, x: x.cumsum(1)),
    ("cat_exp", [(2, 3), (1, 3)], lambda lib, F, x, y: lib.cat([x, y]).exp()),
    ("cat_with_empty_vector", [(2,), (0,)], lambda lib, F, x, y: lib.cat([x, y]).exp()),
    ("prod", [(3, 4)], lambda lib, F, x: x.prod(1)),
    ("prod_0d", [()], lambda lib, F, x: x.prod()),
    ("prod_0d_dim", [()], lambda lib, F, x: (x * x).prod(0)),
    ("pad", [(3, 4)], lambda lib, F, x: F.pad(x, (1, 1))),
    ("dropout_eval", [(3, 4)], lambda lib, F, x: F.dropout(x, 0.5, training=False)),
    # pooling: the backward reads the input (argmax, shape) only
    ("max_pool2d", [(1, 2, 4, 4)], lambda lib, F, x: F.max_pool2d(x, 2)),
    ("max_pool2d_3d_input", [(2, 5, 4)], lambda lib, F, x: F.max_pool2d(x, (2, 1))),
    ("max_pool2d_of_square", [(1, 2, 4, 4)], lambda lib, F, x: F.max_pool2d(x * x, 2)),
    ("avg_pool2d", [(1, 2, 4, 4)], lambda lib, F, x: F.avg_pool2d(x, 2)),
    ("avg_pool2d_of_square", [(2, 4, 6)], lambda lib, F, x: F.avg_pool2d(x * x, (2, 3))),
    # losses
    ("nll_loss", [(3, 4)], lambda lib, F, x: F.nll_loss(x, _index(lib, 0, 1, 2))),
    ("nll_loss_sum_ignore", [(3, 4)],
     lambda lib, F, x: F.nll_loss(x, _index(lib, 0, -100, 2), reduction="sum")),
    ("nll_loss_none_weight", [(3, 4)],
     lambda lib, F, x: F.nll_loss(x, _index(lib, 3, 1, 2), reduction="none",
                                  weight=lib.tensor([0.5, 1.0, 2.0, 1.5]))),
    ("nll_loss_1d", [(4,)], lambda lib, F, x: F.nll_loss(x, lib.tensor(1))),
    ("nll_loss_of_square", [(3, 4)], lambda lib, F, x: F.nll_loss(x * x, _index(lib, 0, 1, 2))),
    ("mse_loss", [(3, 4), (3, 4)], lambda lib, F, x, y: F.mse_loss(x, y)),
    ("mse_loss_sum_detached_target", [(3, 4), (3, 4)],
     lambda lib, F, x, y: F.mse_loss(x, y.detach(), reduction="sum")),
    ("mse_loss_none_squared", [(3, 4), (3, 4)],
     lambda lib, F, x, y: F.mse_loss(x * x, y, reduction="none")),
    ("smooth_l1_loss", [(3, 4), (3, 4)], lambda lib, F, x, y: F.smooth_l1_loss(x, y, beta=0.5)),
    ("smooth_l1_loss_beta0_none", [(3, 4), (3, 4)],
     lambda lib, F, x, y: F.smooth_l1_loss(x, y, reduction="none", beta=0.0)),
    ("huber_loss_sum", [(3, 4), (3, 4)],
     lambda lib, F, x, y: F.huber_loss(x * x, y, reduction="sum", delta=0.7)),
    ("cross_entropy", [(3, 4)], lambda lib, F, x: F.cross_entropy(x, _index(lib, 0, 3, 2))),
    ("cross_entropy_label_smoothing", [(3, 4)],
     lambda lib, F, x: F.cross_entropy(x, _index(lib, 0, 3, 2), label_smoothing=0.2)),
    ("cross_entropy_label_smoothing_none", [(3, 4)],
     lambda lib, F, x: F.cross_entropy(x, _index(lib, 0, -100, 2), label_smoothing=0.1,
                                       reduction="none")),
    # softmax family
    ("softmax", [(3, 4)], lambda lib, F, x: x.softmax(1)),
    ("softmax_dim0", [(3, 4)], lambda lib, F, x: F.softmax(x * 2, 0)),
    ("log_softmax", [(3, 4)], lambda lib, F, x: x.log_softmax(1)),
    ("log_softmax_3d", [(2, 3, 4)], lambda lib, F, x: x.log_softmax(-2)),
    ("log_softmax_1d", [(4,)], lambda lib, F, x: x.log_softmax(0)),
    ("logsumexp", [(3, 4)], lambda lib, F, x: x.logsumexp(1)),
    # activations whose backward reads the input or the result: nodes of their own
    ("tanh", [(3, 4)], lambda lib, F, x: x.tanh()),
    ("tanh_times_x", [(3, 4)], lambda lib, F, x: F.tanh(x) * x),
    ("sigmoid", [(3, 4)], lambda lib, F, x: x.sigmoid()),
    ("binary_cross_entropy", [(3, 4), (3, 4)],
     lambda lib, F, x, t: F.binary_cross_entropy(x.sigmoid(), t.detach().sigmoid())),
    ("binary_cross_entropy_sum_weight", [(3, 4), (3, 4)],
     lambda lib, F, x, t: F.binary_cross_entropy(x.sigmoid() * 0.9 + 0.05, t.detach().sigmoid(),
                                                 weight=lib.ones(4) * 0.5, reduction="sum")),
    ("binary_cross_entropy_none_target_grad", [(3, 4), (3, 4)],
     lambda lib, F, x, t: F.binary_cross_entropy(x.sigmoid(), t.sigmoid(), reduction="none")),
    ("elu", [(3, 4)], lambda lib, F, x: F.elu(x, 0.7)),
    ("gelu", [(3, 4)], lambda lib, F, x: F.gelu(x)),
    ("gelu_tanh", [(3, 4)], lambda lib, F, x: F.gelu(x * 2, approximate="tanh")),
    ("softplus", [(3, 4)], lambda lib, F, x: F.softplus(x)),
    ("softplus_threshold", [(3, 4)], lambda lib, F, x: F.softplus(x * 5, beta=2, threshold=3)),
    ("elu_at_zero", [(3, 4)], lambda lib, F, x: F.elu(x - x.detach(), 0.7)),
    ("relu_at_zero", [(3, 4)], lambda lib, F, x: F.relu(x - x.detach()) * x),
    # norms whose gradient is sgn(x) times a constant
    ("vector_norm_1", [(3, 4)], lambda lib, F, x: lib.linalg.vector_norm(x, 1, dim=-1)),
    ("vector_norm_inf", [(3, 4)],
     lambda lib, F, x: lib.linalg.vector_norm(x, float("inf"), dim=0)),
    ("vector_norm_minus_inf_keepdim", [(3, 4)],
     lambda lib, F, x: lib.linalg.vector_norm(x, -float("inf"), dim=1, keepdim=True)),
    ("norm_1_at_zero", [(3, 4)], lambda lib, F, x: (x - x.detach()).norm(p=1)),
    ("vector_norm_3", [(3, 4)], lambda lib, F, x: lib.linalg.vector_norm(x, 3, dim=-1)),
    # smooth ops, for reference
    ("silu", [(3, 4)], lambda lib, F, x: F.silu(x)),
    ("norm", [(3, 4)], lambda lib, F, x: x.norm()),
    ("std", [(3, 4)], lambda lib, F, x: x.std(1)),
    ("sqrt_abs", [(3, 4)], lambda lib, F, x: x.abs().sqrt()),
    ("conv2d", [(1, 2, 4, 4), (3, 2, 2, 2)], lambda lib, F, x, w: F.conv2d(x, w)),
    # bilinear: one TrilinearBackward0 node, its gradients trilinears too
    ("bilinear", [(3, 4), (3, 5), (2, 4, 5), (2,)],
     lambda lib, F, a, b, w, c: F.bilinear(a, b, w, c)),
    ("bilinear_no_bias", [(3, 4), (3, 5), (2, 4, 5)],
     lambda lib, F, a, b, w: F.bilinear(a, b, w)),
    # prod over the one dim of a 0-d tensor: torch's backward is the gradient itself
    ("prod_dim_of_0d", [()], lambda lib, F, x: x.prod(dim=0, keepdim=True)),
    ("prod_dim_of_0d_plus", [(), ()], lambda lib, F, x, y: lib.stack([y + x.prod(-1), y])),
    ("prod_dim", [(2, 3)], lambda lib, F, x: x.prod(dim=1)),
    ("prod_dim_with_zeros", [(2, 3)], lambda lib, F, x: (x * (x > 0)).prod(dim=1)),
    ("prod_size_one_dim_with_zeros", [(3, 1, 1)],
     lambda lib, F, x: (x * (x > 0)).prod(dim=1, keepdim=True)),
    ("prod_one_element_with_zero", [(1, 1)], lambda lib, F, x: (x * 0).prod()),
    # batch norm and layer norm: torch records the backward as one node
    ("batch_norm_train", [(4, 3), (3,), (3,)],
     lambda lib, F, x, w, b: F.batch_norm(x, None, None, w, b, training=True)),
    ("batch_norm_train_3d_squared", [(3, 2, 4), (2,), (2,)],
     lambda lib, F, x, w, b: F.batch_norm(x, None, None, w, b, training=True) ** 2),
    # (without a weight, torch's double backward raises "Expected a proper Tensor but got
    # None" when both the input's and the bias's first gradients are differentiated)
    ("batch_norm_no_affine", [(4, 3)],
     lambda lib, F, x: F.batch_norm(x, None, None, training=True).exp()),
    ("batch_norm_eval", [(4, 3), (3,), (3,)],
     lambda lib, F, x, w, b: F.batch_norm(x, lib.tensor([0.5, -1.0, 0.0]),
                                          lib.tensor([1.0, 2.0, 0.5]), w, b)),
    ("layer_norm", [(3, 4), (4,), (4,)],
     lambda lib, F, x, w, b: F.layer_norm(x, (4,), w, b)),
    ("layer_norm_2d_shape_squared", [(2, 3, 4), (3, 4), (3, 4)],
     lambda lib, F, x, w, b: F.layer_norm(x, (3, 4), w, b) ** 2),
    ("layer_norm_weight_only", [(3, 4), (4,)],
     lambda lib, F, x, w: F.layer_norm(x, (4,), w).sin()),
    ("bilinear_vector", [(4,), (5,), (3, 4, 5)], lambda lib, F, a, b, w: F.bilinear(a, b, w)),
    ("bilinear_3d_squared", [(2, 3, 4), (2, 3, 5), (2, 4, 5)],
     lambda lib, F, a, b, w: F.bilinear(a, b, w) ** 2),
]


# Backwards written as composites in gradtool whose first node agrees with torch's (name,
# requires_grad, values, second order) but whose inner nodes differ: their edges are not
# compared (the names of the first node still are).
INNER_NODES_DIFFER = {"sign_times_x", "silu", "norm", "std", "conv2d", "vector_norm_3"}


def _name(node):
    return None if node is None else node.name().replace("torch::autograd::", "")


def _array(t):
    if t is None:
        return None
    return t.detach().numpy(force=True).copy() if isinstance(t, torch.Tensor) else \
        t.detach().numpy().copy()


def run(lib, F, program, shapes):
    rng = np.random.default_rng(0)
    leaves = [lib.tensor(rng.standard_normal(s), dtype=lib.float64, requires_grad=True)
              for s in shapes]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = program(lib, F, *leaves)
    cotangent = lib.tensor(rng.standard_normal(tuple(out.shape)))
    grads = lib.autograd.grad([out], leaves, [cotangent], create_graph=True,
                              allow_unused=True)
    first = []
    for g in grads:
        if g is None:
            first.append(None)
            continue
        node = g.grad_fn
        edges = None if node is None else tuple(_name(n) for n, _ in node.next_functions)
        first.append((g.requires_grad, _name(node), edges, _array(g)))
    weights = [None if g is None else lib.tensor(rng.standard_normal(tuple(g.shape)))
               for g in grads]
    differentiable = [(g * w).sum() for g, w in zip(grads, weights)
                      if g is not None and g.requires_grad]
    second = None
    if differentiable:
        second = [_array(s) for s in lib.autograd.grad(sum(differentiable), leaves,
                                                       allow_unused=True)]
    else:
        # nothing to differentiate: a second autograd.grad raises (the same type in both)
        some = next(g for g in grads if g is not None)
        with pytest.raises(RuntimeError):
            lib.autograd.grad(some.sum(), leaves, allow_unused=True)
    return first, second


@pytest.mark.parametrize("shapes, program", [pytest.param(s, p, id=i) for i, s, p in CASES])
def test_first_gradient_with_create_graph_matches_torch(request, shapes, program):
    want_first, want_second = run(torch, TF, program, shapes)
    got_first, got_second = run(gt, GF, program, shapes)
    compared = 2 if request.node.callspec.id in INNER_NODES_DIFFER else 3
    for k, (got, want) in enumerate(zip(got_first, want_first)):
        assert (got is None) == (want is None), f"gradient {k}: None in one only"
        if want is None:
            continue
        assert got[:compared] == want[:compared], \
            f"gradient {k}: requires_grad, grad_fn, its edges"
        np.testing.assert_allclose(got[3], want[3], rtol=1e-7, atol=1e-9,
                                   err_msg=f"gradient {k}")
    assert (got_second is None) == (want_second is None)
    for k, (got, want) in enumerate(zip(got_second or (), want_second or ())):
        # torch's None (unused) and gradtool's zeros, or the other way round, agree
        got = np.zeros_like(want) if got is None and want is not None else got
        want = np.zeros_like(got) if want is None and got is not None else want
        if want is not None:
            assert got.shape == want.shape, f"second-order gradient {k}: shape"
            np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9,
                                       err_msg=f"second-order gradient {k}")


@pytest.mark.parametrize("norm", ["batch_norm", "batch_norm_eval", "layer_norm"])
@pytest.mark.parametrize("leaves", ["weight", "bias", "weight_bias", "input"])
def test_norm_first_gradients_of_some_leaves_are_torchs_one_node(norm, leaves):
    """Under create_graph each first gradient of batch/layer norm comes from torch's one
    backward node (its name, edges and requires_grad), whichever inputs require grad."""
    seen = {}
    for lib, F in ((torch, TF), (gt, GF)):
        rng = np.random.default_rng(1)
        x, w, b = (lib.tensor(rng.standard_normal(s)) for s in ((4, 3), (3,), (3,)))
        named = {"input": x, "weight": w, "bias": b}
        wanted = [named[k] for k in ("input", "weight", "bias") if k in leaves]
        for t in wanted:
            t.requires_grad_(True)
        if norm == "layer_norm":
            out = F.layer_norm(x, (3,), w, b)
        elif norm == "batch_norm":
            out = F.batch_norm(x, None, None, w, b, training=True)
        else:
            out = F.batch_norm(x, lib.tensor([0.5, -1.0, 0.0]), lib.tensor([1.0, 2.0, 0.5]),
                               w, b)
        grads = lib.autograd.grad(out, wanted, lib.tensor(rng.standard_normal((4, 3))),
                                  create_graph=True)
        seen[lib] = [(g.requires_grad, _name(g.grad_fn),
                      g.grad_fn and tuple(_name(n) for n, _ in g.grad_fn.next_functions),
                      _array(g)) for g in grads]
    for got, want in zip(seen[gt], seen[torch]):
        assert got[:3] == want[:3]
        np.testing.assert_allclose(got[3], want[3], rtol=1e-7, atol=1e-9)
