"""The spec language: YAML files describing expressions, custom autograd Functions and the
gradient checks to run on them (see docs/spec.md).

Data flows one way: ``yaml_source`` (YAML nodes with positions and limits) -> ``schema``
(the key table: validation and JSON Schema) -> ``load`` (Spec, CheckSpec) using
``evaluate`` (the safe expression language), ``inputs``, ``functions`` and ``modules``.
"""

from ..errors import SpecError, SpecErrors
from .evaluate import (CONSTANTS, DEFAULT_MAX_ELEMENTS, RESERVED, Program, evaluate_program,
                       parse_program, run_program)
from .functions import FunctionDef, build_function, resolve_python
from .inputs import InputSpec, parse_input_value
from .load import BuiltCheck, CheckSpec, Spec, load, loads
from .modules import LAYERS, ModuleDef, ModuleInstance
from .schema import json_schema

__all__ = [
    "BuiltCheck", "CONSTANTS", "CheckSpec", "DEFAULT_MAX_ELEMENTS", "FunctionDef", "InputSpec",
    "LAYERS", "ModuleDef", "ModuleInstance", "Program", "RESERVED", "Spec", "SpecError",
    "SpecErrors", "build_function", "evaluate_program", "json_schema", "load", "loads",
    "parse_input_value", "parse_program", "resolve_python", "run_program",
]
