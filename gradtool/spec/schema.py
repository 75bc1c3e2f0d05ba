"""The spec format as one table: every key, its type, its description and allowed values.

The loader validates YAML nodes with these definitions (``Type.convert``) and
:func:`json_schema` turns the very same definitions into a JSON Schema, so the two cannot
drift apart.  Adding a top-level section is one entry in ``TOP_LEVEL`` plus a loader for it
in ``load.py`` (``modules:`` was added so).
"""

from __future__ import annotations

import difflib
import keyword
import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..engine import limits as engine_limits
from ..errors import Location, SpecError
from .yaml_source import Source, kind_name, scalar_value

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_INT = 2**63


def did_you_mean(name: str, candidates) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass
class Item:
    """A validated value with where it was written.

    ``value`` is plain data for scalars, ``list[Item]`` for lists and ``dict[str, Item]``
    for mappings (then ``key_locations`` says where each key was written)."""

    value: Any
    location: Location
    node: yaml.Node
    key_locations: dict[str, Location] = field(default_factory=dict)
    complete: bool = True     # False: a Record with an invalid or missing key

    def plain(self) -> Any:
        """The value with every nested Item unwrapped."""
        if isinstance(self.value, list):
            return [v.plain() if isinstance(v, Item) else v for v in self.value]
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        return self.value


