"""Side by side with torch 2.13: dims, dtypes, shapes and errors of the ops.

Table-driven: every public op that takes a dim runs on 0-d, empty and ordinary tensors with
dim 0 / -1 (and out-of-range dims) in both libraries, and must give the same outcome: the
same result (shape, dtype, values), gradient, double-backward gradient and forward-mode
tangent, or the same exception type and message.  Promotion tables check result dtypes of
int64/int32/bool/float32/float64 pairs, and float32 programs check that gradients, tangents
and ``functional.jacobian/hessian`` stay float32.
"""

import warnings

import numpy as np
import pytest

import gradtool as gt

torch = pytest.importorskip("torch")
from torch.autograd import forward_ad as torch_fwd  # noqa: E402

gt_fwd = gt.autograd.forward_ad


@pytest.fixture(autouse=True)
def torch_default_float64():
    """gradtool's default floating dtype is float64 (docs/engine.md); compare with torch
    under the same default."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _fwd(lib):
    return torch_fwd if lib is torch else gt_fwd


def _dtype_name(t) -> str:
    return str(t.dtype).split(".")[-1]


def _error(err: Exception) -> tuple:
    """An exception as (builtin base type, first line of its message)."""
    kind = next(c for c in type(err).__mro__ if c.__module__ == "builtins")
    return ("error", kind.__name__, str(err).split("\n")[0])


def _tensors(value) -> list:
    if isinstance(value, (torch.Tensor, gt.Tensor)):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


def _describe(value):
    if isinstance(value, torch.Tensor):    # (force: a tangent may be a ZeroTensor)
        return (tuple(value.shape), _dtype_name(value), value.detach().numpy(force=True))
    if isinstance(value, gt.Tensor):
        return (tuple(value.shape), _dtype_name(value), value.detach().numpy().copy())
    if isinstance(value, (tuple, list)):
        return [_describe(v) for v in value]
    return value


def _assert_same(got, expected, what: str) -> None:
    if isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), (what, got, expected)
        for g, e in zip(got, expected):
            _assert_same(g, e, what)
    elif isinstance(expected, tuple) and len(expected) == 3 \
            and isinstance(expected[2], np.ndarray):
        assert isinstance(got, tuple) and got[:2] == expected[:2], (what, got, expected)
        np.testing.assert_allclose(got[2], expected[2], rtol=1e-7, atol=1e-10,
                                   equal_nan=True, err_msg=what)
    else:
        assert got == expected, (what, got, expected)


def _input(lib, shape, dtype="float64", seed=0):
    data = np.asarray(np.random.default_rng(seed).standard_normal(shape))
    if dtype == "bool":
        data = data > 0
    elif dtype != "float64":
        data = (data * 3).astype(dtype)
    return lib.tensor(data)


def _outcome(lib, op, shape, dim, dtype="float64"):
    """op's result on a tensor of ``shape``, and for floating results: the gradient of a
    weighted sum, its double-backward gradient and the forward-mode tangents."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            x = _input(lib, shape, dtype)
            if dtype == "float64":
                x.requires_grad_(True)
            result = op(lib, x, dim)
        except (RuntimeError, TypeError, ValueError, IndexError,
                NotImplementedError) as err:
            return {"result": _error(err)}
        out = {"result": _describe(result)}
        floats = [t for t in _tensors(result) if t.dtype == lib.float64]
        if dtype != "float64" or not any(t.requires_grad for t in floats):
            return out
        weights = [lib.tensor(np.random.default_rng(1).standard_normal(t.shape)) for t in floats]
        total = sum((t * w).sum() for t, w in zip(floats, weights))
        (grad,) = lib.autograd.grad(total, x, create_graph=True, allow_unused=True)
        out["grad"] = _describe(grad)
        if grad is not None and grad.requires_grad:
            (double,) = lib.autograd.grad((grad * grad).sum(), x, allow_unused=True)
            out["double"] = None if double is None else _describe(double)
        fwd = _fwd(lib)
        with fwd.dual_level():
            primal = _input(lib, shape)
            tangent = lib.tensor(np.random.default_rng(2).standard_normal(shape))
            dual_out = op(lib, fwd.make_dual(primal, tangent), dim)
            out["tangent"] = [_describe(fwd.unpack_dual(t).tangent)
                              for t in _tensors(dual_out) if t.dtype == lib.float64]
        return out


def _same(op, shape, dim, dtype="float64"):
    expected = _outcome(torch, op, shape, dim, dtype)
    got = _outcome(gt, op, shape, dim, dtype)
    assert set(got) >= set(expected) - {"double"}, (got.keys(), expected.keys())
    for key in expected:
        if key == "double" and "double" not in got:
            continue    # torch's gradient has a graph where gradtool's is constant
        _assert_same(got[key], expected[key], key)


def _index(lib, shape):
    return lib.zeros(shape, dtype=lib.int64)


