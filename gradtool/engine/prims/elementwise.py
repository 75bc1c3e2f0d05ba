"""Elementwise primitives (numpy broadcasting; the engine undoes it in the backward)."""

from __future__ import annotations

import numpy as np

from ...errors import EngineError
from .. import backend as B
from .. import batching
from ..samples import away, binary, distinct, mask, normal, one, positive, shifted, unary, unit
from ..primitive import REGISTRY, Primitive, apply
from ..tensor import Tensor


def _unary(name, node_name, forward, vjp, jvp, *, save="inputs", analytic=True, domain=None,
           sample=None, quiet=False):
    # domain: where generated test inputs must lie ("positive", "unit", None)
    prim = Primitive(name, node_name, forward, save=save, analytic=analytic,
                     input_names=("self",), batch=batching.elementwise,
                     delta=batching.delta_elementwise, domain=domain, sample=sample,
                     quiet=quiet,
                     vjp=vjp,
                     jvp=jvp)
    return prim


def _binary(name, node_name, forward, vjps, jvps, *, save="inputs", analytic=True,
            domain=None, needs=None, sample=None, quiet=False):
    prim = Primitive(name, node_name, forward, save=save, broadcasts=True, analytic=analytic,
                     input_names=("self", "other"), batch=batching.elementwise,
                     delta=batching.delta_elementwise, domain=domain, needs=needs, sample=sample,
                     quiet=quiet, vjp=tuple(vjps), jvp=tuple(jvps))
    return prim


# ---- arithmetic -------------------------------------------------------------------------
def _add(a, b, alpha=1):
    return np.add(a, b) if alpha == 1 else np.add(a, np.multiply(b, alpha))


_BOOL = np.dtype(bool)


def _is_bool(x) -> bool:
    return x.__class__ is bool or getattr(x, "dtype", None) == _BOOL


def _check_bool_sub(a, b) -> None:
    """torch refuses a subtraction with a bool operand (a tensor or a Python bool)."""
    if _is_bool(a) and _is_bool(b):
        raise EngineError("Subtraction, the `-` operator, with two bool tensors is not "
                          "supported. Use the `^` or `logical_xor()` operator instead.")
    if _is_bool(a) or _is_bool(b):
        raise EngineError("Subtraction, the `-` operator, with a bool tensor is not supported. "
                          "If you are trying to invert a mask, use the `~` or `logical_not()` "
                          "operator instead.")


def _sub(a, b, alpha=1):
    if a.__class__ is bool or b.__class__ is bool or getattr(a, "dtype", None) == _BOOL or \
            getattr(b, "dtype", None) == _BOOL:
        _check_bool_sub(a, b)
    return np.subtract(a, b) if alpha == 1 else np.subtract(a, np.multiply(b, alpha))


def _rsub(a, b):
    _check_bool_sub(a, b)
    return np.subtract(b, a)


def _scaled(g, alpha):
    return g if alpha == 1 else g * alpha


# a + alpha b (torch records alpha on the one AddBackward0 node)
add = _binary("add", "AddBackward0", _add,
              (lambda g, a, b, out, alpha=1: g, lambda g, a, b, out, alpha=1: _scaled(g, alpha)),
              (lambda t, a, b, out, alpha=1: t, lambda t, a, b, out, alpha=1: _scaled(t, alpha)),
              save="none",
              sample=lambda: binary()() + [one(normal(2, 3), normal(3, seed=1), alpha=2.5)])
sub = _binary("sub", "SubBackward0", _sub,
              (lambda g, a, b, out, alpha=1: g,
               lambda g, a, b, out, alpha=1: _scaled(-g, alpha)),
              (lambda t, a, b, out, alpha=1: t,
               lambda t, a, b, out, alpha=1: _scaled(-t, alpha)),
              save="none",
              sample=lambda: binary()() + [one(normal(2, 3), normal(3, seed=1), alpha=-0.5)])
# 2 - x: torch records RsubBackward1 (rsub.Scalar: the number is no input of the node);
# rsub(x, y) = y - x with two tensors: RsubBackward0
rsub_scalar = Primitive("rsub_scalar", "RsubBackward1",
                        lambda x, other, alpha=1: _rsub(_scaled(x, alpha), other),
                        save="none", input_names=("self",),
                        batch=batching.elementwise, delta=batching.delta_elementwise,
                        sample=lambda: [one(normal(2, 3), other=2.5), one(normal(4), other=-1),
                                        one(normal(4), other=1.5, alpha=2)],
                        vjp=lambda g, x, out, other, alpha=1: -_scaled(g, alpha),
                        jvp=lambda t, x, out, other, alpha=1: -_scaled(t, alpha))
rsub = _binary("rsub", "RsubBackward0", _rsub,
               (lambda g, a, b, out: -g, lambda g, a, b, out: g),
               (lambda t, a, b, out: -t, lambda t, a, b, out: t), save="none",
               sample=binary())
# d(ab) = b da + a db
mul = _binary("mul", "MulBackward0", np.multiply,
              (lambda g, a, b, out: g * b, lambda g, a, b, out: g * a),
              (lambda t, a, b, out: t * b, lambda t, a, b, out: a * t),
              needs=((1,), (0,)),
              sample=binary())   # d/da reads b, d/db reads a