class Context:
    """Collects errors while a file is validated, so that all of them are reported."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.errors: list[SpecError] = []

    def where(self, node: yaml.Node) -> Location:
        return self.source.location(node.start_mark, node.end_mark)

    def error(self, message: str, location: Location | None, hint: str | None = None) -> None:
        self.errors.append(SpecError(message, location, hint))

    def add(self, errors) -> None:
        self.errors.extend(errors)


class Type:
    """A value type of the format: converts a yaml node and describes itself as JSON Schema.
    ``expected`` names it in messages ("expected a number, got a list")."""

    expected = "a value"

    def convert(self, node: yaml.Node, ctx: Context) -> Item | None:
        raise NotImplementedError

    def json(self, defs: dict) -> dict:
        raise NotImplementedError

    def mismatch(self, node: yaml.Node, ctx: Context) -> None:
        got = kind_name(node)
        hint = None
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":str"):
            got = f"'{node.value}'" if len(node.value) < 40 else got
            if node.value.strip().lower().lstrip("+-") in _NON_FINITE_SPELLINGS:
                hint = "YAML spells infinity .inf, -.inf and not-a-number .nan"
        ctx.error(f"expected {self.expected}, got {got}", ctx.where(node), hint)


#: how people write non-finite numbers that YAML reads as strings (``-inf``, ``NaN``)
_NON_FINITE_SPELLINGS = frozenset(("inf", "infinity", "nan"))


class _Scalar(Type):
    def _value(self, node, ctx):
        if not isinstance(node, yaml.ScalarNode):
            self.mismatch(node, ctx)
            return None, False
        return scalar_value(node), True


class Number(_Scalar):
    """A real number (YAML int or float, not a boolean)."""

    def __init__(self, minimum: float | None = None, exclusive: bool = False) -> None:
        self.minimum = minimum
        self.exclusive = exclusive
        self.expected = "a number" if minimum is None else \
            f"a number {'>' if exclusive else '>='} {minimum:g}"

    def convert(self, node, ctx):
        value, ok = self._value(node, ctx)
        if not ok:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.mismatch(node, ctx)
            return None
        if isinstance(value, int) and abs(value) >= MAX_INT:
            ctx.error(f"integer {value} is too large (the limit is 2**63)", ctx.where(node))
            return None
        if not math.isfinite(value):
            ctx.error(f"expected a finite number, got {value}", ctx.where(node))
            return None
        if self.minimum is not None and (value < self.minimum or
                                         (self.exclusive and value == self.minimum)):
            ctx.error(f"expected {self.expected}, got {value}", ctx.where(node))
            return None
        return Item(value, ctx.where(node), node)

    def json(self, defs):
        schema: dict = {"type": "number"}
        if self.minimum is not None:
            schema["exclusiveMinimum" if self.exclusive else "minimum"] = self.minimum
        return schema


class Integer(_Scalar):
    """An integer; ``2.0`` counts as 2, as in JSON Schema (whose integers include it)."""

    def __init__(self, minimum: int | None = None) -> None:
        self.minimum = minimum
        self.expected = "an integer" if minimum is None else f"an integer >= {minimum}"

    def convert(self, node, ctx):
        value, ok = self._value(node, ctx)
        if not ok:
            return None
        if isinstance(value, float) and value.is_integer() and abs(value) < MAX_INT:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.mismatch(node, ctx)
            return None
        if abs(value) >= MAX_INT:
            ctx.error(f"integer {value} is too large (the limit is 2**63)", ctx.where(node))
            return None
        if self.minimum is not None and value < self.minimum:
            ctx.error(f"expected {self.expected}, got {value}", ctx.where(node))
            return None
        return Item(value, ctx.where(node), node)

    def json(self, defs):
        schema: dict = {"type": "integer", "maximum": MAX_INT - 1,
                        "minimum": -(MAX_INT - 1) if self.minimum is None else self.minimum}
        return schema


class Boolean(_Scalar):
    expected = "true or false"

    def convert(self, node, ctx):
        value, ok = self._value(node, ctx)
        if ok and isinstance(value, bool):
            return Item(value, ctx.where(node), node)
        if ok:
            self.mismatch(node, ctx)
        return None

    def json(self, defs):
        return {"type": "boolean"}


class Const(Integer):
    """An integer that must be ``value`` (``version: 1``); ``message`` says why not."""

    def __init__(self, value: int, message: str) -> None:
        super().__init__()
        self.value, self.message = value, message

    def convert(self, node, ctx):
        item = super().convert(node, ctx)
        if item is not None and item.value != self.value:
            ctx.error(self.message.format(value=item.value), item.location)
            return None
        return item

    def json(self, defs):
        return {"const": self.value}


class Skip(_Scalar):
    """``skip: reason`` (any scalar but null, as its text), or ``skip: true``/``false``."""

    expected = "a reason (text) or true/false"

    def convert(self, node, ctx):
        value, ok = self._value(node, ctx)
        if not ok:
            return None
        if value is None:
            self.mismatch(node, ctx)
            return None
        return Item(value if isinstance(value, bool) else node.value, ctx.where(node), node)

    def json(self, defs):
        return {"type": ["string", "number", "boolean"]}


class String(_Scalar):
    """Any scalar written as text (the raw text of a plain scalar: ``skip: yes`` is 'yes')."""

    expected = "a string"

    def convert(self, node, ctx):
        if not isinstance(node, yaml.ScalarNode) or node.tag.endswith(":null"):
            self.mismatch(node, ctx)
            return None
        return Item(node.value, ctx.where(node), node)

    def json(self, defs):
        # what the loader takes: any scalar but null, as its text (``skip: 2024`` is '2024')
        return {"type": ["string", "number", "boolean"]}


#: control characters (C0, DEL, C1): in a name they would reach terminals raw
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class CheckName(String):
    """A check's name: text that is not blank and has no control characters (reports and
    ``-k`` select checks by it; terminals show it)."""

    def convert(self, node, ctx):
        item = super().convert(node, ctx)
        if item is not None and not item.value.strip():
            ctx.error("a check name cannot be empty", item.location,
                      hint="name the check: it is how reports and -k select it")
            return None
        bad = CONTROL_CHARACTERS.search(item.value) if item is not None else None
        if bad is not None:
            ctx.error(f"a check name cannot contain control characters (found "
                      f"{bad.group()!r} at position {bad.start() + 1})", item.location,
                      hint="names are shown on terminals and in CI logs: use printable "
                      "text")
            return None
        return item

    def json(self, defs):
        return {"anyOf": [{"type": "string", "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*"
                           "\\S[^\\u0000-\\u001f\\u007f-\\u009f]*$"},
                          {"type": ["number", "boolean"]}]}


class Limit(_Scalar):
    """One resource limit: a number, or a string with a unit (``512MiB``, ``30s``),
    read by ``parse`` (one of gradtool.engine.limits' parsers)."""

    def __init__(self, parse, expected: str, pattern: str) -> None:
        self.parse = parse
        self.expected = expected
        self.pattern = pattern

    def convert(self, node, ctx):
        value, ok = self._value(node, ctx)
        if not ok:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            self.mismatch(node, ctx)
            return None
        try:
            parsed = self.parse(value, "limit")
        except ValueError as exc:
            ctx.error(str(exc).removeprefix("limit: "), ctx.where(node),
                      hint=f"expected {self.expected}")
            return None
        return Item(parsed, ctx.where(node), node)

    def json(self, defs):
        return {"anyOf": [{"type": "number", "minimum": 0},
                          {"type": "string", "pattern": self.pattern}]}




class Name(String):
    """An identifier usable in expressions."""

    expected = "a name"

    def convert(self, node, ctx):
        item = super().convert(node, ctx)
        if item is not None and not is_identifier(item.value):
            ctx.error(f"'{item.value}' is not a valid name (letters, digits and _, not "
                      "starting with a digit, not a Python keyword)", item.location)
            return None
        return item

    def json(self, defs):
        return {"type": "string", "pattern": IDENTIFIER.pattern}


def is_identifier(name: str) -> bool:
    return bool(IDENTIFIER.match(name)) and not keyword.iskeyword(name)


#: a name in ``wrt``: an input, ``params``, a module, or a parameter (``net.0.weight``)
DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")


class WrtName(String):
    """An input name, or a dotted parameter name (``net.0.weight``)."""

    expected = "a name"

    def convert(self, node, ctx):
        item = super().convert(node, ctx)
        if item is not None and not DOTTED.match(item.value):
            ctx.error(f"'{item.value}' is not an input or parameter name (names, or "
                      "dotted parameter names such as net.0.weight)", item.location)
            return None
        return item

    def json(self, defs):
        return {"type": "string", "pattern": DOTTED.pattern}


class Expression(String):
    """An expression or program, kept as source text with its node (for positions)."""

    expected = "an expression"

    def json(self, defs):
        return {"type": ["string", "number"]}


class Enum(_Scalar):
    def __init__(self, *choices: str) -> None:
        self.choices = choices
        self.expected = "one of " + ", ".join(choices)

    def convert(self, node, ctx):
        if not isinstance(node, yaml.ScalarNode):
            self.mismatch(node, ctx)
            return None
        if node.value not in self.choices:
            ctx.error(f"expected {self.expected}, got '{node.value}'"
                      + did_you_mean(node.value, self.choices), ctx.where(node))
            return None
        return Item(node.value, ctx.where(node), node)

    def json(self, defs):
        return {"enum": list(self.choices)}


class ListOf(Type):
    def __init__(self, item: Type, min_items: int = 0, max_items: int | None = None,
                 too_few: str | None = None) -> None:
        self.item = item
        self.min_items = min_items
        self.max_items = max_items
        self.too_few = too_few      # the message when there are fewer than min_items
        self.expected = f"a list of {_plural(item.expected)}"

    def convert(self, node, ctx):
        if not isinstance(node, yaml.SequenceNode):
            self.mismatch(node, ctx)
            return None
        n = len(node.value)
        if n < self.min_items and self.too_few:
            ctx.error(self.too_few, ctx.where(node))
            return None
        if n < self.min_items or (self.max_items is not None and n > self.max_items):
            count = str(self.min_items) if self.min_items == self.max_items else \
                f"at least {self.min_items}" if self.max_items is None else \
                f"{self.min_items} to {self.max_items}"
            ctx.error(f"expected a list of {count} items, got {n}", ctx.where(node))
            return None
        items = [self.item.convert(child, ctx) for child in node.value]
        valid = [i for i in items if i is not None]
        return Item(valid, ctx.where(node), node,
                    complete=all(i is not None and i.complete for i in items))

    def json(self, defs):
        schema = {"type": "array", "items": self.item.json(defs)}
        if self.min_items:
            schema["minItems"] = self.min_items
        if self.max_items is not None:
            schema["maxItems"] = self.max_items
        return schema


class Linspace(ListOf):
    """``[start, stop, n]``: two numbers and a count (checked to be a whole number >= 0
    where the input is built, as ``3.0`` is one in JSON)."""

    def __init__(self) -> None:
        super().__init__(Number(), 3, 3)

    def json(self, defs):
        return {"type": "array", "minItems": 3, "maxItems": 3,
                "prefixItems": [{"type": "number"}, {"type": "number"},
                                {"type": "integer", "minimum": 0}]}


def _plural(expected: str) -> str:
    """``an integer >= 0`` -> ``integers >= 0``, ``a string`` -> ``strings``."""
    for article in ("an ", "a "):
        if expected.startswith(article):
            noun, sep, rest = expected[len(article):].partition(" ")
            return f"{noun}s{sep}{rest}"
    return expected


def _mapping_pairs(node: yaml.MappingNode, ctx: Context):
    """(key text, key node, value node) for each entry, refusing duplicate and non-scalar
    keys (YAML would silently keep the last of two equal keys)."""
    seen: dict[str, yaml.Node] = {}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            ctx.error("mapping keys must be names, got " + kind_name(key), ctx.where(key))
            continue
        if key.value == "<<":
            ctx.error("YAML merge keys (<<) are not supported", ctx.where(key),
                      hint="use 'defaults:' to share settings between checks")
            continue
        if key.value in seen:
            first = ctx.where(seen[key.value])
            ctx.error(f"duplicate key '{key.value}' (first defined at line {first.line}, "
                      f"column {first.column})", ctx.where(key))
            continue
        seen[key.value] = key
        yield key.value, key, value


@dataclass(frozen=True)
class Field:
    """One key of a Record: its type, what it means, its default and whether required."""

    type: Type
    description: str
    required: bool = False
    default: Any = None


class Record(Type):
    """A mapping with a fixed set of keys."""

    expected = "a mapping"

    def __init__(self, fields: dict[str, Field], what: str = "", rules: tuple = ()) -> None:
        self.fields = fields
        self.what = what
        self.rules = rules

    def broken_rules(self, fields: dict) -> list[tuple[str, str]]:
        """``(key, message)`` of each rule the plain ``fields`` break (see :class:`Rule`)."""
        defaults = {name: spec.default for name, spec in self.fields.items()}
        return [(rule.at, rule.message) for rule in self.rules
                if rule.broken(fields, defaults)]

    def convert(self, node, ctx):
        if not isinstance(node, yaml.MappingNode):
            self.mismatch(node, ctx)
            return None
        values: dict[str, Item] = {}
        keys: dict[str, Location] = {}
        ok = True
        for name, key, value in _mapping_pairs(node, ctx):
            keys[name] = ctx.where(key)
            spec = self.fields.get(name)
            if spec is None:
                where = f" in {self.what}" if self.what else ""
                ctx.error(f"unknown key '{name}'{where}" + did_you_mean(name, self.fields),
                          ctx.where(key), hint="allowed keys: " + ", ".join(self.fields))
                ok = False
                continue
            item = spec.type.convert(value, ctx)
            if item is None or not item.complete:
                ok = False
            if item is not None:
                values[name] = item
        for name, spec in self.fields.items():
            if spec.required and name not in keys:
                where = f" in {self.what}" if self.what else ""
                ctx.error(f"missing required key '{name}'{where}", ctx.where(node))
                ok = False
        return Item(values, ctx.where(node), node, keys, complete=ok)

    def json(self, defs):
        schema = {
            "type": "object",
            "properties": {name: {**spec.type.json(defs), "description": spec.description}
                           for name, spec in self.fields.items()},
            "required": [name for name, spec in self.fields.items() if spec.required],
            "additionalProperties": False,
        }
        if self.rules:
            defaults = {name: spec.default for name, spec in self.fields.items()}
            schema["allOf"] = [rule.json(defaults) for rule in self.rules]
        return schema


class MapOf(Type):
    """A mapping from names (identifiers) to values of one type."""

    expected = "a mapping"

    def __init__(self, value: Type, what: str) -> None:
        self.value = value
        self.what = what

    def convert(self, node, ctx):
        if not isinstance(node, yaml.MappingNode):
            self.mismatch(node, ctx)
            return None
        values: dict[str, Item] = {}
        keys: dict[str, Location] = {}
        ok = True
        for name, key, value in _mapping_pairs(node, ctx):
            if not is_identifier(name):
                ctx.error(f"'{name}' is not a valid {self.what} name (letters, digits and _, "
                          "not starting with a digit)", ctx.where(key))
                ok = False
                continue
            keys[name] = ctx.where(key)
            item = self.value.convert(value, ctx)
            if item is None or not item.complete:
                ok = False
            if item is not None:
                values[name] = item
        return Item(values, ctx.where(node), node, keys, complete=ok)

    def json(self, defs):
        return {"type": "object", "propertyNames": {"pattern": IDENTIFIER.pattern},
                "additionalProperties": self.value.json(defs)}


class TensorValue(Type):
    """A literal tensor: a number, a boolean, or nested lists of them."""

    expected = "a number or a (nested) list of numbers"

    def convert(self, node, ctx):
        stack = [node]
        while stack:
            current = stack.pop()
            if isinstance(current, yaml.SequenceNode):
                stack.extend(current.value)
                continue
            if isinstance(current, yaml.ScalarNode):
                value = scalar_value(current)
                if isinstance(value, (bool, float)) or \
                        (isinstance(value, int) and abs(value) < MAX_INT):
                    continue
            if isinstance(current, yaml.ScalarNode) and isinstance(scalar_value(current), int):
                ctx.error("integer is too large (the limit is 2**63)", ctx.where(current))
            else:
                self.mismatch(current, ctx)
            return None
        from .yaml_source import to_data
        return Item(to_data(node), ctx.where(node), node)

    def json(self, defs):
        defs["value"] = {"anyOf": [{"type": ["number", "boolean"]},
                                   {"type": "array", "items": {"$ref": "#/$defs/value"}}]}
        return {"$ref": "#/$defs/value"}


class ByKind(Type):
    """One type per YAML node kind: ``scalar``, ``sequence``, ``mapping``."""

    def __init__(self, expected: str, **by_kind: Type) -> None:
        self.by_kind = by_kind
        self.expected = expected

    def convert(self, node, ctx):
        kind = {yaml.ScalarNode: "scalar", yaml.SequenceNode: "sequence",
                yaml.MappingNode: "mapping"}[type(node)]
        chosen = self.by_kind.get(kind)
        if chosen is None or (kind == "scalar" and node.tag.endswith(":null")):
            self.mismatch(node, ctx)
            return None
        return chosen.convert(node, ctx)

    def json(self, defs):
        options = []
        for t in self.by_kind.values():
            schema = t.json(defs)
            if schema not in options:
                options.append(schema)
        return {"anyOf": options}


class ArgValue(Type):
    """A literal argument of a layer: a number, string, boolean, null, or (nested) lists of
    them (``kernel_size: [3, 3]``)."""

    expected = "a number, string, boolean, null or a list of them"

    def convert(self, node, ctx):
        stack = [node]
        while stack:
            current = stack.pop()
            if isinstance(current, yaml.SequenceNode):
                stack.extend(current.value)
            elif isinstance(current, yaml.MappingNode):
                self.mismatch(current, ctx)
                return None
            else:
                value = scalar_value(current)
                if isinstance(value, int) and not isinstance(value, bool) and \
                        abs(value) >= MAX_INT:
                    ctx.error("integer is too large (the limit is 2**63)", ctx.where(current))
                    return None
        from .yaml_source import to_data
        return Item(to_data(node), ctx.where(node), node)

    def json(self, defs):
        defs["arg"] = {"anyOf": [{"type": ["number", "boolean", "string", "null"]},
                                 {"type": "array", "items": {"$ref": "#/$defs/arg"}}]}
        return {"$ref": "#/$defs/arg"}


@dataclass
class ModuleCall:
    """A module as written: a layer ``name`` with its arguments, a container (``children``)
    or a ``python`` reference; locations for errors."""

    name: str | None
    location: Location
    name_location: Location
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    args_location: Location | None = None
    children: list | None = None          # Sequential: list[ModuleCall]
    python: str | None = None


#: layers whose value is a list of modules rather than a list of arguments
CONTAINERS = ("Sequential",)

PYTHON_MODULE = Record({
    "python": Field(String(), "pkg.module:Name of a gradtool.nn.Module or torch.nn.Module "
                    "subclass (imports and runs that code)", required=True),
    "args": Field(ListOf(ArgValue()), "positional arguments of the constructor"),
    "kwargs": Field(MapOf(ArgValue(), "argument"), "keyword arguments of the constructor"),
}, what="a python module")


def _arguments(value) -> tuple:
    """YAML lists become tuples (``kernel_size: [3, 3]``), as torch's signatures expect."""
    if isinstance(value, list):
        return tuple(_arguments(v) for v in value)
    return value


class ModuleValue(Type):
    """``Name``, ``{Name: [args]}``, ``{Name: {kwargs}}``, ``{Sequential: [modules]}`` or
    ``{python: pkg.mod:Name, args: [...], kwargs: {...}}``.  Names are resolved by the
    loader (against the allow-list of gt.nn layers)."""

    expected = "a layer name, {Layer: [args]}, {Layer: {kwargs}} or {python: pkg.mod:Name}"

    def convert(self, node, ctx):
        where = ctx.where(node)
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":str"):
            if not is_identifier(node.value):
                ctx.error(f"'{node.value}' is not a layer name", where)
                return None
            return Item(ModuleCall(node.value, where, where), where, node)
        if not isinstance(node, yaml.MappingNode):
            self.mismatch(node, ctx)
            return None
        keys = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
        if "python" in keys:
            record = PYTHON_MODULE.convert(node, ctx)
            if record is None or not record.complete:
                return None
            fields = record.value
            args = fields.get("args")
            kwargs = fields.get("kwargs")
            call = ModuleCall(None, where, fields["python"].location,
                              _arguments(args.plain()) if args else (),
                              _arguments(kwargs.plain()) if kwargs else {},
                              (args or kwargs or fields["python"]).location,
                              python=fields["python"].value)
            return Item(call, where, node)
        pairs = list(_mapping_pairs(node, ctx))
        if len(pairs) != 1:
            ctx.error(f"a layer is a mapping with one key, the layer's name ({{Linear: [20, "
                      f"10]}}), got {len(pairs)} keys", where)
            return None
        name, key, value = pairs[0]
        name_at = ctx.where(key)
        if not is_identifier(name):
            ctx.error(f"'{name}' is not a layer name", name_at)
            return None
        if name in CONTAINERS:
            if not isinstance(value, yaml.SequenceNode):
                ctx.error(f"{name} takes a list of modules, got {kind_name(value)}",
                          ctx.where(value))
                return None
            children = [self.convert(child, ctx) for child in value.value]
            if any(c is None for c in children):
                return None
            return Item(ModuleCall(name, where, name_at, args_location=ctx.where(value),
                                   children=[c.value for c in children]), where, node)
        if isinstance(value, yaml.SequenceNode):
            args = ListOf(ArgValue()).convert(value, ctx)
            if args is None or not args.complete:
                return None
            return Item(ModuleCall(name, where, name_at, _arguments(args.plain()),
                                   args_location=args.location), where, node)
        if isinstance(value, yaml.MappingNode):
            kwargs = MapOf(ArgValue(), "argument").convert(value, ctx)
            if kwargs is None or not kwargs.complete:
                return None
            return Item(ModuleCall(name, where, name_at, (), _arguments(kwargs.plain()),
                                   args_location=kwargs.location), where, node)
        ctx.error(f"the arguments of {name} are a list ({{{name}: [...]}}) or a mapping "
                  f"({{{name}: {{...}}}}), got {kind_name(value)}", ctx.where(value),
                  hint=f"for one argument write {{{name}: [value]}}")
        return None

    def json(self, defs):
        arg = ArgValue().json(defs)
        defs["module"] = {"anyOf": [
            {"type": "string", "pattern": IDENTIFIER.pattern},
            PYTHON_MODULE.json(defs),
            {"type": "object", "minProperties": 1, "maxProperties": 1,
             "propertyNames": {"pattern": IDENTIFIER.pattern, "not": {"const": "python"}},
             "properties": {c: {"type": "array", "items": {"$ref": "#/$defs/module"}}
                            for c in CONTAINERS},
             "additionalProperties": {"anyOf": [
                 {"type": "array", "items": arg},
                 {"type": "object", "propertyNames": {"pattern": IDENTIFIER.pattern},
                  "additionalProperties": arg}]}},
        ]}
        return {"$ref": "#/$defs/module"}



