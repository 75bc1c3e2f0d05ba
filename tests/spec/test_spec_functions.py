"""Functions written in a spec: values, gradients (first and second order), JVPs, nondiff
args, and errors of their formulas."""

import numpy as np
import pytest

import gradtool as gt
from gradtool.autograd import forward_ad as fwAD
from gradtool.checker import check
from gradtool.errors import SpecError
from gradtool.spec import load

from .helpers import FIXTURES, load_text


@pytest.fixture
def example(fixtures_on_path):
    return load(FIXTURES / "example.yaml")


def test_p3_forward_backward_and_name(example):
    P3 = example.functions["P3"]
    x = gt.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    out = P3.apply(x)
    xs = x.detach().numpy()
    np.testing.assert_allclose(out.detach().numpy(), 0.5 * (5 * xs**3 - 3 * xs))
    assert out.grad_fn.name() == "P3Backward"
    (g,) = gt.autograd.grad(out.sum(), [x])
    np.testing.assert_allclose(g.numpy(), 1.5 * (5 * xs**2 - 1))


def test_p3_second_order(example):
    P3 = example.functions["P3"]
    x = gt.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    (g,) = gt.autograd.grad(P3.apply(x).sum(), [x], create_graph=True)
    (gg,) = gt.autograd.grad(g.sum(), [x])
    np.testing.assert_allclose(gg.numpy(), 15 * x.detach().numpy())


def test_p3_jvp(example):
    P3 = example.functions["P3"]
    x = gt.tensor([-1.0, 0.5, 2.0])
    tangent = gt.tensor([1.0, 2.0, 3.0])
    with fwAD.dual_level():
        out = P3.apply(fwAD.make_dual(x, tangent))
        jvp = fwAD.unpack_dual(out).tangent
    xs = x.numpy()
    np.testing.assert_allclose(jvp.numpy(), tangent.numpy() * 1.5 * (5 * xs**2 - 1))


def test_linear_function_matches_engine_autograd(example):
    Linear = example.functions["LinearFunction"]
    rng = np.random.default_rng(0)
    args = [gt.tensor(rng.normal(size=s), requires_grad=True) for s in ((4, 3), (2, 3), (2,))]
    weights = gt.tensor(rng.normal(size=(4, 2)))
    custom = gt.autograd.grad((Linear.apply(*args) * weights).sum(), args)
    plain = gt.autograd.grad(((args[0] @ args[1].T + args[2]) * weights).sum(), args)
    for c, p in zip(custom, plain):
        np.testing.assert_allclose(c.numpy(), p.numpy())


def test_mul_constant_nondiff_arg_gets_no_gradient(example):
    MulConstant = example.functions["MulConstant"]
    x = gt.tensor([1.0, 2.0], requires_grad=True)
    c = gt.tensor(3.0, requires_grad=True)
    out = MulConstant.apply(x, c)
    gx, gc = gt.autograd.grad(out.sum(), [x, c], allow_unused=True)
    assert gx.tolist() == [3.0, 3.0] and gc is None
    assert MulConstant.apply(x, 2.5).tolist() == [2.5, 5.0]


def test_bad_square_is_found_and_others_pass(example):
    results = {}
    for spec in example.checks:
        built = spec.build()
        result = check(built.fn, tuple(built.inputs), input_names=built.input_names,
                       eps=spec.eps, atol=spec.atol, rtol=spec.rtol, gradgrad=spec.gradgrad)
        results[spec.name] = result.passed
    assert results == {"legendre": True, "two-layer net": True,
                       "relu away from the kink": True, "a known-bad backward": False}


def test_python_function_in_an_expression(example, fixtures_on_path):
    spec = load_text("""
        functions:
          MyP3:
            python: mypkg.ops:LegendrePolynomial3
        checks:
          - {name: c, expr: MyP3(x) * 2, inputs: {x: [1.0, 2.0]}}
        """)
    built = spec.checks[0].build()
    assert built.fn(*built.inputs).tolist() == [2.0, 34.0]


