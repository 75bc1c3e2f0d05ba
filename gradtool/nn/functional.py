"""``gt.nn.functional``: the functions of ``torch.nn.functional``.

Elementwise activations and the losses are the engine's ops (``gradtool.engine.ops``) when
it has them; the layers' own operations (linear, conv2d, pooling, embedding, dropout) call
the primitives of :mod:`gradtool.engine.prims.nn`, imported here so they are registered as
soon as ``gt.nn`` is.
"""

from __future__ import annotations

import math
import warnings
from builtins import sum as builtins_sum

import numpy as np

from ..engine import ops as _ops
from ..engine.grad_mode import no_grad
from ..engine.dtypes import scalar_type_name as _dtype_name
from ..engine.dtypes import DEFAULT_FLOAT, torch_result_dtype
from ..engine.ops.common import float_kernel, scalar_type_name
from ..engine.ops.inplace import _inplace
from ..engine.ops.nn_functional import _loss_operands, _not_differentiable
from ..engine.ops.nn_functional import _reduction as _loss_reduction
from ..engine.prims import loss as _L
from ..engine.prims import nn as _P
from ..engine.prims import reduce as _R
from ..engine.prims import shape as _S
from ..engine.primitive import apply
from ..engine.random import _rng
from ..engine.tensor import Tensor, _make
from ..errors import EngineError, ShapeError

relu = _ops.relu
sigmoid = _ops.sigmoid
tanh = _ops.tanh
softplus = _ops.softplus


def _pair(value, name: str = "value") -> tuple:
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            return (int(value[0]),) * 2
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value}")
        return tuple(int(v) for v in value)
    return (int(value), int(value))


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


# ---- activations --------------------------------------------------------------------------
def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """x clamped to [min_val, max_val] (HardtanhBackward0: zero gradient at the bounds)."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    data = input._data
    if data.dtype == np.bool_:
        raise EngineError("Bool inputs not supported for hardtanh")
    if data.dtype.kind in "iu":     # integers stay integers (no gradient)
        return _make(np.clip(data, min_val, max_val).astype(data.dtype))
    return apply(_P.hardtanh, (input,), {"min_val": min_val, "max_val": max_val})


def relu6(input: Tensor) -> Tensor:
    """hardtanh(x, 0, 6), as torch records it."""
    return hardtanh(input, 0.0, 6.0)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, value elsewhere (ThresholdBackward0; integers stay integers)."""
    if input._data.dtype == np.bool_:
        raise NotImplementedError("\"threshold_cpu\" not implemented for 'Bool'")

    def compute(x):
        data = x._data
        if data.dtype.kind in "iu":
            return _make(np.where(data > threshold, data, value).astype(data.dtype))
        prim = _P.threshold_inplace if inplace else _P.threshold
        return apply(prim, (x,), {"threshold": threshold, "value": value})
    return _inplace(input, compute) if inplace else compute(input)


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, negative_slope * x otherwise."""
    float_kernel("leaky_relu_cpu", input)
    return apply(_P.leaky_relu, (input,), {"negative_slope": negative_slope})


def elu(input: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha (exp(x) - 1) otherwise."""
    float_kernel("elu_cpu", input)
    return apply(_P.elu, (input,), {"alpha": alpha})


def silu(input: Tensor) -> Tensor:
    """x sigmoid(x)."""
    float_kernel("silu_cpu", input)
    return apply(_P.silu, (input,))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x Φ(x), Φ the standard normal CDF (``approximate='tanh'``: the tanh formula)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate argument must be either none or tanh, got "
                         f"{approximate}")
    float_kernel("GeluKernelImpl", input)
    return apply(_P.gelu, (input,), {"approximate": approximate})


def _implicit_dim_warning(name: str, dim) -> None:
    if dim is None:
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the "
                      "call to include dim=X as an argument.", UserWarning, stacklevel=3)


