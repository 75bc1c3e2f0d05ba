"""Cross-check against torch: the same expression, written once for both namespaces, gives
the same value, the same gradients (reverse mode), the same JVP (forward mode) and the same
sequence of backward node names (breadth-first over next_functions) on float64 inputs."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import gradtool as gt
import gradtool.nn.functional as gF

torch = pytest.importorskip("torch")
tF = torch.nn.functional
fwAD = torch.autograd.forward_ad


def _inputs():
    rng = np.random.default_rng(0)
    n = rng.standard_normal
    return {
        "x": n((3, 4)), "y": n((3, 4)),
        "p": rng.uniform(0.5, 2.0, (3, 4)),          # positive
        "u": rng.uniform(-0.8, 0.8, (3, 4)),         # inside (-1, 1)
        "q": rng.uniform(0.1, 0.9, (3, 4)),          # probabilities
        "v": n(4), "w": n((4, 5)),
        "b3": n((2, 3, 4)), "c3": n((2, 4, 2)),
        "A": n((3, 3)) * 0.5 + 2 * np.eye(3), "Bm": n((3, 2)),
    }


# (name, expression, compare node names?)  Expressions take the namespace m (gradtool or
# torch), the functional namespace F, then inputs by name (see _inputs).
EXPRESSIONS = [
    ("arith", lambda m, F, x, y: ((x + y * 2 - y / 3) ** 2).sum()),
    ("rsub_rdiv", lambda m, F, x, p: ((2 - x) * (1 / p) + (x - 2) * 0.5).sum()),
    ("add_sub_alpha", lambda m, F, x, y: (m.add(x, y, alpha=2) + m.sub(x, y, alpha=0.5)).sum()),
    ("pow_tensor", lambda m, F, p, y, x: (p ** y + 2 ** x + p ** 0.5 + x.square()).sum()),
    ("neg_abs_sign", lambda m, F, x: ((-x).abs() * x.sign() + x.reciprocal()).sum()),
    ("exp_log", lambda m, F, x, p: (m.exp(x) + m.log(p) + p.log1p() + x.expm1()).sum()),
    ("log2_log10_remainder", lambda m, F, p, x: (p.log2() + m.log10(p) + x % 0.7
                                                 + m.remainder(x, p)).sum()),
    ("sqrt_rsqrt", lambda m, F, p: (p.sqrt() * p.rsqrt() + m.sqrt(p)).sum()),
    ("trig", lambda m, F, x, y: (m.sin(x) * m.cos(y) + m.tan(x * 0.5)).sum()),
    ("hyperbolic", lambda m, F, x, y: (m.tanh(x) + m.sinh(y) * m.cosh(x)).sum()),
    ("inverse_trig", lambda m, F, u, x, y:
     (m.asin(u) + m.acos(u) + m.atan(x) + m.atan2(x, y)).sum()),
    ("activations", lambda m, F, x: (m.sigmoid(x) + m.relu(x) + F.softplus(x)).sum()),
    ("clamp", lambda m, F, x: (x.clamp(-0.5, 0.5) + x.clamp(min=0.1) + m.clamp(x, max=0.2)
                               + x.clamp_min(0.2) + x.clamp_max(0.3)).sum()),
    ("clamp_tensor", lambda m, F, x, y, p: (x.clamp(min=y) + x.clamp(y, y + p)
                                            + x.clamp_min(y) + x.clamp_max(y)).sum()),
    ("maximum_minimum", lambda m, F, x, y: (m.maximum(x, y) * m.minimum(x, y)).sum()),
    ("where", lambda m, F, x, y: (m.where(x > y, x, y * 2) + m.where(x <= 0, 0.0, x)).sum()),
    ("masked_fill", lambda m, F, x: x.masked_fill(x > 0.5, 1.0).sum()),
    ("sum_mean", lambda m, F, x: (x.sum(0) * x.mean(1, keepdim=True)).sum()
     + x.sum(dim=(0, 1)) + x.mean()),
    ("max_min", lambda m, F, x: x.max() + x.min() + x.max(0).values.sum()
     + x.min(dim=1)[0].sum() + x.max(1, keepdim=True)[0].sum()),
    ("max_binary", lambda m, F, x, y: m.max(x, y).sum()),
    ("amax_amin", lambda m, F, x: x.amax(0).sum() + x.amin(dim=(0, 1))),
    ("prod", lambda m, F, p: p.prod() + p.prod(1).sum()),
    ("var_std", lambda m, F, x: x.var() + x.var(0).sum() + x.std(1, keepdim=True).sum()
     + x.std(correction=0) + m.var(x, dim=1, unbiased=False).sum()),
    ("norm", lambda m, F, x: x.norm() + x.norm(dim=1).sum() + m.linalg.vector_norm(x, 3)
     + m.linalg.norm(x) + x.norm(p=1)),
    ("logsumexp", lambda m, F, x: x.logsumexp(1).sum() + m.logsumexp(x * 10, dim=0).sum()),
    ("softmax", lambda m, F, x, y: (F.softmax(x, -1) * y).sum() + (x.softmax(0) * y).sum()),
    ("log_softmax", lambda m, F, x, y: (F.log_softmax(x, dim=0) * y).sum()),
    ("cross_entropy", lambda m, F, x: F.cross_entropy(x, m.tensor([0, 3, 1]))),
    ("cross_entropy_none", lambda m, F, x, y:
     (F.cross_entropy(x, m.tensor([2, 0, 1]), reduction="none") * y[:, 0]).sum()),
    ("cross_entropy_1d", lambda m, F, v: F.cross_entropy(v, m.tensor(2))),
    ("nll_loss", lambda m, F, x: F.nll_loss(F.log_softmax(x, 1), m.tensor([1, 1, 3]),
                                            reduction="sum")),
    ("mse_loss", lambda m, F, x, y: F.mse_loss(x, y) + F.mse_loss(x, y, reduction="sum")),
    ("l1_loss", lambda m, F, x, y: F.l1_loss(x, y)),
    ("bce_with_logits", lambda m, F, x, q: F.binary_cross_entropy_with_logits(x, q)),
    ("matmul_2d", lambda m, F, x, w: ((x @ w) ** 2).sum() + m.mm(x, w).sum()),
    ("matmul_3d_2d", lambda m, F, b3, w: (b3 @ w).sum()),
    ("matmul_3d_3d", lambda m, F, b3, c3: ((b3 @ c3) ** 2).sum()),
    ("matmul_folded_transposed", lambda m, F, x, c3, v: ((x @ c3) ** 2).sum()
     + (v @ c3).sum()),
    ("matmul_squeezed_batch", lambda m, F, b3, c3: ((b3 @ c3[:1]) ** 2).sum()
     + ((b3[:1] @ c3) ** 2).sum()),
    ("matmul_broadcast_4d", lambda m, F, b3, c3: ((b3[None] @ c3) ** 2).sum()
     + (b3.transpose(0, 1) @ c3[0]).sum()),
    ("matmul_vectors", lambda m, F, x, v, w: (x @ v).sum() + (v @ w).sum() + (v @ v)),
    ("dot_outer", lambda m, F, v: m.dot(v, v) + (m.outer(v, v) ** 2).sum()),
    ("bmm", lambda m, F, b3, c3: m.bmm(b3, c3).sum()),
    ("linalg", lambda m, F, A, Bm: m.linalg.inv(A).sum() + m.linalg.det(A)
     + m.linalg.solve(A, Bm).sum() + m.inverse(A).sum() + m.det(A)),
    ("trace_diagonal", lambda m, F, A, x: A.trace() + A.diagonal().sum() + x.diagonal(1).sum()),
    ("transpose", lambda m, F, x, b3: (x.T @ x).sum() + x.t().sum() + b3.transpose(0, 2).sum()
     + b3.permute(2, 0, 1).sum() + b3.mT.sum()),
    ("reshape_view", lambda m, F, x: (x.reshape(12) + x.view(2, 6).reshape(-1)
                                      + x.T.reshape(12) + x.flatten()).sum()),
    ("squeeze_unsqueeze", lambda m, F, x: (x.unsqueeze(0).squeeze() + x[None].squeeze(0)
                                           + x.unsqueeze(-1).squeeze(-1)).sum()),
    ("expand", lambda m, F, x, v: (v.expand(3, 4) * x + m.broadcast_to(v, (3, 4))).sum()),
    ("cat_stack", lambda m, F, x, y: (m.cat([x, y], 0) ** 2).sum()
     + (m.stack([x, y], 1) * 2).sum()),
    ("split_chunk_unbind", lambda m, F, x: x.split(2)[1].sum() + x.chunk(2, 1)[0].sum()
     + x.unbind(1)[2].sum() + x.split([1, 3], 1)[1].sum()),
    ("split_shared_node", lambda m, F, x: (lambda parts: (parts[0].sum(0) * parts[1].sum(0)
                                                          * parts[2].sum()).sum())(x.split(1))),
    ("unbind_shared_node", lambda m, F, b3: (lambda rows: (rows[0] * rows[1]).sum())(b3.unbind(0))),
    ("indexing_basic", lambda m, F, x: x[0].sum() + x[1:3].sum() + x[:, 1:3].sum()
     + x[0, 1:3].sum() + x[..., 1].sum() + x[None].sum() + x[-1].sum() + x[::2].sum()
     + x[:].sum() + x[:, :].sum()),
    ("indexing_advanced", lambda m, F, x: x[m.tensor([0, 0, 2])].sum() + x[x > 0].sum()
     + x[:, [1, 2]].sum() + x[[0, 1], [1, 2]].sum() + x[0, [1, 1]].sum()),
    ("gather_scatter", lambda m, F, x: (x.gather(1, m.tensor([[0, 0], [3, 1], [2, 2]])) ** 2).sum()
     + (m.zeros(3, 4, dtype=m.float64).scatter_add(1, m.tensor([[0, 0], [3, 1], [2, 2]]),
                                                   x[:, :2]) ** 2).sum()),
    ("index_select", lambda m, F, x: (x.index_select(1, m.tensor([0, 2, 2])) ** 2).sum()),
    ("pad_flip_repeat", lambda m, F, x: (F.pad(x, (1, 2)) ** 2).sum() + (x.flip(0) * x).sum()
     + (x.repeat(2, 1) ** 2).sum()),
    ("cumsum", lambda m, F, x, y: (x.cumsum(1) * y).sum()),
    ("clone", lambda m, F, x: (x.clone() * x).sum()),
    # einsum is decomposed as torch decomposes it (diagonal, unsqueeze, permute, bmm, ...)
    ("einsum_matmul", lambda m, F, x, w: (m.einsum("ij,jk->ik", x, w) ** 2).sum()
     + m.einsum("ij,jk->ki", x, w).sum()),
    ("einsum_trace_diag", lambda m, F, A: m.einsum("ii->", A) + m.einsum("ii->i", A).sum()
     + m.einsum("ii", A)),
    ("einsum_batched", lambda m, F, b3, c3: (m.einsum("bij,bjk->bik", b3, c3) ** 2).sum()),
    ("einsum_outer_dot", lambda m, F, v, x: m.einsum("i,j->ij", v, v).sum() + m.einsum("i,i", v, v)
     + m.einsum("ij,j->i", x, v).sum() + m.einsum("ij->ji", x).sum()),
    ("einsum_three", lambda m, F, x, w, v: m.einsum("ij,jk,j->ik", x, w, v).sum()
     + m.einsum("...j,jk->...k", x, w).sum()),
]

CASES = [pytest.param(e[1], e[2] if len(e) > 2 else True, id=e[0]) for e in EXPRESSIONS]


def test_enough_expressions():
    assert len(EXPRESSIONS) >= 40


def _names(out) -> list:
    """Backward node names, breadth-first from out.grad_fn (each node once)."""
    names, seen, queue = [], set(), [out.grad_fn]
    while queue:
        node = queue.pop(0)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        names.append(node.name().replace("torch::autograd::", ""))
        queue.extend(fn for fn, _ in node.next_functions)
    return names


def _arguments(fn):
    names = list(inspect.signature(fn).parameters)[2:]
    data = _inputs()
    return names, [data[n] for n in names]


def _run_gradtool(fn, arrays, cotangent_seed=1):
    leaves = [gt.tensor(a, requires_grad=True) for a in arrays]
    out = fn(gt, gF, *leaves)
    v = np.random.default_rng(cotangent_seed).standard_normal(out.shape)
    grads = gt.autograd.grad(out, leaves, gt.tensor(v), allow_unused=True)
    return out, [None if g is None else g.numpy() for g in grads]


def _run_torch(fn, arrays, cotangent_seed=1):
    leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(torch, tF, *leaves)
    v = np.random.default_rng(cotangent_seed).standard_normal(tuple(out.shape))
    grads = torch.autograd.grad(out, leaves, torch.tensor(v), allow_unused=True)
    return out, [None if g is None else g.numpy() for g in grads]


@pytest.mark.parametrize("fn, compare_names", CASES)
def test_value_gradients_and_node_names(fn, compare_names):
    _, arrays = _arguments(fn)
    g_out, g_grads = _run_gradtool(fn, arrays)
    t_out, t_grads = _run_torch(fn, arrays)
    np.testing.assert_allclose(g_out.detach().numpy(), t_out.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    for g, t in zip(g_grads, t_grads):
        assert (g is None) == (t is None)
        if g is not None:
            np.testing.assert_allclose(g, t, rtol=1e-9, atol=1e-12)
    if compare_names:
        assert _names(g_out) == _names(t_out)


@pytest.mark.parametrize("fn, compare_names", CASES)
def test_forward_mode(fn, compare_names):
    _, arrays = _arguments(fn)
    rng = np.random.default_rng(2)
    tangents = [rng.standard_normal(a.shape) for a in arrays]
    with gt.autograd.forward_ad.dual_level():
        duals = [gt.autograd.forward_ad.make_dual(gt.tensor(a), gt.tensor(t))
                 for a, t in zip(arrays, tangents)]
        g_tangent = gt.autograd.forward_ad.unpack_dual(fn(gt, gF, *duals)).tangent
    with fwAD.dual_level():
        duals = [fwAD.make_dual(torch.tensor(a), torch.tensor(t))
                 for a, t in zip(arrays, tangents)]
        t_tangent = fwAD.unpack_dual(fn(torch, tF, *duals)).tangent
    np.testing.assert_allclose(g_tangent.numpy(), t_tangent.numpy(), rtol=1e-9, atol=1e-12)


# The backward of these ops is itself one node in torch; under create_graph the gradient's
# grad_fn carries torch's name for it.
BACKWARD_NODES = [
    ("index", lambda m, x: x[m.tensor([0, 0, 2])], (3, 4)),
    ("select", lambda m, x: x[0], (4,)),
    ("slice", lambda m, x: x[1:3], (2, 4)),
    ("diagonal", lambda m, x: x.diagonal(), (3,)),
    ("gather", lambda m, x: x.gather(1, m.tensor([[0], [1], [2]])), (3, 1)),
    ("index_select", lambda m, x: x.index_select(1, m.tensor([0, 2])), (3, 2)),
]


@pytest.mark.parametrize("fn, cotangent_shape", [pytest.param(f, s, id=n)
                                                 for n, f, s in BACKWARD_NODES])
def test_backward_of_backward_node_names(fn, cotangent_shape):
    rng = np.random.default_rng(3)
    x, v = rng.standard_normal((3, 4)), rng.standard_normal(cotangent_shape)
    results = []
    for m in (gt, torch):
        xt = m.tensor(x, requires_grad=True)
        vt = m.tensor(v, requires_grad=True)
        g, = m.autograd.grad(fn(m, xt), xt, vt, create_graph=True)
        gg, = m.autograd.grad((g * g).sum(), vt)
        results.append((g.grad_fn.name(), g.detach().numpy(), gg.detach().numpy()))
    (g_name, g_val, g_gg), (t_name, t_val, t_gg) = results
    assert g_name == t_name
    np.testing.assert_allclose(g_val, t_val)
    np.testing.assert_allclose(g_gg, t_gg)


def _random_key(rng: np.random.Generator, shape: tuple):
    """A random index mixing ints, slices (negative, stepped, full), None, Ellipsis, integer
    lists and boolean masks."""
    parts, dim = [], 0
    for _ in range(int(rng.integers(1, 4))):
        if dim >= len(shape):
            break
        n = shape[dim]
        kind = rng.random()
        if kind < 0.25:
            part = int(rng.integers(-n, n))
        elif kind < 0.5:
            part = slice(*(rng.choice([None, int(rng.integers(-n - 1, n + 1))]) for _ in range(2)),
                         rng.choice([None, 1, 2, 3]))
        elif kind < 0.65:
            part = None
        elif kind < 0.85:
            part = [int(i) for i in rng.integers(-n, n, int(rng.integers(1, 4)))]
        else:
            part = rng.random(n) > 0.5
        parts.append(part)
        dim += part is not None
    if rng.random() < 0.2:
        parts.insert(int(rng.integers(len(parts) + 1)), Ellipsis)
    return tuple(parts) if len(parts) != 1 or rng.random() < 0.5 else parts[0]


def _converted(m, key):
    if isinstance(key, tuple):
        return tuple(_converted(m, k) for k in key)
    return m.tensor(key) if isinstance(key, np.ndarray) else key


def test_random_indexing_matches_torch():
    """Values, node names and gradients of x[key] for 300 random keys."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5))
    for _ in range(300):
        key = _random_key(rng, x.shape)
        results = []
        for m in (gt, torch):
            leaf = m.tensor(x, requires_grad=True)
            try:
                out = leaf[_converted(m, key)]
            except (IndexError, RuntimeError, ValueError, TypeError):
                results.append(None)
                continue
            v = np.random.default_rng(1).standard_normal(tuple(out.shape))
            grad, = m.autograd.grad(out, leaf, m.tensor(v))
            results.append((out.detach().numpy(), _names(out), grad.numpy()))
        mine, theirs = results
        assert (mine is None) == (theirs is None), key
        if mine is not None:
            np.testing.assert_array_equal(mine[0], theirs[0], err_msg=str(key))
            assert mine[1] == theirs[1], key
            np.testing.assert_allclose(mine[2], theirs[2], err_msg=str(key))


