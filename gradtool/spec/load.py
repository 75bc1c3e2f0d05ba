"""Loading spec files: YAML -> validated Spec, with every error that can be found without
running anything reported at once (``SpecErrors``), each at its file:line:col.

Sections are loaded in the order of ``schema.TOP_LEVEL`` by the loaders in
``SECTION_LOADERS`` (one per top-level key), so a new section is one entry in each table.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import limits as engine_limits
from ..engine.graph import grad
from ..engine.limits import Limits, MemoryBudget, memory_budget
from ..engine.ops import ones_like
from ..engine.tensor import Tensor
from ..errors import LimitError, Location, SpecError, SpecErrors
from .evaluate import (DEFAULT_MAX_ELEMENTS, MAX_CALL_DEPTH, MAX_EXPANDED_NODES, RESERVED,
                       Program, check_names, parse_program, run_program,
                       torch_program_errors)
from .functions import FunctionDef, build_function, is_torch_function, resolve_python
from .inputs import InputSpec, input_from_item
from .modules import ModuleDef, define
from .schema import CONFIG, FUNCTION, SPEC, TOP_LEVEL, Context, Item, did_you_mean
from .yaml_source import (MAX_FILE_BYTES, ScalarOrigin, Source, compose,
                          flow_split_errors)


@dataclass
class BuiltCheck:
    """A check ready to run: ``fn(*inputs)`` evaluates the expression with the ``wrt``
    tensors passed positionally (the other inputs are bound as constants); module
    parameters in ``wrt`` are passed the same way and stand for the module's parameters
    during the call.  ``all_inputs`` holds every input and parameter by name.  A check of
    torch objects has torch tensors throughout."""

    fn: Callable
    inputs: list[Tensor]
    input_names: list[str]
    all_inputs: dict[str, Tensor]


@dataclass
class CheckSpec:
    """One check of a spec file, validated; ``build()`` makes its inputs and function."""

    name: str
    expr: str
    inputs: dict[str, InputSpec]
    wrt: tuple[str, ...]
    eps: float = 1e-6
    atol: float = 1e-5
    rtol: float = 1e-3
    dtype: str = "float64"
    seed: int = 0
    method: str = "central"
    mode: str = "auto"
    gradgrad: bool = False
    forward_ad: bool = False
    nondet_tol: float = 0.0
    expect: str = "pass"
    skip: str | bool | None = None     # true: skipped without a reason
    tags: tuple[str, ...] = ()
    location: Location | None = None
    program: Program | None = field(default=None, repr=False)
    functions: dict[str, type] = field(default_factory=dict, repr=False)
    max_elements: int = field(default=DEFAULT_MAX_ELEMENTS, repr=False)
    modules: dict[str, ModuleDef] = field(default_factory=dict, repr=False)  # those called
    torch: bool = False         # calls torch Functions or modules: runs on torch tensors
    limits: Limits = field(default_factory=Limits)   # max_memory, max_elements, timeout

    def build(self) -> BuiltCheck:
        """Generate the inputs and the modules' parameters (same seed, same values) and bind
        the expression.  They and every tensor the expression makes count against the
        check's memory budget (``limits.max_memory``) for as long as they live."""
        budget = MemoryBudget(self.limits.max_memory) if self.limits.max_memory else None
        with memory_budget(0, budget) as active:
            if active is not None:
                self._charge(active)
            all_inputs = {
                name: spec.make(seed=self.seed, dtype=self.dtype, eps=self.eps,
                                requires_grad=name in self.wrt,
                                max_elements=self.max_elements)
                for name, spec in self.inputs.items()}
            if self.torch:
                all_inputs = {name: _to_torch(t) for name, t in all_inputs.items()}
            # the torch bridge checks in float64 whatever the inputs were: so are torch
            # modules
            module_dtype = "float64" if self.torch else self.dtype
            instances = {name: mdef.build(self.seed, module_dtype, self.max_elements)
                         for name, mdef in self.modules.items()}
        parameters = {}
        for instance in instances.values():
            for name, parameter in instance.parameters().items():
                parameter.requires_grad_(name in self.wrt)
                parameters[name] = parameter
        wrt = list(self.wrt)
        constants = {name: t for name, t in all_inputs.items() if name not in self.wrt}
        owners = {name: (instance, name[len(instance.name) + 1:])
                  for instance in instances.values() for name in instance.parameters()}
        program, functions, cap = self.program, self.functions, self.max_elements
        torch = self.torch

        def fn(*tensors):
            if len(tensors) != len(wrt):
                raise TypeError(f"check '{self.name}' takes {len(wrt)} inputs ({', '.join(wrt)})"
                                f", got {len(tensors)}")
            env = dict(constants)
            for name, tensor in zip(wrt, tensors):
                if name in owners:
                    instance, local = owners[name]
                    instance.current[local] = tensor
                else:
                    env[name] = tensor
            try:
                with memory_budget(0, budget):
                    out = run_program(program, env, functions, max_elements=cap,
                                      modules=instances, torch=torch)[0]
            finally:
                for instance in instances.values():
                    instance.current = {}
            return tuple(out) if isinstance(out, list) else out

        fn.__name__ = fn.__qualname__ = self.name
        everything = {**all_inputs, **parameters}
        built = BuiltCheck(fn, [everything[n] for n in wrt], wrt, everything)
        if self._calls_formula_functions():
            with memory_budget(0, budget):
                _dry_run(built)
        return built

    def _charge(self, budget: MemoryBudget) -> None:
        """Refuse, before building any, inputs and parameters that would not fit together
        in the memory budget."""
        total = self.planned_bytes()
        budget.charge(total, f"check '{self.name}': its inputs and parameters")

    def planned_bytes(self) -> int:
        """Bytes of the check's inputs and of the parameters of the modules it calls."""
        itemsize = 4 if self.dtype == "float32" and not self.torch else 8
        total = sum(spec.elements() * np.dtype(spec.resolved_dtype(self.dtype)).itemsize
                    for spec in self.inputs.values())
        return total + sum(mdef.parameter_elements * itemsize
                           for mdef in self.modules.values())

    def _calls_formula_functions(self) -> bool:
        return any(getattr(self.functions.get(name), "spec_definition", None) is not None
                   for name in self.program.calls)


