"""Inputs: literal values, generated values (reproducible per name), dtypes, avoid/positive,
and the command-line form parse_input_value."""

import zlib

import numpy as np
import pytest

import gradtool as gt
from gradtool.errors import LimitError, SpecError
from gradtool.spec import InputSpec, parse_input_value

from .helpers import load_text


def build_inputs(inputs: str, **check):
    extra = "".join(f", {k}: {v}" for k, v in check.items())
    spec = load_text(f"checks: [{{name: c, expr: '0', inputs: {inputs}{extra}}}]")
    return spec.checks[0], spec.checks[0].build()


def test_literal_values_take_the_check_dtype():
    check, built = build_inputs("{a: 0.0, b: [1, 2], c: {value: [[1, 2]], dtype: int64}, "
                                "d: {value: [true, false], dtype: bool}}", dtype="float32")
    a, b, c, d = (built.all_inputs[n] for n in "abcd")
    assert a.dtype == gt.float32 and a.shape == () and a.requires_grad
    assert b.dtype == gt.float32 and b.tolist() == [1.0, 2.0]
    assert c.dtype == gt.int64 and not c.requires_grad
    assert d.dtype == gt.bool and d.tolist() == [True, False]
    assert check.wrt == ("a", "b") and built.input_names == ["a", "b"]


def test_generated_values_are_seeded_by_check_seed_and_name():
    _, built = build_inputs("{x: {shape: [3, 2]}, y: {shape: [4]}}", seed=7)
    rng = np.random.default_rng([7, zlib.crc32(b"x")])
    np.testing.assert_array_equal(built.all_inputs["x"].detach().numpy(),
                                  rng.normal(0.0, 1.0, size=(3, 2)))
    _, again = build_inputs("{y: {shape: [4]}, z: {shape: [1]}, x: {shape: [3, 2]}}", seed=7)
    for name in "xy":
        np.testing.assert_array_equal(built.all_inputs[name].detach().numpy(),
                                      again.all_inputs[name].detach().numpy())
    _, other = build_inputs("{x: {shape: [3, 2]}}", seed=8)
    assert not np.array_equal(other.all_inputs["x"].detach().numpy(),
                              built.all_inputs["x"].detach().numpy())


def test_inits():
    _, built = build_inputs(
        "{u: {shape: [1000], init: uniform, low: 2, high: 3}, "
        "n: {shape: [1000], init: normal, mean: 5, std: 0.1}, z: {shape: [2], init: zeros}, "
        "o: {shape: [2], init: ones}, r: {shape: [2, 2], init: arange}, "
        "l: {linspace: [0, 1, 5]}, i: {shape: [100], dtype: int64, low: 3, high: 5}, "
        "c: {shape: [2], dtype: complex128}}")
    values = {k: v.detach().numpy() for k, v in built.all_inputs.items()}
    assert 2 <= values["u"].min() and values["u"].max() < 3
    assert abs(values["n"].mean() - 5) < 0.05
    assert values["z"].tolist() == [0, 0] and values["o"].tolist() == [1, 1]
    assert values["r"].tolist() == [[0, 1], [2, 3]]
    assert values["l"].tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert set(values["i"].tolist()) == {3, 4} and values["i"].dtype == np.int64
    assert values["c"].dtype == np.complex128 and np.all(values["c"].imag != 0)
    assert "i" not in built.input_names and "c" in built.input_names


def test_avoid_keeps_a_margin_deterministically():
    _, built = build_inputs("{x: {shape: [2000], init: uniform, low: -1, high: 1, "
                            "avoid: [0.0, 0.5]}}")
    x = built.all_inputs["x"].detach().numpy()
    assert np.abs(x).min() >= 0.1 - 1e-12 and np.abs(x - 0.5).min() >= 0.1 - 1e-12
    _, custom = build_inputs("{x: {shape: [100], avoid: [0], margin: 0.5}}")
    assert np.abs(custom.all_inputs["x"].detach().numpy()).min() >= 0.5 - 1e-12
    _, again = build_inputs("{x: {shape: [2000], init: uniform, low: -1, high: 1, "
                            "avoid: [0.0, 0.5]}}")
    np.testing.assert_array_equal(x, again.all_inputs["x"].detach().numpy())


def test_avoid_margin_grows_with_eps():
    _, built = build_inputs("{x: {shape: [500], avoid: [0]}}", eps=1e-3)
    assert np.abs(built.all_inputs["x"].detach().numpy()).min() >= 1.0 - 1e-12


def test_positive():
    _, built = build_inputs("{x: {shape: [500], positive: true}}")
    assert built.all_inputs["x"].detach().numpy().min() >= 0.1


def test_requires_grad_false_is_a_constant():
    check, built = build_inputs("{x: {shape: [2], requires_grad: false}, w: {shape: [2]}}")
    assert check.wrt == ("w",)
    assert not built.all_inputs["x"].requires_grad and built.inputs[0].requires_grad


def test_wrt_subset():
    check, built = build_inputs("{x: {shape: [2]}, w: {shape: [2]}}", wrt="[w]")
    assert check.wrt == ("w",) and built.input_names == ["w"]
    assert not built.all_inputs["x"].requires_grad


def test_parse_input_value():
    spec = parse_input_value("[1, 2, 3]", "x")
    assert isinstance(spec, InputSpec) and spec.value == [1, 2, 3]
    assert spec.make().tolist() == [1.0, 2.0, 3.0]
    spec = parse_input_value("{shape: [2, 3], init: uniform}", "w")
    assert spec.make(seed=1).shape == (2, 3) and spec.wants_grad("float64")
    assert parse_input_value("{value: 2, requires_grad: false}", "c").wants_grad("float64") \
        is False
    assert parse_input_value("1e-3", "s").value == 1e-3


@pytest.mark.parametrize("text, message", [
    ("{shape: [2], int: normal}", "<input x>:1:14: unknown key 'int' in an input (did you mean "
     "'init'?)"),
    ("[1, 2", "<input x>:1:1: YAML syntax error"),
    ("{shape: [2], init: gauss}", "<input x>:1:20: expected one of normal, uniform, zeros, "
     "ones, arange, got 'gauss'"),
    ("", "<input x>:1:1: input 'x' has no value"),
    ("abc", "<input x>:1:1: expected a number or a (nested) list of numbers, got 'abc'"),
])
def test_parse_input_value_errors(text, message):
    with pytest.raises(SpecError) as info:
        parse_input_value(text, "x")
    assert str(info.value).startswith(message), str(info.value)


def test_make_checks_the_element_cap_before_allocating():
    spec = parse_input_value("{shape: [100000, 100000]}", "x")
    with pytest.raises(LimitError) as info:
        spec.make()
    assert "input 'x' would have 10,000,000,000 elements" in str(info.value)