def _random_equation(rng: np.random.Generator, n_operands: int) -> str:
    subs = ["".join(rng.choice(list("abcdeA"), int(rng.integers(1, 4))))
            for _ in range(n_operands)]
    letters = sorted(set("".join(subs)))
    if rng.random() < 0.2:
        return ",".join(subs)                     # implicit output
    out = rng.permutation(letters)[:int(rng.integers(0, len(letters) + 1))]
    return ",".join(subs) + "->" + "".join(out)


def test_random_einsum_matches_torch():
    """Values and gradients of random equations; node names too for one and two operands
    (with three, torch's choice of memory layout for broadcast products can differ from
    numpy's, which changes a view into a copy in a few equations)."""
    size = {"a": 2, "b": 3, "c": 4, "d": 2, "e": 3, "A": 2}
    rng = np.random.default_rng(0)
    for _ in range(150):
        n_operands = int(rng.choice([1, 2, 2, 3]))
        equation = _random_equation(rng, n_operands)
        lhs = equation.split("->")[0].split(",")
        arrays = [rng.standard_normal([size[c] for c in sub]) for sub in lhs]
        results = []
        for m in (gt, torch):
            leaves = [m.tensor(a, requires_grad=True) for a in arrays]
            out = m.einsum(equation, *leaves)
            v = np.random.default_rng(1).standard_normal(tuple(out.shape))
            grads = m.autograd.grad(out, leaves, m.tensor(v), allow_unused=True)
            results.append((out.detach().numpy(), _names(out),
                            [None if g is None else g.numpy() for g in grads]))
        mine, theirs = results
        np.testing.assert_allclose(mine[0], theirs[0], err_msg=equation)
        for g, t in zip(mine[2], theirs[2]):
            assert (g is None) == (t is None), equation
            if g is not None:
                np.testing.assert_allclose(g, t, err_msg=equation)
        if n_operands < 3:
            assert mine[1] == theirs[1], equation