#: every public op with a dim argument: name -> (lib, x, dim) -> result
DIM_OPS = {
    "sum": lambda L, x, d: L.sum(x, d),
    "sum_keepdim": lambda L, x, d: L.sum(x, d, keepdim=True),
    "sum_list": lambda L, x, d: L.sum(x, [d]),
    "mean": lambda L, x, d: L.mean(x, d),
    "mean_keepdim": lambda L, x, d: x.mean(d, keepdim=True),
    "prod": lambda L, x, d: L.prod(x, d),
    "prod_keepdim": lambda L, x, d: L.prod(x, d, keepdim=True),
    "max": lambda L, x, d: tuple(L.max(x, d)),
    "max_keepdim": lambda L, x, d: tuple(L.max(x, d, keepdim=True)),
    "min": lambda L, x, d: tuple(L.min(x, d)),
    "amax": lambda L, x, d: L.amax(x, d),
    "amin_keepdim": lambda L, x, d: L.amin(x, d, keepdim=True),
    "argmax": lambda L, x, d: L.argmax(x, d),
    "argmin_keepdim": lambda L, x, d: L.argmin(x, d, keepdim=True),
    "cumsum": lambda L, x, d: L.cumsum(x, d),
    "softmax": lambda L, x, d: L.softmax(x, d),
    "log_softmax": lambda L, x, d: L.log_softmax(x, d),
    "nn_softmax": lambda L, x, d: L.nn.functional.softmax(x, d),
    "logsumexp": lambda L, x, d: L.logsumexp(x, d),
    "logsumexp_keepdim": lambda L, x, d: L.logsumexp(x, d, keepdim=True),
    "var": lambda L, x, d: L.var(x, d),
    "std_keepdim": lambda L, x, d: L.std(x, d, keepdim=True),
    "var_correction0": lambda L, x, d: L.var(x, d, correction=0),
    "norm": lambda L, x, d: L.norm(x, dim=d),
    "vector_norm_1": lambda L, x, d: L.linalg.vector_norm(x, 1, dim=d),
    "vector_norm_inf": lambda L, x, d: L.linalg.vector_norm(x, float("inf"), dim=d),
    "normalize": lambda L, x, d: L.nn.functional.normalize(x, dim=d),
    "all": lambda L, x, d: L.all(x > 0, d),
    "any_keepdim": lambda L, x, d: L.any(x > 0, d, keepdim=True),
    "count_nonzero": lambda L, x, d: L.count_nonzero(x > 0, d),
    "sort": lambda L, x, d: tuple(L.sort(x, d)),
    "argsort": lambda L, x, d: L.argsort(x, d),
    "topk": lambda L, x, d: tuple(L.topk(x, 1, d)),
    "topk0": lambda L, x, d: tuple(L.topk(x, 0, d)),
    "transpose": lambda L, x, d: L.transpose(x, 0, d),
    "transpose_same": lambda L, x, d: L.transpose(x, d, d),
    "squeeze": lambda L, x, d: L.squeeze(x, d),
    "unsqueeze": lambda L, x, d: L.unsqueeze(x, d),
    "flip": lambda L, x, d: L.flip(x, [d]),
    "flatten": lambda L, x, d: L.flatten(x, d),
    "narrow": lambda L, x, d: L.narrow(x, d, 0, 0),
    "split": lambda L, x, d: L.split(x, 1, d),
    "chunk": lambda L, x, d: L.chunk(x, 2, d),
    "unbind": lambda L, x, d: L.unbind(x, d),
    "gather": lambda L, x, d: L.gather(x, d, _index(L, x.shape)),
    "gather_empty_index": lambda L, x, d: L.gather(x, d, _index(L, (0,) * x.ndim)),
    "scatter_add": lambda L, x, d: L.scatter_add(x, d, _index(L, x.shape), x * 2),
    "index_select": lambda L, x, d: L.index_select(x, d, _index(L, (1,))),
    "index_select_0d_index": lambda L, x, d: L.index_select(x, d, _index(L, ())),
    "index_select_empty": lambda L, x, d: L.index_select(x, d, _index(L, (0,))),
    "cat": lambda L, x, d: L.cat([x, x * 2], d),
    "stack": lambda L, x, d: L.stack([x, x * 2], d),
    "size": lambda L, x, d: x.size(d),
}

SHAPES = [(), (0,), (2, 0), (0, 3), (3,), (2, 3)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(DIM_OPS))
def test_dim_ops_on_0d_empty_and_last_dim(name, shape):
    for dim in (0, -1):
        _same(DIM_OPS[name], shape, dim)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "amax", "argmax", "cumsum", "softmax",
                                  "logsumexp", "var", "norm", "all", "count_nonzero", "sort",
                                  "transpose", "squeeze", "unsqueeze", "flip", "flatten",
                                  "gather", "index_select", "unbind", "size", "cat", "split"])
def test_dims_out_of_range(name):
    for shape, dim in [((), 1), ((), -2), ((3,), 1), ((3,), -2), ((2, 3), 2), ((2, 3), -3)]:
        _same(DIM_OPS[name], shape, dim)


@pytest.mark.parametrize("dtype", ["int64", "bool"])
@pytest.mark.parametrize("name", ["sum", "prod", "cumsum", "argmax", "amax", "max", "sort",
                                  "mean", "var", "norm", "softmax", "log_softmax", "flip"])
def test_dim_ops_on_integer_tensors(name, dtype):
    _same(DIM_OPS[name], (2, 3), -1, dtype)
    _same(DIM_OPS[name], (), 0, dtype)


def test_cumsum_of_0d_is_0d_with_its_node():
    x = gt.tensor(1.5, requires_grad=True)
    y = x.cumsum(0)
    assert y.shape == () and y.grad_fn.name() == "CumsumBackward0"
    y.backward()
    assert x.grad.item() == 1.0


def test_0d_reductions_record_torch_nodes():
    for name in ["sum", "mean", "max", "softmax", "var", "norm", "logsumexp", "transpose",
                 "squeeze", "flip", "cumsum"]:
        tx = torch.tensor(0.7, requires_grad=True)
        gx = gt.tensor(0.7, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)    # var's degrees of freedom
            expected = DIM_OPS[name](torch, tx, 0)
            got = DIM_OPS[name](gt, gx, 0)
        expected = expected[0] if isinstance(expected, tuple) else expected
        got = got[0] if isinstance(got, tuple) else got
        assert got.grad_fn.name() == expected.grad_fn.name(), name


def test_0d_dims_under_vmap():
    x = gt.tensor([0.5, -1.0, 2.0])
    for name in ["sum", "softmax", "cumsum", "logsumexp", "flip"]:
        batched = gt.vmap(lambda row, op=DIM_OPS[name]: op(gt, row, 0))(x)
        rows = gt.stack([DIM_OPS[name](gt, row, 0) for row in x])
        np.testing.assert_allclose(batched.numpy(), rows.numpy())


def test_legacy_cat_skips_1d_empty_tensors():
    def op(L, x, d):
        empty = L.zeros(0, requires_grad=True)
        out = L.cat([empty, x, empty], d)
        out.sum().backward()
        return out, empty.grad, x.grad
    _same(op, (2, 3), 1)
    _same(op, (2, 3), 0)


# ---- promotion --------------------------------------------------------------------------------
DTYPES = ["int64", "int32", "bool", "float32", "float64"]


def _typed(lib, dtype, shape, seed):
    data = np.asarray(np.random.default_rng(seed).standard_normal(shape) * 3)
    data = data > 0 if dtype == "bool" else data.astype(dtype)
    t = lib.tensor(data)
    if dtype.startswith("float"):
        t.requires_grad_(True)
    return t


def _bool_free(op):
    """op, or a bitwise or where an operand is bool (torch refuses subtracting bools)."""
    return lambda L, a, b: op(L, a, b) if L.bool not in (a.dtype, b.dtype) \
        else a.detach() | b.detach()


