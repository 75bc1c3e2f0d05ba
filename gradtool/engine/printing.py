"""``repr`` of tensors in PyTorch's style: ``tensor([1., 2.], requires_grad=True)``."""

from __future__ import annotations

import numpy as np

from . import dtypes


def _format_floats(arr: np.ndarray) -> np.ndarray | None:
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return None
    absf = np.abs(finite)
    nonzero = absf[absf > 0]
    ints = np.all(finite == np.round(finite))
    big = absf.max() if absf.size else 0
    small = nonzero.min() if nonzero.size else 0
    if ints and big < 1e8:
        return lambda v: ("nan" if np.isnan(v) else ("inf" if v > 0 else "-inf")) \
            if not np.isfinite(v) else f"{v:.0f}."
    if big >= 1e8 or (nonzero.size and (small < 1e-4 or big / small > 1e3 and big > 1e3)):
        return lambda v: f"{v:.4e}"
    return lambda v: f"{v:.4f}"


def array_str(arr: np.ndarray, indent: int) -> str:
    if arr.dtype.kind == "f":
        fmt = _format_floats(arr)
        if fmt is None:
            return np.array2string(arr, separator=", ", prefix=" " * indent)
        return np.array2string(arr, separator=", ", prefix=" " * indent,
                               formatter={"float_kind": fmt}, threshold=1000, edgeitems=3,
                               max_line_width=80)
    if arr.dtype.kind == "b":
        return np.array2string(arr, separator=", ", prefix=" " * indent,
                               formatter={"bool": lambda v: "True" if v else "False"})
    return np.array2string(arr, separator=", ", prefix=" " * indent, threshold=1000,
                           max_line_width=80)


def tensor_repr(t) -> str:
    arr = t._data
    body = array_str(arr, len("tensor("))
    if arr.size == 0:
        body = "[]"
    extras = []
    if arr.size == 0 and arr.ndim != 1:
        extras.append(f"size={tuple(arr.shape)}")
    default = arr.dtype in (np.float64, np.int64, np.bool_)
    if not default:
        extras.append(f"dtype={dtypes.from_np(arr.dtype)!r}")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t._rg:
        extras.append("requires_grad=True")
    if t._fw is not None:
        extras.append("tangent=...")
    return "tensor(" + ", ".join([body] + extras) + ")"
