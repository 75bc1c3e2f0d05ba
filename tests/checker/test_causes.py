"""Round two of the diagnosis (gradtool.checker.causes): a corpus of broken Functions of each
kind with the cause expected, correct Functions that must get none, and the 17 real-world
bugs of issue 16 through the torch bridge."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradtool as gt
from gradtool.spec.load import loads


def _x(*shape, seed=0, low=None):
    data = np.random.default_rng(seed).standard_normal(shape)
    if low is not None:
        data = low + np.abs(data)
    return gt.tensor(data, requires_grad=True)


def _const(data):
    return gt.tensor(np.asarray(data, dtype=np.float64))


def _function(name, forward, backward, save_out=False):
    """A one-input Function; ``backward(x, out, g)``."""
    def fwd(ctx, x):
        out = forward(x)
        ctx.save_for_backward(x, out)
        return out

    def bwd(ctx, g):
        x, out = ctx.saved_tensors
        return backward(x, out, g)
    return type(name, (gt.autograd.Function,), {"forward": staticmethod(fwd),
                                                  "backward": staticmethod(bwd)})


def _softmax(x):
    e = gt.exp(x - x.amax(-1, keepdim=True))
    return e / e.sum(-1, keepdim=True)


class Scaled(gt.autograd.Function):
    """x * w (w a constant row of factors); the backward forgets w."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x * w

    @staticmethod
    def backward(ctx, g):
        return g, None


class MatmulScaled(gt.autograd.Function):
    """(x @ m) * s per output column; the backward forgets s."""

    @staticmethod
    def forward(ctx, x, m, s):
        ctx.save_for_backward(x, m, s)
        return x.mm(m) * s

    @staticmethod
    def backward(ctx, g):
        x, m, s = ctx.saved_tensors
        return g.mm(m.t()), None, None


class BatchNormGammaDropped(gt.autograd.Function):
    @staticmethod
    def forward(ctx, x, gamma):
        mean = x.mean(0, keepdim=True)
        var = ((x - mean) ** 2).mean(0, keepdim=True)
        xhat = (x - mean) / gt.sqrt(var + 1e-5)
        ctx.save_for_backward(xhat, var, gamma)
        return gamma * xhat

    @staticmethod
    def backward(ctx, g):
        xhat, var, gamma = ctx.saved_tensors
        dxhat = g                              # bug: g * gamma
        dx = (dxhat - dxhat.mean(0) - xhat * (dxhat * xhat).mean(0)) / gt.sqrt(var + 1e-5)
        return dx, None


SoftmaxElementwise = _function("SoftmaxElementwise", lambda x: _softmax(x),
                               lambda x, y, g: g * y * (1 - y))
LogSoftmaxElementwise = _function("LogSoftmaxElementwise", lambda x: gt.log(_softmax(x)),
                                  lambda x, y, g: g * (1 - gt.exp(y)))
NormalizeElementwise = _function("NormalizeElementwise", lambda x: x / gt.sqrt((x * x).sum()),
                                 lambda x, y, g: g / gt.sqrt((x * x).sum()))
ExpSummed = _function("ExpSummed", gt.exp, lambda x, y, g: g.sum() * y)
SinAtOut = _function("SinAtOut", gt.sin, lambda x, y, g: g * gt.cos(y))
ExpAtOut = _function("ExpAtOut", lambda x: gt.exp(x * 0.3),
                     lambda x, y, g: g * 0.3 * gt.exp(y * 0.3))
SwishSigmoidOfOut = _function("SwishSigmoidOfOut", lambda x: x * gt.sigmoid(x),
                              lambda x, y, g: g * (gt.sigmoid(y) + x * gt.sigmoid(y)
                                                   * (1 - gt.sigmoid(y))))
SoftmaxInputForOutput = _function("SoftmaxInputForOutput", lambda x: _softmax(x),
                                  lambda x, y, g: x * (g - (g * x).sum(-1, keepdim=True)))
TanhFromInput = _function("TanhFromInput", gt.tanh, lambda x, y, g: g * (1 - x * x))
SoftmaxNoKeepdim = _function("SoftmaxNoKeepdim", lambda x: _softmax(x),
                             lambda x, y, g: y * (g - (g * y).sum(-1)))
CenterWrongDim = _function("CenterWrongDim", lambda x: x - x.mean(-1, keepdim=True),
                           lambda x, y, g: g - g.mean(0, keepdim=True))