# ---- rules between the keys of a mapping (one definition: the loader checks them, the
# JSON Schema states them as if/then) ------------------------------------------------------
@dataclass(frozen=True)
class In:
    """The key's value (or its default when absent) is one of ``values``."""

    values: tuple

    def holds(self, fields: dict, key: str, default) -> bool:
        return fields.get(key, default) in self.values

    def json(self, key: str, default) -> dict:
        condition = {"properties": {key: {"enum": list(self.values)}}}
        return condition if default in self.values else \
            {**condition, "required": [key]}


@dataclass(frozen=True)
class NotIn(In):
    """The key's value (or its default when absent) is not one of ``values``."""

    def holds(self, fields: dict, key: str, default) -> bool:
        return not super().holds(fields, key, default)

    def json(self, key: str, default) -> dict:
        condition = {"properties": {key: {"not": {"enum": list(self.values)}}}}
        return condition if default not in self.values else \
            {**condition, "required": [key]}


PRESENT = None      # a rule's condition on a key: only that it is given


@dataclass(frozen=True)
class Rule:
    """Key ``at`` is refused when it is given and every condition of ``when`` holds
    (``PRESENT``: that key is given too; ``In``/``NotIn``: its value, defaults counted).
    ``message`` is formatted with ``name`` (the mapping's name) and ``key``."""

    at: str
    when: tuple      # ((key, PRESENT | In | NotIn), ...)
    message: str

    def broken(self, fields: dict, defaults: dict) -> bool:
        if self.at not in fields:
            return False
        return all(key in fields if condition is PRESENT else
                   condition.holds(fields, key, defaults.get(key))
                   for key, condition in self.when)

    def json(self, defaults: dict) -> dict:
        condition: dict = {"required": [self.at]}
        parts = []
        for key, test in self.when:
            if test is PRESENT:
                condition["required"].append(key)
            else:
                parts.append(test.json(key, defaults.get(key)))
        if parts:
            condition = {"allOf": [condition, *parts]}
        return {"if": condition, "then": False}


