"""``repr`` of tensors in PyTorch's style: ``tensor([1., 2.], requires_grad=True)``.

Like torch: one format for all elements (integers-valued floats as ``1.``, fixed 4 decimals,
or scientific when the range needs it), right-aligned to a common width, summarized with
``...`` beyond 1000 elements."""

from __future__ import annotations

import numpy as np

from . import dtypes


def _float_formatter(arr: np.ndarray):
    finite = arr[np.isfinite(arr)] if arr.size else arr
    if finite.size == 0:
        return lambda v: _special(v) or f"{v:.4f}"
    absf = np.abs(finite)
    nonzero = absf[absf > 0]
    big = float(absf.max())
    small = float(nonzero.min()) if nonzero.size else 0.0
    if np.all(finite == np.round(finite)) and big < 1e8:
        return lambda v: _special(v) or f"{v:.0f}."
    if big >= 1e8 or (nonzero.size and (small < 1e-4 or big / small > 1e3)):
        return lambda v: _special(v) or f"{v:.4e}"
    return lambda v: _special(v) or f"{v:.4f}"


def _special(v) -> str | None:
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return None


def array_str(arr: np.ndarray, indent: int) -> str:
    kind = arr.dtype.kind
    summarize = arr.size > 1000
    sample = _sample(arr) if summarize else arr
    if kind == "f":
        fmt = _float_formatter(sample)
    elif kind == "b":
        fmt = lambda v: "True" if v else "False"  # noqa: E731
    elif kind == "c":
        fmt = lambda v: f"{v.real:.4f}{v.imag:+.4f}j"  # noqa: E731
    else:
        fmt = lambda v: str(int(v))  # noqa: E731
    width = max((len(fmt(v)) for v in sample.ravel()), default=1)
    formatter = {"all": lambda v: fmt(v).rjust(width)}
    return np.array2string(arr, separator=", ", prefix=" " * indent, formatter=formatter,
                           threshold=1000, edgeitems=3, max_line_width=80)


def _sample(arr: np.ndarray) -> np.ndarray:
    """The elements shown when summarizing (first and last three along every axis)."""
    out = arr
    for axis in range(arr.ndim):
        if out.shape[axis] > 6:
            out = np.concatenate([np.take(out, range(3), axis=axis),
                                  np.take(out, range(out.shape[axis] - 3, out.shape[axis]),
                                          axis=axis)], axis=axis)
    return out


def tensor_repr(t) -> str:
    arr = t._data
    body = "[]" if arr.size == 0 else array_str(arr, len("tensor("))
    extras = []
    if arr.size == 0 and arr.ndim != 1:
        extras.append(f"size={tuple(arr.shape)}")
    if arr.dtype not in (np.float64, np.int64, np.bool_):
        extras.append(f"dtype={dtypes.from_np(arr.dtype)!r}")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t._rg:
        extras.append("requires_grad=True")
    return "tensor(" + ", ".join([body] + extras) + ")"
