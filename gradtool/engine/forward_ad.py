"""Forward-mode AD (``torch.autograd.forward_ad``): dual tensors carry a tangent, and every
primitive's JVP rule pushes it forward in the same pass as the primal computation."""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..errors import EngineError
from .batching import VmapFallback
from .grad_mode import MODE
from .tensor import Tensor, _make, version_counter

UnpackedDualTensor = namedtuple("UnpackedDualTensor", ["primal", "tangent"])


class dual_level:
    """Context in which dual tensors live; tangents are dropped when it exits."""

    def __enter__(self) -> int:
        if MODE.fw_level:
            raise EngineError("Nested forward mode AD is not supported at the moment")
        MODE.fw_level = MODE.fw_next_level
        MODE.fw_next_level += 1
        return 0

    def __exit__(self, *exc) -> None:
        MODE.fw_level = 0


def enter_dual_level() -> int:
    return dual_level().__enter__()


def exit_dual_level(*, level=None) -> None:
    MODE.fw_level = 0


def make_dual(tensor: Tensor, tangent, *, level=None) -> Tensor:
    """A view of ``tensor`` carrying ``tangent`` (same shape) for forward-mode AD."""
    if not MODE.fw_level:
        raise EngineError("Trying to create a dual Tensor for forward AD but no level "
                          "exists, make sure to enter_dual_level() first.")
    from .vmap import BatchedTensor     # (vmap imports the engine: imported when used)
    if isinstance(tensor, BatchedTensor) or isinstance(tangent, BatchedTensor):
        # a tangent per example: forward AD carries one tangent, so vmap runs one example
        # at a time (the example-shaped view of a batch would give every example the first's)
        raise VmapFallback("forward-mode AD under vmap (make_dual of a batched tensor)")
    tan = tangent._data if isinstance(tangent, Tensor) else np.asarray(tangent)
    if tan.shape != tensor._data.shape:
        raise EngineError(f"Trying to set a forward gradient that has a different size than "
                          f"that of the original Tensor, this is not supported. Tensor is of "
                          f"size {list(tensor._data.shape)} while the given forward gradient "
                          f"is of size {list(tan.shape)}.")
    if tensor._data.dtype.kind not in "fc":
        raise EngineError("Expected primal to be floating point or complex, but got: "
                          f"{tensor.dtype!r}")
    if tensor._rg:
        # a differentiable alias, so reverse mode still reaches the original tensor
        from .prims import shape as shape_prims
        from .primitive import apply
        out = apply(shape_prims.clone, (tensor,))
    else:
        out = _make(tensor._data)
        out._vc = version_counter(tensor)
    out._fw = (MODE.fw_level, np.asarray(tan, dtype=tensor._data.dtype))
    return out


def unpack_dual(tensor: Tensor, *, level=None) -> UnpackedDualTensor:
    fw = tensor._fw
    primal = _make(tensor._data, tensor.grad_fn, tensor._rg)
    primal._nr = tensor._nr
    primal._vc = version_counter(tensor)
    if fw is None or fw[0] != MODE.fw_level or not MODE.fw_level:
        return UnpackedDualTensor(primal, None)
    return UnpackedDualTensor(primal, _make(fw[1]))
