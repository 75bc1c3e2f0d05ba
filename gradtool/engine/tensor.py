"""The Tensor: a numpy array plus the autograd state PyTorch users expect.

Hot-path attributes are slots read directly by the engine:

* ``_data``: the ``numpy.ndarray`` (``.data`` returns a detached Tensor, as in torch);
* ``_rg``: requires_grad; ``grad_fn`` / ``_nr``: the node that made it and which output;
* ``_vc``: the version counter, a one-element int64 array shared with views, created on
  first need (None means version 0): nothing for Python's cyclic GC to walk;
* ``_fw``: forward-mode tangent as ``(level, ndarray)`` or None;
* ``_acc``: weak reference to the leaf's ``AccumulateGrad`` node;
* ``_extra``: None or a dict of rarely used state (hooks, retains_grad, base of a view).

Operator and method implementations live in :mod:`gradtool.engine.ops`; they are attached
to this class there, so this module stays about state and semantics.
"""

from __future__ import annotations

import warnings

import weakref

import numpy as np

from ..errors import EngineError
from . import dtypes
from .grad_mode import MODE

_ndarray = np.ndarray


class Size(tuple):
    """Shape tuple printed as torch prints ``torch.Size``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"gradtool.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n


FACTORY_REQUIRES_GRAD = ("Only Tensors of floating point and complex dtype can require "
                         "gradients")


class Tensor:
    __slots__ = ("_data", "_rg", "_grad", "grad_fn", "_nr", "_vc", "_fw", "_acc", "_extra",
                 "__weakref__")
    __array_priority__ = 1000
    __array_ufunc__ = None     # make numpy defer to Tensor's reflected operators

    def __init__(self, data, dtype=None, requires_grad: bool = False) -> None:
        _init(self, _to_array(data, dtype), None, False)
        if requires_grad:
            self._set_requires_grad(True, FACTORY_REQUIRES_GRAD)

    # ------------------------------------------------------------------ basic state
    @property
    def data(self) -> Tensor:
        """A detached alias sharing memory (in-place changes through it are not tracked)."""
        return _make(self._data)

    @data.setter
    def data(self, value) -> None:
        arr = value._data if isinstance(value, Tensor) else _to_array(value, None)
        self._data = arr

    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None):
        if dim is None:
            return Size(self._data.shape)
        if not self._data.ndim:
            raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
        return self._data.shape[_norm_dim(dim, self._data.ndim)]

    @property
    def dtype(self) -> dtypes.dtype:
        return dtypes.from_np(self._data.dtype)

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    ndimension = dim

    def numel(self) -> int:
        return self._data.size

    nelement = numel

    @property
    def device(self) -> str:
        return "cpu"

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def requires_grad(self) -> bool:
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self._set_requires_grad(value, "only Tensors of floating point and complex dtype can "
                                       "require gradients")

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        # torch words the three ways differently: requires_grad_(), the setter, and
        # constructors/factories ("Only Tensors of floating point and complex dtype ...")
        return self._set_requires_grad(requires_grad, "only Tensors of floating point dtype "
                                                      "can require gradients")

    def _set_requires_grad(self, requires_grad, message: str) -> Tensor:
        if self.grad_fn is not None:
            if not requires_grad:
                raise EngineError(
                    "you can only change requires_grad flags of leaf variables. If you want "
                    "to use a computed variable in a subgraph that doesn't require "
                    "differentiation use var_no_grad = var.detach().")
            return self
        if requires_grad and not dtypes.is_differentiable(self._data.dtype):
            raise EngineError(message)
        self._rg = bool(requires_grad)
        return self

    @property
    def grad(self):
        if self._grad is None and self.grad_fn is not None and not self._get("retains_grad") \
                and self._rg:
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. "
                "Its .grad attribute won't be populated during autograd.backward(). If you "
                "indeed want the .grad field to be populated for a non-leaf Tensor, use "
                ".retain_grad() on the non-leaf Tensor. If you access the non-leaf Tensor by "
                "mistake, make sure you access the leaf Tensor instead.", UserWarning,
                stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError("assigned grad expected to be a Tensor or None but got grad "
                                f"of type {type(value).__name__}")
            if value._data.shape != self._data.shape:
                raise EngineError(f"attempting to assign a gradient of size "
                                  f"'{list(value._data.shape)}' to a tensor of size "
                                  f"'{list(self._data.shape)}'. Please ensure that the gradient "
                                  "and the tensor are the same size")
            if value._data.dtype != self._data.dtype:
                raise EngineError(
                    "attempting to assign a gradient with dtype "
                    f"'{dtypes.c_type_name(value._data)}' to a tensor with grad_dtype "
                    f"'{dtypes.scalar_type_name(self._data)}'. The gradient must match the "
                    "tensor's grad_dtype (defaults to the tensor's dtype). You can set the "
                    "tensor's grad_dtype attribute with a specific dtype, or None to allow any "
                    "dtype. Set grad_dtype with caution. Diverging the dtypes of a tensor and "
                    "its gradient may break downstream systems that assume they match.")
        self._grad = value

    @property
    def _version(self) -> int:
        return 0 if self._vc is None else int(self._vc[0])

    @property
    def output_nr(self) -> int:
        return self._nr

    def _get(self, key, default=None):
        extra = self._extra
        return default if extra is None else extra.get(key, default)

    def _set(self, key, value) -> None:
        if self._extra is None:
            self._extra = {}
        self._extra[key] = value

    @property
    def name(self):
        """An optional label shown by ``gradtool graph`` (not a torch attribute)."""
        return self._get("name")

    @name.setter
    def name(self, value) -> None:
        self._set("name", value)

    @property
    def retains_grad(self) -> bool:
        return bool(self._get("retains_grad"))

    # ------------------------------------------------------------------ conversions
    def numpy(self, force: bool = False) -> np.ndarray:
        if self._rg and not force and MODE.grad_enabled:     # torch: allowed with grad off
            raise EngineError("Can't call numpy() on Tensor that requires grad. Use "
                              "tensor.detach().numpy() instead.")
        return self._data

    def __array__(self, dtype=None, copy=None):
        if dtype is not None:
            return self._data.astype(dtype)
        return self._data

    def tolist(self):
        return self._data.tolist()

    def item(self):
        if self._data.size != 1:
            raise EngineError(f"a Tensor with {self._data.size} elements cannot be converted "
                              "to Scalar")
        return self._data.reshape(()).item()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an "
                            "index")
        return int(self.item())

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise EngineError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self._data.reshape(()).item())

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    __hash__ = object.__hash__

    # ------------------------------------------------------------------ autograd API
    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False,
                 inputs=None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (``gradient`` gives vᵀJ)."""
        from .graph import backward
        backward((self,), gradient, retain_graph,
                 create_graph, inputs=inputs)

    def detach(self) -> Tensor:
        """A new leaf sharing data (and the version counter) but outside the graph."""
        out = _make(self._data)
        out._vc = version_counter(self)
        # an in-place change through the alias regenerates the views of the memory it
        # aliases (ops/inplace.py _refresh_views): the root of those views, held weakly
        root = self
        while root._extra is not None and root._extra.get("base") is not None:
            root = root._extra["base"]
        out._extra = {"alias_of": weakref.ref(root)}
        return out

    def detach_(self) -> Tensor:
        if self._get("base") is not None:
            raise EngineError("Can't detach views in-place. Use detach() instead.")
        self.grad_fn = None
        self._nr = 0
        self._rg = False
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` for a non-leaf after backward."""
        if not self._rg:
            raise EngineError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is None or self._get("retains_grad"):
            return
        self._set("retains_grad", True)
        self.grad_fn._retain(self._nr, self)

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a non-None return
        replaces the gradient.  Returns a handle with ``.remove()``."""
        if not callable(hook):
            raise TypeError(f"hook must be callable, got {type(hook).__name__}")
        if not self._rg:
            raise EngineError("cannot register a hook on a tensor that doesn't require "
                              "gradient")
        if self.grad_fn is not None:
            return self.grad_fn._add_tensor_pre_hook(self._nr, hook)
        hooks = self._get("hooks")
        if hooks is None:
            hooks = {}
            self._set("hooks", hooks)
        return RemovableHandle.add(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` after a gradient was accumulated into this leaf's ``.grad``
        (optimizers stepping in backward use it)."""
        if not callable(hook):
            raise TypeError(f"hook must be callable, got {type(hook).__name__}")
        if not self._rg:
            raise EngineError("cannot register a hook on a tensor that doesn't require "
                              "gradient")
        if self.grad_fn is not None:
            raise EngineError("post accumulate grad hooks cannot be registered on non-leaf "
                              "tensors")
        hooks = self._get("post_accumulate_hooks")
        if hooks is None:
            hooks = {}
            self._set("post_accumulate_hooks", hooks)
        return RemovableHandle.add(hooks, hook)

    def _leaf_hooks(self):
        hooks = self._get("hooks")
        return tuple(hooks.values()) if hooks else ()

    # ------------------------------------------------------------------ repr
    def __repr__(self) -> str:
        from .printing import tensor_repr
        return tensor_repr(self)

    def __str__(self) -> str:
        return self.__repr__()

    def __format__(self, spec: str) -> str:
        if self._data.ndim == 0 and spec:
            return format(self._data.item(), spec)
        return str(self)

    def __reduce_ex__(self, proto):
        return (_rebuild, (self._data, self._rg))

    def __deepcopy__(self, memo):
        if self.grad_fn is not None:
            raise EngineError("Only Tensors created explicitly by the user (graph leaves) "
                              "support the deepcopy protocol at the moment.")
        out = Tensor(self._data.copy())
        out._rg = self._rg
        if self._grad is not None:
            out._grad = Tensor(self._grad._data.copy())
        memo[id(self)] = out
        return out


def _rebuild(data, rg):
    t = _make(data)
    t._rg = rg
    return t


class RemovableHandle:
    """Returned by every ``register_*hook``: ``handle.remove()`` unregisters the hook (and
    its entries in any side tables).  ``RemovableHandle.add(store, hook)`` registers."""

    def __init__(self, hooks: dict, *extra: dict) -> None:
        self.id = object()    # a unique key; the dict keeps registration order
        self._hooks = hooks
        self._extra = extra

    @classmethod
    def add(cls, hooks: dict, hook) -> RemovableHandle:
        handle = cls(hooks)
        hooks[handle.id] = hook
        return handle

    def remove(self) -> None:
        self._hooks.pop(self.id, None)
        for table in self._extra:
            table.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _init(t: Tensor, data, grad_fn, rg: bool) -> None:
    t._data = data
    t._rg = rg
    t._grad = None
    t.grad_fn = grad_fn
    t._nr = 0
    t._vc = None
    t._fw = None
    t._acc = None
    t._extra = None


def _make(data, grad_fn=None, rg: bool = False) -> Tensor:
    """Fast constructor for the engine: ``data`` must already be an ndarray."""
    t = Tensor.__new__(Tensor)
    _init(t, data, grad_fn, rg)
    return t


def new_version_counter(start: int = 0) -> np.ndarray:
    """A version counter: a one-element int64 array.  Unlike a list it is not tracked by
    Python's cyclic GC, which keeps full collections cheap while a large graph is alive."""
    vc = _VERSION_ZERO.copy()        # a copy: half the cost of np.zeros
    if start:
        vc[0] = start
    return vc


