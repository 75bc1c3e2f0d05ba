"""Matrix products.  Rules use swapaxes(-1, -2) so a leading batch axis on grad works."""

from __future__ import annotations

import numpy as np

from .. import backend as B
from ..primitive import Primitive

# C = A B:  dA = dC Bᵀ,  dB = Aᵀ dC
mm = Primitive("mm", "MmBackward0", np.matmul, input_names=("self", "mat2"),
               out_shape=lambda a, b: (a[0], b[1]))
mm.defvjp(lambda g, a, b, out: g @ B.swapaxes(b, -1, -2),
          lambda g, a, b, out: B.swapaxes(a, -1, -2) @ g)
mm.defjvp(lambda t, a, b, out: t @ b, lambda t, a, b, out: a @ t)


def _matmul_shape(a, b):
    batch = np.broadcast_shapes(a[:-2], b[:-2])
    return tuple(batch) + (a[-2], b[-1])


# Batched matmul with broadcasting batch dims; the engine sums broadcast dims back.
bmm = Primitive("matmul", "BmmBackward0", np.matmul, input_names=("self", "other"),
                broadcasts=True, out_shape=_matmul_shape)
bmm.defvjp(lambda g, a, b, out: g @ B.swapaxes(b, -1, -2),
           lambda g, a, b, out: B.swapaxes(a, -1, -2) @ g)
bmm.defjvp(lambda t, a, b, out: t @ b, lambda t, a, b, out: a @ t)

# s = a · b
dot = Primitive("dot", "DotBackward0", np.dot, input_names=("self", "tensor"))
dot.defvjp(lambda g, a, b, out: B.expand_dims(g, -1) * b,
           lambda g, a, b, out: B.expand_dims(g, -1) * a)
dot.defjvp(lambda t, a, b, out: np.dot(t, b), lambda t, a, b, out: np.dot(a, t))

# y = A v:  dA = dy vᵀ,  dv = Aᵀ dy
mv = Primitive("mv", "MvBackward0", np.matmul, input_names=("self", "vec"))
mv.defvjp(lambda g, a, v, out: B.expand_dims(g, -1) * v,
          lambda g, a, v, out: g @ a)
mv.defjvp(lambda t, a, v, out: t @ v, lambda t, a, v, out: a @ t)
