"""The one dim of a 0-d tensor.

torch lets every op that takes a dim treat a 0-d tensor as having one dim of size 1
(``sum(x, 0)``, ``softmax(x, -1)``, ``x.transpose(0, -1)``, ``max(x, 0)``, ``cumsum(x, 0)``
on a 0-d ``x`` are all valid and give a 0-d result).  The ops normalize such a dim to 0,
which equals the array's ndim: an axis numpy does not have.  A rule written for
dimensioned arrays then runs on its arrays with a trailing size-1 axis appended, and its
result has that axis dropped.  Under ``vmap`` the batch axis leads, so a per-example 0-d
array is ``(B,)`` and its (shifted) dim is 1: again the missing trailing axis, handled the
same way.

``on_missing_axis(forward, vjp, jvp)`` wraps a primitive's three rules; the check costs one
comparison when the dim names a real axis.
"""

from __future__ import annotations

import numpy as np

from .. import backend as B
from ..primitive import ShapeOnly


def names_missing_axis(x, params: dict, dim_names: tuple) -> bool:
    """Whether a dim parameter names the axis one past ``x``'s last (a 0-d input's dim)."""
    if x is None:
        return False
    nd = len(x.shape)
    for name in dim_names:
        value = params.get(name)
        if value == nd or (type(value) is tuple and nd in value):
            return True
    return False


def _lift(a):
    """``a`` with a trailing size-1 axis (a view for arrays; a recorded view for Tensors)."""
    if a is None:
        return None
    if isinstance(a, ShapeOnly):
        return ShapeOnly(np.broadcast_to(np.zeros((), a.dtype), tuple(a.shape) + (1,)))
    if isinstance(a, np.ndarray):
        return a.reshape(a.shape + (1,))
    if isinstance(a, (int, float, complex, np.generic)):
        return np.asarray(a).reshape(1)
    return B.reshape(a, tuple(a.shape) + (1,))


def _drop(a):
    """``a`` without its trailing (size-1) axis."""
    if isinstance(a, np.ndarray):
        return a.reshape(a.shape[:-1])
    if isinstance(a, np.generic):
        return np.asarray(a).reshape(())
    return B.reshape(a, tuple(a.shape[:-1]))


def _lifted_params(params: dict) -> dict:
    # in the lifted world a reduction keeps its dim, so its output has the trailing axis too
    return {**params, "keepdim": True} if "keepdim" in params else params


def on_missing_axis(forward, vjp, jvp, *, lift=(0,), dim_names=("dim",)):
    """The primitive's rules, running on lifted arrays when a dim names the missing axis.

    ``lift``: the positions of the inputs to lift (the tensor the dim refers to and the
    inputs shaped like it, e.g. gather's index; not index_select's 1-d index).  The forward
    gets ``(*inputs, **params)``; the VJP/JVP rules ``(g_or_t, *inputs, out=, **params)``,
    whose incoming gradient / tangent and ``out`` are lifted too.  ``vjp``/``jvp`` may be
    tuples with one rule (or None) per input."""
    probe = lift[0]

    def lifted_forward(*inputs, **params):
        if not names_missing_axis(inputs[probe], params, dim_names):
            return forward(*inputs, **params)
        args = [_lift(a) if i in lift else a for i, a in enumerate(inputs)]
        return _drop(np.asarray(forward(*args, **_lifted_params(params))))

    def lifted_rule(rule):
        if rule is None:
            return None

        def run(seed, *inputs, out=None, **params):
            x = inputs[probe]
            if not names_missing_axis(x if x is not None else out, params, dim_names):
                return rule(seed, *inputs, out=out, **params)
            args = [_lift(a) if i in lift else a for i, a in enumerate(inputs)]
            result = rule(_lift(seed), *args, out=_lift(out), **_lifted_params(params))
            return _drop(result)
        run.__name__ = getattr(rule, "__name__", "rule")
        return run

    def lifted_rules(rules):
        if isinstance(rules, tuple):
            return tuple(lifted_rule(r) for r in rules)
        return lifted_rule(rules)

    return {"forward": lifted_forward, "vjp": lifted_rules(vjp), "jvp": lifted_rules(jvp)}
