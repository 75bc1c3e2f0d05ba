"""Public operations: functions (``gt.exp``), operators and Tensor methods, one module per
concern as torch's: creation, pointwise, reductions (and sorting), shape (and views),
indexing (and joining), linear_algebra, nn_functional (losses), inplace.

Each function normalizes its arguments (dims, shapes, scalars) and calls a primitive from
the op table; composite operations are written in terms of primitives and get their
derivatives for free.  What the spec language may call is written out in
``gradtool/spec/allowed.py``.

Composites are decomposed the way torch decomposes them, so a graph has the same backward
nodes as torch's (``tests/engine/test_torch_crosscheck.py`` compares them): indexing is one
node per basic step then one IndexBackward0, matmul folds or batches as torch's
``_matmul_impl`` does, einsum follows torch's contraction (diagonal, permute, bmm), and
reshape is a view, an alias or a copy depending on the memory layout, which the primitives
keep as torch's kernels do (where numpy's differs and it matters: reductions, softmax,
cat/stack, flip).
"""

from __future__ import annotations

from .creation import *  # noqa: F403
from .creation import __all__ as _creation
from .indexing import *  # noqa: F403
from .indexing import __all__ as _indexing
from .indexing import getitem, index_const  # noqa: F401  (Tensor.__getitem__, graph probes)
from .inplace import (add_, clamp_, copy_, div_, fill_, mul_, normal_, pow_,  # noqa: F401
                      setitem, sub_, uniform_, zero_)
from .inplace import (abs_, ceil_, clamp_max_, clamp_min_, cos_, exp_,  # noqa: F401
                      floor_, log_, neg_, reciprocal_, relu_, round_, sigmoid_, sign_, sin_,
                      sqrt_, square_, tanh_, trunc_)
from .linear_algebra import *  # noqa: F403
from .linear_algebra import __all__ as _linear_algebra
from .linear_algebra import linalg  # noqa: F401  (gt.linalg)
from .nn_functional import *  # noqa: F403
from .nn_functional import __all__ as _nn_functional
from .pointwise import *  # noqa: F403
from .pointwise import __all__ as _pointwise
from .reductions import *  # noqa: F403
from .reductions import __all__ as _reductions
from .shape import *  # noqa: F403
from .shape import __all__ as _shape

#: the public functions (``gt.<name>``): each module's ``__all__``, and ``gt.linalg``
__all__ = sorted([*_creation, *_indexing, *_linear_algebra, *_nn_functional, *_pointwise,
                  *_reductions, *_shape, "linalg"])

#: the functions that are also Tensor methods (``methods.py`` binds them)
METHOD_NAMES = (
    "add", "sub", "mul", "div", "true_divide", "multiply", "subtract", "divide", "neg",
    "negative", "pow", "square", "exp", "log", "log1p", "expm1", "log2", "log10", "sqrt",
    "rsqrt", "sin", "cos", "tan", "tanh", "sinh", "cosh", "asin", "acos", "atan", "arcsin",
    "arccos", "arctan", "atan2", "arctan2", "sigmoid", "relu", "abs", "absolute", "sign",
    "reciprocal", "softplus", "clamp", "clip", "clamp_min", "clamp_max", "maximum", "minimum",
    "eq", "ne", "lt", "le", "gt", "ge", "logical_not", "logical_and", "logical_or",
    "masked_fill", "rsub", "remainder",
    "sum", "mean", "max", "min", "amax", "amin", "argmax", "argmin", "prod", "var", "std",
    "norm", "logsumexp", "softmax", "log_softmax", "cumsum",
    "reshape", "view", "flatten", "ravel", "transpose", "swapaxes", "swapdims",
    "t", "permute", "as_strided", "broadcast_to", "expand_as", "squeeze", "unsqueeze", "clone",
    "to", "split", "chunk", "unbind", "gather", "scatter_add", "index_select", "select", "flip",
    "repeat",
    "diagonal", "trace",
    "mm", "bmm", "dot", "mv", "matmul", "outer", "inverse", "det",
    "add_", "sub_", "mul_", "div_", "pow_", "clamp_", "zero_", "fill_", "copy_", "uniform_",
    "normal_",
    "abs_", "ceil_", "clamp_max_", "clamp_min_", "cos_", "exp_", "floor_", "log_", "neg_",
    "reciprocal_", "relu_", "round_", "sigmoid_", "sign_", "sin_", "sqrt_", "square_", "tanh_",
    "trunc_",
)
