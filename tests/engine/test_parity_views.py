"""Views, in-place ops, the version counter and CopySlices side by side with torch: each
program runs with ``torch`` and with ``gradtool`` and must give the same values, leaf
gradients, forward-mode tangents, node names, ``_version``s, requires_grad flags, and the
same exception type and message."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradtool as gt

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def torch_default_float64():
    """gradtool's default dtype is float64: compare with torch under the same default."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(previous)


def _node_name(node):
    return None if node is None else type(node).__name__


def _plain(value):
    """Everything observable about a result, floats kept as arrays (compared with a
    tolerance, never exactly)."""
    if isinstance(value, (torch.Tensor, gt.Tensor)):
        return {"values": np.array(value.detach().numpy(), dtype=np.float64),
                "shape": tuple(value.shape), "requires_grad": value.requires_grad,
                "is_leaf": value.is_leaf, "grad_fn": _node_name(value.grad_fn),
                "version": value._version}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _outcome(fn, lib):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _plain(fn(lib))
        except (RuntimeError, TypeError, ValueError, IndexError) as err:
            kind = next(c for c in type(err).__mro__ if c.__module__ == "builtins")
            return ("error", kind.__name__, str(err))


def _assert_same(got, expected, where="result"):
    if isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray) and got.shape == expected.shape, where
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=where)
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), (where, got, expected)
        for key in expected:
            _assert_same(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), (where, got, expected)
        for i, (g, e) in enumerate(zip(got, expected)):
            _assert_same(g, e, f"{where}[{i}]")
    else:
        assert got == expected, where


def same(fn):
    expected = _outcome(fn, torch)
    got = _outcome(fn, gt)
    _assert_same(got, expected)
    return expected


def leaf(lib, values):
    return lib.tensor(values, dtype=lib.float64, requires_grad=True)


# ---- integer indexing down to 0-d gives a view --------------------------------------------
def test_zero_dim_select_is_a_view_of_a_non_leaf():
    def fn(lib):
        x = leaf(lib, [1.0, 2.0])
        y = x * 1
        v = y[0]
        v.mul_(3.0)
        y.sum().backward()
        return {"y": y, "v": v, "grad": x.grad}
    result = same(fn)
    assert result["y"]["grad_fn"] == "CopySlices"
    assert result["v"]["grad_fn"] == "AsStridedBackward0"


@pytest.mark.parametrize("key", ["0", "-1", "1, 2", "(0,)*3", "..., 1"])
def test_zero_dim_views_share_memory_and_version(key):
    index = {"0": 0, "-1": -1, "1, 2": (1, 2), "(0,)*3": (0, 0, 0), "..., 1": (Ellipsis, 1)}[key]
    shape = {"0": (3,), "-1": (3,), "1, 2": (2, 3), "(0,)*3": (2, 2, 2), "..., 1": (3,)}[key]

    def fn(lib):
        y = lib.arange(float(np.prod(shape))).reshape(shape)
        v = y[index]
        v.add_(10.0)
        y.mul_(2.0)
        return {"y": y, "v": v}
    same(fn)


def test_unbind_pieces_of_a_vector_are_views():
    def fn(lib):
        y = lib.arange(3.0)
        a, b, c = y.unbind()
        b.fill_(7.0)
        return {"y": y, "b": b, "a": a}
    same(fn)


# ---- in-place on a view of a leaf that requires grad ------------------------------------------
VIEWS = {
    "select": lambda x: x[0], "select_0d": lambda x: x[0, 1], "slice": lambda x: x[1:],
    "narrow": lambda x: x.narrow(0, 0, 1), "transpose": lambda x: x.transpose(0, 1),
    "t": lambda x: x.t(), "permute": lambda x: x.permute(1, 0),
    "diagonal": lambda x: x.diagonal(), "expand": lambda x: x.expand(2, 2, 2),
    "view": lambda x: x.view(4), "reshape": lambda x: x.reshape(4),
    "unsqueeze": lambda x: x.unsqueeze(0), "squeeze_noop": lambda x: x.squeeze(),
    "alias": lambda x: x[...], "unbind": lambda x: x.unbind()[1],
    "split": lambda x: x.split(1)[0], "chunk": lambda x: x.chunk(2, 1)[1],
    "view_of_view": lambda x: x[0][1:],
}
INPLACE = {
    "mul_": lambda v: v.mul_(2.0), "add_": lambda v: v.add_(1.0), "zero_": lambda v: v.zero_(),
    "fill_": lambda v: v.fill_(3.0), "clamp_": lambda v: v.clamp_(0.0, 1.0),
    "copy_": lambda v: v.copy_(v.detach() * 0 + 1), "setitem": lambda v: v.__setitem__(..., 2.0),
}


@pytest.mark.parametrize("view", sorted(VIEWS))
@pytest.mark.parametrize("op", sorted(INPLACE))
def test_inplace_on_a_view_of_a_leaf(view, op):
    def fn(lib):
        x = leaf(lib, [[1.0, 2.0], [3.0, 4.0]])
        INPLACE[op](VIEWS[view](x))
        return x
    result = same(fn)
    assert result[0] == "error"


@pytest.mark.parametrize("view", sorted(set(VIEWS) - {"expand"}))
def test_inplace_on_a_view_of_a_non_leaf(view):
    def fn(lib):
        x = leaf(lib, [[1.0, 2.0], [3.0, 4.0]])
        y = x * 1
        w = leaf(lib, 3.0)
        v = VIEWS[view](y)
        v.mul_(w)
        (y * y).sum().backward()
        return {"y": y, "x.grad": x.grad, "w.grad": w.grad, "version": y._version}
    same(fn)


def test_diagonal_mul_on_a_leaf_raises_and_leaves_it():
    def fn(lib):
        x = leaf(lib, [[1.0, 2.0], [3.0, 4.0]])
        try:
            x.diagonal().mul_(2.0)
        except RuntimeError as err:
            return {"x": x, "error": str(err)}
        return {"x": x}
    same(fn)


# ---- views made under no_grad ---------------------------------------------------------------
@pytest.mark.parametrize("view", ["select", "slice", "t", "diagonal", "view", "unsqueeze"])
def test_no_grad_view_requires_grad_and_refuses_inplace(view):
    def fn(lib):
        x = leaf(lib, [[1.0, 2.0], [3.0, 4.0]])
        with lib.no_grad():
            v = VIEWS[view](x)
        flags = (v.requires_grad, v.is_leaf, v.grad_fn is None)
        z = (v * 2).sum()
        z.backward()
        try:
            v.mul_(2.0)
            error = None
        except RuntimeError as err:
            error = str(err)
        with lib.no_grad():
            v.mul_(3.0)
        # (torch then refuses any use of v with grad mode on: not compared)
        return {"flags": list(flags), "x.grad": x.grad is None, "error": error, "x": x,
                "v_version": v._version, "z": z}
    same(fn)


