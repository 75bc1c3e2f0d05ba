"""The graph torch records, side by side: each program runs in torch and in gradtool on the
same seeded inputs, and the two graphs must agree node by node: the name of every node
reached from the outputs (walked along ``next_functions``, depth first, in edge order), each
node's ``next_functions`` (the producer's name and output number per edge, ``None`` edges
where torch keeps them and none where it omits them), the outputs' ``_version``, their
values, the gradients of a random projection and the gradients of those (double backward).
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
    """gradtool's default floating dtype is float64; torch's programs use the same."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _index(lib, *values):
    return lib.tensor(list(values))


def _mlp(lib, F, x, w, b, g, h):
    y = F.layer_norm(F.linear(x, w, b), (5,), g, h)
    return F.smooth_l1_loss(F.gelu(y).sort(dim=1)[0][:, 1:], y.topk(4)[0], beta=0.5)


def _conv_block(lib, F, x, w, g, h):
    y = F.batch_norm(F.conv2d(x, w), None, None, g, h, training=True)
    return F.silu(F.hardtanh(y, -0.5, 0.5)).tril(-1)


# (id, shapes of the leaves (float64, requires_grad), program(lib, F, *leaves))
CASES = [
    # nodes torch records where a composite recorded several (or another name)
    ("sort", [(3, 4)], lambda lib, F, x: lib.sort(x, 1)[0]),
    ("sort_descending_with_indices", [(3, 4)], lambda lib, F, x: x.sort(0, True)),
    ("sort_stable", [(3, 4)], lambda lib, F, x: x.sort(stable=True)[0]),
    ("sort_0d", [()], lambda lib, F, x: x.sort()[0]),
    ("topk", [(3, 4)], lambda lib, F, x: lib.topk(x, 2)[0]),
    ("topk_smallest_dim0", [(3, 4)], lambda lib, F, x: x.topk(2, 0, largest=False)),
    ("floor", [(3, 4)], lambda lib, F, x: lib.floor(x * 3)),
    ("ceil", [(3, 4)], lambda lib, F, x: x.ceil()),
    ("round", [(3, 4)], lambda lib, F, x: (x * 3).round()),
    ("round_decimals", [(3, 4)], lambda lib, F, x: x.round(decimals=1)),
    ("trunc", [(3, 4)], lambda lib, F, x: x.trunc()),
    ("frac", [(3, 4)], lambda lib, F, x: (x * 3).frac()),
    ("gelu", [(3, 4)], lambda lib, F, x: F.gelu(x)),
    ("gelu_0d", [()], lambda lib, F, x: F.gelu(x)),
    ("gelu_tanh", [(3, 4)], lambda lib, F, x: F.gelu(x * 2, approximate="tanh")),
    ("silu", [(3, 4)], lambda lib, F, x: F.silu(x)),
    ("elu", [(3, 4)], lambda lib, F, x: F.elu(x, 0.7)),
    ("leaky_relu", [(3, 4)], lambda lib, F, x: F.leaky_relu(x, 0.2)),
    ("hardtanh", [(3, 4)], lambda lib, F, x: F.hardtanh(x * 2, -0.5, 1.0)),
    ("relu6", [(3, 4)], lambda lib, F, x: F.relu6(x * 5)),
    ("threshold", [(3, 4)], lambda lib, F, x: F.threshold(x, 0.1, -2.0)),
    ("threshold_in_place", [(3, 4)], lambda lib, F, x: F.threshold(x * 1, 0.1, 2.0, True)),
    ("tril", [(3, 4)], lambda lib, F, x: x.tril()),
    ("triu_offset", [(2, 3, 4)], lambda lib, F, x: lib.triu(x, 1)),
    ("smooth_l1", [(3, 4), (3, 4)], lambda lib, F, x, y: F.smooth_l1_loss(x, y, beta=0.5)),
    ("smooth_l1_none", [(3, 4), (3, 4)],
     lambda lib, F, x, y: F.smooth_l1_loss(x, y, reduction="none")),
    ("smooth_l1_beta0", [(3, 4), (3, 4)], lambda lib, F, x, y: F.smooth_l1_loss(x, y, beta=0.0)),
    ("huber_sum", [(3, 4), (3, 4)],
     lambda lib, F, x, y: F.huber_loss(x, y, reduction="sum", delta=0.7)),
    ("batch_norm", [(4, 3), (3,), (3,)],
     lambda lib, F, x, w, b: F.batch_norm(x, None, None, w, b, training=True)),
    ("batch_norm_no_affine", [(4, 3, 2)],
     lambda lib, F, x: F.batch_norm(x, None, None, training=True)),
    ("batch_norm_eval", [(4, 3), (3,), (3,)],
     lambda lib, F, x, w, b: F.batch_norm(x, lib.zeros(3) + 0.5, lib.ones(3) * 2, w, b)),
    ("batch_norm_empty", [(0, 3), (3,), (3,)],
     lambda lib, F, x, w, b: F.batch_norm(x, None, None, w, b, training=True)),
    ("batch_norm_no_channels", [(3, 0)], lambda lib, F, x: F.batch_norm(x, None, None,
                                                                         training=True)),
    ("batch_norm_running_stats", [(4, 3, 2), (3,)],
     lambda lib, F, x, w: F.batch_norm(x, lib.zeros(3), lib.ones(3), w, None, training=True)),
    ("layer_norm", [(3, 4), (4,), (4,)],
     lambda lib, F, x, w, b: F.layer_norm(x, (4,), w, b)),
    ("layer_norm_2d_no_affine", [(2, 3, 4)], lambda lib, F, x: F.layer_norm(x, (3, 4))),
    ("layer_norm_weight_only", [(2, 3, 4), (3, 4)],
     lambda lib, F, x, w: F.layer_norm(x, [3, 4], w)),
    # views
    ("transpose", [(3, 4)], lambda lib, F, x: x.transpose(0, 1)),
    ("transpose_same_dim", [(3, 4)], lambda lib, F, x: x.transpose(1, -1)),
    ("transpose_0d", [()], lambda lib, F, x: x.transpose(0, -1)),
    ("T_0d", [()], lambda lib, F, x: x.T),
    ("T_1d", [(4,)], lambda lib, F, x: x.T),
    ("T_2d", [(3, 4)], lambda lib, F, x: x.T),
    ("mT", [(2, 3, 4)], lambda lib, F, x: x.mT),
    ("slice", [(3, 4)], lambda lib, F, x: x[1:]),
    ("slice_whole", [(3, 4)], lambda lib, F, x: x[:]),
    ("slice_in_tuple", [(3, 4)], lambda lib, F, x: x[:, 1:3]),
    ("slice_step", [(5, 4)], lambda lib, F, x: x[::2]),
    ("narrow", [(3, 4)], lambda lib, F, x: x.narrow(1, 1, 2)),
    ("narrow_whole_dim", [(3, 4)], lambda lib, F, x: x.narrow(0, 0, 3)),
    ("as_strided", [(3, 4)], lambda lib, F, x: x.as_strided((2, 2), (1, 2))),
    ("as_strided_overlapping", [(3, 4)], lambda lib, F, x: x.as_strided((3, 3), (1, 1), 2)),
    ("split_sizes", [(3, 4)], lambda lib, F, x: lib.split(x, [1, 2])),
    ("split_equal", [(4, 4)], lambda lib, F, x: x.split(2)),
    ("chunk", [(3, 4)], lambda lib, F, x: x.chunk(2, 1)),
    ("unbind", [(3, 4)], lambda lib, F, x: x.unbind(1)),
    ("split_non_leaf", [(4, 4)], lambda lib, F, x: (x * 1).split([1, 3])),
    ("chunk_non_leaf", [(4, 4)], lambda lib, F, x: (x * 1).chunk(2)),
    ("chunk_empty_dim", [(0, 2)], lambda lib, F, x: x.chunk(3)),
    ("chunk_one", [(1, 2)], lambda lib, F, x: x.chunk(2)),
    ("split_matmul_result", [(1,), (1, 3)], lambda lib, F, a, b: (a @ b).split([1, 2], -1)),
    # None edges torch omits (index, mask, target arguments) and keeps (constants)
    ("where", [(3, 4), (3, 4)], lambda lib, F, x, y: lib.where(x > 0, x, y)),
    ("where_number_other", [(3, 4)], lambda lib, F, x: lib.where(x > 0, x, 0.0)),
    ("where_number_self", [(3, 4)], lambda lib, F, x: lib.where(x > 0, 1.0, x)),
    ("masked_fill", [(3, 4)], lambda lib, F, x: x.masked_fill(x > 0, 1.0)),
    ("masked_fill_tensor", [(3, 4), ()], lambda lib, F, x, v: x.masked_fill(x > 0, v)),
    ("index_select", [(3, 4)], lambda lib, F, x: x.index_select(0, _index(lib, 0, 2))),
    ("gather", [(3, 4)], lambda lib, F, x: x.gather(1, lib.tensor([[0], [1], [2]]))),
    ("scatter_add", [(3, 4), (1, 4)],
     lambda lib, F, x, y: x.scatter_add(0, lib.tensor([[0, 1, 2, 0]]), y)),
    ("nll_loss", [(3, 4)], lambda lib, F, x: F.nll_loss(x, _index(lib, 0, 1, 2))),
    ("cross_entropy", [(3, 4)], lambda lib, F, x: F.cross_entropy(x, _index(lib, 0, 3, 2))),
    ("cross_entropy_probabilities", [(3, 4), (3, 4)],
     lambda lib, F, x, t: F.cross_entropy(x, t.detach().softmax(1))),
    ("cross_entropy_probabilities_sum_weight", [(2, 4, 3), (2, 4, 3)],
     lambda lib, F, x, t: F.cross_entropy(x, t.softmax(1), weight=lib.ones(4) * 0.5,
                                          reduction="sum")),
    ("cross_entropy_probabilities_none_smoothing", [(4,), (4,)],
     lambda lib, F, x, t: F.cross_entropy(x, t.detach().softmax(0), reduction="none",
                                          label_smoothing=0.2)),
    ("cross_entropy_label_smoothing", [(3, 4)],
     lambda lib, F, x: F.cross_entropy(x, _index(lib, 0, 3, 2), label_smoothing=0.2)),
    ("cross_entropy_label_smoothing_sum_ignore", [(3, 4)],
     lambda lib, F, x: F.cross_entropy(x, _index(lib, 0, -100, 2), label_smoothing=0.1,
                                       reduction="sum")),
    ("cross_entropy_label_smoothing_none", [(3, 4)],
     lambda lib, F, x: F.cross_entropy(x, _index(lib, 1, 1, -100), label_smoothing=0.3,
                                       reduction="none")),
    ("cross_entropy_label_smoothing_1d", [(4,)],
     lambda lib, F, x: F.cross_entropy(x, lib.tensor(2), label_smoothing=0.5)),
    ("binary_cross_entropy", [(3, 4), (3, 4)],
     lambda lib, F, x, t: F.binary_cross_entropy(x.sigmoid(), t.detach().sigmoid())),
    ("binary_cross_entropy_weight_none", [(3, 4), (3, 4)],
     lambda lib, F, x, t: F.binary_cross_entropy(x.sigmoid(), t.sigmoid(),
                                                 weight=lib.ones(4) * 2, reduction="none")),
    ("number_minus_tensor", [(3, 4)], lambda lib, F, x: 2 - x),
    ("rsub_tensors", [(3, 4), (3, 4)], lambda lib, F, x, y: lib.rsub(x, y)),
    ("rsub_number", [(3, 4)], lambda lib, F, x: lib.rsub(x, 2.0)),
    ("sub_number_first", [(3, 4)], lambda lib, F, x: lib.sub(2.0, x)),
    ("div_number_first", [(3, 4)], lambda lib, F, x: lib.div(2.0, x + 3)),
    ("rsub_number_alpha", [(3, 4)], lambda lib, F, x: lib.rsub(x, 2.0, alpha=2)),
    # edge order of binary nodes
    ("mul", [(3, 4), (3, 4)], lambda lib, F, x, y: x * y),
    ("mul_number", [(3, 4)], lambda lib, F, x: x * 2),
    ("number_times_tensor", [(3, 4)], lambda lib, F, x: 2 * x),
    ("number_plus_tensor", [(4,)], lambda lib, F, x: 2 + x),
    ("constant_times_tensor", [(4,)], lambda lib, F, x: lib.ones(4) * x),
    ("tensor_times_constant", [(4,)], lambda lib, F, x: x * lib.ones(4)),
    ("constant_plus_tensor", [(4,)], lambda lib, F, x: lib.ones(4) + x),
    ("constant_minus_tensor", [(4,)], lambda lib, F, x: lib.ones(4) - x),
    ("constant_over_tensor", [(4,)], lambda lib, F, x: lib.ones(4) / (x + 3)),
    ("number_over_tensor", [(4,)], lambda lib, F, x: 2 / (x + 3)),
    ("shared_operands", [(4,)], lambda lib, F, x: (x * 2) * (x + 1)),
    ("python_sum", [(4, 4)], lambda lib, F, x: sum(p.sum() for p in x.split([1, 3]))),
    # _version of results torch modifies in place internally
    ("matmul_2d", [(3, 4), (4, 2)], lambda lib, F, a, b: a @ b),
    ("matmul_vector_matrix", [(4,), (4, 2)], lambda lib, F, a, b: a @ b),
    ("matmul_matrix_vector", [(3, 4), (4,)], lambda lib, F, a, b: a @ b),
    ("matmul_vector_batch", [(4,), (2, 4, 3)], lambda lib, F, a, b: a @ b),
    ("matmul_batch_matrix", [(2, 3, 4), (4, 2)], lambda lib, F, a, b: a @ b),
    ("linear", [(3, 4), (5, 4), (5,)], lambda lib, F, a, w, b: F.linear(a, w, b)),
    ("linear_3d", [(2, 3, 4), (5, 4), (5,)], lambda lib, F, a, w, b: F.linear(a, w, b)),
    ("linear_no_bias", [(3, 4), (5, 4)], lambda lib, F, a, w: F.linear(a, w)),
    ("linear_vector", [(4,), (5, 4), (5,)], lambda lib, F, a, w, b: F.linear(a, w, b)),
    ("linear_vector_no_bias", [(4,), (5, 4)], lambda lib, F, a, w: F.linear(a, w)),
    ("linear_strided_vector", [(4, 3), (2, 4), (2,)],
     lambda lib, F, a, w, b: F.linear(a[:, -1], w, b)),
    ("linear_strided_3d", [(2, 4, 3), (5, 4), (5,)],
     lambda lib, F, a, w, b: F.linear(a.transpose(1, 2), w, b)),
    ("normalize", [(2, 3)], lambda lib, F, x: F.normalize(x, dim=-1)),
    ("normalize_p1", [(2, 3)], lambda lib, F, x: F.normalize(x, p=1.0, dim=0)),
    ("avg_pool2d", [(1, 2, 5, 6)], lambda lib, F, x: F.avg_pool2d(x, 2)),
    ("avg_pool2d_padded", [(2, 5, 6)], lambda lib, F, x: F.avg_pool2d(x, (3, 2), (1, 2), 1)),
    ("bilinear", [(3, 4), (3, 5), (2, 4, 5), (2,)],
     lambda lib, F, a, b, w, c: F.bilinear(a, b, w, c)),
    ("bilinear_no_bias", [(3, 4), (3, 5), (2, 4, 5)], lambda lib, F, a, b, w: F.bilinear(a, b, w)),
    ("bilinear_vector", [(4,), (5,), (2, 4, 5), (2,)],
     lambda lib, F, a, b, w, c: F.bilinear(a, b, w, c)),
    ("bilinear_3d", [(2, 3, 4), (2, 3, 5), (3, 4, 5)],
     lambda lib, F, a, b, w: F.bilinear(a, b, w)),
    ("bilinear_empty_batch", [(0, 4), (0, 5), (2, 4, 5), (2,)],
     lambda lib, F, a, b, w, c: F.bilinear(a, b, w, c)),
    # whole programs
    ("mlp", [(3, 4), (5, 4), (5,), (5,), (5,)], _mlp),
    ("conv_block", [(2, 2, 4, 4), (3, 2, 2, 2), (3,), (3,)], _conv_block),
]


