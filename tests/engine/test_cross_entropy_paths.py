"""cross_entropy with nothing to record (grad mode off, or an input that needs no gradient:
the checker's numerical side) runs its two forwards on arrays, without the intermediate
tensor: the same values, dtypes and errors as the recorded path, and the primitives are
still seen by interceptors (vmap, the checker's recorder)."""

import numpy as np
import pytest

import gradtool as gt
from gradtool.engine import primitive as P

RNG = np.random.default_rng(0)
CASES = [
    # (input, target, keyword arguments)
    (RNG.standard_normal((5, 4)), [0, 3, 1, 1, 2], {}),
    (RNG.standard_normal((5, 4)), [0, 3, 1, 1, 2], {"reduction": "sum"}),
    (RNG.standard_normal((5, 4)), [0, 3, 1, 1, 2], {"reduction": "none"}),
    (RNG.standard_normal((5, 4)), [0, 3, -100, 1, 2], {}),
    (RNG.standard_normal((5, 4)), [0, 3, 2, 1, 2], {"ignore_index": 2, "reduction": "none"}),
    (RNG.standard_normal((5, 4)), [0, 3, 1, 1, 2], {"weight": [0.5, 1.0, 2.0, 0.25]}),
    (RNG.standard_normal(4), 2, {}),
    (RNG.standard_normal((2, 3, 2, 2)), [[[0, 2], [1, 1]], [[2, 2], [0, 1]]], {}),
    (RNG.standard_normal((5, 4)).astype(np.float32), [0, 3, 1, 1, 2], {}),
    (np.array([[np.inf, 1.0], [2.0, np.nan]]), [0, 0], {"reduction": "none"}),
    (np.array([[-np.inf, -np.inf], [2.0, 3.0]]), [1, 0], {"reduction": "none"}),
]


def _args(case, requires_grad):
    data, target, kw = case
    x = gt.tensor(np.array(data), requires_grad=requires_grad)
    kw = dict(kw)
    if "weight" in kw:
        kw["weight"] = gt.tensor(kw["weight"])
    return x, gt.tensor(np.asarray(target)), kw


@pytest.mark.parametrize("case", range(len(CASES)))
def test_unrecorded_cross_entropy_equals_the_recorded_one(case):
    x, target, kw = _args(CASES[case], True)
    recorded = gt.cross_entropy(x, target, **kw)
    assert recorded.grad_fn is not None
    with gt.no_grad():
        off = gt.cross_entropy(x, target, **kw)
    plain = gt.cross_entropy(x.detach(), target, **kw)
    for result in (off, plain):
        assert result.grad_fn is None and not result.requires_grad
        assert result.dtype == recorded.dtype and result.shape == recorded.shape
        np.testing.assert_array_equal(result.numpy(), recorded.detach().numpy())


@pytest.mark.parametrize("target, kw", [
    (np.array([0.0, 1.0, 2.0]), {}),                         # class probabilities of no shape
    (np.array([0, 1, 2], dtype=np.int32), {}),                # wrong dtype
    (np.array([0, 1, 7]), {}),                                # out of range
    (np.array([0, -3, 1]), {}),                               # negative
    (np.array([0, 1]), {}),                                   # batch size
    (np.array([[0, 1, 2]]), {}),                              # shape
    (np.array([0, 1, 2]), {"reduction": "avg"}),              # reduction
    (np.array([0, 1, 2]), {"weight": np.ones(3)}),            # weight of the wrong size
])
def test_unrecorded_cross_entropy_raises_the_recorded_errors(target, kw):
    data = RNG.standard_normal((3, 4))
    kw = {k: gt.tensor(v) if k == "weight" else v for k, v in kw.items()}
    errors = []
    for requires_grad, grad_mode in ((True, True), (False, True), (True, False)):
        x = gt.tensor(data, requires_grad=requires_grad)
        with pytest.raises(Exception) as info:
            with gt.set_grad_enabled(grad_mode):
                gt.cross_entropy(x, gt.tensor(target), **kw)
        errors.append((type(info.value), str(info.value)))
    assert errors[0] == errors[1] == errors[2]