# d(a/b) = da / b - a db / b^2
div = _binary("div", "DivBackward0", np.true_divide,
              (lambda g, a, b, out: g / b, lambda g, a, b, out: -g * a / (b * b)),
              (lambda t, a, b, out: t / b, lambda t, a, b, out: -t * a / (b * b)),
              quiet=True, domain="nonzero_other", needs=((1,), (0, 1)),
              sample=binary(normal, away))


def _div_rounded(a, b, rounding_mode):
    quotient = np.true_divide(a, b)
    return np.floor(quotient) if rounding_mode == "floor" else np.trunc(quotient)


def _div_rounded_vjp(g, a, b, out, rounding_mode):
    # a rounded quotient is piecewise constant: zero gradient (torch's DivBackward2)
    return B.zeros_like(g)


def _div_rounded_jvp(t, a, b, out, rounding_mode):
    return np.zeros(np.shape(out), np.result_type(out))


# div(a, b, rounding_mode='floor' | 'trunc') of floating tensors
div_rounded = _binary("div_rounded", "DivBackward2", _div_rounded,
                      (_div_rounded_vjp, _div_rounded_vjp), (_div_rounded_jvp, _div_rounded_jvp),
                      save="none", quiet=True, analytic=False,
                      sample=lambda: [
                          one(np.array([[0.3, 1.7, -2.4], [0.55, -0.45, 3.3]]), 2.0,
                              rounding_mode="floor"),
                          one(np.array([[0.3, 1.7, -2.4], [0.55, -0.45, 3.3]]),
                              np.array([2.0, 1.5, -2.5]), rounding_mode="trunc")])


# x / c with a number c inside a composite (torch's div.Scalar: DivBackward1; the Python
# operator x / 2 records DivBackward0)
div_scalar = Primitive("div_scalar", "DivBackward1", lambda x, other: np.true_divide(x, other),
                       save="none", input_names=("self",), quiet=True,
                       batch=batching.elementwise, delta=batching.delta_elementwise,
                       sample=lambda: [one(normal(2, 3), other=2.5), one(normal(4), other=-0.5)],
                       vjp=lambda g, x, out, other: g / other,
                       jvp=lambda t, x, out, other: t / other)
# x * c with a number c inside a composite (torch's mul.Scalar: MulBackward1; the Python
# operator x * 2 records MulBackward0)
mul_scalar = Primitive("mul_scalar", "MulBackward1", lambda x, other: np.multiply(x, other),
                       save="none", input_names=("self",),
                       batch=batching.elementwise, delta=batching.delta_elementwise,
                       sample=lambda: [one(normal(2, 3), other=2.5), one(normal(4), other=-0.5)],
                       vjp=lambda g, x, out, other: g * other,
                       jvp=lambda t, x, out, other: t * other)
neg = _unary("neg", "NegBackward0", np.negative, lambda g, x, out: -g,
             lambda t, x, out: -t, save="none",
             sample=unary())


def _pow_scalar_vjp(g, x, out, exponent):
    # d x^p = p x^(p-1) dx  (p = 0: the derivative is 0 everywhere)
    if exponent == 0:
        return g * 0.0
    return g * (exponent * x ** (exponent - 1))


def _pow_scalar_samples():
    return [one(positive(2, 3), exponent=2.5), one(normal(4), exponent=3),
            one(positive(3), exponent=-1.5), one(normal(2), exponent=0)]


def _pow_scalar(x, exponent):
    # x^2 as np.square: the same correctly rounded x*x, without libm's pow (4x faster)
    if type(exponent) is int and exponent == 2 and type(x) is np.ndarray \
            and x.dtype.kind == "f":
        return np.square(x)
    return np.power(x, exponent)


pow_scalar = Primitive("pow_scalar", "PowBackward0", _pow_scalar,
                       quiet=True, input_names=("self",),
                       batch=batching.elementwise, delta=batching.delta_elementwise,
                       domain="positive", sample=_pow_scalar_samples,
                       vjp=_pow_scalar_vjp,
                       jvp=lambda t, x, out, exponent: _pow_scalar_vjp(t, x, out, exponent))


def _safe_log(a):
    """log(a), with 0 where a == 0 (torch masks the exponent's gradient there)."""
    return B.log(B.where(B.data(a) == 0, 1.0, a))


def _pow_samples():
    return [one(positive(2, 3), normal(2, 3, seed=1)), one(positive(3, 1), normal(4))]


def _power(a, b):
    """a ** b; integers to negative integer powers as torch's kernel (1 and -1 keep their
    powers, everything else truncates to 0), where numpy refuses them."""
    da, db = np.result_type(a), np.result_type(b)
    if da.kind in "biu" and db.kind in "biu":
        if da == np.bool_ and db == np.bool_:
            raise NotImplementedError("\"pow\" not implemented for 'Bool'")
        negative = np.less(b, 0)
        if negative.any():
            kept = np.power(a, np.where(negative, 0, b))
            sign = np.where(np.equal(np.remainder(b, 2), 0), 1, -1)
            small = np.where(np.equal(a, 1), 1, np.where(np.equal(a, -1), sign, 0))
            return np.where(negative, small, kept).astype(kept.dtype)
    return np.power(a, b)