#: binary ops that promote their operands: name -> (lib, a, b) -> result
PROMOTING = {
    "add": lambda L, a, b: a + b,
    "mul": lambda L, a, b: a * b,
    "sub": _bool_free(lambda L, a, b: a - b),
    "div": lambda L, a, b: a / b,
    "maximum": lambda L, a, b: L.maximum(a, b),
    "atan2": _bool_free(lambda L, a, b: L.atan2(a, b)),
    "eq": lambda L, a, b: a == b,
    "cat": lambda L, a, b: L.cat([a.reshape(-1), b.reshape(-1)]),
    "stack": lambda L, a, b: L.stack([a, b]) if a.shape == b.shape else L.stack([a, a]),
    "where": lambda L, a, b: L.where(L.tensor([True, False, True]), a, b),
    "where_scalar": lambda L, a, b: L.where(L.tensor([True, False, True]), a, 2.5),
    "div_floor": _bool_free(lambda L, a, b: L.div(a, b, rounding_mode="floor")),
    "masked_fill": lambda L, a, b: a.masked_fill(L.tensor([True, False, True]), 2),
}


@pytest.mark.parametrize("name", sorted(PROMOTING))
def test_promotion_of_dtype_pairs(name):
    for da in DTYPES:
        for db in DTYPES:
            for sa, sb in [((3,), (3,)), ((3,), ()), ((), (3,))]:
                results = []
                for lib in (torch, gt):
                    a, b = _typed(lib, da, sa, 0), _typed(lib, db, sb, 1)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        try:
                            out = PROMOTING[name](lib, a, b)
                        except (RuntimeError, TypeError, ValueError) as err:
                            results.append(_error(err)[:2])
                            continue
                    grads = None
                    if out.requires_grad:
                        grads = lib.autograd.grad(out.sum(), [t for t in (a, b)
                                                              if t.requires_grad],
                                                  allow_unused=True)
                        grads = [None if g is None else _dtype_name(g) for g in grads]
                    results.append((_dtype_name(out), tuple(out.shape), grads))
                assert results[1] == results[0], (name, da, db, sa, sb)


#: float32 programs: name -> (lib, x) -> output
FLOAT32_PROGRAMS = {
    "sum": lambda L, x: (x * 2).sum(),
    "softmax": lambda L, x: L.softmax(x, -1),
    "logsumexp": lambda L, x: L.logsumexp(x, 0),
    "var": lambda L, x: x.var(0),
    "norm": lambda L, x: x.norm(),
    "prod": lambda L, x: x.prod(0),
    "matmul": lambda L, x: x @ x.t(),
    "pow_float64_exponent": lambda L, x: L.abs(x) ** L.tensor(0.5, dtype=L.float64),
    "mul_float64_0d": lambda L, x: x * L.tensor(2.0, dtype=L.float64),
    "add_int64": lambda L, x: x + L.tensor([1, 2, 3]),
    "cat_int64": lambda L, x: L.cat([x, L.ones(1, 3, dtype=L.int64)]),
    "where_int64": lambda L, x: L.where(x > 0, x, L.tensor(0, dtype=L.int64)),
    "max_dim": lambda L, x: L.max(x, 1).values,
    "cumsum": lambda L, x: L.cumsum(x, 1),
    "gather": lambda L, x: L.gather(x, 1, L.tensor([[0, 0, 1], [2, 1, 0]])),
    "trace": lambda L, x: L.trace(x @ x.t()),
    "floor": lambda L, x: L.floor(x) + x,
    "div_floor": lambda L, x: L.div(x, 0.7, rounding_mode="floor") * x,
    "minimum_float64_0d": lambda L, x: L.minimum(x, L.tensor(0.1, dtype=L.float64)),
}


def _float32_dtypes(lib, program) -> dict:
    data = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    x = lib.tensor(data, requires_grad=True)
    out = program(lib, x)
    (grad,) = lib.autograd.grad(out.sum(), x, create_graph=True)
    result = {"out": _dtype_name(out), "grad": _dtype_name(grad)}
    fwd = _fwd(lib)
    with fwd.dual_level():
        dual = fwd.make_dual(lib.tensor(data), lib.ones(2, 3, dtype=lib.float32))
        result["tangent"] = _dtype_name(fwd.unpack_dual(program(lib, dual)).tangent)
    functional = lib.autograd.functional
    result["jacobian"] = _dtype_name(functional.jacobian(lambda a: program(lib, a),
                                                         lib.tensor(data)))
    result["hessian"] = _dtype_name(functional.hessian(lambda a: program(lib, a).sum(),
                                                       lib.tensor(data)))
    return result


@pytest.mark.parametrize("name", sorted(FLOAT32_PROGRAMS))
def test_float32_programs_stay_float32(name):
    program = FLOAT32_PROGRAMS[name]
    assert _float32_dtypes(gt, program) == _float32_dtypes(torch, program)


# ---- forward-mode tangents of piecewise-constant ops ------------------------------------------
ZERO_TANGENT_OPS = {
    "floor": lambda L, x: L.floor(x),
    "ceil": lambda L, x: L.ceil(x),
    "round": lambda L, x: L.round(x),
    "trunc": lambda L, x: L.trunc(x),
    "sign": lambda L, x: L.sign(x),
    "div_floor": lambda L, x: L.div(x, 2.0, rounding_mode="floor"),
    "div_trunc": lambda L, x: L.div(x, 2.0, rounding_mode="trunc"),
    "clamp_outside": lambda L, x: L.clamp(x, min=5.0),
    "masked_fill_all": lambda L, x: x.masked_fill(x > -10, 0.0),
    "eq": lambda L, x: x == x,
    "argmax": lambda L, x: L.argmax(x),
}


@pytest.mark.parametrize("name", sorted(ZERO_TANGENT_OPS))
def test_forward_tangents_of_piecewise_constant_ops(name):
    results = []
    for lib in (torch, gt):
        fwd = _fwd(lib)
        with fwd.dual_level():
            x = fwd.make_dual(lib.tensor([1.5, -0.3, 2.25]), lib.tensor([1.0, 2.0, 3.0]))
            tangent = fwd.unpack_dual(ZERO_TANGENT_OPS[name](lib, x)).tangent
            results.append(None if tangent is None else _describe(tangent))
    if results[0] is None:
        assert results[1] is None
    else:
        _assert_same(results[1], results[0], name)


