"""Limits and refusals of the spec language: hostile input is refused quickly with a spec
error (exit code 2) before anything runs or allocates, never with a MemoryError, a hang or
code execution.  One test per limit."""

import ast
import time
from pathlib import Path

import pytest

import gradtool as gt
from gradtool.errors import LimitError, SpecError
from gradtool.spec import evaluate_program, load, loads, parse_input_value
from gradtool.spec.evaluate import MAX_DEPTH, MAX_EXPONENT
from gradtool.spec import yaml_source
from gradtool.spec.yaml_source import MAX_ALIASES, MAX_FILE_BYTES, MAX_NODES

SPEC_DIR = Path(__file__).resolve().parents[1] / "gradtool" / "spec"


class Quick:
    """Asserts the block finished within ``seconds``: a limit must refuse quickly."""

    def __init__(self, seconds: float = 10.0) -> None:
        # a runaway takes minutes: a generous bound keeps a loaded machine from failing it
        self.seconds = seconds

    def __enter__(self):
        self.start = time.perf_counter()

    def __exit__(self, *exc) -> None:
        elapsed = time.perf_counter() - self.start
        assert elapsed < self.seconds, f"took {elapsed:.1f}s"


def refused(source: str, env=None, cls=SpecError, **kwargs) -> SpecError:
    env = {"x": gt.ones(3)} if env is None else env
    with Quick(), pytest.raises(cls) as info:
        evaluate_program(source, env, **kwargs)
    assert info.value.exit_code == 2 and info.value.location is not None
    return info.value


# ---- forbidden syntax: refused before anything runs -----------------------------------------
@pytest.mark.parametrize("source, message", [
    ("__import__('os')", "name '__import__' is not allowed"),
    ("x.__class__", "attribute '__class__' is not allowed"),
    ("x.__class__.__mro__", "attribute '__mro__' is not allowed"),
    ("(lambda: 1)()", "lambda expressions are not allowed"),
    ("[i for i in x]", "comprehensions are not allowed"),
    ("f'{x}'", "f-strings are not allowed"),
    ("exp(*x)", "starred arguments (*args) are not allowed"),
    ("exp(**x)", "**kwargs are not allowed"),
    ("open('f')", "unknown function 'open'"),
    ("eval('1')", "unknown function 'eval'"),
    ("x.numpy()", "unknown tensor method or attribute 'numpy'"),
    ("x.grad_fn", "unknown tensor method or attribute 'grad_fn'"),
    ("x._data", "attribute '_data' is not allowed"),
    ("__builtins__", "name '__builtins__' is not allowed"),
    ("(y := x)", "assignment expressions (:=) are not allowed"),
    ("import os\nx", "import statements are not allowed"),
    ("def f(): pass\nx", "function definitions are not allowed"),
    ("x.add_(1)", "unknown tensor method or attribute 'add_'"),
    ("exp('x' * 100)", "strings are only allowed as function arguments"),
    ("x.to('" + "a" * 100 + "')", "string too long"),
    ("(x).__getattribute__('sum')", "attribute '__getattribute__' is not allowed"),
])
def test_forbidden_syntax(source, message, monkeypatch):
    calls = []
    monkeypatch.setattr("builtins.open", lambda *a, **k: calls.append(a))
    error = refused(source)
    assert message in str(error)
    assert calls == []


def test_methods_go_through_an_explicit_table():
    """No eval/exec/compile in the spec package, and no getattr with a computed name."""
    for path in SPEC_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            assert node.func.id not in ("eval", "exec", "compile", "__import__"), path
            if node.func.id in ("getattr", "setattr", "hasattr"):
                name = node.args[1]
                assert isinstance(name, ast.Constant) and isinstance(name.value, str), \
                    f"{path.name}:{node.lineno}: {node.func.id} with a computed name"


