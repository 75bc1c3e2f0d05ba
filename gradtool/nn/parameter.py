"""``gt.nn.Parameter``: a leaf Tensor that a Module registers as a learnable weight."""

from __future__ import annotations

import numpy as np

from ..engine.tensor import FACTORY_REQUIRES_GRAD, Tensor, _to_array


class Parameter(Tensor):
    """A Tensor that requires grad by default and that Modules collect when it is assigned
    as an attribute.  Wrapping a Tensor shares its memory (as torch does)."""

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True) -> None:
        if data is None:
            arr = np.zeros(0)
        elif isinstance(data, Tensor):
            arr = data._data
        else:
            arr = _to_array(data, None)
        super().__init__(0.0)
        self._data = arr
        if isinstance(data, Tensor):
            self._vc = data._vc
        if requires_grad:
            self._set_requires_grad(True, FACTORY_REQUIRES_GRAD)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, proto):
        return (Parameter, (self._data, self._rg))

    def __deepcopy__(self, memo):
        out = Parameter(self._data.copy(), self._rg)
        if self._grad is not None:
            out._grad = Tensor(self._grad._data.copy())
        memo[id(self)] = out
        return out


class Buffer(Tensor):
    """Marks a Tensor as a buffer when assigned to a Module attribute (``nn.Buffer``)."""

    __slots__ = ("persistent",)

    def __init__(self, data, *, persistent: bool = True) -> None:
        super().__init__(0.0)
        self._data = data._data if isinstance(data, Tensor) else _to_array(data, None)
        self.persistent = persistent