def test_div_with_rounding_mode_records_one_node_with_zero_gradient():
    for lib in (torch, gt):
        x = lib.tensor([1.5, -2.0], requires_grad=True)
        y = lib.div(x, lib.tensor([2.0, 3.0]), rounding_mode="floor")
        assert y.grad_fn.name() == "DivBackward2"
        y.sum().backward()
        assert x.grad.tolist() == [0.0, 0.0]


# ---- errors: torch's type and wording ----------------------------------------------------------
MISUSE = {
    "broadcast_add": lambda L: L.ones(2, 3) + L.ones(4),
    "broadcast_mul_3d": lambda L: L.ones(2, 3) * L.ones(2, 1, 4),
    "broadcast_where": lambda L: L.where(L.ones(2) > 0, L.ones(3), L.ones(2)),
    "expand_size": lambda L: L.ones(2, 3).expand(2, 4),
    "expand_new_dims": lambda L: L.ones(2, 1).expand(3, 5, 3),
    "expand_minus_one_kept": lambda L: L.ones(2, 3).expand(2, 3, -1),
    "expand_leading_minus_one": lambda L: L.ones(2, 3).expand(-1, -1, 3),
    "expand_too_few": lambda L: L.ones(2, 3).expand(3),
    "expand_too_few_long": lambda L: L.ones(2, 3, dtype=L.int64).expand(3),
    "mm_dtypes": lambda L: L.ones(2, 2) @ L.ones(2, 2, dtype=L.float32),
    "mv_dtypes": lambda L: L.mv(L.ones(2, 2), L.ones(2, dtype=L.float32)),
    "matmul_vec_dtypes": lambda L: L.ones(3, 2, 2, dtype=L.float32) @ L.ones(2),
    "dot_dtypes": lambda L: L.ones(2, dtype=L.float32) @ L.ones(2),
    "mean_long": lambda L: L.ones(2, dtype=L.int64).mean(),
    "var_long": lambda L: L.ones(2, dtype=L.int64).var(),
    "std_int": lambda L: L.ones(2, dtype=L.int32).std(0),
    "vector_norm_long": lambda L: L.linalg.vector_norm(L.ones(2, dtype=L.int64)),
    "softmax_long": lambda L: L.softmax(L.ones(2, 2, dtype=L.int64), -1),
    "softmax_long_dim0": lambda L: L.softmax(L.ones(2, 2, dtype=L.int64), 0),
    "log_softmax_bool": lambda L: L.log_softmax(L.ones(2, dtype=L.bool), 0),
    "masked_fill_float_mask": lambda L: L.ones(2).masked_fill(L.ones(2), 1.0),
    "add_inplace_cast": lambda L: L.ones(2, dtype=L.int64).add_(L.ones(2)),
    "nll_target_int": lambda L: L.nn.functional.nll_loss(L.ones(2, 3),
                                                         L.ones(2, dtype=L.int32)),
    "nll_target_float": lambda L: L.nn.functional.nll_loss(L.ones(2, 3), L.ones(2)),
    "cross_entropy_float_target_shape": lambda L: L.nn.functional.cross_entropy(
        L.ones(2, 3), L.ones(2)),
    "gather_float_index": lambda L: L.gather(L.ones(2, 3), 1, L.ones(2, 3)),
    "gather_negative_index": lambda L: L.gather(L.ones(2, 3), 1, L.full((2, 2), -1)),
    "gather_too_large_index": lambda L: L.gather(L.ones(2, 3), 1, L.full((2, 2), 3)),
    "gather_empty_dim": lambda L: L.gather(L.ones(2, 0), 1, L.zeros(2, 1, dtype=L.int64)),
    "gather_ndim": lambda L: L.gather(L.ones(2, 3), 1, L.zeros(3, dtype=L.int64)),
    "scatter_add_sizes": lambda L: L.scatter_add(L.ones(2, 3), 1,
                                                 L.zeros(3, 3, dtype=L.int64), L.ones(3, 3)),
    "scatter_add_small_src": lambda L: L.scatter_add(L.ones(2, 3), 1,
                                                     L.zeros(2, 2, dtype=L.int64), L.ones(2, 1)),
    "scatter_add_negative": lambda L: L.scatter_add(L.ones(2, 3), 1, L.full((2, 2), -1),
                                                    L.ones(2, 2)),
    "index_select_matrix_index": lambda L: L.index_select(L.ones(2, 3), 1,
                                                          L.zeros(2, 2, dtype=L.int64)),
    "index_select_float_index": lambda L: L.index_select(L.ones(2, 3), 1, L.zeros(2)),
    "index_select_negative": lambda L: L.index_select(L.ones(2, 3), 1, L.tensor([-1])),
    "index_select_too_large": lambda L: L.index_select(L.ones(2, 3), 1, L.tensor([3])),
    "index_select_0d_two": lambda L: L.index_select(L.tensor(1.0), 0, L.tensor([0, 0])),
    "cat_0d": lambda L: L.cat([L.ones(2), L.tensor(1.0)]),
    "cat_ndim": lambda L: L.cat([L.ones(2, 3), L.ones(3)]),
    "topk_k": lambda L: L.topk(L.ones(3), 4),
    "split_0d": lambda L: L.split(L.tensor(1.0), 1),
    "chunk_0d": lambda L: L.chunk(L.tensor(1.0), 2),
    "narrow_0d": lambda L: L.narrow(L.tensor(1.0), 0, 0, 1),
    "amax_empty": lambda L: L.amax(L.ones(2, 0), -1),
    "max_empty": lambda L: L.max(L.ones(0, 3), 0),
    "argmax_empty": lambda L: L.argmax(L.ones(2, 0), 1),
    "max_all_empty": lambda L: L.ones(0).max(),
    "setitem_shape_on_leaf": lambda L: L.zeros(3, 2, requires_grad=True).__setitem__(
        Ellipsis, L.ones(4, 3)),
    "setitem_shape": lambda L: L.zeros(3, 2).__setitem__(slice(0, 2), L.ones(3, 2)),
    "setitem_too_many_dims": lambda L: L.zeros(3, 2).__setitem__(Ellipsis, L.ones(2, 3, 2)),
    "setitem_advanced_shape": lambda L: L.zeros(3, 2).__setitem__(L.tensor([0, 1]),
                                                                  L.ones(3, 2)),
    "setitem_leading_ones_leaf": lambda L: L.zeros(3, 2, requires_grad=True).__setitem__(
        Ellipsis, L.ones(1, 3, 2)),
    "pow_bool_bool": lambda L: L.tensor([True]) ** L.tensor([True]),
    "abs_bool": lambda L: L.abs(L.tensor([True])),
    "softplus_int": lambda L: L.nn.functional.softplus(L.tensor([1], dtype=L.int32)),
    "det_long": lambda L: L.det(L.tensor([[1, 2], [3, 4]])),
    "inverse_long": lambda L: L.inverse(L.tensor([[1, 2], [3, 4]])),
    "det_long_not_square": lambda L: L.det(L.ones(2, 3, dtype=L.int64)),
    "pow_int_negative_scalar": lambda L: L.tensor([2]) ** -1,
    "backward_grad_shape_first": lambda L: L.ones(2, 3).backward(L.ones(3, 4)),
    "grad_grad_shape_first": lambda L: L.autograd.grad(
        L.ones(2, requires_grad=True) * 2, [L.ones(2)], L.ones(3)),
    "grad_implicit_before_inputs": lambda L: L.autograd.grad(
        L.ones(2, requires_grad=True) * 2, [L.ones(2)]),
    "grad_output_not_requiring_grad": lambda L: L.autograd.grad(L.ones(2), [L.ones(2)],
                                                                L.ones(2)),
    "expand_last_dim_first": lambda L: L.ones(3, 2).expand(4, 3),
    "expand_last_dim_first_3d": lambda L: L.ones(1, 2, 2).expand(2, 3, 3),
    "select_out_of_range": lambda L: L.ones(3, 2).select(0, 7),
    "select_negative_out_of_range": lambda L: L.ones(3, 2).select(1, -3),
    "select_0d": lambda L: L.tensor(1.0).select(0, 0),
    "bitwise_float": lambda L: L.ones(2) | L.ones(2),
    "bitwise_long_float": lambda L: L.ones(2, dtype=L.int64) & L.ones(2, dtype=L.float32),
    "invert_float": lambda L: ~L.ones(2),
    "matmul_not_folded": lambda L: L.ones(2, 3, 1, requires_grad=True).transpose(2, -2)
    @ L.ones(4, 2),
    "matmul_folded": lambda L: L.ones(2, 3, 1) @ L.ones(4, 2),
    "matmul_folded_right": lambda L: L.ones(2, 3) @ L.ones(5, 4, 2, requires_grad=True),
    "matmul_batched_right": lambda L: L.ones(2, 3) @ L.ones(5, 4, 2),
    "matmul_vector_left": lambda L: L.ones(3) @ L.ones(5, 4, 2),
    "matmul_vector_right": lambda L: L.ones(2, 2, 3) @ L.ones(5),
    "matmul_batches": lambda L: L.ones(7, 2, 2, 3) @ L.ones(3, 3, 2),
}


