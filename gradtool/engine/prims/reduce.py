"""Reductions.  Dims are normalized (non-negative, sorted tuples) before ``apply``."""

from __future__ import annotations

import numpy as np

from .. import backend as B
from ..primitive import Primitive


def _expand_back(g, shape, dims, keepdim):
    """Broadcast a reduced gradient back over the reduced dims of an input of ``shape``."""
    nd = len(shape)
    if not keepdim:
        g = B.expand_dims(g, tuple(d - nd for d in dims))
    return B.broadcast_to(g, tuple(g.shape[:len(g.shape) - nd]) + tuple(shape))


def _count(shape, dims):
    n = 1
    for d in dims:
        n *= shape[d]
    return n


# sum(x): every element gets the incoming gradient.
sum_all = Primitive("sum", "SumBackward0", lambda x: np.sum(x), save="shapes",
                    input_names=("self",))
sum_all.defvjp(lambda g, x, out: _expand_back(g, x.shape, tuple(range(x.ndim)), False))
sum_all.defjvp(lambda t, x, out: np.sum(t))

sum_dim = Primitive("sum_dim", "SumBackward1",
                    lambda x, dim, keepdim: np.sum(x, axis=dim, keepdims=keepdim),
                    save="shapes", input_names=("self",))
sum_dim.defvjp(lambda g, x, out, dim, keepdim: _expand_back(g, x.shape, dim, keepdim))
sum_dim.defjvp(lambda t, x, out, dim, keepdim: np.sum(t, axis=dim, keepdims=keepdim))

# mean(x) = sum(x) / n
mean_all = Primitive("mean", "MeanBackward0", lambda x: np.mean(x), save="shapes",
                     input_names=("self",))
mean_all.defvjp(lambda g, x, out:
                _expand_back(g, x.shape, tuple(range(x.ndim)), False) / max(x.size, 1))
mean_all.defjvp(lambda t, x, out: np.mean(t))

mean_dim = Primitive("mean_dim", "MeanBackward1",
                     lambda x, dim, keepdim: np.mean(x, axis=dim, keepdims=keepdim),
                     save="shapes", input_names=("self",))
mean_dim.defvjp(lambda g, x, out, dim, keepdim:
                _expand_back(g, x.shape, dim, keepdim) / _count(x.shape, dim))
mean_dim.defjvp(lambda t, x, out, dim, keepdim: np.mean(t, axis=dim, keepdims=keepdim))