LeakyForRelu = _function("LeakyForRelu", gt.relu,
                         lambda x, y, g: g * gt.where(x > 0, _const(1.0), _const(0.1)))
ReluNoMask = _function("ReluNoMask", gt.relu, lambda x, y, g: g * 1.0)
SwishSignInOneTerm = _function("SwishSignInOneTerm", lambda x: x * gt.sigmoid(x),
                               lambda x, y, g: g * gt.sigmoid(x) *
                               (1 - x * (1 - gt.sigmoid(x))))
K = np.sqrt(2 / np.pi)
GeluHalfDropped = _function(   # the tanh approximation; 0.5 dropped on the first term
    "GeluHalfDropped", lambda x: 0.5 * x * (1 + gt.tanh(K * (x + 0.044715 * x ** 3))),
    lambda x, y, g: g * ((1 + gt.tanh(K * (x + 0.044715 * x ** 3))) +
                         0.5 * x * (1 - gt.tanh(K * (x + 0.044715 * x ** 3)) ** 2) *
                         K * (1 + 3 * 0.044715 * x ** 2)))
XSinMissingTerm = _function("XSinMissingTerm", lambda x: x * gt.sin(x),
                            lambda x, y, g: g * x * gt.cos(x))
SoftmaxTermFactor = _function("SoftmaxTermFactor", lambda x: _softmax(x),
                              lambda x, y, g: y * g - (g * y).sum(-1, keepdim=True))
XExpTermFactor = _function("XExpTermFactor", lambda x: x * gt.exp(x),
                           lambda x, y, g: g * (gt.exp(x) + x))
XAbsSignLost = _function("XAbsSignLost", lambda x: x * gt.abs(x), lambda x, y, g: g * 2 * x)
# wrong, but no verified story: must stay "mismatch"
SinOffset = _function("SinOffset", gt.sin, lambda x, y, g: g * (gt.cos(x) + 0.1))
TanhCubed = _function("TanhCubed", gt.tanh, lambda x, y, g: g * (1 - y ** 3))
# right: no diagnosis at all
SwishRight = _function("SwishRight", lambda x: x * gt.sigmoid(x),
                       lambda x, y, g: g * (gt.sigmoid(x) + x * gt.sigmoid(x)
                                            * (1 - gt.sigmoid(x))))
SoftmaxRight = _function("SoftmaxRight", lambda x: _softmax(x),
                         lambda x, y, g: y * (g - (g * y).sum(-1, keepdim=True)))


def _square(n=4, seed=0):
    return (_x(n, n, seed=seed),)


