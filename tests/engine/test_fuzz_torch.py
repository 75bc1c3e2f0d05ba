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

PROGRAMS = int(os.environ.get("GRADTOOL_FUZZ", "1500"))
MISUSE = int(os.environ.get("GRADTOOL_FUZZ", "1000"))
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


def test_programs_are_reproducible_and_cover_the_vocabulary():
    """A seed always gives the same program, and the CI budget's seeds use every kind of step
    the issue asks for (so CI exercises the whole vocabulary)."""
    assert fuzz_torch.generate(7) == fuzz_torch.generate(7)
    assert fuzz_torch.generate(7, misuse=True) == fuzz_torch.generate(7, misuse=True)
    labels = set()
    shapes = set()
    for seed in range(600):
        prog = fuzz_torch.generate(seed)
        labels.update(prog.labels)
        shapes.update(s.args[0].shape for s in prog.steps if s.kind == "leaf")
    wanted = {"binop:+", "binop:scalar-", "binop:*scalar", "reduce:sum(dim)", "reduce:mean",
              "matmul", "mm", "bmm", "einsum", "getitem:basic", "getitem:bool",
              "getitem:int-tensor", "view", "reshape", "transpose", "permute", "expand",
              "squeeze(dim)", "unsqueeze", "narrow", "select", "diagonal", "t", "cat", "stack",
              "split", "chunk", "unbind", "where", "masked_fill", "clamp", "unary:abs",
              "unary:relu", "softmax", "F.log_softmax", "reduce:logsumexp(dim)", "norm(p)",
              "sort", "topk", "cumsum", "F.gelu", "F.silu", "F.elu", "F.leaky_relu",
              "F.hardtanh", "F.smooth_l1_loss", "F.huber_loss", "F.mse_loss", "F.cross_entropy",
              "F.nll_loss", "F.layer_norm", "F.batch_norm", "inplace:mul_@nonleaf",
              "inplace:add_@view", "inplace:zero_@nonleaf", "inplace:fill_@view",
              "inplace:copy_@nonleaf", "setitem@view", "inplace:masked_fill_@nonleaf",
              "inplace:clamp_@view"}
    assert wanted <= labels, sorted(wanted - labels)
    assert () in shapes and any(0 in s for s in shapes)
    misuse = set()
    for seed in range(300):
        misuse.update(fuzz_torch.generate(seed, misuse=True).labels)
    wanted = {"misuse:backward-again", "misuse:backward-nonscalar", "misuse:mul_",
              "misuse:backward-version", "misuse:broadcast", "misuse:int-requires-grad",
              "misuse:sum-dim", "misuse:inplace-view"}
    assert wanted <= misuse, sorted(wanted - misuse)
