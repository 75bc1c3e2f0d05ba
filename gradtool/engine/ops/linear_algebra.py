"""Products and linear algebra: mm, bmm, matmul (folded or batched as torch's
``_matmul_impl``), einsum (torch's contraction), inverse, det, ``gt.linalg``."""

from __future__ import annotations

import builtins
import string
from types import SimpleNamespace

import numpy as np

from ...errors import EngineError, ShapeError
from ..primitive import apply
from ..prims import linalg as linalg_prims
from ..prims import shape as shape_prims
from ..tensor import Tensor, bump_version
from ..dtypes import c_type_name
from .common import _t, scalar_type_name
from .indexing import diagonal
from .pointwise import mul
from .reductions import sum, vector_norm
from .shape import (
    _unsafe_view,
    broadcast_to,
    clone,
    permute,
    reshape,
    squeeze,
    t,
    transpose,
    unsqueeze,
    view,
)

_int = builtins.int
_builtins_max = builtins.max

__all__ = [
    "bmm", "det", "dot", "einsum", "ger", "inverse", "matmul", "mm", "mv", "outer",
]


# ---- products -------------------------------------------------------------------------------
def _mm_shapes_error(a: Tensor, b: Tensor) -> EngineError:
    return ShapeError(f"mat1 and mat2 shapes cannot be multiplied ({a.shape[0]}x{a.shape[1]} "
                      f"and {b.shape[0]}x{b.shape[1]})")


#: C++ and ScalarType names of dtypes, as torch's matmul-family errors print them
def _same_dtype_m1_m2(a: Tensor, b: Tensor) -> None:
    """torch multiplies matrices of one dtype only (no promotion)."""
    if a._data.dtype != b._data.dtype:
        names = [c_type_name(t._data) for t in (a, b)]
        raise EngineError("expected m1 and m2 to have the same dtype, but got: "
                          f"{names[0]} != {names[1]}")


def mm(input, mat2) -> Tensor:
    a, b = _t(input), _t(mat2)
    _same_dtype_m1_m2(a, b)
    da, db = a._data, b._data
    if da.ndim != 2:
        raise EngineError("self must be a matrix")
    if db.ndim != 2:
        raise EngineError("mat2 must be a matrix")
    if da.shape[1] != db.shape[0]:
        raise _mm_shapes_error(a, b)
    return apply(linalg_prims.mm, (a, b))


def bmm(input, mat2) -> Tensor:
    a, b = _t(input), _t(mat2)
    # torch checks the dtypes only when both operands have elements (the result then has
    # mat2's dtype)
    if a._data.dtype != b._data.dtype and a._data.size and b._data.size:
        raise EngineError(f"expected scalar type {scalar_type_name(a)} but found "
                          f"{scalar_type_name(b)}")
    if a.ndim != 3:
        raise EngineError("batch1 must be a 3D tensor")
    if b.ndim != 3:
        raise EngineError("batch2 must be a 3D tensor")
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise ShapeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                         f"[{a.shape[0]}, {a.shape[2]}] but got: [{b.shape[0]}, {b.shape[1]}].")
    return apply(linalg_prims.bmm, (a, b))


def dot(input, other) -> Tensor:
    a, b = _t(input), _t(other)
    da, db = a._data, b._data
    if da.ndim != 1 or db.ndim != 1:
        raise EngineError(f"1D tensors expected, but got {da.ndim}D and {db.ndim}D tensors")
    if da.dtype != db.dtype:
        raise EngineError("dot : expected both vectors to have same dtype, but found "
                          f"{scalar_type_name(a)} and {scalar_type_name(b)}")
    if da.shape[0] != db.shape[0]:
        raise ShapeError(f"inconsistent tensor size, expected tensor [{a.shape[0]}] and src "
                         f"[{b.shape[0]}] to have the same number of elements, but got "
                         f"{a.shape[0]} and {b.shape[0]} elements respectively")
    return apply(linalg_prims.dot, (a, b))


def _same_dtype_addmv(mat: Tensor, vec: Tensor) -> None:
    if mat._data.dtype != vec._data.dtype:
        raise EngineError("addmv input tensors must have the same dtype, but got "
                          f"{scalar_type_name(vec)}, {scalar_type_name(mat)}, and "
                          f"{scalar_type_name(vec)}")