# d a^b = b a^(b-1) da + a^b log(a) db
pow = _binary("pow", "PowBackward1", _power,
              (lambda g, a, b, out: g * (b * a ** (b - 1)),
               lambda g, a, b, out: g * (a ** b) * _safe_log(a)),
              (lambda t, a, b, out: t * (b * a ** (b - 1)),
               lambda t, a, b, out: t * out * _safe_log(a)),
              quiet=True, domain="positive", sample=_pow_samples)
# c^x with a python-number base: torch records PowBackward2.
rpow = Primitive("rpow", "PowBackward2", lambda x, base: _power(base, x), quiet=True,
                 save="both",
                 input_names=("exponent",),
                 batch=batching.elementwise, delta=batching.delta_elementwise,
                 sample=lambda: [one(normal(2, 3), base=2.0), one(normal(4), base=0.5)],
                 vjp=lambda g, x, out, base: g * out * float(np.log(base)),
                 jvp=lambda t, x, out, base: t * out * float(np.log(base)))

# a % b (python's sign convention, torch.remainder): d/da = 1, d/db = -floor(a / b);
# torch names the tensor-divisor form RemainderBackward1, the scalar one RemainderBackward0
remainder_scalar = Primitive("remainder_scalar", "RemainderBackward0",
                             lambda x, other: np.remainder(x, other), quiet=True, save="none",
                             analytic=False,
                             batch=batching.elementwise, delta=batching.delta_elementwise,
                             sample=lambda: [one(np.array([-2.3, -0.4, 0.7, 1.9]), other=0.9)],
                             vjp=lambda g, x, out, other: g,
                             jvp=lambda t, x, out, other: t)


def _remainder_samples():
    return [one(np.array([-2.3, -0.4, 0.7, 1.9]), np.array([0.9, 0.9, -0.6, 0.8])),
            one(np.array([[3.1], [-1.3]]), np.array(0.7))]


remainder = _binary("remainder", "RemainderBackward1", np.remainder,
                    (lambda g, a, b, out: g,
                     lambda g, a, b, out: -g * np.floor_divide(B.data(a), B.data(b))),
                    (lambda t, a, b, out: t,
                     lambda t, a, b, out: -t * np.floor_divide(a, b)),
                    quiet=True, analytic=False, domain="away_from_zero", sample=_remainder_samples)

# ---- transcendental -----------------------------------------------------------------------
exp = _unary("exp", "ExpBackward0", np.exp, lambda g, x, out: g * out,
             lambda t, x, out: t * out, quiet=True, save="out",
             sample=unary())
log = _unary("log", "LogBackward0", np.log, lambda g, x, out: g / x,
             lambda t, x, out: t / x, quiet=True, domain="positive",
             sample=unary(positive))
# d log2(x) = dx / (x ln 2),  d log10(x) = dx / (x ln 10)
log2 = _unary("log2", "Log2Backward0", np.log2, lambda g, x, out: g / (x * np.log(2.0)),
              lambda t, x, out: t / (x * np.log(2.0)), quiet=True, domain="positive",
              sample=unary(positive))
log10 = _unary("log10", "Log10Backward0", np.log10, lambda g, x, out: g / (x * np.log(10.0)),
               lambda t, x, out: t / (x * np.log(10.0)), quiet=True, domain="positive",
               sample=unary(positive))
log1p = _unary("log1p", "Log1PBackward0", np.log1p, lambda g, x, out: g / (x + 1),
               lambda t, x, out: t / (x + 1), quiet=True, domain="positive",
               sample=unary(positive))
expm1 = _unary("expm1", "Expm1Backward0", np.expm1, lambda g, x, out: g * (out + 1),
               lambda t, x, out: t * (out + 1), quiet=True, save="out",
               sample=unary())
# d sqrt(x) = dx / (2 sqrt(x))
sqrt = _unary("sqrt", "SqrtBackward0", np.sqrt, lambda g, x, out: g / (2 * out),
              lambda t, x, out: t / (2 * out), quiet=True, save="out", domain="positive",
              sample=unary(positive))
sin = _unary("sin", "SinBackward0", np.sin, lambda g, x, out: g * B.cos(x),
             lambda t, x, out: t * B.cos(x),
             quiet=True, sample=unary())
cos = _unary("cos", "CosBackward0", np.cos, lambda g, x, out: -g * B.sin(x),
             lambda t, x, out: -t * B.sin(x),
             quiet=True, sample=unary())
# d tan(x) = (1 + tan(x)^2) dx
tan = _unary("tan", "TanBackward0", np.tan, lambda g, x, out: g * (1 + out * out),
             lambda t, x, out: t * (1 + out * out), quiet=True, save="out",
             sample=unary(unit))
# d tanh(x) = (1 - tanh(x)^2) dx
def _on_tensors(prim, args, params):
    """Run ``prim`` recorded when an argument is a Tensor (create_graph), else on arrays."""
    if any(isinstance(a, Tensor) for a in args):
        return apply(prim, args, params)
    return prim.forward(*args, **params)


