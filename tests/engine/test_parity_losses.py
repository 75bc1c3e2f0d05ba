"""cross_entropy and nll_loss side by side with torch 2.13 over their options: input ranks
1-5 (class dim 1), reductions, ignore_index, label smoothing, class weights (requiring grad
or not), class-index and probability targets, float32 and float64.  Same value, dtype, node
names down to the leaf, and gradients of the input and the weight; or the same error."""

import itertools

import numpy as np
import pytest

import gradtool as gt

torch = pytest.importorskip("torch")

SHAPES = [(4,), (5, 4), (3, 4, 2), (3, 4, 2, 2), (2, 4, 2, 1, 2)]


def _chain(out) -> list:
    names, fn = [], out.grad_fn
    while fn is not None and len(names) < 8:
        names.append(type(fn).__name__)
        nxt = [f for f, _ in fn.next_functions if f is not None]
        fn = nxt[0] if nxt else None
    return names


def _outcome(lib, fn, shape, options, dtype, seed):
    rng = np.random.default_rng(seed)
    classes = shape[1] if len(shape) > 1 else shape[0]
    tshape = (shape[0],) + shape[2:] if len(shape) > 1 else ()
    d = lib.float64 if dtype == "f64" else lib.float32
    x = lib.tensor(rng.standard_normal(shape), dtype=d, requires_grad=True)
    kwargs = {k: v for k, v in options.items() if k not in ("weight", "probs")}
    if options.get("probs"):
        p = rng.dirichlet(np.ones(classes), int(np.prod(tshape))).reshape(tshape + (classes,))
        target = lib.tensor(np.moveaxis(p, -1, 1) if len(shape) > 1 else p, dtype=d)
    else:
        target = lib.tensor(rng.integers(0, classes, tshape))
    inputs = [x]
    if options.get("weight"):
        w = lib.tensor(rng.uniform(0.5, 2.0, classes), dtype=d,
                       requires_grad=options["weight"] == "grad")
        kwargs["weight"] = w
        if w.requires_grad:
            inputs.append(w)
    try:
        out = getattr(lib.nn.functional, fn)(x if fn == "cross_entropy" else x.log_softmax(
            1 if len(shape) > 1 else 0), target, **kwargs)
        grads = lib.autograd.grad(out.sum(), inputs)
    except (RuntimeError, ValueError) as exc:
        return ("error", RuntimeError if isinstance(exc, RuntimeError) else ValueError, str(exc))
    return ("ok", out.detach().numpy().astype(np.float64), str(out.dtype).split(".")[-1],
            _chain(out), [g.numpy().astype(np.float64) for g in grads])


CASES = []
for shape, reduction, ignore, smoothing, weight in itertools.product(
        SHAPES, ["mean", "sum", "none"], [-100, 1], [0.0, 0.1], [None, "plain", "grad"]):
    CASES.append(("cross_entropy", shape, {"reduction": reduction, "ignore_index": ignore,
                                           "label_smoothing": smoothing, "weight": weight}))
for shape, reduction, smoothing in itertools.product(SHAPES, ["mean", "none"], [0.0, 0.2]):
    CASES.append(("cross_entropy", shape, {"reduction": reduction, "probs": True,
                                           "label_smoothing": smoothing, "weight": "plain"}))
for shape, reduction, weight in itertools.product(SHAPES, ["mean", "sum", "none"],
                                                  [None, "plain"]):
    CASES.append(("nll_loss", shape, {"reduction": reduction, "ignore_index": 1,
                                      "weight": weight}))


@pytest.mark.parametrize("dtype", ["f64", "f32"])
@pytest.mark.parametrize("fn,shape,options", CASES)
def test_loss_as_torch(fn, shape, options, dtype):
    seed = len(CASES)
    theirs = _outcome(torch, fn, shape, options, dtype, seed)
    ours = _outcome(gt, fn, shape, options, dtype, seed)
    assert ours[0] == theirs[0], (ours, theirs)
    if ours[0] == "error":
        assert ours[1:] == theirs[1:]
        return
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == "f32" else {"rtol": 1e-10, "atol": 1e-12}
    assert ours[1].shape == theirs[1].shape
    np.testing.assert_allclose(ours[1], theirs[1], **tol)
    assert ours[2] == theirs[2]
    assert ours[3] == theirs[3]
    for a, b in zip(ours[4], theirs[4], strict=True):
        np.testing.assert_allclose(a, b, **tol)
