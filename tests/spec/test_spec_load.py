"""Loading spec files: the full example, defaults, and every kind of load error with its
exact file:line:col."""

import sys

import pytest

from gradtool.errors import LimitError, SpecError, SpecErrors
from gradtool.spec import CheckSpec, load, loads

from .helpers import FIXTURES, errors_of, load_text, one_error

EXAMPLE = FIXTURES / "example.yaml"


def test_example_loads(fixtures_on_path):
    spec = load(EXAMPLE)
    assert spec.path == str(EXAMPLE)
    assert list(spec.functions) == ["P3", "LinearFunction", "MulConstant", "MyP3", "BadSquare"]
    assert spec.functions["MyP3"].__name__ == "LegendrePolynomial3"
    names = [c.name for c in spec.checks]
    assert names == ["legendre", "two-layer net", "relu away from the kink",
                     "a known-bad backward"]
    legendre, net, relu, bad = spec.checks
    assert isinstance(legendre, CheckSpec)
    assert legendre.expr == "a + b * P3(c + d * x)"
    assert list(legendre.inputs) == ["x", "a", "b", "c", "d"]
    assert legendre.wrt == ("a", "b", "c", "d")           # x has requires_grad: false
    assert (legendre.eps, legendre.atol, legendre.rtol, legendre.seed) == (1e-6, 1e-5, 1e-3, 0)
    assert (legendre.dtype, legendre.method, legendre.mode) == ("float64", "central", "auto")
    assert legendre.expect == "pass" and legendre.skip is None and legendre.tags == ()
    assert str(legendre.location) == f"{EXAMPLE}:36:5"
    assert net.gradgrad is True and net.wrt == ("w1", "w2")
    assert net.expr == "h = x.mm(w1).clamp(min=0)\n((h.mm(w2) - y) ** 2).sum()\n"
    assert relu.inputs["x"].avoid == (0.0,)
    assert bad.expect == "fail"


def test_example_builds(fixtures_on_path):
    spec = load(EXAMPLE)
    built = spec.checks[0].build()
    assert built.input_names == ["a", "b", "c", "d"]
    assert [t.requires_grad for t in built.inputs] == [True] * 4
    assert built.all_inputs["x"].shape == (200,) and not built.all_inputs["x"].requires_grad
    out = built.fn(*built.inputs)
    assert out.shape == (200,)
    net = spec.checks[1].build()
    assert net.fn(*net.inputs).shape == ()


