"""kl_div, poisson_nll_loss, gaussian_nll_loss, triplet_margin_loss, soft_margin_loss,
multilabel_soft_margin_loss, margin_ranking_loss, hinge_embedding_loss,
cosine_embedding_loss, pairwise_distance and cosine_similarity (and their Module classes)
side by side with torch: values, dtypes, the output's grad_fn, gradients of every input,
second derivatives for some, and torch's argument errors."""

import warnings

import numpy as np
import pytest

import gradtool as gt
import gradtool.nn as nn
import gradtool.nn.functional as F

torch = pytest.importorskip("torch")

REDUCTIONS = ("mean", "sum", "none")
DTYPES = ("float32", "float64")
TOL = {"float32": {"rtol": 2e-4, "atol": 1e-5}, "float64": {"rtol": 1e-9, "atol": 1e-11}}


def _data(seed: int, shape=(4, 3)) -> dict:
    """The numbers both libraries get: every case draws from these."""
    rng = np.random.default_rng(seed)
    n = shape[0]
    return {
        "x": rng.standard_normal(shape), "y": rng.standard_normal(shape),
        "z": rng.standard_normal(shape),
        "pos": rng.uniform(0.05, 0.95, shape), "counts": rng.poisson(2.0, shape) * 1.0,
        "sign": np.where(rng.standard_normal(shape) >= 0, 1.0, -1.0),
        "sign_rows": np.where(rng.standard_normal(n) >= 0, 1.0, -1.0),
        "bits": (rng.random(shape) > 0.5) * 1.0,
        "class_weight": rng.uniform(0.5, 2.0, shape[-1:]),
    }


# name -> (function of (F, tensors, kwargs), names of inputs that require grad, other inputs)
def _kl(Fn, t, kw):
    target = Fn.log_softmax(t["y"], -1) if kw.get("log_target") else Fn.softmax(t["y"], -1)
    return Fn.kl_div(Fn.log_softmax(t["x"], -1), target, **kw)


FUNCTIONS = {
    "kl_div": (_kl, ("x", "y")),
    "poisson_nll_loss": (lambda Fn, t, kw: Fn.poisson_nll_loss(
        t["x"] if kw.get("log_input", True) else t["pos"] * 3, t["counts"], **kw), ("x", "pos")),
    "gaussian_nll_loss": (lambda Fn, t, kw: Fn.gaussian_nll_loss(t["x"], t["y"], t["pos"], **kw),
                          ("x", "y", "pos")),
    "triplet_margin_loss": (lambda Fn, t, kw: Fn.triplet_margin_loss(t["x"], t["y"], t["z"],
                                                                      **kw), ("x", "y", "z")),
    "soft_margin_loss": (lambda Fn, t, kw: Fn.soft_margin_loss(t["x"], t["sign"], **kw),
                         ("x",)),
    "multilabel_soft_margin_loss": (lambda Fn, t, kw: Fn.multilabel_soft_margin_loss(
        t["x"], t["bits"], **({**kw, "weight": t["class_weight"]} if kw.pop("weighted", False)
                              else kw)), ("x",)),
    "margin_ranking_loss": (lambda Fn, t, kw: Fn.margin_ranking_loss(t["x"], t["y"], t["sign"],
                                                                      **kw), ("x", "y")),
    "hinge_embedding_loss": (lambda Fn, t, kw: Fn.hinge_embedding_loss(t["x"], t["sign"], **kw),
                             ("x",)),
    "cosine_embedding_loss": (lambda Fn, t, kw: Fn.cosine_embedding_loss(
        t["x"], t["y"], t["sign_rows"], **kw), ("x", "y")),
    "pairwise_distance": (lambda Fn, t, kw: Fn.pairwise_distance(t["x"], t["y"], **kw),
                          ("x", "y")),
    "cosine_similarity": (lambda Fn, t, kw: Fn.cosine_similarity(t["x"], t["y"], **kw),
                          ("x", "y")),
}

OPTIONS = {
    "kl_div": [{}, {"log_target": True}],
    "poisson_nll_loss": [{}, {"log_input": False}, {"full": True},
                         {"log_input": False, "full": True, "eps": 1e-3}],
    "gaussian_nll_loss": [{}, {"full": True}, {"eps": 0.3}],
    "triplet_margin_loss": [{}, {"margin": 0.5, "p": 1.0}, {"swap": True},
                            {"p": 3.0, "eps": 1e-3, "swap": True}],
    "soft_margin_loss": [{}],
    "multilabel_soft_margin_loss": [{}, {"weighted": True}],
    "margin_ranking_loss": [{}, {"margin": 0.3}],
    "hinge_embedding_loss": [{}, {"margin": 0.5}],
    "cosine_embedding_loss": [{}, {"margin": 0.2}, {"margin": -0.3}],
}

