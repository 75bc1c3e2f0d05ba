"""The expression language: what it computes, and where its runtime errors point."""

import numpy as np
import pytest

import gradtool as gt
from gradtool.errors import SpecError
from gradtool.spec import evaluate_program, parse_program

from .helpers import errors_of, load_text, one_error


@pytest.fixture
def env():
    return {"x": gt.tensor([1.0, 2.0, 3.0]), "m": gt.tensor([[1.0, 2.0], [3.0, 4.0]]),
            "i": gt.tensor([2, 0])}


@pytest.mark.parametrize("source, expected", [
    ("x + 1", [2.0, 3.0, 4.0]),
    ("2 * x - x / 2", [1.5, 3.0, 4.5]),
    ("x ** 2 // 3 % 2", [0.0, 1.0, 1.0]),
    ("-x + +x", [0.0, 0.0, 0.0]),
    ("m @ m", [[7.0, 10.0], [15.0, 22.0]]),
    ("m.T", [[1.0, 3.0], [2.0, 4.0]]),
    ("m.mT.sum(0)", [3.0, 7.0]),
    ("x[i]", [3.0, 1.0]),
    ("x[1:]", [2.0, 3.0]),
    ("m[:, None, 1]", [[2.0], [4.0]]),
    ("m[..., 0]", [1.0, 3.0]),
    ("x[-1]", 3.0),
    ("x.shape[0] * x", [3.0, 6.0, 9.0]),
    ("where(x > 1.5, x, 0.0)", [0.0, 2.0, 3.0]),
    ("(x >= 2) & (x < 3)", [False, True, False]),
    ("cat([x, x]).reshape([2, 3]).sum(dim=1)", [6.0, 6.0]),
    ("clamp(x, min=1.5, max=2.5)", [1.5, 2.0, 2.5]),
    ("x.sum(dtype=float32)", 6.0),
    ("h = x * 2\nh = h + 1\nh", [3.0, 5.0, 7.0]),
    ("a, b = m\na - b", [-2.0, -2.0]),
    ("h = x\nh += 1; h *= 2\nh", [4.0, 6.0, 8.0]),
    ("exp(x * 0) * pi", [np.pi] * 3),
    ("zeros(2) + ones([2]) + arange(2) + eye(2)[0]", [2.0, 2.0]),
])
def test_values(env, source, expected):
    out = evaluate_program(source, env)
    np.testing.assert_allclose(out.numpy(), expected)


def test_tuple_output_and_numbers(env):
    out = evaluate_program("x.sum(), x.mean()", env)
    assert isinstance(out, tuple) and [o.item() for o in out] == [6.0, 2.0]
    assert evaluate_program("2 ** 10 + 1", {}) == 1025
    assert evaluate_program("x.ndim", env) == 1


def test_program_keeps_positions():
    program = parse_program("h = x\nh.mm(y)")
    assert program.assigned == ("h",)
    with pytest.raises(SpecError) as info:
        evaluate_program(program, {"x": gt.ones(2, 3), "y": gt.ones(2, 3)})
    assert str(info.value) == "<expr>:2:3: .mm(): mat1 and mat2 shapes cannot be " \
        "multiplied (2x3 and 2x3)"
    assert info.value.location.end_column == 5


def test_shape_mismatch_names_both_shapes_at_the_operator():
    with pytest.raises(SpecError) as info:
        evaluate_program("x * 2 +  y", {"x": gt.ones(3), "y": gt.ones(4)})
    message = str(info.value)
    assert message.startswith("<expr>:1:7: operator '+' on shapes [3] and [4]: ")
    assert "(3)" in message and "(4)" in message


def test_builtin_type_errors_become_spec_errors():
    with pytest.raises(SpecError) as info:
        evaluate_program("exp(x, x)", {"x": gt.ones(2)})
    assert str(info.value) == "<expr>:1:1: exp(): takes 1 positional argument but 2 were " \
        "given"


@pytest.mark.parametrize("source, message", [
    ("x.T.shape.sum()", "1:11: '.sum()' needs a tensor, got Size"),
    ("(1, 2) * 3", "1:8: operator '*' needs tensors or numbers, got a tuple"),
    ("x[1.5]", "1:1: indexing: "),
    ("a, b, c = x[:2]\na", "1:1: cannot unpack"),
    ("pi.T", "1:4: '.T' needs a tensor, got a number"),
    ("x.reshape(2, 2)", "1:3: .reshape(): shape '[2, 2]' is invalid for input of size 3"),
])
def test_runtime_errors(source, message):
    with pytest.raises(SpecError) as info:
        evaluate_program(source, {"x": gt.ones(3)})
    assert str(info.value).startswith("<expr>:" + message), str(info.value)


