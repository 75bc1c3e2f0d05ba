"""The safe expression evaluator of the spec language.

Expressions are parsed with :mod:`ast` and checked against an allow-list (a table from node
type to checker) *before* anything runs: every construct not in the table (lambdas,
comprehensions, f-strings, imports, dunder attributes, ...) is refused with its location.
Evaluation walks the same tree with a second table from node type to handler.  There is no
``eval``/``exec``/``compile``, and no ``getattr`` with a user-given name: functions come from
the table ``gradtool.spec.allowed.FUNCTIONS`` and the spec's own Functions, tensor methods
from a dict built once from the table ``gradtool.spec.allowed.TENSOR_METHODS``.

Limits (each tested in ``tests/test_security.py``): nesting depth, source size, integer
size, literal exponent size, and the number of elements any tensor may have (checked for
factory calls here and for every primitive by the engine's element cap).
"""

from __future__ import annotations

import ast
import inspect
import math
import operator
import re
import warnings
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine import dtypes, limits, primitive
from ..engine.limits import element_limit
from ..engine.tensor import Tensor
from ..errors import LimitError, Location, SpecError, SpecErrors
from . import allowed
from .schema import MAX_INT, did_you_mean
from .yaml_source import ScalarOrigin, TextOrigin

#: deepest expression nesting (ast depth, brackets)
MAX_DEPTH = 100
#: largest expression source, in characters
MAX_SOURCE = 100_000
#: largest |exponent| of ``**`` with a literal exponent, and of integer ``**`` integer
MAX_EXPONENT = 1024
#: longest string literal (strings are only allowed as call arguments)
MAX_STRING = 64
#: default cap on the number of elements of any tensor an expression creates
DEFAULT_MAX_ELEMENTS = limits.DEFAULT_MAX_ELEMENTS
#: largest expression once spec Function calls are expanded (functions calling functions
#: twice, 50 deep, would otherwise run 2**50 formulas)
MAX_EXPANDED_NODES = 1_000_000
#: Functions calling Functions calling ...: at most this many levels
MAX_CALL_DEPTH = 32

#: names every expression can read (besides its inputs)
CONSTANTS: dict[str, Any] = {"pi": math.pi, "e": math.e, "inf": math.inf, "nan": math.nan,
                             **dtypes.BY_NAME}
#: names that may not be used for inputs, args or assignments
RESERVED = frozenset({"grad", "out"}) | frozenset(CONSTANTS)


#: functions an expression may call (besides the spec's Functions and modules)
BUILTINS: dict[str, Callable] = allowed.FUNCTIONS
#: tensor methods and attributes an expression may use
TENSOR_METHODS = allowed.TENSOR_METHODS


def _is_property(name: str) -> bool:
    return isinstance(inspect.getattr_static(Tensor, name, None), property)


#: tensor attributes read without a call (``x.T``), name -> getter
PROPERTIES: dict[str, Callable] = {
    name: inspect.getattr_static(Tensor, name).fget
    for name in sorted(TENSOR_METHODS) if _is_property(name)}
#: tensor methods (``x.sum(0)``), name -> unbound function; built from the allow-list only
METHODS: dict[str, Callable] = {
    name: inspect.getattr_static(Tensor, name)
    for name in sorted(TENSOR_METHODS)
    if not _is_property(name) and callable(inspect.getattr_static(Tensor, name, None))}

#: binary operators: ast type -> (symbol, function)
BINOPS: dict[type, tuple[str, Callable]] = {
    ast.Add: ("+", operator.add), ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul), ast.Div: ("/", operator.truediv),
    ast.FloorDiv: ("//", operator.floordiv), ast.Mod: ("%", operator.mod),
    ast.Pow: ("**", operator.pow), ast.MatMult: ("@", operator.matmul),
    ast.BitAnd: ("&", operator.and_), ast.BitOr: ("|", operator.or_),
}
UNARYOPS: dict[type, tuple[str, Callable]] = {
    ast.USub: ("-", operator.neg), ast.UAdd: ("+", operator.pos),
    ast.Invert: ("~", operator.invert),
}
COMPAREOPS: dict[type, tuple[str, Callable]] = {
    ast.Eq: ("==", operator.eq), ast.NotEq: ("!=", operator.ne), ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le), ast.Gt: (">", operator.gt), ast.GtE: (">=", operator.ge),
}

#: what users are told when they write something the language does not have
FORBIDDEN: dict[type, str] = {
    ast.Lambda: "lambda expressions are not allowed",
    ast.ListComp: "comprehensions are not allowed", ast.SetComp: "comprehensions are not "
    "allowed", ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.JoinedStr: "f-strings are not allowed", ast.FormattedValue: "f-strings are not allowed",
    ast.Starred: "starred arguments (*args) are not allowed",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.IfExp: "conditional expressions are not allowed (use where(cond, a, b))",
    ast.BoolOp: "'and'/'or' are not allowed (use logical_and / logical_or, or & and |)",
    ast.Dict: "dict literals are not allowed", ast.Set: "set literals are not allowed",
    ast.Await: "await is not allowed", ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
    ast.Import: "import statements are not allowed",
    ast.ImportFrom: "import statements are not allowed",
    ast.FunctionDef: "function definitions are not allowed",
    ast.AsyncFunctionDef: "function definitions are not allowed",
    ast.ClassDef: "class definitions are not allowed",
    ast.For: "loops are not allowed", ast.While: "loops are not allowed",
    ast.If: "if statements are not allowed (use where(cond, a, b))",
    ast.With: "with statements are not allowed", ast.Try: "try statements are not allowed",
    ast.Delete: "del is not allowed", ast.Global: "global is not allowed",
    ast.Nonlocal: "nonlocal is not allowed", ast.Return: "return is not allowed (the last "
    "line is the output)", ast.Raise: "raise is not allowed", ast.Assert: "assert is not "
    "allowed", ast.AnnAssign: "annotated assignments are not allowed",
}