def _to_torch(tensor: Tensor):
    """A generated input as a torch tensor (torch is imported: a user's module did)."""
    import torch
    out = torch.from_numpy(tensor.detach().numpy().copy())
    return out.requires_grad_(True) if tensor.requires_grad else out


def _dry_run(built: BuiltCheck) -> None:
    """One forward and backward pass, so that a spec Function's backward formula returning
    the wrong shape is reported when the check is built, at the formula.  Other errors of
    the backward are left to the checker, which reports them in context."""
    outputs = built.fn(*built.inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    outputs = [o for o in outputs if isinstance(o, Tensor) and o.requires_grad]
    if not outputs:
        return
    try:
        grad(outputs, built.inputs, grad_outputs=[ones_like(o) for o in outputs],
             allow_unused=True)
    except SpecError:
        raise
    except Exception:  # noqa: BLE001  (not a spec error: the checker reports it)
        return


@dataclass
class Spec:
    """A loaded spec file."""

    path: str
    functions: dict[str, type]
    checks: list[CheckSpec]
    version: int = 1
    modules: dict[str, ModuleDef] = field(default_factory=dict)


class _SpecLoader:
    """Turns validated items into a Spec, adding cross-key errors to the context."""

    def __init__(self, ctx: Context, allow_python: bool, overrides: Limits,
                 search_path: str | None) -> None:
        self.ctx = ctx
        self.allow_python = allow_python
        self.overrides = overrides
        self.search_path = search_path
        self.defaults: dict[str, Any] = {}
        self.limits = Limits().updated(overrides)       # the file's: defaults', overridden
        self.max_elements = _cap(self.limits)
        self.definitions: dict[str, FunctionDef] = {}
        self.broken: set[str] = set()      # defined, but with errors: known names all the same
        self.functions: dict[str, type] = {}
        self.checks: list[CheckSpec] = []
        self.costs: dict[str, int] = {}     # expanded size of each formula Function
        self.modules: dict[str, ModuleDef] = {}
        self.broken_modules: set[str] = set()

    def program(self, item: Item) -> Program | None:
        try:
            return parse_program(item.value, ScalarOrigin(self.ctx.source, item.node))
        except SpecErrors as exc:
            self.ctx.add(exc.errors)
        except SpecError as exc:
            self.ctx.add([exc])
        return None

    # -- sections (``version:`` needs no loader: its type admits only 1)
    def load_defaults(self, item: Item) -> None:
        self.defaults = {key: sub.plain() for key, sub in item.value.items()}
        self.limits = Limits(**self.defaults.get("limits", {})).updated(self.overrides)
        self.max_elements = _cap(self.limits)

    def check_limits(self, fields: dict) -> Limits:
        """Built-in limits < the spec's defaults < the check's own < the overrides (the
        command line), limit by limit."""
        given = dict(self.defaults.get("limits", {}))
        if "limits" in fields:
            given.update(fields["limits"].plain())
        return Limits(**given).updated(self.overrides)

    def load_functions(self, item: Item) -> None:
        self.broken.update(item.key_locations)
        for name, sub in item.value.items():
            fdef = self.function(name, sub, item.key_locations[name])
            if fdef is not None:
                self.definitions[name] = fdef
        signatures = self.signatures()
        for fdef in self.definitions.values():
            if fdef.python is None:
                self.function_names(fdef, signatures)
        self.refuse_recursion()
        self.refuse_blowup()
        for name, fdef in self.definitions.items():
            if fdef.python is None and name not in self.functions:
                self.functions[name] = build_function(fdef, self.functions, self.max_elements)
        # the registry is shared with the built classes: reorder it in place
        ordered = {name: self.functions[name] for name in item.key_locations
                   if name in self.functions}
        self.functions.clear()
        self.functions.update(ordered)
        self.broken.difference_update(self.functions)

    def signatures(self) -> dict[str, tuple[str, ...] | None]:
        """Argument names of every function (None: unknown, e.g. Python or broken ones)."""
        known = dict.fromkeys(self.broken)
        known.update((name, fdef.signature) for name, fdef in self.definitions.items())
        return known

    def load_modules(self, item: Item) -> None:
        self.broken_modules.update(item.key_locations)
        for name, sub in item.value.items():
            where = item.key_locations[name]
            if name in self.functions or name in self.broken:
                self.ctx.error(f"module '{name}' has the name of a function", where,
                               hint="functions and modules share one namespace")
                continue
            if name in RESERVED:
                self.ctx.error(f"'{name}' is reserved and cannot be a module name", where)
                continue
            mdef, errors = define(name, sub.value, where, allow_python=self.allow_python,
                                  search_path=self.search_path,
                                  max_elements=self.max_elements,
                                  max_memory=self.limits.max_memory or 0)
            self.ctx.add(errors)
            if mdef is not None:
                self.modules[name] = mdef
        self.broken_modules.difference_update(self.modules)

    def callables(self) -> dict[str, tuple[str, ...] | None]:
        """signatures() plus the modules (whose arguments are not known)."""
        known = self.signatures()
        known.update((name, None) for name in self.modules)
        known.update((name, None) for name in self.broken_modules)
        return known

    def function(self, name: str, item: Item, location: Location) -> FunctionDef | None:
        fields, where, ctx = item.value, item.key_locations, self.ctx
        for key, message in FUNCTION.broken_rules(fields):     # python: or formulas
            ctx.error(message.format(name=name, key=key), where.get(key, item.location))
        if "python" in fields:
            ref = fields["python"]
            if not self.allow_python:
                ctx.error(f"function '{name}': python functions are disabled "
                          "(--no-python)", ref.location,
                          hint="python: imports and runs code; drop --no-python (or "
                          "allow_python=False) only for trusted specs")
                return None
            try:
                self.functions[name] = resolve_python(ref.value, ref.location,
                                                      search_path=self.search_path)
            except SpecError as exc:
                ctx.add([exc])
                return None
            return FunctionDef(name, location, python=ref.value)
        if not item.complete or any(k not in fields for k in ("args", "forward", "backward")):
            return None
        args = tuple(a.value for a in fields["args"].value)
        valid_args = self.function_args(name, fields["args"])
        ok = len(valid_args) == len(args)
        nondiff = set()
        for arg in fields.get("nondiff", Item([], item.location, item.node)).value:
            if arg.value not in args:
                ctx.error(f"function '{name}': nondiff names unknown arg '{arg.value}'"
                          + did_you_mean(arg.value, args), arg.location)
                ok = False
            nondiff.add(arg.value)
        backward = fields["backward"]
        for arg in backward.value:
            if arg not in args:
                ctx.error(f"function '{name}': backward formula for unknown arg '{arg}'"
                          + did_you_mean(arg, args), backward.key_locations[arg])
                ok = False
            elif arg in nondiff:
                ctx.error(f"function '{name}': '{arg}' is nondiff, so it cannot have a "
                          "backward formula", backward.key_locations[arg])
                ok = False
        for arg in valid_args:
            if arg not in backward.value and arg not in nondiff:
                ctx.error(f"function '{name}': no backward formula for arg '{arg}'",
                          where["backward"], hint=f"add '{arg}: <formula>' under backward, "
                          f"or list '{arg}' in nondiff")
                ok = False
        forward = self.program(fields["forward"])
        formulas = {arg: self.program(f) for arg, f in backward.value.items()}
        jvp = self.program(fields["jvp"]) if "jvp" in fields else None
        if forward is not None and type(forward.result).__name__ == "Tuple":
            ctx.error(f"function '{name}': forward returns a tuple; Functions with several "
                      "outputs are not supported", forward.result_location())
            ok = False
        if not ok or forward is None or any(f is None for f in formulas.values()) or \
                ("jvp" in fields and jvp is None):
            return None
        return FunctionDef(name, location, args, forward, formulas, jvp, frozenset(nondiff))

    def function_args(self, name: str, item: Item) -> list[str]:
        """The valid argument names (errors for the others)."""
        valid = []
        seen: set[str] = set()
        names = [a.value for a in item.value]
        for arg in item.value:
            problem = None
            if arg.value in seen:
                problem = f"argument '{arg.value}' is listed twice"
            elif arg.value in RESERVED:
                problem = f"'{arg.value}' is reserved and cannot be an argument name"
            elif arg.value.endswith("_dot") and arg.value[:-4] in names:
                problem = f"'{arg.value}' is reserved for the tangent of '{arg.value[:-4]}'"
            if problem:
                self.ctx.error(f"function '{name}': {problem}", arg.location)
            else:
                valid.append(arg.value)
            seen.add(arg.value)
        return valid

    def function_names(self, fdef: FunctionDef, signatures) -> None:
        args = set(fdef.args)
        assigned = set(fdef.forward.assigned)
        self.ctx.add(check_names(fdef.forward, args, signatures, what="argument"))
        for program in fdef.backward.values():
            self.ctx.add(check_names(program, args | assigned | {"out", "grad"}, signatures,
                                     what="argument"))
        if fdef.jvp is not None:
            dots = {f"{a}_dot" for a in fdef.args if a not in fdef.nondiff}
            self.ctx.add(check_names(fdef.jvp, args | assigned | dots | {"out"}, signatures,
                                     what="argument"))

    def refuse_recursion(self) -> None:
        """Functions may call each other, but not in a cycle."""
        calls = {name: sorted(fdef.calls() & set(self.definitions))
                 for name, fdef in self.definitions.items()}
        reported: set[str] = set()
        for start in calls:
            stack = [(start, [start])]
            while stack:
                current, path = stack.pop()
                for callee in calls.get(current, ()):
                    if callee == start:
                        if start not in reported:
                            cycle = " -> ".join(path + [start])
                            self.ctx.error(f"function '{start}' calls itself ({cycle})",
                                           self.definitions[start].location)
                            reported.update(path)
                        stack.clear()
                        break
                    if callee not in path:
                        stack.append((callee, path + [callee]))
        for name in reported:
            self.definitions.pop(name, None)
            self.broken.add(name)

    def expanded_size(self, programs) -> int:
        """Syntax-tree nodes evaluated by ``programs``, spec Function calls expanded
        (capped just above the limit); needs ``self.costs`` of the functions called."""
        total = 0
        for program in programs:
            if program is None:
                continue
            total += program.size + sum(count * self.costs.get(name, 1)
                                        for name, count in program.calls.items())
        return min(total, MAX_EXPANDED_NODES + 1)

    def refuse_blowup(self) -> None:
        """Refuse Functions whose expansion is huge (each calling the next twice, ...) or
        whose calls nest deeper than MAX_CALL_DEPTH (Python's stack would run out)."""
        pending = dict(self.definitions)
        depths: dict[str, int] = {}         # longest chain of Functions calling Functions
        while pending:
            ready = [name for name, fdef in pending.items()
                     if all(c in self.costs or c not in self.definitions or c == name
                            for c in fdef.calls())]
            if not ready:
                break
            for name in ready:
                fdef = pending.pop(name)
                self.costs[name] = self.expanded_size(
                    [fdef.forward, fdef.jvp, *fdef.backward.values()])
                depths[name] = 1 + max((depths.get(c, 0) for c in fdef.calls()
                                        if c != name), default=0)
        blown: set[str] = set()
        for name, cost in list(self.costs.items()):
            if cost > MAX_EXPANDED_NODES:
                blown.add(name)
                del self.costs[name]
                if blown & self.definitions[name].calls():
                    self.definitions.pop(name)
                    self.broken.add(name)
                    continue            # reported at the function that crossed the limit
                self.ctx.errors.append(LimitError(
                    f"function '{name}' expands to more than {MAX_EXPANDED_NODES:,} "
                    "expression nodes (functions calling functions)",
                    self.definitions[name].location))
                self.definitions.pop(name)
                self.broken.add(name)
        depths = {n: d for n, d in depths.items() if n in self.definitions}
        for name, depth in depths.items():
            calls_deep = [c for c in self.definitions[name].calls()
                          if depths.get(c, 0) > MAX_CALL_DEPTH]
            if depth > MAX_CALL_DEPTH and not calls_deep:   # reported once, where it crosses
                self.ctx.errors.append(LimitError(
                    f"function '{name}' nests Function calls {depth} levels deep (the "
                    f"limit is {MAX_CALL_DEPTH})", self.definitions[name].location))
        for name in [n for n, d in depths.items() if d > MAX_CALL_DEPTH]:
            self.definitions.pop(name)
            self.broken.add(name)
            self.costs.pop(name, None)

    def load_checks(self, item: Item) -> None:
        first_seen: dict[str, Location] = {}
        for check in item.value:
            if not isinstance(check.value, dict):
                continue
            name = check.value.get("name")
            if name is not None:
                if name.value in first_seen:
                    first = first_seen[name.value]
                    self.ctx.error(f"duplicate check name '{name.value}' (first used at line "
                                   f"{first.line})", name.location)
                else:
                    first_seen[name.value] = name.location
            spec = self.check(check)
            if spec is not None:
                self.checks.append(spec)

    def check(self, item: Item) -> CheckSpec | None:
        fields, ctx = item.value, self.ctx
        program = self.program(fields["expr"]) if "expr" in fields else None
        inputs: dict[str, InputSpec] = {}
        ok = item.complete and program is not None
        inputs_ok = "inputs" in fields and fields["inputs"].complete
        if "inputs" in fields:
            input_items = fields["inputs"]
            for name, sub in input_items.value.items():
                if name in RESERVED:
                    ctx.error(f"'{name}' is reserved and cannot be an input name",
                              input_items.key_locations[name])
                    ok = inputs_ok = False
                    continue
                spec = input_from_item(name, sub, ctx)
                if spec is None or not self.input_ok(spec, _cap(self.check_limits(fields))):
                    ok = inputs_ok = False
                    continue
                inputs[name] = spec
        config = {key: spec.default for key, spec in CONFIG.items()}
        config.update(self.defaults)
        config.update({key: fields[key].plain() for key in CONFIG if key in fields})
        config["limits"] = self.check_limits(fields)
        config["tags"] = tuple(dict.fromkeys([*self.defaults.get("tags", ()),
                                              *(fields["tags"].plain() if "tags" in fields
                                                else ())]))
        if "inputs" in fields:
            for name, where in fields["inputs"].key_locations.items():
                if name in self.modules or name in self.broken_modules:
                    ctx.error(f"input '{name}' has the name of a module", where)
                    ok = inputs_ok = False
        if program is not None and "inputs" in fields:
            ctx.add(check_names(program, set(fields["inputs"].key_locations),
                                self.callables()))
        used = {name: self.modules[name] for name in (program.calls if program else ())
                if name in self.modules}
        torch = self.torch_check(program, used, config, fields, item) if program else False
        if used and not torch and config["dtype"] == "complex128":
            self.ctx.error("modules are built in float64 or float32, not complex128",
                           fields["dtype"].location if "dtype" in fields else item.location)
        if program is not None and \
                self.expanded_size([program]) > MAX_EXPANDED_NODES:
            ctx.errors.append(LimitError(f"expression expands to more than "
                                         f"{MAX_EXPANDED_NODES:,} nodes (functions calling "
                                         "functions)", fields["expr"].location))
            ok = False
        broken = any(name in self.broken_modules for name in (program.calls if program
                                                               else ()))
        wrt = self.wrt(fields, inputs, config["dtype"], inputs_ok, used, broken)
        if wrt is None:
            return None
        if config["forward_ad"] and program is not None:
            self.require_jvp(program, fields["forward_ad"].location if "forward_ad" in fields
                             else item.location)
        if not ok:
            return None
        spec = CheckSpec(
            name=fields["name"].value, expr=fields["expr"].value, inputs=inputs, wrt=wrt,
            **config, expect=fields["expect"].value if "expect" in fields else "pass",
            skip=fields["skip"].value if "skip" in fields else None,
            location=item.location, program=program, functions=self.functions,
            max_elements=_cap(config["limits"]), modules=used, torch=torch)
        return spec if self.fits(spec, fields, item) else None

    def fits(self, spec: CheckSpec, fields: dict, item: Item) -> bool:
        """Refuse, when loading, a check whose inputs and module parameters alone would
        take more than its memory budget."""
        budget = spec.limits.max_memory
        planned = spec.planned_bytes()
        if not budget or planned <= budget:
            return True
        where = fields["inputs"].location if "inputs" in fields else item.location
        self.ctx.errors.append(LimitError(
            f"check '{spec.name}': its inputs and module parameters take "
            f"{engine_limits.format_bytes(planned)}, over the memory budget of "
            f"{engine_limits.format_bytes(budget)}", where, hint=engine_limits.MEMORY_HINT))
        return False

    def torch_check(self, program: Program, used: dict[str, ModuleDef], config: dict,
                    fields: dict, item: Item) -> bool:
        """True if the check calls torch Functions or modules; then its expression must run
        on torch tensors, and the checker's torch bridge has no second order or forward
        mode (errors otherwise)."""
        torch_names = {name for name in program.calls
                       if is_torch_function(self.functions.get(name))
                       or (name in used and used[name].torch)}
        if not torch_names:
            return False
        self.ctx.add(torch_program_errors(program, torch_names))
        for key, bad, what in (("gradgrad", True, "second-order checks (gradgrad: true) are"),
                               ("forward_ad", True, "forward-mode checks (forward_ad: true) "
                                "are"),
                               ("method", "complex", "method: complex is"),
                               ("dtype", "complex128", "dtype: complex128 is")):
            if config[key] == bad:
                where = fields[key].location if key in fields else item.location
                self.ctx.error(f"{what} not available for torch Functions and modules", where,
                               hint="use torch.autograd.gradgradcheck or gradcheck("
                               "check_forward_ad=True)" if isinstance(bad, bool) else None)
        return True

    def input_ok(self, spec: InputSpec, cap: int) -> bool:
        n = spec.elements()
        if n > cap:
            self.ctx.errors.append(LimitError(
                f"input '{spec.name}' would have {n:,} elements, over the limit of "
                f"{cap:,}", spec.location, hint=engine_limits.ELEMENTS_HINT))
            return False
        return True

    def wrt(self, fields: dict, inputs: dict[str, InputSpec], dtype: str, inputs_ok: bool,
            used: dict[str, ModuleDef], calls_broken: bool):
        """The names to differentiate (inputs and parameters), or None after errors;
        ``calls_broken``: the expression calls a module with errors (already reported)."""
        if calls_broken:
            return None
        parameters = [p for mdef in used.values() for p in mdef.parameter_names]
        if "wrt" not in fields:
            wrt = tuple(n for n, s in inputs.items() if s.wants_grad(dtype)) + \
                tuple(parameters)
            if not wrt and inputs_ok:
                self.ctx.error("nothing to check: no input requires grad",
                               fields["inputs"].location,
                               hint="give a floating input, or remove requires_grad: false")
                return None
            return wrt
        ok = True
        names = []
        seen: dict[str, Location] = {}
        for item in fields["wrt"].value:
            if item.value in seen:      # the same entry twice: a typo for another name?
                first = seen[item.value]
                self.ctx.error(f"wrt lists '{item.value}' twice (first at line {first.line}, "
                               f"column {first.column})", item.location)
                ok = False
                continue
            seen[item.value] = item.location
            spec = inputs.get(item.value)
            if spec is None and ("." in item.value or item.value in self.modules or
                                 (item.value == "params" and "params" not in inputs)):
                found = self.wrt_parameters(item, used, parameters)
                ok = ok and found is not None
                names.extend(found or ())
                continue
            if spec is None:
                if "inputs" in fields and item.value not in fields["inputs"].key_locations:
                    self.ctx.error(f"wrt names unknown input '{item.value}'"
                                   + did_you_mean(item.value, inputs), item.location)
                ok = False
            elif not spec.differentiable(dtype):
                self.ctx.error(f"wrt input '{item.value}' is {spec.resolved_dtype(dtype)}; "
                               "only floating and complex inputs can be differentiated",
                               item.location)
                ok = False
            elif spec.requires_grad is False:
                self.ctx.error(f"wrt input '{item.value}' has requires_grad: false",
                               item.location)
                ok = False
            names.append(item.value)
        return tuple(dict.fromkeys(names)) if ok else None

    def wrt_parameters(self, item: Item, used: dict[str, ModuleDef],
                       parameters: list[str]) -> list[str] | None:
        """The parameters a wrt entry names: ``params`` (all of the modules called), a
        module name (its parameters) or one parameter (``net.0.weight``)."""
        name = item.value
        if name == "params":
            if not used:
                self.ctx.error("wrt 'params' means the parameters of the modules the "
                               "expression calls, and it calls none", item.location)
                return None
            return parameters
        module = name.split(".")[0]
        if module not in self.modules:
            if module not in self.broken_modules:
                self.ctx.error(f"wrt names unknown module '{module}'"
                               + did_you_mean(module, self.modules), item.location)
            return None
        if module not in used:
            self.ctx.error(f"wrt names module '{module}', which the expression does not "
                           "call", item.location)
            return None
        owned = used[module].parameter_names
        below = [p for p in owned if p.startswith(name + ".")]     # net, net.0: a submodule
        if name == module and not owned:
            self.ctx.error(f"module '{module}' has no parameters", item.location)
            return None
        if below:
            return below
        if name not in owned:
            self.ctx.error(f"module '{module}' has no parameter '{name[len(module) + 1:]}'"
                           + did_you_mean(name, owned), item.location,
                           hint="its parameters: " + (", ".join(owned) or "none"))
            return None
        return [name]

    def require_jvp(self, program: Program, location: Location) -> None:
        """forward_ad needs a jvp in every formula Function the expression reaches."""
        pending, seen = list(program.calls), set()
        while pending:
            name = pending.pop()
            fdef = self.definitions.get(name)
            if fdef is None or name in seen:
                continue
            seen.add(name)
            if fdef.python is None and fdef.jvp is None:
                self.ctx.error(f"forward_ad: true needs a jvp formula in function '{name}'",
                               location)
            pending.extend(fdef.calls())


#: one loader per top-level key of schema.TOP_LEVEL, run in that order
SECTION_LOADERS: dict[str, Callable[[_SpecLoader, Item], None]] = {
    "version": lambda loader, item: None,
    "defaults": _SpecLoader.load_defaults,
    "functions": _SpecLoader.load_functions,
    "modules": _SpecLoader.load_modules,
    "checks": _SpecLoader.load_checks,
}


def _cap(limits: Limits) -> int:
    """The element cap as a number to compare with (0, no cap, is the largest integer)."""
    return limits.max_elements or engine_limits.NO_CAP


def _overrides(limits: Limits | None, max_elements: int | None) -> Limits:
    overrides = limits or Limits(None, None, None)
    if max_elements is not None:
        overrides = overrides.updated(Limits(None, max_elements, None))
    return overrides


def loads(text: str, filename: str = "<string>", *, allow_python: bool = True,
          max_elements: int | None = None, search_path: str | None = None,
          limits: Limits | None = None) -> Spec:
    """Load a spec from its text.  Raises SpecError (SpecErrors when there are several)
    with every error found without running anything.  ``limits`` (its non-None fields) and
    ``max_elements`` win over the spec's own limits (as the command line's do)."""
    root = compose(text, filename)
    if root is None or (root.tag.endswith(":null") and not root.value):
        raise SpecError("empty spec file: expected a mapping with a 'checks:' list",
                        Location(filename, 1, 1))
    split = flow_split_errors(root, filename)
    if split:       # the other errors would be the pieces of the cut formulas
        raise split[0] if len(split) == 1 else SpecErrors(split)
    ctx = Context(Source(filename, text))
    top = SPEC.convert(root, ctx)
    loader = _SpecLoader(ctx, allow_python, _overrides(limits, max_elements), search_path)
    if top is not None:
        for key in TOP_LEVEL:
            if key in top.value:
                SECTION_LOADERS[key](loader, top.value[key])
    if ctx.errors:
        errors = sorted(ctx.errors, key=_position)
        if len(errors) > MAX_ERRORS:
            more = len(errors) - MAX_ERRORS
            errors = errors[:MAX_ERRORS] + [SpecError(
                f"... and {more:,} more error{'s' if more != 1 else ''} in this file",
                Location(filename), hint="fix the first ones: later errors often follow "
                "from them")]
        raise errors[0] if len(errors) == 1 else SpecErrors(errors)
    return Spec(filename, dict(loader.functions), loader.checks,
                top.value["version"].value if "version" in top.value else 1,
                dict(loader.modules))


#: errors reported per spec file; the rest are counted ("... and N more")
MAX_ERRORS = 50


def _file_kind(mode: int) -> str:
    """What a path that is not a regular file is, in words."""
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a file"


def _position(error: SpecError) -> tuple:
    where = error.location
    if where is None:
        return (0, 0)
    return (where.line or 0, where.column or 0)


def load(path: str | os.PathLike, *, allow_python: bool = True,
         max_elements: int | None = None, limits: Limits | None = None) -> Spec:
    """Load a spec file.  ``python:`` references may import modules next to the file.
    The file size is checked before reading."""
    name = str(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):     # a FIFO would block, /dev/zero never end
            raise SpecError(f"not a regular file ({_file_kind(info.st_mode)}): a spec is a "
                            "YAML file", Location(name))
        size = info.st_size
        if size > MAX_FILE_BYTES:
            raise LimitError(f"spec file too large ({size:,} bytes; the limit is "
                             f"{MAX_FILE_BYTES:,})", Location(name))
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read spec file: {exc.strerror or exc}", Location(name)) \
            from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"spec file is not UTF-8 text ({exc.reason} at byte {exc.start})",
                        Location(name)) from None
    return loads(text, name, allow_python=allow_python, max_elements=max_elements,
                 search_path=str(Path(path).resolve().parent), limits=limits)
