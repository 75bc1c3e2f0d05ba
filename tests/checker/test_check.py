"""The gradient checker: verdicts, diagnoses, modes, methods."""

import importlib
import json
import warnings

import numpy as np
import pytest

import gradtool as gt
from gradtool.errors import GradcheckError, UserError


def _x(*shape, low=None, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal(shape)
    if low is not None:
        data = low + np.abs(data)
    return gt.tensor(data, requires_grad=True)


# ---- custom Functions with known backward bugs -------------------------------------------------
def _fn(name, forward, backward):
    return type(name, (gt.autograd.Function,), {
        "forward": staticmethod(lambda ctx, x: (ctx.save_for_backward(x), forward(x))[1]),
        "backward": staticmethod(lambda ctx, g: backward(ctx.saved_tensors[0], g)),
    })


SinSign = _fn("SinSign", gt.sin, lambda x, g: -g * gt.cos(x))
SinScale = _fn("SinScale", gt.sin, lambda x, g: 2 * g * gt.cos(x))
SinZero = _fn("SinZero", gt.sin, lambda x, g: g * 0.0)
SinRight = _fn("SinRight", gt.sin, lambda x, g: g * gt.cos(x))
ConstSpurious = _fn("ConstSpurious", lambda x: x * 0.0 + 1.0, lambda x, g: g)


class MatTransposed(gt.autograd.Function):
    """y = A x with a backward using A instead of Aᵀ."""

    @staticmethod
    def forward(ctx, a, x):
        ctx.save_for_backward(a, x)
        return a.mv(x)

    @staticmethod
    def backward(ctx, g):
        a, x = ctx.saved_tensors
        return None, a.mv(g)


class Noisy(gt.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g * (2 + gt.tensor(np.random.default_rng().standard_normal(g.shape) * 1e-3))


# ---- correct functions pass ---------------------------------------------------------------------
CORRECT = [
    ("tanh*sin", lambda x: gt.tanh(x) * gt.sin(x), lambda: (_x(7),)),
    ("mean of 3(x+2)^2", lambda x: ((x + 2) * (x + 2) * 3).mean(), lambda: (_x(5),)),
    ("matmul chain", lambda a, b: (a.mm(b).tanh() ** 2).sum(1),
     lambda: (_x(3, 4), _x(4, 2, seed=1))),
    ("log/sqrt positive", lambda x: gt.log(x) + gt.sqrt(x), lambda: (_x(6, low=0.5),)),
    ("two outputs", lambda x: (x.exp(), x.sum()), lambda: (_x(4),)),
    ("custom Function", SinRight.apply, lambda: (_x(5),)),
    ("indexing + cat", lambda x: gt.cat([x[1:], x[:2] * 3]), lambda: (_x(5),)),
]


@pytest.mark.parametrize("name,fn,make", CORRECT, ids=[c[0] for c in CORRECT])
def test_correct_functions_pass(name, fn, make):
    inputs = make()
    assert gt.gradcheck(fn, inputs)
    result = gt.check(fn, inputs)
    assert result.passed, result.report()
    assert all(b.path == "batched" for b in result.blocks)


def test_constant_inputs_are_not_checked():
    x = _x(4)
    c = gt.tensor([1.0, 2.0, 3.0, 4.0])
    result = gt.check(lambda x, c, k: x * c + k, (x, c, 3.0))
    assert result.passed
    assert [b.input for b in result.blocks] == [0]


# ---- diagnoses ----------------------------------------------------------------------------------
def _failing(fn, inputs, **kw):
    result = gt.check(fn, inputs, **kw)
    assert not result.passed
    [block] = result.failures
    return block


def test_sign_error():
    block = _failing(SinSign.apply, (_x(5),))
    assert block.kind == "sign" and "sign error" in block.diagnosis


def test_constant_factor():
    block = _failing(SinScale.apply, (_x(5),))
    assert block.kind == "scale" and block.factor == pytest.approx(2.0)
    assert "2 x numerical" in block.diagnosis


def test_gradient_missing():
    block = _failing(SinZero.apply, (_x(5),))
    assert block.kind == "missing"


def test_gradient_missing_unreached_input():
    x, y = _x(3), _x(3, seed=1)
    result = gt.check(lambda x, y: x.detach() * y, (x, y))
    kinds = {b.input: b.kind for b in result.blocks}
    assert kinds == {0: "missing", 1: "ok"}
    assert "not reached" in result.failures[0].diagnosis


def test_spurious_gradient():
    block = _failing(ConstSpurious.apply, (_x(4),))
    assert block.kind == "spurious"


def test_transposed_block():
    a = gt.tensor(np.arange(9.0).reshape(3, 3) ** 1.5)
    block = _failing(MatTransposed.apply, (a, _x(3)))
    assert block.kind == "transposed"


class WeightTransposed(gt.autograd.Function):
    """x @ w with the weight's gradient returned transposed (grad.T @ x, not x.T @ grad)."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x.mm(w)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g.mm(w.t()), g.t().mm(x)


def test_transposed_weight_gradient():
    x = gt.tensor(np.random.default_rng(0).normal(size=(4, 4)), requires_grad=False)
    w = gt.tensor(np.random.default_rng(1).normal(size=(4, 4)), requires_grad=True)
    block = _failing(WeightTransposed.apply, (x, w))
    assert block.kind == "transposed" and "[4, 4] input" in block.diagnosis


def test_kink_names_the_elements():
    x = gt.tensor([0.5, -1.0, 0.0, 2.0, 1e-7], requires_grad=True)
    block = _failing(gt.relu, (x,))
    assert block.kind == "kink"
    assert block.elements == [(2,), (4,)]
    assert "relu" in block.diagnosis and "away from the kink" in block.diagnosis


def test_unstable_numerical_derivative():
    # cancellation: f = (x + 1e10) - 1e10 keeps x only to ~1e-6
    x = gt.tensor([0.3, 0.7], requires_grad=True)
    block = _failing(lambda x: ((x + 1e10) - 1e10) * x, (x,))
    assert block.kind == "unstable"
    assert "richardson" in block.diagnosis


def test_nondeterministic_backward():
    block = _failing(Noisy.apply, (_x(4),), atol=1e-1)
    assert block.kind == "nondeterministic"
    assert gt.gradcheck(Noisy.apply, (_x(4),), atol=1e-1, nondet_tol=1.0)


def test_nan_names_the_side():
    x = gt.tensor([1.0, 0.0, 4.0], requires_grad=True)
    block = _failing(gt.sqrt, (x,))
    assert block.kind == "nan"
    assert "numerical" in block.diagnosis and "[1]" in block.diagnosis


def test_gradcheck_raises_with_report():
    with pytest.raises(GradcheckError) as info:
        gt.gradcheck(SinSign.apply, (_x(5),))
    text = str(info.value)
    assert "sign error" in text and "worst element" in text
    assert info.value.result is not None
    assert gt.gradcheck(SinSign.apply, (_x(5),), raise_exception=False) is False


def test_undefined_grad_check():
    class NoUndefined(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    x = _x(3)
    with pytest.raises(GradcheckError, match="undefined"):
        gt.gradcheck(NoUndefined.apply, (x,))
    assert gt.gradcheck(NoUndefined.apply, (x,), check_undefined_grad=False)


@pytest.mark.parametrize("fast", [False, True])
def test_undefined_grad_check_both_modes(fast):
    class NoUndefined(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    result = gt.check(NoUndefined.apply, (_x(3),), mode="fast" if fast else "full")
    assert not result.passed
    assert any("all output gradients undefined" in p for p in result.problems)


def _undefined_cases():
    class NoUndefined(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    def hooked(x):
        y = gt.sin(x)
        y.register_hook(lambda g: gt.ones_like(y) if g is None else g)
        return y

    def leaf(x):
        return x

    return [("primitives", lambda x: gt.cross_entropy(x.reshape(1, -1), gt.tensor([1]))),
            ("custom root", NoUndefined.apply),
            ("custom inside", lambda x: gt.sin(NoUndefined.apply(x))),
            ("hooked output", hooked), ("leaf output", leaf),
            ("two outputs", lambda x: (gt.sin(x), NoUndefined.apply(x)))]


@pytest.mark.parametrize("name, fn", _undefined_cases())
def test_undefined_grad_shortcut_changes_nothing(name, fn, monkeypatch):
    # the all-undefined backward is skipped only where it provably finds nothing: the
    # problems found are those of running it
    G = importlib.import_module("gradtool.checker.gradcheck")   # the module, not gt's function
    x = _x(3)
    outs = fn(x)
    outs = list(outs) if isinstance(outs, tuple) else [outs]
    found = G._undefined_grad_problems(outs, [x])
    monkeypatch.setattr(G, "_inert_when_undefined", lambda roots: False)
    assert G._undefined_grad_problems(outs, [x]) == found


def _several_outputs_cases():
    class NoUndefined(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    class AddsOne(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2 + 1

    return [("primitives", lambda x: (gt.sin(x), gt.cos(x) * x), False),
            ("leaf and primitive", lambda x: (x, gt.sin(x)), False),
            ("custom inside", lambda x: (gt.sin(x), gt.sin(NoUndefined.apply(x))), False),
            ("custom root", lambda x: (gt.sin(x), NoUndefined.apply(x)), True),
            ("adds one inside", lambda x: (gt.sin(x), gt.exp(AddsOne.apply(x))), True),
            ("adds one shared", lambda x: (gt.sin(AddsOne.apply(x)), gt.cos(x)), True)]


@pytest.mark.parametrize("name, fn, wrong", _several_outputs_cases())
def test_one_undefined_output_shortcut_finds_the_same(name, fn, wrong, monkeypatch):
    # several outputs: the backwards with one output gradient undefined at a time are one
    # backward with zero gradients where each node that runs has one output; whether a
    # problem is found does not change
    G = importlib.import_module("gradtool.checker.gradcheck")
    x = _x(3)
    outs = list(fn(x))
    found = G._undefined_grad_problems(outs, [x], zero_case=False)
    monkeypatch.setattr(G, "_single_output_nodes", lambda roots, reachable: False)
    each = G._undefined_grad_problems(outs, [x], zero_case=False)
    assert bool(found) == bool(each) == wrong, (found, each)
    assert gt.check(fn, (x,)).passed is not wrong


@pytest.mark.parametrize("fast", [False, True])
def test_backward_not_multiplied_by_grad_output(fast):
    class AddsOne(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2 + 1e-9      # a constant added: invisible in the Jacobian's atol

    result = gt.check(AddsOne.apply, (_x(3),), mode="fast" if fast else "full")
    assert not result.passed
    assert any("not multiplied by grad_output" in p for p in result.problems)


def test_no_input_requires_grad():
    with pytest.raises(ValueError, match="at least one input"):
        gt.gradcheck(gt.sin, (gt.tensor([1.0]),))


# ---- result object ----------------------------------------------------------------------------
def test_result_is_json_and_reproducible(tmp_path):
    x = _x(3)
    result = gt.check(SinScale.apply, (x,), input_names=["x"], seed=7)
    data = json.loads(json.dumps(result.to_dict()))
    block = data["blocks"][0]
    assert block["input_name"] == "x" and block["kind"] == "scale"
    for key in ("max_abs_error", "max_rel_error", "worst_index", "numerical_value",
                "analytical_value", "n_evals", "wall_time", "mode", "path"):
        assert key in block
    assert result.blocks[0].numerical.shape == (3, 3)
    path = tmp_path / "inputs.npz"
    result.save_inputs(path)
    saved = np.load(path)
    assert int(saved["__seed__"]) == 7
    np.testing.assert_array_equal(saved["x"], x.detach().numpy())


# ---- modes --------------------------------------------------------------------------------------
def test_fast_mode():
    x = _x(50)
    assert gt.gradcheck(lambda x: gt.tanh(x) * gt.sin(x), (x,), fast_mode=True)
    result = gt.check(SinScale.apply, (x,), mode="fast")
    assert not result.passed
    assert result.failures[0].kind == "scale"
    assert "fast" in result.mode
    with pytest.raises(GradcheckError):
        gt.gradcheck(SinSign.apply, (x,), fast_mode=True)


def test_auto_mode_switches_to_fast(monkeypatch):
    import importlib
    module = importlib.import_module("gradtool.checker.gradcheck")
    monkeypatch.setattr(module, "AUTO_FULL_LIMIT", 10)
    result = gt.check(lambda x: gt.sin(x), (_x(20),), mode="auto")
    assert result.passed and result.mode.startswith("fast")
    assert gt.check(lambda x: gt.sin(x), (_x(3),), mode="auto").mode.startswith("full")


def test_gradgradcheck():
    x = _x(4)
    assert gt.gradgradcheck(lambda x: gt.tanh(x) * x ** 3, (x,))

    class OnceSin(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return gt.sin(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * gt.cos(x.detach())     # second derivative lost

    assert gt.gradcheck(OnceSin.apply, (x,))
    assert not gt.gradgradcheck(OnceSin.apply, (x,), raise_exception=False)
    result = gt.check(OnceSin.apply, (x,), gradgrad=True)
    assert not result.passed
    assert any(b.stage == "second order" and not b.passed for b in result.blocks)


def test_gradgrad_batched_evaluation_equals_one_call_per_example():
    """The numerical side of gradgradcheck evaluates the first-order gradient at a batch of
    perturbed inputs and grad_outputs through one backward of several graphs (or one
    batched backward): the same values as one call per example."""
    module = importlib.import_module("gradtool.checker.gradcheck")
    x, w = _x(3, 4, seed=1), _x(3, 4, seed=2)
    go = (gt.tensor(np.random.default_rng(3).uniform(-1, 1, (3, 4)), requires_grad=True),)
    new_func = module._gradgrad_function(lambda x, w: gt.tanh(x * w) * w, (x, w), go)
    args = [gt.tensor(a._data) for a in (x, w, go[0])]
    rng = np.random.default_rng(4)
    mixed = rng.standard_normal((4, 3, 4))
    mixed[[1, 3]] = x._data           # examples 1 and 3 move the grad_output alone
    for batches in ({0: rng.standard_normal((5, 3, 4))},
                    {2: rng.standard_normal((3, 3, 4))},
                    {0: rng.standard_normal((4, 3, 4)), 2: rng.standard_normal((4, 3, 4))},
                    {0: mixed, 2: rng.standard_normal((4, 3, 4))}):
        size = len(next(iter(batches.values())))
        got = new_func.batched_call(args, batches, size)
        with gt.no_grad():
            for e in range(size):
                call = [gt.tensor(batches[i][e]) if i in batches else a
                        for i, a in enumerate(args)]
                want = new_func(*call)
                assert len(want) == len(got) == 2
                for g, o in zip(got, want):
                    np.testing.assert_allclose(g[e], o._data, rtol=1e-12, atol=1e-14)


def test_gradgrad_batched_evaluation_declines_when_examples_reach_other_inputs():
    """A function whose graph depends on the values (a branch) reaches other inputs at some
    perturbed points: the batched evaluation declines and the checker calls it per
    example."""
    module = importlib.import_module("gradtool.checker.gradcheck")

    def branchy(x, w):
        return x * w if float(x.sum()) > 0 else x * 2.0

    x, w = gt.tensor([0.5, 1.0], requires_grad=True), gt.tensor([2.0, 3.0], requires_grad=True)
    go = (gt.tensor([1.0, -1.0], requires_grad=True),)
    new_func = module._gradgrad_function(branchy, (x, w), go)
    args = [gt.tensor(a._data) for a in (x, w, go[0])]
    batch = np.array([[0.5, 1.0], [-3.0, 1.0]])
    assert new_func.batched_call(args, {0: batch}, 2) is None
    assert gt.gradgradcheck(branchy, (x, w), go)


def test_forward_ad_check():
    x = _x(4)
    assert gt.gradcheck(lambda x: gt.exp(x) * x, (x,), check_forward_ad=True)

    class BadJvp(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return gt.exp(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * gt.exp(x)

        @staticmethod
        def jvp(ctx, t):
            return -t * 3.0

    result = gt.check(BadJvp.apply, (x,), forward_ad=True)
    fwd = [b for b in result.blocks if b.stage == "forward AD"]
    assert fwd and not fwd[0].passed and "forward-mode" in fwd[0].diagnosis
    assert any("forward/reverse inconsistency" in p for p in result.problems)
    fast = gt.check(BadJvp.apply, (x,), forward_ad=True, mode="fast")
    assert any("forward/reverse inconsistency" in p for p in fast.problems)


# ---- methods ------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["central", "forward", "richardson", "complex"])
def test_methods(method):
    x = _x(5)
    fn = lambda x: gt.exp(x) * gt.sin(x) + x ** 3   # noqa: E731
    atol = 1e-3 if method == "forward" else 1e-5
    result = gt.check(fn, (x,), method=method, atol=atol)
    assert result.passed, result.report()
    bad = gt.check(SinScale.apply, (x,), method=method, atol=atol)
    assert bad.failures[0].kind == "scale"


def test_complex_step_is_exact():
    x = _x(4)
    result = gt.check(lambda x: gt.exp(x) * gt.sin(x), (x,), method="complex", atol=0,
                      rtol=1e-12)
    assert result.passed, result.report()


def test_complex_step_refuses_non_analytic_ops():
    with pytest.raises(UserError, match="relu"):
        gt.check(lambda x: gt.relu(x) * 2, (_x(3),), method="complex")


def test_unknown_method():
    with pytest.raises(UserError, match="unknown method"):
        gt.check(gt.sin, (_x(2),), method="backward")


def test_float32_warns_and_upcasts():
    x = gt.tensor(np.linspace(0.1, 1.0, 6), dtype=gt.float32, requires_grad=True)
    with pytest.warns(UserWarning, match="double precision"):
        result = gt.check(lambda x: gt.sin(x) * x, (x,))
    assert result.passed, result.report()
    assert result.warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        low = gt.check(lambda x: gt.sin(x) * x, (x,), upcast=False)
    assert not low.passed and low.failures[0].kind == "unstable"


# ---- speed paths --------------------------------------------------------------------------------
def test_fallback_to_loop_is_reported():
    def reads_values(x):
        if float(x.sum()) < -100:          # data-dependent control flow: cannot batch
            return x
        return x * x

    result = gt.check(reads_values, (_x(4),))
    assert result.passed
    assert result.path.startswith("looped")


def test_value_reads_outside_the_op_table_fall_back():
    # where() takes its mask's values outside the op table: batched, one mask would serve
    # every perturbation and hide the kink at -1e-7
    x = gt.tensor([0.5, -1e-7, 2.0], requires_grad=True)
    result = gt.check(lambda x: gt.where(x > 0, x, -x), (x,))
    assert result.path.startswith("looped")
    assert not result.passed
    assert result.failures[0].kind == "kink" and result.failures[0].elements == [(1,)]


def test_chunking(monkeypatch):
    from gradtool.checker import numeric
    monkeypatch.setattr(numeric, "CHUNK_BYTES", 64)
    result = gt.check(lambda x: (gt.tanh(x) * x).sum(0), (_x(6, 3),))
    assert result.passed


# ---- properties ---------------------------------------------------------------------------------
hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

UNARY = {"tanh": gt.tanh, "sin": gt.sin, "exp": gt.exp, "sigmoid": gt.sigmoid,
         "square": lambda x: x * x, "softplus": gt.softplus}


@hypothesis.settings(max_examples=25, deadline=None, derandomize=True)
@hypothesis.given(ops=st.lists(st.sampled_from(sorted(UNARY)), min_size=1, max_size=4),
                  shape=st.sampled_from([(3,), (2, 3), (4, 1)]),
                  reduce=st.sampled_from(["none", "sum", "mean0", "mm"]),
                  seed=st.integers(0, 2 ** 16))
def test_numerical_and_analytical_jacobians_agree(ops, shape, reduce, seed):
    rng = np.random.default_rng(seed)
    x = gt.tensor(rng.uniform(-1.5, 1.5, shape), requires_grad=True)
    w = gt.tensor(rng.standard_normal((shape[-1], 2)), requires_grad=True)

    def fn(x, w):
        y = x
        for name in ops:
            y = UNARY[name](y)
        if reduce == "sum":
            return y.sum()
        if reduce == "mean0":
            return y.mean(0)
        if reduce == "mm":
            return y.reshape(-1, shape[-1]).mm(w)
        return y * w.sum()

    result = gt.check(fn, (x, w))
    assert result.passed, result.report()
    assert result.path == "batched"
    fast = gt.check(fn, (x, w), mode="fast", seed=seed)
    assert fast.passed, fast.report()