def _kind(value) -> str:
    if isinstance(value, Tensor):
        return f"a tensor of shape {list(value.shape)}"
    if isinstance(value, bool):
        return "a boolean"
    return {int: "an integer", float: "a number", complex: "a complex number",
            tuple: "a tuple", list: "a list", str: "a string"}.get(
        type(value), type(value).__name__)


# ---- programs -------------------------------------------------------------------------------
@dataclass
class Program:
    """A parsed and allow-list-validated expression or program (assignments, then the
    output expression), with the positions of its nodes in the user's file."""

    source: str
    origin: Any
    body: list[ast.stmt]
    result: ast.expr
    assigned: tuple[str, ...]
    calls: dict[str, int]       # called function name -> number of call sites
    size: int = 0               # number of syntax-tree nodes
    _line_starts: list[int] = field(default_factory=list, repr=False)

    def offset(self, lineno: int, col_offset: int) -> int:
        """Character offset in ``source`` of an ast position (ast columns are UTF-8 bytes)."""
        if not self._line_starts:
            starts = [0]
            for line in self.source.split("\n"):
                starts.append(starts[-1] + len(line) + 1)
            self._line_starts = starts
        start = self._line_starts[lineno - 1]
        line = self.source[start:self._line_starts[lineno] - 1] \
            if lineno < len(self._line_starts) else self.source[start:]
        return start + len(line.encode("utf-8")[:col_offset].decode("utf-8", "ignore"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (self.offset(node.lineno, node.col_offset),
                self.offset(node.end_lineno, node.end_col_offset))

    def location(self, node: ast.AST) -> Location:
        """Where ``node`` is in the file; for operators, the operator token; for calls, the
        function or method name."""
        start, end = self.span(node)
        if isinstance(node, ast.BinOp) and type(node.op) in BINOPS:
            start, end = self._token_between(node.left, node.right, BINOPS[type(node.op)][0])
        elif isinstance(node, ast.Compare) and type(node.ops[0]) in COMPAREOPS:
            start, end = self._token_between(node.left, node.comparators[0],
                                             COMPAREOPS[type(node.ops[0])][0])
        elif isinstance(node, ast.Call):
            return self.location(node.func)
        elif isinstance(node, ast.Attribute):
            end = self.span(node)[1]
            start = end - len(node.attr)
        return self.origin.location(start, end)

    def result_location(self) -> Location:
        """Where the output expression (the last line) is, as a whole."""
        return self.origin.location(*self.span(self.result))

    def _token_between(self, left: ast.AST, right: ast.AST, symbol: str) -> tuple[int, int]:
        start = self.span(left)[1]
        stop = self.span(right)[0]
        found = self.source.find(symbol, start, stop)
        if found < 0:
            return start, stop
        return found, found + len(symbol)


def parse_program(source: str, origin: ScalarOrigin | TextOrigin | None = None, *,
                  filename: str = "<expr>") -> Program:
    """Parse and validate ``source`` (nothing runs).  ``origin`` maps offsets in ``source``
    to file locations (default: the text itself, named ``filename``).  Raises SpecError
    (SpecErrors for several) naming every construct outside the language."""
    if origin is None:
        origin = TextOrigin(filename, source)
    if len(source) > MAX_SOURCE:
        raise LimitError(f"expression too long ({len(source):,} characters; the limit is "
                         f"{MAX_SOURCE:,})", origin.location(0))
    if not source.strip():
        raise SpecError("empty expression", origin.location(0))
    bad = next((i for i, ch in enumerate(source)
                if "\ud800" <= ch <= "\udfff" or ch == "\x00"), None)
    if bad is not None:       # undecodable bytes of a command line, a NUL: no parse error
        raise SpecError(f"invalid character U+{ord(source[bad]):04X} in the expression "
                        "(not valid text)", origin.location(bad))
    _check_brackets(source, origin)
    program = Program(source, origin, [], ast.Constant(0), (), {})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # SyntaxWarnings about the user's text
            tree = ast.parse(source, mode="exec")
    except SyntaxError as exc:
        lineno = min(exc.lineno or 1, source.count("\n") + 1)
        offset = program.offset(lineno, 0) + max((exc.offset or 1) - 1, 0)
        message = exc.msg if exc.msg.startswith("invalid syntax") else \
            f"invalid syntax: {exc.msg}"
        raise SpecError(message, origin.location(offset)) from None
    except ValueError as exc:                    # e.g. null bytes
        raise SpecError(f"invalid syntax: {exc}", origin.location(0)) from None
    except (RecursionError, MemoryError):
        raise LimitError(f"expression nested too deeply (the limit is {MAX_DEPTH} levels) or "
                         "an operator chain too long for Python's parser (about 2,000 "
                         "terms)", origin.location(0),
                         hint="split the chain with intermediate names: s1 = a + b + ...; "
                         "s2 = ...; s1 + s2") from None
    if not tree.body:
        raise SpecError("empty expression (only comments)", origin.location(0))
    validator = _Validator(program)
    validator.statements(tree.body)
    if validator.errors:
        raise validator.errors[0] if len(validator.errors) == 1 else \
            SpecErrors(validator.errors)
    program.body = tree.body[:-1]
    program.result = tree.body[-1].value
    program.assigned = tuple(dict.fromkeys(validator.assigned))
    program.calls = validator.calls
    program.size = validator.size
    return program


def _check_brackets(source: str, origin) -> None:
    """Refuse absurd bracket nesting before Python's parser sees it."""
    depth = 0
    for i, ch in enumerate(source):
        if ch in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                raise LimitError(f"expression nested more than {MAX_DEPTH} levels deep",
                                 origin.location(i))
        elif ch in ")]}":
            depth -= 1


class _Validator:
    """Walks a parsed program with an explicit stack, refusing anything not allowed."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.errors: list[SpecError] = []
        self.assigned: list[str] = []
        self.calls: dict[str, int] = {}
        self.size = 0

    def error(self, message: str, node: ast.AST, cls=SpecError, hint: str | None = None):
        self.errors.append(cls(message, self.program.location(node), hint))

    def statements(self, body: list[ast.stmt]) -> None:
        for i, stmt in enumerate(body):
            last = i == len(body) - 1
            if isinstance(stmt, ast.Expr):
                if not last:
                    self.error("only the last line may be a bare expression (the output); "
                               "assign intermediate values to names", stmt)
                self.expression(stmt.value)
            elif isinstance(stmt, ast.Assign):
                if len(stmt.targets) != 1:
                    self.error("chained assignment (a = b = ...) is not allowed", stmt)
                for target in stmt.targets:
                    self.target(target)
                self.expression(stmt.value)
            elif isinstance(stmt, ast.AugAssign):
                if type(stmt.op) not in BINOPS:
                    self.error("this operator is not allowed", stmt)
                self.target(stmt.target, augmented=True)
                self.expression(stmt.value)
            else:
                self.error(FORBIDDEN.get(type(stmt), f"{type(stmt).__name__} statements are "
                                         "not allowed"), stmt)
            if last and not isinstance(stmt, ast.Expr):
                self.error("a program must end with its output expression", stmt)

    def target(self, node: ast.AST, augmented: bool = False) -> None:
        if isinstance(node, ast.Name):
            if node.id.startswith("__"):
                self.error(f"name '{node.id}' is not allowed (names may not start with '__')",
                           node)
            self.assigned.append(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)) and not augmented:
            for element in node.elts:
                if isinstance(element, ast.Name):
                    self.target(element)
                else:
                    self.error("only names can be unpacked into (a, b = ...)", element)
        else:
            self.error("only assignments to names are allowed (name = expression)", node)

    def expression(self, root: ast.expr) -> None:
        stack: list[tuple[ast.AST, int, str]] = [(root, 1, "value")]
        while stack:
            node, depth, role = stack.pop()
            self.size += 1
            if depth > MAX_DEPTH:
                self.error(f"expression nested more than {MAX_DEPTH} levels deep", node,
                           LimitError)
                return
            check = _CHECKS.get(type(node))
            if check is None:
                self.error(FORBIDDEN.get(type(node), f"{type(node).__name__} is not allowed "
                                         "in expressions"), node)
                continue
            for child, child_role in check(self, node, role):
                # a + b + c + ... is a chain, not nesting: Python's tree of it is left-deep,
                # so the left operand of an operator continues the chain at the same depth
                # (evaluated without recursion, see _Evaluator._binop)
                chained = isinstance(node, ast.BinOp) and child is node.left and \
                    isinstance(child, ast.BinOp)
                stack.append((child, depth if chained else depth + 1, child_role))

    # -- one checker per allowed node type; each returns the children to visit
    def _constant(self, node: ast.Constant, role: str):
        value = node.value
        if isinstance(value, str):
            if role != "arg":
                self.error("strings are only allowed as function arguments (e.g. "
                           "reduction=\"sum\")", node)
            elif len(value) > MAX_STRING:
                self.error(f"string too long (more than {MAX_STRING} characters)", node,
                           LimitError)
        elif isinstance(value, bytes):
            self.error("bytes literals are not allowed", node)
        elif isinstance(value, int) and not isinstance(value, bool) and value >= MAX_INT:
            self.error("integer constant too large (the limit is 2**63)", node, LimitError)
        return ()

    def _name(self, node: ast.Name, role: str):
        if node.id.startswith("__"):
            self.error(f"name '{node.id}' is not allowed (names may not start with '__')",
                       node)
        if role == "func":
            self.calls[node.id] = self.calls.get(node.id, 0) + 1
        return ()

    def _attribute(self, node: ast.Attribute, role: str):
        name = node.attr
        if name.startswith("_"):
            self.error(f"attribute '{name}' is not allowed", node)
            return ()
        if name not in TENSOR_METHODS:
            self.error(f"unknown tensor method or attribute '{name}'"
                       + did_you_mean(name, TENSOR_METHODS), node)
            return ()
        if role == "func" and name in PROPERTIES:
            self.error(f"'.{name}' is an attribute, not a method: write x.{name} without "
                       "parentheses", node)
        elif role != "func" and name not in PROPERTIES:
            self.error(f"'.{name}' is a method: call it, e.g. x.{name}()", node)
        return ((node.value, "value"),)

    def _call(self, node: ast.Call, role: str):
        children: list = []
        if isinstance(node.func, (ast.Name, ast.Attribute)):
            children.append((node.func, "func"))
        elif type(node.func) in FORBIDDEN:
            children.append((node.func, "value"))
        else:
            self.error("only functions and tensor methods can be called", node.func)
        for arg in node.args:
            children.append((arg, "arg"))
        for kw in node.keywords:
            if kw.arg is None:
                self.error("**kwargs are not allowed", kw.value)
            elif kw.arg.startswith("__"):
                self.error(f"keyword '{kw.arg}' is not allowed", kw.value)
            else:
                children.append((kw.value, "arg"))
        return children

    def _binop(self, node: ast.BinOp, role: str):
        if type(node.op) not in BINOPS:
            self.error(f"operator {type(node.op).__name__} is not allowed", node)
            return ()
        if isinstance(node.op, ast.Pow):
            exponent = _literal_number(node.right)
            if exponent is not None and abs(exponent) > MAX_EXPONENT:
                self.error(f"exponent {exponent:g} is too large (|exponent| <= "
                           f"{MAX_EXPONENT} for literal exponents)", node, LimitError)
                return ()
        return ((node.left, "value"), (node.right, "value"))

    def _unaryop(self, node: ast.UnaryOp, role: str):
        if type(node.op) not in UNARYOPS:
            self.error("'not' is not allowed (use logical_not)", node)
            return ()
        return ((node.operand, "value"),)

    def _compare(self, node: ast.Compare, role: str):
        if len(node.ops) != 1:
            self.error("chained comparisons are not allowed (use logical_and(a < b, b < c))",
                       node)
            return ()
        if type(node.ops[0]) not in COMPAREOPS:
            self.error("only ==, !=, <, <=, >, >= comparisons are allowed", node)
            return ()
        return ((node.left, "value"), (node.comparators[0], "value"))

    def _subscript(self, node: ast.Subscript, role: str):
        return ((node.value, "value"), (node.slice, "index"))

    def _slice(self, node: ast.Slice, role: str):
        return tuple((part, "value") for part in (node.lower, node.upper, node.step)
                     if part is not None)

    def _sequence(self, node, role: str):
        return tuple((element, "index" if role == "index" else "value")
                     for element in node.elts)


_CHECKS: dict[type, Callable] = {
    ast.Constant: _Validator._constant, ast.Name: _Validator._name,
    ast.Attribute: _Validator._attribute, ast.Call: _Validator._call,
    ast.BinOp: _Validator._binop, ast.UnaryOp: _Validator._unaryop,
    ast.Compare: _Validator._compare, ast.Subscript: _Validator._subscript,
    ast.Slice: _Validator._slice, ast.Tuple: _Validator._sequence,
    ast.List: _Validator._sequence,
}


def _literal_number(node: ast.AST):
    """The value of a literal number, possibly negated; None for anything else."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
            and not isinstance(node.value, bool):
        return node.value
    return None


# ---- names ----------------------------------------------------------------------------------
def _walk_roles(root: ast.AST) -> Iterator[tuple[ast.AST, str]]:
    """Every node under ``root`` in source order, with 'func' for call targets."""
    stack = [(root, "value")]
    while stack:
        node, role = stack.pop()
        yield node, role
        if isinstance(node, ast.Call):
            children = [(node.func, "func")] + [(a, "value") for a in node.args] + \
                [(k.value, "value") for k in node.keywords]
        elif isinstance(node, ast.Attribute):
            children = [(node.value, "value")]
        else:
            children = [(c, "value") for c in ast.iter_child_nodes(node)]
        stack.extend(reversed(children))


def check_names(program: Program, variables: Collection[str],
                functions: Mapping[str, tuple[str, ...] | None] | None = None,
                *, what: str = "input") -> list[SpecError]:
    """Static name resolution: every name read must be a variable (``variables``, an earlier
    assignment or a constant) and every called name a function (``functions``: name ->
    argument names, or None when unknown, plus the built-ins).  Also checks the argument
    counts of functions whose arguments are known.  Returns the errors (runs nothing)."""
    functions = functions or {}
    errors: list[SpecError] = []
    defined = set(variables)
    known_functions = set(functions) | set(BUILTINS)

    def visit(expr: ast.AST) -> None:
        for node, role in _walk_roles(expr):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                signature = functions.get(node.func.id)
                if signature is not None:
                    errors.extend(_check_arguments(program, node, node.func.id, signature))
            if not isinstance(node, ast.Name):
                continue
            name = node.id
            if role == "func":
                if name in known_functions:
                    continue
                if name in defined or name in CONSTANTS:
                    errors.append(SpecError(f"'{name}' is not a function",
                                            program.location(node)))
                else:
                    errors.append(SpecError(
                        f"unknown function '{name}'" + did_you_mean(name, known_functions),
                        program.location(node)))
            elif name not in defined and name not in CONSTANTS:
                if name in known_functions:
                    message = f"'{name}' is a function: call it, e.g. {name}(x)"
                else:
                    message = f"unknown name '{name}'" + did_you_mean(
                        name, defined | set(CONSTANTS))
                errors.append(SpecError(message, program.location(node)))

    for stmt in program.body:
        visit(stmt.value)
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        for target in targets:
            for node in ast.walk(target):
                if not isinstance(node, ast.Name):
                    continue
                if isinstance(stmt, ast.AugAssign) and node.id not in defined:
                    errors.append(SpecError(f"unknown name '{node.id}'",
                                            program.location(node)))
                if node.id in RESERVED:
                    errors.append(SpecError(f"cannot assign to '{node.id}': the name is "
                                            "reserved", program.location(node)))
                elif node.id in variables:
                    errors.append(SpecError(f"cannot assign to '{node.id}': it is an {what}",
                                            program.location(node)))
                defined.add(node.id)
    visit(program.result)
    return errors


def _check_arguments(program: Program, call: ast.Call, name: str,
                     signature: tuple[str, ...]) -> list[SpecError]:
    where = program.location(call)
    given = len(call.args) + len(call.keywords)
    args = ", ".join(signature)
    plural = "argument" if len(signature) == 1 else "arguments"
    if given != len(signature):
        return [SpecError(f"{name}() takes {len(signature)} {plural} ({args}), got {given}",
                          where)]
    errors = []
    positional = set(signature[:len(call.args)])
    for kw in call.keywords:
        if kw.arg not in signature:
            errors.append(SpecError(f"{name}() has no argument '{kw.arg}'"
                                    + did_you_mean(kw.arg, signature), where))
        elif kw.arg in positional:
            errors.append(SpecError(f"{name}() got argument '{kw.arg}' twice", where))
    return errors


# ---- limits ---------------------------------------------------------------------------------
def _dimension(value) -> int | None:
    """A size argument as an int: Python and numpy integers, 0-d integer tensors; None for
    anything else (the call itself then reports it)."""
    if isinstance(value, Tensor):
        data = value._data
        if data.ndim == 0 and data.dtype.kind in "iu":
            return int(data.item())
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    return None


def _count(shape) -> int:
    """Elements of a tensor of shape ``shape`` (a size or a sequence of sizes, each an int,
    a numpy integer or a 0-d integer tensor); 0 when the shape is malformed (the call
    itself then reports it)."""
    single = _dimension(shape)
    if single is not None:
        shape = (single,)
    if not isinstance(shape, (list, tuple)):
        return 0
    n = 1
    for s in shape:
        d = _dimension(s)
        if d is None:
            return 0
        n *= abs(d)
    return n


def _size_args(args, kwargs) -> int:
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        return _count(args[0])
    return _count(args if args else kwargs.get("size", ()))


def _arange_count(args, kwargs) -> int:
    values = list(args) + [kwargs[k] for k in ("start", "end", "step") if k in kwargs]
    if len(values) == 1:
        values = [0, values[0], 1]
    elif len(values) == 2:
        values = values + [1]
    try:
        start, end, step = (float(v) for v in values[:3])
        return max(int(math.ceil((end - start) / step)), 0)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, IndexError):
        return 0


def _eye_count(args, kwargs) -> int:
    n = args[0] if args else kwargs.get("n", 0)
    m = args[1] if len(args) > 1 else kwargs.get("m", n)
    m = n if m is None else m
    return _count((n, m))


#: element counts of calls that allocate without going through a primitive
FACTORY_SIZES: dict[str, Callable] = {
    "zeros": _size_args, "ones": _size_args, "empty": _size_args, "randn": _size_args,
    "rand": _size_args,
    "full": lambda a, k: _count(a[0] if a else k.get("size", ())),
    "arange": _arange_count,
    "linspace": lambda a, k: _count(a[2] if len(a) > 2 else k.get("steps", 0)),
    "eye": _eye_count,
    "broadcast_to": lambda a, k: _size_args(a[1:], k),
    "expand": lambda a, k: _size_args(a[1:], k),
}
METHOD_SIZES: dict[str, Callable] = {
    "broadcast_to": lambda a, k: _size_args(a, k),
    "expand": lambda a, k: _size_args(a, k),
}


# ---- evaluation -----------------------------------------------------------------------------
_SCALARS = (int, float, complex, bool, np.number, np.bool_)


def _batching() -> bool:
    """True inside a batched (vmap) call, where the engine turns errors into a fallback to
    one call per example; the error is then reported from that unbatched call."""
    return bool(getattr(primitive, "INTERCEPTORS", None))

_QUALNAME = re.compile(r"^[\w.<>]+\(\) ")


class _Evaluator:
    handlers: dict[type, Callable] = {}     # filled in below the class

    def __init__(self, program: Program, env: Mapping[str, Any],
                 functions: Mapping[str, Any], max_elements: int,
                 modules: Mapping[str, Callable] | None = None) -> None:
        self.program = program
        self.env = env
        self.functions = functions
        self.modules = modules or {}
        self.max_elements = max_elements
        self.names: dict[str, Any] = {}

    def run(self):
        for stmt in self.program.body:
            value = self.visit(stmt.value)
            if isinstance(stmt, ast.AugAssign):
                target = stmt.target.id
                value = self._operate(stmt, BINOPS[type(stmt.op)], self.lookup(target, stmt),
                                      value)
                self.names[target] = value
            else:
                self.assign(stmt.targets[0], value)
        return self.visit(self.program.result)

    def visit(self, node: ast.AST):
        return self.handlers[type(node)](self, node)

    def fail(self, node: ast.AST, message: str, cls=SpecError, hint: str | None = None):
        return cls(message, self.program.location(node), hint)

    def assign(self, target: ast.AST, value) -> None:
        if isinstance(target, ast.Name):
            self.names[target.id] = value
            return
        n = len(target.elts)
        if isinstance(value, Tensor) and value.ndim > 0 and value.shape[0] == n:
            value = tuple(value[i] for i in range(n))
        if not isinstance(value, (tuple, list)) or len(value) != n:
            length = f"{len(value)} values" if isinstance(value, (tuple, list)) else \
                _kind(value)
            raise self.fail(target, f"cannot unpack {length} into {n} names")
        for element, item in zip(target.elts, value):
            self.names[element.id] = item

    def lookup(self, name: str, node: ast.AST):
        if name in self.names:
            return self.names[name]
        if name in self.env:
            return self.env[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        raise self.fail(node, f"unknown name '{name}'"
                        + did_you_mean(name, set(self.names) | set(self.env)))

    def guarded(self, node: ast.AST, what: str, thunk: Callable):
        """Run one operation; turn any error into a SpecError at ``node``."""
        try:
            return thunk()
        except SpecError as exc:
            if exc.location is None:
                raise type(exc)(exc.message, self.program.location(node), exc.hint) from None
            raise
        except RecursionError:      # deep expressions inside deep Function calls
            raise self.fail(node, "expression nested too deeply while running (Functions "
                            "calling Functions with deep expressions)", LimitError,
                            hint="flatten the expressions or the Function calls") from None
        except Exception as exc:  # any engine/numpy error in a user's formula
            if _batching():
                raise       # under gt.vmap: the engine falls back to one call per example
            message = str(exc).strip() or type(exc).__name__
            if isinstance(exc, TypeError):      # "_unary.<locals>.op() takes ..." -> "takes"
                message = _QUALNAME.sub("", message, count=1)
            if not message.startswith(what.lstrip(".")):   # "einsum(): einsum(): ..."
                message = f"{what}: {message}"
            raise self.fail(node, message) from None

    def check_elements(self, node: ast.AST, n: int, what: str) -> None:
        if n > self.max_elements:
            raise self.fail(node, f"{what} would create a tensor of {n:,} elements, over the "
                            f"limit of {self.max_elements:,}", LimitError,
                            hint=limits.ELEMENTS_HINT)

    # -- handlers
    def _constant(self, node: ast.Constant):
        return node.value

    def _name(self, node: ast.Name):
        return self.lookup(node.id, node)

    def _tuple(self, node: ast.Tuple):
        return tuple(self.visit(e) for e in node.elts)

    def _list(self, node: ast.List):
        return [self.visit(e) for e in node.elts]

    def _slice(self, node: ast.Slice):
        return slice(*(None if part is None else self._index_int(part)
                       for part in (node.lower, node.upper, node.step)))

    def _index_int(self, node: ast.AST):
        value = self.visit(node)
        if isinstance(value, Tensor) and value.ndim == 0 and value.dtype.np.kind in "iu":
            return int(value.item())
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise self.fail(node, f"slice bounds must be integers, got {_kind(value)}")
        return value

    def _attribute(self, node: ast.Attribute):
        obj = self.visit(node.value)
        if not isinstance(obj, Tensor):
            raise self.fail(node, f"'.{node.attr}' needs a tensor, got {_kind(obj)}")
        getter = PROPERTIES[node.attr]
        return self.guarded(node, f".{node.attr}", lambda: getter(obj))

    def _call(self, node: ast.Call):
        args = [self.visit(a) for a in node.args]
        kwargs = {kw.arg: self.visit(kw.value) for kw in node.keywords}
        func = node.func
        if isinstance(func, ast.Attribute):
            obj = self.visit(func.value)
            if not isinstance(obj, Tensor):
                raise self.fail(func, f"'.{func.attr}()' needs a tensor, got {_kind(obj)}")
            size = METHOD_SIZES.get(func.attr)
            if size is not None:
                self.check_elements(node, size(args, kwargs), f".{func.attr}()")
            method = METHODS[func.attr]
            return self.guarded(node, f".{func.attr}()", lambda: method(obj, *args, **kwargs))
        name = func.id
        module = self.modules.get(name)
        if module is not None:
            return self.guarded(node, f"{name}()", lambda: module(*args, **kwargs))
        spec_function = self.functions.get(name)
        if spec_function is not None:
            return self.guarded(node, f"{name}()",
                                lambda: _apply_function(spec_function, args, kwargs))
        builtin = BUILTINS.get(name)
        if builtin is None:
            raise self.fail(func, f"unknown function '{name}'"
                            + did_you_mean(name, set(BUILTINS) | set(self.functions)))
        size = FACTORY_SIZES.get(name)
        if size is not None:
            self.check_elements(node, size(args, kwargs), f"{name}()")
        return self.guarded(node, f"{name}()", lambda: builtin(*args, **kwargs))

    def _binop(self, node: ast.BinOp):
        # the left spine of a chain (a + b + c + ...) iteratively: its length is not
        # nesting depth, and must not become Python recursion
        chain = [node]
        while isinstance(chain[-1].left, ast.BinOp):
            chain.append(chain[-1].left)
        value = self.visit(chain[-1].left)
        for link in reversed(chain):
            value = self._operate(link, BINOPS[type(link.op)], value, self.visit(link.right))
        return value

    def _operate(self, node: ast.AST, op: tuple[str, Callable], left, right):
        symbol, function = op
        for operand in (left, right):
            if not isinstance(operand, (Tensor,) + _SCALARS):
                raise self.fail(node, f"operator '{symbol}' needs tensors or numbers, got "
                                f"{_kind(operand)}")
        if isinstance(left, Tensor) or isinstance(right, Tensor):
            self._check_broadcast(node, symbol, left, right)
        elif symbol == "**" and isinstance(left, int) and isinstance(right, int) \
                and abs(right) > MAX_EXPONENT:
            raise self.fail(node, f"exponent {right} is too large (|exponent| <= "
                            f"{MAX_EXPONENT} for integer powers)", LimitError)
        shapes = ""
        if isinstance(left, Tensor) and isinstance(right, Tensor):
            shapes = f" on shapes {list(left.shape)} and {list(right.shape)}"
        result = self.guarded(node, f"operator '{symbol}'{shapes}",
                              lambda: function(left, right))
        if isinstance(result, int) and not isinstance(result, bool) and abs(result) >= MAX_INT:
            raise self.fail(node, "integer result too large (the limit is 2**63)", LimitError)
        return result

    def _check_broadcast(self, node, symbol, left, right) -> None:
        a, b = np.shape(left._data if isinstance(left, Tensor) else left), \
            np.shape(right._data if isinstance(right, Tensor) else right)
        try:
            if symbol == "@":
                if len(a) < 2 or len(b) < 2:
                    return
                shape = np.broadcast_shapes(a[:-2], b[:-2]) + (a[-2], b[-1])
            else:
                shape = np.broadcast_shapes(a, b)
        except ValueError:
            return      # the operation reports the mismatch with both shapes
        self.check_elements(node, _count(shape), f"operator '{symbol}'")

    def _unaryop(self, node: ast.UnaryOp):
        symbol, function = UNARYOPS[type(node.op)]
        operand = self.visit(node.operand)
        if not isinstance(operand, (Tensor,) + _SCALARS):
            raise self.fail(node, f"operator '{symbol}' needs a tensor or a number, got "
                            f"{_kind(operand)}")
        return self.guarded(node, f"operator '{symbol}'", lambda: function(operand))

    def _compare(self, node: ast.Compare):
        return self._operate(node, COMPAREOPS[type(node.ops[0])], self.visit(node.left),
                             self.visit(node.comparators[0]))

    def _subscript(self, node: ast.Subscript):
        obj = self.visit(node.value)
        key = self.visit(node.slice)
        if isinstance(obj, tuple) and not isinstance(obj, Tensor):
            if not isinstance(key, (int, slice)) or isinstance(key, bool):
                raise self.fail(node, f"tuples can only be indexed by integers and slices, "
                                f"got {_kind(key)}")
        elif not isinstance(obj, Tensor):
            raise self.fail(node, f"only tensors and tuples can be indexed, got {_kind(obj)}")
        return self.guarded(node, "indexing", lambda: obj[key])


_HANDLERS: dict[type, Callable] = {
    ast.Constant: _Evaluator._constant, ast.Name: _Evaluator._name,
    ast.Tuple: _Evaluator._tuple, ast.List: _Evaluator._list,
    ast.Slice: _Evaluator._slice, ast.Attribute: _Evaluator._attribute,
    ast.Call: _Evaluator._call, ast.BinOp: _Evaluator._binop,
    ast.UnaryOp: _Evaluator._unaryop, ast.Compare: _Evaluator._compare,
    ast.Subscript: _Evaluator._subscript,
}
_Evaluator.handlers = _HANDLERS


def _apply_function(function, args: list, kwargs: dict):
    """Call a spec Function: keyword arguments are put in the order of its args."""
    names = getattr(function, "spec_args", None)
    if kwargs and names is not None:
        values = dict(zip(names, args))
        values.update(kwargs)
        return function.apply(*(values[n] for n in names))
    return function.apply(*args, **kwargs)


# ---- checks of torch objects ----------------------------------------------------------------
#: tensor methods of checks of torch objects: names torch and gradtool share, with the same
#: meaning (the expression runs on torch tensors, end to end)
TORCH_METHODS = ("abs", "clamp", "cos", "exp", "flatten", "log", "log_softmax", "matmul",
                 "mean", "mm", "norm", "permute", "pow", "prod", "relu", "reshape", "sigmoid",
                 "sin", "softmax", "sqrt", "squeeze", "sum", "t", "tanh", "transpose",
                 "unsqueeze", "view")
#: tensor attributes of checks of torch objects
TORCH_PROPERTIES = ("T", "mT", "ndim", "shape")
TORCH_LANGUAGE = ("operators, indexing, the spec's torch Functions and modules, and the "
                  "methods " + " ".join(TORCH_METHODS))


def torch_program_errors(program: Program, callables: Collection[str]) -> list[SpecError]:
    """What a check of torch objects may not use: its expression runs on torch tensors, so
    only operators, indexing, the torch Functions/modules ``callables`` and the methods of
    ``TORCH_METHODS`` are available (no built-in functions, no gradtool Functions)."""
    errors = []
    for root in [stmt.value for stmt in program.body] + [program.result]:
        for node, role in _walk_roles(root):
            if role == "func" and isinstance(node, ast.Name) and node.id not in callables:
                errors.append(SpecError(
                    f"'{node.id}' cannot be called in a check of torch Functions or modules: "
                    "its expression runs on torch tensors", program.location(node),
                    hint="available: " + TORCH_LANGUAGE))
            elif isinstance(node, ast.Attribute) and \
                    node.attr not in TORCH_METHODS + TORCH_PROPERTIES:
                errors.append(SpecError(
                    f"'.{node.attr}' is not available in a check of torch Functions or "
                    "modules", program.location(node), hint="available: " + TORCH_LANGUAGE))
    return errors


@dataclass
class _TorchTables:
    """torch's Tensor class, and its methods and attributes of the allow-lists above, looked
    up once from those fixed names (statically, as ``METHODS``)."""

    tensor: type
    methods: dict[str, Callable]
    properties: dict[str, Callable]


_TORCH: list[_TorchTables] = []


def _torch_tables() -> _TorchTables:
    if not _TORCH:
        import torch            # imported already: a user's module subclassed torch's classes
        _TORCH.append(_TorchTables(
            torch.Tensor,
            {name: inspect.getattr_static(torch.Tensor, name) for name in TORCH_METHODS},
            {name: operator.attrgetter(name) for name in TORCH_PROPERTIES}))
    return _TORCH[0]


class _TorchEvaluator(_Evaluator):
    """Evaluates a check of torch objects on torch tensors."""

    def _is_tensor(self, value) -> bool:
        return isinstance(value, _torch_tables().tensor)

    def _attribute(self, node: ast.Attribute):
        obj = self.visit(node.value)
        if not self._is_tensor(obj):
            raise self.fail(node, f"'.{node.attr}' needs a tensor, got {_kind(obj)}")
        getter = _torch_tables().properties[node.attr]
        return self.guarded(node, f".{node.attr}", lambda: getter(obj))

    def _call(self, node: ast.Call):
        args = [self.visit(a) for a in node.args]
        kwargs = {kw.arg: self.visit(kw.value) for kw in node.keywords}
        func = node.func
        if isinstance(func, ast.Attribute):
            obj = self.visit(func.value)
            if not self._is_tensor(obj):
                raise self.fail(func, f"'.{func.attr}()' needs a tensor, got {_kind(obj)}")
            method = _torch_tables().methods[func.attr]
            return self.guarded(node, f".{func.attr}()", lambda: method(obj, *args, **kwargs))
        module = self.modules.get(func.id)
        if module is not None:
            return self.guarded(node, f"{func.id}()", lambda: module(*args, **kwargs))
        function = self.functions[func.id]
        return self.guarded(node, f"{func.id}()", lambda: function.apply(*args, **kwargs))

    def _operate(self, node: ast.AST, op: tuple[str, Callable], left, right):
        symbol, function = op
        for operand in (left, right):
            if not (self._is_tensor(operand) or isinstance(operand, _SCALARS)):
                raise self.fail(node, f"operator '{symbol}' needs tensors or numbers, got "
                                f"{_kind(operand)}")
        return self.guarded(node, f"operator '{symbol}'", lambda: function(left, right))

    def _unaryop(self, node: ast.UnaryOp):
        symbol, function = UNARYOPS[type(node.op)]
        operand = self.visit(node.operand)
        return self.guarded(node, f"operator '{symbol}'", lambda: function(operand))

    def _subscript(self, node: ast.Subscript):
        obj = self.visit(node.value)
        key = self.visit(node.slice)
        if not (self._is_tensor(obj) or isinstance(obj, tuple)):
            raise self.fail(node, f"only tensors and tuples can be indexed, got {_kind(obj)}")
        return self.guarded(node, "indexing", lambda: obj[key])


_TorchEvaluator.handlers = {
    **_HANDLERS, ast.Attribute: _TorchEvaluator._attribute, ast.Call: _TorchEvaluator._call,
    ast.BinOp: _TorchEvaluator._binop, ast.UnaryOp: _TorchEvaluator._unaryop,
    ast.Compare: _TorchEvaluator._compare, ast.Subscript: _TorchEvaluator._subscript,
}


def run_program(program: Program, env: Mapping[str, Any],
                functions: Mapping[str, Any] | None = None, *,
                max_elements: int = DEFAULT_MAX_ELEMENTS,
                modules: Mapping[str, Callable] | None = None,
                torch: bool = False) -> tuple[Any, dict[str, Any]]:
    """Evaluate a validated program; returns its output and the names it assigned.
    ``modules``: name -> callable module (``net(x)``); ``torch``: the values are torch
    tensors (a check of torch objects, validated by :func:`torch_program_errors`).
    Every error becomes a SpecError located at the offending node."""
    cls = _TorchEvaluator if torch else _Evaluator
    evaluator = cls(program, env, functions or {}, max_elements, modules)
    with element_limit(max_elements):
        result = evaluator.run()
    return result, evaluator.names


def evaluate_program(source: str | Program, env: Mapping[str, Any], *,
                     functions: Mapping[str, Any] | None = None, filename: str = "<expr>",
                     max_elements: int = DEFAULT_MAX_ELEMENTS) -> Any:
    """Parse (if needed), check names against ``env`` and ``functions`` (name -> Function
    class), and evaluate.  The one entry point for bare expressions (``gradtool graph``)."""
    program = source if isinstance(source, Program) else \
        parse_program(source, filename=filename)
    functions = functions or {}
    signatures = {name: getattr(fn, "spec_args", None) for name, fn in functions.items()}
    errors = check_names(program, env, signatures)
    if errors:
        raise errors[0] if len(errors) == 1 else SpecErrors(errors)
    return run_program(program, env, functions, max_elements=max_elements)[0]
