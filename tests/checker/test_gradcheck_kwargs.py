"""gt.gradcheck / gt.gradgradcheck take torch 2.13's keyword arguments, each a real check:
the same verdict as torch.autograd.gradcheck on the same program (side by side), torch's
argument errors and torch's wording in the report."""

import inspect
import warnings

import numpy as np
import pytest

import gradtool as gt
from gradtool.checker import extra_checks
from gradtool.errors import GradcheckError, GradcheckUsageError, UserError

torch = pytest.importorskip("torch")
from torch.autograd.gradcheck import GradcheckError as TorchGradcheckError  # noqa: E402

BATCHED = "gradcheck or gradgradcheck failed while testing batched gradient computation"
BATCHED_FW = "gradcheck failed while testing batched gradient computation with forward-mode AD"


def _verdict(check, fn, inputs, **kw):
    """(passed, message) of one gradcheck call."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return check(fn, inputs, **kw), ""
        except (GradcheckError, TorchGradcheckError) as exc:
            return False, str(exc)


# ---- the signatures ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["gradcheck", "gradgradcheck"])
def test_keyword_arguments_and_defaults_are_torchs(name):
    ours = inspect.signature(getattr(gt, name)).parameters
    theirs = inspect.signature(getattr(torch.autograd, name)).parameters
    for key, param in theirs.items():
        if param.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        assert key in ours, key
        assert ours[key].default == param.default, key


# ---- argument errors: torch's words, an AssertionError as in torch 2.13 -------------------
GRADCHECK_BAD = [
    {"check_forward_ad": False, "check_backward_ad": False},
    {"check_batched_grad": True, "check_backward_ad": False, "check_forward_ad": True},
    {"check_batched_forward_grad": True},
]
GRADGRADCHECK_BAD = [
    {"check_rev_over_rev": False},
    {"check_rev_over_rev": False, "check_fwd_over_rev": False, "check_undefined_grad": False},
    {"check_rev_over_rev": False, "check_fwd_over_rev": True, "check_undefined_grad": False,
         "check_batched_grad": True},
]


@pytest.mark.parametrize("kw", GRADCHECK_BAD + [("gg", k) for k in GRADGRADCHECK_BAD],
                         ids=range(len(GRADCHECK_BAD) + len(GRADGRADCHECK_BAD)))
def test_bad_combinations_raise_torchs_error(kw):
    name = "gradcheck"
    if isinstance(kw, tuple):
        name, kw = "gradgradcheck", kw[1]
    tx = torch.randn(3, dtype=torch.float64, requires_grad=True)
    x = gt.tensor(tx.detach().numpy(), requires_grad=True)
    with pytest.raises(AssertionError) as theirs:
        getattr(torch.autograd, name)(torch.sin, (tx,), **kw)
    with pytest.raises(GradcheckUsageError) as ours:
        getattr(gt, name)(gt.sin, (x,), **kw)
    assert str(ours.value) == str(theirs.value)
    assert isinstance(ours.value, AssertionError) and isinstance(ours.value, UserError)


# ---- custom Functions, written once for both libraries ---------------------------------------
def _functions(lib):
    Function = lib.autograd.Function

    def make(name, forward, backward, jvp=None):
        cls = type(name, (Function,), {"forward": staticmethod(forward),
                                       "backward": staticmethod(backward)})
        if jvp is not None:
            cls.jvp = staticmethod(jvp)
        return cls

    def square(ctx, x):
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)
        return x ** 2

    def square_sum(ctx, x):
        ctx.save_for_backward(x)
        return (x ** 2).sum()

    def column_sum(ctx, x):
        ctx.save_for_backward(x)
        return x.sum(0)

    def good(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g

    def item(ctx, g):                       # reads a value: vmap cannot batch it
        (x,) = ctx.saved_tensors
        return 2 * x * g.item()

    def into_buffer(ctx, g):                # writes a batch into an unbatched tensor
        (x,) = ctx.saved_tensors
        out = lib.zeros_like(x)
        out.copy_(2 * x * g)
        return out

    def setitem(ctx, g):
        (x,) = ctx.saved_tensors
        out = lib.zeros_like(x)
        out[:] = 2 * x * g
        return out

    def branch(ctx, g):                     # a Python branch on tensor values
        (x,) = ctx.saved_tensors
        return 2 * x * g if bool((g > -100).all()) else g

    def via_tolist(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * lib.tensor(g.tolist(), dtype=g.dtype)

    def expand_rows(ctx, g):                # reads shapes only: fine under vmap
        (x,) = ctx.saved_tensors
        return g.unsqueeze(0).expand(x.shape[0], g.shape[0])

    return {
        "good": (make("Good", square, good), (3,), True),
        "item": (make("Item", square_sum, item), (3,), False),
        "into_buffer": (make("IntoBuffer", square, into_buffer), (3,), False),
        "setitem": (make("Setitem", square, setitem), (3,), False),
        "branch": (make("Branch", square, branch), (3,), False),
        "tolist": (make("Tolist", square, via_tolist), (3,), False),
        "expand_rows": (make("ExpandRows", column_sum, expand_rows), (2, 3), True),
    }


def _pair(shape, seed=0):
    data = np.random.default_rng(seed).standard_normal(shape)
    return (torch.tensor(data, requires_grad=True), gt.tensor(data, requires_grad=True))


@pytest.mark.parametrize("name", list(_functions(gt)))
def test_batched_grad_same_verdict_as_torch(name):
    tfn, shape, expected = _functions(torch)[name]
    gfn, _, _ = _functions(gt)[name]
    tx, x = _pair(shape)
    theirs, _ = _verdict(torch.autograd.gradcheck, tfn.apply, (tx,), check_batched_grad=True)
    ours, message = _verdict(gt.gradcheck, gfn.apply, (x,), check_batched_grad=True)
    assert theirs == ours == expected
    if not expected:
        assert "batched gradient: While computing batched gradients, got:" in message
        assert BATCHED in message
        # without the flag both pass: the failure is the batched check's
        assert _verdict(gt.gradcheck, gfn.apply, (x,))[0]
        assert _verdict(torch.autograd.gradcheck, tfn.apply, (tx,))[0]


@pytest.mark.parametrize("fn", [
    lambda x, w: (x @ w).tanh(),
    lambda x, w: (x.sin() * w.sum(0)).softmax(-1),
    lambda x, w: ((x @ w) ** 2, x.exp()),            # two outputs
    lambda x, w: x * 2.0,                           # w unused: its gradient is None
])
def test_batched_grad_of_primitives_passes_in_both(fn):
    tx, x = _pair((3, 2), 1)
    tw, w = _pair((2, 2), 2)
    assert _verdict(torch.autograd.gradcheck, fn, (tx, tw), check_batched_grad=True)[0]
    assert _verdict(gt.gradcheck, fn, (x, w), check_batched_grad=True,
                    check_grad_dtypes=True)[0]


def _batch_polymorphic_column_sum(wrong: bool):
    """A custom backward written for a leading batch axis of cotangents (the engine then
    hands it the whole batch): correct, or summing over the batch axis when batched."""

    class ColumnSum(gt.autograd.Function):
        _batch_polymorphic = True

        @staticmethod
        def forward(ctx, x):
            ctx.rows = x.shape[0]
            return x.sum(0)

        @staticmethod
        def backward(ctx, g):
            if g.ndim == 1:
                return g.unsqueeze(0).expand(ctx.rows, g.shape[0])
            if wrong:       # mixes the examples of the batch
                g = g.sum(0, keepdim=True).expand(g.shape[0], g.shape[1])
            return g.unsqueeze(1).expand(g.shape[0], ctx.rows, g.shape[1])
    return ColumnSum


@pytest.mark.parametrize("wrong", [False, True])
def test_batched_grad_catches_a_backward_that_mixes_the_batch(wrong):
    _, x = _pair((2, 3))
    fn = _batch_polymorphic_column_sum(wrong).apply
    result = gt.check(fn, (x,))     # the Jacobian check (its own batches) may see it too
    passed, message = _verdict(gt.gradcheck, fn, (x,), check_batched_grad=True)
    assert passed is not wrong
    if wrong:
        assert "batched gradient: For output 0 and input 0:" in message
        assert BATCHED in message
        assert result.passed is False or "batched gradient" in message


def test_batched_grad_in_gradgradcheck_matches_torch():
    tx, x = _pair((3,))
    for lib, check, arg in [(torch, torch.autograd.gradgradcheck, tx),
                            (gt, gt.gradgradcheck, x)]:
        fns = _functions(lib)
        assert _verdict(check, lambda t: t.tanh() * 2, (arg,), check_batched_grad=True)[0]
        # the backward of Item reads a value: its double backward does not batch either
        passed, message = _verdict(check, fns["good"][0].apply, (arg,),
                                   check_batched_grad=True)
        assert passed


# ---- batched forward-mode gradients ------------------------------------------------------------
def _jvp_functions(lib):
    Function = lib.autograd.Function

    def forward(ctx, x):
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)
        return x ** 2

    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g

    def good(ctx, t):
        (x,) = ctx.saved_tensors
        return 2 * x * t

    def item(ctx, t):
        (x,) = ctx.saved_tensors
        return 2 * x * t + 0.0 * t.sum().item()

    def into_buffer(ctx, t):
        (x,) = ctx.saved_tensors
        out = lib.zeros_like(x)
        out.copy_(2 * x * t)
        return out

    def branch(ctx, t):
        (x,) = ctx.saved_tensors
        return 2 * x * t if bool((t > -100).all()) else t

    table = {}
    for name, jvp, ok in [("good", good, True), ("item", item, False),
                          ("into_buffer", into_buffer, False), ("branch", branch, False)]:
        table[name] = (type(name, (Function,), {"forward": staticmethod(forward),
                                                "backward": staticmethod(backward),
                                                "jvp": staticmethod(jvp)}), ok)
    return table


@pytest.mark.parametrize("name", list(_jvp_functions(gt)))
def test_batched_forward_grad_same_verdict_as_torch(name):
    tcls, expected = _jvp_functions(torch)[name]
    gcls, _ = _jvp_functions(gt)[name]
    tx, x = _pair((3,))
    kw = {"check_forward_ad": True, "check_batched_forward_grad": True}
    theirs, _ = _verdict(torch.autograd.gradcheck, tcls.apply, (tx,), **kw)
    ours, message = _verdict(gt.gradcheck, gcls.apply, (x,), **kw)
    assert theirs == ours == expected
    if not expected:
        assert BATCHED_FW in message and "jvp cannot run under vmap" in message
        assert _verdict(gt.gradcheck, gcls.apply, (x,), check_forward_ad=True)[0]


def test_batched_forward_grad_of_primitives_passes_in_both():
    tx, x = _pair((4,))
    kw = {"check_forward_ad": True, "check_batched_forward_grad": True, "check_grad_dtypes": True}
    assert _verdict(torch.autograd.gradcheck, lambda t: t.tanh().sum() * t, (tx,), **kw)[0]
    assert _verdict(gt.gradcheck, lambda t: t.tanh().sum() * t, (x,), **kw)[0]


def test_vmap_of_make_dual_gives_each_example_its_tangent():
    x = gt.tensor([0.3, -1.2, 2.0])
    tangents = gt.tensor(np.random.default_rng(3).standard_normal((2, 3)))

    def jvp(t):
        with gt.autograd.forward_ad.dual_level():
            out = gt.autograd.forward_ad.make_dual(x, t).tanh()
            return gt.autograd.forward_ad.unpack_dual(out).tangent

    batched = gt.vmap(jvp)(tangents)
    for k in range(2):
        np.testing.assert_allclose(batched[k].numpy(), jvp(tangents[k]).numpy())


# ---- check_grad_dtypes -------------------------------------------------------------------------
def test_grad_dtypes_passes_where_torch_does():
    tx, x = _pair((3,))
    assert _verdict(torch.autograd.gradcheck, torch.sin, (tx,), check_grad_dtypes=True)[0]
    assert _verdict(gt.gradcheck, gt.sin, (x,), check_grad_dtypes=True)[0]


def test_grad_dtypes_fails_on_a_gradient_of_another_dtype(monkeypatch):
    """The engine casts every gradient to its input's dtype (as torch's), so a mismatch is
    an engine bug: simulated by a backward returning float32 gradients."""
    _, x = _pair((3,))
    real_grad = extra_checks.graph.grad

    def float32_grad(*args, **kw):
        return tuple(None if g is None else g.float() for g in real_grad(*args, **kw))

    monkeypatch.setattr(extra_checks.graph, "grad", float32_grad)
    problems = extra_checks.grad_dtype_problems(gt.sin, (x,), seed=0)
    assert problems and "Gradient has dtype mismatch" in problems[0]
    assert "float32" in problems[0] and "float64" in problems[0]


def test_grad_dtypes_names_a_gradient_of_the_wrong_size():
    _, x = _pair((3,))
    problems = extra_checks.grads_attribute_problems(0, [(0, x)], [gt.zeros(4)])
    assert problems == ["grad dtypes: Analytical gradient has incorrect size (output 0, "
                        "input 0: gradient [4], input [3])"]


# ---- masked ----------------------------------------------------------------------------------
def _leaky(lib, leak):
    class Leaky(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * 3

        @staticmethod
        def backward(ctx, g):
            return g * 3 + leak       # not multiplied by grad_output (by `leak`)
    return Leaky


@pytest.mark.parametrize("leak", [1e-10, 1e-3])
@pytest.mark.parametrize("masked", [None, False, True])
def test_masked_on_dense_inputs_as_torch(leak, masked):
    tx, x = _pair((3,))
    # (the undefined-gradient check wants exact zeros whatever masked says, in both)
    kw = {"masked": masked, "atol": 1e-2, "check_undefined_grad": False}
    theirs, _ = _verdict(torch.autograd.gradcheck, _leaky(torch, leak).apply, (tx,), **kw)
    ours, message = _verdict(gt.gradcheck, _leaky(gt, leak).apply, (x,), **kw)
    assert theirs == ours
    assert ours is (bool(masked) and leak < 1e-8)
    if not ours:
        assert "backward not multiplied by grad_output" in message


def test_masked_rejects_other_values():
    _, x = _pair((3,))
    with pytest.raises(UserError, match="masked must be None, False or True"):
        gt.gradcheck(gt.sin, (x,), masked="yes")


# ---- gradgradcheck ----------------------------------------------------------------------------
def test_non_contiguous_grad_outputs_are_strided_views_of_the_same_values():
    g = gt.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    (view,) = extra_checks.non_contiguous((g,))
    assert not view._data.flags.c_contiguous and view.requires_grad
    np.testing.assert_array_equal(view.detach().numpy(), g.detach().numpy())
    scalar = gt.tensor(2.0, requires_grad=True)
    assert extra_checks.non_contiguous((scalar,))[0] is scalar


def _detached_square(lib):
    class DetachedSquare(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            ctx.save_for_forward(x)
            return x ** 2

        @staticmethod
        def jvp(ctx, t):
            (x,) = ctx.saved_tensors
            return 2 * x * t

        @staticmethod
        def backward(ctx, g):          # the second derivative through x is lost
            (x,) = ctx.saved_tensors
            return 2 * x.detach() * g
    return DetachedSquare


@pytest.mark.parametrize("kw", [{"gen_non_contig_grad_outputs": True},
                                {"check_fwd_over_rev": True},
                                {"check_fwd_over_rev": True, "check_rev_over_rev": False,
                                     "check_undefined_grad": False},
                                {"check_grad_dtypes": True, "masked": True}])
def test_gradgradcheck_same_verdict_as_torch(kw):
    tx, x = _pair((3, 2), 4)
    tw, w = _pair((2, 4), 5)
    for tfn, gfn, expected in [
            (lambda a, b: a @ b, lambda a, b: a @ b, True),
            (lambda a, b: a.sin() * 2 + b.sum(), lambda a, b: a.sin() * 2 + b.sum(), True),
            (lambda a, b: a ** 3, lambda a, b: a ** 3, True),
            (lambda a, b: _detached_square(torch).apply(a) + b.sum(),
             lambda a, b: _detached_square(gt).apply(a) + b.sum(), False)]:
        theirs, _ = _verdict(torch.autograd.gradgradcheck, tfn, (tx, tw), **kw)
        ours, _ = _verdict(gt.gradgradcheck, gfn, (x, w), **kw)
        assert theirs == ours == expected


@pytest.mark.parametrize("fn, names", [
    (lambda a, b: (a @ b).tanh(), "'tanh'"),
    (lambda a, b: (a * a).sum() * b, "'mul'"),
    (lambda a, b: a.exp().sum() + b.sigmoid().sum(), "'exp', 'sigmoid'"),
])
def test_fwd_over_rev_the_engine_cannot_compute_is_refused_by_name(fn, names):
    _, x = _pair((3, 2), 6)
    _, w = _pair((2, 4), 7)
    with pytest.raises(UserError, match="check_fwd_over_rev=True: gradtool's engine cannot "
                       "compute forward-over-reverse derivatives through " + names):
        gt.gradgradcheck(fn, (x, w), check_fwd_over_rev=True)
    assert gt.gradgradcheck(fn, (x, w))          # reverse over reverse checks it


def test_extra_problems_are_in_the_report_and_result():
    fns = _functions(gt)
    _, x = _pair((3,))
    assert gt.gradcheck(fns["item"][0].apply, (x,), check_batched_grad=True,
                        raise_exception=False) is False
    with pytest.raises(GradcheckError) as info:
        gt.gradcheck(fns["item"][0].apply, (x,), check_batched_grad=True)
    result = info.value.result
    assert not result.passed
    assert any(p.startswith("batched gradient: ") for p in result.problems)
    assert "batched gradient: " in result.report()
    assert result.to_dict()["problems"] == result.problems


def test_torch_functions_refuse_the_extra_checks():
    tx, _ = _pair((3,))
    with pytest.raises(UserError, match="check_batched_grad is not supported for a torch "
                       "function"):
        gt.gradcheck(torch.sin, (tx,), check_batched_grad=True)
