"""The 17 real-world backward bugs of issue 16, re-created as torch.autograd.Functions.

Each entry: (name, Function, make_inputs, expected kind).  Imported by test_causes.py only
when torch is installed."""

import numpy as np
import torch

F64 = torch.float64


def _t(data, grad=True):
    return torch.tensor(np.asarray(data, dtype=np.float64), requires_grad=grad)


def _normal(*shape, seed=0, grad=True):
    return _t(np.random.default_rng(seed).standard_normal(shape), grad)


class SwishSigmoidOfOut(torch.autograd.Function):
    """x * sigmoid(x); the backward takes sigmoid of the output instead of the input."""

    @staticmethod
    def forward(ctx, x):
        out = x * torch.sigmoid(x)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        s = torch.sigmoid(out)                 # bug: sigmoid(x)
        return g * (s + x * s * (1 - s))


class SoftmaxInputForOutput(torch.autograd.Function):
    """softmax over the last dim; the backward uses the input where the output is due."""

    @staticmethod
    def forward(ctx, x):
        y = torch.softmax(x, -1)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        y = x                                  # bug: the saved output is due
        return y * (g - (g * y).sum(-1, keepdim=True))


class SwishSignInOneTerm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        s = torch.sigmoid(x)
        return g * (s * (1 - x * (1 - s)))    # bug: 1 + x * (1 - s)


