"""``gt.utils``: ``gt.utils.data`` as ``torch.utils.data``."""

from . import data

__all__ = ["data"]