CORPUS = [
    # (name, fn, make inputs, kind, words the diagnosis must contain)
    ("x*w, w forgotten", Scaled.apply, lambda: (_x(3, 4), _const([0.5, 2.0, -3.0, 4.0])),
     "factor_pattern", ["1/input 1", "missing multiplication by input 1"]),
    ("(x@m)*s, s forgotten", MatmulScaled.apply,
     lambda: (_x(3, 4), _const(np.random.default_rng(1).standard_normal((4, 2))),
              _const([2.0, -0.25])), "factor_pattern", ["1/input 2"]),
    ("batch norm, gamma forgotten", BatchNormGammaDropped.apply,
     lambda: (_x(5, 3), _const([0.5, 2.0, 3.0])), "factor_pattern",
     ["dimension 1", "missing multiplication by input 1"]),
    ("softmax, elementwise rule", SoftmaxElementwise.apply, lambda: (_x(5),), "diagonal",
     ["only the diagonal"]),
    ("log-softmax, elementwise rule", LogSoftmaxElementwise.apply, lambda: (_x(4, seed=2),),
     "diagonal", ["only the diagonal"]),
    ("normalize, the norm's part missing", NormalizeElementwise.apply,
     lambda: (_x(4, seed=2),), "term", ["through mul(input 0, input 0)", "is missing"]),
    ("exp, backward sums", ExpSummed.apply, lambda: (_x(4),), "diagonal", ["off-diagonal"]),
    ("sin at out", SinAtOut.apply, lambda: (_x(5),), "wrong_tensor",
     ["uses out where input 0 is due", "cos(out)"]),
    ("sin at out, in an expression", lambda x: SinAtOut.apply(x) * 1.0, lambda: (_x(5),),
     "evaluation_point", ["at out, not at input 0"]),
    ("exp(0.3x) at out, in an expression", lambda x: ExpAtOut.apply(x) + 0.0,
     lambda: (_x(5, seed=3),), "evaluation_point", ["at out"]),
    ("swish sigmoid(out)", SwishSigmoidOfOut.apply, lambda: (_x(6),), "wrong_tensor",
     ["uses out where input 0 is due", "sigmoid(out)"]),
    ("softmax input for output", SoftmaxInputForOutput.apply, lambda: (_x(2, 4),),
     "wrong_tensor", ["uses input 0 where out is due"]),
    ("tanh from input", TanhFromInput.apply, lambda: (_x(5, seed=4),), "wrong_tensor",
     ["uses input 0 where out is due"]),
    ("softmax without keepdim", SoftmaxNoKeepdim.apply, lambda: _square(4, 5), "reduction",
     ["keepdim=True"]),
    ("centering, wrong dim", CenterWrongDim.apply, lambda: (_x(3, 5, seed=6),), "reduction",
     ["reduces dim 0"]),
    ("relu, leaky rule", LeakyForRelu.apply,
     lambda: (gt.tensor([0.5, -1.0, 2.0, -0.3, 1.2, -2.2], requires_grad=True),), "region",
     ["wrong only where input 0 < 0", "mask not applied"]),
    ("relu, mask not applied", ReluNoMask.apply,
     lambda: (gt.tensor([0.5, -1.0, 2.0, -0.3, 1.2], requires_grad=True),), "region",
     ["wrong only where input 0 < 0"]),
    ("softmax, y missing on a term", SoftmaxTermFactor.apply, lambda: (_x(2, 5),),
     "missing_factor", ["needs the factor out"]),
    ("x exp x, exp missing on a term", XExpTermFactor.apply, lambda: (_x(5, seed=8),),
     "missing_factor", ["add(exp(input 0), input 0)", "input 0 needs the factor exp(input 0)"]),
    ("x|x|, sign lost", XAbsSignLost.apply,
     lambda: (gt.tensor([0.5, -1.0, 2.0, -0.3, 1.2], requires_grad=True),), "region",
     ["wrong only where input 0 < 0", "a sign lost there?"]),
    ("swish, sign in one term", SwishSignInOneTerm.apply, lambda: (_x(6, seed=1),), "term",
     ["sigmoid(input 0)", "sign flipped"]),
    ("gelu, 0.5 dropped on one term", GeluHalfDropped.apply, lambda: (_x(6, seed=2),),
     "term", ["scaled by 2"]),
    ("x sin x, a term missing", XSinMissingTerm.apply, lambda: (_x(5, seed=7),), "term",
     ["sin(input 0)", "missing"]),
]

NO_CAUSE = [
    ("sin, offset", SinOffset.apply, lambda: (_x(5),)),
    ("tanh, cubed", TanhCubed.apply, lambda: (_x(5, seed=1),)),
]

CORRECT = [
    ("swish", SwishRight.apply, lambda: (_x(6),)),
    ("softmax", SoftmaxRight.apply, lambda: (_x(3, 4),)),
]


