"""``gt.autograd``: the names of ``torch.autograd``."""

from ..engine.function import Function, FunctionCtx, once_differentiable
from ..engine.grad_mode import (detect_anomaly, enable_grad, is_anomaly_enabled, no_grad,
                                set_detect_anomaly, set_grad_enabled)
from ..engine.graph import backward, grad
from . import forward_ad, function, functional
from ..checker import gradcheck, gradgradcheck

__all__ = ["Function", "FunctionCtx", "once_differentiable", "backward", "grad", "functional",
           "function", "gradcheck", "gradgradcheck",
           "forward_ad", "no_grad", "enable_grad", "set_grad_enabled", "set_detect_anomaly",
           "detect_anomaly", "is_anomaly_enabled"]
