"""YAML with positions and limits: compose (never construct) a node tree, refusing what a
hostile file could use to exhaust memory or run code.

We stop at yaml's *node* level because nodes carry the line and column of everything a user
wrote, which every error message needs.  Scalars are turned into Python values only for the
standard tags (str, int, float, bool, null); any other tag (``!!python/object``...) is
refused.  Aliases are counted and their expanded size is capped, so a "billion laughs" file
is refused while it is being composed, before anything walks it.
"""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass
from typing import Any

import yaml

from ..errors import LimitError, Location, SpecError

#: largest spec file read, in bytes
MAX_FILE_BYTES = 10 * 2**20
#: largest number of YAML nodes in a file, counting every alias expansion
MAX_NODES = 100_000
#: most aliases (``*name``) a file may use
MAX_ALIASES = 100
#: deepest nesting of YAML lists/mappings
MAX_YAML_DEPTH = 64

_TAG = "tag:yaml.org,2002:"
STANDARD_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "seq",
                                              "map"))

# YAML 1.2 floats without a dot (``1e-6``): YAML 1.1 reads them as strings, which surprises
# everyone writing ``eps: 1e-6``.
_FLOAT_NO_DOT = re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$")


class _Loader(yaml.SafeLoader):
    """SafeLoader's reader/scanner/parser/composer with node, alias and depth limits."""

    def __init__(self, stream: str, filename: str) -> None:
        super().__init__(stream)
        self.filename = filename
        self.alias_count = 0
        self.depth = 0
        self.sizes: dict[int, int] = {}

    def _location(self, mark) -> Location:
        return Location(self.filename, mark.line + 1, mark.column + 1)

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                raise LimitError(f"too many YAML aliases (more than {MAX_ALIASES})",
                                 self._location(event.start_mark))
            node = super().compose_node(parent, index)
            if id(node) not in self.sizes:
                raise LimitError("recursive YAML alias (a node containing itself)",
                                 self._location(event.start_mark))
            return node
        event = self.peek_event()
        self.depth += 1
        if self.depth > MAX_YAML_DEPTH:
            raise LimitError(f"YAML nested more than {MAX_YAML_DEPTH} levels deep",
                             self._location(event.start_mark))
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if node.tag not in STANDARD_TAGS and event.tag in (None, "!"):
            node.tag = _TAG + "str"      # implicitly resolved timestamps, merge keys...
        if node.tag not in STANDARD_TAGS:
            raise SpecError(f"unsupported YAML tag '{node.tag}'",
                            self._location(node.start_mark),
                            hint="spec files are plain data: only standard YAML types")
        if isinstance(node, yaml.ScalarNode):
            self._check_scalar(node)
        self._count(node)
        return node

    def _check_scalar(self, node: yaml.ScalarNode) -> None:
        """A scalar whose value cannot be built (``!!float abc``, ``!!bool maybe``) or is
        not valid Unicode (a lone surrogate, ``"\\ud800"``) is an error at the node."""
        if _SURROGATE.search(node.value):
            raise SpecError("invalid Unicode: the text holds a lone surrogate "
                            "(an escape such as \\ud800)", self._location(node.start_mark))
        try:
            scalar_value(node)
        except (ValueError, KeyError, IndexError, TypeError):
            kind = node.tag.rsplit(":", 1)[-1]
            raise SpecError(f"{node.value!r} is not a valid !!{kind} value",
                            self._location(node.start_mark)) from None

    def _count(self, node) -> None:
        """Record the node's expanded size (itself plus everything under it, aliases
        expanded) and refuse the file once it passes MAX_NODES."""
        size = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                size += self.sizes.get(id(child), 1)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                size += self.sizes.get(id(key), 1) + self.sizes.get(id(value), 1)
        if size > MAX_NODES:
            raise LimitError(f"spec too large: more than {MAX_NODES:,} YAML nodes (aliases "
                             "expanded)", self._location(node.start_mark))
        self.sizes[id(node)] = size


_SURROGATE = re.compile("[\ud800-\udfff]")
_NEWLINE = re.compile("\n")

_Loader.add_implicit_resolver(_TAG + "float", _FLOAT_NO_DOT, list("-+0123456789"))

try:
    from yaml.cyaml import CParser
except ImportError:         # PyYAML built without libyaml: the pure-Python parser only
    CParser = None

if CParser is not None:
    class _FastLoader(CParser, _Loader):
        """The same composer and checks over libyaml's event parser (about 50 times faster
        than the pure-Python scanner: a 10 MB spec takes well under a second).  Used for
        ASCII text without control characters, where libyaml's marks (byte offsets) are
        character offsets and both parsers accept the same input; any syntax error is
        reported by the pure-Python parser (its messages)."""

        def __init__(self, stream: str, filename: str) -> None:
            CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            self.filename = filename
            self.alias_count = 0
            self.depth = 0
            self.sizes = {}

        def get_single_node(self):
            # Composer's (Python): its compose_node is _Loader's, with the limits
            return yaml.composer.Composer.get_single_node(self)

        def compose_scalar_node(self, anchor):
            node = super().compose_scalar_node(anchor)
            if node.style == "":        # libyaml's plain style; the Python parser's None
                node.style = None
            return node