@dataclass(frozen=True)
class Needs:
    """Without key ``unless``, the mapping needs ``key``; ``message`` is formatted with
    ``name`` and ``key`` (the missing key)."""

    key: str
    unless: str
    message: str

    @property
    def at(self) -> str:
        return self.key

    def broken(self, fields: dict, defaults: dict) -> bool:
        return self.unless not in fields and self.key not in fields

    def json(self, defaults: dict) -> dict:
        return {"if": {"not": {"required": [self.unless]}}, "then": {"required": [self.key]}}


# ---- the format -----------------------------------------------------------------------------
DTYPES = ("float64", "float32", "complex128")
INPUT_DTYPES = ("float64", "float32", "complex128", "int64", "bool")
METHODS = ("central", "forward", "richardson", "complex")
MODES = ("auto", "full", "fast")
INITS = ("normal", "uniform", "zeros", "ones", "arange")

_UNIT_PATTERN = r"^\s*[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?\s*{units}\s*$"

LIMITS = {
    "max_memory": Field(Limit(engine_limits.parse_bytes, "bytes, e.g. 512MiB, 2GB or 1e9",
                              _UNIT_PATTERN.format(units="([kKmMgGtT]i?[bB]|[kKmMgGtTbB])?")),
                        "budget of live tensor bytes of a check (512MiB, 2GB; 0: none)",
                        default=engine_limits.DEFAULT_MAX_MEMORY),
    "max_elements": Field(Limit(engine_limits.parse_count, "a count, e.g. 100000000 or 1e8",
                                _UNIT_PATTERN.format(units="[kKmMgG]?")),
                          "largest number of elements of one tensor (0: no cap)",
                          default=engine_limits.DEFAULT_MAX_ELEMENTS),
    "timeout": Field(Limit(engine_limits.parse_seconds, "seconds, e.g. 30, 30s, 5m or 1h",
                           _UNIT_PATTERN.format(units="(ms|s|sec|m|min|h)?")),
                     "time budget of a check (30s, 5m; 0: none)",
                     default=engine_limits.DEFAULT_TIMEOUT),
}

