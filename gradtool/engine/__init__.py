"""gradtool's autograd engine (numpy only), with PyTorch's semantics and names."""

from . import methods  # noqa: F401  (binds operators and methods onto Tensor)
from .tensor import Tensor  # noqa: F401  (gradtool.engine.Tensor)