def softmax(input: Tensor, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """F.softmax; without ``dim``, torch's legacy implicit choice, with its warning."""
    _implicit_dim_warning("softmax", dim)
    return _ops.softmax(input, dim, dtype)


def log_softmax(input: Tensor, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    _implicit_dim_warning("log_softmax", dim)
    return _ops.log_softmax(input, dim, dtype)


# ---- losses ---------------------------------------------------------------------------------
# The engine's fused losses, under torch.nn.functional's signatures (legacy size_average /
# reduce flags included: size_average=False means sum, reduce=False means none).
def _legacy_reduction(size_average, reduce, reduction: str) -> str:
    if size_average is None and reduce is None:
        return reduction
    if reduce is False:
        return "none"
    return "sum" if size_average is False else "mean"


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return _ops.mean(loss)
    if reduction == "sum":
        return _ops.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction")


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean") -> Tensor:
    """Mean (or sum) of squared differences (MseLossBackward0)."""
    return _ops.mse_loss(input, target,
                         reduction=_legacy_reduction(size_average, reduce, reduction))


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean") -> Tensor:
    """Mean (or sum) of absolute differences."""
    return _ops.l1_loss(input, target,
                        reduction=_legacy_reduction(size_average, reduce, reduction))


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """-input[n, target[n]], class-weighted, averaged over the weights of kept targets."""
    return _ops.nll_loss(input, target, weight, ignore_index=ignore_index,
                         reduction=_legacy_reduction(size_average, reduce, reduction))


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """nll_loss(log_softmax(input, class dim), target); float targets are probabilities."""
    return _ops.cross_entropy(input, target, weight, ignore_index=ignore_index,
                              reduction=_legacy_reduction(size_average, reduce, reduction),
                              label_smoothing=label_smoothing)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Sigmoid and binary cross-entropy in one numerically stable op."""
    return _ops.binary_cross_entropy_with_logits(
        input, target, weight, reduction=_legacy_reduction(size_average, reduce, reduction),
        pos_weight=pos_weight)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """-(t log p + (1 - t) log(1 - p)), logs clamped at -100 as torch (one node,
    BinaryCrossEntropyBackward0, with edges to input and target)."""
    target = _as_tensor(target)
    reduction = _loss_reduction(_legacy_reduction(size_average, reduce, reduction))
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({target.shape}) that is different to the "
                         f"input size ({input.shape}) is deprecated. Please ensure they have "
                         "the same size.")
    data = input._data
    if data.size and not ((data >= 0) & (data <= 1)).all():
        raise EngineError("all elements of input should be between 0 and 1")
    _not_differentiable("binary_cross_entropy", weight=weight)
    w = None if weight is None else np.broadcast_to(_as_tensor(weight)._data, data.shape)
    return apply(_L.binary_cross_entropy, (input, target),
                 {"reduction": reduction, "weight": w})


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d² / beta where |d| < beta, |d| - 0.5 beta elsewhere (SmoothL1LossBackward0;
    beta = 0 is l1_loss, as torch)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if beta < 0:
        raise EngineError("smooth_l1_loss does not support negative values for beta.")
    if beta == 0:
        return l1_loss(input, target, reduction=reduction)
    input, target = _loss_operands(input, target)
    float_kernel("smooth_l1_cpu", input)
    return apply(_L.smooth_l1_loss, (input, target),
                 {"reduction": _loss_reduction(reduction), "beta": float(beta)})


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean",
               delta: float = 1.0) -> Tensor:
    """0.5 d² where |d| < delta, delta (|d| - 0.5 delta) elsewhere (HuberLossBackward0)."""
    input, target = _loss_operands(input, target)
    float_kernel("huber_cpu", input)
    return apply(_L.huber_loss, (input, target),
                 {"reduction": _loss_reduction(reduction), "delta": float(delta)})


def _reduction_of(size_average, reduce, reduction: str) -> str:
    """The reduction torch's ``_Reduction.get_enum`` accepts (legacy flags first)."""
    return _loss_reduction(_legacy_reduction(size_average, reduce, reduction))


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """Pointwise KL divergence of log-probabilities ``input`` from ``target`` (probabilities,
    or log-probabilities with ``log_target``): target (log target - input), reduced;
    'batchmean' is the sum divided by the batch size (recorded as torch: SubBackward0 /
    MulBackward0, then Mean-/SumBackward0, DivBackward0 for 'batchmean')."""
    input, target = _as_tensor(input), _as_tensor(target)
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce, reduction)
    elif reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and "
                      "the support size.'batchmean' divides only by the batch size, and "
                      "aligns with the KL div math definition.'mean' will be changed to "
                      "behave the same as 'batchmean' in the next major release.",
                      UserWarning, stacklevel=2)
    reduced_by = _loss_reduction("sum" if reduction == "batchmean" else reduction)
    if log_target:
        loss = _ops.exp(target) * (target - input)
    else:
        # xlogy(target, target) - target * input (xlogy: 0 where target is 0)
        t_log_t = _ops.where(target == 0, _ops.zeros_like(target), target * _ops.log(target))
        loss = t_log_t - target * input
    out = _reduce(loss, reduced_by)
    if reduction == "batchmean" and input.ndim != 0:
        out = out / input.shape[0]
    return out


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True,
                     full: bool = False, size_average=None, eps: float = 1e-8, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """Poisson negative log-likelihood: exp(input) - target input (``log_input``), else
    input - target log(input + eps); ``full`` adds Stirling's term where target > 1."""
    reduction = _reduction_of(size_average, reduce, reduction)
    input, target = _as_tensor(input), _as_tensor(target)
    if log_input:
        loss = _ops.exp(input) - target * input
    else:
        loss = input - target * _ops.log(input + eps)
    if full:
        # target log(target) - target + 0.5 log(2 pi target), 0 where target <= 1
        stirling = target * _ops.log(target) - target + 0.5 * _ops.log(2 * np.pi * target)
        loss = loss + _ops.masked_fill(stirling, target <= 1, 0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(input: Tensor, target: Tensor, var, full: bool = False,
                      eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    """Gaussian negative log-likelihood: 0.5 (log var + (input - target)² / var) (+ 0.5
    log 2π with ``full``); var is clamped at eps without a gradient through the clamp, and
    may be one dim short of input or have one dim of size 1 (homoscedastic)."""
    input, target = _as_tensor(input), _as_tensor(target)
    if isinstance(var, float):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = var * _ops.ones_like(input)
    elif not isinstance(var, Tensor):
        # torch: torch.any(var < 0) of a Python bool
        raise TypeError("any() received an invalid combination of arguments - got (bool), but "
                        "expected one of:\n * (Tensor input, *, Tensor out = None)\n * (Tensor "
                        "input, tuple of ints dim = None, bool keepdim = False, *, Tensor out = "
                        "None)\n * (Tensor input, int dim, bool keepdim = False, *, Tensor out "
                        "= None)\n")
    else:
        var = _as_tensor(var)
        if bool((var._data < 0).any()):
            raise ValueError("var has negative entry/entries")
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = _ops.unsqueeze(var, -1)
        elif not (input.ndim == var.ndim and builtins_sum(
                v for i, v in zip(input.shape, var.shape) if i != v) == 1):
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not valid")
    var = _ops.clone(var)
    with no_grad():
        var.clamp_(min=eps)
    loss = 0.5 * (_ops.log(var) + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """The p-norm of x1 - x2 + eps over the last dim (NormBackward1, as torch)."""
    x1, x2 = _as_tensor(x1), _as_tensor(x2)
    last = max(x1.ndim, x2.ndim) - 1
    diff = x1 - x2 + eps
    if last < 0:
        last = 0
    return apply(_R.norm_dim, (diff,), {"ord": float(p), "dim": (last,) if diff.ndim else (),
                                        "keepdim": bool(keepdim)})


def _clamped_without_grad(norm: Tensor, eps: float) -> Tensor:
    """norm raised to eps where below it, its gradient still the norm's (torch clamps the
    norm in place under no_grad): norm plus a constant correction."""
    with no_grad():
        correction = _ops.clamp_min(norm, eps) - norm
    return norm + correction


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1/||x1|| * x2/||x2||) along dim, the norms clamped at eps (the clamp carries no
    gradient, as torch clamps them in place under no_grad); SumBackward1."""
    x1, x2 = _as_tensor(x1), _as_tensor(x2)
    common = torch_result_dtype([x1._data, x2._data])
    if common.kind not in "fc":
        raise EngineError("expected common dtype to be floating point, yet common dtype is "
                          f"{_dtype_name(common)}")
    x1, x2 = (x if x._data.dtype == common else _ops.to(x, common) for x in (x1, x2))
    shape = _broadcast_shape(x1, x2)
    x1 = x1 if tuple(x1.shape) == shape else _ops.broadcast_to(x1, shape)
    x2 = x2 if tuple(x2.shape) == shape else _ops.broadcast_to(x2, shape)
    norm1 = _clamped_without_grad(_ops.vector_norm(x1, 2, dim, keepdim=True), eps)
    norm2 = _clamped_without_grad(_ops.vector_norm(x2, 2, dim, keepdim=True), eps)
    return _ops.sum((x1 / norm1) * (x2 / norm2), dim)


def _broadcast_shape(a: Tensor, b: Tensor) -> tuple:
    """The shape a and b broadcast to, or torch's error naming the first dim that differs
    (counting from the right)."""
    sa, sb = tuple(a.shape), tuple(b.shape)
    ndim = max(len(sa), len(sb))
    sa, sb = (1,) * (ndim - len(sa)) + sa, (1,) * (ndim - len(sb)) + sb
    for i in range(ndim - 1, -1, -1):
        if sa[i] != sb[i] and sa[i] != 1 and sb[i] != 1:
            raise ShapeError(f"The size of tensor a ({sa[i]}) must match the size of tensor b "
                             f"({sb[i]}) at non-singleton dimension {i}")
    return tuple(max(x, y) if min(x, y) != 0 else 0 for x, y in zip(sa, sb))


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor,
                        margin: float = 1.0, p: float = 2, eps: float = 1e-6,
                        swap: bool = False, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:
    """max(d(a, p) - d(a, n) + margin, 0), d the pairwise distance (``swap``: d(a, n)
    replaced by min(d(a, n), d(p, n)))."""
    reduction = _reduction_of(size_average, reduce, reduction)
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    anchor, positive, negative = (_as_tensor(t) for t in (anchor, positive, negative))
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise EngineError("The anchor, positive, and negative tensors are expected to have the "
                          f"same number of dimensions, but got: anchor {anchor.ndim}D, positive "
                          f"{positive.ndim}D, and negative {negative.ndim}D inputs")
    dist_pos = pairwise_distance(anchor, positive, p, eps)
    dist_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        dist_neg = _ops.minimum(dist_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce(_ops.clamp_min(margin + dist_pos - dist_neg, 0), reduction)


def soft_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """log(1 + exp(-target input)), reduced (one node, SoftMarginLossBackward0, with no edge
    to the target)."""
    reduction = _reduction_of(size_average, reduce, reduction)
    input, target = _as_tensor(input), _as_tensor(target)
    _not_differentiable("soft_margin_loss", target=target)
    # torch writes the loss into a tensor of the input's shape and dtype
    shape = _broadcast_shape(input, target)
    if shape != tuple(input.shape):
        raise EngineError(f"output with shape {list(input.shape)} doesn't match the broadcast "
                          f"shape {list(shape)}")
    common = torch_result_dtype([input._data, target._data])
    if input._data.dtype.kind not in "fc":      # the loss is computed in a float type
        computed = common if common.kind in "fc" else DEFAULT_FLOAT.np
        raise EngineError(f"result type {_dtype_name(computed)} can't be cast "
                          f"to the desired output type {scalar_type_name(input)}")
    return apply(_L.soft_margin_loss, (input, target), {"reduction": reduction})


def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                size_average=None, reduce=None,
                                reduction: str = "mean") -> Tensor:
    """-(t logsigmoid(x) + (1 - t) logsigmoid(-x)), weighted, averaged over the classes
    (last dim), then reduced over the examples."""
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce, reduction)
    input, target = _as_tensor(input), _as_tensor(target)
    # logsigmoid(x) = -softplus(-x)
    loss = -(target * -_ops.softplus(-input) + (1 - target) * -_ops.softplus(input))
    if weight is not None:
        loss = loss * weight
    class_dim = input.ndim - 1
    loss = _ops.sum(loss, class_dim) / input.shape[class_dim]
    if reduction == "none":
        return loss
    if reduction == "mean":
        return _ops.mean(loss)
    if reduction == "sum":
        return _ops.sum(loss)
    raise ValueError(f"{reduction} is not valid")


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0,
                        size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """max(0, -target (input1 - input2) + margin), reduced."""
    reduction = _reduction_of(size_average, reduce, reduction)
    input1, input2, target = (_as_tensor(t) for t in (input1, input2, target))
    if not input1.ndim == input2.ndim == target.ndim:
        raise EngineError("margin_ranking_loss : All input tensors should have same dimension "
                          f"but got sizes: input1: {_size(input1)}, input2: {_size(input2)}, "
                          f"target: {_size(target)} ")
    return _reduce(_ops.clamp_min(-target * (input1 - input2) + margin, 0), reduction)


def _size(t: Tensor) -> str:
    return f"torch.Size([{', '.join(str(n) for n in t.shape)}])"


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """input where target is 1, max(0, margin - input) where it is -1, reduced."""
    reduction = _reduction_of(size_average, reduce, reduction)
    input, target = _as_tensor(input), _as_tensor(target)
    zeros = _ops.zeros_like(input)
    margin_clamp = _ops.clamp_min(margin - input, 0)
    output_margin = _ops.where(target != 1, margin_clamp, zeros)
    output_self = _ops.where(target != -1, input, zeros)
    return _reduce(output_margin + output_self, reduction)


_COSINE_EPSILON = 1e-12     # torch's EPSILON in cosine_embedding_loss


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0,
                          size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """1 - cos(x1, x2) where target is 1, max(0, cos(x1, x2) - margin) where it is -1, cos
    taken over the last dim, reduced."""
    reduction = _reduction_of(size_average, reduce, reduction)
    input1, input2, target = (_as_tensor(t) for t in (input1, input2, target))
    targ_dim = target.ndim
    if targ_dim not in (0, 1):
        raise EngineError("0D or 1D target tensor expected, multi-target not supported")
    expected = 2 if targ_dim == 1 else 1
    if input1.ndim != expected or input2.ndim != expected:
        raise EngineError(f"{targ_dim}D target tensor expects {expected}D input tensors, but "
                          f"found inputs with sizes {list(input1.shape)} and "
                          f"{list(input2.shape)}.")
    prod_sum = _ops.sum(input1 * input2, targ_dim)
    mag_square1 = _ops.sum(input1 * input1, targ_dim) + _COSINE_EPSILON
    mag_square2 = _ops.sum(input2 * input2, targ_dim) + _COSINE_EPSILON
    cos = prod_sum / _ops.sqrt(mag_square1 * mag_square2)
    zeros = _ops.zeros_like(cos)
    output_pos = _ops.where(target == 1, 1 - cos, zeros)
    output_neg = _ops.where(target == -1, _ops.clamp_min(cos - margin, 0), zeros)
    return _reduce(output_pos + output_neg, reduction)


# ---- layers' operations ---------------------------------------------------------------------
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x Wᵀ + b, recorded as torch records it: ``addmm`` (AddmmBackward0) with bias, the
    input viewed as 2-D around it (ViewBackward0) when it is not (a strided input that
    cannot be viewed: matmul, then ``add_`` of the bias); ``mm`` without bias."""
    wt = _ops.t(weight)
    if bias is not None and input.ndim >= 1:
        _addmm_checks(bias, input, weight)
    if input.ndim == 2:
        return _ops.mm(input, wt) if bias is None else apply(_P.addmm, (bias, input, wt))
    out_shape = tuple(input.shape[:-1]) + (weight.shape[0],)
    if bias is not None and not input._data.flags.c_contiguous:
        # torch: matmul, then the bias added in place (AddBackward0, one more version)
        return _ops.add_(_ops.matmul(input, wt), bias)
    # the input as 2-D: (prod of leading dims, features); written out, as -1 is ambiguous
    # for an empty input
    rows = int(np.prod(input.shape[:-1], dtype=np.int64))
    if bias is not None:
        flat = _ops.reshape(input, rows, input.shape[-1])
        return _ops.reshape(apply(_P.addmm, (bias, flat, wt)), out_shape)
    if input.ndim > 2:
        flat = _ops.reshape(input, rows, input.shape[-1])
        return apply(_S.unsafe_view, (_ops.mm(flat, wt),), {"shape": out_shape})
    return _ops.matmul(input, wt)


def _addmm_checks(bias: Tensor, input: Tensor, weight: Tensor) -> None:
    """torch's addmm errors, in its order: dtypes of bias and weight, of input and weight,
    then the shapes."""
    name = scalar_type_name
    if bias._data.dtype != weight._data.dtype:
        raise EngineError(f"self and mat2 must have the same dtype, but got {name(bias)} and "
                          f"{name(weight)}")
    if input._data.dtype != weight._data.dtype:
        raise EngineError(f"mat1 and mat2 must have the same dtype, but got {name(input)} and "
                          f"{name(weight)}")
    if weight.ndim == 2 and input.shape[-1] != weight.shape[1]:
        rows = int(np.prod(input.shape[:-1]))
        raise ShapeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{input.shape[-1]} "
                         f"and {weight.shape[1]}x{weight.shape[0]})")


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor,
             bias: Tensor | None = None) -> Tensor:
    """y_k = x1ᵀ W_k x2 + b_k for (..., in1) and (..., in2) inputs, W of shape
    (out, in1, in2)."""
    # recorded as torch: the inputs viewed as (N, in1), (N, in2), one TrilinearBackward0 node,
    # its (N, out) result viewed back to (..., out), then the bias added
    if input1.ndim != input2.ndim:
        raise ShapeError(f"bilinear(): input dimensions do not match: got {input1.ndim} and "
                         f"{input2.ndim}")
    if input1.ndim == 0 or weight.ndim != 3:
        raise ShapeError(f"bilinear(): expected 1-D or more inputs and a 3-D weight, got "
                         f"{input1.ndim}-D inputs and a {weight.ndim}-D weight")
    for i in range(input1.ndim - 1):
        if input1.shape[i] != input2.shape[i]:
            raise ShapeError(f"bilinear(): input batch dimensions do not match at dim {i}: "
                             f"got {input1.shape[i]} and {input2.shape[i]}")
    for k, x in ((1, input1), (2, input2)):
        if x.shape[-1] != weight.shape[k]:
            raise ShapeError(f"bilinear(): input{k} size does not match weight size: got "
                             f"{x.shape[-1]} but expected {weight.shape[k]}")
    if bias is not None and (bias.ndim == 0 or bias.shape[0] != weight.shape[0]):
        got = bias.shape[0] if bias.ndim else "a 0-d bias"
        raise ShapeError(f"bilinear(): bias size does not match weight size: got {got} but "
                         f"expected {weight.shape[0]}")
    lead = tuple(input1.shape[:-1])
    n = int(np.prod(lead, dtype=np.int64))
    a = _ops.reshape(input1, (n, input1.shape[-1]))
    b = _ops.reshape(input2, (n, input2.shape[-1]))
    out = apply(_P.trilinear, (a, weight, b), {"spec": "ni,kij,nj->nk"})
    out = _ops.reshape(out, lead + (weight.shape[0],))
    return out if bias is None else out + bias


