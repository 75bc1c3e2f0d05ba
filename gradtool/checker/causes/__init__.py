"""Round two of the diagnosis: name the cause of the backward bugs people actually write.

:func:`diagnose <gradtool.checker.diagnose.diagnose>` tries these when no simpler story
(sign, constant factor, transposed, ...) fits a failing block, cheapest first, and stops at
the first that is *verified*; each states its evidence:

* **factor along an axis**: analytical / numerical is constant along every axis of the
  block but one, along which it varies; named when the factors equal an input (or its
  reciprocal): "a missing multiplication by gamma?" (elementwise blocks: only when named);
* **only the diagonal**: the analytical block is the diagonal of the numerical one (an
  elementwise rule for a function that is not elementwise), or the reverse;
* **a repaired backward** (custom Functions, gradtool's and torch's): the backward's op calls
  are replayed with one change and must then give the numerical Jacobian: a tensor it reads
  replaced by another the Function had ("the backward uses out where x is due, in
  sigmoid(out)"), a reduction given ``keepdim=True`` or another dim;
* **wrong evaluation point** (functions whose backward cannot be replayed): the analytical
  block equals the numerical Jacobian at another tensor the function had (its output,
  another input): "the derivative at out, not at x";
* **errors confined to a region**: the wrong input elements are exactly those where an
  input or output is negative / zero / positive: "wrong only where out == 0";
* **one term wrong**: the forward's ops are frozen one at a time (held at their value), which
  splits the Jacobian into the part through that op and the rest; the analytical block is
  the true one with one part missing, its sign flipped or scaled.  For spec formula
  Functions, the parts are the additive terms of the formula, named by their source;
* **a factor missing on one term of the backward** (custom Functions): the replay with one
  operand of a sum multiplied by a value of the saved tensors matches.

Every hypothesis is screened cheaply (one or two random projections, forward differences)
and then verified on the whole block with the checker's tolerances; when none is verified,
the diagnosis stays "mismatch".
"""

from __future__ import annotations

import numpy as np

from .common import MAX_ENTRIES, Cause
from .forward import evaluation_point, one_term
from .patterns import confined_region, factor_pattern, only_diagonal
from .probe import Probe
from .replay import missing_factor, repaired_backward

__all__ = ["Cause", "Probe", "find_cause"]

#: the tests, in the order tried (cheapest and most specific first)
TESTS = (factor_pattern, only_diagonal, repaired_backward, evaluation_point, confined_region,
         one_term, missing_factor)


# ---- the entry point -------------------------------------------------------------------------
def find_cause(A: np.ndarray, N: np.ndarray, atol: float, rtol: float, in_shape: tuple,
               out_shape: tuple, probe) -> Cause | None:
    """A verified cause of the failing block (A, N) or None (then: "mismatch")."""
    if A.size == 0 or A.size > MAX_ENTRIES:
        return None
    # a region that says nothing of what happens there ("where out > 0") is where the
    # error sits, not why: the tests after it may still name the cause
    where = None
    for test in TESTS:
        if test is confined_region and where is not None:
            continue
        cause = test(A, N, atol, rtol, tuple(in_shape), tuple(out_shape), probe)
        if cause is None:
            continue
        if test is confined_region and not cause.evidence.get("there"):
            where = cause
            continue
        if where is not None:
            cause.text += f"; the wrong elements are those where {where.evidence['where']}"
            cause.evidence["region"] = where.evidence["where"]
        return cause
    return where
