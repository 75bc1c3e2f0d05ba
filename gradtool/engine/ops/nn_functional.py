"""Losses, as ``torch.nn.functional``'s (``gt.nn.functional`` exposes them)."""

from __future__ import annotations

import builtins

import numpy as np

from ...errors import EngineError, ShapeError
from .. import dtypes
from ..grad_mode import MODE
from ..primitive import _run_forward as run_forward
from ..primitive import apply
from ..prims import elementwise
from ..prims import loss as loss_prims
from ..prims import reduce as reduce_prims
from ..tensor import Tensor, _make
from .common import _t
from .indexing import gather
from .pointwise import abs, masked_fill, neg, sub
from .reductions import _softmax_input, mean, sum
from .shape import reshape

_float = builtins.float

__all__ = [
    "binary_cross_entropy_with_logits", "cross_entropy", "l1_loss", "mse_loss", "nll_loss",
]


# ---- losses (gt.nn.functional exposes these) ----------------------------------------------
def _reduction(reduction: str) -> str:
    if reduction not in loss_prims.REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _not_differentiable(function: str, **arguments) -> None:
    """torch's error for a tensor that requires grad passed where the op's node has no
    edge (nll_loss's weight, ...): its gradient would be silently missing."""
    if not MODE.grad_enabled:
        return
    for name, value in arguments.items():
        if isinstance(value, Tensor) and value.requires_grad:
            raise EngineError(f"The function '{function}' is not differentiable with respect "
                              f"to argument '{name}'. This input cannot have requires_grad "
                              "True.")


def _target_array(target) -> np.ndarray:
    data = target._data if isinstance(target, Tensor) else np.asarray(target)
    if data.dtype.type is np.int64:     # the usual case, in one test
        return data
    if data.dtype not in (np.int64, np.uint8):
        raise EngineError("expected target dtype to be Long or Byte, but got "
                          f"{dtypes.scalar_type_name(data)}")
    return data.astype(np.int64, copy=False)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean") -> Tensor:
    """Negative log likelihood of class-index targets (NllLossBackward0)."""
    input = _t(input)
    target, params = _nll_arguments(input._data.shape, target, weight, ignore_index, reduction)
    return _nll_nd(input, target, params)


def _nll_nd(input: Tensor, target: np.ndarray, params: dict) -> Tensor:
    """torch's nll_loss_nd: NllLossBackward0 up to 2 dims, NllLoss2DBackward0 for 4; a 3-D or
    5-D and up input is made contiguous and viewed as (N, C, 1, -1) (its target (N, 1, -1))
    for nll_loss2d, and a 'none' result viewed back to the target's shape."""
    ndim = input._data.ndim
    if ndim <= 2:
        return apply(loss_prims.nll_loss, (input, target), params)
    if ndim == 4:
        return apply(loss_prims.nll_loss2d, (input, target), params)
    n, c = input._data.shape[:2]
    flat = input.contiguous().view(n, c, *((0, 0) if input._data.size == 0 else (1, -1)))
    target_4d = target.reshape((n, 0, 0) if target.size == 0 else (n, 1, -1))
    out = apply(loss_prims.nll_loss2d, (flat, target_4d), params)
    return out.view(*target.shape) if params["reduction"] == "none" else out