LOSS_CASES = [(name, kw, r) for name, options in OPTIONS.items() for kw in options
              for r in REDUCTIONS] + [("kl_div", {}, "batchmean"),
                                      ("kl_div", {"log_target": True}, "batchmean")]
OTHER_CASES = [("pairwise_distance", kw) for kw in
               ({}, {"p": 1.0}, {"p": 3.0, "keepdim": True}, {"eps": 1e-2})] + \
              [("cosine_similarity", kw) for kw in ({}, {"dim": 0}, {"dim": -1, "eps": 1e-3})]


def _run(lib, name: str, kw: dict, dtype: str, seed: int):
    """(output, {input name: gradient}) of one function in gradtool or torch."""
    fn, grad_names = FUNCTIONS[name]
    dt = getattr(lib, dtype)
    tensors = {k: lib.tensor(v, dtype=dt, requires_grad=k in grad_names)
               for k, v in _data(seed).items()}
    Fn = gt.nn.functional if lib is gt else torch.nn.functional
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn(Fn, tensors, dict(kw))
    used = [k for k in grad_names if tensors[k].requires_grad]
    grads = lib.autograd.grad(out.sum(), [tensors[k] for k in used], allow_unused=True)
    return out, dict(zip(used, grads))


def _close(ours, theirs, dtype: str) -> None:
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), equal_nan=True,
                               **TOL[dtype])


def _compare(name: str, kw: dict, dtype: str, seed: int = 0) -> None:
    out, grads = _run(gt, name, kw, dtype, seed)
    t_out, t_grads = _run(torch, name, kw, dtype, seed)
    assert tuple(out.shape) == tuple(t_out.shape)
    assert str(out.dtype).split(".")[-1] == str(t_out.dtype).split(".")[-1]
    assert type(out.grad_fn).__name__ == type(t_out.grad_fn).__name__
    _close(out.detach().numpy(), t_out.detach().numpy(), dtype)
    assert grads.keys() == t_grads.keys()
    for k in grads:
        assert (grads[k] is None) == (t_grads[k] is None), k
        if grads[k] is not None:
            assert str(grads[k].dtype).split(".")[-1] == dtype
            _close(grads[k].numpy(), t_grads[k].numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,kw,reduction", LOSS_CASES,
                         ids=[f"{n}-{kw}-{r}" for n, kw, r in LOSS_CASES])