@pytest.mark.parametrize("source, message", [
    ("x +", "1:4: invalid syntax"),
    ("x = 1", "1:1: a program must end with its output expression"),
    ("x * 2\nx", "1:1: only the last line may be a bare expression"),
    ("exp", "1:1: 'exp' is a function: call it, e.g. exp(x)"),
    ("x(1)", "1:1: 'x' is not a function"),
    ("pi = 3\npi", "1:1: cannot assign to 'pi': the name is reserved"),
    ("x = 3\nx", "1:1: cannot assign to 'x': it is an input"),
    ("x.sum", "1:3: '.sum' is a method: call it, e.g. x.sum()"),
    ("x.T()", "1:3: '.T' is an attribute, not a method"),
    ("x.smu()", "1:3: unknown tensor method or attribute 'smu' (did you mean 'sum'?)"),
    ("1 < x < 2", "1:3: chained comparisons are not allowed"),
    ("x if x else x", "1:1: conditional expressions are not allowed"),
    ("x and x", "1:1: 'and'/'or' are not allowed"),
    ("not x", "1:1: 'not' is not allowed"),
    ("'abc'", "1:1: strings are only allowed as function arguments"),
    ("{1: 2}", "1:1: dict literals are not allowed"),
    ("x[0] = 1\nx", "1:1: only assignments to names are allowed"),
    ("x in x", "1:1: only ==, !=, <, <=, >, >= comparisons are allowed"),
    ("x << 2", "1:1: operator LShift is not allowed"),
])
def test_static_errors(source, message):
    with pytest.raises(SpecError) as info:
        evaluate_program(source, {"x": gt.ones(3)})
    assert str(info.value).startswith("<expr>:" + message), str(info.value)


def test_string_arguments_are_allowed():
    out = evaluate_program('x.to("float32")', {"x": gt.ones(2)})
    assert out.dtype == gt.float32


def test_unicode_columns():
    with pytest.raises(SpecError) as info:
        evaluate_program("π = x * 2\nπ + é", {"x": gt.ones(2)})
    assert str(info.value) == "<expr>:2:5: unknown name 'é'"


def test_runtime_error_position_in_a_block_scalar():
    spec = load_text("""
        checks:
          - name: net
            expr: |
              h = x.mm(w1)
              h.mm(w1)
            inputs:
              x: {shape: [2, 3]}
              w1: {shape: [3, 4]}
        """)
    built = spec.checks[0].build()
    with pytest.raises(SpecError) as info:
        built.fn(*built.inputs)
    assert str(info.value) == "a.yaml:5:9: .mm(): mat1 and mat2 shapes cannot be multiplied " \
        "(2x4 and 3x4)"


def test_runtime_error_position_in_quoted_and_plain_scalars():
    spec = load_text("""
        checks:
          - {name: quoted, expr: "x  @  y", inputs: {x: {shape: [2]}, y: {shape: [3]}}}
          - {name: plain, expr: sum(x) + y.mm(y), inputs: {x: {shape: [2]}, y: {shape: [3]}}}
        """)
    errors = []
    for check in spec.checks:
        built = check.build()
        with pytest.raises(SpecError) as info:
            built.fn(*built.inputs)
        errors.append(str(info.value.location) + " " + info.value.message[:8])
    assert errors == ["a.yaml:2:30 operator", "a.yaml:3:36 .mm(): s"]


def test_errors_inside_function_formulas_point_into_the_function():
    spec = load_text("""
        functions:
          Lin:
            args: [x, w]
            forward: x @ w
            backward:
              x: grad @ w.T
              w: grad.T @ x
        checks:
          - {name: c, expr: "Lin(x, w).sum()", inputs: {x: {shape: [2, 3]}, w: {shape: [3]}}}
        """)
    with pytest.raises(SpecError) as info:
        spec.checks[0].build()                  # the dry run of the backward finds it
    assert str(info.value).startswith("a.yaml:6:15: operator '@' on shapes [2] and [3]")


def test_static_errors_in_a_spec_are_all_reported():
    errors = errors_of("""
        checks:
          - name: c
            expr: |
              h = lambda: 1
              h + x.__class__ + [i for i in x] + f"{x}" + open("f")
            inputs: {x: 1.0}
        """)
    assert errors == [
        "a.yaml:4:11: lambda expressions are not allowed",
        "a.yaml:5:13: attribute '__class__' is not allowed",
        "a.yaml:5:25: comprehensions are not allowed",
        "a.yaml:5:42: f-strings are not allowed",
    ]


def test_spec_functions_shadow_builtins_and_take_keywords():
    spec = load_text("""
        functions:
          relu:
            args: [x, y]
            forward: x * y
            backward: {x: grad * y, y: grad * x}
        checks:
          - {name: c, expr: "relu(y=x, x=x * 2)", inputs: {x: [1.0, -2.0]}}
        """)
    built = spec.checks[0].build()
    assert built.fn(*built.inputs).tolist() == [2.0, 8.0]


def test_unknown_function_in_a_spec():
    assert one_error("""
        checks:
          - {name: c, expr: sigmod(x), inputs: {x: 1.0}}
        """) == "a.yaml:2:21: unknown function 'sigmod' (did you mean 'sigmoid'?)"


def test_positions_through_quotes_escapes_and_folding():
    errors = errors_of("""
        checks:
          - name: single
            expr: 'x.to(''float32'') + y'
            inputs: {x: 1.0}
          - name: double
            expr: "x.to(\\"float32\\") + y"
            inputs: {x: 1.0}
          - name: folded
            expr: >
              x.to("float32")
              + y
            inputs: {x: 1.0}
          - name: literal
            expr: |-
              h = -x
              h + y
            inputs: {x: 1.0}
        """)
    assert errors == [
        "a.yaml:3:32: unknown name 'y'",
        "a.yaml:6:32: unknown name 'y'",
        "a.yaml:11:9: unknown name 'y'",
        "a.yaml:16:11: unknown name 'y'",
    ]