else:
    _FastLoader = None


@dataclass(frozen=True)
class Source:
    """A spec file's text and name, to map node marks and expression offsets to locations."""

    filename: str
    text: str

    def location(self, mark, end_mark=None) -> Location:
        """Location of a yaml mark; with ``end_mark`` on the same line, the span's end."""
        end_column = None
        if end_mark is not None and end_mark.line == mark.line and \
                end_mark.column > mark.column:
            end_column = end_mark.column + 1
        return Location(self.filename, mark.line + 1, mark.column + 1, end_column)

    @functools.cached_property
    def line_starts(self) -> list[int]:
        """Index of the first character of each line (found once: a file with thousands
        of errors must not be scanned once per error)."""
        return [0] + [m.end() for m in _NEWLINE.finditer(self.text)]

    def index_location(self, index: int, end_index: int | None = None) -> Location:
        """Location of a character index into ``text``."""
        line = bisect.bisect_right(self.line_starts, index)
        line_start = self.line_starts[line - 1]
        column = index - line_start + 1
        end_column = None
        if end_index is not None and "\n" not in self.text[index:end_index]:
            end_column = column + max(end_index - index, 1)
        return Location(self.filename, line, column, end_column)


def compose(text: str, filename: str) -> yaml.Node | None:
    """Parse ``text`` into a yaml node tree (None for an empty document).

    Raises SpecError for syntax errors (at the position yaml reports) and LimitError for
    files over the size, node, alias or depth limits."""
    if len(text) > MAX_FILE_BYTES:
        raise LimitError(f"spec file too large ({len(text):,} characters; the limit is "
                         f"{MAX_FILE_BYTES:,})", Location(filename))
    if _FastLoader is not None and text.isascii() and \
            not yaml.reader.Reader.NON_PRINTABLE.search(text):
        loader = _FastLoader(text, filename)
        try:
            return loader.get_single_node()
        except yaml.YAMLError:
            pass                # reported below, in the pure-Python parser's words
        finally:
            loader.dispose()
    loader = None
    try:
        loader = _Loader(text, filename)     # its reader refuses control characters already
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, text, filename) from None
    except yaml.reader.ReaderError as exc:
        where = Source(filename, text).index_location(exc.position) \
            if isinstance(exc.position, int) and 0 <= exc.position <= len(text) \
            else Location(filename)
        code = ord(exc.character) if isinstance(exc.character, str) else exc.character
        what = f"character U+{code:04X}" if isinstance(code, int) else "a character"
        raise SpecError(f"YAML syntax error: {what} is not allowed (control characters "
                        "and invalid Unicode cannot appear in YAML)", where) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"YAML error: {exc}", Location(filename)) from None
    except RecursionError:
        raise LimitError("YAML nested too deeply", Location(filename)) from None
    finally:
        if loader is not None:
            loader.dispose()


#: contexts whose start is where the mistake is (an unclosed bracket or quote): the error
#: is reported there rather than where yaml gave up (often the end of the file)
_OPENED = ("while parsing a flow", "while scanning a quoted scalar",
           "while scanning a simple key", "while scanning a block scalar")


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, filename: str) -> SpecError:
    """A yaml syntax error at the mark that helps: the unclosed ``{`` or quote (the
    context mark) when yaml only noticed at the end of the file or in a later line, else
    the problem mark."""
    problem_mark, context_mark = exc.problem_mark, exc.context_mark
    problem = exc.problem or exc.context or "invalid YAML"
    mark = problem_mark or context_mark
    hint = None
    if context_mark is not None and exc.context and problem_mark is not None and \
            exc.context.startswith(_OPENED) and \
            (problem_mark.line, problem_mark.column) > (context_mark.line, context_mark.column):
        mark = context_mark
        where_found = "the end of the file" if not text[problem_mark.index:].strip() else \
            f"line {problem_mark.line + 1}, column {problem_mark.column + 1}"
        opened = exc.context.replace("while parsing a ", "").replace("while scanning a ", "")
        problem = f"this {opened} is not closed ({exc.problem} at {where_found})"
        if opened.startswith("flow"):
            hint = "close the bracket, or quote a value that holds , [ ] { } or :"
    elif exc.context and exc.problem:
        problem = f"{problem} ({exc.context})"
    where = Location(filename, mark.line + 1, mark.column + 1) if mark else \
        Location(filename)
    return SpecError(f"YAML syntax error: {problem}", where, hint)