#: settings a check takes from ``defaults:`` when it does not set them itself
CONFIG = {
    "dtype": Field(Enum(*DTYPES), "floating dtype of the inputs", default="float64"),
    "eps": Field(Number(0, exclusive=True), "finite-difference step", default=1e-6),
    "atol": Field(Number(0), "absolute tolerance", default=1e-5),
    "rtol": Field(Number(0), "relative tolerance", default=1e-3),
    "seed": Field(Integer(0), "seed of the generated inputs", default=0),
    "method": Field(Enum(*METHODS), "finite-difference method", default="central"),
    "mode": Field(Enum(*MODES), "full Jacobians, fast (random projections) or auto",
                  default="auto"),
    "gradgrad": Field(Boolean(), "also check second derivatives", default=False),
    "forward_ad": Field(Boolean(), "also check forward-mode derivatives (JVPs)",
                        default=False),
    "nondet_tol": Field(Number(0), "tolerance for nondeterministic backward passes",
                        default=0.0),
    "tags": Field(ListOf(String()), "labels to select checks by; in defaults, added to "
                  "every check's tags", default=()),
    "limits": Field(Record(LIMITS, what="limits"), "resource limits: {max_memory, "
                    "max_elements, timeout}; in a check, each one given wins over defaults'",
                    default={}),
}