def _name(node) -> str:
    return node.name().replace("torch::autograd::", "")


def walk(outputs) -> list:
    """Every node reached from the outputs' grad_fns, depth first in edge order (an explicit
    stack), as (name, ((producer name or None, output number), ...))."""
    rows = []
    seen = set()
    stack = [o.grad_fn for o in reversed(outputs)]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        edges = tuple((None if n is None else _name(n), nr) for n, nr in node.next_functions)
        rows.append((_name(node), edges))
        stack.extend(n for n, _ in reversed(node.next_functions))
    return rows


def _array(t):
    if t is None:
        return None
    if isinstance(t, torch.Tensor):
        return t.detach().numpy(force=True).copy()    # a ZeroTensor gradient too
    return t.detach().numpy().copy()


def run(lib, F, program, shapes):
    rng = np.random.default_rng(0)
    leaves = [lib.tensor(rng.standard_normal(s), dtype=lib.float64, requires_grad=True)
              for s in shapes]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = program(lib, F, *leaves)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    result = {"walk": walk([o for o in outs if o.grad_fn is not None]),
              "versions": [o._version for o in outs],
              "values": [_array(o) for o in outs]}
    diff = [o for o in outs if o.requires_grad]
    cotangents = [lib.tensor(rng.standard_normal(tuple(o.shape))) for o in diff]
    grads = lib.autograd.grad(diff, leaves, cotangents, create_graph=True, allow_unused=True)
    result["grads"] = [_array(g) for g in grads]
    again = [(g * lib.tensor(rng.standard_normal(tuple(g.shape)))).sum()
             for g in grads if g is not None and g.requires_grad]
    if again:
        second = lib.autograd.grad(sum(again), leaves, allow_unused=True)
        result["second"] = [_array(g) for g in second]
    else:
        result["second"] = None
    return result


