"""Modules named in a spec (``modules:``): gt.nn layers from an allow-list, containers of
them, or ``python:`` references to gradtool.nn / torch.nn Module subclasses.

A module is resolved and built once when the file is loaded (so that unknown layers, bad
arguments and parameter names are reported with their location), then built again for
each check from the check's seed and dtype: parameters are drawn from
``numpy.random.default_rng([seed, crc32(module name)])`` (gt.nn layers keep torch's default
initialisation formulas), so reruns give identical parameters.

Expressions call a module (``net(x)``) through a :class:`ModuleInstance`, which takes the
tensors the checker passes for its parameters: a gt module's parameters are swapped for
them for the duration of the call and restored afterwards (so finite differences and
``gt.vmap`` batches perturb them), a torch module is called with
``torch.func.functional_call``.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import nn
from ..engine import dtypes, limits
from ..engine.grad_mode import MODE
from ..engine.random import default_generator
from ..errors import LimitError, Location, SpecError
from .evaluate import DEFAULT_MAX_ELEMENTS
from .functions import is_torch_module, resolve_python
from .schema import CONTAINERS, ModuleCall, did_you_mean

#: the layers a spec may name: the public Module subclasses of gt.nn (an allow-list built
#: from ``gt.nn.__all__``, never a lookup of a user's string); containers of modules other
#: than Sequential are left out (they are not callable)
LAYERS: dict[str, type] = {
    name: cls for name, cls in ((name, vars(nn)[name]) for name in nn.__all__)
    if isinstance(cls, type) and issubclass(cls, nn.Module)
    and name not in ("Module", "ModuleList", "ModuleDict")}


@dataclass
class ModuleDef:
    """A module of the spec, resolved; ``build`` makes a fresh instance."""

    name: str
    location: Location
    call: ModuleCall
    classes: dict[int, type] = field(default_factory=dict, repr=False)   # id(call) -> class
    torch: bool = False
    parameter_names: tuple[str, ...] = ()     # qualified: net.0.weight
    parameter_elements: int = 0               # of all its parameters (known once built)

    def build(self, seed: int = 0, dtype: str = "float64",
              max_elements: int = DEFAULT_MAX_ELEMENTS) -> ModuleInstance:
        """A new instance with parameters drawn from ``seed``, in ``dtype``."""
        rng = np.random.default_rng([seed, zlib.crc32(self.name.encode())])
        if self.torch:
            module = self._build_torch(rng, dtype)
        else:
            with _seeded(rng, max_elements):
                module = self._construct(self.call)
            module.to(dtype=dtypes.BY_NAME[dtype])
        return ModuleInstance(self.name, module, self.torch)

    def _build_torch(self, rng: np.random.Generator, dtype: str):
        import torch
        cls = self.classes[id(self.call)]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**62)))
            module = cls(*self.call.args, **self.call.kwargs)
        return module.to({"float64": torch.float64, "float32": torch.float32}[dtype])

    def _construct(self, root: ModuleCall):
        """Build the module tree bottom-up, without recursion (children before parents)."""
        order, stack = [], [root]
        while stack:
            call = stack.pop()
            order.append(call)
            stack.extend(call.children or ())
        built: dict[int, Any] = {}
        for call in reversed(order):
            cls = self.classes[id(call)]
            try:
                if call.children is not None:
                    built[id(call)] = cls(*(built[id(c)] for c in call.children))
                else:
                    built[id(call)] = cls(*call.args, **call.kwargs)
            # any error of a layer's constructor; sys.exit() in one would end gradtool
            except (Exception, SystemExit) as exc:  # noqa: BLE001
                raise _BuildError(call, exc) from exc
        return built[id(root)]


class _BuildError(SpecError):
    """A layer's constructor failed: which layer, and why (a spec error at the layer, also
    when a check builds the module again)."""

    def __init__(self, call: ModuleCall, error: BaseException) -> None:
        self.call = call
        self.error = error
        label = call.name or call.python
        if isinstance(error, SpecError):
            message, hint = f"{label}: {error.message}", error.hint
        else:
            why = f"it called sys.exit({error.code!r})" if isinstance(error, SystemExit) \
                else f"{type(error).__name__}: {str(error).strip() or type(error).__name__}"
            message, hint = f"{label} cannot be built: {why}", None
        super().__init__(message, call.args_location or call.name_location, hint)


class ModuleInstance:
    """A built module as expressions call it: ``current`` maps parameter names (local to
    the module: ``0.weight``) to the tensors that stand for them during a call."""

    def __init__(self, name: str, module, torch: bool) -> None:
        self.name = name
        self.module = module
        self.torch = torch
        self.current: dict[str, Any] = {}
        self.slots: dict[str, list[tuple[Any, str]]] = {}
        if not torch:
            ids = {id(p): local for local, p in module.named_parameters()}
            for _, owner in module.named_modules():
                for attr, p in owner._parameters.items():
                    if p is not None and id(p) in ids:
                        self.slots.setdefault(ids[id(p)], []).append((owner, attr))

    def parameters(self) -> dict[str, Any]:
        """Qualified name (``net.0.weight``) -> parameter."""
        return {f"{self.name}.{local}": p for local, p in self.module.named_parameters()}

    def __call__(self, *args, **kwargs):
        if self.torch:
            from torch.func import functional_call
            return functional_call(self.module, self.current, args, kwargs)
        if not self.current:
            return self.module(*args, **kwargs)
        saved = []
        try:
            for local, tensor in self.current.items():
                for owner, attr in self.slots[local]:
                    saved.append((owner, attr, owner._parameters[attr]))
                    owner._parameters[attr] = tensor
            return self.module(*args, **kwargs)
        finally:
            for owner, attr, parameter in reversed(saved):
                owner._parameters[attr] = parameter


class _CappedRng(np.random.Generator):
    """A numpy Generator that refuses to draw more than ``max_elements`` numbers at once
    (layers draw their initial parameters: a Linear(10**6, 10**6) stops here)."""

    def __init__(self, rng: np.random.Generator, max_elements: int) -> None:
        super().__init__(rng.bit_generator)
        self.max_elements = max_elements

    def _refuse(self, size) -> None:
        if size is None:
            return
        n = math.prod(int(s) for s in (size if isinstance(size, tuple) else (size,)))
        if n > self.max_elements:
            raise LimitError(f"a parameter would have {n:,} elements, over the limit of "
                             f"{self.max_elements:,}", hint=limits.ELEMENTS_HINT)
        if MODE.budget is not None:
            MODE.budget.charge(n * 8, "a parameter")

    def uniform(self, low=0.0, high=1.0, size=None):
        self._refuse(size)
        return _tracked(super().uniform(low, high, size))

    def normal(self, loc=0.0, scale=1.0, size=None):
        self._refuse(size)
        return _tracked(super().normal(loc, scale, size))

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        self._refuse(size)
        return _tracked(super().standard_normal(size, dtype, out))

    def random(self, size=None, dtype=np.float64, out=None):
        self._refuse(size)
        return _tracked(super().random(size, dtype, out))


def _tracked(values):
    limits.track(values)
    return values


@contextlib.contextmanager
def _seeded(rng: np.random.Generator, max_elements: int):
    """gt.nn's initialisers draw from the default generator: point it at ``rng`` while a
    module is built, and restore it afterwards."""
    saved = default_generator.rng
    default_generator.rng = _CappedRng(rng, max_elements)
    try:
        yield
    finally:
        default_generator.rng = saved


def _count_ints(value) -> int:
    """Product of the integers in a layer's arguments: a bound on the size of the tensors
    most layers allocate (checked before building, as np.zeros/ones do not draw)."""
    total, stack = 1, [value]
    while stack:
        v = stack.pop()
        if isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, int) and not isinstance(v, bool) and v > 1:
            total *= v
    return total


def define(name: str, root: ModuleCall, location: Location, *, allow_python: bool,
           search_path: str | None, max_elements: int,
           max_memory: int = limits.DEFAULT_MAX_MEMORY) -> tuple[ModuleDef | None, list]:
    """Resolve every layer of a module and build it once; returns (definition or None,
    errors)."""
    errors: list[SpecError] = []
    mdef = ModuleDef(name, location, root)
    stack = [(root, True)]
    while stack:
        call, top = stack.pop()
        cls = _resolve(name, call, top, allow_python, search_path, errors)
        if cls is None:
            continue
        mdef.classes[id(call)] = cls
        if call.children is not None:
            stack.extend((c, False) for c in call.children)
            continue
        label = call.name or call.python
        problem = _signature_problem(cls, call)
        if problem:
            errors.append(SpecError(f"module '{name}': {label}: {problem}",
                                    call.args_location or call.name_location))
            del mdef.classes[id(call)]
            continue
        if is_torch_module(cls):
            mdef.torch = True
            continue
        if _count_ints((call.args, call.kwargs)) > max_elements:
            errors.append(LimitError(f"module '{name}': {label} would allocate more than "
                                     f"{max_elements:,} elements", call.args_location,
                                     hint="use smaller sizes, or raise the element cap"))
            del mdef.classes[id(call)]
    if errors:
        return None, errors
    try:
        with limits.memory_budget(max_memory):
            instance = mdef.build(0, "float64", max_elements)
    except _BuildError as exc:
        kind = type(exc.error) if isinstance(exc.error, SpecError) else SpecError
        return None, [kind(f"module '{name}': {exc.message}", exc.location, exc.hint)]
    except SystemExit as exc:   # a torch module's constructor calling sys.exit()
        return None, [SpecError(f"module '{name}' cannot be built: it called "
                                f"sys.exit({exc.code!r})", location)]
    except Exception as exc:  # noqa: BLE001  (a torch module's constructor)
        message = str(exc).strip() or type(exc).__name__
        return None, [SpecError(f"module '{name}' cannot be built: {type(exc).__name__}: "
                                f"{message}", location)]
    mdef.parameter_names = tuple(instance.parameters())
    mdef.parameter_elements = sum(int(np.prod(p.shape)) for p in
                                  instance.parameters().values())
    return mdef, []


def _signature_problem(cls: type, call: ModuleCall) -> str | None:
    """Why the constructor cannot take the arguments (unknown keywords first, with a
    suggestion), or None."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):     # no signature to inspect: the trial build reports it
        return None
    parameters = signature.parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    if not takes_any:
        for key in call.kwargs:
            if key not in parameters:
                return f"no argument '{key}'" + did_you_mean(key, parameters)
    try:
        signature.bind(*call.args, **call.kwargs)
    except TypeError as exc:
        return str(exc)
    return None


