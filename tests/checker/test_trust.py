"""Verdicts that do not depend on how the work was batched: the reentrancy check compares two
runs of one computation, and a batch of cotangents through a custom backward gives what one
cotangent at a time gives, whatever dims the backward names."""

import importlib

import numpy as np
import pytest

import gradtool as gt
import gradtool.spec as spec_module

gradcheck_module = importlib.import_module("gradtool.checker.gradcheck")


# ---- the analytical side's chunking does not change a verdict --------------------------------
class Square(gt.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * grad


class SquareWrong(Square):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2.5 * x * grad


def _mlp(x, w1, w2):
    return (x @ w1).tanh() @ w2


def _workloads():
    rng = np.random.default_rng(1)

    def t(*shape):
        return gt.tensor(rng.standard_normal(shape), requires_grad=True)

    conv = gt.nn.Conv2d(2, 3, 3)
    return [
        ("mlp", _mlp, (t(5, 6), t(6, 7), t(7, 3)), True),
        ("conv", lambda img: conv(img).tanh().sum(), (t(2, 2, 5, 5),), True),
        ("softmax", lambda x: x.softmax(1) * x, (t(4, 5),), True),
        ("square", Square.apply, (t(3, 4),), True),
        ("square_wrong", SquareWrong.apply, (t(3, 4),), False),
        ("matmul_wrong", lambda a, b: a @ b.t().t().t(), (t(3, 3), t(3, 3)), True),
    ]


@pytest.mark.parametrize("rows", [1, 7, None])
@pytest.mark.parametrize("mode", ["full", "fast"])
def test_verdicts_do_not_depend_on_chunking(monkeypatch, rows, mode):
    monkeypatch.setattr(gradcheck_module, "ANALYTICAL_CHUNK_ROWS", rows)
    for name, fn, inputs, expected in _workloads():
        result = gt.check(fn, inputs, mode=mode)
        assert result.passed is expected, (name, result.report())


def test_reentrancy_recomputes_the_same_batch(monkeypatch):
    """The rows checked twice are computed in batches of one composition (rows + the zero
    cotangent): record every batch the backward sees."""
    shapes = []
    real = gradcheck_module._analytical_rows

    def spy(vjp, out_shape, dtype, rows, zero_row=False):
        shapes.append((tuple(rows), zero_row))
        return real(vjp, out_shape, dtype, rows, zero_row)

    monkeypatch.setattr(gradcheck_module, "_analytical_rows", spy)
    x = gt.randn(4, 3, requires_grad=True)
    assert gt.check(lambda x: (x @ x.t()).tanh(), (x,)).passed
    first, again = shapes[0], shapes[-1]
    assert first == again and first[1] is True


def test_nondeterminism_is_measured_per_input():
    class NoisyInFirst(gt.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, grad):
            return grad * 0 + gt.randn(1).abs() + 1, grad * 0 + 1

    a = gt.ones(3, requires_grad=True)
    b = gt.ones(3, requires_grad=True)
    result = gt.check(NoisyInFirst.apply, (a, b))
    kinds = {blk.input_name: blk.kind for blk in result.blocks}
    assert kinds["input 0"] == "nondeterministic"
    assert "input 1" not in [blk.input_name for blk in result.blocks
                             if "not reentrant" in blk.diagnosis]


def test_backward_changing_its_saved_state_is_not_reentrant():
    class Stateful(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.acc = gt.ones_like(x)
            return x * 1

        @staticmethod
        def backward(ctx, grad):
            ctx.acc.mul_(2)
            return grad * ctx.acc / ctx.acc

    result = gt.check(Stateful.apply, (gt.randn(4, requires_grad=True),))
    assert result.passed        # deterministic values after all: acc / acc

    class Accumulating(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.acc = gt.ones_like(x)
            return x * 1

        @staticmethod
        def backward(ctx, grad):
            ctx.acc.mul_(grad + 1)
            return grad * ctx.acc

    result = gt.check(Accumulating.apply, (gt.randn(4, requires_grad=True),))
    assert not result.passed
    block = result.blocks[0]
    assert block.kind == "nondeterministic"
    assert "not reentrant" in block.diagnosis


# ---- batched backward == looped backward ------------------------------------------------------
M = np.random.default_rng(7).standard_normal((4, 4))
IDX = [2, 0, 1]

# each maps a (3, 4) tensor (and the saved x) to a (3, 4) tensor or one broadcastable to it
STEPS = [
    lambda t, x: t.sum(1, keepdim=True) * x,
    lambda t, x: t.sum(-1, keepdim=True) + x,
    lambda t, x: t.mean(0) * x,
    lambda t, x: t.mean(dim=-2, keepdim=True) * x,
    lambda t, x: t.softmax(1),
    lambda t, x: t.softmax(0) * t,
    lambda t, x: t.log_softmax(-1),
    lambda t, x: t.cumsum(1),
    lambda t, x: t.cumsum(-2) * 0.5,
    lambda t, x: t.t().t() * x,
    lambda t, x: t @ gt.tensor(M),
    lambda t, x: x @ (t.t() @ x) * 0.1 + t,
    lambda t, x: t.reshape(4, 3).t(),
    lambda t, x: t.reshape(12).reshape(3, 4).flip(0),
    lambda t, x: t[IDX],
    lambda t, x: t[:, 1:].sum(1, keepdim=True).expand(3, 4),
    lambda t, x: t[0].expand(3, 4) * x,
    lambda t, x: t.tanh() * (x > 0).to(gt.float64),
    lambda t, x: t.max(1, keepdim=True)[0] * x,
    lambda t, x: t.amax(0) + t,
    lambda t, x: t.norm(dim=1, keepdim=True) * x,
    lambda t, x: gt.where(x > 0, t, t.sum(0, keepdim=True)),
    lambda t, x: gt.cat([t[:, :2], t[:, 2:].sum(1, keepdim=True).expand(3, 2)], 1),
    lambda t, x: gt.stack([t[0], t[1] * 2, t[2].exp()]),
    lambda t, x: (t * x).var(1, keepdim=True) + t,
    lambda t, x: t.transpose(0, 1).reshape(3, 4),
]


def _random_backward(rng):
    chain = [STEPS[i] for i in rng.choice(len(STEPS), size=rng.integers(1, 4))]

    class Random(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * 1

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            t = grad
            for step in chain:
                t = step(t, x)
            return t

    return Random


def _batched_and_looped(fn, x, cotangents):
    y = fn(x)
    batched = gt.autograd.grad(y, [x], gt.tensor(cotangents), retain_graph=True,
                               is_grads_batched=True)[0].numpy()
    looped = np.stack([gt.autograd.grad(y, [x], gt.tensor(c), retain_graph=True)[0].numpy()
                       for c in cotangents])
    return batched, looped


@pytest.mark.parametrize("seed", range(40))
def test_random_backwards_batched_equals_looped(seed):
    rng = np.random.default_rng(seed)
    fn = _random_backward(rng).apply
    x = gt.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    # zero rows first and last: a batch checked only at its ends would pass by chance
    zero = np.zeros((1, 3, 4))
    cotangents = np.concatenate([zero, np.eye(12).reshape(12, 3, 4),
                                 rng.standard_normal((5, 3, 4)), zero])
    batched, looped = _batched_and_looped(fn, x, cotangents)
    np.testing.assert_allclose(batched, looped, rtol=1e-12, atol=1e-12)


def test_issue_reproduction_sum_over_explicit_dim():
    class F(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * 1

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return (grad * (x > 0).to(gt.float64)).sum(1, keepdim=True) + 0 * x

    x = gt.tensor(np.random.default_rng(3).standard_normal((3, 5)), requires_grad=True)
    batched, looped = _batched_and_looped(F.apply, x, np.eye(15).reshape(15, 3, 5))
    np.testing.assert_allclose(batched, looped, rtol=1e-12, atol=1e-12)


def test_backward_reading_values_is_looped_and_right():
    class NumpyInside(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.exp()

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            g = grad.numpy().sum(axis=1, keepdims=True) * 0 + grad.numpy()
            return gt.tensor(g * np.exp(x.detach().numpy()))

    x = gt.randn(3, 4, requires_grad=True)
    batched, looped = _batched_and_looped(NumpyInside.apply, x, np.eye(12).reshape(12, 3, 4))
    np.testing.assert_allclose(batched, looped, rtol=1e-12, atol=1e-12)
    assert gt.check(NumpyInside.apply, (x,)).passed


SPARSEMAX = """
version: 1
functions:
  Softmax:
    args: [x]
    forward: softmax(x, 1)
    backward:
      x: out * (grad - (grad * out).sum(1, keepdim=True))
  SoftmaxWrong:
    args: [x]
    forward: softmax(x, 1)
    backward:
      x: out * (grad - (grad * out).sum(0, keepdim=True))
  Sparsemax:
    args: [x]
    forward: |
      z = x - x.max(1, keepdim=True)[0]
      zs = z.unsqueeze(2)
      ge = (z.unsqueeze(1) >= zs).to(z.dtype)
      k = ge.sum(2)
      s = (ge * z.unsqueeze(1)).sum(2)
      supp = (1 + k * z > s).to(z.dtype)
      kk = supp.sum(1, keepdim=True)
      tau = ((z * supp).sum(1, keepdim=True) - 1) / kk
      clamp(z - tau, min=0)
    backward:
      x: |
        m = (out > 0).to(grad.dtype)
        m * (grad - (grad * m).sum(1, keepdim=True) / m.sum(1, keepdim=True))
checks:
  - name: softmax
    expr: Softmax(x)
    inputs: {x: {shape: [3, 5]}}
  - name: softmax_wrong_axis
    expr: SoftmaxWrong(x)
    inputs: {x: {shape: [3, 5]}}
    expect: fail
  - name: sparsemax
    expr: Sparsemax(x)
    inputs: {x: {value: [[0.1, 1.2, -0.3, 0.8, 0.75], [2.0, -1.0, 0.4, 1.7, 0.1],
                         [0.3, 0.35, 0.9, -0.2, 0.5]]}}
"""


@pytest.mark.parametrize("rows", [1, 7, None])
def test_formula_backwards_with_explicit_dims(monkeypatch, rows):
    monkeypatch.setattr(gradcheck_module, "ANALYTICAL_CHUNK_ROWS", rows)
    spec = spec_module.loads(SPARSEMAX)
    verdicts = {}
    for check in spec.checks:
        built = check.build()
        verdicts[check.name] = gt.check(built.fn, built.inputs,
                                        input_names=built.input_names).passed
    assert verdicts == {"softmax": True, "softmax_wrong_axis": False, "sparsemax": True}


# ---- auto mode chooses by cost ----------------------------------------------------------------
def test_auto_mode_picks_fast_for_a_large_mlp_by_cost():
    """64x1000 -> 1000 -> 10 tanh MLP against its ~10^6 weights: about 10^6 Jacobian entries
    (under the entry cap) but ~2x10^6 perturbed forwards: fast mode, and the report says why
    and what fast mode guarantees."""
    rng = np.random.default_rng(0)
    x = gt.tensor(rng.standard_normal((64, 1000)))
    w1 = gt.tensor(rng.standard_normal((1000, 1000)) * 0.03, requires_grad=True)
    w2 = gt.tensor(rng.standard_normal((1000, 10)) * 0.03, requires_grad=True)
    result = gt.check(lambda w1, w2: ((x @ w1).tanh() @ w2).pow(2).mean(), (w1, w2),
                      mode="auto")
    assert result.passed
    assert result.mode.startswith("fast (4 projections; auto: full mode estimated over 5 s")
    assert "a single wrong entry over" in result.mode


def test_auto_mode_keeps_cheap_checks_full(monkeypatch):
    x = gt.randn(300, requires_grad=True)
    result = gt.check(lambda x: (x.tanh() * x.sin()).sum(), (x,), mode="auto")
    assert result.mode.startswith("full (auto: estimated within 5 s)")
    monkeypatch.setattr(gradcheck_module, "AUTO_FULL_SECONDS", 0.0)
    result = gt.check(lambda x: (x.tanh() * x.sin()).sum(), (x,), mode="auto")
    assert result.mode.startswith("fast")


def test_fast_mode_failure_is_not_recomputed_in_full_when_too_dear(monkeypatch):
    monkeypatch.setattr(gradcheck_module, "AUTO_FULL_SECONDS", 0.0)
    result = gt.check(SquareWrong.apply, (gt.randn(30, requires_grad=True),), mode="fast")
    assert not result.passed
    assert "recomputed in full" not in result.blocks[0].mode
    monkeypatch.setattr(gradcheck_module, "AUTO_FULL_SECONDS", 5.0)
    result = gt.check(SquareWrong.apply, (gt.randn(30, requires_grad=True),), mode="fast")
    assert "recomputed in full" in result.blocks[0].mode
    assert result.blocks[0].kind == "scale"


def test_the_same_tensor_twice_is_two_inputs():
    torch = pytest.importorskip("torch")
    x = gt.randn(3, requires_grad=True)
    assert gt.check(lambda a, b: a * b, (x, x)).passed
    assert gt.gradcheck(lambda a, b, c: (a * b).sum() + c.exp().sum(), (x, x, x))
    assert not gt.check(lambda a, b: SquareWrong.apply(a) * b, (x, x)).passed
    xt = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: a * b, (xt, xt))


def test_rounding_level_gaps_are_not_nondeterminism():
    """Two runs of one batch can differ in the last bits only through memory alignment
    inside a BLAS kernel: not a verdict.  A real difference still is."""
    def noisy(scale):
        class Noisy(gt.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            def backward(ctx, grad):
                (x,) = ctx.saved_tensors
                return 2 * x * grad * (1 + scale * gt.rand(1))
        return Noisy

    x = gt.randn(5, requires_grad=True)
    assert gt.check(noisy(2e-16).apply, (x,)).passed
    result = gt.check(noisy(1e-9).apply, (x,))
    assert not result.passed and result.blocks[0].kind == "nondeterministic"