def _pad(m, t, widths):
    return (tF if m is torch else gF).pad(t, widths)


# One step of a random chain: (op, applies to tensors of ndim >= this).  Strided, permuted,
# expanded and copied intermediates decide which reshapes are views: these chains check
# that the same nodes come out as in torch.
CHAIN_STEPS = [
    (lambda m, t: t.exp(), 0), (lambda m, t: t * 2, 0), (lambda m, t: 1 - t, 0),
    (lambda m, t: t / 3, 0), (lambda m, t: t ** 2, 0), (lambda m, t: t + t, 0),
    (lambda m, t: t.sum(0, keepdim=True), 1), (lambda m, t: t.mean(-1), 1),
    (lambda m, t: t.transpose(0, -1), 2), (lambda m, t: t.permute(*reversed(range(t.ndim))), 1),
    (lambda m, t: t.reshape(-1), 0), (lambda m, t: t.unsqueeze(0), 0),
    (lambda m, t: t.squeeze(), 0), (lambda m, t: t[0], 1), (lambda m, t: t[..., ::2], 1),
    (lambda m, t: t.relu(), 0), (lambda m, t: t.clamp(-0.5, 0.5), 0),
    (lambda m, t: t.max(-1).values, 1), (lambda m, t: t.softmax(-1), 1),
    (lambda m, t: t.flatten(), 0), (lambda m, t: t.expand(2, *t.shape), 0),
    (lambda m, t: m.stack([t, t]), 0), (lambda m, t: m.cat([t, t]), 1),
    (lambda m, t: t @ t.transpose(-1, -2), 2), (lambda m, t: t.var(-1), 1),
    (lambda m, t: t.cumsum(0), 1), (lambda m, t: t.flip(0), 1), (lambda m, t: t.contiguous(), 0),
    (lambda m, t: t.logsumexp(0), 1), (lambda m, t: t.split(1)[0], 1),
    (lambda m, t: t.unbind(0)[-1], 1), (lambda m, t: m.where(t > 0, t, t * 0.5), 0),
    (lambda m, t: t.index_select(0, m.tensor([0, 0])), 1), (lambda m, t: _pad(m, t, (1, 1)), 1),
    (lambda m, t: m.ones(t.shape[-2], dtype=m.float64) @ t, 2),
    (lambda m, t: t @ m.ones(t.shape[-1], dtype=m.float64), 2), (lambda m, t: t.diagonal(), 2),
    (lambda m, t: t[:, None], 1), (lambda m, t: t[[0, 0]], 1), (lambda m, t: t.log_softmax(0), 1),
]