#: where an input's values come from: one of these
INPUT_SOURCES = ("value", "linspace", "shape")
#: keys that only apply to generated inputs
GENERATOR_KEYS = ("shape", "init", "low", "high", "mean", "std", "avoid", "positive",
                  "margin")

INPUT = Record({
    "value": Field(TensorValue(), "literal value (a number or nested lists)"),
    "shape": Field(ListOf(Integer(0)), "shape of a generated input ([] for a scalar)"),
    "init": Field(Enum(*INITS), "how to generate values (default normal; integer inputs: "
                  "uniform integers in [low, high))", default="normal"),
    "low": Field(Number(), "lower bound of init: uniform (default 0)"),
    "high": Field(Number(), "upper bound of init: uniform (default 1; 10 for integers)"),
    "mean": Field(Number(), "mean of init: normal (default 0)"),
    "std": Field(Number(0), "standard deviation of init: normal (default 1)"),
    "linspace": Field(Linspace(), "[start, stop, n]: n evenly spaced values"),
    "dtype": Field(Enum(*INPUT_DTYPES), "dtype (default: the check's dtype)"),
    "requires_grad": Field(Boolean(), "false: a constant (default true for floating "
                           "inputs; integer and boolean inputs never require grad)"),
    "avoid": Field(ListOf(Number()), "points generated values keep a margin from "
                   "(e.g. kinks: [0.0])"),
    "margin": Field(Number(0, exclusive=True), "distance kept from 'avoid' points and from 0 "
                    "with 'positive' (default max(0.1, 1000 * eps))"),
    "positive": Field(Boolean(), "make generated values strictly positive (|v| + margin)"),
}, what="an input", rules=(
    *(Rule(second, ((first, PRESENT),), f"input '{{name}}': '{{key}}' cannot be combined "
           f"with '{first}' (give one of value, linspace, shape)")
      for i, first in enumerate(INPUT_SOURCES) for second in INPUT_SOURCES[i + 1:]),
    *(Rule(key, (("value", PRESENT),), "input '{name}': '{key}' applies to generated "
           "inputs, not to a literal 'value'")
      for key in GENERATOR_KEYS if key not in INPUT_SOURCES),
    Rule("init", (("linspace", PRESENT),),
         "input '{name}': 'init' cannot be combined with 'linspace'"),
    *(Rule(key, (("init", NotIn((needs,))), ("dtype", NotIn(("int64",)))),
           f"input '{{name}}': '{{key}}' only applies to init: {needs}")
      for key, needs in (("low", "uniform"), ("high", "uniform"), ("mean", "normal"),
                         ("std", "normal"))),
    Rule("requires_grad", (("requires_grad", In((True,))), ("dtype", In(("int64", "bool")))),
         "input '{name}': {dtype} inputs cannot require grad (only floating and complex "
         "inputs can)"),
    *(Rule(key, (("dtype", In(("int64", "bool"))),),
           "input '{name}': '{key}' applies to floating inputs only")
      for key in ("avoid", "positive", "margin")),
    Rule("positive", (("positive", In((True,))), ("dtype", In(("complex128",)))),
         "input '{name}': complex inputs cannot be 'positive'"),
))