def _result_backward(name, node_name, slope, dslope):
    """g * slope(y) with y the forward's result: the backward of tanh / sigmoid, itself a node
    under create_graph (torch's tanh_backward(grad, result), TanhBackwardBackward0, edges to
    grad and result).  d/dg = slope(y), d/dy = g slope'(y)."""
    prim = Primitive(name, node_name, lambda g, y: g * slope(y), broadcasts=True,
                     input_names=("grad_output", "output"), batch=batching.elementwise,
                     doc=f"the backward of {name[:-len('_backward')]}",
                     sample=lambda: [one(normal(2, 3), np.tanh(normal(2, 3, seed=1)))],
                     vjp=(lambda gg, g, y, out: _on_tensors(prim, (gg, y), {}),
                          lambda gg, g, y, out: gg * g * dslope(y)),
                     jvp=(lambda t, g, y, out: t * slope(y),
                          lambda t, g, y, out: t * g * dslope(y)))
    return prim


def input_backward(name, node_name, slope, curvature, sample, domain=None):
    """g * slope(x) for an activation whose derivative reads its input x: its backward, itself
    a node under create_graph (torch's elu_backward / gelu_backward / softplus_backward:
    EluBackwardBackward0, ..., edges to grad and self).  d/dg = slope(x), d/dx = g
    curvature(x) (the activation's second derivative, in backend ops so it records too)."""
    prim = Primitive(name, node_name, lambda g, x, **p: g * slope(x, **p), broadcasts=True,
                     input_names=("grad_output", "self"), analytic=False, domain=domain,
                     batch=batching.elementwise, quiet=True,
                     doc=f"the backward of {name[:-len('_backward')]}", sample=sample,
                     vjp=(lambda gg, g, x, out, **p: _on_tensors(prim, (gg, x), p),
                          lambda gg, g, x, out, **p: gg * g * curvature(x, **p)),
                     jvp=(lambda t, g, x, out, **p: t * slope(x, **p),
                          lambda t, g, x, out, **p: t * g * curvature(x, **p)))
    return prim


# tanh' = 1 - y^2, (1 - y^2)' = -2y;  sigmoid' = y (1 - y), (y (1 - y))' = 1 - 2y
tanh_backward = _result_backward("tanh_backward", "TanhBackwardBackward0",
                                 lambda y: 1 - y * y, lambda y: -2 * y)
sigmoid_backward = _result_backward("sigmoid_backward", "SigmoidBackwardBackward0",
                                    lambda y: y * (1 - y), lambda y: 1 - 2 * y)
tanh = _unary("tanh", "TanhBackward0", np.tanh,
              lambda g, x, out: _on_tensors(tanh_backward, (g, out), {}),
              lambda t, x, out: t * (1 - out * out), save="out",
              sample=unary())
sinh = _unary("sinh", "SinhBackward0", np.sinh, lambda g, x, out: g * B.cosh(x),
              lambda t, x, out: t * B.cosh(x),
              quiet=True, sample=unary())
cosh = _unary("cosh", "CoshBackward0", np.cosh, lambda g, x, out: g * B.sinh(x),
              lambda t, x, out: t * B.sinh(x),
              quiet=True, sample=unary())
# d asin(x) = dx / sqrt(1 - x^2)
arcsin = _unary("arcsin", "AsinBackward0", np.arcsin,
                lambda g, x, out: g / B.sqrt(1 - x * x),
                lambda t, x, out: t / B.sqrt(1 - x * x), quiet=True, domain="unit",
                sample=unary(unit))
arccos = _unary("arccos", "AcosBackward0", np.arccos,
                lambda g, x, out: -g / B.sqrt(1 - x * x),
                lambda t, x, out: -t / B.sqrt(1 - x * x), quiet=True, domain="unit",
                sample=unary(unit))
# d atan(x) = dx / (1 + x^2)
arctan = _unary("arctan", "AtanBackward0", np.arctan, lambda g, x, out: g / (1 + x * x),
                lambda t, x, out: t / (1 + x * x),
                sample=unary())
# d atan2(y, x) = (x dy - y dx) / (x^2 + y^2)
arctan2 = _binary("arctan2", "Atan2Backward0", np.arctan2,
                  (lambda g, y, x, out: g * x / (x * x + y * y),
                   lambda g, y, x, out: -g * y / (x * x + y * y)),
                  (lambda t, y, x, out: t * x / (x * x + y * y),
                   lambda t, y, x, out: -t * y / (x * x + y * y)), quiet=True, analytic=False,
                  sample=binary(normal, away))
# d sigmoid(x) = s (1 - s) dx
sigmoid = _unary("sigmoid", "SigmoidBackward0", B.np_sigmoid,
                 lambda g, x, out: _on_tensors(sigmoid_backward, (g, out), {}),
                 lambda t, x, out: t * (out * (1 - out)), save="out",
                 sample=unary())
# d x^(-1/2) = -1/2 x^(-3/2) dx
rsqrt = _unary("rsqrt", "RsqrtBackward0", lambda x: 1 / np.sqrt(x),
               lambda g, x, out: -0.5 * g * (out * out * out),
               lambda t, x, out: -0.5 * t * (out * out * out), quiet=True, save="out",
               domain="positive",
               sample=unary(positive))
