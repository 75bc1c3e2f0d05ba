"""sort, argsort and topk in the spec language (gradients as torch's); operator chains are
not nesting."""

import numpy as np
import pytest

from gradtool.engine.tensor import Tensor
from gradtool.errors import LimitError, SpecError
from gradtool.spec import loads
from gradtool.spec.evaluate import MAX_DEPTH, evaluate_program, parse_program


def _grad(source: str, values: np.ndarray, weights: np.ndarray):
    import gradtool as gt
    x = gt.tensor(values, requires_grad=True)
    out = evaluate_program(source, {"x": x, "w": gt.tensor(weights)})
    out.backward()
    return out.detach().numpy(), x.grad.numpy()


CASES = [
    # (spec expression, torch equivalent)
    ("(sort(x)[0] * w).sum()", lambda t, x, w: (t.sort(x)[0] * w).sum()),
    ("(sort(x, dim=0, descending=True)[0] * w).sum()",
     lambda t, x, w: (t.sort(x, dim=0, descending=True)[0] * w).sum()),
    ("(x.sort(1)[0] * w).sum()", lambda t, x, w: (x.sort(1)[0] * w).sum()),
    ("v, i = topk(x, 2)\n(v * w[:, :2]).sum() + i.sum()",
     lambda t, x, w: (t.topk(x, 2)[0] * w[:, :2]).sum() + t.topk(x, 2)[1].sum()),
    ("(x.topk(2, dim=0, largest=False)[0] * w[:2]).sum()",
     lambda t, x, w: (x.topk(2, dim=0, largest=False)[0] * w[:2]).sum()),
    ("(x.gather(1, argsort(x, dim=1, descending=True)) * w).sum()",
     lambda t, x, w: (x.gather(1, t.argsort(x, dim=1, descending=True)) * w).sum()),
    ("(x.flatten()[x.flatten().argsort()] * w.flatten()).sum()",
     lambda t, x, w: (x.flatten()[x.flatten().argsort()] * w.flatten()).sum()),
]