class GeluHalfDropped(torch.autograd.Function):
    """0.5 x (1 + erf(x / sqrt 2)); the backward drops the 0.5 of its first term."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 0.5 * x * (1 + torch.erf(x / np.sqrt(2.0)))

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        cdf = 1 + torch.erf(x / np.sqrt(2.0))              # bug: 0.5 * (1 + erf)
        pdf = torch.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
        return g * (cdf + x * pdf)


def _entmax15(x):
    """1.5-entmax over the last dim by sorting (Peters et al.)."""
    x = x / 2
    xs, _ = torch.sort(x, dim=-1, descending=True)
    k = torch.arange(1, x.shape[-1] + 1, dtype=x.dtype)
    mean = xs.cumsum(-1) / k
    mean_sq = (xs ** 2).cumsum(-1) / k
    ss = k * (mean_sq - mean ** 2)
    delta = (1 - ss) / k
    tau = mean - torch.sqrt(torch.clamp(delta, min=0))
    support = (tau <= xs).sum(-1, keepdim=True)
    tau_star = tau.gather(-1, support - 1)
    return torch.clamp(x - tau_star, min=0) ** 2


class EntmaxMissingFactor(torch.autograd.Function):
    """1.5-entmax; the backward's correction term misses its factor gppr = sqrt(y)."""

    @staticmethod
    def forward(ctx, x):
        y = _entmax15(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        y, = ctx.saved_tensors
        gppr = y.sqrt()
        dx = g * gppr
        q = dx.sum(-1, keepdim=True) / gppr.sum(-1, keepdim=True)
        return dx - q                          # bug: dx - q * gppr


def _sparsemax(x):
    xs, _ = torch.sort(x, dim=-1, descending=True)
    k = torch.arange(1, x.shape[-1] + 1, dtype=x.dtype)
    cums = xs.cumsum(-1) - 1
    support = (k * xs > cums).sum(-1, keepdim=True)
    tau = cums.gather(-1, support - 1) / support.to(x.dtype)
    return torch.clamp(x - tau, min=0)


class SparsemaxMaskNotApplied(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = _sparsemax(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        y, = ctx.saved_tensors
        supp = (y > 0).to(g.dtype)
        v = (g * supp).sum(-1, keepdim=True) / supp.sum(-1, keepdim=True)
        return g - v                           # bug: supp * (g - v)


class SoftmaxNoKeepdim(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.softmax(x, -1)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        y, = ctx.saved_tensors
        return y * (g - (g * y).sum(-1))       # bug: keepdim=True


class BatchNormGammaDropped(torch.autograd.Function):
    """Batch norm (training statistics) over dim 0; the input gradient forgets gamma."""

    @staticmethod
    def forward(ctx, x, gamma, beta):
        mean = x.mean(0, keepdim=True)
        var = x.var(0, unbiased=False, keepdim=True)
        xhat = (x - mean) / torch.sqrt(var + 1e-5)
        ctx.save_for_backward(xhat, var, gamma)
        return gamma * xhat + beta

    @staticmethod
    def backward(ctx, g):
        xhat, var, gamma = ctx.saved_tensors
        n = g.shape[0]  # noqa: F841  (as the code it mimics had it)
        dxhat = g                              # bug: g * gamma
        dx = (dxhat - dxhat.mean(0) - xhat * (dxhat * xhat).mean(0)) / torch.sqrt(var + 1e-5)
        return dx, (g * xhat).sum(0), g.sum(0)


def _simple(name, forward, backward):
    def fwd(ctx, x):
        ctx.save_for_backward(x)
        return forward(x)

    def bwd(ctx, g):
        x, = ctx.saved_tensors
        return backward(x, g)
    return type(name, (torch.autograd.Function,),
                {"forward": staticmethod(fwd), "backward": staticmethod(bwd)})


SinSign = _simple("SinSign", torch.sin, lambda x, g: -g * torch.cos(x))
SquareFactor = _simple("SquareFactor", lambda x: x * x, lambda x, g: g * x)
ExpZero = _simple("ExpZero", torch.exp, lambda x, g: g * 0)
ConstSpurious = _simple("ConstSpurious", lambda x: x * 0 + 1, lambda x, g: g)
ReluKink = _simple("ReluKink", torch.relu, lambda x, g: g * (x >= 0).to(g.dtype))
SqrtNan = _simple("SqrtNan", torch.sqrt, lambda x, g: g * 0.5 / torch.sqrt(x))


class MatmulTransposed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x @ w

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g @ w.t(), g.t() @ x            # bug: x.t() @ g


class NoisyBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, g):
        return g * (2 + 1e-3 * torch.randn(g.shape, dtype=g.dtype))


class Cancellation(torch.autograd.Function):
    """((x + 1e10) - 1e10) * x: its forward loses x's digits (the numerical side is noise)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ((x + 1e10) - 1e10) * x

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * 2 * x


def _batchnorm_inputs():
    x = _normal(5, 3, seed=3)
    gamma = _t([0.5, 2.0, 3.0])
    beta = _t([0.1, -0.2, 0.3])
    return (x, gamma, beta)


REALWORLD = [
    ("swish sigmoid(out)", SwishSigmoidOfOut, lambda: (_normal(6),), "wrong_tensor"),
    ("softmax input for output", SoftmaxInputForOutput, lambda: (_normal(2, 4),),
     "wrong_tensor"),
    ("swish sign in one term", SwishSignInOneTerm, lambda: (_normal(6, seed=1),), "term"),
    ("gelu 0.5 dropped on one term", GeluHalfDropped, lambda: (_normal(6, seed=2),), "term"),
    ("entmax missing factor", EntmaxMissingFactor,
     lambda: (_t([[0.9, 0.1, -1.2, 0.6, 2.0], [0.3, -0.4, 1.1, -2.0, 0.2]]),),
     "missing_factor"),
    ("sparsemax mask not applied", SparsemaxMaskNotApplied,
     lambda: (_t([0.9, 0.1, -1.2, 0.5, -2.0, 1.3]),), "region"),
    ("softmax sum without keepdim", SoftmaxNoKeepdim, lambda: (_normal(4, 4, seed=4),),
     "reduction"),
    ("batchnorm gamma dropped", BatchNormGammaDropped, _batchnorm_inputs, "factor_pattern"),
    ("sign", SinSign, lambda: (_normal(5),), "sign"),
    ("factor", SquareFactor, lambda: (_t([0.5, -1.0, 2.0, 1.5]),), "scale"),
    ("transposed", MatmulTransposed, lambda: (_normal(4, 4, grad=False), _normal(4, 4, seed=1)),
     "transposed"),
    ("missing", ExpZero, lambda: (_normal(4),), "missing"),
    ("spurious", ConstSpurious, lambda: (_normal(4),), "spurious"),
    ("kink", ReluKink, lambda: (_t([0.5, 0.0, -1.0]),), "kink"),
    ("unstable", Cancellation, lambda: (_t([0.3, 0.7]),), "unstable"),
    ("nondeterministic", NoisyBackward, lambda: (_normal(4),), "nondeterministic"),
    ("nan", SqrtNan, lambda: (_t([1.0, 0.0, 4.0]),), "nan"),
]
