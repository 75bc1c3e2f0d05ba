"""``torch.autograd.functional``: vjp, jvp, jacobian, hessian, vhp, hvp.

Signatures and return values follow torch: ``vjp(func, inputs, v) -> (outputs, vjp)``,
``jvp(func, inputs, v) -> (outputs, jvp)``, ``jacobian(func, inputs) -> Jacobian`` (a tensor,
or nested tuples for several inputs/outputs), ``hessian``, ``hvp(func, inputs, v) ->
(output, hvp)``.  ``jvp`` uses true forward mode (one forward pass per tangent); the
Jacobian is built row-block by row-block with batched reverse mode (one backward pass)."""

from __future__ import annotations

import numpy as np

from ..errors import EngineError
from . import forward_ad as fwAD
from . import ops
from .graph import _root_edge
from .graph import grad as autograd_grad
from .grad_mode import enable_grad
from .tensor import Tensor, _make


def _as_tuple(x, arg: str, fn: str):
    is_tuple = isinstance(x, tuple)
    items = x if is_tuple else (x,)
    for i, item in enumerate(items):
        if not isinstance(item, Tensor):
            if is_tuple:
                raise TypeError(f"The {arg} given to {fn} must be either a Tensor or a tuple "
                                f"of Tensors but the value at index {i} has type "
                                f"{type(item).__name__}.")
            raise TypeError(f"The {arg} given to {fn} must be either a Tensor or a tuple of "
                            f"Tensors but the given {arg} has type {type(item).__name__}.")
    return is_tuple, items


def _prepare_inputs(inputs, create_graph):
    prepared = []
    for t in inputs:
        if create_graph and t._rg:
            prepared.append(ops.reshape(t, tuple(t.shape)))
        else:
            prepared.append(t.detach().requires_grad_(True))
    return tuple(prepared)


def _undef_to_zeros(grads, refs):
    return tuple(g if g is not None else ops.zeros_like(r) for g, r in zip(grads, refs))


def _grad_postprocess(items, create_graph):
    if create_graph:
        return items
    return tuple(None if t is None else t.detach() for t in items)


def _tuple_postprocess(items, is_tuple):
    return items if is_tuple else items[0]


def _check_v(v, refs: tuple, fn: str, side: str) -> tuple:
    """``v`` as one tensor per output (``side="output"``) or input, each of its shape; None
    means ones when there is a single one-element ``ref`` (torch's rule)."""
    if v is None:
        if len(refs) != 1 or refs[0].numel() != 1:
            where = ("user-provided function returns" if side == "output"
                     else "input to the user-provided function is")
            raise EngineError(f"The vector v can only be None if the {where} a single Tensor "
                              "with a single element.")
        return (ops.ones_like(refs[0]),)
    _, v = _as_tuple(v, "v", fn)
    if len(v) != len(refs):
        raise EngineError(f"The given v should contain a single Tensor for each {side}: got "
                          f"{len(v)} for {len(refs)}")
    for vi, ref in zip(v, refs):
        if tuple(vi.shape) != tuple(ref.shape):
            raise EngineError(f"Mismatch in shape: v has shape {list(vi.shape)} but the "
                              f"{side} has shape {list(ref.shape)}")
    return v


