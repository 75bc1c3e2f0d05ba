"""The op table, one module per family.  Importing this package registers every primitive
in :data:`gradtool.engine.primitive.REGISTRY`."""

from . import elementwise, linalg, loss, nn, reduce, shape  # noqa: F401  (registration side effects)

from ..backend import quiet  # noqa: E402
from ..primitive import REGISTRY  # noqa: E402

# Where numpy warns (log(0), sqrt(-1), 1/0, exp overflow) torch returns inf/NaN silently.
# The arithmetic of the hot path (add, sub, mul, neg) stays unwrapped: it warns only on
# overflow or inf - inf, and the wrapper costs about 0.4 us per call.
QUIET = ("div", "pow", "pow_scalar", "rpow", "remainder", "remainder_scalar", "exp", "log",
         "log2", "log10", "log1p", "expm1", "sqrt", "rsqrt", "reciprocal", "sin", "cos", "tan",
         "sinh", "cosh", "arcsin", "arccos", "arctan2", "softplus", "mean", "mean_dim", "var",
         "std", "vector_norm", "prod", "prod_dim", "logsumexp", "softmax", "log_softmax",
         "nll_loss", "mse_loss", "binary_cross_entropy_with_logits", "erf")
for _name in QUIET:
    REGISTRY[_name].forward = quiet(REGISTRY[_name].forward)