def test_loss_matches_torch(name, kw, reduction, dtype):
    _compare(name, {**kw, "reduction": reduction}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,kw", OTHER_CASES, ids=[f"{n}-{kw}" for n, kw in OTHER_CASES])
def test_distance_matches_torch(name, kw, dtype):
    _compare(name, kw, dtype)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("name", ["triplet_margin_loss", "cosine_embedding_loss",
                                  "hinge_embedding_loss", "margin_ranking_loss"])
def test_piecewise_losses_on_other_draws(name, seed):
    # which side of each margin an element lands on changes with the draw
    for kw in OPTIONS[name]:
        _compare(name, {**kw, "reduction": "none"}, "float64", seed)


def test_kl_div_mean_warns_as_torch_and_batchmean_divides_by_the_batch():
    x = gt.tensor(np.log(np.full((5, 4), 0.25)))
    t = gt.tensor(np.random.default_rng(0).dirichlet(np.ones(4), size=5))
    with pytest.warns(UserWarning, match="batchmean"):
        mean = F.kl_div(x, t)
    total = F.kl_div(x, t, reduction="sum")
    assert np.isclose(F.kl_div(x, t, reduction="batchmean").item(), total.item() / 5)
    assert np.isclose(mean.item(), total.item() / 20)


def test_legacy_flags_give_torch_reductions():
    x, y = gt.tensor([[0.5, -1.0], [2.0, 0.1]]), gt.tensor([[1.0, -1.0], [-1.0, 1.0]])
    tx, ty = torch.tensor(x.numpy()), torch.tensor(y.numpy())
    warnings.simplefilter("ignore")     # torch's deprecation warnings (restored by pytest)
    for flags in ({"size_average": False}, {"reduce": False}, {"size_average": True}):
        for name in ("soft_margin_loss", "hinge_embedding_loss", "multilabel_soft_margin_loss",
                     "poisson_nll_loss"):
            ours = getattr(F, name)(x, y, **flags)
            theirs = getattr(torch.nn.functional, name)(tx, ty, **flags)
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_cosine_similarity_clamps_small_norms_without_a_gradient_through_the_clamp():
    rng = np.random.default_rng(4)
    small, other = rng.standard_normal((3, 5)) * 1e-5, rng.standard_normal((3, 5))
    grads = []
    for lib in (gt, torch):
        a = lib.tensor(small, requires_grad=True)
        b = lib.tensor(other, requires_grad=True)
        out = (gt.nn.functional if lib is gt else torch.nn.functional).cosine_similarity(
            a, b, eps=1e-3)
        grads.append([out.detach().numpy()] + [g.numpy() for g in lib.autograd.grad(
            out.sum(), [a, b])])
    for ours, theirs in zip(*grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_cosine_similarity_and_pairwise_distance_broadcast():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((4, 1, 3)), rng.standard_normal((2, 3))
    for name, kw in (("cosine_similarity", {"dim": -1}), ("pairwise_distance", {})):
        ours = getattr(F, name)(gt.tensor(a), gt.tensor(b), **kw)
        theirs = getattr(torch.nn.functional, name)(torch.tensor(a), torch.tensor(b), **kw)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-10)


def test_gaussian_nll_loss_homoscedastic_variances():
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    for var in (rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, (4, 1)), rng.uniform(0.5, 2, (1, 3)),
                0.7):
        results = []
        for lib in (gt, torch):
            v = lib.tensor(var, requires_grad=True) if isinstance(var, np.ndarray) else var
            xs = lib.tensor(x, requires_grad=True)
            out = (gt.nn.functional if lib is gt else torch.nn.functional).gaussian_nll_loss(
                xs, lib.tensor(y), v)
            ins = [xs] + ([v] if isinstance(var, np.ndarray) else [])
            results.append([out.detach().numpy()] + [g.numpy() for g in
                                                     lib.autograd.grad(out, ins)])
        for ours, theirs in zip(*results):
            np.testing.assert_allclose(ours, theirs, rtol=1e-10)


# ---- second derivatives ---------------------------------------------------------------------
DOUBLE = [("kl_div", {"reduction": "batchmean"}), ("poisson_nll_loss", {"full": True}),
          ("gaussian_nll_loss", {"reduction": "sum"}), ("soft_margin_loss", {}),
          ("soft_margin_loss", {"reduction": "none"}),
          ("multilabel_soft_margin_loss", {"weighted": True}),
          ("cosine_embedding_loss", {"margin": 0.1}), ("triplet_margin_loss", {"swap": True}),
          ("cosine_similarity", {}), ("pairwise_distance", {"p": 3.0})]


def _second(lib, name, kw):
    fn, grad_names = FUNCTIONS[name]
    tensors = {k: lib.tensor(v, dtype=lib.float64, requires_grad=k in grad_names)
               for k, v in _data(7).items()}
    Fn = gt.nn.functional if lib is gt else torch.nn.functional
    out = fn(Fn, tensors, dict(kw))
    ins = [tensors[k] for k in grad_names if name != "poisson_nll_loss" or k == "x"]
    firsts = lib.autograd.grad(out.sum(), ins, create_graph=True)
    weights = [lib.tensor(np.linspace(-1, 1, g.numel()).reshape(tuple(g.shape)),
                          dtype=lib.float64) for g in firsts]
    total = sum((g * w).sum() for g, w in zip(firsts, weights))
    return [g.detach().numpy() for g in firsts] + [
        np.zeros(tuple(i.shape)) if g is None else g.numpy()
        for g, i in zip(lib.autograd.grad(total, ins, allow_unused=True), ins)]


@pytest.mark.parametrize("name,kw", DOUBLE, ids=[f"{n}-{kw}" for n, kw in DOUBLE])
def test_double_backward_matches_torch(name, kw):
    for ours, theirs in zip(_second(gt, name, kw), _second(torch, name, kw)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-10)