def test_python_ref_that_does_not_import(monkeypatch):
    for name in ("mypkg", "mypkg.ops"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    text = EXAMPLE.read_text()
    with pytest.raises(SpecError) as info:
        loads(text, "example.yaml")
    assert str(info.value).startswith("example.yaml:29:13: cannot import module 'mypkg.ops'")


def test_allow_python_false(fixtures_on_path):
    with pytest.raises(SpecError) as info:
        load(EXAMPLE, allow_python=False)
    assert info.value.location.line == 29 and info.value.location.column == 13
    assert "python functions are disabled" in info.value.message


@pytest.mark.parametrize("ref, message", [
    ("mypkg.ops:NOT_A_FUNCTION", "'mypkg.ops:NOT_A_FUNCTION' is not a gradtool.autograd."
     "Function subclass"),
    ("mypkg.ops:LegendrePolynomial", "module 'mypkg.ops' has no attribute "
     "'LegendrePolynomial' (did you mean 'LegendrePolynomial3'?)"),
    ("mypkg.ops", "python reference 'mypkg.ops' must look like 'package.module:Name'"),
    ("mypkg.nope:F", "cannot import module 'mypkg.nope': ModuleNotFoundError"),
])
def test_bad_python_refs(fixtures_on_path, ref, message):
    error = one_error(f"""
        functions:
          F:
            python: {ref}
        checks:
          - {{name: c, expr: F(x), inputs: {{x: 1.0}}}}
        """)
    assert error.startswith(f"a.yaml:3:13: {message}")


def test_python_ref_next_to_the_spec_file(tmp_path):
    (tmp_path / "myops.py").write_text((FIXTURES / "mypkg" / "ops.py").read_text())
    path = tmp_path / "s.yaml"
    path.write_text("functions:\n  P:\n    python: myops:LegendrePolynomial3\n"
                    "checks:\n  - {name: c, expr: P(x), inputs: {x: [1.0, 2.0]}}\n")
    spec = load(path)
    built = spec.checks[0].build()
    assert built.fn(*built.inputs).tolist() == [1.0, 17.0]


@pytest.mark.parametrize("text", ["", "\n# only a comment\n", "---\n"])
def test_empty_file(text):
    with pytest.raises(SpecError) as info:
        loads(text, "e.yaml")
    assert str(info.value) == "e.yaml:1:1: empty spec file: expected a mapping with a " \
        "'checks:' list"


def test_no_checks():
    assert one_error("checks: []\n") == "a.yaml:1:9: no checks: 'checks' is empty (a spec " \
        "without checks would silently pass)"
    assert one_error("defaults: {eps: 1.0e-3}\n") == \
        "a.yaml:1:1: missing required key 'checks' in the spec"
    assert one_error("- 1\n- 2\n") == "a.yaml:1:1: expected a mapping, got a list"


def test_yaml_syntax_error_location():
    error = one_error("""
        checks:
          - name: a
            expr: [1, 2
        """)
    # at the unclosed bracket, not at the end of the file where yaml gave up
    assert error.startswith("a.yaml:3:11: YAML syntax error: this flow sequence is not "
                            "closed (expected ',' or ']', but got '<stream end>' at "
                            "the end of the file)")


def test_wrong_types():
    errors = errors_of("""
        defaults:
          eps: [1]
          gradgrad: 3
          seed: -1
          method: centrl
        checks:
          - name: 5
            expr: x
            inputs: {x: {shape: 3}}
            tags: nope
        """)
    assert errors == [
        "a.yaml:2:8: expected a number > 0, got a list",
        "a.yaml:3:13: expected true or false, got an integer",
        "a.yaml:4:9: expected an integer >= 0, got -1",
        "a.yaml:5:11: expected one of central, forward, richardson, complex, got 'centrl' "
        "(did you mean 'central'?)",
        "a.yaml:9:25: expected a list of integers >= 0, got an integer",
        "a.yaml:10:11: expected a list of strings, got 'nope'",
    ]


def test_unknown_keys_with_suggestions():
    errors = errors_of("""
        checks:
          - name: a
            exrp: x
            inputs: {x: {shap: [2]}}
        """)
    assert errors == [
        "a.yaml:2:5: missing required key 'expr' in a check",
        "a.yaml:3:5: unknown key 'exrp' in a check (did you mean 'expr'?)",
        "a.yaml:4:18: unknown key 'shap' in an input (did you mean 'shape'?)",
    ]


def test_duplicate_keys_name_both_locations():
    error = one_error("""
        checks:
          - name: a
            expr: x * 2
            inputs: {x: 1.0}
            expr: x * 3
        """)
    assert error == "a.yaml:5:5: duplicate key 'expr' (first defined at line 3, column 5)"


def test_duplicate_check_names():
    error = one_error("""
        checks:
          - {name: same, expr: x, inputs: {x: 1.0}}
          - {name: same, expr: x, inputs: {x: 2.0}}
        """)
    assert error == "a.yaml:3:12: duplicate check name 'same' (first used at line 2)"


def test_unknown_names_and_functions_plain_scalar():
    errors = errors_of("""
        checks:
          - name: a
            expr: sigmod(x) + y
            inputs: {x: 1.0, z: 2.0}
        """)
    assert errors == [
        "a.yaml:3:11: unknown function 'sigmod' (did you mean 'sigmoid'?)",
        "a.yaml:3:23: unknown name 'y'",
    ]


def test_unknown_name_quoted_and_block_scalars():
    errors = errors_of("""
        checks:
          - name: quoted
            expr: "x + wieght"
            inputs: {x: 1.0, weight: 2.0}
          - name: block
            expr: |
              h = x * 2
              h + exp(wieght)
            inputs: {x: 1.0, weight: 2.0}
        """)
    assert errors == [
        "a.yaml:3:16: unknown name 'wieght' (did you mean 'weight'?)",
        "a.yaml:8:15: unknown name 'wieght' (did you mean 'weight'?)",
    ]


def test_folded_plain_scalar_positions():
    error = one_error("""
        checks:
          - name: folded
            expr: x +
              2 * y
            inputs: {x: 1.0}
        """)
    assert error == "a.yaml:4:11: unknown name 'y'"


def test_wrong_argument_count_for_spec_functions():
    errors = errors_of("""
        functions:
          Sq:
            args: [x]
            forward: x * x
            backward: {x: 2 * x * grad}
        checks:
          - name: a
            expr: Sq(x, x) + Sq(y=x)
            inputs: {x: 1.0}
        """)
    assert errors == [
        "a.yaml:8:11: Sq() takes 1 argument (x), got 2",
        "a.yaml:8:22: Sq() has no argument 'y'",
    ]


def test_function_definition_errors():
    errors = errors_of("""
        functions:
          F:
            args: [x, grad, c, x]
            nondiff: [c, k]
            forward: x * c
            backward:
              x: grad
              c: grad
              z: grad
          G:
            args: [a]
            forward: a, a
            backward: {a: grad}
          H:
            forward: 1
        checks:
          - {name: a, expr: x, inputs: {x: 1.0}}
        """)
    assert errors == [
        "a.yaml:3:15: function 'F': 'grad' is reserved and cannot be an argument name",
        "a.yaml:3:24: function 'F': argument 'x' is listed twice",
        "a.yaml:4:18: function 'F': nondiff names unknown arg 'k'",
        "a.yaml:8:7: function 'F': 'c' is nondiff, so it cannot have a backward formula",
        "a.yaml:9:7: function 'F': backward formula for unknown arg 'z'",
        "a.yaml:12:14: function 'G': forward returns a tuple; Functions with several "
        "outputs are not supported",
        "a.yaml:15:5: function 'H' needs 'args' (or 'python: module:Name')",
        "a.yaml:15:5: function 'H' needs 'backward' (or 'python: module:Name')",
    ]


def test_missing_backward_formula_and_formula_names():
    errors = errors_of("""
        functions:
          F:
            args: [x, y]
            forward: |
              s = x * y
              s + 1
            backward:
              x: grad * y + s * 0 + out * 0 + q
            jvp: x_dot * y + y_dot * x + z_dot
        checks:
          - {name: a, expr: "F(x, x)", inputs: {x: 1.0}}
        """)
    assert errors == [
        "a.yaml:7:5: function 'F': no backward formula for arg 'y'",
    ]
    errors = errors_of("""
        functions:
          F:
            args: [x, y]
            forward: |
              s = x * y
              s + 1
            backward:
              x: grad * y + s * 0 + out * 0 + q
              y: grad * x
            jvp: x_dot * y + y_dot * x + z_dot
        checks:
          - {name: a, expr: "F(x, x)", inputs: {x: 1.0}}
        """)
    assert errors == [
        "a.yaml:8:39: unknown name 'q'",
        "a.yaml:10:34: unknown name 'z_dot' (did you mean 'y_dot'?)",
    ]


def test_recursive_functions_are_refused():
    errors = errors_of("""
        functions:
          A:
            args: [x]
            forward: B(x)
            backward: {x: grad}
          B:
            args: [x]
            forward: A(x) * 2
            backward: {x: grad}
        checks:
          - {name: a, expr: A(x), inputs: {x: 1.0}}
        """)
    assert errors == ["a.yaml:2:3: function 'A' calls itself (A -> B -> A)"]


def test_version():
    assert one_error("version: 2\nchecks: [{name: a, expr: x, inputs: {x: 1.0}}]\n") == \
        "a.yaml:1:10: unsupported spec version 2 (the only version is 1)"
    spec = load_text("version: 1\nchecks: [{name: a, expr: x, inputs: {x: 1.0}}]\n")
    assert spec.version == 1


def test_wrt_errors():
    errors = errors_of("""
        checks:
          - name: a
            expr: x * i
            inputs:
              x: {shape: [2]}
              i: {value: [0, 1], dtype: int64}
            wrt: [x, i, xx]
          - name: b
            expr: x
            inputs: {x: {shape: [2], requires_grad: false}}
        """)
    assert errors == [
        "a.yaml:7:14: wrt input 'i' is int64; only floating and complex inputs can be "
        "differentiated",
        "a.yaml:7:17: wrt names unknown input 'xx' (did you mean 'x'?)",
        "a.yaml:10:13: nothing to check: no input requires grad",
    ]


def test_input_errors():
    errors = errors_of("""
        checks:
          - name: a
            expr: x + y + z + w + grad
            inputs:
              x: [[1, 2], [3]]
              y: {value: 1.0, shape: [2]}
              z: {shape: [2], init: normal, low: 0}
              w: {dtype: int64, requires_grad: true}
              grad: 1.0
        """)
    assert errors == [
        "a.yaml:5:10: input 'x': nested lists must be rectangular (all rows the same "
        "length)",
        "a.yaml:6:23: input 'y': 'shape' cannot be combined with 'value' (give one of value, "
        "linspace, shape)",
        "a.yaml:7:37: input 'z': 'low' only applies to init: uniform",
        "a.yaml:8:25: input 'w': int64 inputs cannot require grad (only floating and complex "
        "inputs can)",
        "a.yaml:9:7: 'grad' is reserved and cannot be an input name",
    ]


def test_forward_ad_needs_jvp():
    error = one_error("""
        functions:
          Sq:
            args: [x]
            forward: x * x
            backward: {x: 2 * x * grad}
        checks:
          - {name: a, expr: Sq(x), inputs: {x: 1.0}, forward_ad: true}
        """)
    assert error == "a.yaml:7:58: forward_ad: true needs a jvp formula in function 'Sq'"


def test_defaults_and_tags_merge():
    spec = load_text("""
        defaults: {eps: 1e-4, tags: [slow], method: richardson, gradgrad: true}
        checks:
          - {name: a, expr: x, inputs: {x: 1.0}, tags: [fast, slow], eps: 1e-3}
          - {name: b, expr: x, inputs: {x: 1.0}, skip: not today, expect: fail}
        """)
    a, b = spec.checks
    assert a.eps == 1e-3 and b.eps == 1e-4              # YAML 1.2 floats without a dot
    assert a.tags == ("slow", "fast") and b.tags == ("slow",)
    assert a.method == b.method == "richardson" and a.gradgrad
    assert b.skip == "not today" and b.expect == "fail"


def test_several_errors_in_one_file_are_all_reported():
    with pytest.raises(SpecErrors) as info:
        load_text("""
            defaults: {eps: -1}
            checks:
              - {name: a, expr: sigmod(x), inputs: {x: 1.0}}
              - {name: b, expr: "x +", inputs: {x: 1.0}}
              - {name: c, expr: x, inputs: {x: 1.0}, colour: red}
            """)
    error = info.value
    assert [str(e.location) for e in error.errors] == ["a.yaml:1:17", "a.yaml:3:21",
                                                        "a.yaml:4:25", "a.yaml:5:42"]
    assert str(error).splitlines()[0] == "a.yaml:1:17: expected a number > 0, got -1"
    assert len(str(error).splitlines()) == len(error.errors) == 4
    assert error.exit_code == 2


def test_load_missing_file(tmp_path):
    with pytest.raises(SpecError) as info:
        load(tmp_path / "nope.yaml")
    assert "cannot read spec file" in str(info.value)


def test_load_non_utf8(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"checks: \xff\xfe\n")
    with pytest.raises(SpecError) as info:
        load(path)
    assert "not UTF-8" in str(info.value)


def test_element_cap_on_inputs_at_load():
    with pytest.raises(LimitError) as info:
        load_text("checks: [{name: a, expr: x, inputs: {x: {shape: [1000]}}}]",
                  max_elements=100)
    assert "input 'x' would have 1,000 elements, over the limit of 100" in str(info.value)


@pytest.mark.parametrize("value, message", [
    ("!!float abc", "a.yaml:5:11: 'abc' is not a valid !!float value"),
    ("!!int abc", "a.yaml:5:11: 'abc' is not a valid !!int value"),
    ("!!bool maybe", "a.yaml:5:11: 'maybe' is not a valid !!bool value"),
    ("!!float ''", "a.yaml:5:11: '' is not a valid !!float value"),
    ('"\\ud800"', "a.yaml:5:11: invalid Unicode: the text holds a lone surrogate"),
])
def test_scalar_that_cannot_be_built_is_an_error_at_it(value, message):
    text = f"""\
    checks:
      - name: a
        expr: x
        inputs: {{x: 1.0}}
        seed: {value}
    """
    assert one_error(text).startswith(message)


def test_control_character_is_an_error_at_it():
    error = one_error("checks:\n  - name: a\x01b\n    expr: x\n    inputs: {x: 1.0}\n")
    assert error.startswith("a.yaml:2:12: YAML syntax error: character U+0001 is not allowed")


def test_undecodable_or_nul_character_in_an_expression():
    error = one_error('checks:\n  - name: a\n    expr: "x\\0"\n    inputs: {x: 1.0}\n')
    assert error == "a.yaml:3:13: invalid character U+0000 in the expression (not valid text)"


@pytest.mark.parametrize("name", ['""', '"   "'])
def test_blank_check_name_is_an_error(name):
    text = f"""\
    checks:
      - name: {name}
        expr: x
        inputs: {{x: 1.0}}
    """
    assert one_error(text) == "a.yaml:2:11: a check name cannot be empty"


def test_wrt_entry_given_twice_is_an_error():
    text = """\
    checks:
      - name: a
        expr: x * y
        inputs: {x: 1.0, y: 2.0}
        wrt: [x, x]
    """
    assert one_error(text) == "a.yaml:5:14: wrt lists 'x' twice (first at line 5, column 11)"


def test_shape_with_value_is_one_error_not_two():
    text = """\
    checks:
      - name: a
        expr: x
        inputs: {x: {shape: [3], value: 1.0}}
    """
    assert one_error(text) == ("a.yaml:4:18: input 'x': 'shape' cannot be combined with "
                               "'value' (give one of value, linspace, shape)")