@pytest.mark.parametrize("name", sorted(MISUSE))
def test_misuse_raises_torch_type_and_message(name):
    outcomes = []
    for lib in (torch, gt):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                MISUSE[name](lib)
                outcomes.append("no error")
            except (RuntimeError, TypeError, ValueError, IndexError,
                    NotImplementedError) as err:
                outcomes.append(_error(err))
    assert outcomes[1] == outcomes[0]


def test_dtype_names_come_from_one_table():
    from gradtool.engine import dtypes
    names = {d: (dtypes.scalar_type_name(d), dtypes.c_type_name(d), dtypes.legacy_type_name(d))
             for d in (gt.float64, gt.float32, gt.int64, gt.int32, gt.bool, gt.uint8)}
    assert names[gt.float64] == ("Double", "double", "DoubleTensor")
    assert names[gt.float32] == ("Float", "float", "FloatTensor")
    assert names[gt.int64] == ("Long", "long int", "LongTensor")
    assert names[gt.int32] == ("Int", "int", "IntTensor")
    assert names[gt.bool] == ("Bool", "bool", "BoolTensor")
    assert names[gt.uint8] == ("Byte", "unsigned char", "ByteTensor")



#: programs whose first-order gradient depends on the input (torch's graph of the backward)
#: although its derivative is zero: the gradient requires grad, the second one is zeros
DOUBLE_BACKWARD = {
    "relu": lambda L, x: L.relu(x),
    "abs": lambda L, x: L.abs(x),
    "norm_1": lambda L, x: x.norm(p=1, dim=-1),
    "vector_norm_inf": lambda L, x: L.linalg.vector_norm(x, float("inf"), dim=0),
    "l1_loss": lambda L, x: L.nn.functional.l1_loss(x, L.zeros(2, 3), reduction="sum"),
}


@pytest.mark.parametrize("name", sorted(DOUBLE_BACKWARD))
def test_gradients_of_piecewise_linear_ops_have_torch_graphs(name):
    results = []
    for lib in (torch, gt):
        x = lib.tensor([[1.5, -0.5, 2.0], [-1.0, 0.25, 3.0]], requires_grad=True)
        out = DOUBLE_BACKWARD[name](lib, x)
        (grad,) = lib.autograd.grad(out.sum(), x, create_graph=True)
        second = None
        if grad.requires_grad:
            (second,) = lib.autograd.grad((grad * grad).sum(), x, allow_unused=True)
        results.append((grad.requires_grad, _describe(grad),
                        None if second is None else _describe(second)))
    assert results[1][0] == results[0][0]
    _assert_same(results[1][1], results[0][1], "grad")
    _assert_same(results[1][2], results[0][2], "second")


#: functions independent of their input (constants, integer paths)
CONSTANT_FUNCTIONS = {
    "constant_sum": lambda L, x: L.tensor([0.5, -1.0]).sum(),
    "cast_integer": lambda L, x: L.tensor(3).double(),
    "sorted_constant": lambda L, x: L.sort(L.tensor([2.0, 1.0]))[0].sum(),
}


@pytest.mark.parametrize("name", sorted(CONSTANT_FUNCTIONS))
def test_hessian_and_jacobian_of_a_function_independent_of_its_input(name):
    fn = CONSTANT_FUNCTIONS[name]
    results = []
    for lib in (torch, gt):
        x = lib.tensor([0.3, -0.2])
        functional = lib.autograd.functional
        def bound(a, lib=lib):
            return fn(lib, a)
        results.append((_describe(functional.hessian(bound, x)),
                        _describe(functional.jacobian(bound, x))))
    _assert_same(list(results[1]), list(results[0]), name)