@pytest.mark.parametrize("source, reference", CASES)
def test_sorting_gradients_are_torchs(source, reference):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    values = rng.permutation(12).reshape(3, 4).astype(np.float64) + rng.uniform(0, .5, (3, 4))
    weights = rng.normal(size=(3, 4))
    out, grad = _grad(source, values, weights)
    x = torch.tensor(values, requires_grad=True)
    expected = reference(torch, x, torch.tensor(weights))
    expected.backward()
    np.testing.assert_allclose(out, expected.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(grad, x.grad.numpy(), rtol=1e-12)


def test_stable_sort_with_ties_routes_gradients_as_torch():
    torch = pytest.importorskip("torch")
    values = np.array([2.0, 1.0, 2.0, 1.0, 3.0])
    weights = np.arange(5.0)
    for descending in (False, True):
        source = f"(sort(x, stable=True, descending={descending})[0] * w).sum()"
        _, grad = _grad(source, values, weights)
        x = torch.tensor(values, requires_grad=True)
        (torch.sort(x, stable=True, descending=descending)[0]
         * torch.tensor(weights)).sum().backward()
        np.testing.assert_array_equal(grad, x.grad.numpy())


def test_sorting_in_a_spec_check_and_a_formula_passes():
    """sparsemax-style use: a sorted cumulative sum, in an expression and in a Function's
    forward formula, checked numerically."""
    from gradtool.checker import check
    spec = loads("""
functions:
  sorted_scale:
    args: [x]
    forward: |
      s = sort(x, descending=True)[0]
      (s * arange(1.0, 5.0)).sum()
    backward:
      x: grad * arange(1.0, 5.0)[argsort(argsort(x, descending=True))]
checks:
  - name: top_two
    expr: (topk(x, 2)[0] ** 2).sum() + sorted_scale(x)
    inputs:
      x: [0.3, -1.2, 2.5, 0.9]
""", "s.yaml")
    built = spec.checks[0].build()
    result = check(built.fn, tuple(built.inputs), input_names=built.input_names)
    assert result.passed, result.report()


def test_sorting_names_are_in_the_allow_list_only_as_written():
    with pytest.raises(SpecError, match="unknown tensor method or attribute 'values'"):
        parse_program("sort(x).values")
    with pytest.raises(SpecError, match="unknown function 'msort'"):
        evaluate_program("msort(x)", {"x": Tensor(np.ones(2))})


# ---------------------------------------------------------------- chains are not nesting
@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_a_flat_chain_of_300_terms_is_not_deep(op):
    import gradtool as gt
    x = gt.tensor([1.0, 2.0], requires_grad=True)
    source = f" {op} ".join(["x"] * 300)
    out = evaluate_program(source, {"x": x}).sum()
    out.backward()
    assert np.isfinite(x.grad.numpy()).all()


def test_a_chain_of_2000_terms_runs_without_recursion():
    import sys

    import gradtool as gt
    x = gt.tensor([1.0, 2.0])
    limit = sys.getrecursionlimit()
    try:
        out = evaluate_program(" + ".join(["x"] * 2000), {"x": x})
    finally:
        assert sys.getrecursionlimit() == limit
    np.testing.assert_allclose(out.numpy(), [2000.0, 4000.0])


def test_real_nesting_is_still_limited():
    with pytest.raises(LimitError, match=f"nested more than {MAX_DEPTH} levels"):
        parse_program("-" * (MAX_DEPTH + 5) + "x")
    with pytest.raises(LimitError, match=f"nested more than {MAX_DEPTH} levels"):
        parse_program("sin(" * (MAX_DEPTH + 5) + "x" + ")" * (MAX_DEPTH + 5))
    # each chained term may nest up to the limit, and a chain of nested terms passes
    term = "sin(" * 50 + "x" + ")" * 50
    parse_program(" + ".join([term] * 50))


# ---------------------------------------------------------------- flow-form commas
@pytest.mark.parametrize("text, column", [
    ("functions:\n  f:\n    args: [x]\n    forward: x\n    backward: {x: where(x > 0, grad, 0.0)}\n"
     "checks:\n  - {name: a, expr: f(x).sum(), inputs: {x: [1.0]}}\n", 19),
    ("checks:\n  - {name: a, expr: where(x > 0, x, 0.0).sum(), inputs: {x: [1.0]}}\n", 21),
])
def test_a_formula_split_by_flow_commas_is_one_error_with_the_fix(text, column):
    with pytest.raises(SpecError) as info:
        loads(text, "f.yaml")
    error = info.value
    assert not hasattr(error, "errors")
    assert error.message == ("YAML's flow syntax split this formula at its commas "
                             "('where(x > 0' is only its start)")
    assert error.location.column == column
    assert "quote the formula" in error.hint and "block form" in error.hint


def test_quoted_and_block_formulas_with_commas_load():
    spec = loads('checks:\n  - {name: a, expr: "where(x > 0, x, 0.0).sum()", inputs: '
                 '{x: [1.0]}}\n  - name: b\n    expr: where(x > 0, x, 0.0).sum()\n'
                 '    inputs: {x: [1.0, 2.0]}\n', "f.yaml")
    assert [c.name for c in spec.checks] == ["a", "b"]


def test_nan_sorts_as_the_largest_value_as_in_torch():
    torch = pytest.importorskip("torch")
    import gradtool as gt
    values = np.array([[1.0, np.nan, 3.0, 2.0], [np.nan, 0.5, -1.0, 4.0]])
    for descending in (False, True):
        for dim in (0, 1):
            got = evaluate_program(f"argsort(x, dim={dim}, descending={descending})",
                                   {"x": gt.tensor(values)})
            expected = torch.argsort(torch.tensor(values), dim=dim, descending=descending,
                                     stable=True)
            np.testing.assert_array_equal(got.numpy(), expected.numpy())
    top = evaluate_program("topk(x, 2)[1]", {"x": gt.tensor(values)})
    np.testing.assert_array_equal(top.numpy(), torch.topk(torch.tensor(values), 2)[1].numpy())