def test_soft_margin_loss_gradient_passes_gradcheck():
    rng = np.random.default_rng(8)
    x = gt.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    y = gt.tensor(np.sign(rng.standard_normal((3, 4))))
    for r in REDUCTIONS:
        def loss(a, r=r):
            return F.soft_margin_loss(a, y, reduction=r)
        assert gt.gradcheck(loss, (x,))
        assert gt.gradgradcheck(loss, (x,))


# ---- argument errors ---------------------------------------------------------------------------
def _errors(lib):
    Fn = gt.nn.functional if lib is gt else torch.nn.functional
    x = lib.tensor(np.arange(12.0).reshape(4, 3) / 7 - 0.5)
    p = lib.tensor(np.full((4, 3), 0.5))
    return [
        lambda: Fn.kl_div(x, p, reduction="batch"),
        lambda: Fn.kl_div(x, x[:, :2]),
        lambda: Fn.poisson_nll_loss(x, p, reduction="avg"),
        lambda: Fn.poisson_nll_loss(x, x[:, :2]),
        lambda: Fn.gaussian_nll_loss(x, p, -p),
        lambda: Fn.gaussian_nll_loss(x, p, -1.0),
        lambda: Fn.gaussian_nll_loss(x, p, p[:, :2]),
        lambda: Fn.gaussian_nll_loss(x, p, p, reduction="bad"),
        lambda: Fn.triplet_margin_loss(x, x, x[0]),
        lambda: Fn.triplet_margin_loss(x, x, x, margin=0),
        lambda: Fn.triplet_margin_loss(x, x, x, reduction="bad"),
        lambda: Fn.soft_margin_loss(x, p, reduction="bad"),
        lambda: Fn.soft_margin_loss(x, p[:, :2]),
        lambda: Fn.multilabel_soft_margin_loss(x, p, reduction="bad"),
        lambda: Fn.multilabel_soft_margin_loss(x, p[:, :2]),
        lambda: Fn.margin_ranking_loss(x, x, x[0]),
        lambda: Fn.margin_ranking_loss(x, x[:2], x),
        lambda: Fn.margin_ranking_loss(x, x, p, reduction="bad"),
        lambda: Fn.hinge_embedding_loss(x, p, reduction="bad"),
        lambda: Fn.hinge_embedding_loss(x, p[:, :2]),
        lambda: Fn.cosine_embedding_loss(x, x, p),
        lambda: Fn.cosine_embedding_loss(x, x, p[0, 0]),
        lambda: Fn.cosine_embedding_loss(x, x, p[:, 0], reduction="bad"),
        lambda: Fn.pairwise_distance(x, x[:, :2]),
        lambda: Fn.cosine_similarity(x, x[:, :2]),
        lambda: Fn.cosine_similarity(x, x, dim=5),
    ]


@pytest.mark.parametrize("index", range(len(_errors(gt))))
def test_argument_errors_are_torchs(index):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception) as theirs:
            _errors(torch)[index]()
        with pytest.raises(type(theirs.value)) as ours:
            _errors(gt)[index]()
    assert str(ours.value) == str(theirs.value)