def test_select_is_a_view_with_torch_node():
    for lib in (torch, gt):
        x = lib.ones(3, 2, requires_grad=True)
        y = x.select(1, -1)
        assert y.grad_fn.name() == "SelectBackward0" and tuple(y.shape) == (3,)
        y.sum().backward()
        assert x.grad.tolist() == [[0.0, 1.0]] * 3


@pytest.mark.parametrize("shape", [(0,), (3, 2, 0)], ids=str)
def test_linear_of_empty_inputs(shape):
    results = []
    for lib in (torch, gt):
        x = lib.zeros(shape, requires_grad=True)
        weight = lib.zeros((2, 0), requires_grad=True)
        bias = lib.tensor([0.5, -1.0], requires_grad=True)
        out = lib.nn.functional.linear(x, weight, bias)
        out.sum().backward()
        results.append(_describe([out, x.grad, bias.grad, weight.grad]))
    _assert_same(results[1], results[0], "linear")


def test_bitwise_operators_on_integers():
    def op(L, x, d):
        a = L.tensor([5, 3, -2])
        return (a | L.tensor([True, False, True]), a & 6, a ^ L.tensor(1, dtype=L.int32),
                ~a, ~L.tensor([True, False]), L.tensor([3], dtype=L.int32) | 5)
    _same(op, (), 0)



def test_sign_gradient_has_no_graph():
    for lib in (torch, gt):
        x = lib.tensor([0.5, -1.0], requires_grad=True)
        (grad,) = lib.autograd.grad(lib.cosh(lib.sign(x)).sum(), x, create_graph=True)
        assert not grad.requires_grad and grad.tolist() == [0.0, 0.0]


def test_mixed_dtype_gradients_through_products_under_create_graph():
    """A float64 operand upstream of a float32 matmul: the gradients (and the Hessian) are
    float32, as torch's, not an m1/m2 dtype error."""
    results = []
    for lib in (torch, gt):
        x = lib.tensor([[1.0, 2.0]], dtype=lib.float32, requires_grad=True)
        w = lib.tensor([[0.5], [0.25]], dtype=lib.float32, requires_grad=True)

        def f(a, lib=lib, w=w):
            return (((a @ w) * lib.tensor([2.0], dtype=lib.float64)).sum()) ** 2
        grads = lib.autograd.grad(f(x), [x, w], create_graph=True)
        hessian = lib.autograd.functional.hessian(f, x)
        results.append(_describe([*grads, hessian]))
    _assert_same(results[1], results[0], "mixed")


#: integer and bool tensors through ops that keep them integral or make them floating
INTEGER_OPS = {
    "pow_negative_exponents": lambda L: L.tensor([0, 0, 2, -2, -1, 5, 1])
    ** L.tensor([-1, 0, -1, -1, -3, -2, -5]),
    "pow_int32": lambda L: L.tensor([2], dtype=L.int32) ** L.tensor([-1]),
    "rpow_negative": lambda L: 2 ** L.tensor([-1, 2]),
    "pow_bool_base": lambda L: L.pow(L.tensor([True]), L.tensor([2])),
    "sign_bool": lambda L: L.sign(L.tensor([True, False])),
    "exp_bool": lambda L: L.exp(L.tensor([True, False])),
    "sqrt_uint8": lambda L: L.sqrt(L.tensor([4, 9], dtype=L.uint8)),
    "reciprocal_int": lambda L: L.reciprocal(L.tensor([2, 4])),
    "atan2_int16": lambda L: L.atan2(L.tensor([1], dtype=L.int16), L.tensor([2], dtype=L.int16)),
    "div_bool": lambda L: L.tensor([True]) / L.tensor([True]),
    "logsumexp_long": lambda L: L.logsumexp(L.tensor([3, 4]), 0),
    "sum_int32": lambda L: L.tensor([1, 2], dtype=L.int32).sum(),
    "cumsum_bool": lambda L: L.tensor([True, False]).cumsum(0),
    "where_int_float": lambda L: L.where(L.tensor([True, False]), L.tensor([1, 2]), 0.5),
}


@pytest.mark.parametrize("name", sorted(INTEGER_OPS))
def test_integer_and_bool_inputs(name):
    results = []
    for lib in (torch, gt):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results.append(_describe(INTEGER_OPS[name](lib)))
    _assert_same(results[1], results[0], name)


def test_where_selects_tangents_and_forward_mode_is_silent():
    """A NaN tangent of the branch not taken stays out; inf/NaN tangents raise no warning."""
    results = []
    for lib in (torch, gt):
        fwd = _fwd(lib)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)        # var's degrees of freedom
            warnings.simplefilter("error", RuntimeWarning)
            with fwd.dual_level():
                single = fwd.make_dual(lib.tensor([2.0]), lib.tensor([0.75]))
                other = fwd.make_dual(lib.tensor(0.2), lib.tensor(0.25))
                chosen = lib.where(lib.tensor(False), single.var(dim=-1), other)
                logged = lib.log(fwd.make_dual(lib.tensor([0.0]), lib.tensor([1.0])))
                results.append(_describe([fwd.unpack_dual(chosen).tangent,
                                          fwd.unpack_dual(logged).tangent]))
    _assert_same(results[1], results[0], "tangents")


@pytest.mark.parametrize("dim", [None, 0, 1])
def test_prod_with_zeros_is_exact_at_second_order(dim):
    results = []
    for lib in (torch, gt):
        x = lib.tensor([[1.0, 0.5, -1.0], [1.0, 0.0, -1.0], [0.0, -1.0, 0.5], [-1.0, 1.0, 0.0]],
                       requires_grad=True)

        def f(a, dim=dim):
            return (a ** 2).prod() if dim is None else (a ** 2).prod(dim=dim).sum()
        (grad,) = lib.autograd.grad(f(x), x, create_graph=True)
        (second,) = lib.autograd.grad((grad * lib.arange(12.0).reshape(4, 3)).sum(), x)
        hessian = lib.autograd.functional.hessian(f, lib.tensor([[0.0, 2.0], [3.0, -1.0]]))
        results.append(_describe([grad, second, hessian]))
    _assert_same(results[1], results[0], "prod")