def mv(input, vec) -> Tensor:
    a, v = _t(input), _t(vec)
    _same_dtype_addmv(a, v)
    if a.ndim != 2 or v.ndim != 1 or a.shape[1] != v.shape[0]:
        raise ShapeError(f"size mismatch, got input ({a.shape[0] if a.ndim else ''}), mat "
                         f"({'x'.join(map(str, a.shape))}), vec ({v.shape[0] if v.ndim else ''})")
    return apply(linalg_prims.mv, (a, v))


def matmul(input, other) -> Tensor:
    """torch.matmul, decomposed into the nodes torch records: dot / mv / mm for 1-2-D
    operands; a >=3-D operand against a matrix or vector is folded into one mm or mv
    (ViewBackward0, MmBackward0, UnsafeViewBackward0) when torch folds it; otherwise both
    sides are expanded to the broadcast batch shape, reshaped to 3-D and multiplied with
    bmm."""
    a, b = _t(input), _t(other)
    nda, ndb = a._data.ndim, b._data.ndim
    if nda == 0 or ndb == 0:
        raise EngineError("both arguments to matmul need to be at least 1D, but they are "
                          f"{nda}D and {ndb}D")
    if nda == 1 and ndb == 1:
        return dot(a, b)             # dot reports a size mismatch or mixed dtypes
    if ndb == 1:
        _same_dtype_addmv(a, b)
    _same_dtype_m1_m2(a, b)
    _check_matmul_sizes(a, b)
    if a.ndim == 2 and b.ndim == 1:
        return mv(a, b)
    if a.ndim == 1 and b.ndim == 2:
        # torch squeezes mm's result in place (squeeze_): the result is at version 1
        out = apply(shape_prims.matmul_squeeze, (mm(unsqueeze(a, 0), b),), {"dims": (0,)})
        bump_version(out)
        return out
    if a.ndim == 2 and b.ndim == 2:
        return mm(a, b)
    if a.ndim == 3 and b.ndim == 3:
        # a batch of one matrix that requires grad is squeezed, so that its gradient is
        # not expanded over the other operand's batch (torch does the same)
        if a.shape[0] == 1 and a._rg and b.shape[0] != 1:
            return matmul(squeeze(a, 0), b)
        if b.shape[0] == 1 and b._rg and a.shape[0] != 1:
            return matmul(a, squeeze(b, 0))
    if _should_fold(a, b):
        return _folded_matmul(a, b)
    return _batched_matmul(a, b)


def _check_matmul_sizes(a: Tensor, b: Tensor) -> None:
    k = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k == kb:
        return
    if a.ndim <= 2 and b.ndim <= 2:
        if a.ndim == 1 and b.ndim == 1:
            return                       # dot reports it
        if b.ndim == 1:
            raise ShapeError(f"size mismatch, got input ({a.shape[0]}), mat "
                             f"({a.shape[0]}x{k}), vec ({kb})")
        rows = 1 if a.ndim == 1 else a.shape[0]
        raise ShapeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{k} and "
                         f"{kb}x{b.shape[-1]})")
    if _should_fold(a, b):
        # the error of the mm / mv the larger operand is folded into (as torch's path)
        if a.ndim >= b.ndim:
            rows, inner, small = _int(np.prod(a.shape[:-1])), k, b
        else:                                   # b.mT folded, against a.T (or a)
            rows, inner, small = _int(np.prod(b.shape[:-2])) * b.shape[-1], kb, a
        if small.ndim == 1:
            raise ShapeError(f"size mismatch, got input ({rows}), mat ({rows}x{inner}), vec "
                             f"({small.shape[0]})")
        other = small.shape if a.ndim >= b.ndim else small.shape[::-1]
        raise ShapeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{inner} and "
                         f"{other[0]}x{other[1]})")
    try:
        batch = _int(np.prod(np.broadcast_shapes(a.shape[:-2], b.shape[:-2])))
    except ValueError:
        return                                  # the batched path reports it
    raise ShapeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                     f"[{batch}, {k}] but got: [{batch}, {kb}].")


def _should_fold(a: Tensor, b: Tensor) -> bool:
    """torch's rule for folding a >=3-D operand into a matrix (mm / mv instead of bmm)."""
    larger = a.ndim >= b.ndim
    t1 = a._data if larger else np.swapaxes(b._data, -1, -2)
    dim_t2 = b.ndim if larger else a.ndim
    if not (t1.ndim >= 3 and dim_t2 <= 2):
        return False
    if (b if larger else a)._rg:
        return True        # else the small operand's gradient would be batch-sized
    if a.ndim == 2:
        return False       # folding would need a transposed copy of the result
    if t1.size == 0:
        return True
    strides, shape = t1.strides, t1.shape
    return builtins.all(strides[i] == strides[i + 1] * shape[i + 1] for i in range(t1.ndim - 2))