def flow_split_errors(root: yaml.Node | None, filename: str) -> list[SpecError]:
    """Formulas cut by YAML's flow syntax: in ``{x: where(a, b, 0.0)}`` the commas end the
    value, so YAML reads ``where(a`` and two more keys.  A plain scalar inside ``{...}`` or
    ``[...]`` with an unclosed ``(`` is such a cut formula: one error at it, with the fix."""
    errors = []
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            continue
        for child in reversed(children):
            if node.flow_style and isinstance(child, yaml.ScalarNode) and \
                    child.style is None and child.value.count("(") > child.value.count(")"):
                mark = child.start_mark
                errors.append(SpecError(
                    f"YAML's flow syntax split this formula at its commas ('{child.value}' "
                    "is only its start)", Location(filename, mark.line + 1, mark.column + 1,
                                                   mark.column + 1 + len(child.value)),
                    hint="quote the formula (x: \"where(a, b, 0.0)\") or use the block form "
                         "(one 'key: value' per line)"))
            stack.append(child)
    return errors


_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_SCALARS = {
    _TAG + "str": lambda node: node.value,
    _TAG + "int": _CONSTRUCTOR.construct_yaml_int,
    _TAG + "float": _CONSTRUCTOR.construct_yaml_float,
    _TAG + "bool": _CONSTRUCTOR.construct_yaml_bool,
    _TAG + "null": lambda node: None,
}


def scalar_value(node: yaml.ScalarNode) -> Any:
    """The Python value of a scalar node (str, int, float, bool or None)."""
    return _SCALARS[node.tag](node)


def kind_name(node: yaml.Node) -> str:
    """How an error message names what the user wrote: 'a list', 'a string', ..."""
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    return {_TAG + "str": "a string", _TAG + "int": "an integer", _TAG + "float": "a number",
            _TAG + "bool": "a boolean", _TAG + "null": "nothing (null)"}.get(node.tag,
                                                                            "a value")


def to_data(node: yaml.Node | None) -> Any:
    """Plain Python data for a node tree (keys are their source text), e.g. to validate a
    file against the JSON Schema.  Iterative: deep trees do not recurse."""
    if node is None:
        return None
    root: list = [None]
    stack = [(node, root, 0)]
    while stack:
        current, parent, slot = stack.pop()
        if isinstance(current, yaml.ScalarNode):
            parent[slot] = scalar_value(current)
        elif isinstance(current, yaml.SequenceNode):
            items: list = [None] * len(current.value)
            parent[slot] = items
            stack.extend((child, items, i) for i, child in enumerate(current.value))
        else:
            mapping: dict = {}
            parent[slot] = mapping
            for key, value in current.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else str(to_data(key))
                mapping[name] = None
                stack.append((value, mapping, name))
    return root[0]


def load_data(text: str, filename: str = "<string>") -> Any:
    """A YAML text as plain Python data, with the same limits and scalar rules as specs."""
    return to_data(compose(text, filename))


class ScalarOrigin:
    """Maps character offsets inside a scalar's value back to the file.

    A ``|`` block keeps its lines, so the mapping is exact; plain, quoted and folded
    scalars are aligned character by character with the raw text (whitespace folding and
    escapes shift offsets; the characters themselves stay in order)."""

    def __init__(self, source: Source, node: yaml.ScalarNode) -> None:
        self.source = source
        self.node = node
        self._map: list[int] | None = None

    def _build(self) -> list[int]:
        text = self.source.text
        start, end = self.node.start_mark.index, self.node.end_mark.index
        style = self.node.style
        if style in ("|", ">"):
            start = text.find("\n", start, end) + 1 or end
        elif style in ("'", '"'):
            start += 1
        skip = " \t\r\n\\" + ("'" if style == "'" else "")
        positions = []
        j = start
        for ch in self.node.value:
            if ch in " \t\n":
                if j < end and text[j] in " \t\r\n":
                    positions.append(j)
                    j += 1
                    continue
            k = j
            while k < end and text[k] != ch and text[k] in skip:
                k += 1
            if k < end and text[k] == ch:
                positions.append(k)
                j = k + 1
            else:
                positions.append(min(j, max(end - 1, 0)))
        positions.append(j)
        return positions

    def location(self, offset: int, end_offset: int | None = None) -> Location:
        """Location in the file of character ``offset`` of the scalar's value."""
        if self._map is None:
            self._map = self._build()
        offset = min(max(offset, 0), len(self._map) - 1)
        index = self._map[offset]
        end_index = None
        if end_offset is not None:
            end_offset = min(max(end_offset, offset + 1), len(self._map) - 1)
            end_index = self._map[end_offset - 1] + 1
        return self.source.index_location(index, end_index)


class TextOrigin:
    """Origin of an expression given outside a file (command line): offsets are positions in
    the text itself, on line ``line``."""

    def __init__(self, filename: str, text: str, line: int = 1, column: int = 1) -> None:
        self.filename = filename
        self.text = text
        self.line = line
        self.column = column

    def location(self, offset: int, end_offset: int | None = None) -> Location:
        before = self.text[:offset]
        line = before.count("\n")
        column = offset - (before.rfind("\n") + 1) + (self.column if line == 0 else 1)
        end_column = None
        if end_offset is not None and "\n" not in self.text[offset:end_offset]:
            end_column = column + max(end_offset - offset, 1)
        return Location(self.filename, self.line + line, column, end_column)