reciprocal = _unary("reciprocal", "ReciprocalBackward0", np.reciprocal,
                    lambda g, x, out: -g * (out * out), lambda t, x, out: -t * (out * out),
                    quiet=True, save="out", domain="nonzero",
                    sample=unary(away))


# ---- non-smooth (kinks at 0 or at the clamp bounds) -----------------------------------------
# d|x| = sign(x) dx; sign recorded under create_graph (a zero derivative, as torch's sgn)
def _abs(x):
    if x.dtype == np.bool_:
        raise NotImplementedError("\"abs_cpu\" not implemented for 'Bool'")
    return np.abs(x)


def _sgn_vjp(g, x, out):
    # real x: sgn is piecewise constant, its derivative 0 (present, as torch's); complex x:
    # d sgn = (dx - Re(dx conj(sgn)) sgn) / |x| (torch's sgn_backward), on the data
    data = B.data(x)
    if not np.iscomplexobj(data):
        return B.zeros_like(g)
    s = B.data(out)
    gd = B.data(g)
    mag = np.abs(data)
    return np.where(mag == 0, 0, (gd - np.real(gd * np.conj(s)) * s) / np.where(mag == 0, 1, mag))


# x / |x| (0 at 0): the factor of abs's gradient, recorded under create_graph (torch's
# abs backward is grad * self.sgn(), so the gradient of a gradient of abs exists, zero)
sgn = _unary("sgn", "SgnBackward0", B.real_sign, _sgn_vjp,
             lambda t, x, out: _sgn_vjp(t, x, out), save="both",
             analytic=False, domain="away_from_zero", sample=unary(away))
abs = _unary("abs", "AbsBackward0", _abs,
             lambda g, x, out: g * _on_tensors(sgn, (x,), {}),
             lambda t, x, out: t * B.real_sign(x), analytic=False, domain="away_from_zero",
             sample=unary(away))


def _sign(x):
    return x.copy() if x.dtype == np.bool_ else B.real_sign(x)  # torch: sign of bool is itself


# torch's sign backward is zeros_like(grad): a constant, no graph under create_graph and no
# NaN from a NaN gradient
sign = _unary("sign", "SignBackward0", _sign, lambda g, x, out: B.zeros_like(g),
              lambda t, x, out: np.zeros_like(t), save="none", analytic=False,
              domain="away_from_zero",
              sample=unary(away))
# the gradient passes where the output is positive; a where, not a product, as torch's
# threshold_backward (an inf or nan gradient stays out of the zeroed region)
# relu's backward is itself a node (torch: threshold_backward(grad, result, 0), recorded as
# ThresholdBackwardBackward0 with edges to grad and to relu's result): linear in grad,
# constant in result, so the gradient of a gradient exists and is zero in x, as torch's.
def _threshold_backward(g, x, threshold):
    # torch: x <= threshold ? 0 : g (a NaN x passes the gradient)
    return np.where(x <= threshold, np.zeros((), dtype=np.result_type(g)), g)


threshold_backward = Primitive(
    "threshold_backward", "ThresholdBackwardBackward0", _threshold_backward, broadcasts=True,
    input_names=("grad_output", "self"), analytic=False, domain="away_from_zero",
    batch=batching.elementwise, doc="the backward of relu (and threshold)",
    sample=lambda: [one(normal(3, 4), away(3, 4, seed=1), threshold=0.0)],
    vjp=(lambda gg, g, x, out, threshold: _on_tensors(threshold_backward, (gg, x),
                                                      {"threshold": threshold}),
         lambda gg, g, x, out, threshold: B.zeros_like(gg)),
    jvp=(lambda t, g, x, out, threshold: _threshold_backward(t, x, threshold),
         lambda t, g, x, out, threshold: np.zeros_like(t)))
relu = _unary("relu", "ReluBackward0", lambda x: np.maximum(x, 0),
              lambda g, x, out: _on_tensors(threshold_backward, (g, out), {"threshold": 0}),
              lambda t, x, out: _threshold_backward(t, out, 0.0), save="out", analytic=False,
              domain="away_from_zero",
              sample=unary(away))


def _softplus(x, beta=1.0, threshold=20.0):
    bx = beta * x
    return np.where(bx > threshold, x, np.logaddexp(0.0, bx) / beta)


def _softplus_slope(x, beta=1.0, threshold=20.0):
    # d softplus(x) = sigmoid(beta x) dx below the threshold, dx above it (linear there)
    z = x * beta
    return B.where(B.data(z) > threshold, 1.0, B.sigmoid(z))


def _softplus_curvature(x, beta=1.0, threshold=20.0):
    # d sigmoid(beta x) = beta s (1 - s) dx below the threshold, 0 above it
    s = B.sigmoid(x * beta)
    return B.where(B.data(x * beta) > threshold, 0.0, s * (1 - s) * beta)


softplus_backward = input_backward(
    "softplus_backward", "SoftplusBackwardBackward0", _softplus_slope, _softplus_curvature,
    lambda: [one(normal(2, 3), normal(2, 3, seed=1) * 3, beta=1.0, threshold=20.0),
             one(normal(4), np.array([-2.0, 0.5, 3.0, 12.0]), beta=2.0, threshold=10.0)])