def _folded_matmul(a: Tensor, b: Tensor) -> Tensor:
    transpose_back = b.ndim > a.ndim
    if transpose_back:       # (b.mT @ a.mT).mT
        t1 = transpose(b, -2, -1)
        t2 = t(a) if a.ndim == 2 else a
    else:
        t1, t2 = a, b
    out_shape = t1.shape[:-1]
    folded = reshape(t1, _int(np.prod(out_shape)), t1.shape[-1])
    if t2.ndim == 1:
        return _unsafe_view(mv(folded, t2), out_shape)
    out = _unsafe_view(mm(folded, t2), out_shape + (t2.shape[1],))
    return clone(transpose(out, -2, -1)) if transpose_back else out


def _batch_broadcast_error(sa: tuple, sb: tuple) -> ShapeError:
    """torch's error for batch shapes that do not broadcast (the first clash from the right,
    numbered in the broadcast shape)."""
    nd = max(len(sa), len(sb))
    for i in range(1, nd + 1):
        na = sa[-i] if i <= len(sa) else 1
        nb = sb[-i] if i <= len(sb) else 1
        if na != nb and na != 1 and nb != 1:
            return ShapeError(f"The size of tensor a ({na}) must match the size of tensor b "
                              f"({nb}) at non-singleton dimension {nd - i}")
    return ShapeError(f"shapes {list(sa)} and {list(sb)} cannot be broadcast together")


def _batched_matmul(a: Tensor, b: Tensor) -> Tensor:
    n = a.shape[-2] if a.ndim > 1 else 1
    k = a.shape[-1]
    p = b.shape[-1] if b.ndim > 1 else 1
    try:
        batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    except ValueError:
        raise _batch_broadcast_error(a.shape[:-2], b.shape[:-2]) from None
    size = _int(np.prod(batch))
    a3 = reshape(broadcast_to(a, batch + (n, k)), size, n, k)
    if b.ndim == 1:
        b3 = unsqueeze(reshape(broadcast_to(b, batch + (k,)), size, k), 2)
    else:
        b3 = reshape(broadcast_to(b, batch + (k, p)), size, k, p)
    out_shape = batch + ((n,) if a.ndim > 1 else ()) + ((p,) if b.ndim > 1 else ())
    product = bmm(a3, b3)
    if b.ndim == 1:
        product = squeeze(product, -1)
    return _unsafe_view(product, out_shape)


def outer(input, vec2) -> Tensor:
    return mul(reshape(input, -1, 1), vec2)


ger = outer


def _einsum_equation(equation: str, shapes: list) -> str:
    """Normalize an einsum equation: no spaces, an explicit output, '...' spelled out as
    letters.  Returns the equation and the letters standing for the ellipsis."""
    equation = equation.replace(" ", "")
    if "->" in equation:
        lhs, rhs = equation.split("->")
    else:
        lhs, rhs = equation, None
    subs = lhs.split(",")
    if len(subs) != len(shapes):
        raise EngineError("einsum(): more operands were provided than specified in the "
                          "equation" if len(shapes) > len(subs) else
                          "einsum(): fewer operands were provided than specified in the "
                          "equation")
    letters = set(equation) - set(",.->")
    for c in letters:
        if c not in string.ascii_letters:
            raise EngineError(f"einsum(): invalid subscript given at index "
                              f"{equation.index(c)} in the equation string, subscripts must be "
                              "in [a-zA-Z]")
    pool = [c for c in string.ascii_letters if c not in letters]
    n_ell = 0
    for sub, shape in zip(subs, shapes):
        if "..." in sub:
            n_ell = _builtins_max(n_ell, len(shape) - (len(sub) - 3))
    ell = "".join(pool[:n_ell])
    expanded = []
    for sub, shape in zip(subs, shapes):
        if "..." in sub:
            k = len(shape) - (len(sub) - 3)
            sub = sub.replace("...", ell[n_ell - k:] if k else "")
        if len(sub) != len(shape):
            raise EngineError(f"einsum(): the number of subscripts in the equation ({len(sub)}) "
                              f"does not match the number of dimensions ({len(shape)}) for "
                              f"operand {len(expanded)}" + (" and no ellipsis was given"
                                                            if "..." not in sub else ""))
        expanded.append(sub)
    if rhs is None:
        counts = {}
        for sub in expanded:
            for c in sub:
                counts[c] = counts.get(c, 0) + 1
        rhs = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    else:
        rhs = rhs.replace("...", ell)
    sizes: dict = {}
    for i, (sub, shape) in enumerate(zip(expanded, shapes)):
        for c, size in zip(sub, shape):
            seen = sizes.get(c, 1)
            if size != 1 and seen != 1 and size != seen:
                raise ShapeError(f"einsum(): subscript {c} has size {size} for operand {i} "
                                 f"which does not broadcast with previously seen size {seen}")
            if size != 1:
                sizes[c] = size
    return ",".join(expanded) + "->" + rhs, ell