def test_soft_margin_loss_refuses_a_target_that_requires_grad_as_torch():
    x = gt.tensor([0.5, -1.0], requires_grad=True)
    y = gt.tensor([1.0, -1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument "
                                           "'target'"):
        F.soft_margin_loss(x, y)


# ---- Module classes ------------------------------------------------------------------------------
MODULES = [
    ("KLDivLoss", {"reduction": "batchmean"}, ("lx", "py")),
    ("KLDivLoss", {"reduction": "sum", "log_target": True}, ("lx", "ly")),
    ("PoissonNLLLoss", {}, ("x", "counts")),
    ("PoissonNLLLoss", {"log_input": False, "full": True, "reduction": "none"},
     ("pos", "counts")),
    ("GaussianNLLLoss", {"full": True, "eps": 0.2}, ("x", "y", "pos")),
    ("TripletMarginLoss", {"margin": 0.7, "p": 1.0, "swap": True}, ("x", "y", "z")),
    ("SoftMarginLoss", {"reduction": "sum"}, ("x", "sign")),
    ("MultiLabelSoftMarginLoss", {"weight": "class_weight"}, ("x", "bits")),
    ("MarginRankingLoss", {"margin": 0.2}, ("x", "y", "sign")),
    ("HingeEmbeddingLoss", {"margin": 0.4, "reduction": "none"}, ("x", "sign")),
    ("CosineEmbeddingLoss", {"margin": 0.1}, ("x", "y", "sign_rows")),
    ("PairwiseDistance", {"p": 1.5, "keepdim": True}, ("x", "y")),
    ("CosineSimilarity", {"dim": 0}, ("x", "y")),
]


def _module_run(lib, name, kwargs, args):
    data = _data(9)
    data["lx"] = data["x"] - np.log(np.exp(data["x"]).sum(-1, keepdims=True))
    data["ly"] = data["y"] - np.log(np.exp(data["y"]).sum(-1, keepdims=True))
    data["py"] = np.exp(data["ly"])
    kwargs = {k: lib.tensor(data[v]) if v == "class_weight" else v for k, v in kwargs.items()}
    module = getattr(lib.nn, name)(**kwargs)
    floats = {"x", "y", "z", "pos", "lx", "ly"}
    inputs = [lib.tensor(data[a], requires_grad=a in floats) for a in args]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = module(*inputs)
    grads = lib.autograd.grad(out.sum(), [i for i in inputs if i.requires_grad])
    return out, [g.numpy() for g in grads]


@pytest.mark.parametrize("name,kwargs,args", MODULES, ids=[m[0] for m in MODULES])
def test_module_matches_torch(name, kwargs, args):
    out, grads = _module_run(gt, name, kwargs, args)
    t_out, t_grads = _module_run(torch, name, kwargs, args)
    assert type(out.grad_fn).__name__ == type(t_out.grad_fn).__name__
    np.testing.assert_allclose(out.detach().numpy(), t_out.detach().numpy(), rtol=1e-9,
                               atol=1e-12)
    assert len(grads) == len(t_grads)
    for ours, theirs in zip(grads, t_grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_triplet_margin_loss_module_refuses_a_non_positive_margin():
    with pytest.raises(ValueError, match="expected margin to be greater than 0, got 0"):
        nn.TripletMarginLoss(margin=0)


def test_modules_are_exported_and_hold_their_options():
    assert {"KLDivLoss", "PairwiseDistance", "CosineSimilarity", "GaussianNLLLoss"} <= \
        set(nn.__all__)
    assert nn.PairwiseDistance(p=3.0).norm == torch.nn.PairwiseDistance(p=3.0).norm
    assert nn.SoftMarginLoss(size_average=False).reduction == "sum"
    weight = gt.tensor([1.0, 2.0])
    assert "weight" in dict(nn.MultiLabelSoftMarginLoss(weight).named_buffers())


def test_dtypes_as_torch():
    f32 = {"dtype": gt.float32}
    t32 = {"dtype": torch.float32}
    # soft_margin_loss keeps its input's dtype (a float64 target does not promote it)
    assert F.soft_margin_loss(gt.tensor([1.0, 2.0], **f32), gt.tensor([1.0, -1.0])).dtype == \
        gt.float32
    # cosine_similarity: an integer tensor with a float32 one is float32
    out = F.cosine_similarity(gt.tensor([[1, 2]]), gt.tensor([[1.0, -1.0]], **f32))
    theirs = torch.nn.functional.cosine_similarity(torch.tensor([[1, 2]]),
                                                   torch.tensor([[1.0, -1.0]], **t32))
    assert out.dtype == gt.float32
    np.testing.assert_allclose(out.numpy(), theirs.numpy(), rtol=1e-6)


# (two integer tensors: torch names its default float type, Float; gradtool's is Double)
@pytest.mark.parametrize("call", [
    lambda lib, Fn: Fn.soft_margin_loss(lib.tensor([1, 2]),
                                        lib.tensor([1.0, -1.0], dtype=lib.float32)),
    lambda lib, Fn: Fn.soft_margin_loss(lib.tensor([[1.0, 2.0]]),
                                        lib.tensor([[1.0], [-1.0]])),
    lambda lib, Fn: Fn.cosine_similarity(lib.tensor([[1, 2]]), lib.tensor([[0, 1]])),
    lambda lib, Fn: Fn.gaussian_nll_loss(lib.tensor([1.0]), lib.tensor([1.0]), 1),
])
def test_hostile_arguments_fail_as_torch(call):
    with pytest.raises(Exception) as theirs:
        call(torch, torch.nn.functional)
    with pytest.raises(type(theirs.value)) as ours:
        call(gt, F)
    assert str(ours.value) == str(theirs.value)