def _same_arrays(got, want, what):
    assert len(got) == len(want), what
    for k, (g, w) in enumerate(zip(got, want)):
        assert (g is None) == (w is None), f"{what} {k}: None in one only"
        if w is not None:
            assert g.shape == w.shape, f"{what} {k}: shape"
            np.testing.assert_allclose(g, w, rtol=1e-7, atol=1e-9, err_msg=f"{what} {k}")


@pytest.mark.parametrize("shapes, program", [pytest.param(s, p, id=i) for i, s, p in CASES])
def test_graph_matches_torch(shapes, program):
    want = run(torch, TF, program, shapes)
    got = run(gt, GF, program, shapes)
    assert got["walk"] == want["walk"]
    assert got["versions"] == want["versions"]
    _same_arrays(got["values"], want["values"], "value")
    _same_arrays(got["grads"], want["grads"], "gradient")
    if want["second"] is None or got["second"] is None:
        # no gradient depends on the inputs in one of them: then not in the other either,
        # or its second-order gradients are all zero
        other = got["second"] if want["second"] is None else want["second"]
        for g in other or ():
            assert g is None or not np.any(g)
    else:
        zeros = [None if g is None else g * 0 for g in want["second"]]
        _same_arrays([z if g is None and z is not None else g
                      for g, z in zip(got["second"], zeros)],
                     [z if w is None and z is not None else w
                      for w, z in zip(want["second"], zeros)], "second-order gradient")