def _softplus_vjp(g, x, out, beta=1.0, threshold=20.0):
    return _on_tensors(softplus_backward, (g, x), {"beta": beta, "threshold": threshold})


def _softplus_samples():
    return [one(normal(2, 3) * 3, beta=1.0, threshold=20.0),
            one(np.array([-2.0, 0.5, 3.0, 12.0]), beta=2.0, threshold=10.0)]


softplus = Primitive("softplus", "SoftplusBackward0", _softplus, quiet=True, input_names=("self",),
                     analytic=False,
                     batch=batching.elementwise, delta=batching.delta_elementwise,
                     sample=_softplus_samples,
                     vjp=_softplus_vjp,
                     jvp=lambda t, x, out, **p: t * _softplus_slope(x, **p))


def _clamp_vjp(g, x, out, min=None, max=None):
    # The gradient passes where min <= x <= max (torch's convention at the bounds).
    data = B.data(x)
    if min is not None and max is not None:
        keep = (data >= min) & (data <= max)
    elif min is not None:
        keep = data >= min          # one comparison, no all-True mask to combine it with
    elif max is not None:
        keep = data <= max
    else:
        keep = np.ones(np.shape(data), dtype=bool)
    return B.where(keep, g, 0.0)


def _clamp(x, min=None, max=None):
    out = x
    if min is not None:
        out = np.maximum(out, min)
    if max is not None:
        out = np.minimum(out, max)
    return out


# clamp(x, min=a, max=b) with python bounds records ClampBackward1 in torch (either bound may
# be None); the methods clamp_min / clamp_max record their own nodes.
_CLAMP_SAMPLES = {
    "clamp": lambda: [one(np.array([-1.2, -0.3, 0.1, 0.8, 1.7]), min=-0.5, max=0.5),
                      one(np.array([-1.2, 0.3]), min=None, max=0.0)],
    "clamp_min": lambda: [one(np.array([-1.2, -0.3, 0.1, 0.8]), min=0.0, max=None)],
    "clamp_max": lambda: [one(np.array([-1.2, -0.3, 0.1, 0.8]), min=None, max=0.0)],
}
for _name, _node in (("clamp", "ClampBackward1"), ("clamp_min", "ClampMinBackward0"),
                     ("clamp_max", "ClampMaxBackward0")):
    _p = Primitive(_name, _node, _clamp, input_names=("self",), analytic=False,
                   batch=batching.elementwise, delta=batching.delta_elementwise,
                   domain="away_from_clamp", sample=_CLAMP_SAMPLES[_name],
                   vjp=_clamp_vjp,
                   jvp=lambda t, x, out, min=None, max=None: _clamp_vjp(t, x, out, min, max))
clamp = REGISTRY["clamp"]


# clamp_min(x, t) / clamp_max(x, t) with a tensor bound: their own nodes in torch
clamp_min_tensor = _binary("clamp_min_tensor", "ClampMinBackward1", np.maximum,
                           (lambda g, x, lo, out: B.where(B.data(x) >= B.data(lo), g, 0.0),
                            lambda g, x, lo, out: B.where(B.data(x) < B.data(lo), g, 0.0)),
                           (lambda t, x, lo, out: np.where(x >= lo, t, 0.0),
                            lambda t, x, lo, out: np.where(x < lo, t, 0.0)),
                           analytic=False, domain="distinct",
                           sample=binary(distinct, shifted))
clamp_max_tensor = _binary("clamp_max_tensor", "ClampMaxBackward1", np.minimum,
                           (lambda g, x, hi, out: B.where(B.data(x) <= B.data(hi), g, 0.0),
                            lambda g, x, hi, out: B.where(B.data(x) > B.data(hi), g, 0.0)),
                           (lambda t, x, hi, out: np.where(x <= hi, t, 0.0),
                            lambda t, x, hi, out: np.where(x > hi, t, 0.0)),
                           analytic=False, domain="distinct",
                           sample=binary(distinct, shifted))


def _tensor_clamp(x, lo, hi):
    out = x
    if lo is not None:
        out = np.maximum(out, lo)
    if hi is not None:
        out = np.minimum(out, hi)
    return out


def _clamp_self_keep(x, lo, hi):
    keep = np.ones(np.broadcast_shapes(*(np.shape(v) for v in (x, lo, hi) if v is not None)),
                   dtype=bool)
    if lo is not None:
        keep = keep & (x >= lo)
    if hi is not None:
        keep = keep & (x <= hi)
    return keep


def _clamp_lo_keep(x, lo, hi):
    # the lower bound wins where x < lo (and, with an upper bound, lo <= hi)
    keep = x < lo
    if hi is not None:
        keep = keep & (lo <= hi)
    return keep


def _clamp_hi_keep(x, lo, hi):
    # the upper bound wins where max(x, lo) > hi
    return (x if lo is None else np.maximum(x, lo)) > hi


def _clamp_rule(keep_fn):
    def rule(g, x, lo, hi, out):
        keep = keep_fn(B.data(x), B.data(lo), B.data(hi))
        return B.where(keep, g, 0.0)
    return rule