def _conv_padding(padding, kernel: tuple, dilation: tuple, stride: tuple) -> tuple:
    """torch's padding argument as (top, bottom, left, right)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            total = [d * (k - 1) for d, k in zip(dilation, kernel)]
            return (total[0] // 2, total[0] - total[0] // 2,
                    total[1] // 2, total[1] - total[1] // 2)
        raise ValueError(f"Invalid padding string '{padding}', should be one of "
                         "{'valid', 'same'}")
    ph, pw = _pair(padding, "padding")
    return (ph, ph, pw, pw)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-D cross-correlation of (N, C, H, W) (or unbatched (C, H, W)) input with
    (O, C, kh, kw) weights; one ConvolutionBackward0 node, as torch."""
    if groups != 1:
        raise NotImplementedError("gradtool's conv2d supports groups=1 only")
    if input.ndim == 3:
        out = conv2d(_ops.unsqueeze(input, 0), weight, bias, stride, padding, dilation)
        return _ops.squeeze(out, 0)
    if input.ndim != 4:
        raise EngineError(f"Expected 3D (unbatched) or 4D (batched) input to conv2d, but got "
                           f"input of size: {list(input.shape)}")
    if weight.ndim != 4 or input.shape[1] != weight.shape[1]:
        raise EngineError(
            f"Given groups=1, weight of size {list(weight.shape)}, expected input"
            f"{list(input.shape)} to have {weight.shape[1] if weight.ndim > 1 else '?'} "
            f"channels, but got {input.shape[1]} channels instead")
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    pads = _conv_padding(padding, tuple(weight.shape[-2:]), dilation, stride)
    oh, ow = _P._conv_out_hw(input.shape[2], input.shape[3], tuple(weight.shape[-2:]), stride,
                             pads, dilation)
    if oh <= 0 or ow <= 0:
        raise EngineError(
            f"Calculated output size: ({weight.shape[0]}x{oh}x{ow}). Output size is too small")
    return apply(_P.convolution, (input, weight, bias),
                 {"stride": stride, "padding": pads, "dilation": dilation})


