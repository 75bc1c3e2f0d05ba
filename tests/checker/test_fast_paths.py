"""The checker's shortcuts give the general path's results: the comparison restricted to a
support, and the diagonal Jacobian of elementwise graphs (one backward instead of a row
per output element)."""

import importlib

import numpy as np
import pytest

import gradtool as gt
from gradtool.checker import diagnose
from gradtool.engine.prims import elementwise

checker = importlib.import_module("gradtool.checker.gradcheck")


def _same_comparison(a, b) -> None:
    assert a.passed == b.passed
    for x, y in ((a.max_abs, b.max_abs), (a.max_rel, b.max_rel)):
        assert x == y or (x != x and y != y)
    assert a.worst == b.worst
    assert np.array_equal(a.failing, b.failing)


@pytest.mark.parametrize("seed", range(40))
def test_compare_on_a_support_is_the_whole_pass(seed):
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(1, 600, 2)
    size = int(rows * cols)
    A, N = np.zeros((rows, cols)), np.zeros((rows, cols))
    pos = rng.choice(size, size=int(rng.integers(0, min(size, 3000) + 1)), replace=False)
    # repeated values: equal errors in several chunks (ties resolve as the whole pass does)
    values = rng.choice([1.0, 2.0, -1.0, 1e-7], size=pos.size) if seed % 2 else \
        rng.standard_normal(pos.size)
    N.flat[pos] = values
    A.flat[pos] = values + (rng.random(pos.size) < 0.2) * rng.choice([1e-3, 1.0, 1e-9],
                                                                     size=pos.size)
    if pos.size and seed % 4 == 1:
        A.flat[pos[0]] = np.nan
    if pos.size > 1 and seed % 4 == 2:
        A.flat[pos[:2]] = N.flat[pos[:2]] = np.inf      # inf - inf: NaN, a failure
    if pos.size > 1 and seed % 4 == 3:
        N.flat[pos[1]] = -np.inf
    support = np.union1d(pos, rng.choice(size, size=min(size, 7), replace=False))
    whole = diagnose.compare(A, N, 1e-5, 1e-3)
    _same_comparison(whole, diagnose.compare(A, N, 1e-5, 1e-3, support=support))
    # the whole pass itself, checked entry by entry
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(A - N) <= 1e-5 + 1e-3 * np.abs(N))
    assert np.array_equal(whole.failing, bad)
    assert whole.passed == (not bad.any())


def _results(fn, inputs, monkeypatch, positional: bool):
    """The check's result, and whether the diagonal shortcut was taken."""
    taken = []
    real = checker._diagonal

    def spy(*args):
        diagonal = real(*args)
        taken.append(diagonal is not None)
        return diagonal

    monkeypatch.setattr(checker, "_diagonal", spy)
    if not positional:
        monkeypatch.setattr(checker, "_positional", lambda out, inputs: False)
    result = gt.check(fn, inputs)
    monkeypatch.undo()
    return result, any(taken)


def _same_result(a, b) -> None:
    assert a.passed == b.passed
    assert a.problems == b.problems
    assert len(a.blocks) == len(b.blocks)
    for x, y in zip(a.blocks, b.blocks):
        assert (x.passed, x.kind, x.diagnosis, x.worst_index) == \
            (y.passed, y.kind, y.diagnosis, y.worst_index)
        assert x.max_abs_error == y.max_abs_error or \
            (x.max_abs_error != x.max_abs_error and y.max_abs_error != y.max_abs_error)
        assert np.array_equal(x.analytical, y.analytical, equal_nan=True)
        assert np.array_equal(x.numerical, y.numerical, equal_nan=True)


def _leaf(data):
    return gt.tensor(np.asarray(data, dtype=np.float64), requires_grad=True)