def test_functional_of_0d_dim_ops():
    results = []
    for lib in (torch, gt):
        x = lib.tensor(-1.024)
        functional = lib.autograd.functional
        results.append(_describe([
            functional.jacobian(lambda a, lib=lib: a.cumsum(-1), x),
            functional.hessian(lambda a, lib=lib: (lib.softmax(a, 0) * a.cumsum(0)).sum(), x),
            functional.jacobian(lambda a, lib=lib: lib.max(a, 0).values * 2, x)]))
    _assert_same(results[1], results[0], "0-d")


#: var / std without degrees of freedom: torch's backward treats a call without a dim (or of a
#: 0-d tensor) apart, its gradient a constant (inf / NaN) without a graph
VAR_CASES = [
    ([3.0], lambda x: x.var(), 1.0),
    ([[-2.929]], lambda x: x.var(), 2.0),
    ([1.0, 2.0], lambda x: x.var(correction=2), -3.0),
    ([1.0, 2.0, 4.0], lambda x: x.var(correction=5), 1.0),
    ([1.0, 1.0], lambda x: x.var(correction=2), 1.0),
    ([3.0], lambda x: x.var(0), 1.0),
    ([[3.0], [4.0]], lambda x: x.var(1), 1.0),
    (3.0, lambda x: x.var(0), 1.0),
    (3.0, lambda x: x.var(), 1.0),
    ([1.0, 2.0], lambda x: x.var(0, correction=2), 1.0),
    ([[1.0, 2.0]], lambda x: x.var(dim=(0, 1), correction=2), 1.0),
    ([1.0, 2.0], lambda x: x.std(correction=2), 1.0),
    ([1.0, 2.0, 5.0], lambda x: x.std(), 1.0),
    (3.0, lambda x: x.std(0), 1.0),
]


@pytest.mark.parametrize("case", range(len(VAR_CASES)))
def test_var_and_std_without_degrees_of_freedom(case):
    values, fn, upstream = VAR_CASES[case]
    results = []
    for lib in (torch, gt):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            x = lib.tensor(values, requires_grad=True)
            out = fn(x)
            (grad,) = lib.autograd.grad(out, x, lib.tensor(upstream).expand_as(out),
                                        create_graph=True)
        results.append((_describe(grad), grad.requires_grad))
    _assert_same(results[1][0], results[0][0], "grad")
    assert results[1][1] == results[0][1]


def test_two_norm_second_derivative_at_zero_is_nan_as_torch():
    results = []
    for lib in (torch, gt):
        x = lib.tensor([[0.5], [0.0], [0.5]], requires_grad=True)
        (grad,) = lib.autograd.grad(x.norm(dim=1), x, lib.tensor([-1.0, 1.25, 1.75]),
                                    create_graph=True)
        (second,) = lib.autograd.grad((grad * lib.tensor([[1.0], [0.25], [-2.0]])).sum(), x)
        results.append(_describe([grad, second]))
    _assert_same(results[1], results[0], "norm")


@pytest.mark.parametrize("equation, shapes", [
    ("a,a->", ((0,), (0,))), ("ab,b->a", ((2, 0), (0,))), ("ab,bc->ac", ((2, 0), (0, 3))),
    ("ab,ab->", ((2, 0), (2, 0))), ("ab,bc->ac", ((2, 3), (3, 0))),
    ("ab,bc->ac", ((2, 3), (3, 4)))])
@pytest.mark.parametrize("first", ["float64", "float32"])
def test_einsum_and_bmm_of_two_float_dtypes(equation, shapes, first):
    """torch multiplies a float64 and a float32 operand when one of them is empty (the result
    has the second's dtype) and raises otherwise."""
    second = {"float64": "float32", "float32": "float64"}[first]
    seen = {}
    for lib in (torch, gt):
        rng = np.random.default_rng(0)
        a = lib.tensor(rng.standard_normal(shapes[0]), dtype=getattr(lib, first),
                       requires_grad=True)
        b = lib.tensor(rng.standard_normal(shapes[1]), dtype=getattr(lib, second),
                       requires_grad=True)
        try:
            out = lib.einsum(equation, a, b)
        except RuntimeError as err:
            seen[lib] = ("error", str(err))
            continue
        grads = lib.autograd.grad(out, [a, b], lib.ones(tuple(out.shape), dtype=out.dtype),
                                  create_graph=True)
        seen[lib] = (str(out.dtype).split(".")[1], tuple(out.shape), out.detach().numpy(),
                     [(str(g.dtype).split(".")[1], g.requires_grad) for g in grads],
                     type(out.grad_fn).__name__)
    got, expected = seen[gt], seen[torch]
    assert got[0] == expected[0]
    if got[0] == "error":
        assert got == expected
    else:
        assert got[1] == expected[1] and got[3:] == expected[3:]
        np.testing.assert_allclose(got[2], expected[2])


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum_gradients_and_tangents_at_nan_and_ties(op):
    """A NaN makes every comparison false: torch gives both inputs the whole gradient, and the
    forward tangent is the second input's."""
    nan = float("nan")
    seen = {}
    for lib in (torch, gt):
        a = lib.tensor([nan, 1.0, 2.0, nan, 3.0, 0.0], dtype=lib.float64, requires_grad=True)
        b = lib.tensor([1.0, nan, 2.0, nan, 1.0, 2.0], dtype=lib.float64, requires_grad=True)
        getattr(lib, op)(a, b).backward(lib.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                                                   dtype=lib.float64))
        fwad = lib.autograd.forward_ad
        with fwad.dual_level():
            da = fwad.make_dual(a.detach(), lib.ones(6, dtype=lib.float64))
            db = fwad.make_dual(b.detach(), lib.full((6,), 2.0, dtype=lib.float64))
            tangent = fwad.unpack_dual(getattr(lib, op)(da, db)).tangent
        seen[lib] = [a.grad.numpy(), b.grad.numpy(), tangent.numpy()]
    for got, want in zip(seen[gt], seen[torch]):
        np.testing.assert_allclose(got, want)


@pytest.mark.parametrize("dtypes", [("float64", "float32"), ("float32", "float64"),
                                    ("float32", "float32")])
@pytest.mark.parametrize("mode", ["value", "input_grad", "target_grad", "input_tangent",
                                  "target_tangent"])