def test_walk_reaches_every_node_of_a_long_chain():
    """The walk is iterative: a 5000-node chain (deeper than Python's recursion limit)."""
    x = gt.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y.trunc() - y
    assert len(walk([y])) == 2 * 5000 + 1


def test_next_functions_skip_index_inputs_but_keep_their_order():
    """gather(x, dim, index) records one edge (x); scatter_add records (self, src) in that
    order; where(cond, a, b) records (a, b), a None for a constant a."""
    x = gt.tensor(np.ones((2, 3)), requires_grad=True)
    src = gt.tensor(np.ones((1, 3)), requires_grad=True)
    index = gt.tensor([[0, 1, 0]])
    node = x.scatter_add(0, index, src).grad_fn
    assert [n.variable for n, _ in node.next_functions] == [x, src]
    node = gt.where(x > 0, 2.0, x).grad_fn
    assert node.next_functions[0] == (None, 0)
    assert node.next_functions[1][0].variable is x
    assert len(x.gather(1, gt.tensor([[0], [2]])).grad_fn.next_functions) == 1


def test_node_hooks_see_one_gradient_per_edge():
    """A hook on WhereBackward0 gets (and may return) two gradients, as torch's."""
    results = []
    for lib in (torch, gt):
        x = lib.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
        y = lib.tensor(np.array([1.0, 1.0, 1.0]), requires_grad=True)
        z = lib.where(x > 0, x, y)
        seen = []

        def hook(grad_inputs, grad_outputs, seen=seen):
            seen.append(len(grad_inputs))
            return (grad_inputs[0] * 10, grad_inputs[1] * 100)
        z.grad_fn.register_hook(hook)
        z.sum().backward()
        results.append((seen, x.grad.numpy().tolist(), y.grad.numpy().tolist()))
    assert results[1] == results[0]