# ---- YAML -----------------------------------------------------------------------------------
BILLION_LAUGHS = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
checks: *i
"""


def test_billion_laughs():
    with Quick(), pytest.raises(LimitError) as info:
        loads(BILLION_LAUGHS, "bomb.yaml")
    assert f"more than {MAX_NODES:,} YAML nodes" in str(info.value)
    assert str(info.value).startswith("bomb.yaml:")


def test_too_many_aliases():
    text = "x: &x 1\ny: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]\n"
    with Quick(), pytest.raises(LimitError) as info:
        loads(text, "a.yaml")
    assert f"too many YAML aliases (more than {MAX_ALIASES})" in str(info.value)


def test_recursive_alias():
    with Quick(), pytest.raises(LimitError) as info:
        loads("checks: &c [*c]\n", "a.yaml")
    assert "recursive YAML alias" in str(info.value)


@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system ['echo pwned']",
    "!!python/name:os.system",
    "!!python/object:gradtool.spec.Spec {}",
    "!custom 1",
    "!!binary aGVsbG8=",
])
def test_object_tags_are_refused(tag):
    with Quick(), pytest.raises(SpecError) as info:
        loads(f"checks:\n  - name: {tag}\n", "a.yaml")
    assert "unsupported YAML tag" in str(info.value)
    assert str(info.value).startswith("a.yaml:2:11:")


def test_deep_yaml_nesting():
    with Quick(), pytest.raises(LimitError):
        loads("checks: " + "[" * 100_000 + "]" * 100_000, "a.yaml")


def test_file_size_cap(tmp_path):
    path = tmp_path / "big.yaml"
    with open(path, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)            # sparse: nothing is read
    with Quick(), pytest.raises(LimitError) as info:
        load(path)
    assert "spec file too large" in str(info.value)
    with Quick(), pytest.raises(LimitError):
        loads("#" * (MAX_FILE_BYTES + 1))


def test_node_cap_without_aliases(monkeypatch):
    monkeypatch.setattr(yaml_source, "MAX_NODES", 1000)    # the real cap: same code, slower
    text = "checks: [" + ", ".join(["1"] * 1001) + "]\n"
    with Quick(), pytest.raises(LimitError) as info:
        loads(text, "a.yaml")
    assert "more than 1,000 YAML nodes" in str(info.value)


# ---- expressions ----------------------------------------------------------------------------
def test_huge_exponents():
    assert "exponent" in str(refused("2**10**10", cls=LimitError))
    assert "exponent 100000 is too large" in str(refused("x ** 100000", cls=LimitError))
    assert "exponent" in str(refused("x ** -1e9", cls=LimitError))
    a = evaluate_program(f"x ** {MAX_EXPONENT}", {"x": gt.ones(2)})
    assert a.tolist() == [1.0, 1.0]
    assert "exponent" in str(refused("n = 10 ** 4\n3 ** n", cls=LimitError))


def test_integer_constants():
    assert "integer constant too large" in str(refused(str(2**63), cls=LimitError))
    assert "integer result too large" in str(refused("2**62 * 4", cls=LimitError))
    assert evaluate_program(str(2**63 - 1), {}) == 2**63 - 1


@pytest.mark.parametrize("source", [
    "(" * 30_000 + "x" + ")" * 30_000,
    "[" * 30_000 + "x" + "]" * 30_000,
    "-" * 90_000 + "x",
    "+".join(["x"] * 40_000),
    "x * (" * 101 + "x" + ")" * 101,
    "x" + ".exp()" * 15_000,
    "x" + ".exp()" * 200,
    "x" + "[0]" * 30_000,
    "2**" * 30_000 + "2",
])
def test_deep_nesting(source):
    error = refused(source, cls=LimitError)
    assert "nested" in str(error)


def test_deep_nesting_100000_levels():
    error = refused("(" * 100_000 + "x" + ")" * 100_000, cls=LimitError)
    assert "too long" in str(error)


def test_nesting_just_under_the_limit_works():
    source = "(" * (MAX_DEPTH - 2) + "x" + ")" * (MAX_DEPTH - 2)
    assert evaluate_program(source, {"x": gt.ones(1)}).tolist() == [1.0]


@pytest.mark.parametrize("source", [
    "ones(100000, 100000)",
    "zeros([100000, 100000])",
    "full((100000, 100000), 1.0)",
    "eye(100000)",
    "arange(0, 1e12)",
    "linspace(0, 1, 10**10)",
    "x.expand(100000, 100000)",
    "broadcast_to(x, (100000, 100000))",
])
def test_factory_calls_are_checked_before_allocating(source):
    error = refused(source, {"x": gt.ones(1)}, cls=LimitError)
    assert "over the limit of 100,000,000" in str(error)


def test_broadcast_of_two_long_vectors():
    x = gt.ones(100_000)
    error = refused("x.reshape(-1, 1) * x", {"x": x}, cls=LimitError)
    assert str(error).startswith("<expr>:1:18: operator '*' would create a tensor of "
                                 "10,000,000,000 elements")
    refused("x.reshape(-1, 1) @ x.reshape(1, -1)", {"x": x}, cls=LimitError)
    refused("x.reshape(-1, 1) > x", {"x": x}, cls=LimitError)


def test_engine_primitives_are_capped_too():
    x = gt.ones(20_000)
    error = refused("outer(x, x)", {"x": x}, cls=LimitError)
    assert "over the limit" in str(error)


def test_element_cap_is_configurable():
    assert evaluate_program("ones(10, 10).sum()", {}).item() == 100.0
    refused("ones(10, 10).sum()", {}, cls=LimitError, max_elements=50)
    refused("x * x.reshape(-1, 1)", {"x": gt.ones(10)}, cls=LimitError, max_elements=50)


def test_element_cap_on_spec_inputs():
    text = "checks: [{name: a, expr: x, inputs: {x: {shape: [100000, 100000]}}}]"
    with Quick(), pytest.raises(LimitError):
        loads(text)
    with Quick(), pytest.raises(LimitError):
        loads("checks: [{name: a, expr: x, inputs: {x: {linspace: [0, 1, 1000000000]}}}]")
    with Quick(), pytest.raises(LimitError):
        parse_input_value("{shape: [100000, 100000]}", "x").make()


def test_expression_size_cap():
    refused("x" + " + x" * 30_000, cls=LimitError)


def test_python_refs_can_be_refused():
    text = "functions: {F: {python: os:system}}\nchecks: [{name: a, expr: x, inputs: {x: 1}}]"
    with pytest.raises(SpecError) as info:
        loads(text, allow_python=False)
    assert "python functions are disabled" in str(info.value)
    with pytest.raises(SpecError) as info:
        loads(text)
    assert "'os:system' is not a gradtool.autograd.Function subclass" in str(info.value)


def test_functions_calling_functions_cannot_blow_up():
    lines = ["functions:", "  F0: {args: [x], forward: x * 2, backward: {x: grad * 2}}"]
    for i in range(1, 40):
        lines.append(f"  F{i}: {{args: [x], forward: 'F{i - 1}(F{i - 1}(x))', "
                     "backward: {x: grad}}")
    lines.append("checks: [{name: a, expr: F39(x), inputs: {x: 1.0}}]")
    with Quick(), pytest.raises(LimitError) as info:
        loads("\n".join(lines) + "\n", "a.yaml")
    assert str(info.value) == "a.yaml:19:3: function 'F17' expands to more than 1,000,000 " \
        "expression nodes (functions calling functions)"


def test_function_call_depth_cap():
    lines = ["functions:", "  F0: {args: [x], forward: x * 2, backward: {x: grad * 2}}"]
    for i in range(1, 400):
        lines.append(f"  F{i}: {{args: [x], forward: 'F{i - 1}(x) * 1.0', "
                     "backward: {x: grad * 2}}")
    lines.append("checks: [{name: a, expr: F399(x), inputs: {x: 1.0}}]")
    with Quick(), pytest.raises(LimitError) as info:
        loads("\n".join(lines) + "\n", "a.yaml")
    assert str(info.value) == "a.yaml:34:3: function 'F32' nests Function calls 33 levels " \
        "deep (the limit is 32)"


def test_deep_expressions_in_deep_function_calls_are_a_limit_error():
    nest = "-(" * 45, ")" * 45
    lines = ["functions:", f"  F0: {{args: [x], forward: '{nest[0]}x{nest[1]}', "
             "backward: {x: grad}}"]
    for i in range(1, 32):
        lines.append(f"  F{i}: {{args: [x], forward: '{nest[0]}F{i - 1}(x){nest[1]}', "
                     "backward: {x: grad}}")
    lines.append("checks: [{name: a, expr: F31(x), inputs: {x: 1.0}}]")
    spec = loads("\n".join(lines) + "\n", "a.yaml")
    with Quick(), pytest.raises(LimitError, match="expression nested too deeply while "
                                                  "running"):
        built = spec.checks[0].build()
        built.fn(*built.inputs)
