"""functional.jacobian/hessian with empty outputs or inputs: torch's results, and torch's error
where it stacks no rows (an output with no elements)."""

import pytest

import gradtool as gt

torch = pytest.importorskip("torch")

CASES = {
    "empty_in_and_out": (lambda lib: lib.zeros(0, dtype=lib.float64), lambda v: v * 2),
    "empty_out": (lambda lib: lib.ones(3, dtype=lib.float64), lambda v: v[:0]),
    "empty_in_scalar_out": (lambda lib: lib.zeros(0, dtype=lib.float64), lambda v: v.sum()),
    "scalar_of_empty_slice": (lambda lib: lib.ones(3, dtype=lib.float64),
                              lambda v: v[:0].sum()),
}


def _outcome(lib, which, name):
    make, f = CASES[name]
    fn = getattr(lib.autograd.functional, which)
    try:
        result = fn(f if which == "jacobian" else (lambda v: f(v).sum()), make(lib))
    except RuntimeError as exc:
        return "error", str(exc)
    return "shape", tuple(result.shape)


@pytest.mark.parametrize("which", ["jacobian", "hessian"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_functional_on_empty_tensors_as_torch(which, name):
    assert _outcome(gt, which, name) == _outcome(torch, which, name)