def _in_graph(out) -> bool:
    """Whether a gradient can flow from ``out`` (a view made under no_grad requires grad but
    has no edge: its Jacobian is zero, as torch's)."""
    return out.requires_grad and _root_edge(out) is not None


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), vᵀ J)."""
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _prepare_inputs(inputs, create_graph)
        outputs = func(*inputs)
        is_outputs_tuple, outputs = _as_tuple(outputs, "outputs of the user-provided "
                                              "function", "vjp")
        v = _check_v(v, outputs, "vjp", "output")
        diff_outputs = [(o, g) for o, g in zip(outputs, v) if _in_graph(o)]
        if diff_outputs:
            grads = autograd_grad([o for o, _ in diff_outputs], inputs,
                                  [g for _, g in diff_outputs], create_graph=create_graph,
                                  allow_unused=True)
        else:
            grads = (None,) * len(inputs)
        if strict and any(g is None for g in grads):
            raise EngineError("The output of the user-provided function is independent of "
                              "input 0. This is not allowed in strict mode.")
        grads = _undef_to_zeros(grads, inputs)
    outputs = _grad_postprocess(outputs, create_graph)
    grads = _grad_postprocess(grads, create_graph)
    return (_tuple_postprocess(outputs, is_outputs_tuple),
            _tuple_postprocess(grads, is_inputs_tuple))


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v) by forward-mode AD: one forward pass carrying the tangents."""
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
    v = _check_v(v, inputs, "jvp", "input")
    with fwAD.dual_level():
        duals = tuple(fwAD.make_dual(x.detach(), vi) for x, vi in zip(inputs, v))
        outputs = func(*duals)
        is_outputs_tuple, outputs = _as_tuple(outputs, "outputs of the user-provided "
                                              "function", "jvp")
        primals, tangents = [], []
        for o in outputs:
            p, tan = fwAD.unpack_dual(o)
            primals.append(p.detach())
            tangents.append(tan if tan is not None else ops.zeros_like(p))
    return (_tuple_postprocess(tuple(primals), is_outputs_tuple),
            _tuple_postprocess(tuple(t.detach() for t in tangents), is_outputs_tuple))


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """Full Jacobian: block [i][j] has shape output_i.shape + input_j.shape."""
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
        inputs = _prepare_inputs(inputs, create_graph)
        outputs = func(*inputs)
        is_outputs_tuple, outputs = _as_tuple(outputs, "outputs of the user-provided "
                                              "function", "jacobian")
        blocks = []
        for i, out in enumerate(outputs):
            n = out.numel()
            row = []
            if n == 0:      # torch stacks one row per output element: none to stack
                raise EngineError("stack expects a non-empty TensorList")
            if not _in_graph(out):
                row = [ops.zeros(*(tuple(out.shape) + tuple(x.shape)), dtype=x.dtype)
                       for x in inputs]
            else:
                # one backward pass with a batch of one-hot cotangents (the identity)
                eye = _make(np.eye(n, dtype=out._data.dtype).reshape((n,) + tuple(out.shape)))
                grads = autograd_grad(out, inputs, eye, retain_graph=True,
                                      create_graph=create_graph, allow_unused=True,
                                      is_grads_batched=True)
                for j, (g, x) in enumerate(zip(grads, inputs)):
                    if g is None:
                        if strict:
                            raise EngineError(f"Output {i} of the user-provided function is "
                                              f"independent of input {j}. This is not "
                                              "allowed in strict mode.")
                        g = ops.zeros(*((n,) + tuple(x.shape)), dtype=x.dtype)
                    row.append(ops.reshape(g, tuple(out.shape) + tuple(x.shape)))
            row = _grad_postprocess(tuple(row), create_graph)
            blocks.append(row if is_inputs_tuple else row[0])
    return tuple(blocks) if is_outputs_tuple else blocks[0]


def _single_element(outs, name: str) -> None:
    if len(outs) != 1:
        raise EngineError(f"The function given to {name} should return a single Tensor")
    if outs[0].numel() != 1:
        raise EngineError(f"The Tensor returned by the function given to {name} should "
                          "contain a single element")


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """Hessian of a scalar function: the Jacobian of its gradient."""
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")

    def gradient(*xs):
        out = func(*xs)
        _, outs = _as_tuple(out, "outputs of the user-provided function", "hessian")
        _single_element(outs, "hessian")
        if not outs[0].requires_grad:       # independent of the inputs: a zero Hessian
            return tuple(ops.zeros_like(x) for x in xs)
        grads = autograd_grad(outs[0], xs, create_graph=True, allow_unused=True)
        return tuple(g if g is not None else ops.zeros_like(x) for g, x in zip(grads, xs))

    res = jacobian(gradient, inputs, create_graph=create_graph, strict=strict)
    if not is_inputs_tuple:
        return res[0][0] if isinstance(res[0], tuple) else res[0]
    return res


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), vᵀ H)."""
    return _vhp(func, inputs, v, create_graph, "vhp")


def _vhp(func, inputs, v, create_graph, name):
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", name)
        inputs = _prepare_inputs(inputs, create_graph)
        v = _check_v(v, inputs, name, "input")
        outputs = func(*inputs)
        _, outs = _as_tuple(outputs, "outputs of the user-provided function", name)
        _single_element(outs, name)
        jac = autograd_grad(outs[0], inputs, create_graph=True, allow_unused=True)
        jac = _undef_to_zeros(jac, inputs)
        used = [(j, vi, x) for j, vi, x in zip(jac, v, inputs) if j.requires_grad]
        if used:
            grads = autograd_grad([j for j, _, _ in used], inputs,
                                  [vi for _, vi, _ in used], create_graph=create_graph,
                                  allow_unused=True)
        else:
            grads = (None,) * len(inputs)
        grads = _undef_to_zeros(grads, inputs)
    out = _grad_postprocess((outs[0],), create_graph)[0]
    return out, _tuple_postprocess(_grad_postprocess(grads, create_graph), is_inputs_tuple)


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), H v); H is symmetric for twice-differentiable functions."""
    return _vhp(func, inputs, v, create_graph, "hvp")