def test_out_and_forward_names_are_differentiable_in_second_order():
    spec = load_text("""
        functions:
          Sig:
            args: [x]
            forward: |
              e_x = exp(-x)
              1 / (1 + e_x)
            backward:
              x: grad * out * (1 - out)
          Soft:
            args: [x]
            forward: |
              s = exp(x) / (1 + exp(x))
              log(1 + exp(x))
            backward:
              x: grad * s
        checks:
          - {name: c, expr: Sig(x) + Soft(x), inputs: {x: [0.5, -1.0]}}
        """)
    built = spec.checks[0].build()
    (x,) = built.inputs
    (g,) = gt.autograd.grad(built.fn(x).sum(), [x], create_graph=True)
    (gg,) = gt.autograd.grad(g.sum(), [x])
    xr = gt.tensor(x.detach().numpy(), requires_grad=True)
    (gr,) = gt.autograd.grad((gt.sigmoid(xr) + gt.softplus(xr)).sum(), [xr], create_graph=True)
    (ggr,) = gt.autograd.grad(gr.sum(), [xr])
    np.testing.assert_allclose(g.detach().numpy(), gr.detach().numpy())
    np.testing.assert_allclose(gg.numpy(), ggr.numpy())


def test_functions_call_functions():
    spec = load_text("""
        functions:
          Sq:
            args: [x]
            forward: x * x
            backward: {x: 2 * x * grad}
          Quad:
            args: [x]
            forward: Sq(Sq(x))
            backward: {x: 4 * Sq(x) * x * grad}
        checks:
          - {name: c, expr: Quad(x), inputs: {x: [2.0]}}
        """)
    built = spec.checks[0].build()
    (x,) = built.inputs
    (g,) = gt.autograd.grad(built.fn(x).sum(), [x])
    assert built.fn(x).tolist() == [16.0] and g.tolist() == [32.0]


def test_backward_formula_with_the_wrong_shape_is_a_spec_error():
    spec = load_text("""
        functions:
          F:
            args: [x]
            forward: x.sum()
            backward:
              x: grad * ones(3, 2)
        checks:
          - {name: c, expr: F(x), inputs: {x: {shape: [3]}}}
        """)
    with pytest.raises(SpecError) as info:
        spec.checks[0].build()                  # a dry run finds it at build time
    assert str(info.value) == "a.yaml:6:10: backward formula for 'x' of function 'F' " \
        "returned shape [3, 2], expected [3] (the shape of 'x')"
    F = spec.functions["F"]
    x = gt.ones(3, requires_grad=True)
    with pytest.raises(SpecError) as info:      # and at run time
        gt.autograd.grad(F.apply(x), [x])
    assert info.value.location.line == 6


def test_broadcastable_and_scalar_gradients_are_accepted():
    spec = load_text("""
        functions:
          F:
            args: [b, x]
            forward: x + b
            backward: {b: grad, x: 1}
        checks:
          - {name: c, expr: "F(b, x).sum()", inputs: {b: [1.0, 2.0], x: [[1.0, 2.0], [3, 4]]}}
        """)
    built = spec.checks[0].build()
    gb, gx = gt.autograd.grad(built.fn(*built.inputs), built.inputs)
    assert gb.tolist() == [2.0, 2.0] and gx.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_jvp_with_the_wrong_shape_is_a_spec_error():
    spec = load_text("""
        functions:
          F:
            args: [x]
            forward: x * 2
            backward: {x: grad * 2}
            jvp: x_dot.sum()[None, None] * ones(2, 2)
        checks:
          - {name: c, expr: F(x), inputs: {x: {shape: [3]}}}
        """)
    x = gt.ones(3)
    with fwAD.dual_level():
        with pytest.raises(SpecError) as info:
            spec.functions["F"].apply(fwAD.make_dual(x, gt.ones(3)))
    assert str(info.value).startswith("a.yaml:6:10: jvp formula of function 'F' returned "
                                      "shape [2, 2], expected [3]")


def test_tuple_forward_at_run_time_is_a_spec_error():
    spec = load_text("""
        functions:
          F:
            args: [x]
            forward: |
              t = x, x
              t
            backward: {x: grad}
        checks:
          - {name: c, expr: F(x), inputs: {x: [1.0]}}
        """)
    with pytest.raises(SpecError) as info:
        spec.checks[0].build()
    assert "several outputs are not supported" in str(info.value)
    assert info.value.location.line == 6


def test_forward_must_return_a_tensor():
    spec = load_text("""
        functions:
          F:
            args: [x]
            forward: x.shape[0]
            backward: {x: grad}
        checks:
          - {name: c, expr: F(x), inputs: {x: [1.0]}}
        """)
    with pytest.raises(SpecError) as info:
        spec.checks[0].build()
    assert str(info.value) == "a.yaml:4:14: function 'F': forward returned int, expected a " \
        "tensor"