@pytest.mark.parametrize("name,fn,make,kind,words", CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus_names_the_cause(name, fn, make, kind, words):
    result = gt.check(fn, make())
    [block] = result.failures
    assert block.kind == kind, block.diagnosis
    for word in words:
        assert word in block.diagnosis, block.diagnosis
    assert block.evidence, "a cause states its evidence"
    assert block.to_dict()["evidence"] == block.to_dict()["evidence"]


@pytest.mark.parametrize("name,fn,make", NO_CAUSE, ids=[c[0] for c in NO_CAUSE])
def test_unexplained_bugs_stay_mismatch(name, fn, make):
    [block] = gt.check(fn, make()).failures
    assert block.kind == "mismatch", block.diagnosis


@pytest.mark.parametrize("name,fn,make", CORRECT, ids=[c[0] for c in CORRECT])
def test_correct_functions_get_no_diagnosis(name, fn, make):
    result = gt.check(fn, make())
    assert result.passed, result.report()


def test_evidence_is_in_the_json():
    result = gt.check(Scaled.apply, (_x(3, 4), _const([0.5, 2.0, -3.0, 4.0])))
    evidence = result.to_dict()["blocks"][0]["evidence"]
    assert evidence["matches"] == "1/input 1"
    assert evidence["factors"] == pytest.approx([2.0, 0.5, -1 / 3, 0.25])


def test_input_names_are_used():
    result = gt.check(BatchNormGammaDropped.apply, (_x(5, 3), _const([0.5, 2.0, 3.0])),
                      input_names=["x", "gamma"])
    assert "a missing multiplication by gamma?" in result.failures[0].diagnosis


# ---- spec formulas: the additive terms, named by their source --------------------------------
SPEC = """
version: 1
functions:
  term_missing_factor:
    args: [x]
    forward: x.sin() + 1.5 * x**2
    backward:
      x: grad * (x.cos() + 0.6 * x)
  term_sign:
    args: [x]
    forward: x.exp() - x**3
    backward:
      x: grad * (x.exp() + 3 * x**2)
  term_missing:
    args: [x, w]
    forward: x.tanh() * w + x * x
    backward:
      x: grad * (1 - x.tanh()**2) * w
      w: grad * x.tanh()
  swish_at_out:
    args: [x]
    forward: x * x.sigmoid()
    backward:
      x: grad * (out.sigmoid() + x * out.sigmoid() * (1 - out.sigmoid()))
checks:
  - {name: missing_factor, expr: term_missing_factor(x), inputs: {x: {shape: [5]}}}
  - {name: sign, expr: term_sign(x), inputs: {x: {shape: [4]}}}
  - {name: missing, expr: "term_missing(x, w)", inputs: {x: {shape: [4]}, w: {shape: [4]}},
     wrt: [x]}
  - {name: swish, expr: swish_at_out(x), inputs: {x: {shape: [5]}}}
"""

SPEC_EXPECTED = {
    "missing_factor": ("term", "the term `1.5 * x**2` is missing its factor 5"),
    "sign": ("term", "the term `-x**3` has its sign flipped"),
    "missing": ("term", "the term `x * x` is missing"),
    "swish": ("wrong_tensor", "uses out where x is due"),
}


@pytest.mark.parametrize("name", list(SPEC_EXPECTED))
def test_spec_formula_terms(name):
    spec = loads(SPEC)
    [check] = [c for c in spec.checks if c.name == name]
    built = check.build()
    result = gt.check(built.fn, tuple(built.inputs), input_names=list(built.input_names))
    [block] = result.failures
    kind, words = SPEC_EXPECTED[name]
    assert block.kind == kind and words in block.diagnosis, block.diagnosis


# the real-world bugs that a formula can express
SPEC_REALWORLD = """
version: 1
functions:
  swish_sign:
    args: [x]
    forward: x * x.sigmoid()
    backward:
      x: grad * x.sigmoid() * (1 - x * (1 - x.sigmoid()))
  gelu_half:
    args: [x]
    forward: 0.5 * x * (1 + (0.7978845608 * (x + 0.044715 * x**3)).tanh())
    backward:
      x: |
        t = (0.7978845608 * (x + 0.044715 * x**3)).tanh()
        grad * ((1 + t) + 0.5 * x * (1 - t**2) * 0.7978845608 * (1 + 3 * 0.044715 * x**2))
  softmax_input:
    args: [x]
    forward: x.softmax(-1)
    backward:
      x: x * (grad - (grad * x).sum(-1, keepdim=True))
  softmax_no_keepdim:
    args: [x]
    forward: x.softmax(-1)
    backward:
      x: out * (grad - (grad * out).sum(-1))
  batchnorm:
    args: [x, gamma]
    forward: |
      centered = x - x.mean(0, keepdim=True)
      std = (centered**2).mean(0, keepdim=True).sqrt()
      xhat = centered / std
      gamma * xhat
    backward:
      x: (grad - grad.mean(0) - xhat * (grad * xhat).mean(0)) / std
      gamma: (grad * xhat).sum(0)
checks:
  - {name: swish_sign, expr: swish_sign(x), inputs: {x: {shape: [6]}}}
  - {name: gelu_half, expr: gelu_half(x), inputs: {x: {shape: [6]}}}
  - {name: softmax_input, expr: softmax_input(x), inputs: {x: {shape: [2, 4]}}}
  - {name: softmax_no_keepdim, expr: softmax_no_keepdim(x), inputs: {x: {shape: [4, 4]}}}
  - name: batchnorm
    expr: batchnorm(x, gamma)
    inputs: {x: {shape: [5, 3]}, gamma: {value: [0.5, 2.0, 3.0]}}
    wrt: [x]
"""

SPEC_REALWORLD_EXPECTED = {
    "swish_sign": ("term", "through sigmoid(x)", "sign flipped"),
    # 0.5 * x: torch records mul(x, 0.5)
    "gelu_half": ("term", "through mul(x, 0.5)", "scaled by 2"),
    "softmax_input": ("wrong_tensor", "uses x where out is due", ""),
    "softmax_no_keepdim": ("reduction", "keepdim=True is due", ""),
    "batchnorm": ("factor_pattern", "dimension 1 of out", "[2, 0.5, 0.3333]"),
}


@pytest.mark.parametrize("name", list(SPEC_REALWORLD_EXPECTED))
def test_realworld_bugs_as_formulas(name):
    spec = loads(SPEC_REALWORLD)
    [check] = [c for c in spec.checks if c.name == name]
    built = check.build()
    result = gt.check(built.fn, tuple(built.inputs), input_names=list(built.input_names))
    [block] = result.failures
    kind, *words = SPEC_REALWORLD_EXPECTED[name]
    assert block.kind == kind, block.diagnosis
    assert all(w in block.diagnosis for w in words), block.diagnosis


def test_term_dropped_restores_the_forward():
    from gradtool.spec.functions import forward_terms
    spec = loads(SPEC)
    fdef = spec.functions["term_sign"].spec_definition
    assert forward_terms(fdef) == ["x.exp()", "-x**3"]
    x = gt.tensor([0.5, 1.0])
    with spec.functions["term_sign"].spec_term_dropped(0):
        assert np.allclose(spec.functions["term_sign"].apply(x).numpy(), -x.numpy() ** 3)
    assert np.allclose(spec.functions["term_sign"].apply(x).numpy(),
                       np.exp(x.numpy()) - x.numpy() ** 3)


# ---- the 17 real-world bugs through the torch bridge -----------------------------------------
def test_realworld_bugs_through_torch():
    torch = pytest.importorskip("torch")
    from .realworld_torch import REALWORLD
    torch.manual_seed(0)
    named = 0
    for name, function, make, kind in REALWORLD:
        result = gt.check(function.apply, make())
        kinds = [b.kind for b in result.failures]
        assert kinds, name
        assert kinds == [kind] if name != "batchnorm gamma dropped" else kind in kinds, \
            (name, [b.diagnosis for b in result.failures])
        if all(k != "mismatch" for k in kinds):
            named += 1
    assert named == len(REALWORLD) == 17


def test_torch_batchnorm_names_gamma():
    pytest.importorskip("torch")
    from .realworld_torch import BatchNormGammaDropped as TorchBN
    from .realworld_torch import _batchnorm_inputs
    result = gt.check(TorchBN.apply, _batchnorm_inputs(), input_names=["x", "gamma", "beta"])
    [block] = [b for b in result.failures if b.input_name == "x"]
    assert block.kind == "factor_pattern" and "multiplication by gamma" in block.diagnosis


# ---- hostile cases ---------------------------------------------------------------------------
class TwoOutputs(gt.autograd.Function):
    """(x sigmoid x, 2x); the first output's rule takes sigmoid of that output."""

    @staticmethod
    def forward(ctx, x):
        out = x * gt.sigmoid(x)
        ctx.save_for_backward(x, out)
        return out, x * 2

    @staticmethod
    def backward(ctx, g1, g2):
        x, out = ctx.saved_tensors
        s = gt.sigmoid(out)
        return g1 * (s + x * s * (1 - s)) + 2 * g2


class Picky(gt.autograd.Function):
    """Refuses inputs above 5 (the probes evaluate it elsewhere: they must not crash)."""

    @staticmethod
    def forward(ctx, x):
        if (x.detach().numpy() > 5).any():
            raise ValueError("input above 5")
        ctx.save_for_backward(x)
        return gt.exp(x) + x

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * gt.exp(x) * 1.5


def test_several_outputs_name_the_output():
    result = gt.check(TwoOutputs.apply, (_x(5),))
    [block] = result.failures
    assert block.output == 0 and block.kind == "wrong_tensor"
    assert "uses output 0 where input 0 is due" in block.diagnosis


def test_a_function_failing_elsewhere_keeps_a_plain_diagnosis():
    [block] = gt.check(Picky.apply, (_x(5),)).failures
    assert block.kind in ("mismatch", "term"), block.diagnosis
    if block.kind == "term":       # exp(x) + x: the part through exp is 1.5 x too large
        assert "scaled by 1.5" in block.diagnosis


def test_float32_and_fast_mode_get_the_cause():
    x32 = gt.tensor(np.random.default_rng(0).standard_normal(6).astype(np.float32),
                    requires_grad=True)
    with pytest.warns(UserWarning):
        [block] = gt.check(SwishSigmoidOfOut.apply, (x32,)).failures
    assert block.kind == "wrong_tensor"
    [block] = gt.check(SwishSigmoidOfOut.apply, (_x(6),), mode="fast").failures
    assert block.kind == "wrong_tensor" and "recomputed in full" in block.mode


def test_a_function_inside_an_expression():
    # the term test freezes the forward's ops wherever the Function sits
    [block] = gt.check(lambda x: SwishSignInOneTerm.apply(x).sum() * 2, (_x(5),)).failures
    assert block.kind == "term" and "sign flipped" in block.diagnosis
    # the Function's input is not a checked input: no replay, and no wrong cause
    [block] = gt.check(lambda x: SwishSigmoidOfOut.apply(x * 2), (_x(5),)).failures
    assert block.kind in ("mismatch", "wrong_tensor")


def test_torch_function_with_two_outputs():
    torch = pytest.importorskip("torch")

    class Two(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            out = x * torch.sigmoid(x)
            ctx.save_for_backward(x, out)
            return out, x * 2

        @staticmethod
        def backward(ctx, g1, g2):
            x, out = ctx.saved_tensors
            s = torch.sigmoid(out)
            return g1 * (s + x * s * (1 - s)) + 2 * g2

    x = torch.tensor(np.random.default_rng(0).standard_normal(5), requires_grad=True)
    [block] = gt.check(Two.apply, (x,), input_names=["x"]).failures
    assert block.kind == "wrong_tensor" and "uses output 0 where x is due" in block.diagnosis


# ---- no wrong cause: errors at random elements -----------------------------------------------
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 100_000), k=st.integers(1, 4))
def test_random_errors_get_no_wrong_cause(seed, k):
    rng = np.random.default_rng(seed)
    # |x| >= 0.2: near x = 0, noise c is within tolerance of c * x, and "a factor x missing"
    # would truly fit the numbers
    x = rng.uniform(0.2, 2.0, size=6) * rng.choice([-1.0, 1.0], size=6)
    bad = np.sort(rng.choice(6, size=k, replace=False))
    noise = np.zeros(6)
    noise[bad] = rng.uniform(0.5, 2.0, size=k) * rng.choice([-1.0, 1.0], size=k)
    noisy = _function("NoisyCos", gt.sin, lambda x, y, g: g * (gt.cos(x) + _const(noise)))
    [block] = gt.check(noisy.apply, (gt.tensor(x, requires_grad=True),)).failures
    assert block.kind in ("mismatch", "region"), block.diagnosis
    assert [e[0] for e in block.elements] == list(bad)
    if block.kind == "region":      # true, if coincidental: the wrong elements are the region
        assert block.evidence["count"] == k