_VERSION_ZERO = np.zeros(1, np.int64)     # never written: the template of new counters


def version_counter(t: Tensor) -> np.ndarray:
    """The tensor's version counter (created on first need, then shared with views)."""
    vc = t._vc
    if vc is None:
        vc = t._vc = new_version_counter()
    return vc


def bump_version(t: Tensor) -> None:
    """Record an in-place change (nodes that saved the old value will refuse to run)."""
    if t._vc is None:
        t._vc = new_version_counter(1)
    else:
        t._vc[0] += 1


def _to_array(data, dtype) -> np.ndarray:
    """numpy array for ``data``; python floats become float64 (gradtool's default)."""
    np_dtype = dtypes.to_np(dtype)
    if isinstance(data, Tensor):
        arr = data._data
        return arr.astype(np_dtype) if np_dtype is not None and arr.dtype != np_dtype \
            else arr.copy()
    if isinstance(data, (list, tuple)) and not _flat_numbers(data) and \
            any(isinstance(x, Tensor) for x in _flat(data)):
        data = _untensor(data)
    try:
        arr = np.array(data, dtype=np_dtype)
    except ValueError as exc:
        raise ValueError(_ragged_message(data) or str(exc)) from None
    if np_dtype is None and arr.dtype.kind == "f" and arr.dtype != np.float64 \
            and not isinstance(data, np.ndarray):
        arr = arr.astype(np.float64)
    if arr.dtype.kind in "OUS":
        if isinstance(data, (str, bytes)):
            raise TypeError(f"new(): invalid data type '{type(data).__name__}'")
        raise EngineError(f"Could not infer dtype of {type(data).__name__}")
    return arr


_NUMBER_TYPES = frozenset({float, int, bool})


def _flat_numbers(data) -> bool:
    """A flat list of Python numbers (``tensor([1.0, 2.0, 3.0])``): nothing to unwrap."""
    for x in data:
        if type(x) not in _NUMBER_TYPES:
            return False
    return True


def _ragged_message(data) -> str | None:
    """torch's wording for a nested list whose rows differ in length."""
    level = [data]
    dim = 0
    while level and all(isinstance(x, (list, tuple)) for x in level):
        lengths = [len(x) for x in level]
        if len(set(lengths)) > 1:
            return (f"expected sequence of length {lengths[0]} at dim {dim} "
                    f"(got {next(n for n in lengths if n != lengths[0])})")
        level = [y for x in level for y in x]
        dim += 1
    return None


def _flat(data):
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        else:
            yield item


def _untensor(data):
    if isinstance(data, Tensor):
        return data._data
    if isinstance(data, (list, tuple)):
        return [_untensor(x) for x in data]
    return data


def _norm_dim(dim: int, ndim: int) -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}],"
                         f" but got {dim})")
    return dim % n if ndim else 0