def _pool_params(kernel_size, stride, padding, dilation) -> tuple:
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None or (isinstance(stride, (list, tuple)) and not stride) \
        else _pair(stride, "stride")
    p, d = _pair(padding, "padding"), _pair(dilation, "dilation")
    for pi, ki, di in zip(p, k, d):
        if pi > (di * (ki - 1) + 1) // 2:
            raise EngineError("pad should be at most half of effective kernel size, but got "
                               f"pad={pi}, kernel_size={ki} and dilation={di}")
    return k, s, p, d


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """Max over each window (MaxPool2DWithIndicesBackward0); ``return_indices`` also gives
    the flat H*W index of each maximum (as torch's)."""
    # a (C, H, W) input pools as it is (one node, as torch; the rules read the last two axes)
    k, s, p, d = _pool_params(kernel_size, stride, padding, dilation)
    params = {"kernel_size": k, "stride": s, "padding": p, "dilation": d,
              "ceil_mode": bool(ceil_mode)}
    out = apply(_P.max_pool2d, (input,), params)
    if not return_indices:
        return out
    flat, (hp, wp), (top, left) = _P.pool_indices(input._data, **params)
    rows, cols = flat // wp - top, flat % wp - left
    return out, _make((rows * input.shape[-1] + cols).astype(np.int64))