# clamp with tensor bounds: one ClampBackward0 node with edges to x, min and max.
clamp_tensor = Primitive("clamp_tensor", "ClampBackward0", _tensor_clamp, broadcasts=True,
                         input_names=("self", "min", "max"), analytic=False,
                         batch=batching.elementwise, delta=batching.delta_elementwise,
                         domain="distinct",
                         sample=lambda: [
                    one(np.array([-1.0, 0.0, 1.0, 2.0]), np.array([-0.5, 0.5, 0.7, -3.0]),
                        np.array([0.5, 1.5, 0.9, 1.0])),
                    one(np.array([[-1.0, 0.3], [2.0, 0.1]]), np.array([0.0, 0.2]), None),
                    one(np.array([-1.0, 0.3, 2.0]), None, np.array(0.5))],
                         vjp=(_clamp_rule(_clamp_self_keep), _clamp_rule(_clamp_lo_keep),
                              _clamp_rule(_clamp_hi_keep)),
                         jvp=(_clamp_rule(_clamp_self_keep), _clamp_rule(_clamp_lo_keep),
                              _clamp_rule(_clamp_hi_keep)))


def _extreme_vjp(g, a, b, beaten):
    # an input gets the gradient unless it is beaten; ties split it evenly; where a NaN makes
    # every comparison false both inputs get all of it (torch's maximum/minimum backward)
    da, db = B.data(a), B.data(b)
    return B.where(beaten(da, db), 0.0, B.where(da == db, g * 0.5, g))


def _extreme_jvp(t, a, b, first: bool, wins):
    # torch's tangent: where(a == b, (ta + tb) / 2, where(a wins, ta, tb)): with a NaN the
    # second input's tangent
    da, db = B.data(a), B.data(b)
    won = wins(da, db)
    kept = won if first else ~won
    return np.where(kept & (da != db), t, np.where(da == db, t * 0.5, 0.0))


maximum = _binary("maximum", "MaximumBackward0", np.maximum,
                  (lambda g, a, b, out: _extreme_vjp(g, a, b, np.less),
                   lambda g, a, b, out: _extreme_vjp(g, a, b, np.greater)),
                  (lambda t, a, b, out: _extreme_jvp(t, a, b, True, np.greater),
                   lambda t, a, b, out: _extreme_jvp(t, a, b, False, np.greater)),
                  analytic=False, domain="distinct",
                  sample=binary(distinct, shifted))
minimum = _binary("minimum", "MinimumBackward0", np.minimum,
                  (lambda g, a, b, out: _extreme_vjp(g, a, b, np.greater),
                   lambda g, a, b, out: _extreme_vjp(g, a, b, np.less)),
                  (lambda t, a, b, out: _extreme_jvp(t, a, b, True, np.less),
                   lambda t, a, b, out: _extreme_jvp(t, a, b, False, np.less)),
                  analytic=False, domain="distinct",
                  sample=binary(distinct, shifted))

# where(cond, a, b): cond is a constant boolean mask.
# Only the condition is saved (torch's _saved_condition): changing a or b in place after
# the where is no version error.
where = Primitive("where", "WhereBackward0", np.where, broadcasts=True, save="inputs",
                  input_names=("condition", "self", "other"), analytic=True,
                  needs=((0,), (0,), (0,)),
                  batch=batching.elementwise, delta=batching.delta_elementwise,
                  sample=lambda: [one(mask(2, 3), normal(2, 3), normal(2, 3, seed=1)),
                                  one(mask(3, 1), normal(4), 0.5)],
                  vjp=(None,
                       lambda g, c, a, b, out: B.where(B.data(c), g, 0.0),
                       lambda g, c, a, b, out: B.where(B.data(c), 0.0, g)),
                  # selected, not multiplied by a 0/1 mask: a NaN tangent of the branch
                  # not taken stays out (torch's where of the tangents)
                  jvp=(None,
                       lambda t, c, a, b, out: np.where(c, t, 0.0),
                       lambda t, c, a, b, out: np.where(c, 0.0, t)))


# masked_fill(x, mask, value): the gradient flows where the mask is False.
masked_fill = Primitive("masked_fill", "MaskedFillBackward0",
                        lambda x, mask, value: np.where(mask, np.asarray(value, x.dtype), x),
                        broadcasts=True, save="inputs", input_names=("self", "mask"),
                        needs=((1,), (1,)),      # the mask only (torch's _saved_mask)
                        batch=batching.elementwise, delta=batching.delta_elementwise,
                        sample=lambda: [one(normal(2, 3), mask(2, 3), value=0.5),
                                        one(normal(2, 3), mask(3), value=-1.0)],
                        vjp=(lambda g, x, mask, out, value: B.where(mask, 0.0, g), None),
                        # selected: a NaN tangent under the mask does not survive the fill
                        jvp=(lambda t, x, mask, out, value: np.where(mask, np.zeros((), t.dtype),
                                                                     t), None))