def einsum(equation, *operands) -> Tensor:
    """Einstein summation, decomposed as torch decomposes it (so it records the same nodes):
    diagonals for repeated labels, unsqueeze + permute to align every operand on one label
    order (output labels first), then left-to-right pairwise contraction with sum / mul /
    bmm, and a final view or sum."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    operands = tuple(_t(op) for op in operands)
    if not operands:
        raise EngineError("einsum(): must provide at least one operand")
    eq, ellipsis = _einsum_equation(equation, [op.shape for op in operands])
    lhs, output = eq.split("->")
    subs = lhs.split(",")
    # output labels first, then contracted ellipsis dims, then the other contracted labels in
    # torch's label order (A-Z, then a-z)
    order = {c: i for i, c in enumerate(output)}
    for c in [c for c in ellipsis if c not in order] + sorted(set(lhs) - set(output)
                                                             - set(ellipsis) - {","}):
        order[c] = len(order)
    n_out, n_all = len(output), len(order)
    aligned = []
    counts = [0] * n_all
    for sub, op in zip(subs, operands):
        label_dim: dict = {}
        permutation = [-1] * n_all
        dim = 0
        for c in sub:
            if c in label_dim:         # repeated label: its diagonal, moved to the first place
                prev = label_dim[c]
                op = diagonal(op, 0, prev, dim)
                op = permute(op, _moved_last_to(op.ndim, prev))
            else:
                label_dim[c] = dim
                permutation[order[c]] = dim
                if op.shape[dim] != 1:
                    counts[order[c]] += 1
                dim += 1
        for i, d in enumerate(permutation):
            if d == -1:
                op = unsqueeze(op, dim)
                permutation[i] = dim
                dim += 1
        aligned.append(permute(op, tuple(permutation)))
    while len(aligned) > 1:
        a, b = aligned[0], aligned[1]
        del aligned[:2]
        sum_dims, a_only, b_only = [], [], []
        for d in range(n_out, n_all):
            if a.shape[d] != 1 and b.shape[d] != 1:
                counts[d] -= 1
                if counts[d] == 1:
                    sum_dims.append(d)
                    counts[d] = 0
            elif counts[d] == 1:
                if a.shape[d] != 1:
                    a_only.append(d)
                    counts[d] = 0
                elif b.shape[d] != 1:
                    b_only.append(d)
                    counts[d] = 0
        if a_only:
            a = sum(a, tuple(a_only), keepdim=True)
        if b_only:
            b = sum(b, tuple(b_only), keepdim=True)
        aligned.insert(0, _sumproduct_pair(a, b, sum_dims))
    result = aligned[0]
    if n_all > n_out:
        if len(operands) > 1:
            return view(result, result.shape[:n_out])
        return sum(result, tuple(range(n_out, n_all)))
    return result


def _moved_last_to(ndim: int, position: int) -> tuple:
    """The permutation of movedim(-1, position)."""
    dims = list(range(ndim - 1))
    dims.insert(position, ndim - 1)
    return tuple(dims)


def _pair_dims(left: Tensor, right: Tensor, sum_dims: list) -> tuple:
    """The kept dims of a pair: in both operands, in the left only, in the right only."""
    lro, lo, ro = [], [], []
    for i in range(left.ndim):
        if i in sum_dims:
            continue
        if left.shape[i] != 1 and right.shape[i] != 1:
            lro.append(i)
        elif left.shape[i] != 1:
            lo.append(i)
        else:
            ro.append(i)
    return lro, lo, ro


def _sumproduct_pair(left: Tensor, right: Tensor, sum_dims: list) -> Tensor:
    """Multiply two aligned operands and sum sum_dims (kept as size 1), as one bmm."""
    if not sum_dims:
        return mul(left, right)
    lro, lo, ro = _pair_dims(left, right, sum_dims)
    if lro + lo + ro != sorted(lro + lo + ro) and lro + ro + lo == sorted(lro + ro + lo):
        # torch swaps the operands when that makes the product come out in order
        left, right = right, left
        lo, ro = ro, lo
    lro_size = _int(np.prod([left.shape[d] for d in lro]))
    lo_size = _int(np.prod([left.shape[d] for d in lo]))
    ro_size = _int(np.prod([right.shape[d] for d in ro]))
    sum_size = _int(np.prod([left.shape[d] for d in sum_dims]))
    out_size = tuple([left.shape[d] for d in lro] + [left.shape[d] for d in lo]
                     + [1] * len(sum_dims) + [right.shape[d] for d in ro])
    left = reshape(permute(left, tuple(lro + lo + sum_dims + ro)), lro_size, lo_size, sum_size)
    right = reshape(permute(right, tuple(lro + sum_dims + ro + lo)), lro_size, sum_size,
                    ro_size)
    inverse = [0] * len(out_size)
    for position, d in enumerate(lro + lo + sum_dims + ro):
        inverse[d] = position
    return permute(view(bmm(left, right), out_size), tuple(inverse))


def _square(name: str, A: Tensor) -> None:
    if A.ndim < 2:
        raise EngineError(f"linalg.{name}: The input tensor A must have at least 2 dimensions.")
    if A.shape[-1] != A.shape[-2]:
        raise EngineError(f"linalg.{name}: A must be batches of square matrices, but they are "
                          f"{A.shape[-2]} by {A.shape[-1]} matrices")
    if A._data.dtype.kind not in "fc":
        raise EngineError(f"linalg.{name}: Expected a floating point or complex tensor as "
                          f"input. Got {scalar_type_name(A)}")


def inverse(input) -> Tensor:
    """Matrix inverse (LinalgInvExBackward0); batches of square matrices."""
    A = _t(input)
    _square("inv", A)
    try:
        return apply(linalg_prims.inv, (A,))
    except ShapeError as exc:
        raise EngineError("linalg.inv: The diagonal element 1 is zero, the inversion could not "
                          "be completed because the input matrix is singular.") from exc


def det(input) -> Tensor:
    """Determinant (LinalgDetBackward0)."""
    A = _t(input)
    _square("det", A)
    return apply(linalg_prims.det, (A,))


def _linalg_solve(A, B, *, left=True) -> Tensor:
    """X with A X = B (LinalgSolveExBackward0); B is a vector when B.ndim == 1 or
    B.ndim == A.ndim - 1 with A's batch shape (torch's rule)."""
    A, B = _t(A), _t(B)
    if not left:
        raise EngineError("linalg.solve: left=False is not supported")
    _square("solve", A)
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape[:-1] == A.shape[:-2])
    if B.shape[-1 if vector else -2] != A.shape[-1]:
        raise ShapeError(f"linalg.solve: Incompatible shapes of A and B for the equation AX = B"
                         f" ({A.shape[-2]}x{A.shape[-1]} and "
                         f"{'x'.join(map(str, B.shape[-1 if vector else -2:]))})")
    try:
        return apply(linalg_prims.solve, (A, B), {"vector": vector})
    except ShapeError as exc:
        if "singular" in str(exc).lower():
            raise EngineError("torch.linalg.solve: The solver failed because the input matrix "
                              "is singular.") from None
        raise


def _linalg_norm(input, ord=None, dim=None, keepdim=False) -> Tensor:
    input = _t(input)
    if ord is None or ord == "fro":
        return vector_norm(input, 2, dim, keepdim)
    if dim is None and input.ndim == 1 or isinstance(dim, (_int, np.integer)) or (
            isinstance(dim, (tuple, list)) and len(dim) == 1):
        return vector_norm(input, ord, dim, keepdim)
    raise EngineError(f"linalg.norm: matrix norm ord={ord} is not supported")


#: ``gt.linalg``: torch.linalg's names for the linear-algebra ops
linalg = SimpleNamespace(inv=inverse, det=det, solve=_linalg_solve, norm=_linalg_norm,
                         vector_norm=vector_norm)
