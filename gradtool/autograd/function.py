"""``gt.autograd.function``: where torch code imports ``once_differentiable`` from."""

from ..engine.function import Function, FunctionCtx, once_differentiable

__all__ = ["Function", "FunctionCtx", "once_differentiable"]