# masked_fill with a 0-dim tensor value: MaskedFillBackward1; the value gets the masked sum.
masked_fill_tensor = Primitive("masked_fill_tensor", "MaskedFillBackward1",
                               lambda x, mask, value: np.where(mask, value, x).astype(
                                   x.dtype, copy=False),
                               broadcasts=True, input_names=("self", "mask", "value"),
                               needs=((1,), (1,), (1,)),
                               batch=batching.elementwise, delta=batching.delta_elementwise,
                               sample=lambda: [one(normal(2, 3), mask(2, 3), np.array(0.7))],
                               vjp=(lambda g, x, mask, value, out: B.where(mask, 0.0, g),
                                    None,
                                    lambda g, x, mask, value, out: B.where(mask, g, 0.0)),
                               jvp=(lambda t, x, mask, value, out: np.where(
                                        mask, np.zeros((), t.dtype), t),
                                    None,
                                    lambda t, x, mask, value, out: np.where(
                                        mask, t, np.zeros((), t.dtype))))


# ---- rounding: piecewise constant, the derivative is zero (torch records a node anyway) ----
def _zero_rule(g, x, out, **params):
    # zeros, not g * 0 (an inf or nan gradient gives 0, as torch's zeros_like(grad))
    return B.zeros_like(g)


def _rounding(name, node_name, forward, *, sample=None):
    return Primitive(name, node_name, forward, save="none", analytic=False,
                     input_names=("self",), batch=batching.elementwise,
                     delta=batching.delta_elementwise, domain="away_from_integers",
                     sample=sample or unary(), vjp=_zero_rule, jvp=_zero_rule)


floor = _rounding("floor", "FloorBackward0", np.floor)
ceil = _rounding("ceil", "CeilBackward0", np.ceil)
trunc = _rounding("trunc", "TruncBackward0", np.trunc)
# round half to even, as torch; with decimals= torch records RoundBackward1
round = _rounding("round", "RoundBackward0", np.round)
round_decimals = _rounding("round_decimals", "RoundBackward1",
                           lambda x, decimals: np.round(x, decimals),
                           sample=lambda: [one(normal(2, 3), decimals=1),
                                           one(normal(4), decimals=-1)])
# frac(x) = x - trunc(x): the derivative is 1 away from the integers
frac = _unary("frac", "FracBackward0", lambda x: x - np.trunc(x), lambda g, x, out: g,
              lambda t, x, out: t, save="none", analytic=False, domain="away_from_integers",
              sample=unary())


# ---- comparisons: boolean, not differentiable -------------------------------------------------
def _comparison(name, fn, *, sample=None):
    prim = Primitive(name, name.capitalize() + "Backward0", fn, save="none",
                     differentiable=False, broadcasts=True, input_names=("self", "other"),
                     batch=batching.elementwise, delta=batching.delta_elementwise, sample=sample,
                     vjp=(None, None),
                     jvp=(None, None))
    return prim


def _ordered_samples():
    # not differentiable: the walker checks the forward and the absence of a graph
    return [one(distinct(2, 3), distinct(2, 3, seed=1)), one(distinct(3), 0.1)]


eq = _comparison("eq", np.equal, sample=_ordered_samples)
ne = _comparison("ne", np.not_equal, sample=_ordered_samples)
lt = _comparison("lt", np.less, sample=_ordered_samples)
le = _comparison("le", np.less_equal, sample=_ordered_samples)
gt = _comparison("gt", np.greater, sample=_ordered_samples)
ge = _comparison("ge", np.greater_equal, sample=_ordered_samples)
logical_not = Primitive("logical_not", "LogicalNotBackward0", np.logical_not, save="none",
                        differentiable=False,
                        batch=batching.elementwise, delta=batching.delta_elementwise,
                        sample=lambda: [one(mask(2, 3))],
                        vjp=(None,),
                        jvp=(None,))
logical_and = _comparison("logical_and", np.logical_and,
                          sample=lambda: [one(mask(2, 3), mask(2, 3, seed=1))])
logical_or = _comparison("logical_or", np.logical_or,
                         sample=lambda: [one(mask(2, 3), mask(2, 3, seed=1))])


# ---- integer inputs: the default floating dtype ------------------------------------------------
#: ops that compute in floating point: on integer or bool tensors torch returns its default
#: float dtype, where numpy picks float16 (bool, int8, uint8), float32 (int16) or keeps
#: integers (reciprocal); the inputs are converted first, as torch's kernels do
FLOAT_RESULT = ("exp", "log", "log1p", "expm1", "log2", "log10", "sin", "cos", "tan", "tanh",
                "sinh", "cosh", "arcsin", "arccos", "arctan", "sqrt", "rsqrt", "sigmoid",
                "reciprocal", "arctan2", "div", "erf")


def _integers_as_default_float(forward):
    from ..dtypes import DEFAULT_FLOAT

    def run(*args, **params):
        first = args[0]
        if type(first) is np.ndarray and first.dtype.kind in "fc":
            return forward(*args, **params)
        if any(type(a) is np.ndarray and a.dtype.kind in "fc" for a in args):
            return forward(*args, **params)
        args = [a.astype(DEFAULT_FLOAT.np) if type(a) is np.ndarray else a for a in args]
        return forward(*args, **params)
    run.__name__ = getattr(forward, "__name__", "forward")
    return run


for _name in FLOAT_RESULT:
    if _name in REGISTRY:
        REGISTRY[_name].forward = _integers_as_default_float(REGISTRY[_name].forward)