def test_no_grad_view_of_a_non_leaf():
    def fn(lib):
        x = leaf(lib, [1.0, 2.0, 3.0])
        y = x * 2
        with lib.no_grad():
            v = y[:2]
        w = v[1:]
        out = {"v": v, "w": w}
        try:
            w.add_(1.0)
        except RuntimeError as err:
            out["error"] = str(err)
        return out
    same(fn)


# ---- the version counter ------------------------------------------------------------------
VERSION_PROGRAMS = {
    "input_saved_then_mul_": lambda lib, x: _saved(lib, x, lambda y: y.sin(), lambda y: y.mul_(2)),
    "output_saved_then_mul_": lambda lib, x: _saved(lib, x, None, lambda y: y.mul_(2)),
    "input_saved_then_setitem": lambda lib, x: _saved(lib, x, lambda y: y * y,
                                                      lambda y: y.__setitem__(0, 2.0)),
    "input_saved_then_copy_": lambda lib, x: _saved(lib, x, lambda y: y.sin(),
                                                    lambda y: y.copy_(lib.ones(3))),
    "input_saved_then_zero_": lambda lib, x: _saved(lib, x, lambda y: y.pow(2),
                                                    lambda y: y.zero_()),
    "input_saved_then_fill_": lambda lib, x: _saved(lib, x, lambda y: y.pow(2),
                                                    lambda y: y.fill_(1.0)),
    "input_saved_then_ellipsis": lambda lib, x: _saved(lib, x, lambda y: y.pow(2),
                                                       lambda y: y.__setitem__(..., 1.0)),
    "input_saved_then_masked_fill_": lambda lib, x: _saved(
        lib, x, lambda y: y.pow(2), lambda y: y.masked_fill_(y > 2, 1.0)),
    "input_saved_then_index_put": lambda lib, x: _saved(
        lib, x, lambda y: y.pow(2), lambda y: y.__setitem__(lib.tensor([0, 1]), 1.0)),
    "input_saved_then_mask_put": lambda lib, x: _saved(
        lib, x, lambda y: y.pow(2), lambda y: y.__setitem__(lib.tensor([True, False, True]), 1.0)),
    "saved_twice_modified": lambda lib, x: _saved(lib, x, lambda y: y * y,
                                                  lambda y: (y.add_(1), y.add_(1))),
    "modified_then_saved": lambda lib, x: _saved_after(lib, x),
    "view_saved_base_modified": lambda lib, x: _view_saved(lib, x, lambda y: y[0],
                                                           lambda y, v: y.mul_(2)),
    "view_saved_view_modified": lambda lib, x: _view_saved(lib, x, lambda y: y[0],
                                                           lambda y, v: v.mul_(2)),
    "transpose_saved": lambda lib, x: _view_saved(lib, x, lambda y: y.t(),
                                                  lambda y, v: y.add_(1)),
    "expand_saved": lambda lib, x: _view_saved(lib, x, lambda y: y.expand(2, 3, 3),
                                               lambda y, v: y.add_(1)),
    "base_saved_view_modified": lambda lib, x: _base_saved(lib, x),
    "leaf_alias_modified": lambda lib, x: _leaf_alias(lib, x),
    "view_of_leaf_no_grad": lambda lib, x: _view_of_leaf_no_grad(lib, x),
    "split_piece_saved": lambda lib, x: _view_saved(lib, x, lambda y: y.split(2)[1],
                                                    lambda y, v: y.add_(1)),
    "unbind_piece_saved": lambda lib, x: _view_saved(lib, x, lambda y: y.unbind(1)[2],
                                                     lambda y, v: y.add_(1)),
    "matmul_operand": lambda lib, x: _saved(lib, x, lambda y: y.reshape(3, 1) @ y.reshape(1, 3),
                                            lambda y: y.mul_(2)),
    "sum_not_saved": lambda lib, x: _saved(lib, x, lambda y: y.sum(), lambda y: y.mul_(2)),
    "add_not_saved": lambda lib, x: _saved(lib, x, lambda y: y + 1, lambda y: y.mul_(2)),
    "chunk_after_inplace": lambda lib, x: _chunk_version(lib, x),
}


def _saved(lib, x, use, modify):
    y = x.exp()
    z = y if use is None else use(y)
    modify(y)
    z.sum().backward()
    return x.grad


def _saved_after(lib, x):
    y = x * 1
    y.add_(1)
    z = y * y
    y.add_(1)
    z.sum().backward()
    return x.grad


def _view_saved(lib, x, view, modify):
    y = (x * 1).reshape(3, 1).expand(3, 3).contiguous() if x.ndim == 1 else x * 1
    v = view(y)
    z = v * v
    modify(y, v)
    z.sum().backward()
    return x.grad


def _base_saved(lib, x):
    y = x.reshape(3, 1) * lib.ones(3, 3)
    z = y.sin()
    y[0].mul_(2)
    z.sum().backward()
    return x.grad


def _leaf_alias(lib, x):
    s = x.sin()
    alias = x.detach()
    alias.mul_(2)
    s.sum().backward()
    return x.grad


def _view_of_leaf_no_grad(lib, x):
    v = x[1:]
    z = v * v
    with lib.no_grad():
        x.mul_(2)
    z.sum().backward()
    return x.grad


@pytest.mark.parametrize("program", sorted(VERSION_PROGRAMS))
def test_version_counter_programs(program):
    def fn(lib):
        x = leaf(lib, [0.5, 1.0, 1.5])
        return VERSION_PROGRAMS[program](lib, x)
    same(fn)


def _chunk_version(lib, x):
    y = x * 1
    y.add_(1)
    pieces = y.chunk(2)
    parts = y.split([1, 2])
    d = y.unsqueeze(1).diagonal()
    return [p._version for p in pieces + parts] + [d._version]


def test_versions_of_views_follow_the_base():
    def fn(lib):
        x = lib.zeros(3, 3)
        views = [x[0], x[:, 1], x.t(), x.diagonal(), x.view(9), x.unbind()[2], x.split(1)[0],
                 x[1, 1], x.expand(2, 3, 3), x.unsqueeze(0), x.narrow(1, 0, 2), x[...]]
        x.add_(1)
        views[0].mul_(2)
        x[2] = 5.0
        return [v._version for v in views] + [x._version, x.clone()._version]
    same(fn)