INPUT_VALUE = ByKind("a number, a list of numbers or an input mapping",
                     scalar=TensorValue(), sequence=TensorValue(), mapping=INPUT)

CHECK = Record({
    "name": Field(CheckName(), "unique name of the check", required=True),
    "expr": Field(Expression(), "the expression, or a program: assignments then the output "
                  "expression", required=True),
    "inputs": Field(MapOf(INPUT_VALUE, "input"), "the expression's inputs by name",
                    required=True),
    "wrt": Field(ListOf(WrtName(), min_items=1, too_few="wrt is empty: nothing to check"),
                 "inputs to differentiate with respect to (default: "
                 "those that require grad, plus the parameters of the modules called); "
                 "params: every parameter; net: the parameters of module net; net.0.weight: "
                 "one parameter"),
    **CONFIG,
    "expect": Field(Enum("pass", "fail"), "fail: the check passes only if gradtool finds a "
                    "gradient mismatch", default="pass"),
    "skip": Field(Skip(), "skip the check, giving this reason (or true)"),
}, what="a check")

#: the keys of a formula Function (a python: Function takes none of them)
FORMULA_KEYS = ("args", "forward", "backward", "jvp", "nondiff")

FUNCTION = Record({
    "args": Field(ListOf(Name()), "argument names, in call order"),
    "forward": Field(Expression(), "the output as an expression or program of the args"),
    "backward": Field(MapOf(Expression(), "argument"), "one VJP formula per differentiable "
                      "arg; sees the args, out, names assigned in forward and grad"),
    "jvp": Field(Expression(), "optional forward-mode rule; sees the args, out, and the "
                 "tangents <arg>_dot"),
    "nondiff": Field(ListOf(Name()), "args that get no gradient"),
    "python": Field(String(), "pkg.module:Name of a gradtool.autograd.Function or "
                    "torch.autograd.Function subclass (imports and runs that code)"),
}, what="a function", rules=(
    *(Rule(key, (("python", PRESENT),),
           "function '{name}': '{key}' cannot be combined with 'python'")
      for key in FORMULA_KEYS),
    *(Needs(key, "python", "function '{name}' needs '{key}' (or 'python: module:Name')")
      for key in ("args", "forward", "backward")),
))

#: the top-level sections, in the order they are loaded (functions before the checks that
#: call them)
TOP_LEVEL = {
    "version": Field(Const(1, "unsupported spec version {value} (the only version is 1)"),
                     "format version; only 1 exists"),
    "defaults": Field(Record(CONFIG, what="defaults"), "settings for every check"),
    "functions": Field(MapOf(FUNCTION, "function"), "custom autograd Functions by name"),
    "modules": Field(MapOf(ModuleValue(), "module"), "modules (gt.nn layers, or python "
                     "gradtool.nn / torch.nn Modules) by name, callable in expressions"),
    "checks": Field(ListOf(CHECK, min_items=1, too_few="no checks: 'checks' is empty (a "
                           "spec without checks would silently pass)"),
                    "the gradient checks", required=True),
}

SPEC = Record(TOP_LEVEL, what="the spec")


def json_schema() -> dict:
    """A JSON Schema (draft 2020-12) for spec files, generated from the table above."""
    defs: dict = {}
    schema = SPEC.json(defs)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "gradtool spec", **schema, "$defs": defs}
