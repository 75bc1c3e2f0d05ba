"""gt.vmap: every primitive of the op table has a batching rule that matches a loop.

The walk covers ``gradtool.engine.primitive.REGISTRY`` with the op table's sample inputs
(``prim.sample``, declared in its entry), so a new primitive without a
batching rule fails here.  Each float argument is batched alone (what the checker does: one
input perturbed at a time), then all together; dense batches and one-element perturbations
(:class:`~gradtool.engine.batching.Delta`) are both checked against one call per example.
"""

import importlib.util
import pathlib

import numpy as np
import pytest

import gradtool as gt
from gradtool.engine import vmap as V
from gradtool.engine.primitive import REGISTRY
from gradtool.engine.tensor import _make

try:  # the nn primitives register when gt.nn is imported
    import gradtool.nn  # noqa: F401
except ImportError:  # pragma: no cover
    pass

_TABLE = pathlib.Path(__file__).parents[1] / "engine" / "test_op_table.py"
_spec = importlib.util.spec_from_file_location("_op_table_samples", _TABLE)
op_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(op_table)

SIZE = 3
#: primitives that run their function example by example on purpose (see batching.multi_output)
LOOPED = {"split", "split_with_sizes", "unbind"}


def _call(prim, params):
    def fn(*args):
        outs = op_table._call(prim, list(args), params)
        return tuple(outs)
    return fn


def _batches(x, rng):
    """A dense batch near x and a batch of one-element perturbations of x."""
    noise = 1e-3 * (1 + np.abs(x)) * rng.standard_normal((SIZE,) + x.shape)
    dense = x[None] + noise
    index = rng.integers(0, max(x.size, 1), SIZE)
    delta = V.Delta(x, index, x.reshape(-1)[index] + 1e-3)
    return dense, delta


def _loop(fn, args, batches, size=SIZE):
    rows = []
    for k in range(size):
        call = list(args)
        for i, b in batches.items():
            call[i] = _make(np.array(V.example(b, k), order="C"))   # 0-d stays 0-d
        with gt.no_grad():
            rows.append([o._data for o in fn(*call)])
    return [np.stack(col) for col in zip(*rows)]


def _cases():
    for name in sorted(REGISTRY):
        yield pytest.param(name, id=name)


@pytest.mark.parametrize("name", list(_cases()))
def test_batching_rule_matches_a_loop(name):
    prim = REGISTRY[name]
    assert prim.batch is not None, f"primitive '{name}' has no batching rule in gt.vmap"
    rng = np.random.default_rng(0)
    for args, params in op_table.samples_of(prim):
        fn = _call(prim, params)
        tensors = [_make(np.asarray(a)) if isinstance(a, np.ndarray) else a for a in args]
        floats = [i for i, a in enumerate(args)
                  if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.size]
        choices = [[i] for i in floats] + ([floats] if len(floats) > 1 else [])
        for chosen in choices:
            for kind in (0, 1):
                batches = {i: _batches(np.asarray(args[i]), rng)[kind] for i in chosen}
                expected = _loop(fn, tensors, batches)
                try:
                    with gt.no_grad():
                        outs, _ = V.call_batched(fn, tuple(tensors), batches, SIZE)
                except V.VmapFallback as exc:
                    assert name in LOOPED, f"{name}: fell back to a loop: {exc}"
                    continue
                assert name not in LOOPED
                for k, (out, want) in enumerate(zip(outs, expected)):
                    got = V.as_dense(out, SIZE)
                    assert got.shape == want.shape, f"{name}: output {k} shape"
                    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12,
                                               err_msg=f"{name}: output {k}, batched "
                                               f"args {chosen}, {'delta' if kind else 'dense'}")


def test_public_vmap():
    w = gt.randn(3, 4)
    x = gt.randn(7, 5, 3)

    def f(x):
        return (gt.tanh(x) * gt.sin(x)).sum(1) + x.mm(w).relu().mean()

    batched = gt.vmap(f)
    out = batched(x)
    expected = np.stack([f(x[i]).numpy() for i in range(7)])
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    assert batched.path == "batched"
    moved = gt.vmap(lambda a, b: a * b, in_dims=(1, None), out_dims=1)(x.transpose(0, 1),
                                                                     gt.tensor(2.0))
    np.testing.assert_allclose(moved.numpy(), 2 * x.numpy().transpose(1, 0, 2))


def test_vmap_falls_back_on_value_reads():
    def f(x):
        return x * 2 if float(x.sum()) > 0 else x * 3

    x = gt.tensor([[1.0, 2.0], [-5.0, 1.0]])
    batched = gt.vmap(f)
    out = batched(x)
    np.testing.assert_allclose(out.numpy(), [[2.0, 4.0], [-15.0, 3.0]])
    assert batched.path.startswith("looped")


def test_custom_function_runs_batched():
    class Cube(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            raise AssertionError("not called")

    x = gt.randn(4, 3)
    batched = gt.vmap(Cube.apply)
    np.testing.assert_allclose(batched(x).numpy(), x.numpy() ** 3)
    assert batched.path == "batched"


@pytest.mark.parametrize("chain", ["nll", "sum", "exp_sum_dim", "mul_mean", "softmax_dim0"])
def test_lane_deltas_match_a_loop(chain):
    """softmax-like ops turn a one-element perturbation into a lane; what follows must agree
    with one call per example."""
    target = gt.tensor([0, 2, 1, 3])

    def fn(x):
        if chain == "nll":
            return gt.cross_entropy(x, target)
        if chain == "sum":
            return gt.log_softmax(x, 1).sum()
        if chain == "exp_sum_dim":
            return gt.log_softmax(x, 1).exp().sum(1)
        if chain == "mul_mean":
            return (gt.softmax(x, 1) * x).mean()
        return gt.softmax(x, 0) * 2

    rng = np.random.default_rng(1)
    base = rng.standard_normal((4, 5))
    index = np.concatenate([np.arange(20), np.arange(20)])
    value = base.reshape(-1)[index] + np.repeat([1e-3, -1e-3], 20)
    delta = V.Delta(base, index, value)
    with gt.no_grad():
        outs, _ = V.call_batched(lambda x: (fn(x),), (_make(base),), {0: delta}, 40)
    expected = _loop(lambda x: (fn(x),), [_make(base)], {0: delta}, 40)
    np.testing.assert_allclose(V.as_dense(outs[0], 40), expected[0], rtol=1e-12, atol=1e-14)