def test_weight_requiring_grad_is_refused_on_both_paths():
    x = gt.tensor(RNG.standard_normal((3, 4)))
    weight = gt.tensor(np.ones(4), requires_grad=True)
    with pytest.raises(Exception, match="not differentiable with respect to argument"):
        gt.cross_entropy(x, gt.tensor([0, 1, 2]), weight=weight)
    with gt.no_grad():      # torch: no error when nothing is recorded
        gt.cross_entropy(x, gt.tensor([0, 1, 2]), weight=weight)


def test_interceptors_still_see_both_primitives_without_grad():
    seen = []

    def recorder(prim, args, params):
        seen.append(prim.name)
        return P.apply(prim, args, params)
    P.INTERCEPTORS.append(recorder)
    try:
        with gt.no_grad():
            gt.cross_entropy(gt.tensor(RNG.standard_normal((3, 4))), gt.tensor([0, 1, 2]))
    finally:
        P.INTERCEPTORS.remove(recorder)
    assert seen == ["log_softmax", "nll_loss"]


def test_unrecorded_cross_entropy_as_torch():
    torch = pytest.importorskip("torch")
    for case in CASES:
        x, target, kw = _args(case, False)
        tkw = {k: torch.tensor(v.numpy()) if k == "weight" else v for k, v in kw.items()}
        ours = gt.cross_entropy(x, target, **kw)
        theirs = torch.nn.functional.cross_entropy(torch.tensor(x.numpy()),
                                                   torch.tensor(target.numpy()), **tkw)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("shape, weight", [((3, 4), np.ones(3)), ((3, 4), np.ones((2, 2))),
                                           ((3, 4), np.ones(5)), ((4,), np.ones(3)),
                                           ((2, 4, 3), np.ones(3)), ((2, 4, 3), np.ones((2, 2))),
                                           ((2, 4, 3), np.arange(1.0, 5.0).reshape(1, 4))])
def test_weight_of_the_wrong_size_as_torch(shape, weight):
    """torch refuses a weight that is not one per class (nll_loss2d: any shape of that many
    elements), with or without a graph."""
    torch = pytest.importorskip("torch")
    data = RNG.standard_normal(shape)
    target = RNG.integers(0, shape[1] if len(shape) > 1 else shape[0],
                          (shape[0],) + shape[2:] if len(shape) > 1 else ())
    try:
        expected = torch.nn.functional.nll_loss(torch.tensor(data), torch.tensor(target),
                                                weight=torch.tensor(weight)).item()
    except RuntimeError as exc:
        expected = str(exc)
    for requires_grad in (True, False):
        x = gt.tensor(data, requires_grad=requires_grad)
        try:
            ours = gt.nll_loss(x, gt.tensor(target), weight=gt.tensor(weight)).item()
        except RuntimeError as exc:
            ours = str(exc)
        if isinstance(expected, str):
            assert ours == expected
        else:
            assert ours == pytest.approx(expected, rel=1e-12)


def test_log_softmax_of_real_rows_with_no_finite_max_needs_no_shift():
    """A real row whose max is -inf or NaN comes out NaN whether or not the max is first
    replaced by 0 (the forward skips that replacement for real inputs): bit for bit the
    same as the shifted computation, for every mix of special values, float64 and float32."""
    import itertools
    from gradtool.engine.prims import reduce as reduce_prims

    def shifted_by_zero(x, dim):
        m = np.max(x, axis=dim, keepdims=True, initial=-np.inf)
        m = np.where(np.isfinite(m) | np.isposinf(m), m, 0.0)
        s = x - m
        return s - np.log(np.sum(np.exp(s), axis=dim, keepdims=True))
    values = [0.0, -0.0, 1.5, -2.0, np.inf, -np.inf, np.nan, 1e308, 5e-324]
    with np.errstate(all="ignore"):
        for dtype in (np.float64, np.float32):
            for row in itertools.product(values, repeat=3):
                x = np.array([row, row[::-1]], dtype=dtype)
                for dim in (0, 1):
                    ours = reduce_prims._log_softmax_forward(x, dim)
                    assert ours.tobytes() == shifted_by_zero(x, dim).astype(dtype).tobytes()