def test_huber_loss_of_two_dtypes(dtypes, mode):
    """torch's huber_loss keeps the input's dtype; its backward and its forward-mode
    derivative refuse a target of another dtype ("Found dtype Float but expected Double")."""
    seen = {}
    for lib, F in ((torch, torch.nn.functional), (gt, gt.nn.functional)):
        x = lib.tensor([0.5, 1.5, -2.0], dtype=getattr(lib, dtypes[0]))
        t = lib.tensor([0.1, 0.2, 0.3], dtype=getattr(lib, dtypes[1]))
        try:
            if mode == "value":
                out = F.huber_loss(x, t, reduction="none")
                seen[lib] = (str(out.dtype).split(".")[1], out.numpy().astype(np.float64))
            elif mode.endswith("grad"):
                leaf = (x if mode == "input_grad" else t).requires_grad_(True)
                F.huber_loss(x, t, delta=0.5).backward()
                seen[lib] = leaf.grad.numpy().astype(np.float64)
            else:
                fwad = lib.autograd.forward_ad
                with fwad.dual_level():
                    if mode == "input_tangent":
                        x = fwad.make_dual(x, lib.ones(3, dtype=x.dtype))
                    else:
                        t = fwad.make_dual(t, lib.ones(3, dtype=t.dtype))
                    tangent = fwad.unpack_dual(F.huber_loss(x, t)).tangent
                seen[lib] = tangent.numpy().astype(np.float64)
        except RuntimeError as err:
            seen[lib] = str(err)
    got, want = seen[gt], seen[torch]
    if isinstance(want, str) or isinstance(got, str):
        assert got == want
    elif isinstance(want, tuple):
        assert got[0] == want[0]
        np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("k", [7, 2, -1])
def test_topk_of_bools_checks_k_first(k):
    messages = []
    for lib in (torch, gt):
        with pytest.raises(RuntimeError) as err:
            lib.tensor([False, False, False]).topk(k)
        messages.append(str(err.value))
    assert messages[0] == messages[1]


SHAPE_ARGUMENTS = [
    ("reshape", (6.0,)), ("reshape", ((2.0, 3),)), ("reshape", (2.0, 3)), ("reshape", (2, 3.0)),
    ("reshape", ([2, 3.0],)), ("reshape", ([6.0],)), ("reshape", ((2, 3.0),)),
    ("reshape", (np.int64(2), 3)), ("reshape", ("int tensor", 3)), ("reshape", (2, True)),
    ("view", (np.int64(3), -1)), ("permute", (0.0,)), ("expand", (6.0,)), ("expand", (6.0, 1)),
    ("repeat", (2.0, 1)), ("repeat", (2, 1.5)),
]


@pytest.mark.parametrize("method,args", SHAPE_ARGUMENTS)
def test_shape_arguments_as_torch(method, args):
    """Shapes of ints, integer numpy scalars and 0-d integer tensors work; a float is
    torch's TypeError in torch's words (int() truncated 2.5 to 2 before)."""
    outcomes = []
    for lib in (torch, gt):
        x = lib.zeros(6)
        call = tuple(lib.tensor(2) if a == "int tensor" else a for a in args)
        try:
            outcomes.append(("ok", tuple(getattr(x, method)(*call).shape)))
        except (TypeError, RuntimeError) as exc:
            outcomes.append((TypeError if isinstance(exc, TypeError) else RuntimeError,
                             str(exc)))
    assert outcomes[0] == outcomes[1]


OPERATOR_OTHERS = {
    "list": [1.0, 2.0], "tuple": (1, 2), "None": None, "str": "a", "dict": {1: 2},
    "int": 1, "float": 1.5, "numpy scalar": np.float64(2.0), "tensor": "tensor",
}
OPERATORS = ["==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "**", "@", "//", "%"]
REFLECTED = ["+", "-", "*", "/", "**", "@"]


def _assert_same_outcome(theirs, ours) -> None:
    """The same bool, the same exception and message, or the same dtype and values (up to
    rounding: x ** 1.5 is each library's pow)."""
    if isinstance(theirs, tuple) and isinstance(theirs[0], str) and isinstance(ours, tuple):
        assert theirs[0] == ours[0]
        np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-12, atol=0)
    else:
        assert theirs == ours


@pytest.mark.parametrize("operator", OPERATORS)
@pytest.mark.parametrize("other", list(OPERATOR_OTHERS))
def test_operators_with_other_python_values_as_torch(operator, other):
    """torch's operators take tensors, numbers and numpy scalars; with a list, a tuple, None
    or a string, == is False, != True, and the others are Python's TypeError (x == [1, 2]
    compared elementwise before)."""
    outcomes = []
    for lib in (torch, gt):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64)
        value = OPERATOR_OTHERS[other]
        if isinstance(value, str) and value == "tensor":
            value = lib.tensor([1.0, 3.0], dtype=lib.float64)
        try:     # the operator under test, written as a user writes it
            result = eval(f"x {operator} value", {}, {"x": x, "value": value})  # noqa: S307
        except (TypeError, RuntimeError) as exc:
            outcomes.append((TypeError if isinstance(exc, TypeError) else RuntimeError,
                             str(exc)))
            continue
        outcomes.append(result if isinstance(result, bool) else
                        (str(result.dtype).split(".")[-1], result.tolist()))
    _assert_same_outcome(*outcomes)


@pytest.mark.parametrize("expression", ["b - b", "b - 1", "f - True", "1 - b", "f - b",
                                        "b.sub(f)", "f.sub_(True)", "i - i", "1 - i"])
def test_subtraction_with_bool_as_torch(expression):
    outcomes = []
    for lib in (torch, gt):
        b = lib.tensor([True, False])
        f = lib.tensor([1.0, 2.0], dtype=lib.float64)
        i = lib.tensor([1, 2])
        names = {"b": b, "f": f, "i": i}
        try:
            outcomes.append(("ok", eval(expression, {}, names).tolist()))     # noqa: S307
        except RuntimeError as exc:
            outcomes.append(("error", str(exc)))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("operator", REFLECTED)
@pytest.mark.parametrize("other", ["list", "None", "str", "int", "numpy scalar"])
def test_reflected_operators_as_torch(operator, other):
    outcomes = []
    for lib in (torch, gt):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64)
        value = OPERATOR_OTHERS[other]
        try:
            result = eval(f"value {operator} x", {}, {"x": x, "value": value})  # noqa: S307
        except (TypeError, RuntimeError) as exc:
            outcomes.append((TypeError if isinstance(exc, TypeError) else RuntimeError,
                             str(exc)))
            continue
        outcomes.append((str(result.dtype).split(".")[-1], result.tolist()))
    _assert_same_outcome(*outcomes)
