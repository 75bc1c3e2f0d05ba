"""gradtool: gradient checking and computational-graph inspection.

``import gradtool as gt`` gives a PyTorch-like autograd engine built on numpy (``gt.tensor``,
``gt.no_grad``, ``gt.autograd.Function``, ``gt.nn``, ``gt.optim``, ...), and the checker
(``gt.gradcheck``, ``gt.gradgradcheck``, ``gt.check``)."""

from ._version import __version__  # noqa: F401

from . import engine as _engine  # noqa: F401  (binds Tensor methods)
from .engine.dtypes import (bool, cdouble, complex64, complex128, double, dtype, float, float16,
                            float32, float64, half, int8, int16, int32, int64, long, short,
                            uint8)
from .engine.grad_mode import (enable_grad, inference_mode, is_grad_enabled, no_grad,
                               set_grad_enabled)
from .engine.ops import *  # noqa: F401,F403
from .engine.random import (Generator, manual_seed, rand, rand_like, randint, randn,
                            randn_like, randperm)
from .engine.tensor import Size, Tensor
from .engine.vmap import vmap
from . import autograd, data, nn, optim, utils  # noqa: E402
from .autograd import functional  # noqa: E402
from .checker import BlockResult, CheckResult, check, gradcheck, gradgradcheck  # noqa: E402


def is_tensor(obj):
    """True for gradtool tensors (as ``torch.is_tensor``)."""
    return isinstance(obj, Tensor)


def __getattr__(name):
    """``gt.spec`` (the spec loader: ``gt.spec.load(path)``) is imported on first use: a
    plain ``import gradtool`` does not pay for YAML and the evaluator."""
    if name == "spec":
        import importlib
        return importlib.import_module(".spec", __name__)
    raise AttributeError(f"module 'gradtool' has no attribute {name!r}")