@pytest.mark.parametrize("program", [
    lambda lib, x, c: lib.where(c, x, 0.0),
    lambda lib, x, c: lib.where(c, 1.0, x),
    lambda lib, x, c: x.masked_fill(c, 2.0),
    lambda lib, x, c: x.masked_fill(c, lib.tensor(2.0)),
], ids=["where_self", "where_other", "masked_fill", "masked_fill_tensor"])
def test_selection_saves_the_mask_only(program):
    """where / masked_fill save the condition, not the values: changing the values in place
    afterwards is no version error (torch), and the gradient is the masked cotangent."""
    grads = []
    for lib in (torch, gt):
        x = lib.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
        y = x * 1
        out = program(lib, y, lib.tensor([True, False, True]))
        y.mul_(2)
        out.sum().backward()
        grads.append(x.grad.numpy().tolist())
    assert grads[1] == grads[0]


@pytest.mark.parametrize("pieces", [
    lambda y: y.chunk(2), lambda y: y.split([1, 3]), lambda y: y.unbind(),
], ids=["chunk", "split_with_sizes", "unbind"])
def test_pieces_share_the_version_counter_of_their_input(pieces):
    """split/chunk/unbind return views: an in-place change of the input (or of one piece,
    outside autograd) shows in every piece's _version, as in torch."""
    versions = []
    for lib in (torch, gt):
        y = lib.tensor(np.arange(4.0))
        parts = pieces(y)
        y.mul_(2)
        parts[0].add_(1)
        versions.append([p._version for p in parts] + [y._version])
    assert versions[1] == versions[0]