# ---- node names of in-place ops -----------------------------------------------------------
NAMED = {
    "zero_": lambda y, x: y.zero_(),
    "fill_number": lambda y, x: y.fill_(2.0),
    "fill_tensor": lambda y, x: y.fill_(x[0]),
    "copy_": lambda y, x: y.copy_(x * 3),
    "copy_broadcast": lambda y, x: y.copy_(x[:1]),
    "masked_fill_number": lambda y, x: y.masked_fill_(x > 1, 2.0),
    "masked_fill_tensor": lambda y, x: y.masked_fill_(x > 1, x[2]),
    "setitem_index": lambda y, x: y.__setitem__(torch_or_gt(x).tensor([0, 2]), x[:2] * 5),
    "setitem_mask": lambda y, x: y.__setitem__(x > 1, 4.0),
    "setitem_slice": lambda y, x: y.__setitem__(slice(1, None), x[:2]),
    "setitem_int": lambda y, x: y.__setitem__(1, 9.0),
    "setitem_ellipsis_number": lambda y, x: y.__setitem__(..., 1.0),
    "setitem_ellipsis_tensor": lambda y, x: y.__setitem__(..., x * 2),
    "setitem_colon_0d": lambda y, x: y.__setitem__(slice(None), x[1]),
    "setitem_broadcast": lambda y, x: y.__setitem__(slice(None), x[:1]),
    "mul_": lambda y, x: y.mul_(x),
    "view_mul_": lambda y, x: y[1:].mul_(x[:2]),
}


def torch_or_gt(t):
    return torch if isinstance(t, torch.Tensor) else gt


