"""Sample inputs for the op-table walker: each primitive's ``sample=`` builds its
``[(args, params), ...]`` from these (seeded, float64, away from kinks where the op has one).
The walker (``tests/engine/test_op_table.py``) checks every primitive on its samples."""

from __future__ import annotations

import numpy as np


def _rng(seed=0):
    return np.random.default_rng(seed)


def normal(*shape, seed=0):
    return _rng(seed).standard_normal(shape)


def positive(*shape, seed=0):
    return _rng(seed).uniform(0.5, 2.0, shape)


def unit(*shape, seed=0):
    return _rng(seed).uniform(-0.8, 0.8, shape)


def away(*shape, seed=0):
    """Values at least 0.2 away from 0 (kinks of abs, relu, sign)."""
    r = _rng(seed)
    return r.choice([-1.0, 1.0], shape) * r.uniform(0.2, 1.5, shape)


def distinct(*shape, seed=0):
    """Well-separated values (no ties for max/min/sort-like ops)."""
    n = int(np.prod(shape))
    values = (np.arange(n) - n / 2) * 0.37 + 0.05
    return _rng(seed).permutation(values).reshape(shape)


def shifted(*shape, seed=0):
    """distinct(...) moved by 0.1: never equal to distinct(...) of the same shape."""
    return distinct(*shape, seed=seed) + 0.1


def matrix(n=3, seed=0, batch=()):
    """Well-conditioned square matrices."""
    return normal(*batch, n, n, seed=seed) * 0.5 + 2 * np.eye(n)


def mask(*shape, seed=0):
    m = _rng(seed).random(shape) > 0.5
    m.flat[0], m.flat[-1] = True, False
    return m


def one(*args, **params):
    return (args, params)


def unary(fn=normal, shape=(2, 3), **params):
    return lambda: [one(fn(*shape), **params), one(fn(4), **params)]


def binary(fn=normal, gn=normal):
    return lambda: [one(fn(2, 3), gn(2, 3, seed=1)), one(fn(3, 1), gn(4, seed=1)),
                    one(fn(2, 3), 1.5)]


def _index_sample(x, key):
    return one(x, key=key, out_ndim=np.empty(x.shape)[key].ndim)




def index_sample(x, key):
    return one(x, key=key, out_ndim=np.empty(x.shape)[key].ndim)
