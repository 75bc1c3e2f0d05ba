"""``gt.utils.data``: the names of ``torch.utils.data`` (defined in :mod:`gradtool.data`)."""

from ..data import (DataLoader, Dataset, Subset, TensorDataset, default_collate,
                    random_split)

__all__ = ["DataLoader", "Dataset", "Subset", "TensorDataset", "default_collate",
           "random_split"]