def _run_chain(m, x, steps):
    t = x
    for k in steps:
        step, min_ndim = CHAIN_STEPS[k]
        if t.ndim >= min_ndim and all(n > 0 for n in t.shape):
            t = step(m, t)
    return t


def test_random_op_chains_match_torch():
    """Values, node names and JVPs of 300 random chains of 1-4 steps."""
    rng = np.random.default_rng(0)
    x, u = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    for _ in range(300):
        steps = rng.integers(len(CHAIN_STEPS), size=int(rng.integers(1, 5)))
        results = []
        for m, ad in ((gt, gt.autograd.forward_ad), (torch, fwAD)):
            out = _run_chain(m, m.tensor(x, requires_grad=True), steps)
            with ad.dual_level():
                dual = _run_chain(m, ad.make_dual(m.tensor(x), m.tensor(u)), steps)
                tangent = ad.unpack_dual(dual).tangent
            results.append((out.detach().numpy(), _names(out), tangent.numpy()))
        (mine, my_names, my_jvp), (theirs, their_names, their_jvp) = results
        np.testing.assert_allclose(mine, theirs, err_msg=str(steps))
        assert my_names == their_names, steps
        np.testing.assert_allclose(my_jvp, their_jvp, atol=1e-12, err_msg=str(steps))
