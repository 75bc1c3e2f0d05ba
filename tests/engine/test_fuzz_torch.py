"""The differential fuzzer (``fuzz_torch.py``) in the test suite: random programs and misuse
cases run in gradtool and torch side by side must agree (values, grads, double backward,
forward AD, functional jacobian/hessian, grad_fn names, next_functions, ``_version``,
exception types and messages).

A fixed-seed small budget runs by default.  ``GRADTOOL_FUZZ=N`` runs N programs and N misuse
cases instead (``GRADTOOL_FUZZ_SEED=S`` moves the first seed), e.g.
``GRADTOOL_FUZZ=5000 pytest tests/engine/test_fuzz_torch.py``.  Program classes that still
disagree are left out through ``fuzz_torch.KNOWN`` (each with its reason)."""

import os

import pytest

pytest.importorskip("torch")

from . import fuzz_torch  # noqa: E402

PROGRAMS = int(os.environ.get("GRADTOOL_FUZZ", "600"))
MISUSE = int(os.environ.get("GRADTOOL_FUZZ", "300"))
FIRST_SEED = int(os.environ.get("GRADTOOL_FUZZ_SEED", "0"))
CHUNKS = 6


def _chunk(total: int, index: int) -> range:
    size = -(-total // CHUNKS)
    start = FIRST_SEED + index * size
    return range(start, min(start + size, FIRST_SEED + total))


@pytest.fixture(autouse=True)
def _one_thread():
    """torch's reductions on one thread (as CI's OPENBLAS_NUM_THREADS=1): the same rounding
    from run to run."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _report(findings) -> str:
    lines = [f"[{f.area}] seed {f.seed} {f.klass}: {f.detail}\n    {f.repro}" for f in findings]
    return f"{len(findings)} disagreements with torch:\n" + "\n".join(lines)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_random_programs_agree_with_torch(chunk):
    exclude, partial = fuzz_torch.known_for_ci()
    _, findings = fuzz_torch.fuzz(_chunk(PROGRAMS, chunk), exclude=exclude, partial=partial,
                                  echo=lambda line: None)
    assert not findings, _report(findings)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_misuse_cases_agree_with_torch(chunk):
    exclude, partial = fuzz_torch.known_for_ci()
    _, findings = fuzz_torch.fuzz(_chunk(MISUSE, chunk), misuse=True, exclude=exclude,
                                  partial=partial, echo=lambda line: None)
    assert not findings, _report(findings)


def _program(steps, misuse=False):
    return fuzz_torch.Program(0, [fuzz_torch.Step(*step) for step in steps], misuse)


LEAF = (0, "leaf", "tensor", (fuzz_torch.TLit([0.5, -1.0], "float64", (2,), True),), (), "leaf")


def test_the_fuzzer_finds_a_planted_disagreement(monkeypatch):
    """The comparison can fail: a gradtool whose exp is off by 1e-3 (relative) is caught in
    every phase and reported with a reproduction."""
    from gradtool.engine.tensor import Tensor
    exp = Tensor.exp
    prog = _program([LEAF, (1, "method", "exp", (fuzz_torch.Ref(0),), (), "unary:exp")])
    assert fuzz_torch.compare(prog) == []
    monkeypatch.setattr(Tensor, "exp", lambda self: exp(self) * 1.001)
    found = fuzz_torch.compare(prog)
    kinds = {d.what for d in found}
    assert {"value", "name", "grad", "g1", "tangent", "jac"} <= kinds, kinds
    finding = fuzz_torch.investigate(prog, found)[0]
    assert "v1 = v0.exp()" in finding.repro


@pytest.mark.parametrize("planted, kind", [
    (RuntimeError("other words"), "message"),
    (IndexError("a leaf Variable that requires grad is being used in an in-place operation."),
     "exc-type"),
    (None, "torch-raises"),
    (AttributeError("'NoneType' object has no attribute 'shape'"), "crash"),
])
def test_exceptions_are_compared_on_type_and_message(monkeypatch, planted, kind):
    """A misuse torch rejects (a leaf modified in place): a gradtool raising other words, another
    type, nothing, or a Python error is reported as such."""
    from gradtool.engine.tensor import Tensor
    prog = _program([LEAF, (1, "method", "mul_", (fuzz_torch.Ref(0), 2.0), (), "misuse:mul_")],
                    misuse=True)
    assert fuzz_torch.compare(prog) == []

    def mul_(self, other):
        if planted is None:
            return self
        raise planted

    monkeypatch.setattr(Tensor, "mul_", mul_)
    assert [d.what for d in fuzz_torch.compare(prog)] == [kind]