@pytest.mark.parametrize("op", sorted(NAMED))
def test_inplace_node_names_values_and_grads(op):
    def fn(lib):
        x = leaf(lib, [0.5, 1.0, 1.5])
        y = x.exp()
        NAMED[op](y, x)
        (y * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
        edges = [_node_name(n) for n, _ in y.grad_fn.next_functions]
        return {"y": y, "grad": x.grad, "edges_to_exp": edges.count("ExpBackward0")}
    same(fn)


@pytest.mark.parametrize("op", ["copy_", "setitem_int", "setitem_slice", "fill_tensor"])
def test_inplace_into_a_tensor_without_grad(op):
    def fn(lib):
        x = leaf(lib, [0.5, 1.0, 1.5])
        y = lib.zeros(3)
        NAMED[op](y, x)
        (y * y).sum().backward()
        return {"y": y, "grad": x.grad}
    same(fn)


# ---- forward-mode AD through in-place ops --------------------------------------------------
FORWARD = {
    "zero_": lambda d, lib: d.zero_(),
    "fill_": lambda d, lib: d.fill_(2.0),
    "copy_plain": lambda d, lib: d.copy_(lib.ones(3)),
    "mul_": lambda d, lib: d.mul_(3.0),
    "setitem": lambda d, lib: d.__setitem__(0, 5.0),
    "view_mul_": lambda d, lib: d[1:].mul_(2.0),
    "clamp_": lambda d, lib: d.clamp_(0.0, 1.0),
}


@pytest.mark.parametrize("op", sorted(FORWARD))
def test_forward_ad_through_inplace(op):
    def fn(lib):
        fwad = lib.autograd.forward_ad
        with fwad.dual_level():
            primal = lib.tensor([0.5, 1.0, 2.0])
            d = fwad.make_dual(primal.clone(), lib.tensor([1.0, 2.0, 3.0]))
            FORWARD[op](d, lib)
            unpacked = fwad.unpack_dual(d)
            # (torch updates the tangent tensor in place: its own _version is not compared)
            return {"primal": unpacked.primal, "tangent": unpacked.tangent.detach().numpy()}
    same(fn)


def test_forward_ad_copy_of_a_dual_into_a_plain_tensor():
    def fn(lib):
        fwad = lib.autograd.forward_ad
        with fwad.dual_level():
            d = fwad.make_dual(lib.tensor([0.5, 1.0]), lib.tensor([1.0, 2.0]))
            target = lib.zeros(2)
            target.copy_(d * 2)
            return fwad.unpack_dual(target).tangent.numpy()
    same(fn)


# ---- expanded tensors ---------------------------------------------------------------------
EXPANDED = {
    "mul_": lambda z, lib: z.mul_(2.0), "add_": lambda z, lib: z.add_(1.0),
    "add_tensor": lambda z, lib: z.add_(lib.ones(2, 3)), "div_": lambda z, lib: z.div_(2.0),
    "pow_": lambda z, lib: z.pow_(2.0), "clamp_": lambda z, lib: z.clamp_(0.0, 0.5),
    "copy_": lambda z, lib: z.copy_(lib.zeros(2, 3)), "zero_": lambda z, lib: z.zero_(),
    "fill_": lambda z, lib: z.fill_(3.0), "uniform_": lambda z, lib: z.uniform_(),
    "setitem_row": lambda z, lib: z.__setitem__(0, 5.0),
    "setitem_column": lambda z, lib: z.__setitem__((slice(None), 0), 5.0),
    "setitem_all": lambda z, lib: z.__setitem__(..., 5.0),
    "masked_fill_": lambda z, lib: z.masked_fill_(lib.ones(2, 3, dtype=lib.bool), 3.0),
    "index_put": lambda z, lib: z.__setitem__(lib.tensor([0]), 3.0),
}


@pytest.mark.parametrize("op", sorted(EXPANDED))
def test_inplace_on_an_expanded_tensor(op):
    def fn(lib):
        base = lib.ones(3)
        z = base.expand(2, 3)
        EXPANDED[op](z, lib)
        return {"z": z, "base": base} if op != "uniform_" else z.shape
    same(fn)


def test_inplace_on_an_expanded_non_leaf_in_a_graph():
    def fn(lib):
        x = leaf(lib, [1.0, 2.0, 3.0])
        z = (x * 1).expand(2, 3)
        z.mul_(2.0)
    same(fn)


# ---- setitem and in-place ops on 0-d and empty tensors: torch's errors, never numpy's ----------
SETITEM = {
    "0d_int": lambda lib: _set(lib.tensor(1.0), 0, 1.0),
    "0d_ellipsis": lambda lib: _set(lib.tensor(1.0), ..., 2.0),
    "0d_none": lambda lib: _set(lib.tensor(1.0), None, 2.0),
    "0d_true": lambda lib: _set(lib.tensor(1.0), True, 2.0),
    "0d_slice": lambda lib: _set(lib.tensor(1.0), slice(None), 2.0),
    "empty_int": lambda lib: _set(lib.zeros(0), 0, 2.0),
    "empty_slice_one": lambda lib: _set(lib.zeros(0), slice(None), lib.ones(1)),
    "empty_slice_two": lambda lib: _set(lib.zeros(0), slice(None), lib.ones(2)),
    "empty_mask": lambda lib: _set(lib.zeros(0), lib.zeros(0, dtype=lib.bool), 1.0),
    "slice_mismatch": lambda lib: _set(lib.zeros(3), slice(0, 2), lib.ones(3)),
    "index_mismatch": lambda lib: _set(lib.zeros(3), lib.tensor([0, 1]), lib.ones(3)),
    "mask_mismatch": lambda lib: _set(lib.zeros(3), lib.tensor([True, False, True]),
                                      lib.ones(3)),
    "out_of_bounds": lambda lib: _set(lib.zeros(3), 5, 2.0),
    "out_of_bounds_index": lambda lib: _set(lib.zeros(3), lib.tensor([5]), 2.0),
    "float_index": lambda lib: _set(lib.zeros(3), lib.tensor([1.0]), 2.0),
    "too_many": lambda lib: _set(lib.zeros(3), (0, 0), 2.0),
    "list_value": lambda lib: _set(lib.zeros(3), slice(None), [1.0, 2.0, 3.0]),
    "int_into_float": lambda lib: _set(lib.zeros(3), slice(None), lib.tensor([1, 2, 3])),
    "float_into_int": lambda lib: _set(lib.zeros(3, dtype=lib.int64), slice(None),
                                       lib.tensor([1.5, 2.0, 3.0])),
    "leading_ones": lambda lib: _set(lib.zeros(2, 3), 0, lib.ones(1, 1, 3)),
    "row_broadcast": lambda lib: _set(lib.zeros(2, 3), slice(None), lib.arange(3.0)),
    "none_key": lambda lib: _set(lib.zeros(2), None, lib.ones(1, 2)),
}


def _set(target, key, value):
    target[key] = value
    return target


@pytest.mark.parametrize("case", sorted(SETITEM))
def test_setitem_corner_cases(case):
    same(SETITEM[case])


ZERO_DIM_AND_EMPTY = {
    "0d_mul_": lambda lib: lib.tensor(2.0).mul_(3.0),
    "0d_add_tensor": lambda lib: lib.tensor(2.0).add_(lib.tensor([1.0])),
    "0d_copy_": lambda lib: lib.tensor(2.0).copy_(lib.tensor(5.0)),
    "0d_copy_from_vector": lambda lib: lib.tensor(2.0).copy_(lib.tensor([5.0, 6.0])),
    "0d_fill_": lambda lib: lib.tensor(2.0).fill_(lib.tensor(4.0)),
    "fill_vector_value": lambda lib: lib.zeros(3).fill_(lib.ones(2)),
    "0d_zero_": lambda lib: lib.tensor(2.0).zero_(),
    "0d_clamp_": lambda lib: lib.tensor(2.0).clamp_(0.0, 1.0),
    "0d_masked_fill_": lambda lib: lib.tensor(2.0).masked_fill_(lib.tensor(True), 0.0),
    "empty_mul_": lambda lib: lib.zeros(0, 3).mul_(2.0),
    "empty_add_row": lambda lib: lib.zeros(0, 3).add_(lib.ones(3)),
    "empty_copy_": lambda lib: lib.zeros(0).copy_(lib.ones(0)),
    "empty_fill_": lambda lib: lib.zeros(2, 0).fill_(1.0),
    "empty_masked_fill_": lambda lib: lib.zeros(0).masked_fill_(lib.zeros(0, dtype=lib.bool),
                                                                1.0),
    "copy_mismatch": lambda lib: lib.zeros(3).copy_(lib.ones(2)),
    "copy_bigger": lambda lib: lib.zeros(3).copy_(lib.ones(2, 3)),
    "masked_fill_bigger": lambda lib: lib.zeros(3).masked_fill_(lib.ones(2, 3, dtype=lib.bool),
                                                                1.0),
    "add_bigger": lambda lib: lib.zeros(3).add_(lib.ones(2, 3)),
    "int_mul_float": lambda lib: lib.zeros(3, dtype=lib.int64).mul_(1.5),
    "int_add_float_tensor": lambda lib: lib.zeros(3, dtype=lib.int64).add_(lib.ones(3)),
}


@pytest.mark.parametrize("case", sorted(ZERO_DIM_AND_EMPTY))
def test_inplace_on_zero_dim_and_empty_tensors(case):
    same(ZERO_DIM_AND_EMPTY[case])


@pytest.mark.parametrize("case", ["0d_mul_", "0d_fill_", "0d_copy_", "0d_zero_", "empty_mul_",
                                  "empty_fill_"])
def test_inplace_on_zero_dim_and_empty_tensors_in_a_graph(case):
    def fn(lib):
        x = leaf(lib, 2.0) if case.startswith("0d") else lib.zeros(2, 0, requires_grad=True)
        y = x * 1
        {"0d_mul_": lambda: y.mul_(x), "0d_fill_": lambda: y.fill_(x * 3),
         "0d_copy_": lambda: y.copy_(x * x), "0d_zero_": lambda: y.zero_(),
         "empty_mul_": lambda: y.mul_(2.0), "empty_fill_": lambda: y.fill_(1.0)}[case]()
        (y * 2).sum().backward()
        # (the _version of torch's .grad depends on how its engine summed the gradient)
        return {"y": y, "grad": x.grad.numpy()}
    same(fn)


# ---- which values a node saves decides whether an in-place change is an error --------------
SAVED = {
    "where": lambda y, lib: lib.where(y > 1, y, 0.0),
    "masked_fill": lambda y, lib: y.masked_fill(y > 1, 0.0),
    "tril": lambda y, lib: y.tril(),
    "mm_constant_right": lambda y, lib: y @ lib.ones(2, 2),
    "mm_constant_left": lambda y, lib: lib.ones(2, 2) @ y,
    "mv_constant": lambda y, lib: y @ lib.ones(2),
    "linear_constant_weight": lambda y, lib: lib.nn.functional.linear(y, lib.ones(3, 2)),
    "dot_constant": lambda y, lib: y.reshape(4).dot(lib.ones(4)),
    "mm_both": lambda y, lib: y @ y,
    "number_pow_tensor": lambda y, lib: 2 ** y,
    "mul_constant": lambda y, lib: y * lib.ones(2, 2),
    "mul_self": lambda y, lib: y * y,
}


@pytest.mark.parametrize("op", sorted(SAVED))
def test_inplace_after_use_errors_exactly_when_torch_saved_it(op):
    def fn(lib):
        x = leaf(lib, [[0.5, 1.2], [1.7, 0.9]])
        y = x * 1
        z = SAVED[op](y, lib)
        y.mul_(1.0)
        z.sum().backward()
        return x.grad.numpy()
    same(fn)


@pytest.mark.parametrize("op", ["max", "amax", "min", "exp", "sigmoid", "sum"])
def test_inplace_on_a_saved_output(op):
    def fn(lib):
        x = leaf(lib, [[0.5, 1.2], [1.7, 0.9]])
        z = {"max": lambda: x.max(), "amax": lambda: x.amax(0), "min": lambda: x.min(),
             "exp": lambda: x.exp(), "sigmoid": lambda: x.sigmoid(), "sum": lambda: x.sum()}[op]()
        z.add_(0.0)
        z.sum().backward()
        return x.grad.numpy()
    same(fn)


@pytest.mark.parametrize("op", ["mul", "div", "pow", "mm", "maximum", "minimum", "atan2",
                                "mse_loss"])
def test_which_stale_input_the_version_error_names(op):
    """Both inputs changed: torch reports the one whose name sorts first ("other" before
    "self")."""
    def fn(lib):
        x = leaf(lib, [[0.5, 1.2], [1.7, 0.9]])
        y = x * 1
        a, b = y, y.t()
        z = {"mul": lambda: a * b, "div": lambda: a / b, "pow": lambda: a ** b,
             "mm": lambda: a @ b, "maximum": lambda: lib.maximum(a, b),
             "minimum": lambda: lib.minimum(a, b), "atan2": lambda: lib.atan2(a, b),
             "mse_loss": lambda: lib.nn.functional.mse_loss(a, b)}[op]()
        y.mul_(1.0)
        z.sum().backward()
    same(fn)


def test_fill_through_an_expanded_view_in_a_graph_fails_in_backward():
    def fn(lib):
        x = leaf(lib, [-0.42])
        y = x * 1.0
        z = y.expand(2, 1)
        z.fill_(2.0)
        out = {"y": y, "z": z}
        try:
            y.sum().backward()
        except RuntimeError as err:
            out["error"] = str(err)
        return out
    same(fn)


@pytest.mark.parametrize("case", ["zero_dim_base", "non_contiguous_base", "empty_diagonal",
                                  "view_of_a_zero_dim_base_sub_"])
def test_inplace_on_views_of_unusual_bases(case):
    def fn(lib):
        x = leaf(lib, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
        w = leaf(lib, [[0.5]])
        if case == "zero_dim_base":
            y = x.sum() * 1
            y.view(1, 1).mul_(w)
        elif case == "non_contiguous_base":
            y = (x * 1).t()
            y[1:].mul_(w)
        elif case == "empty_diagonal":
            y = x[:0] * 1
            y.diagonal().zero_()
        else:
            y = x.sum() * 1
            y.view(1, -1).sub_(w)
        (y * y).sum().backward()
        return {"y": y, "x.grad": x.grad.numpy(), "w.grad": w.grad}
    same(fn)


def test_forward_ad_setitem_through_a_view_of_a_dual_updates_every_view():
    def fn(lib):
        fwad = lib.autograd.forward_ad
        with fwad.dual_level():
            d = fwad.make_dual(lib.tensor([[6.5], [0.25]]), lib.tensor([[0.25], [1.5]]))
            diagonal = d.diagonal()
            column = d[:, 0]
            diagonal[0] = lib.tensor(1.0)
            return [fwad.unpack_dual(t).tangent.numpy() for t in (d, diagonal, column)]
    same(fn)


@pytest.mark.parametrize("view", ["select", "slice", "view", "t"])
def test_views_of_split_outputs_refuse_inplace(view):
    def fn(lib):
        x = leaf(lib, [[0.5, 1.0], [2.0, 3.0]])
        piece = (x * 1).unbind()[0] if view != "t" else (x * 1).split(1)[1]
        target = {"select": lambda p: p[0], "slice": lambda p: p[1:],
                  "view": lambda p: p.view(-1), "t": lambda p: p.t()}[view](piece)
        target.mul_(2.0)
    same(fn)


UNARY_INPLACE = ["abs_", "ceil_", "cos_", "exp_", "floor_", "log_", "neg_", "reciprocal_",
                 "relu_", "round_", "sigmoid_", "sign_", "sin_", "sqrt_", "square_", "tanh_",
                 "trunc_"]


@pytest.mark.parametrize("op", UNARY_INPLACE)
def test_unary_inplace_methods(op):
    """Values, gradients and node names; a result the node saved is the tensor itself, so
    changing it again is torch's version error; through a view it is CopySlices."""
    def fn(lib):
        x = leaf(lib, [[0.5, 2.0], [3.0, 4.0]])
        y = x * 1
        getattr(y, op)()
        z = (y * 2).sum()
        y.mul_(1.0)
        out = {"y": y}
        try:
            z.backward()
            out["grad"] = x.grad.numpy()
        except RuntimeError as err:
            out["error"] = str(err)
        w = x * 1
        getattr(w[1], op)()
        (w * w).sum().backward()
        out["w"] = w
        out["grad_through_view"] = x.grad.numpy()
        try:
            getattr(x, op)()
        except RuntimeError as err:
            out["leaf"] = str(err)
        return out
    same(fn)


@pytest.mark.parametrize("bound", ["clamp_min_", "clamp_max_"])
def test_clamp_bound_inplace(bound):
    def fn(lib):
        x = leaf(lib, [0.5, 2.0, 3.0])
        y = x * 1
        getattr(y, bound)(1.5)
        (y * y).sum().backward()
        return {"y": y, "grad": x.grad.numpy()}
    same(fn)


def test_a_no_grad_view_as_a_root_of_backward():
    """It requires grad but has no edge: backward from it is torch's error, its Jacobian is
    zero."""
    def fn(lib):
        x = leaf(lib, [[1.0, 2.0], [3.0, 4.0]])

        def f(a):
            with lib.no_grad():
                view = a[0]
            return view
        out = {"jacobian": lib.autograd.functional.jacobian(f, x)}
        with lib.no_grad():
            v = x[0]
        for name, call in [("backward", lambda: v.backward(lib.ones(2))),
                           ("grad", lambda: lib.autograd.grad(v, [x], lib.ones(2),
                                                              allow_unused=True))]:
            try:
                call()
            except RuntimeError as err:
                out[name] = str(err)
        return out
    same(fn)


# ---- random chains of views with an in-place op at the end --------------------------------
def _random_view(rng, t):
    """One random view op that applies to ``t`` (as a description and a function)."""
    shape = tuple(t.shape)
    choices = []
    if len(shape) >= 1 and shape[0] > 0:
        i = int(rng.integers(-shape[0], shape[0]))
        choices.append((f"[{i}]", lambda x, i=i: x[i]))
        start = int(rng.integers(0, shape[0]))
        step = int(rng.integers(1, 3))
        choices.append((f"[{start}::{step}]", lambda x, s=start, k=step: x[s::k]))
    if len(shape) >= 2:
        choices.append(("t()", lambda x: x.transpose(0, 1)))
        offset = int(rng.integers(-1, 2))
        choices.append((f"diagonal({offset})", lambda x, o=offset: x.diagonal(o)))
        choices.append(("[:, 1:]", lambda x: x[:, 1:]))
    choices.append(("unsqueeze(0)", lambda x: x.unsqueeze(0)))
    if len(shape) >= 1:
        choices.append(("view(-1)" if t.is_contiguous() else "unsqueeze(-1)",
                        (lambda x: x.view(-1)) if t.is_contiguous() else
                        (lambda x: x.unsqueeze(-1))))
    return choices[int(rng.integers(len(choices)))]


def _random_inplace(rng):
    ops = [("mul_(w)", lambda v, w: v.mul_(w)), ("add_(2)", lambda v, w: v.add_(2.0)),
           ("zero_()", lambda v, w: v.zero_()), ("fill_(w)", lambda v, w: v.fill_(w)),
           ("copy_(w)", lambda v, w: v.copy_(w)), ("clamp_", lambda v, w: v.clamp_(-0.5, 0.5)),
           ("sub_(w, alpha=2)", lambda v, w: v.sub_(w, alpha=2)),
           ("setitem", lambda v, w: v.__setitem__(..., w)), ("exp_()", lambda v, w: v.exp_()),
           ("masked_fill_", lambda v, w: v.masked_fill_(v > 0, w))]
    return ops[int(rng.integers(len(ops)))]


@pytest.mark.parametrize("seed", range(40))
def test_random_view_chains_with_an_inplace_op(seed):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(3, 4)).round(3).tolist()
    steps = []
    probe = torch.zeros(3, 4)
    for _ in range(int(rng.integers(1, 4))):
        name, view = _random_view(rng, probe)
        probe = view(probe)
        steps.append((name, view))
    op_name, op = _random_inplace(rng)
    base_kind = ["non_leaf", "plain"][int(rng.integers(2))]

    def fn(lib):
        x = leaf(lib, values)
        w = leaf(lib, 0.75)
        base = x * 1 if base_kind == "non_leaf" else lib.tensor(values, dtype=lib.float64)
        views = [base]
        for _, view in steps:
            views.append(view(views[-1]))
        op(views[-1], w)
        loss = (base * base).sum() + sum((v * v).sum() for v in views[1:])
        loss.backward()
        return {"views": views, "x.grad": x.grad, "w.grad": w.grad}
    note = f"{base_kind}: {'.'.join(n for n, _ in steps)}.{op_name}"
    try:
        same(fn)
    except AssertionError as err:
        raise AssertionError(note) from err


@pytest.mark.parametrize("seed", range(20))
def test_random_view_chains_forward_ad_and_double_backward(seed):
    rng = np.random.default_rng(1000 + seed)
    values = rng.normal(size=(3, 4)).round(3).tolist()
    steps = []
    probe = torch.zeros(3, 4)
    for _ in range(int(rng.integers(1, 4))):
        name, view = _random_view(rng, probe)
        probe = view(probe)
        steps.append(view)
    op_name, op = _random_inplace(rng)

    def forward(lib):
        fwad = lib.autograd.forward_ad
        with fwad.dual_level():
            base = fwad.make_dual(lib.tensor(values), lib.tensor(values) * 0.5 + 1.0)
            w = fwad.make_dual(lib.tensor(0.75), lib.tensor(-2.0))
            views = [base]
            for view in steps:
                views.append(view(views[-1]))
            op(views[-1], w)
            return [fwad.unpack_dual(v).tangent.numpy() for v in views]

    def double(lib):
        x = leaf(lib, values)
        w = leaf(lib, 0.75)
        base = x * x
        views = [base]
        for view in steps:
            views.append(view(views[-1]))
        op(views[-1], w * w)
        loss = (base * base).sum()
        gx, gw = lib.autograd.grad(loss, [x, w], create_graph=True, allow_unused=True)
        total = gx.sum() + (gw.sum() if gw is not None else 0)
        return [g.numpy() if g is not None else None
                for g in lib.autograd.grad(total, [x, w], allow_unused=True)]
    same(forward)
    if op_name != "exp_()":
        # (torch refuses a second differentiation through the result exp_ saved on a view:
        # "Trying to backward through the graph a second time"; not emulated)
        same(double)


@pytest.mark.parametrize("key", ["[::-1]", "[::0]", "[1:, 0]", "[5]", "[-4]", "[0, 0, 0]",
                                 "[1:2:3]", "[..., 1]", "[None]"])
@pytest.mark.parametrize("value", ["number", "bool", "int_tensor"])
def test_setitem_of_a_number_without_grad(key, value):
    index = {"[::-1]": slice(None, None, -1), "[::0]": slice(None, None, 0),
             "[1:, 0]": (slice(1, None), 0), "[5]": 5, "[-4]": -4, "[0, 0, 0]": (0, 0, 0),
             "[1:2:3]": slice(1, 2, 3), "[..., 1]": (Ellipsis, 1), "[None]": None}[key]

    def fn(lib):
        x = lib.zeros(3, 2)
        v = x[1:]
        x[index] = {"number": 2.5, "bool": True, "int_tensor": lib.tensor(3)}[value]
        return {"x": x, "v": v}
    same(fn)


@pytest.mark.parametrize("through_view", [False, True])
def test_forward_ad_of_a_tensor_multiplied_by_itself_in_place(through_view):
    def fn(lib):
        fwad = lib.autograd.forward_ad
        with fwad.dual_level():
            d = fwad.make_dual(lib.tensor([[-0.795, 0.348, 0.536]]),
                               lib.tensor([[2.0, -0.75, 0.75]]))
            y = d * 1
            target = y.transpose(0, 1) if through_view else y
            target.mul_(target)
            return [fwad.unpack_dual(t).tangent.numpy() for t in (y, target)]
    same(fn)


@pytest.mark.parametrize("op", ["sub_", "setitem", "mul_"])
def test_double_backward_through_an_empty_view(op):
    """Nothing flows back from an empty view: the first-order gradient needs no graph."""
    def fn(lib):
        x = leaf(lib, [[-1.679], [-0.779]])
        w = leaf(lib, 2.0)
        view = (x * 1.0)[:-2]
        {"sub_": lambda: view.sub_(view), "setitem": lambda: view.__setitem__(..., 1.5),
         "mul_": lambda: view.mul_(w)}[op]()
        grads = lib.autograd.grad(view.exp(), [x, w], lib.zeros(0, 1), create_graph=True,
                                  allow_unused=True)
        return [None if g is None else (g.requires_grad, g.detach().numpy()) for g in grads]
    same(fn)


def _edge_names(node):
    """The names along ``node``'s edges, two levels deep (None for a None edge)."""
    return [None if n is None else (_node_name(n), [_node_name(m) for m, _ in n.next_functions])
            for n, _ in node.next_functions]


@pytest.mark.parametrize("op", ["sub_", "add_", "mul_", "div_", "iadd", "isub", "imul"])
@pytest.mark.parametrize("through_view", [False, True])
def test_inplace_op_with_another_float_dtype_records_no_copy(op, through_view):
    """``x.sub_(y)`` with x float32 and y float64: torch computes in x's dtype and casts y's
    gradient in the op's node, so y's edge is its AccumulateGrad (no ToCopyBackward0)."""
    results = {}
    for lib in (torch, gt):
        x = lib.tensor([[-0.638, -1.673, 0.911]], dtype=lib.float32, requires_grad=True)
        y = lib.tensor([1.5], dtype=lib.float64, requires_grad=True)
        z = x.sigmoid() * 1
        target = z[:, :2] if through_view else z
        if op == "iadd":
            target += y
        elif op == "isub":
            target -= y
        elif op == "imul":
            target *= y
        else:
            getattr(target, op)(y)
        z_node = z.grad_fn
        (z * lib.tensor([[1.0, -2.0, 0.5]], dtype=lib.float32)).sum().backward()
        results[lib] = (_node_name(z_node), _edge_names(z_node), z.dtype is lib.float32,
                        x.grad.dtype is lib.float32, y.grad.dtype is lib.float64,
                        x.grad.numpy().astype(np.float64), y.grad.numpy().astype(np.float64))
    got, expected = results[gt], results[torch]
    assert got[:5] == expected[:5]
    np.testing.assert_allclose(got[5], expected[5], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[6], expected[6], rtol=1e-5, atol=1e-6)


def _chain(node):
    names = []
    while node is not None:
        names.append(_node_name(node))
        node = node.next_functions[0][0] if node.next_functions else None
    return names


# a view made before its memory is changed in place, by another route than the view itself:
# torch regenerates the view's grad_fn (AsStridedBackward0 of the base's current node)
REGENERATED = {
    "leaf_through_detach": lambda lib, x, y: (x[:1], lambda: x.detach().mul_(2)),
    "base_through_detach": lambda lib, x, y: (y[:1], lambda: y.detach().mul_(2)),
    "base_row_through_detach": lambda lib, x, y: (y[:1], lambda: y.detach()[0].mul_(2)),
    "view_through_its_detach": lambda lib, x, y: (y[:1], lambda: y[:1].detach().mul_(2)),
    "detach_setitem_squeeze": lambda lib, x, y: (
        x[0].squeeze(0), lambda: x[0].detach().__setitem__(lib.tensor([0, 0, 1]), 2.0)),
    "base_in_place_tracked": lambda lib, x, y: (y[:1].t(), lambda: y.exp_()),
    "base_in_place_no_grad": lambda lib, x, y: (y[1], lambda: _no_grad(lib, y.mul_, 3.0)),
    "other_view_no_grad": lambda lib, x, y: (y[1], lambda: _no_grad(lib, y[:1].add_, 1.0)),
    "base_fill_no_grad": lambda lib, x, y: (y[:, 1], lambda: _no_grad(lib, y.fill_, 0.5)),
    "base_setitem_no_grad": lambda lib, x, y: (
        y[:, 1], lambda: _no_grad(lib, y.__setitem__, (0, 1), 0.5)),
    "data_is_no_alias": lambda lib, x, y: (y[:1], lambda: y.data.mul_(2)),
}


def _no_grad(lib, fn, *args):
    with lib.no_grad():
        fn(*args)


@pytest.mark.parametrize("case", list(REGENERATED))
def test_a_view_is_regenerated_after_its_memory_changed(case):
    def fn(lib):
        x = leaf(lib, [[0.5, -1.25, 2.0], [1.5, 0.25, -0.75]])
        y = x * 1
        view, change = REGENERATED[case](lib, x, y)
        change()
        names = _chain(view.grad_fn)
        (view * view).sum().backward()
        # (x.grad's values: torch's AsStridedBackward0 makes its gradient in place, so a
        # leaf's stolen gradient has _version 1 there)
        return {"view": view, "names": names, "grad": x.grad.numpy()}
    same(fn)


# the version error names the saved tensor's current node even when the tensor is gone (a
# local of the function given to jacobian): torch's saved variable keeps it alive
VERSION_ERROR_IN_A_FUNCTION = {
    "setitem_through_transpose": lambda lib, x: _set_and_return(
        lib, x, lambda v4: v4.transpose(0, -1), (slice(-2, None), slice(None))),
    "fill_of_an_element": lambda lib, x: _set_and_return(lib, x, lambda v4: v4[-2, -1], None),
    "masked_fill_then_add_": lambda lib, x: _masked_then_add(lib, x),
}


def _set_and_return(lib, x, view_of, key):
    v4 = x + 0.5
    v6 = v4.log2()
    view = view_of(v4)
    if key is None:
        view.fill_(2.0)
    else:
        view[key] = -0.5
    return v6.exp()


def _masked_then_add(lib, x):
    v2 = x.masked_fill(lib.tensor(False), 0.0)
    v3 = v2.norm(p=2)
    v2.add_(-0.5)
    return v3.sigmoid()


@pytest.mark.parametrize("case", list(VERSION_ERROR_IN_A_FUNCTION))
@pytest.mark.parametrize("how", ["jacobian", "backward"])
def test_version_error_names_the_current_node_of_a_dead_tensor(case, how):
    def fn(lib):
        x = leaf(lib, [[0.463, 1.5], [0.701, -0.25], [2.126, 0.75]])
        f = lambda t: VERSION_ERROR_IN_A_FUNCTION[case](lib, t)  # noqa: E731
        if how == "jacobian":
            return lib.autograd.functional.jacobian(f, (x,))
        f(x).sum().backward()
        return x.grad
    result = same(fn)
    assert result[0] == "error"


@pytest.mark.parametrize("how", ["hessian", "jacobian_create_graph"])
def test_functional_inputs_are_views_regenerated_by_a_write_through_detach(how):
    # (jacobian's blocks with create_graph: compared by value, torch's are ViewBackward0)
    """torch's functional API hands the function views of its inputs when it builds a graph
    (hessian's inner jacobian): a write through ``x.detach()`` regenerates the view, so the
    gradient w.r.t. that input is zero there."""
    def fn(lib):
        def f(a, b, w):
            stacked = lib.stack([a, b], dim=0)
            b.detach().clamp_(-0.5, 1.0)
            return lib.nn.functional.linear(stacked, w, None)
        args = (leaf(lib, 0.921), leaf(lib, 0.438), leaf(lib, [[0.63, 1.38], [0.431, -1.334]]))
        if how == "hessian":
            return lib.autograd.functional.hessian(
                lambda *a: (f(*a) * lib.tensor([-0.75, 0.75])).sum(), args)
        return [block.detach() for block in
                lib.autograd.functional.jacobian(f, args, create_graph=True)[0]]
    same(fn)


@pytest.mark.parametrize("index", ["ellipsis_list", "column_list"])
def test_forward_ad_of_an_inplace_op_on_a_view_of_a_fortran_ordered_copy(index):
    """Advanced indexing can give a Fortran-ordered array: the tangent written through a view
    of it must land (it was a lost copy)."""
    def fn(lib):
        fwad = lib.autograd.forward_ad
        with fwad.dual_level():
            x = fwad.make_dual(lib.tensor([[0.644, -0.127], [0.793, 1.235]]),
                               lib.tensor([[-2.0, 0.0], [1.25, 1.5]]))
            copy = x[..., lib.tensor([1, -2])] if index == "ellipsis_list" else x[:, [1, 0]]
            view = copy.narrow(0, 0, 1)
            view.mul_(-0.5)
            return [fwad.unpack_dual(t).tangent.numpy() for t in (view, copy)]
    same(fn)


@pytest.mark.parametrize("case", ["transpose_1d", "slice_of_slice"])
def test_forward_ad_of_mul_by_an_aliasing_view(case):
    """``x.mul_(y)`` with y another view of x's memory: torch writes x's tangent first and
    then reads y's (aliased) tangent."""
    def fn(lib):
        fwad = lib.autograd.forward_ad
        with fwad.dual_level():
            d = fwad.make_dual(lib.tensor([[-1.0, 0.5, 2.0], [1.5, -0.25, 3.0],
                                           [0.75, 1.25, -2.0]]),
                               lib.tensor([[0.75, -1.25, 1.0], [2.0, 0.5, -0.5],
                                           [1.5, -1.0, 0.25]]))
            y = d * 1
            if case == "transpose_1d":
                other = y[0, 1:]
                target = other.transpose(0, -1)
            else:
                other = y[1]
                target = other[:]
            target.mul_(other)
            return [fwad.unpack_dual(t).tangent.numpy() for t in (target, y)]
    same(fn)


@pytest.mark.parametrize("shapes", [((1, 3), (1, 3)), ((2, 2), (1, 1)), ((2, 3), (1, 3)),
                                    ((2, 3), (3,)), ((0, 2), (1, 2)), ((2, 3), (1, 2, 3)),
                                    ((0, 2), (1, 3)), ((2, 2), (1, 1, 3))])
def test_setitem_views_the_value_without_its_leading_ones(shapes):
    """torch's setitem views the value without all its leading 1s (ViewBackward0), then
    expands it unless it has the target's shape; its size error names the viewed sizes."""
    target_shape, value_shape = shapes

    def fn(lib):
        x = leaf(lib, np.zeros(target_shape).tolist()) * 1
        v = leaf(lib, np.arange(1.0, 1.0 + np.prod(value_shape)).reshape(value_shape).tolist())
        x[...] = v * 2
        return {"x": x, "chain": _chain(x.grad_fn)}
    same(fn)


@pytest.mark.parametrize("view", ["expand", "slice", "transpose"])
def test_forward_ad_views_see_an_inplace_change_of_their_base(view):
    def fn(lib):
        fwad = lib.autograd.forward_ad
        with fwad.dual_level():
            d = fwad.make_dual(lib.tensor([[-0.716, 0.848], [0.892, 1.5]]),
                               lib.tensor([[-1.0, -0.75], [-2.0, 0.5]]))
            base = d.cumsum(0)
            seen = {"expand": lambda: base.expand(2, 2), "slice": lambda: base[1:],
                    "transpose": lambda: base.t()}[view]()
            base.clamp_(-1.0, 1.0)
            return [fwad.unpack_dual(t).tangent.numpy() for t in (seen.sigmoid(), base)]
    same(fn)


@pytest.mark.parametrize("key", ["int_tensor", "mask"])
def test_forward_ad_setitem_replaces_a_nan_tangent(key):
    """Writing a constant over an element with a NaN tangent leaves a zero tangent there."""
    def fn(lib):
        fwad = lib.autograd.forward_ad
        with fwad.dual_level():
            d = fwad.make_dual(lib.tensor([-0.5, 1.0]), lib.tensor([-1.75, 0.5]))
            y = d * float("nan") if key == "mask" else d[:1].std() * lib.ones(2)
            view = y.view(1, -1)
            index = lib.tensor([[True, False]]) if key == "mask" else lib.tensor([-1])
            view[index] = 3.0
            return [fwad.unpack_dual(t).tangent.numpy() for t in (view, y)]
    same(fn)


def test_linear_bias_changed_in_place_after_is_no_version_error():
    """addmm saves mat1 and mat2, not the bias (torch): changing the bias through a detached
    alias before the backward is allowed."""
    def fn(lib):
        x = leaf(lib, [[-0.5, 1.0, 0.25], [1.5, -0.75, 2.0]])
        w = leaf(lib, [[-1.0, -0.5, 0.5], [1.0, -0.5, 1.0]])
        b = leaf(lib, [0.298, -0.727])
        out = lib.nn.functional.linear(x, w, b)
        b.detach().fill_(3.0)
        out.tanh().sum().backward()
        return [x.grad, w.grad, b.grad]
    same(fn)


@pytest.mark.parametrize("value", ["number", "tensor"])
def test_forward_ad_masked_fill_replaces_a_nan_tangent(value):
    def fn(lib):
        fwad = lib.autograd.forward_ad
        with fwad.dual_level():
            d = fwad.make_dual(lib.tensor([1.57]), lib.tensor([2.0]))
            y = d.var(dim=0, keepdim=True) * lib.ones(2)       # NaN values and tangents
            fill = -0.5 if value == "number" else fwad.make_dual(lib.tensor(-0.5),
                                                                 lib.tensor(float("nan")))
            y.masked_fill_(lib.tensor([True, False]), fill)
            return fwad.unpack_dual(y).tangent.numpy()
    same(fn)