def _adaptive_size(output_size, hw) -> tuple:
    if isinstance(output_size, (list, tuple)):
        sizes = tuple(output_size) if len(output_size) == 2 else (output_size[0],) * 2
    else:
        sizes = (output_size, output_size)
    return tuple(int(h if o is None else o) for o, h in zip(sizes, hw))


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average over torch's adaptive bins (AdaptiveAvgPool2DBackward0)."""
    size = _adaptive_size(output_size, input.shape[-2:])
    if size == (1, 1):   # global average: torch records a mean (MeanBackward1)
        return _ops.mean(input, dim=(-2, -1), keepdim=True)
    return apply(_P.adaptive_avg_pool2d, (input,), {"output_size": size})


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None) -> Tensor:
    """Mean over each window (AvgPool2DBackward0; count_include_pad=True, no ceil_mode)."""
    if ceil_mode or not count_include_pad or divisor_override is not None:
        raise NotImplementedError("avg_pool2d: only the defaults (ceil_mode=False, "
                                  "count_include_pad=True) are supported")
    k, s, p, _ = _pool_params(kernel_size, stride, padding, 1)
    return apply(_P.avg_pool2d, (input,), {"kernel_size": k, "stride": s, "padding": p})


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (mask drawn
    from the default generator); the identity when not training."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    keep = _rng(None).random(input.shape) >= p
    dt = input._data.dtype
    mask = keep.astype(dt) * (dt.type(1.0) / dt.type(1.0 - p)) if p < 1.0 else \
        np.zeros(input.shape, dt)
    if inplace:
        return _inplace(input, lambda x: apply(_P.native_dropout, (x,), {"mask": mask}))
    return apply(_P.native_dropout, (input,), {"mask": mask})


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm=None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
              sparse: bool = False) -> Tensor:
    """Rows of ``weight`` picked by the integer ``input`` (EmbeddingBackward0); the row at
    ``padding_idx`` gets no gradient."""
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: max_norm, scale_grad_by_freq and sparse are "
                                  "not supported")
    idx = np.asarray(input._data if isinstance(input, Tensor) else input)
    if idx.dtype.kind not in "iu":
        raise EngineError("Expected tensor for argument #1 'indices' to have one of the "
                           "following scalar types: Long, Int; but got "
                           f"{idx.dtype} instead (while checking arguments for embedding)")
    n = weight.shape[0]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError("index out of range in self")
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueError("Padding_idx must be within num_embeddings")
        padding_idx = padding_idx % n
    return apply(_P.embedding, (weight,), {"indices": idx, "padding_idx": padding_idx})


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Integer classes to 0/1 vectors (int64), as torch."""
    idx = np.asarray(tensor._data)
    if num_classes < 0:
        num_classes = int(idx.max()) + 1 if idx.size else 0
    return _make((idx[..., None] == np.arange(num_classes)).astype(np.int64))


pad = _ops.pad


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize over every dim but the channels (dim 1): with the batch's statistics while
    training (updating the running ones in place: biased variance to normalize, unbiased
    in the running average, as torch), with the running statistics otherwise.  One node,
    NativeBatchNormBackward0, with edges to input, weight and bias."""
    if input.ndim < 2:      # torch reads the channel count, input.size(1)
        raise IndexError("Dimension out of range (expected to be in range of [-1, 0], but "
                         "got 1)")
    if training:
        n = input.shape[0] * int(np.prod(input.shape[2:]))    # values per channel
        if n == 1:
            raise ValueError("Expected more than 1 value per channel when training, got "
                             f"input size {list(input.shape)}")
    elif running_mean is None or running_var is None:
        raise EngineError("running_mean and running_var must be defined in evaluation mode")
    if input.numel() == 0:
        # torch: an empty input is cloned (CloneBackward0), times weight[0] plus bias[0]
        out = _ops.clone(input)
        if weight is not None:
            out = out * weight[0]
        if bias is not None:
            out = out + bias[0]
        return out
    stats = {"running_mean": None, "running_var": None}
    if not training:
        # copies: a later training step updates the running statistics in place
        stats = {"running_mean": running_mean._data.copy(),
                 "running_var": running_var._data.copy()}
    out = apply(_P.native_batch_norm, (input, weight, bias),
                {**stats, "training": bool(training), "eps": float(eps)})
    if training and running_mean is not None:
        data = input._data
        dims = (0,) + tuple(range(2, data.ndim))
        m = momentum
        running_mean._data[...] = (1 - m) * running_mean._data + m * data.mean(axis=dims)
        unbiased = data.var(axis=dims) * (n / (n - 1))
        running_var._data[...] = (1 - m) * running_var._data + m * unbiased
    return out


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over the last ``len(normalized_shape)`` dims (biased variance); one node,
    NativeLayerNormBackward0, with edges to input, weight and bias."""
    shape = (int(normalized_shape),) if isinstance(normalized_shape, int) else \
        tuple(int(n) for n in normalized_shape)
    k = len(shape)
    if k == 0 or tuple(input.shape[input.ndim - k:]) != shape or input.ndim < k:
        raise EngineError(f"Given normalized_shape={list(shape)}, expected input with shape "
                          f"[*, {', '.join(map(str, shape))}], but got input of size"
                          f"{list(input.shape)}")
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and tuple(value.shape) != shape:
            raise EngineError(f"Expected {name} to be of same shape as normalized_shape, but "
                              f"got {name} of shape {list(value.shape)} and normalized_shape "
                              f"= {list(shape)}")
    float_kernel("LayerNormKernelImpl", input)
    return apply(_P.native_layer_norm, (input, weight, bias),
                 {"normalized_shape": shape, "eps": float(eps)})


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """x / max(||x||_p, eps) along ``dim``, recorded as torch: the norm
    (LinalgVectorNormBackward0), clamp_min, expand, div."""
    denom = _ops.clamp_min(_ops.norm(input, p, dim, keepdim=True), eps)
    return input / _ops.expand_as(denom, input)