def _nll_arguments(shape: tuple, target, weight, ignore_index, reduction) -> tuple:
    """nll_loss's target (an int64 array, checked against an input of ``shape``) and the
    primitive's parameters, with torch's errors."""
    target = _target_array(target)
    ndim = len(shape)
    expected = shape[:1] + shape[2:] if ndim >= 2 else ()
    if ndim == 0 or target.shape != expected:
        if ndim >= 2 and target.ndim >= 1 and target.shape[0] != shape[0]:
            raise ShapeError(f"Expected input batch_size ({shape[0]}) to match target "
                             f"batch_size ({target.shape[0]}).")
        raise ShapeError(f"nll_loss: target shape {list(target.shape)} does not match input "
                         f"shape {list(shape)}")
    classes = shape[1 if ndim >= 2 else 0]
    # one pass in the usual case: read as unsigned, a negative target is >= classes too
    if np.maximum.reduce(target.view(np.uint64), axis=None, initial=0) >= classes:
        bad = (target != ignore_index) & ((target < 0) | (target >= classes))
        if bad.any():
            raise IndexError(f"Target {int(target[bad].flat[0])} is out of bounds.")
    if weight is None:
        w = None
    else:
        _not_differentiable("nll_loss_forward" if ndim <= 2 else "nll_loss2d_forward",
                            weight=weight)
        w = _t(weight)._data
        if ndim <= 2 and (w.ndim != 1 or w.size != classes):
            raise EngineError(f"weight tensor should be defined either for all {classes} "
                              "classes or no classes but got weight tensor of shape: "
                              f"{list(w.shape)}")
        if ndim > 2:
            if w.size != classes:
                raise EngineError("weight tensor should be defined either for all or no "
                                  "classes")
            w = w.reshape(-1)       # nll_loss2d reads any shape of that many elements
    return target, {"reduction": _reduction(reduction), "weight": w,
                    "ignore_index": ignore_index}


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0) -> Tensor:
    """log_softmax over the class dim, then nll_loss (torch records the same two nodes).
    Targets are class indices or class probabilities (same shape as input)."""
    input = _t(input)
    class_dim = 1 if input._data.ndim >= 2 else 0
    # log_softmax(input, class_dim) without its argument handling (the dim is valid)
    _softmax_input("log_softmax", input, class_dim)
    if not label_smoothing and not (input._rg and MODE.grad_enabled) and \
            input._fw is None and not MODE.interceptors and not MODE.limited and \
            not (isinstance(target, Tensor) and target._data.dtype.kind in "fc"):
        # nothing to record, intercept or count (the checker's numerical side): the same
        # two forwards on arrays, without the intermediate tensor and the two apply()s
        logp = run_forward(reduce_prims.log_softmax, [input._data], {"dim": class_dim})
        target, params = _nll_arguments(logp.shape, target, weight, ignore_index, reduction)
        return _make(run_forward(loss_prims.nll_loss, [logp, target], params))
    logp = apply(reduce_prims.log_softmax, (input,), {"dim": class_dim})
    if isinstance(target, Tensor) and target._data.dtype.kind in "fc":
        if target.shape != input.shape:     # torch: then they are class indices
            _target_array(target)
        if label_smoothing:
            classes = input.shape[1 if input.ndim >= 2 else 0]
            target = target * (1 - label_smoothing) + label_smoothing / classes
        terms = logp * target if weight is None else logp * target * _shape_weight(
            _t(weight), input.ndim)
        # recorded as torch: -(terms).sum(class dim) for 'none', -(terms).sum() for 'sum',
        # and that divided by the number of examples (DivBackward1) for 'mean'
        reduction = _reduction(reduction)
        if reduction == "none":
            return neg(sum(terms, 1 if input.ndim >= 2 else 0))
        total = neg(sum(terms))
        if reduction == "sum":
            return total
        classes = input.shape[1 if input.ndim >= 2 else 0]
        examples = input.numel() / classes if classes else _float("nan")
        return apply(elementwise.div_scalar, (total,), {"other": examples})
    target, params = _nll_arguments(logp._data.shape, target, weight, ignore_index,
                                    reduction)
    nll = _nll_nd(logp, target, params)     # nll_loss(logp, ...)
    if not label_smoothing:
        return nll
    # (1 - eps) nll + eps / classes * sum over classes of -log p (times the class weights
    # when given; 0 at ignored targets), recorded as torch: -logp.sum(class dim) (or
    # -(logp * weight).sum(class dim)), masked_fill(ignored, 0), summed and, for 'mean',
    # divided by the number of targets kept (an integer tensor) or by the sum of their
    # weights (weight.gather(0, kept targets).sum(), as nll_loss normalises), each term
    # times a number (MulBackward1), then added
    targets = _target_array(target)
    ignored = targets == ignore_index
    if weight is None:
        smooth = neg(sum(logp, class_dim))
    else:
        weight = _t(weight)
        smooth = neg(sum(logp * _shape_weight(weight, input.ndim), class_dim))
    smooth = masked_fill(smooth, _make(ignored), 0.0)
    reduction = _reduction(reduction)
    if reduction == "mean" and weight is not None:
        kept = _make(np.ascontiguousarray(targets[~ignored].reshape(-1), dtype=np.int64))
        smooth = sum(smooth) / sum(gather(weight, 0, kept))
    elif reduction == "mean":
        smooth = sum(smooth) / _make(np.asarray(np.sum(~ignored), dtype=np.int64))
    elif reduction == "sum":
        smooth = sum(smooth)
    classes = input.shape[class_dim]
    return (apply(elementwise.mul_scalar, (nll,), {"other": 1 - label_smoothing})
            + apply(elementwise.mul_scalar, (smooth,), {"other": label_smoothing / classes}))


def _shape_weight(weight: Tensor, ndim: int) -> Tensor:
    return reshape(weight, (-1,) + (1,) * (ndim - 2)) if ndim >= 2 else weight


def _apply_reduction(loss: Tensor, reduction: str) -> Tensor:
    reduction = _reduction(reduction)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return sum(loss)
    return mean(loss)


def _loss_operands(input, target):
    input, target = _t(input), _t(target)
    if input.shape != target.shape:
        import warnings
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input "
                      f"size ({input.shape}). This will likely lead to incorrect results due "
                      "to broadcasting. Please ensure they have the same size.",
                      UserWarning, stacklevel=3)
    return input, target


def mse_loss(input, target, reduction="mean") -> Tensor:
    """Mean squared error (fused: MseLossBackward0)."""
    input, target = _loss_operands(input, target)
    return apply(loss_prims.mse_loss, (input, target), {"reduction": _reduction(reduction)})


def l1_loss(input, target, reduction="mean") -> Tensor:
    """Mean absolute error: abs(input - target), reduced (composite, as torch records it)."""
    input, target = _loss_operands(input, target)
    return _apply_reduction(abs(sub(input, target)), reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean",
                                     pos_weight=None) -> Tensor:
    """Sigmoid + binary cross entropy in one stable primitive."""
    input, target = _loss_operands(input, target)
    _not_differentiable("binary_cross_entropy_with_logits", weight=weight,
                        pos_weight=pos_weight)
    w = None if weight is None else _t(weight)._data
    pw = None if pos_weight is None else _t(pos_weight)._data
    return apply(loss_prims.bce_with_logits, (input, target),
                 {"reduction": _reduction(reduction), "weight": w, "pos_weight": pw})
