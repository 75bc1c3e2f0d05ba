"""Matrix products and linear algebra.  Rules use swapaxes(-1, -2) so that a leading batch
axis on the gradient broadcasts through them."""

from __future__ import annotations

import numpy as np

from .. import backend as B
from .. import batching
from .. import dtypes
from ..samples import matrix, normal, one
from ..primitive import Primitive
from ..tensor import Tensor


def _mT(x):
    return B.swapaxes(x, -1, -2)


def in_dtype_of(g, a):
    """g in the product's dtype: a gradient that reaches a float32 product as float64 under
    create_graph (from a mixed-dtype op upstream) would make the product refuse it; torch
    casts every gradient to its tensor's dtype."""
    if isinstance(g, Tensor) and g._data.dtype != B.data(a).dtype:
        return g.to(dtypes.from_np(B.data(a).dtype))
    return g


# C = A B:  dA = dC Bᵀ,  dB = Aᵀ dC
# (each gradient reads only the other operand, so only that one is saved, as torch does)
mm = Primitive("mm", "MmBackward0", np.matmul, input_names=("self", "mat2"), needs=((1,), (0,)),
               out_shape=lambda a, b: (a[0], b[1]), batch=batching.matmul,
               sample=lambda: [one(normal(2, 3), normal(3, 4, seed=1))],
               vjp=(lambda g, a, b, out: in_dtype_of(g, b) @ _mT(b),
                    lambda g, a, b, out: _mT(a) @ in_dtype_of(g, a)),
               jvp=(lambda t, a, b, out: t @ b, lambda t, a, b, out: a @ t))

# Batched product of 3-D tensors (torch.bmm; matmul folds other batch shapes into it).
def _bmm_forward(a, b):
    """a @ b in b's dtype: torch multiplies operands of two float dtypes when one is empty
    (a sum of nothing), the result in mat2's dtype."""
    out = np.matmul(a, b)
    return out if out.dtype == b.dtype else out.astype(b.dtype)


bmm = Primitive("bmm", "BmmBackward0", _bmm_forward, input_names=("self", "mat2"),
                needs=((1,), (0,)),
                out_shape=lambda a, b: (a[0], a[1], b[2]), batch=batching.matmul,
                sample=lambda: [one(normal(2, 2, 3), normal(2, 3, 4, seed=1))],
                vjp=(lambda g, a, b, out: in_dtype_of(g, b) @ _mT(b),
                     lambda g, a, b, out: _mT(a) @ in_dtype_of(g, a)),
                jvp=(lambda t, a, b, out: t @ b, lambda t, a, b, out: a @ t))

def _dot_vjp(g, other):
    """d(a · b)/da = b: the cotangent (one number, or a batch of them along leading axes)
    times the other vector."""
    if type(g) is np.ndarray and not g.ndim:
        return g * other      # the same (n,) result as expand_dims(g, -1) * other, faster
    return B.expand_dims(g, -1) * other


# s = a · b
dot = Primitive("dot", "DotBackward0", np.dot, input_names=("self", "tensor"), batch=batching.dot,
                needs=((1,), (0,)),
                sample=lambda: [one(normal(4), normal(4, seed=1))],
                vjp=(lambda g, a, b, out: _dot_vjp(g, b),
                     lambda g, a, b, out: _dot_vjp(g, a)),
                jvp=(lambda t, a, b, out: np.dot(t, b), lambda t, a, b, out: np.dot(a, t)))

# y = A v:  dA = dy vᵀ,  dv = Aᵀ dy
mv = Primitive("mv", "MvBackward0", np.matmul, input_names=("self", "vec"), batch=batching.mv,
               needs=((1,), (0,)),
               sample=lambda: [one(normal(2, 3), normal(3, seed=1))],
               vjp=(lambda g, a, v, out: B.expand_dims(g, -1) * v,
                    lambda g, a, v, out: in_dtype_of(g, a) @ a),
               jvp=(lambda t, a, v, out: t @ v, lambda t, a, v, out: a @ t))


# ---- inverse, determinant, solve, trace ---------------------------------------------------------
# d A⁻¹ = -A⁻¹ dA A⁻¹:  vjp = -A⁻ᵀ G A⁻ᵀ
inv = Primitive("inv", "LinalgInvExBackward0", np.linalg.inv, save="out",
                input_names=("A",), batch=batching.direct,
                sample=lambda: [one(matrix(3)), one(matrix(2, batch=(2,)))],
                vjp=lambda g, a, out: -(_mT(out) @ g @ _mT(out)),
                jvp=lambda t, a, out: -(out @ t @ out))


# d det(A) = det(A) tr(A⁻¹ dA):  vjp = g det(A) A⁻ᵀ
def _det_vjp(g, a, out):
    scale = B.expand_dims(B.expand_dims(g * out, -1), -1)
    return scale * _mT(B.inv(a))


det = Primitive("det", "LinalgDetBackward0", np.linalg.det, save="both", input_names=("A",),
                batch=batching.direct,
                sample=lambda: [one(matrix(3)), one(matrix(2, batch=(2,)))],
                vjp=_det_vjp,
                jvp=lambda t, a, out: out * np.sum(_mT(np.linalg.inv(a)) * t, axis=(-1, -2)))


def _solve_forward(a, b, vector):
    if vector:
        return np.linalg.solve(a, b[..., None])[..., 0]
    return np.linalg.solve(a, b)


def _solve_b_vjp(g, a, b, out, vector):
    # X = A⁻¹ B:  dB = A⁻ᵀ G
    if vector:
        return B.solve(_mT(a), B.expand_dims(g, -1))[..., 0]
    return B.solve(_mT(a), g)


def _solve_a_vjp(g, a, b, out, vector):
    # dA = -A⁻ᵀ G Xᵀ
    gb = _solve_b_vjp(g, a, b, out, vector)
    if vector:
        return -(B.expand_dims(gb, -1) * B.expand_dims(out, -2))
    return -(gb @ _mT(out))


def _solve_jvp_a(t, a, b, out, vector):
    # dX = -A⁻¹ dA X
    if vector:
        return -_solve_forward(a, (t @ out[..., None])[..., 0], True)
    return -np.linalg.solve(a, t @ out)


def _solve_shape(a, b, vector):
    k = 1 if vector else 2
    return tuple(np.broadcast_shapes(a[:-2], b[:-k])) + tuple(b[-k:])


solve = Primitive("solve", "LinalgSolveExBackward0", _solve_forward, save="both",
                  broadcasts=True, input_names=("A", "B"), out_shape=_solve_shape,
                  batch=batching.solve,
                  sample=lambda: [one(matrix(3), normal(3, 2, seed=1), vector=False),
                                  one(matrix(3), normal(3, seed=1), vector=True),
                                  one(matrix(2, batch=(2,)), normal(2, 3, seed=1), vector=False)],
                  vjp=(_solve_a_vjp, _solve_b_vjp),
                  jvp=(_solve_jvp_a, lambda t, a, b, out, vector: _solve_forward(a, t, vector)))

# trace(A) = sum_i A_ii:  vjp = g I
trace = Primitive("trace", "TraceBackward0", np.trace, save="shapes", input_names=("self",),
                  batch=batching.trace,
                  sample=lambda: [one(normal(3, 3)), one(normal(2, 4))],
                  vjp=lambda g, a, out: B.expand_dims(B.expand_dims(g, -1), -1)
                      * np.eye(a.shape[0], a.shape[1], dtype=a.dtype),
                  jvp=lambda t, a, out: np.trace(t))
