"""``gt.optim``: optimizers with PyTorch's exact update rules, and learning-rate schedulers
(``gt.optim.lr_scheduler``)."""

from . import lr_scheduler
from .optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler"]
