"""What a spec expression may call, written out: one table of functions and one of tensor
methods and attributes.  Nothing else is reachable from a spec (no ``getattr`` with a user's
name), so a reader audits the spec language's reach here.

The names are torch's (and a few numpy spellings: ``absolute``, ``concatenate``,
``expand_dims``, ...), with torch's semantics; ``docs/spec.md`` lists the same names, and
``tests/spec/test_allowed.py`` keeps the two equal.  Adding a name is a decision: the
function must be safe on any input a spec can build (the evaluator's limits apply to its
results) and must not reach the engine's internals.
"""

from __future__ import annotations

from collections.abc import Callable

from ..engine import ops

#: functions an expression may call (besides the spec's own Functions and modules)
FUNCTIONS: dict[str, Callable] = {
    # pointwise: arithmetic, functions of one element, comparisons, selection
    "abs": ops.abs, "absolute": ops.absolute, "acos": ops.acos, "add": ops.add,
    "arccos": ops.arccos, "arcsin": ops.arcsin, "arctan": ops.arctan, "arctan2": ops.arctan2,
    "asin": ops.asin, "atan": ops.atan, "atan2": ops.atan2, "clamp": ops.clamp,
    "clamp_max": ops.clamp_max, "clamp_min": ops.clamp_min, "clip": ops.clip, "cos": ops.cos,
    "cosh": ops.cosh, "div": ops.div, "divide": ops.divide, "eq": ops.eq, "exp": ops.exp,
    "expm1": ops.expm1, "ge": ops.ge, "greater": ops.greater, "greater_equal": ops.greater_equal,
    "gt": ops.gt, "le": ops.le, "less": ops.less, "less_equal": ops.less_equal, "log": ops.log,
    "log10": ops.log10, "log1p": ops.log1p, "log2": ops.log2, "logical_and": ops.logical_and,
    "logical_not": ops.logical_not, "logical_or": ops.logical_or, "lt": ops.lt,
    "masked_fill": ops.masked_fill, "maximum": ops.maximum, "minimum": ops.minimum, "mul": ops.mul,
    "multiply": ops.multiply, "ne": ops.ne, "neg": ops.neg, "negative": ops.negative,
    "pow": ops.pow, "reciprocal": ops.reciprocal, "relu": ops.relu, "remainder": ops.remainder,
    "rsqrt": ops.rsqrt, "rsub": ops.rsub, "sigmoid": ops.sigmoid, "sign": ops.sign, "sin": ops.sin,
    "sinh": ops.sinh, "softplus": ops.softplus, "sqrt": ops.sqrt, "square": ops.square,
    "sub": ops.sub, "subtract": ops.subtract, "tan": ops.tan, "tanh": ops.tanh,
    "true_divide": ops.true_divide, "where": ops.where,
    # reductions, softmax, cumulative sums, sorting
    "amax": ops.amax, "amin": ops.amin, "argmax": ops.argmax, "argmin": ops.argmin,
    "argsort": ops.argsort, "cumsum": ops.cumsum, "log_softmax": ops.log_softmax,
    "logsumexp": ops.logsumexp, "max": ops.max, "mean": ops.mean, "min": ops.min, "norm": ops.norm,
    "prod": ops.prod, "softmax": ops.softmax, "sort": ops.sort, "std": ops.std, "sum": ops.sum,
    "topk": ops.topk, "var": ops.var, "vector_norm": ops.vector_norm,
    # losses (as torch.nn.functional's)
    "binary_cross_entropy_with_logits": ops.binary_cross_entropy_with_logits,
    "cross_entropy": ops.cross_entropy, "l1_loss": ops.l1_loss, "mse_loss": ops.mse_loss,
    "nll_loss": ops.nll_loss,
    # shapes, views, joining and indexing
    "broadcast_to": ops.broadcast_to, "cat": ops.cat, "chunk": ops.chunk, "clone": ops.clone,
    "concat": ops.concat, "concatenate": ops.concatenate, "diagonal": ops.diagonal,
    "expand": ops.expand, "expand_as": ops.expand_as, "expand_dims": ops.expand_dims,
    "flatten": ops.flatten, "flip": ops.flip, "gather": ops.gather,
    "index_select": ops.index_select, "pad": ops.pad, "permute": ops.permute, "ravel": ops.ravel,
    "repeat": ops.repeat, "reshape": ops.reshape, "scatter_add": ops.scatter_add,
    "split": ops.split, "squeeze": ops.squeeze, "stack": ops.stack, "swapaxes": ops.swapaxes,
    "swapdims": ops.swapdims, "t": ops.t, "to": ops.to, "trace": ops.trace,
    "transpose": ops.transpose, "unbind": ops.unbind, "unsqueeze": ops.unsqueeze, "view": ops.view,
    # products and linear algebra
    "bmm": ops.bmm, "det": ops.det, "dot": ops.dot, "einsum": ops.einsum, "ger": ops.ger,
    "inverse": ops.inverse, "matmul": ops.matmul, "mm": ops.mm, "mv": ops.mv, "outer": ops.outer,
    # creation
    "arange": ops.arange, "as_tensor": ops.as_tensor, "empty": ops.empty, "eye": ops.eye,
    "from_numpy": ops.from_numpy, "full": ops.full, "full_like": ops.full_like,
    "linspace": ops.linspace, "ones": ops.ones, "ones_like": ops.ones_like, "zeros": ops.zeros,
    "tensor": ops.tensor, "zeros_like": ops.zeros_like,
}

#: tensor attributes an expression may read (``x.T``, ``x.shape[0]``)
ATTRIBUTES = frozenset({"T", "mT", "shape", "dtype", "ndim", "requires_grad"})

#: tensor methods an expression may call (``x.sum(0)``); in-place methods are not among them
METHODS = frozenset({
    "abs", "absolute", "acos", "add", "amax", "amin", "arccos", "arcsin", "arctan", "arctan2",
    "argmax", "argmin", "argsort", "asin", "atan", "atan2", "bmm", "bool", "broadcast_to", "chunk",
    "clamp", "clamp_max", "clamp_min", "clip", "clone", "contiguous", "cos", "cosh", "cumsum",
    "det", "detach", "diagonal", "dim", "div", "divide", "dot", "double", "eq", "exp", "expand",
    "expand_as", "expm1", "flatten", "flip", "float", "gather", "ge", "gt", "index_select", "int",
    "inverse", "item", "le", "log", "log10", "log1p", "log2", "log_softmax", "logical_and",
    "logical_not", "logical_or", "logsumexp", "long", "lt", "masked_fill", "matmul", "max",
    "maximum", "mean", "min", "minimum", "mm", "mul", "multiply", "mv", "ne", "neg", "negative",
    "norm", "numel", "outer", "permute", "pow", "prod", "ravel", "reciprocal", "relu", "remainder",
    "repeat", "reshape", "rsqrt", "rsub", "scatter_add", "sigmoid", "sign", "sin", "sinh", "size",
    "softmax", "softplus", "sort", "split", "sqrt", "square", "squeeze", "std", "sub", "subtract",
    "sum", "swapaxes", "swapdims", "t", "tan", "tanh", "to", "topk", "trace", "transpose",
    "true_divide", "type_as", "unbind", "unsqueeze", "var", "view",
})

#: both: every name after a dot in an expression
TENSOR_METHODS = ATTRIBUTES | METHODS