def _cases():
    """name: (function, input arrays, whether the shortcut applies)."""
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(300), rng.standard_normal(300)
    return {
        "tanh*sin": (lambda a: gt.tanh(a) * gt.sin(a), [x], True),
        "two inputs": (lambda a, b: a * b + gt.exp(a) - b / 3.0, [x, y], True),
        "2-D": (lambda a: gt.sigmoid(a) ** 2, [x.reshape(20, 15)], True),
        # an infinite derivative at 0: 0 * inf off the diagonal is NaN in the full rows
        "sqrt at 0": (lambda a: gt.sqrt(a), [np.abs(x) * (np.arange(300) % 7 != 0)], False),
        "not elementwise": (lambda a: gt.cumsum(a, 0) * a, [x], False),
        "broadcast input": (lambda a, b: a * b, [x, y[:1]], False),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_diagonal_shortcut_gives_the_general_result(name, monkeypatch):
    fn, arrays, applies = _cases()[name]
    general, _ = _results(fn, [_leaf(a) for a in arrays], monkeypatch, positional=False)
    shortcut, taken = _results(fn, [_leaf(a) for a in arrays], monkeypatch, positional=True)
    assert taken == applies
    _same_result(general, shortcut)


@pytest.mark.parametrize("bug", ["scale", "mixes elements", "ignores grad"])
def test_diagonal_shortcut_with_a_wrong_elementwise_rule(bug, monkeypatch):
    """A wrong rule of an engine primitive: the shortcut's verdict, numbers and diagnosis are
    the general path's (a rule that is not diagonal fails the structure check of the first
    rows, and every row is computed)."""
    rules = {
        "scale": lambda g, x, out: 2 * g * (1 - out * out),
        "mixes elements": lambda g, x, out: g * (1 - out * out) + np.roll(g, 1, axis=-1),
        "ignores grad": lambda g, x, out: g * (1 - out * out) + 1e-3,
    }
    x = np.random.default_rng(5).standard_normal(200)
    results = []
    for positional in (False, True):
        monkeypatch.setattr(elementwise.tanh, "vjps", (rules[bug],))
        results.append(_results(lambda a: gt.tanh(a) * 3.0, [_leaf(x)], monkeypatch,
                                positional))
    (general, _), (shortcut, taken) = results
    assert not general.passed
    assert taken == (bug == "scale")     # the others are not diagonal: every row runs
    _same_result(general, shortcut)


def test_positional_graphs_are_recognised():
    x = _leaf(np.arange(1.0, 5.0))
    assert checker._positional(gt.tanh(x) * gt.sin(x) + 2.0, [x])
    assert not checker._positional(gt.cumsum(x, 0), [x])
    assert not checker._positional(x * 1.0, [x, _leaf([1.0])])     # sizes differ
    y = gt.tanh(x)
    y.register_hook(lambda g: g * 2)
    assert not checker._positional(y * 1.0, [x])


def _two_input_cases():
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal(4)

    class WrongScale(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(x, y)
            return x * y

        @staticmethod
        def backward(ctx, g):
            x, y = ctx.saved_tensors
            return 2 * g * y, (g * x).sum(0)

    return {
        "passing": (lambda x, y: (gt.tanh(x) * y).sum(1), [a, b]),
        "wrong backward": (lambda x, y: WrongScale.apply(x, y), [a, b]),
    }


@pytest.mark.parametrize("name", list(_two_input_cases()))
def test_fast_mode_with_inputs_in_one_batch_as_one_by_one(name, monkeypatch):
    """Fast mode perturbs small inputs in one batch: the projections, verdicts and
    diagnoses are those of one batch per input."""
    from gradtool.checker import numeric
    fn, arrays = _two_input_cases()[name]
    results = []
    for together in (True, False):
        if not together:
            monkeypatch.setattr(numeric, "MANY_BYTES", 0)
        results.append(gt.check(fn, [_leaf(a) for a in arrays], mode="fast"))
        monkeypatch.undo()
    together, alone = results
    assert together.n_evals < alone.n_evals       # one spot check of the batch, not two
    assert together.passed == alone.passed == (name == "passing")
    assert len(together.blocks) == len(alone.blocks) == 2
    for x, y in zip(together.blocks, alone.blocks):
        assert (x.passed, x.kind, x.worst_index) == (y.passed, y.kind, y.worst_index)
        assert x.numerical_value == pytest.approx(y.numerical_value, rel=1e-9, abs=1e-12)
        assert x.analytical_value == pytest.approx(y.analytical_value, rel=1e-9, abs=1e-12)
