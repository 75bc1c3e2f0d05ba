"""``gt.nn``: modules, layers, losses, initialisers and functional ops, as ``torch.nn``."""

from . import functional, init
from .layers import *  # noqa: F401,F403
from .layers import __all__ as _layers_all
from .loss import *  # noqa: F401,F403
from .loss import __all__ as _loss_all
from .module import Module, RemovableHandle
from .parameter import Buffer, Parameter
from . import utils

__all__ = ["Module", "Parameter", "Buffer", "RemovableHandle", "functional", "init", "utils"] \
    + list(_layers_all) + list(_loss_all)