def _outcome(fn, lib):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn(lib, TF if lib is torch else GF)
    except (RuntimeError, NotImplementedError, IndexError, ValueError, TypeError) as err:
        kind = next(c for c in type(err).__mro__ if c.__module__ == "builtins")
        # shapes print as gradtool.Size([...]) where torch prints torch.Size([...])
        return ("error", kind.__name__, str(err).replace("gradtool.Size", "torch.Size"))
    return ("ok", tuple(out.shape), str(out.dtype).split(".")[-1], out.detach().numpy().tolist())


@pytest.mark.parametrize("fn", [
    lambda lib, F: F.gelu(lib.tensor([1, 2])),
    lambda lib, F: F.silu(lib.tensor([True, False])),
    lambda lib, F: F.elu(lib.tensor([1, 2], dtype=lib.int32)),
    lambda lib, F: F.leaky_relu(lib.tensor([1, 2])),
    lambda lib, F: F.hardtanh(lib.tensor([-3, 0, 3])),
    lambda lib, F: F.relu6(lib.tensor([True])),
    lambda lib, F: F.threshold(lib.tensor([1, 2, 3]), 1.5, 0),
    lambda lib, F: F.threshold(lib.tensor([True]), 0.5, 0),
    lambda lib, F: lib.floor(lib.tensor([True])),
    lambda lib, F: lib.tensor([-3, 4]).round(),
    lambda lib, F: lib.tensor([-3, 4]).round(decimals=1),
    lambda lib, F: lib.tensor([1, 2]).frac(),
    lambda lib, F: F.smooth_l1_loss(lib.tensor([1, 2]), lib.tensor([0, 2])),
    lambda lib, F: F.huber_loss(lib.tensor([1, 2]), lib.tensor([0, 2])),
    lambda lib, F: F.layer_norm(lib.tensor([[1, 2]]), (2,)),
    lambda lib, F: F.batch_norm(lib.tensor([1.0, 2.0]), None, None, training=True),
    lambda lib, F: F.batch_norm(lib.zeros(2, 0), None, None, training=True),
    lambda lib, F: lib.zeros(0).topk(1)[0],
    lambda lib, F: lib.tensor([True, False]).topk(1)[0],
    lambda lib, F: lib.tensor(1.0).narrow(0, 0, 1),
    lambda lib, F: lib.zeros(3, 4).as_strided((5, 5), (4, 1)),
    lambda lib, F: F.nll_loss(lib.zeros(3, 4), lib.tensor([0, 1, 2]),
                              weight=lib.ones(4, requires_grad=True)),
    lambda lib, F: F.cross_entropy(lib.zeros(2, 4, 3), lib.zeros(2, 3, dtype=lib.int64),
                                   weight=lib.ones(4, requires_grad=True)),
    lambda lib, F: F.binary_cross_entropy_with_logits(
        lib.zeros(3), lib.ones(3), pos_weight=lib.ones(3, requires_grad=True)),
    lambda lib, F: F.binary_cross_entropy(lib.tensor([0.5, 1.5]), lib.ones(2)),
    lambda lib, F: F.binary_cross_entropy(lib.ones(2, 3) * 0.5, lib.ones(3)),
    lambda lib, F: F.binary_cross_entropy(lib.ones(3) * 0.5, lib.ones(3),
                                          weight=lib.ones(3, requires_grad=True)),
], ids=["gelu_long", "silu_bool", "elu_int", "leaky_relu_long", "hardtanh_long", "relu6_bool",
        "threshold_long", "threshold_bool",
        "floor_bool", "round_long", "round_decimals_long", "frac_long", "smooth_l1_long",
        "huber_long", "layer_norm_long", "batch_norm_1d", "batch_norm_no_channels",
        "topk_empty", "topk_bool", "narrow_0d", "as_strided_out_of_bounds",
        "nll_loss_weight_requires_grad", "cross_entropy_2d_weight_requires_grad",
        "bce_with_logits_pos_weight_requires_grad", "bce_out_of_range", "bce_size_mismatch",
        "bce_weight_requires_grad"])
def test_hostile_inputs_as_torch(fn):
    """Integer, bool, empty and 0-d inputs: torch's result or torch's error (type and
    text)."""
    assert _outcome(fn, gt) == _outcome(fn, torch)