def _resolve(name: str, call: ModuleCall, top: bool, allow_python: bool,
             search_path: str | None, errors: list) -> type | None:
    if call.python is not None:
        if not allow_python:
            errors.append(SpecError(f"module '{name}': python modules are disabled "
                                    "(--no-python)", call.name_location,
                                    hint="python: imports and runs code; drop --no-python "
                                    "(or allow_python=False) only for trusted specs"))
            return None
        try:
            cls = resolve_python(call.python, call.name_location, search_path=search_path,
                                 kind="module")
        except SpecError as exc:
            errors.append(exc)
            return None
        if is_torch_module(cls) and not top:
            errors.append(SpecError(f"module '{name}': a torch.nn.Module cannot be a layer "
                                    "of a gradtool Sequential", call.name_location,
                                    hint="give it its own entry under modules:"))
            return None
        return cls
    if call.name in CONTAINERS:
        return LAYERS[call.name]
    cls = LAYERS.get(call.name)
    if cls is None and call.name in nn.__all__:
        errors.append(SpecError(f"module '{name}': '{call.name}' cannot be used in a spec (it "
                                "is not a callable layer)", call.name_location))
    elif cls is None:
        errors.append(SpecError(f"module '{name}': unknown layer '{call.name}'"
                                + did_you_mean(call.name, LAYERS), call.name_location,
                                hint="layers are the Module classes of gradtool.nn "
                                "(Linear, Conv2d, ReLU, ...); use python: for your own"))
    return cls
