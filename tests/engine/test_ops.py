"""Forward semantics of the public ops: values against numpy, dtypes, shapes, torch's
argument conventions (dim/axis, keepdim/keepdims, negative dims, unbiased var), torch's
error wording, and gradients where indexing repeats indices (scatter-add)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradtool as gt
from gradtool.errors import EngineError, ShapeError

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 4))
Y = RNG.standard_normal((3, 4))
P = RNG.uniform(0.5, 2.0, (3, 4))


def t(a, **kw):
    return gt.tensor(a, **kw)


def close(a, b, **kw):
    np.testing.assert_allclose(a.numpy() if isinstance(a, gt.Tensor) else a, b, **kw)


# ---- values ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name, np_fn, data", [
    ("exp", np.exp, X), ("log", np.log, P), ("log1p", np.log1p, P), ("expm1", np.expm1, X),
    ("sqrt", np.sqrt, P), ("sin", np.sin, X), ("cos", np.cos, X), ("tan", np.tan, X / 2),
    ("tanh", np.tanh, X), ("sinh", np.sinh, X), ("cosh", np.cosh, X),
    ("arcsin", np.arcsin, X / 4), ("arccos", np.arccos, X / 4), ("arctan", np.arctan, X),
    ("abs", np.abs, X), ("neg", np.negative, X), ("sign", np.sign, X),
    ("reciprocal", np.reciprocal, P), ("rsqrt", lambda a: 1 / np.sqrt(a), P),
    ("sigmoid", lambda a: 1 / (1 + np.exp(-a)), X), ("relu", lambda a: np.maximum(a, 0), X),
    ("softplus", lambda a: np.log1p(np.exp(a)), X),
])
def test_unary_values(name, np_fn, data):
    close(getattr(gt, name)(t(data)), np_fn(data), rtol=1e-12, atol=1e-15)
    close(getattr(t(data), name)(), np_fn(data), rtol=1e-12, atol=1e-15)


def test_binary_values_and_broadcasting():
    a, b = t(X), t(Y[0])
    close(a + b, X + Y[0])
    close(a - b, X - Y[0])
    close(a * b, X * Y[0])
    close(a / b, X / Y[0])
    close(t(P) ** b, P ** Y[0])
    close(2 ** a, 2 ** X)
    close(2 - a, 2 - X)
    close(2 / t(P), 2 / P)
    close(gt.maximum(a, b), np.maximum(X, Y[0]))
    close(gt.minimum(a, b), np.minimum(X, Y[0]))
    close(gt.arctan2(a, b), np.arctan2(X, Y[0]))
    close(gt.add(a, b, alpha=3), X + 3 * Y[0])
    close(gt.sub(a, b, alpha=2), X - 2 * Y[0])
    close(gt.where(a > 0, a, b), np.where(X > 0, X, Y[0]))
    close(a.clamp(-0.5, 0.5), np.clip(X, -0.5, 0.5))
    close(gt.clip(a, min=0.0), np.maximum(X, 0))
    close(a.clamp(min=t(Y)), np.maximum(X, Y))
    close(a.masked_fill(a > 0, 7.0), np.where(X > 0, 7.0, X))


def test_comparisons_are_boolean_and_not_differentiable():
    a = t(X, requires_grad=True)
    for out in (a > 0, a >= t(Y), a < 0, a <= 0, a == a, a != 0, ~(a > 0), (a > 0) & (a < 1)):
        assert out.dtype == gt.bool
        assert out.grad_fn is None and not out.requires_grad


@pytest.mark.parametrize("name, np_fn", [
    ("sum", np.sum), ("mean", np.mean), ("prod", np.prod), ("amax", np.max),
    ("amin", np.min),
])
def test_reductions_dims_keepdim(name, np_fn):
    a = t(X)
    fn = getattr(gt, name)
    close(fn(a), np_fn(X), rtol=1e-12)
    close(fn(a, 1), np_fn(X, axis=1), rtol=1e-12)
    close(fn(a, -1), np_fn(X, axis=-1), rtol=1e-12)
    close(fn(a, dim=0, keepdim=True), np_fn(X, axis=0, keepdims=True), rtol=1e-12)
    close(fn(a, axis=0, keepdims=True), np_fn(X, axis=0, keepdims=True), rtol=1e-12)
    assert fn(a, 0, keepdim=True).shape == (1, 4)
    if name != "prod":
        close(fn(a, (0, 1)), np_fn(X, axis=(0, 1)), rtol=1e-12)


def test_var_std_are_unbiased_by_default():
    a = t(X)
    close(a.var(), np.var(X, ddof=1), rtol=1e-12)
    close(a.std(0), np.std(X, axis=0, ddof=1), rtol=1e-12)
    close(a.var(1, unbiased=False), np.var(X, axis=1), rtol=1e-12)
    close(a.var(correction=0), np.var(X), rtol=1e-12)
    close(gt.std(a, axis=1, keepdims=True), np.std(X, axis=1, ddof=1, keepdims=True), rtol=1e-12)
    assert a.var().grad_fn is None
    assert t(X, requires_grad=True).var(0).grad_fn.name() == "VarBackward0"


def test_max_min_with_dim_return_values_and_indices():
    a = t(X)
    out = a.max(1)
    close(out.values, X.max(1))
    assert out.indices.dtype == gt.int64
    np.testing.assert_array_equal(out.indices.numpy(), X.argmax(1))
    values, indices = gt.min(a, dim=0, keepdim=True)
    close(values, X.min(0, keepdims=True))
    np.testing.assert_array_equal(indices.numpy(), X.argmin(0)[None])
    close(a.max(), X.max())
    close(gt.max(a, t(Y)), np.maximum(X, Y))
    assert a.argmax().item() == X.argmax()
    np.testing.assert_array_equal(a.argmin(dim=1).numpy(), X.argmin(1))


def test_norms_logsumexp_softmax():
    a = t(X)
    close(a.norm(), np.linalg.norm(X), rtol=1e-12)
    close(a.norm(p=1, dim=1), np.abs(X).sum(1), rtol=1e-12)
    close(gt.linalg.vector_norm(a, float("inf")), np.abs(X).max())
    close(gt.linalg.norm(a), np.linalg.norm(X), rtol=1e-12)
    close(a.logsumexp(1), np.log(np.exp(X).sum(1)), rtol=1e-12)
    big = t(X * 1000)
    assert np.isfinite(big.logsumexp(0).numpy()).all()
    s = gt.softmax(big, dim=1).numpy()
    assert np.isfinite(s).all()
    np.testing.assert_allclose(s.sum(1), 1.0)
    close(gt.log_softmax(a, 1), X - np.log(np.exp(X).sum(1, keepdims=True)), rtol=1e-12)
    close(a.cumsum(-1), np.cumsum(X, -1))


def test_losses():
    a = t(X)
    target = t([0, 3, 1])
    logp = X - np.log(np.exp(X).sum(1, keepdims=True))
    close(gt.cross_entropy(a, target), -logp[[0, 1, 2], [0, 3, 1]].mean(), rtol=1e-12)
    close(gt.cross_entropy(a, target, reduction="none"), -logp[[0, 1, 2], [0, 3, 1]])
    close(gt.cross_entropy(a, target, reduction="sum"), -logp[[0, 1, 2], [0, 3, 1]].sum())
    close(gt.nll_loss(a, target, ignore_index=3), -(X[0, 0] + X[2, 1]) / 2)
    close(gt.mse_loss(a, t(Y)), ((X - Y) ** 2).mean())
    close(gt.mse_loss(a, t(Y), reduction="sum"), ((X - Y) ** 2).sum())
    close(gt.l1_loss(a, t(Y)), np.abs(X - Y).mean())
    q = (P - 0.5) / 2
    expected = np.mean(np.maximum(X, 0) - X * q + np.log1p(np.exp(-np.abs(X))))
    close(gt.binary_cross_entropy_with_logits(a, t(q)), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        gt.mse_loss(a, t(Y), reduction="avg")
    with pytest.raises(ShapeError, match=r"Expected input batch_size \(3\) to match target "
                                         r"batch_size \(2\)"):
        gt.cross_entropy(a, t([0, 1]))


def test_linalg():
    A = RNG.standard_normal((3, 3)) + 3 * np.eye(3)
    B = RNG.standard_normal((3, 2))
    close(gt.linalg.inv(t(A)), np.linalg.inv(A), rtol=1e-12)
    close(gt.inverse(t(A)), np.linalg.inv(A), rtol=1e-12)
    close(gt.det(t(A)), np.linalg.det(A), rtol=1e-12)
    close(gt.linalg.solve(t(A), t(B)), np.linalg.solve(A, B), rtol=1e-12)
    close(gt.linalg.solve(t(A), t(B[:, 0])), np.linalg.solve(A, B[:, 0]), rtol=1e-12)
    close(t(A).trace(), np.trace(A))
    close(t(A).diagonal(), np.diagonal(A))
    close(gt.einsum("ij,jk->ik", t(A), t(B)), A @ B, rtol=1e-12)
    close(gt.einsum("ii", t(A)), np.trace(A))
    close(gt.einsum("...ij->...ji", t(X[None])), np.swapaxes(X[None], -1, -2))
    close(gt.einsum("i,j", t(B[:, 0]), t(B[:, 1])), np.outer(B[:, 0], B[:, 1]))
    with pytest.raises(EngineError, match="square matrices"):
        gt.linalg.inv(t(X))


def test_matmul_shapes():
    b3 = RNG.standard_normal((2, 3, 4))
    close(t(b3) @ t(Y.T), b3 @ Y.T, rtol=1e-12)
    close(t(b3) @ t(X[0]), b3 @ X[0], rtol=1e-12)
    close(t(X[0]) @ t(Y.T), X[0] @ Y.T, rtol=1e-12)
    close(t(Y.T[:3]) @ t(b3), Y.T[:3] @ b3, rtol=1e-12)
    close(gt.bmm(t(b3), t(b3.transpose(0, 2, 1))), b3 @ b3.transpose(0, 2, 1), rtol=1e-12)
    close(gt.outer(t(X[0]), t(Y[0])), np.outer(X[0], Y[0]))
    close(t(X[0]).dot(t(Y[0])), X[0] @ Y[0])


def test_shape_ops():
    a = t(X)
    close(a.reshape(2, 6), X.reshape(2, 6))
    close(a.view(-1), X.reshape(-1))
    close(a.T, X.T)
    close(a.t(), X.T)
    close(a.transpose(0, 1), X.T)
    close(a.unsqueeze(-1), X[..., None])
    close(a[None].squeeze(0), X)
    close(a.expand(2, 3, 4), np.broadcast_to(X, (2, 3, 4)))
    close(gt.broadcast_to(t(X[0]), (3, 4)), np.broadcast_to(X[0], (3, 4)))
    close(gt.cat([a, t(Y)], 1), np.concatenate([X, Y], 1))
    close(gt.concatenate([a, t(Y)], axis=0), np.concatenate([X, Y], 0))
    close(gt.stack([a, t(Y)], -1), np.stack([X, Y], -1))
    assert [p.shape for p in a.split(2)] == [(2, 4), (1, 4)]
    assert [p.shape for p in a.split([1, 3], dim=1)] == [(3, 1), (3, 3)]
    assert [p.shape for p in a.chunk(3, 1)] == [(3, 2), (3, 2)]
    assert len(a.unbind(1)) == 4
    close(a.unbind(1)[2], X[:, 2])
    close(a.flip(0), X[::-1])
    close(a.repeat(2, 1), np.tile(X, (2, 1)))
    close(gt.pad(a, (1, 2)), np.pad(X, ((0, 0), (1, 2))))
    close(gt.pad(a, (1, 1, 2, 0), value=3.0), np.pad(X, ((2, 0), (1, 1)), constant_values=3.0))
    idx = np.array([[0, 0], [3, 1], [2, 2]])
    close(a.gather(1, t(idx)), np.take_along_axis(X, idx, 1))
    close(a.index_select(0, t([2, 0])), X[[2, 0]])
    z = gt.zeros(3, 4).scatter_add(1, t(idx), t(Y[:, :2]))
    expected = np.zeros((3, 4))
    np.add.at(expected, (np.arange(3)[:, None], idx), Y[:, :2])
    close(z, expected)
    with pytest.raises(EngineError, match="view size is not compatible"):
        a.T.view(12)
    with pytest.raises(EngineError, match=r"shape '\[5, -1\]' is invalid for input of size 12"):
        a.reshape(5, -1)


def test_indexing_values():
    a = t(X)
    close(a[0], X[0])
    close(a[1:3], X[1:3])
    close(a[:, ::2], X[:, ::2])
    close(a[0, 1:3], X[0, 1:3])
    close(a[..., 1], X[..., 1])
    close(a[None, :, None], X[None, :, None])
    close(a[[0, 0, 2]], X[[0, 0, 2]])
    close(a[a > 0], X[X > 0])
    close(a[:, [1, 2]], X[:, [1, 2]])
    close(a[[0, 1], [1, 2]], X[[0, 1], [1, 2]])
    close(a[t([2, 1])], X[[2, 1]])
    close(a[-1], X[-1])
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        a[3]
    with pytest.raises(IndexError, match="too many indices"):
        a[0, 0, 0]


def test_indexing_backward_with_repeated_indices_accumulates():
    a = t(X, requires_grad=True)
    a[[0, 0, 2, 0]].sum().backward()
    expected = np.zeros((3, 4))
    expected[0] = 3
    expected[2] = 1
    close(a.grad, expected)
    b = t(X, requires_grad=True)
    (b[:, [1, 1]] * 2).sum().backward()
    expected = np.zeros((3, 4))
    expected[:, 1] = 4
    close(b.grad, expected)
    c = t(X, requires_grad=True)
    c.index_select(1, t([3, 3, 0])).sum().backward()
    np.testing.assert_array_equal(c.grad.numpy()[0], [1, 0, 0, 2])
    d = t(X, requires_grad=True)
    d.gather(0, t([[0, 0, 0, 0], [0, 1, 2, 2]])).sum().backward()
    np.testing.assert_array_equal(d.grad.numpy()[0], [2, 1, 1, 1])


def test_dtypes_are_preserved():
    a = t(X, dtype=gt.float32)
    for out in (a * 2.0, a + 1, a.exp(), a.sum(), a.mean(0), a.softmax(1), a.var(), a.norm(),
                a @ a.T, a[0], a.max(), gt.mse_loss(a, a * 0.5), a.logsumexp(0),
                gt.cross_entropy(a, t([0, 1, 2]))):
        assert out.dtype == gt.float32, out
    i = t([[1, 2], [3, 4]])
    assert i.dtype == gt.int64
    assert (i + 1).dtype == gt.int64
    assert i.sum().dtype == gt.int64
    assert (i / 2).dtype == gt.float64
    assert (i * 1.5).dtype == gt.float64
    with pytest.raises(EngineError, match="mean\\(\\): could not infer output dtype"):
        i.mean()
    with pytest.raises(EngineError, match="only Tensors of floating point"):
        i.requires_grad_()


def test_complex_flows_through_forwards():
    c = X + 1j * Y
    z = t(c)
    for out, ref in ((z.exp(), np.exp(c)), (z.sin(), np.sin(c)), ((z * z).sum(), (c * c).sum()),
                     (z.reshape(12)[3], c.reshape(12)[3]), (z[:, [0, 0]], c[:, [0, 0]]),
                     (z @ z.T, c @ c.T), (z / 2 + z.sqrt(), c / 2 + np.sqrt(c))):
        assert out.dtype == gt.complex128
        close(out, ref, rtol=1e-12)


# ---- errors in torch's wording ------------------------------------------------------------------
def test_broadcast_error_wording():
    with pytest.raises(ShapeError, match=r"The size of tensor a \(3\) must match the size of "
                                         r"tensor b \(4\) at non-singleton dimension 0"):
        t(np.ones(3)) + t(np.ones(4))
    with pytest.raises(ShapeError, match=r"The size of tensor a \(4\) must match the size of "
                                         r"tensor b \(3\) at non-singleton dimension 1"):
        t(X) * t(np.ones((3, 3)))


def test_matmul_error_wording():
    with pytest.raises(ShapeError, match=r"mat1 and mat2 shapes cannot be multiplied "
                                         r"\(3x4 and 3x4\)"):
        t(X) @ t(Y)
    with pytest.raises(ShapeError, match=r"mat1 and mat2 shapes cannot be multiplied"):
        gt.mm(t(X), t(Y))
    with pytest.raises(EngineError, match="both arguments to matmul need to be at least 1D"):
        t(X) @ t(2.0)
    with pytest.raises(ShapeError, match="inconsistent tensor size"):
        gt.dot(t(X[0]), t(X[0, :3]))
    with pytest.raises(EngineError, match="batch1 must be a 3D tensor"):
        gt.bmm(t(X), t(Y))


def test_other_error_wording():
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of "
                                         r"\[-2, 1\], but got 2\)"):
        t(X).sum(2)
    with pytest.raises(EngineError, match="At least one of 'min' or 'max' must not be None"):
        t(X).clamp()
    with pytest.raises(EngineError, match="split_with_sizes expects split_sizes to sum exactly "
                                          "to 3"):
        t(X).split([1, 1])
    with pytest.raises(ShapeError, match="The expanded size of the tensor"):
        t(X).expand(3, 5)
    with pytest.raises(EngineError, match="Number of dimensions of repeat dims"):
        t(X).repeat(2)
    with pytest.raises(IndexError, match="Target 4 is out of bounds"):
        gt.nll_loss(t(X), t([0, 4, 1]))


# ---- gradients of broadcasts reduce to the input shapes ------------------------------------------
shapes = st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple)


@settings(max_examples=40, deadline=None)
@given(shapes, shapes, st.sampled_from(["add", "sub", "mul", "div", "maximum", "where"]))
def test_broadcast_gradients_have_input_shapes(sa, sb, op):
    try:
        out_shape = np.broadcast_shapes(sa, sb)
    except ValueError:
        return
    rng = np.random.default_rng(1)
    a = t(rng.standard_normal(sa), requires_grad=True)
    b = t(rng.uniform(1, 2, sb), requires_grad=True)
    if op == "where":
        out = gt.where(t(rng.random(out_shape) > 0.5), a, b)
    else:
        out = getattr(gt, op)(a, b)
    assert out.shape == out_shape
    g = rng.standard_normal(out_shape)
    ga, gb = gt.autograd.grad(out, (a, b), t(g))
    assert ga.shape == sa and gb.shape == sb
    if op == "add":
        close(ga, _sum_to(g, sa))
        close(gb, _sum_to(g, sb))


def _sum_to(g, shape):
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead)))
    return g.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)


def test_prod_gradient_with_zeros_is_the_product_of_the_others():
    data = np.array([[1.0, 0.0, 3.0], [2.0, 0.5, 2.0], [0.0, 0.0, 1.5]])
    a = t(data, requires_grad=True)
    (a.prod(1).sum()).backward()
    expected = np.array([[0.0, 3.0, 0.0], [1.0, 4.0, 1.0], [0.0, 0.0, 0.0]])
    close(a.grad, expected)
    b = t(data[0], requires_grad=True)
    b.prod().backward()
    close(b.grad, [0.0, 3.0, 0.0])