def test_a_random_backward_is_not_replayed():
    torch = pytest.importorskip("torch")
    from .realworld_torch import NoisyBackward
    for seed in range(6):
        torch.manual_seed(seed)
        x = torch.tensor(np.random.default_rng(seed).standard_normal(4), requires_grad=True)
        for block in gt.check(NoisyBackward.apply, (x,)).failures:
            assert block.kind in ("mismatch", "nondeterministic"), block.diagnosis


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 100_000), n=st.integers(2, 5))
def test_random_errors_in_a_function_with_parts(seed, n):
    # swish has parts (through sigmoid, and not): errors at random elements fit none
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    k = int(rng.integers(1, n + 1))
    bad = np.sort(rng.choice(n, size=k, replace=False))
    noise = np.zeros(n)
    noise[bad] = rng.uniform(0.5, 2.0, size=k) * rng.choice([-1.0, 1.0], size=k)

    def backward(x, y, g):
        s = gt.sigmoid(x)
        return g * (s + x * s * (1 - s) + _const(noise))
    noisy = _function("NoisySwish", lambda x: x * gt.sigmoid(x), backward)
    [block] = gt.check(noisy.apply, (gt.tensor(x, requires_grad=True),)).failures
    assert block.kind in ("mismatch", "region", "scale"), block.diagnosis
