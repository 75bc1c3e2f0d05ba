"""Neural-network primitives: addmm (Linear), convolution, max pooling, adaptive average
pooling, embedding and dropout.

Each forward is vectorized (windows are numpy ``sliding_window_view``\\ s, never Python loops
over pixels).  Every VJP is written with primitives again (conv's backward is two more
primitives, pooling's scatter and gather are a pair), so ``create_graph=True`` works to any
order.  Cotangents may carry ONE extra leading batch axis (``is_grads_batched``): the kernels
below take an optional leading axis on either operand (``_lead``), which is also what the
VJP of a VJP needs, since there the batched cotangent becomes an *input* of a primitive.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import backend as B
from .. import batching
from ..primitive import Primitive, apply
from ..tensor import Tensor
from . import shape as S
from . import elementwise as E
from .elementwise import input_backward
from .linalg import in_dtype_of
from ..samples import normal, one


def _call(prim: Primitive, args: tuple, params: dict):
    """Run ``prim`` on Tensors (recorded, for create_graph) or straight on arrays."""
    if any(isinstance(a, Tensor) for a in args):
        return apply(prim, args, params)
    return prim.forward(*args, **params)


def _np_dtype(x) -> np.dtype:
    dt = x.dtype
    return dt.np if hasattr(dt, "np") else np.dtype(dt)


def _sample_rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# ---- addmm: bias + mat1 @ mat2 (torch's Linear on 2-D input) ---------------------------------
def _addmm_shape(bias, mat1, mat2):
    return (mat1[0], mat2[1])


addmm = Primitive("addmm", "AddmmBackward0", lambda bias, m1, m2: bias + m1 @ m2,
                  broadcasts=True, input_names=("self", "mat1", "mat2"), out_shape=_addmm_shape,
                  needs=((), (2,), (1,)),     # the bias is not saved (torch's), only m1, m2
                  batch=batching.addmm,
                  sample=lambda: _addmm_samples(),
                  vjp=(lambda g, b, m1, m2, out: g,
                       lambda g, b, m1, m2, out: in_dtype_of(g, m2) @ B.swapaxes(m2, -1, -2),
                       lambda g, b, m1, m2, out: B.swapaxes(m1, -1, -2) @ in_dtype_of(g, m1)),
                  jvp=(lambda t, b, m1, m2, out: t,
                       lambda t, b, m1, m2, out: t @ m2,
                       lambda t, b, m1, m2, out: m1 @ t))
# out = b + A M:  db = dout (summed over rows by unbroadcast),  dA = dout Mᵀ,  dM = Aᵀ dout


def _addmm_samples():
    rng = _sample_rng()
    return [((rng.standard_normal(4), rng.standard_normal((3, 2)), rng.standard_normal((2, 4))),
             {}),
            ((rng.standard_normal((3, 4)), rng.standard_normal((3, 5)),
              rng.standard_normal((5, 4))), {})]




# ---- convolution ----------------------------------------------------------------------------
# Geometry params shared by the three convolution primitives: stride (sh, sw), padding
# (top, bottom, left, right), dilation (dh, dw).  Spatial dims are the last two.

def _pad2d(x, padding, value=0.0):
    top, bottom, left, right = padding
    if not (top or bottom or left or right):
        return x
    widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(x, widths, constant_values=value)


def _windows(x, kernel, stride, padding, dilation, value=0.0):
    """``(..., H, W) -> (..., OH, OW, kh, kw)``: every receptive field, as a strided view of
    the padded input (im2col without a copy)."""
    kh, kw = kernel
    dh, dw = dilation
    xp = _pad2d(x, padding, value)
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    win = sliding_window_view(xp, span, axis=(-2, -1))
    return win[..., ::stride[0], ::stride[1], ::dh, ::dw]


def _lead(spec: str, arr, plain_ndim: int) -> str:
    """Prefix an einsum operand spec with the batch letter when ``arr`` has a leading
    batch axis beyond its plain rank."""
    return ("b" + spec) if arr.ndim > plain_ndim else spec


def _einsum(a_spec, a, a_nd, b_spec, b, b_nd, out_spec):
    sa, sb = _lead(a_spec, a, a_nd), _lead(b_spec, b, b_nd)
    so = ("b" + out_spec) if "b" in sa + sb else out_spec
    return np.einsum(f"{sa},{sb}->{so}", a, b, optimize=True)


def _conv_forward(x, w, bias, stride, padding, dilation):
    # out[n, o, y, x] = sum_{c, i, j} xpad[n, c, y*sh + i*dh, x*sw + j*dw] w[o, c, i, j] + b[o]
    win = _windows(x, w.shape[-2:], stride, padding, dilation)
    out = _einsum("nchwij", win, 6, "ocij", w, 4, "nohw")
    if bias is not None:
        out = out + bias[:, None, None]
    return out


def _conv_input_grad(g, w, x_shape, stride, padding, dilation):
    # col2im: every window's column goes back to the pixels it read (np.add.at accumulates
    # the overlaps), then the padding is cropped off.
    cols = _einsum("nohw", g, 4, "ocij", w, 4, "nchwij")
    n, c, h, wd = x_shape
    top, bottom, left, right = padding
    kh, kw = w.shape[-2:]
    oh, ow = g.shape[-2:]
    rows = (np.arange(oh) * stride[0])[:, None, None, None] + \
        (np.arange(kh) * dilation[0])[None, None, :, None]
    columns = (np.arange(ow) * stride[1])[None, :, None, None] + \
        (np.arange(kw) * dilation[1])[None, None, None, :]
    padded = np.zeros(cols.shape[:-4] + (h + top + bottom, wd + left + right), cols.dtype)
    np.add.at(padded, (Ellipsis, rows, columns), cols)
    return padded[..., top:top + h, left:left + wd]


def _conv_weight_grad(x, g, w_shape, stride, padding, dilation):
    # dL/dw[o, c, i, j] = sum_{n, y, x} g[n, o, y, x] xpad[n, c, y*sh + i*dh, x*sw + j*dw]
    win = _windows(x, w_shape[-2:], stride, padding, dilation)
    return _einsum("nchwij", win, 6, "nohw", g, 4, "ocij")


def _conv_out_hw(h, w, kernel, stride, padding, dilation):
    top, bottom, left, right = padding
    oh = (h + top + bottom - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    ow = (w + left + right - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    return oh, ow


def _conv_shape(xs, ws, bs, stride, padding, dilation):
    oh, ow = _conv_out_hw(xs[-2], xs[-1], ws[-2:], stride, padding, dilation)
    return tuple(xs[:-3]) + (ws[0], oh, ow)


convolution = Primitive("convolution", "ConvolutionBackward0", _conv_forward,
                        input_names=("input", "weight", "bias"), out_shape=_conv_shape,
                        doc="2-D cross-correlation (torch.nn.functional.conv2d, groups=1)",
                        batch=batching.conv_like,
                        sample=lambda: _conv_samples(),
                        vjp=(lambda g, x, w, b, out, **p: _call(
                                 conv_input_backward, (g, w), {"x_shape": tuple(x.shape), **p}),
                             lambda g, x, w, b, out, **p: _call(
                                 conv_weight_backward, (x, g), {"w_shape": tuple(w.shape), **p}),
                             lambda g, x, w, b, out, **p: B.sum(g, axis=(-4, -2, -1))),
                        jvp=(lambda t, x, w, b, out, **p: _conv_forward(t, w, None, **p),
                             lambda t, x, w, b, out, **p: _conv_forward(x, t, None, **p),
                             lambda t, x, w, b, out, **p: t[:, None, None]))
conv_input_backward = Primitive(
    "convolution_backward_input", "ConvolutionBackwardBackward0", _conv_input_grad,
    input_names=("grad_output", "weight"),
    out_shape=lambda gs, ws, x_shape, stride, padding, dilation: tuple(gs[:-4]) + x_shape,
    doc="gradient of convolution w.r.t. its input (a transposed convolution)",
    batch=batching.per_example,
    sample=lambda: _conv_backward_samples("input"),
    vjp=(lambda u, g, w, out, x_shape, **p: _call(convolution, (u, w, None), p),
         lambda u, g, w, out, x_shape, **p: _call(conv_weight_backward, (u, g),
                                                  {"w_shape": tuple(w.shape), **p})),
    jvp=(lambda t, g, w, out, x_shape, **p: _conv_input_grad(t, w, x_shape, **p),
         lambda t, g, w, out, x_shape, **p: _conv_input_grad(g, t, x_shape, **p)))
conv_weight_backward = Primitive(
    "convolution_backward_weight", "ConvolutionBackwardBackward0", _conv_weight_grad,
    input_names=("input", "grad_output"),
    out_shape=lambda xs, gs, w_shape, stride, padding, dilation: w_shape,
    doc="gradient of convolution w.r.t. its weight", batch=batching.per_example,
    sample=lambda: _conv_backward_samples("weight"),
    vjp=(lambda v, x, g, out, w_shape, **p: _call(conv_input_backward, (g, v),
                                                  {"x_shape": tuple(x.shape), **p}),
         lambda v, x, g, out, w_shape, **p: _call(convolution, (x, v, None), p)),
    jvp=(lambda t, x, g, out, w_shape, **p: _conv_weight_grad(t, g, w_shape, **p),
         lambda t, x, g, out, w_shape, **p: _conv_weight_grad(x, t, w_shape, **p)))


def _geometry(p: dict) -> dict:
    return {"stride": p["stride"], "padding": p["padding"], "dilation": p["dilation"]}


# The three maps are bilinear, so each one's VJP is one of the others:
#   y = C(x, w):            dx = Cxᵀ(dy, w)        dw = Cwᵀ(x, dy)
#   gx = Cxᵀ(g, w):         dg = C(u, w)           dw = Cwᵀ(u, g)      (u: cotangent of gx)
#   gw = Cwᵀ(x, g):         dx = Cxᵀ(g, v)         dg = C(x, v)        (v: cotangent of gw)

_CONV_SAMPLE_GEOMETRY = ({"stride": (1, 1), "padding": (0, 0, 0, 0), "dilation": (1, 1)},
                         {"stride": (2, 1), "padding": (1, 1, 0, 2), "dilation": (1, 2)})


def _conv_samples():
    rng = _sample_rng()
    out = []
    for p in _CONV_SAMPLE_GEOMETRY:
        x, w = rng.standard_normal((2, 2, 5, 6)), rng.standard_normal((3, 2, 3, 2))
        out.append(((x, w, rng.standard_normal(3)), dict(p)))
    return out


def _conv_backward_samples(which: str):
    out = []
    for (x, w, _), p in _conv_samples():
        g = np.ones(_conv_shape(x.shape, w.shape, None, **p)) * 0.5
        g = g + _sample_rng().standard_normal(g.shape)
        if which == "input":
            out.append(((g, w), {"x_shape": x.shape, **p}))
        else:
            out.append(((x, g), {"w_shape": w.shape, **p}))
    return out




# ---- max pooling ------------------------------------------------------------------------------
def _pool_out(n, k, s, p, d, ceil_mode):
    """Output length and the extra right padding ceil_mode needs (torch's rule: the last
    window must start inside the input or the left padding)."""
    span = d * (k - 1) + 1
    out = (n + 2 * p - span + ((s - 1) if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    extra = max(0, (out - 1) * s + span - (n + 2 * p))
    return out, extra


def _pool_layout(hw, kernel_size, stride, padding, dilation, ceil_mode):
    """(output size, padding (top, bottom, left, right)) of a pooling over ``hw``."""
    oh, eh = _pool_out(hw[0], kernel_size[0], stride[0], padding[0], dilation[0], ceil_mode)
    ow, ew = _pool_out(hw[1], kernel_size[1], stride[1], padding[1], dilation[1], ceil_mode)
    return (oh, ow), (padding[0], padding[0] + eh, padding[1], padding[1] + ew)


def _pool_windows(x, kernel_size, stride, padding, dilation, ceil_mode):
    (oh, ow), pads = _pool_layout(x.shape[-2:], kernel_size, stride, padding, dilation,
                                  ceil_mode)
    win = _windows(x, kernel_size, stride, pads, dilation, value=-np.inf)[..., :oh, :ow, :, :]
    return win.reshape(win.shape[:-2] + (-1,)), pads


def _max_pool_forward(x, kernel_size, stride, padding, dilation, ceil_mode):
    win, _ = _pool_windows(x, kernel_size, stride, padding, dilation, ceil_mode)
    return win.max(axis=-1)


def pool_indices(x, kernel_size, stride, padding, dilation, ceil_mode) -> tuple:
    """Flat index (into the padded H*W plane) of each window's maximum (the first one on
    ties, as torch's kernel), and the padded plane's (Hp, Wp) and (top, left) offset."""
    win, pads = _pool_windows(x, kernel_size, stride, padding, dilation, ceil_mode)
    k = win.argmax(axis=-1)
    oh, ow = k.shape[-2:]
    kw = kernel_size[1]
    rows = np.arange(oh)[:, None] * stride[0] + (k // kw) * dilation[0]
    cols = np.arange(ow)[None, :] * stride[1] + (k % kw) * dilation[1]
    hp = x.shape[-2] + pads[0] + pads[1]
    wp = x.shape[-1] + pads[2] + pads[3]
    return rows * wp + cols, (hp, wp), (pads[0], pads[2])


def _pool_scatter(g, indices, padded, offset, in_hw):
    # Each output's gradient goes to the input element its window picked (overlapping
    # windows accumulate: bincount over (row, flat index) pairs).
    hp, wp = padded
    idx = np.broadcast_to(indices, g.shape)
    rows = idx.reshape(-1, idx.shape[-2] * idx.shape[-1])
    flat = rows + (np.arange(rows.shape[0]) * (hp * wp))[:, None]
    if np.iscomplexobj(g):
        z = np.zeros(rows.shape[0] * hp * wp, g.dtype)
        np.add.at(z, flat.ravel(), np.ravel(g))
    else:
        z = np.bincount(flat.ravel(), weights=np.ravel(g), minlength=rows.shape[0] * hp * wp)
    z = z.astype(g.dtype, copy=False).reshape(g.shape[:-2] + (hp, wp))
    top, left = offset
    return z[..., top:top + in_hw[0], left:left + in_hw[1]]


def _pool_gather(u, indices, padded, offset, in_hw):
    # The value of u at each window's argmax (the JVP of max pooling; the VJP of scatter).
    hp, wp = padded
    top, left = offset
    up = _pad2d(u, (top, hp - in_hw[0] - top, left, wp - in_hw[1] - left))
    flat = up.reshape(up.shape[:-2] + (hp * wp,))
    lead = flat.shape[:-1]
    idx = np.broadcast_to(indices, lead + indices.shape[-2:]).reshape(lead + (-1,))
    return np.take_along_axis(flat, idx, axis=-1).reshape(lead + indices.shape[-2:])


max_pool2d = Primitive("max_pool2d", "MaxPool2DWithIndicesBackward0", _max_pool_forward,
                       analytic=False, input_names=("self",),
                       doc="2-D max pooling (torch.nn.functional.max_pool2d)",
                       batch=batching.conv_like, domain="distinct",
                       sample=lambda: _pool_samples(),
                       vjp=lambda g, x, out, **p: _call(pool_scatter, (g, x),
                                                        _index_params(x, p)),
                       jvp=lambda t, x, out, **p: _pool_gather(t, **_index_params(x, p)))


def _zero_in_self(gg, g, x, out, **p):
    # the backward of a pooling reads its input only for the argmax positions / the shape: a
    # constant in it, so its derivative there is zero (an edge with zeros, as torch's)
    # (the backward's output has self's shape, so gg has it, with any batch axes in front)
    return B.zeros_like(gg)


# torch's max_pool2d_with_indices_backward(grad_output, self, ...): edges to both, the second
# with a zero derivative
pool_scatter = Primitive("max_pool2d_backward", "MaxPool2DWithIndicesBackwardBackward0",
                         lambda g, x, **p: _pool_scatter(g, **p), save="shapes",
                         input_names=("grad_output", "self"),
                         out_shape=lambda gs, xs, indices, padded, offset, in_hw:
                         tuple(gs[:-2]) + tuple(in_hw),
                         doc="gradient of max pooling: scatter to the argmax positions",
                         batch=batching.per_example,
                         sample=lambda: _pool_pair_samples(),
                         vjp=(lambda u, g, x, out, **p: _call(pool_gather, (u,), p),
                              _zero_in_self),
                         jvp=(lambda t, g, x, out, **p: _pool_scatter(t, **p),
                              lambda t, g, x, out, **p: np.zeros(
                                  np.shape(t)[:-2] + tuple(p["in_hw"]), np.result_type(t))))
pool_gather = Primitive("max_pool2d_gather", "MaxPool2DGatherBackward0", _pool_gather,
                        save="inputs", input_names=("self",),
                        doc="values at max pooling's argmax positions (its JVP)",
                        batch=batching.per_example,
                        sample=lambda: _gather_samples(),
                        vjp=lambda v, u, out, **p: _call(pool_scatter, (v, u), p),
                        jvp=lambda t, u, out, **p: _pool_gather(t, **p))


def _index_params(x, p) -> dict:
    indices, padded, offset = pool_indices(B.data(x), **p)
    return {"indices": indices, "padded": padded, "offset": offset,
            "in_hw": tuple(x.shape[-2:])}


# max pooling is linear in x once the argmax positions are fixed (they are constants a.e.)


def _pool_samples():
    rng = _sample_rng()
    x = rng.permutation(2 * 2 * 5 * 5).reshape(2, 2, 5, 5) * 0.1   # distinct values
    return [((x,), {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0),
                    "dilation": (1, 1), "ceil_mode": False}),
            ((x,), {"kernel_size": (3, 2), "stride": (1, 2), "padding": (1, 1),
                    "dilation": (1, 1), "ceil_mode": True})]


def _pool_pair_samples():
    out = []
    for (x,), p in _pool_samples():
        params = _index_params(x, p)
        g = _sample_rng().standard_normal(params["indices"].shape)
        out.append(((g, x), params))
    return out


def _gather_samples():
    return [((_sample_rng().standard_normal((2, 2) + p["in_hw"]),), p)
            for (_, p) in _pool_pair_samples()]




# ---- average pooling (count_include_pad, no ceil_mode) -------------------------------------------
# out = mean of each kh x kw window of the zero-padded input; linear, so its VJP is its adjoint
# (every window's gradient spread evenly over the pixels it read), a primitive of its own
# whose VJP is the pooling again.
def _avg_pool_forward(x, kernel_size, stride, padding):
    pads = (padding[0], padding[0], padding[1], padding[1])
    win = _windows(x, kernel_size, stride, pads, (1, 1))
    return win.sum(axis=(-2, -1)) / (kernel_size[0] * kernel_size[1])


def _avg_pool_adjoint(g, kernel_size, stride, padding, in_hw):
    lead = g.shape[:-2]
    flat = g.reshape((-1, 1) + g.shape[-2:])
    w = np.full((1, 1) + tuple(kernel_size), 1.0 / (kernel_size[0] * kernel_size[1]), g.dtype)
    pads = (padding[0], padding[0], padding[1], padding[1])
    x = _conv_input_grad(flat, w, (flat.shape[0], 1) + tuple(in_hw), stride, pads, (1, 1))
    return x.reshape(lead + tuple(in_hw))


def _avg_pool_samples():
    rng = _sample_rng()
    x = rng.standard_normal((2, 2, 5, 6))
    return [((x,), {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0)}),
            ((x,), {"kernel_size": (3, 2), "stride": (1, 2), "padding": (1, 1)})]


avg_pool2d = Primitive(
    "avg_pool2d", "AvgPool2DBackward0", _avg_pool_forward, input_names=("self",),
    doc="2-D average pooling (torch.nn.functional.avg_pool2d, count_include_pad)",
    batch=batching.direct, sample=_avg_pool_samples,
    vjp=lambda g, x, out, **p: _call(avg_pool_adjoint, (g, x),
                                     {**p, "in_hw": tuple(x.shape[-2:])}),
    jvp=lambda t, x, out, **p: _avg_pool_forward(t, **p))
def _grad_batched(out, batched, size):
    # a backward whose value depends on grad_output only (the leading axes are batch axes
    # there); with only self batched, every example's value is the same
    return out if batched[0] else np.repeat(out[None], size, axis=0)


# torch's avg_pool2d_backward(grad_output, self, ...): edges to both, a zero derivative in self
avg_pool_adjoint = Primitive(
    "avg_pool2d_backward", "AvgPool2DBackwardBackward0",
    lambda g, x, **p: _avg_pool_adjoint(g, **p), save="shapes",
    input_names=("grad_output", "self"), doc="gradient of average pooling",
    batch=lambda prim, args, batched, size, params: _grad_batched(
        _avg_pool_adjoint(args[0], **params), batched, size),
    sample=lambda: [((_avg_pool_forward(x, **p), x), {**p, "in_hw": x.shape[-2:]})
                    for (x,), p in _avg_pool_samples()],
    vjp=(lambda u, g, x, out, kernel_size, stride, padding, in_hw: _call(
        avg_pool2d, (u,), {"kernel_size": kernel_size, "stride": stride, "padding": padding}),
         _zero_in_self),
    jvp=(lambda t, g, x, out, **p: _avg_pool_adjoint(t, **p),
         lambda t, g, x, out, **p: np.zeros(np.shape(t)[:-2] + tuple(p["in_hw"]),
                                            np.result_type(t))))


# ---- adaptive average pooling -------------------------------------------------------------------
def _bins(n_in: int, n_out: int, dtype) -> np.ndarray:
    """(n_out, n_in) averaging matrix of torch's adaptive bins:
    bin i covers [floor(i n_in / n_out), ceil((i + 1) n_in / n_out))."""
    i = np.arange(n_out)
    start = (i * n_in) // n_out
    end = -((-(i + 1) * n_in) // n_out)
    j = np.arange(n_in)
    inside = (j >= start[:, None]) & (j < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


def _adaptive_forward(x, output_size):
    # out = P_h x P_wᵀ on the last two axes (one matmul pair, any bins)
    dt = x.dtype if x.dtype.kind in "fc" else np.float64
    ph = _bins(x.shape[-2], output_size[0], dt)
    pw = _bins(x.shape[-1], output_size[1], dt)
    return ph @ x @ pw.T


def _adaptive_vjp(g, x, out, output_size):
    # linear map: its transpose is P_hᵀ g P_w (matmul dispatches on Tensors too)
    dt = _np_dtype(g)
    ph = _bins(x.shape[-2], output_size[0], dt)
    pw = _bins(x.shape[-1], output_size[1], dt)
    return ph.T @ g @ pw


adaptive_avg_pool2d = Primitive(
    "adaptive_avg_pool2d", "AdaptiveAvgPool2DBackward0", _adaptive_forward, save="shapes",
    input_names=("self",),
    out_shape=lambda xs, output_size: tuple(xs[:-2]) + tuple(output_size),
    doc="adaptive average pooling over the last two axes", batch=batching.direct,
    sample=lambda: [
        ((_sample_rng().standard_normal((2, 3, 4, 6)),), {"output_size": (2, 3)}),
        ((_sample_rng().standard_normal((1, 2, 5, 7)),), {"output_size": (3, 2)})],
    vjp=_adaptive_vjp,
    jvp=lambda t, x, out, output_size: _adaptive_forward(t, output_size))


# ---- embedding ----------------------------------------------------------------------------
def _embedding_vjp(g, w, out, indices, padding_idx):
    # rows of the table get the sum of the gradients of every lookup of them
    out_ndim = indices.ndim + 1
    key = (indices,)
    if isinstance(g, Tensor):
        grad = S.index_add_zeros(g, key=key, shape=tuple(w.shape), out_ndim=out_ndim)
    else:
        grad = S._index_add_zeros_forward(g, key, tuple(w.shape), out_ndim)
    if padding_idx is not None:
        keep = np.ones((w.shape[0], 1), _np_dtype(g))
        keep[padding_idx] = 0
        grad = grad * keep
    return grad


embedding = Primitive("embedding", "EmbeddingBackward0",
                      lambda w, indices, padding_idx: w[indices], save="shapes",
                      input_names=("weight",),
                      out_shape=lambda ws, indices, padding_idx: tuple(np.shape(indices))
                      + tuple(ws[1:]),
                      doc="table lookup (indices are a constant parameter, as in torch)",
                      batch=batching.embedding,
                      sample=lambda: [
                          ((_sample_rng().standard_normal((5, 3)),),
                           {"indices": np.array([[0, 2, 2], [4, 1, 0]]), "padding_idx": None}),
                          ((_sample_rng().standard_normal((4, 2)),),
                           {"indices": np.array([3, 0, 3, 1]), "padding_idx": None})],
                      vjp=_embedding_vjp,
                      jvp=lambda t, w, out, indices, padding_idx: t[indices])
# padding_idx (torch's convention: that row's gradient is zero although the forward reads
# it) is not the derivative, so the samples leave it out; tests/nn checks it against torch.


# ---- dropout ------------------------------------------------------------------------------
# out = x * mask, the mask already scaled by 1 / (1 - p); it is drawn by the caller (from the
# default generator) and stays a constant of the node, as torch's saved mask.
native_dropout = Primitive("native_dropout", "NativeDropoutBackward0",
                           lambda x, mask: x * mask, save="none", input_names=("input",),
                           doc="x * (scaled Bernoulli mask)",
                           batch=batching.elementwise,
                           sample=lambda: [
                               ((_sample_rng().standard_normal((3, 4)),),
                                {"mask": (np.random.default_rng(7).random((3, 4)) > 0.3) / 0.7})],
                           vjp=lambda g, x, out, mask: g * mask,
                           jvp=lambda t, x, out, mask: t * mask)


# ---- erf (for GELU) -----------------------------------------------------------------------------
def _erf(x):
    # np.asarray: on a 0-d input frompyfunc returns a Python float, not an array
    return np.asarray(np.frompyfunc(math.erf, 1, 1)(x)).astype(
        x.dtype if x.dtype.kind == "f" else np.float64)


def _erf_vjp(g, x, out):
    # d erf(x) = 2/sqrt(pi) exp(-x^2) dx
    return g * (2.0 / math.sqrt(math.pi)) * B.exp(-(x * x))


erf = Primitive("erf", "ErfBackward0", _erf, quiet=True, input_names=("self",),
                analytic=False,   # the forward (math.erf) takes real numbers only
                doc="the error function, elementwise", batch=batching.elementwise,
                sample=lambda: [((_sample_rng().standard_normal((3, 4)),), {})],
                vjp=_erf_vjp, jvp=_erf_vjp)


# ---- activations with their own node in torch (GeluBackward0, SiluBackward0, ...) ---------------
def _erf_any(x):
    """erf of an array, or of a Tensor (recorded: the rules below stay differentiable)."""
    return _call(erf, (x,), {})


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TANH_SCALE = math.sqrt(2.0 / math.pi)
_TANH_CUBIC = 0.044715


def _gelu(x, approximate):
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(_TANH_SCALE * (x + _TANH_CUBIC * x * x * x)))
    return 0.5 * x * (1.0 + _erf(x * _SQRT_HALF))


def _gelu_slope(x, approximate):
    if approximate == "tanh":
        # u = c (x + k x^3):  d/dx 0.5 x (1 + tanh u) = 0.5 (1 + tanh u)
        #                                               + 0.5 x (1 - tanh^2 u) c (1 + 3 k x^2)
        th = B.tanh((x + x * x * x * _TANH_CUBIC) * _TANH_SCALE)
        return (th + 1.0) * 0.5 + x * 0.5 * (1.0 - th * th) * _TANH_SCALE * (
            x * x * (3 * _TANH_CUBIC) + 1.0)
    # d/dx x Phi(x) = Phi(x) + x phi(x)
    return (_erf_any(x * _SQRT_HALF) + 1.0) * 0.5 + x * B.exp(x * x * -0.5) * _INV_SQRT_2PI


def _gelu_curvature(x, approximate):
    if approximate == "tanh":
        # t = tanh u, u' = c (1 + 3k x^2), u'' = 6 c k x:
        # d/dx slope = (1 - t^2) (u' - x t u'^2 + x u'' / 2)
        th = B.tanh((x + x * x * x * _TANH_CUBIC) * _TANH_SCALE)
        du = (x * x * (3 * _TANH_CUBIC) + 1.0) * _TANH_SCALE
        return (1.0 - th * th) * (du - x * th * du * du
                                  + x * x * (3 * _TANH_CUBIC * _TANH_SCALE))
    # d/dx (Phi(x) + x phi(x)) = phi(x) (2 - x^2)
    return B.exp(x * x * -0.5) * _INV_SQRT_2PI * (2.0 - x * x)


gelu_backward = input_backward(
    "gelu_backward", "GeluBackwardBackward0", _gelu_slope, _gelu_curvature,
    lambda: [((_sample_rng().standard_normal((3, 4)), _sample_rng().standard_normal((3, 4)) * 2),
              {"approximate": a}) for a in ("none", "tanh")])
gelu = Primitive("gelu", "GeluBackward0", _gelu, quiet=True, input_names=("self",),
                 analytic=False, doc="x Phi(x) (or its tanh approximation)",
                 batch=batching.elementwise, delta=batching.delta_elementwise,
                 sample=lambda: [((_sample_rng().standard_normal((3, 4)) * 2,),
                                  {"approximate": a}) for a in ("none", "tanh")],
                 vjp=lambda g, x, out, approximate: _call(gelu_backward, (g, x),
                                                          {"approximate": approximate}),
                 jvp=lambda t, x, out, approximate: t * _gelu_slope(x, approximate))


def _silu_slope(x):
    # d/dx x sigmoid(x) = s (1 + x (1 - s))
    s = B.sigmoid(x)
    return s * (x * (1.0 - s) + 1.0)


silu = Primitive("silu", "SiluBackward0", lambda x: x * B.np_sigmoid(x), input_names=("self",),
                 doc="x sigmoid(x)", batch=batching.elementwise,
                 delta=batching.delta_elementwise,
                 sample=lambda: [((_sample_rng().standard_normal((3, 4)) * 2,), {})],
                 vjp=lambda g, x, out: g * _silu_slope(x),
                 jvp=lambda t, x, out: t * _silu_slope(x))


def _elu(x, alpha):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _elu_slope(x, alpha):
    # alpha exp(x) for x <= 0, 1 otherwise (NaN included, as torch)
    below = B.data(x) <= 0
    return B.where(below, B.exp(B.where(below, x, 0.0)) * alpha, 1.0)


def _kinked_samples(**params):
    """Values at least 0.2 away from 0 (the kink), with the given parameters."""
    rng = _sample_rng()
    x = rng.choice([-1.0, 1.0], (3, 4)) * rng.uniform(0.2, 2.0, (3, 4))
    return lambda: [((x,), dict(params))]


def _elu_curvature(x, alpha):
    # alpha exp(x) for x < 0, 0 otherwise (torch's elu_double_backward: 0 at x = 0 too,
    # where the slope is alpha)
    return B.where(B.data(x) < 0, B.exp(B.where(B.data(x) < 0, x, 0.0)) * alpha, 0.0)


elu_backward = input_backward(
    "elu_backward", "EluBackwardBackward0", _elu_slope, _elu_curvature,
    lambda: [((_sample_rng().standard_normal((3, 4)), _kinked_samples(alpha=0.7)()[0][0][0]),
              {"alpha": 0.7})], domain="away_from_zero")
elu = Primitive("elu", "EluBackward0", _elu, quiet=True, input_names=("self",),
                analytic=False, domain="away_from_zero", doc="x, or alpha (exp(x) - 1) below 0",
                batch=batching.elementwise, delta=batching.delta_elementwise,
                sample=_kinked_samples(alpha=0.7),
                vjp=lambda g, x, out, alpha: _call(elu_backward, (g, x), {"alpha": alpha}),
                jvp=lambda t, x, out, alpha: t * _elu_slope(x, alpha))


def _slope_backward(name, node_name, slope, sample):
    """grad * slope(x) for a piecewise-linear activation: its backward, itself a node (torch's
    ...BackwardBackward0), linear in grad and constant in x (so the gradient of a gradient
    exists and is zero in x, as torch's, rather than missing)."""
    prim = Primitive(name, node_name, lambda g, x, **p: _sloped(g, slope(x, **p)),
                     broadcasts=True,
                     input_names=("grad_output", "self"), analytic=False,
                     domain="away_from_zero", batch=batching.elementwise,
                     doc=f"the backward of {node_name[:-len('BackwardBackward0')]}",
                     sample=sample,
                     vjp=(lambda gg, g, x, out, **p: _call(prim, (gg, x), p),
                          lambda gg, g, x, out, **p: B.zeros_like(gg)),
                     jvp=(lambda t, g, x, out, **p: _sloped(t, slope(x, **p)),
                          lambda t, g, x, out, **p: np.zeros_like(t)))
    return prim


def _sloped(g, slope):
    """g times the slope; a boolean slope selects (torch's masked_fill: an inf or NaN
    gradient outside the mask gives 0, not NaN)."""
    if slope.dtype == np.bool_:
        return np.where(slope, g, np.zeros((), dtype=np.result_type(g)))
    return g * slope


def _leaky_slope(x, negative_slope):
    data = B.data(x)
    return np.where(data > 0, 1.0, negative_slope).astype(data.dtype)


def _hardtanh_slope(x, min_val, max_val):
    # the gradient passes strictly inside (min_val, max_val) (torch: zero at the bounds)
    data = B.data(x)
    return (data > min_val) & (data < max_val)


def _backward_samples(x, **params):
    return lambda: [((_sample_rng().standard_normal(np.shape(x)), x), dict(params))]


leaky_relu_backward = _slope_backward(
    "leaky_relu_backward", "LeakyReluBackwardBackward0", _leaky_slope,
    _backward_samples(np.array([-1.5, -0.3, 0.4, 2.0]), negative_slope=0.1))
hardtanh_backward = _slope_backward(
    "hardtanh_backward", "HardtanhBackwardBackward0", _hardtanh_slope,
    _backward_samples(np.array([-1.7, -0.6, 0.3, 1.4]), min_val=-1.0, max_val=1.0))

def _threshold(x, threshold, value):
    # torch: x <= threshold ? value : x (a NaN x stays NaN)
    return np.where(x <= threshold, np.asarray(value).astype(x.dtype), x)


# threshold(x, t, v) = x where x > t, v elsewhere; its backward is relu's node
# (threshold_backward(grad, self, t): ThresholdBackwardBackward0, edges grad and self)
threshold = Primitive("threshold", "ThresholdBackward0",
                      _threshold,
                      input_names=("self",), analytic=False, domain="away_from_zero",
                      doc="x where x > threshold, value elsewhere",
                      batch=batching.elementwise, delta=batching.delta_elementwise,
                      sample=_kinked_samples(threshold=0.0, value=-2.0),
                      vjp=lambda g, x, out, threshold, value: _call(
                          E.threshold_backward, (g, x), {"threshold": threshold}),
                      jvp=lambda t, x, out, threshold, value: E._threshold_backward(
                          t, x, threshold))
# threshold_ (in place): torch records ThresholdBackward1, the same rules
threshold_inplace = Primitive(
    "threshold_inplace", "ThresholdBackward1",
    _threshold,
    input_names=("self",), analytic=False, domain="away_from_zero",
    doc="threshold in place", batch=batching.elementwise, delta=batching.delta_elementwise,
    sample=_kinked_samples(threshold=0.0, value=-2.0),
    vjp=lambda g, x, out, threshold, value: _call(E.threshold_backward, (g, x),
                                                  {"threshold": threshold}),
    jvp=lambda t, x, out, threshold, value: E._threshold_backward(t, x, threshold))
leaky_relu = Primitive("leaky_relu", "LeakyReluBackward0",
                       lambda x, negative_slope: np.where(x > 0, x, x * negative_slope),
                       input_names=("self",), analytic=False, domain="away_from_zero",
                       doc="x, or negative_slope x below 0",
                       batch=batching.elementwise, delta=batching.delta_elementwise,
                       sample=_kinked_samples(negative_slope=0.1),
                       vjp=lambda g, x, out, negative_slope: _call(
                           leaky_relu_backward, (g, x), {"negative_slope": negative_slope}),
                       jvp=lambda t, x, out, negative_slope: t * _leaky_slope(x, negative_slope))

hardtanh = Primitive("hardtanh", "HardtanhBackward0",
                     lambda x, min_val, max_val: np.minimum(np.maximum(x, min_val), max_val),
                     input_names=("self",), analytic=False, domain="away_from_clamp",
                     doc="x clamped to [min_val, max_val] (relu6: [0, 6])",
                     batch=batching.elementwise, delta=batching.delta_elementwise,
                     sample=lambda: [((np.array([-1.7, -0.6, -0.2, 0.3, 0.8, 1.4]),),
                                      {"min_val": -1.0, "max_val": 1.0}),
                                     ((np.array([-1.0, 2.5, 5.5, 7.0]),),
                                      {"min_val": 0.0, "max_val": 6.0})],
                     vjp=lambda g, x, out, min_val, max_val: _call(
                         hardtanh_backward, (g, x), {"min_val": min_val, "max_val": max_val}),
                     jvp=lambda t, x, out, min_val, max_val: _sloped(t, _hardtanh_slope(
                         x, min_val, max_val)))


# ---- batch norm and layer norm: one node each in torch (NativeBatchNormBackward0, ...) ----------
# x̂ = (x - mean) / sqrt(var + eps) (biased variance), out = x̂ w + b.  With the statistics
# of x itself (batch norm in training, layer norm) the backward through them is
#     dx = (g w - mean(g w) - x̂ mean(g w x̂)) / sqrt(var + eps)      (means over the axes)
# and the tangent of x̂ has that form with t for g w (the map is self-adjoint); with fixed
# statistics (batch norm in eval) dx = g w / σ.
# Axes count from the end, so a cotangent with a leading batch axis works unchanged.
def _norm_stats(x, axes, eps, fixed=None):
    """(x̂, 1/σ) of x over ``axes`` (or with the fixed (mean, var) arrays of ``fixed``)."""
    if fixed is None:
        centered = x - B.mean(x, axis=axes, keepdims=True)
        var = B.mean(centered * centered, axis=axes, keepdims=True)
    else:
        centered = x - fixed[0]
        var = fixed[1]
    inv = 1.0 / B.sqrt(var + eps)
    return centered * inv, inv


def _through_stats(gw, xhat, inv, axes, fixed: bool):
    if fixed:
        return gw * inv
    return (gw - B.mean(gw, axis=axes, keepdims=True)
            - xhat * B.mean(gw * xhat, axis=axes, keepdims=True)) * inv


def _recorded(*values) -> bool:
    """Whether a rule runs under create_graph (some input a Tensor)."""
    return any(isinstance(v, Tensor) for v in values)


def _bn_axes(ndim: int) -> tuple:
    return tuple(i - ndim for i in range(ndim) if i != 1)     # every dim but the channels


def _channels(v, ndim: int):
    """A per-channel vector (or a batch of them) shaped to broadcast over (N, C, ...)."""
    return B.reshape(v, tuple(v.shape) + (1,) * (ndim - 2))


def _bn_fixed(x, running_mean, running_var, training):
    if training:
        return None
    return (running_mean.reshape((-1,) + (1,) * (x.ndim - 2)).astype(x.dtype),
            running_var.reshape((-1,) + (1,) * (x.ndim - 2)).astype(x.dtype))


def _batch_norm_forward(x, weight, bias, running_mean, running_var, training, eps):
    xhat, _ = _norm_stats(x, _bn_axes(x.ndim), eps,
                          _bn_fixed(x, running_mean, running_var, training))
    out = xhat if weight is None else xhat * _channels(weight, x.ndim)
    return out if bias is None else out + _channels(bias, x.ndim)


def _bn_rule(which, jvp=False, plain=False):
    def rule(g, x, weight, bias, out, running_mean, running_var, training, eps):
        if not jvp and not plain and _recorded(g, x, weight, bias):
            # create_graph: torch records the backward as one node with edges to the
            # cotangent, the input, the weight and its saved statistics
            return apply(native_batch_norm_backward, (g, x, weight, None, None),
                         {"which": which, "running_mean": running_mean,
                          "running_var": running_var, "training": training, "eps": eps})
        nd = x.ndim
        axes = _bn_axes(nd)
        fixed = _bn_fixed(B.data(x), running_mean, running_var, training)
        if which == 2:
            return _channels(g, nd) if jvp else B.sum(g, axis=axes)
        xhat, inv = _norm_stats(x, axes, eps, fixed)
        if which == 1:
            return _channels(g, nd) * xhat if jvp else B.sum(g * xhat, axis=axes)
        w = None if weight is None else _channels(weight, nd)
        if jvp:      # out = x̂ w: the tangent of x̂, times w
            dxhat = _through_stats(g, xhat, inv, axes, fixed is not None)
            return dxhat if w is None else dxhat * w
        return _through_stats(g if w is None else g * w, xhat, inv, axes, fixed is not None)
    return rule


def _bn_samples():
    rng = _sample_rng()
    x, w, b = rng.standard_normal((4, 3, 2)), rng.standard_normal(3), rng.standard_normal(3)
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    common = {"running_mean": None, "running_var": None, "training": True, "eps": 1e-5}
    return [((x, w, b), common),
            ((x[:, :, 0], w, b), common),
            ((x, w, b), dict(common, running_mean=mean, running_var=var, training=False))]


native_batch_norm = Primitive(
    "native_batch_norm", "NativeBatchNormBackward0", _batch_norm_forward, quiet=True,
    input_names=("input", "weight", "bias"), batch=batching.per_example,
    doc="batch normalization over every dim but the channels (dim 1)",
    sample=_bn_samples,
    vjp=(_bn_rule(0), _bn_rule(1), _bn_rule(2)),
    jvp=(_bn_rule(0, True), _bn_rule(1, True), _bn_rule(2, True)))


def _ln_axes(normalized_shape) -> tuple:
    return tuple(range(-len(normalized_shape), 0))


def _layer_norm_forward(x, weight, bias, normalized_shape, eps):
    xhat, _ = _norm_stats(x, _ln_axes(normalized_shape), eps)
    out = xhat if weight is None else xhat * weight
    return out if bias is None else out + bias


def _ln_rule(which, jvp=False, plain=False):
    def rule(g, x, weight, bias, out, normalized_shape, eps):
        if not jvp and not plain and _recorded(g, x, weight, bias):
            # create_graph: one node, as torch's (edges: cotangent, input, saved mean and
            # 1/σ, weight, bias)
            return apply(native_layer_norm_backward, (g, x, None, None, weight, bias),
                         {"which": which, "normalized_shape": normalized_shape, "eps": eps})
        axes = _ln_axes(normalized_shape)
        # the leading dims of x (counted from the end): weight and bias get their sum
        lead = tuple(range(-x.ndim, -len(normalized_shape)))
        if which == 2:
            return g if jvp or not lead else B.sum(g, axis=lead)
        xhat, inv = _norm_stats(x, axes, eps)
        if which == 1:
            return g * xhat if jvp or not lead else B.sum(g * xhat, axis=lead)
        if jvp:      # out = x̂ w: the tangent of x̂, times w (w varies along the axes)
            dxhat = _through_stats(g, xhat, inv, axes, False)
            return dxhat if weight is None else dxhat * weight
        return _through_stats(g if weight is None else g * weight, xhat, inv, axes, False)
    return rule


def _ln_samples():
    rng = _sample_rng()
    x = rng.standard_normal((2, 3, 4))
    return [((x, rng.standard_normal(4), rng.standard_normal(4)),
             {"normalized_shape": (4,), "eps": 1e-5}),
            ((x, rng.standard_normal((3, 4)), rng.standard_normal((3, 4))),
             {"normalized_shape": (3, 4), "eps": 1e-5})]


native_layer_norm = Primitive(
    "native_layer_norm", "NativeLayerNormBackward0", _layer_norm_forward, quiet=True,
    input_names=("input", "weight", "bias"), batch=batching.per_example,
    doc="layer normalization over the last len(normalized_shape) dims",
    sample=_ln_samples,
    vjp=(_ln_rule(0), _ln_rule(1), _ln_rule(2)),
    jvp=(_ln_rule(0, True), _ln_rule(1, True), _ln_rule(2, True)))


# ---- the backward of batch norm and layer norm as one node ---------------------------------------
# Under create_graph torch records the fused backward as one node (NativeBatchNormBackward-
# Backward0, NativeLayerNormBackwardBackward0) whose outputs are the three first gradients;
# gradtool records one node per first gradient (``which``: 0 input, 1 weight, 2 bias) with
# torch's name and edges.  The forward is the plain backward formula above; its derivatives
# (third order of the norm) are those of that formula, written with backend ops: it runs on
# Tensors and the engine differentiates it (reverse mode directly; forward mode as the
# reverse mode of the reverse mode: J t is the gradient of <J^T u, t> in u).  torch's edges
# to the saved statistics stay None: gradtool recomputes them from the input.
def _as_tensors(inputs, target):
    """Inputs as Tensors (None kept); input ``target`` a leaf requiring grad when it is an
    array or a Tensor outside any graph."""
    from ..tensor import _make
    args = []
    for i, a in enumerate(inputs):
        if a is not None and not isinstance(a, Tensor):
            a = _make(np.asarray(a), None, i == target)
        elif i == target and not a.requires_grad:
            a = a.detach().requires_grad_(True)
        args.append(a)
    return args


def _engine_grad(out, wrt, cotangent, create_graph, batched=False):
    from ..graph import grad
    from ..grad_mode import enable_grad
    with enable_grad():
        (g,) = grad(out, wrt, cotangent, retain_graph=True, create_graph=create_graph,
                    allow_unused=True, is_grads_batched=batched)
    return g


def _differentiated_vjp(formula, j):
    def vjp(c, *inputs, out, **params):
        from ..grad_mode import enable_grad
        graph = isinstance(c, Tensor) or any(isinstance(a, Tensor) for a in inputs)
        args = _as_tensors(inputs, j)
        with enable_grad():
            y = formula(*args, **params)
        cot = c if isinstance(c, Tensor) else Tensor(np.asarray(c))
        g = _engine_grad(y, args[j], cot, graph, np.ndim(c) > y.ndim) \
            if y.requires_grad else None
        if g is None:      # the formula does not depend on this input: no gradient (as
            return None    # torch's None for layer norm's bias)
        return g if graph else g._data
    return vjp


def _differentiated_jvp(formula, j):
    def jvp(t, *inputs, out, **params):
        from ..grad_mode import enable_grad
        args = _as_tensors([None if a is None else B.data(a) for a in inputs], j)
        with enable_grad():
            y = formula(*args, **params)
            if not y.requires_grad:
                return np.zeros(y.shape, y._data.dtype)
            u = Tensor(np.zeros(y.shape, y._data.dtype), requires_grad=True)
            vjp_u = _engine_grad(y, args[j], u, True)
        if vjp_u is None or not vjp_u.requires_grad:
            return np.zeros(y.shape, y._data.dtype)
        jt = _engine_grad(vjp_u, u, Tensor(np.asarray(B.data(t))), False)
        return np.zeros(y.shape, y._data.dtype) if jt is None else jt._data
    return jvp


def _statistic_edge(c, *inputs, out, **params):
    """The saved mean / 1/σ of torch's node: never an input here (always a None edge)."""
    return None


def _bn_backward_formula(g, x, weight, save_mean, save_invstd, which, running_mean,
                         running_var, training, eps):
    return _bn_rule(which, plain=True)(g, x, weight, None, None, running_mean, running_var,
                                       training, eps)


def _bn_backward_samples():
    rng = _sample_rng()
    x, w = rng.standard_normal((4, 3, 2)), rng.standard_normal(3)
    g = rng.standard_normal((4, 3, 2))
    common = {"running_mean": None, "running_var": None, "training": True, "eps": 1e-5}
    fixed = dict(common, running_mean=rng.standard_normal(3),
                 running_var=rng.uniform(0.5, 2.0, 3), training=False)
    return [((g, x, w, None, None), dict(common, which=which)) for which in (0, 1, 2)] + \
        [((g[:, :, 0], x[:, :, 0], w, None, None), dict(common, which=0)),
         ((g, x, w, None, None), dict(fixed, which=0)),
         ((g, x, w, None, None), dict(fixed, which=1))]


native_batch_norm_backward = Primitive(
    "native_batch_norm_backward", "NativeBatchNormBackwardBackward0", _bn_backward_formula,
    quiet=True, input_names=("grad_out", "input", "weight", "save_mean", "save_invstd"),
    batch=batching.per_example, sample=_bn_backward_samples,
    doc="the backward of batch normalization (one first gradient per ``which``)",
    vjp=tuple(_differentiated_vjp(_bn_backward_formula, j) for j in range(3))
    + (_statistic_edge, _statistic_edge),
    jvp=tuple(_differentiated_jvp(_bn_backward_formula, j) for j in range(3)) + (None, None))


def _ln_backward_formula(g, x, mean, rstd, weight, bias, which, normalized_shape, eps):
    return _ln_rule(which, plain=True)(g, x, weight, bias, None, normalized_shape, eps)


def _ln_backward_samples():
    rng = _sample_rng()
    x, g = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    w, b = rng.standard_normal(4), rng.standard_normal(4)
    common = {"normalized_shape": (4,), "eps": 1e-5}
    return [((g, x, None, None, w, b), dict(common, which=which)) for which in (0, 1, 2)] + \
        [((g, x, None, None, rng.standard_normal((3, 4)), None),
          {"normalized_shape": (3, 4), "eps": 1e-5, "which": 0})]


native_layer_norm_backward = Primitive(
    "native_layer_norm_backward", "NativeLayerNormBackwardBackward0", _ln_backward_formula,
    quiet=True, input_names=("grad_out", "input", "mean", "rstd", "weight", "bias"),
    batch=batching.per_example, sample=_ln_backward_samples,
    doc="the backward of layer normalization (one first gradient per ``which``)",
    vjp=(_differentiated_vjp(_ln_backward_formula, 0), _differentiated_vjp(
        _ln_backward_formula, 1), _statistic_edge, _statistic_edge,
         _differentiated_vjp(_ln_backward_formula, 4),
         _differentiated_vjp(_ln_backward_formula, 5)),
    jvp=(_differentiated_jvp(_ln_backward_formula, 0), _differentiated_jvp(
        _ln_backward_formula, 1), None, None, _differentiated_jvp(_ln_backward_formula, 4),
         _differentiated_jvp(_ln_backward_formula, 5)))


# ---- trilinear (F.bilinear's one node) ----------------------------------------------------------
# out = einsum(spec, a, b, c), linear in each input; bilinear is "ni,kij,nj->nk" on (N, in1),
# (out, in1, in2), (N, in2) (torch's _trilinear, TrilinearBackward0).  The VJP of an input is
# the contraction of the cotangent with the two others, itself a trilinear with the
# cotangent in that input's place (as torch's _trilinear_backward, so its first gradients
# are TrilinearBackward0 nodes with torch's edges); a batched cotangent carries "...".
def _tri_terms(spec):
    ins, out = spec.split("->")
    return ins.split(","), out


def _tri_vjp(i):
    def rule(g, a, b, c, out, spec):
        terms, o = _tri_terms(spec)
        target = terms[i]
        if np.ndim(g) > len(o.replace("...", "")) and not o.startswith("..."):
            o, target = "..." + o, "..." + target          # a batched cotangent
        ops = [a, b, c]
        ops[i] = g
        terms[i] = o
        return _call(trilinear, tuple(ops), {"spec": ",".join(terms) + "->" + target})
    return rule


def _tri_jvp(i):
    def rule(t, a, b, c, out, spec):
        ops = [a, b, c]
        ops[i] = t
        return np.einsum(spec, *ops)
    return rule


def _tri_samples():
    return [one(normal(3, 4), normal(2, 4, 5, seed=1), normal(3, 5, seed=2),
                spec="ni,kij,nj->nk"),
            one(normal(2, 2), normal(2, 3, seed=1), normal(2, 3, seed=2),
                spec="nk,ni,nj->kij")]


trilinear = Primitive("trilinear", "TrilinearBackward0",
                      lambda a, b, c, spec: np.einsum(spec, a, b, c),
                      input_names=("i1", "i2", "i3"), doc="a product of three tensors "
                      "contracted by an einsum spec (F.bilinear's node)",
                      batch=batching.per_example, sample=_tri_samples,
                      vjp=tuple(_tri_vjp(i) for i in range(3)),
                      jvp=tuple(_tri_jvp(i) for i in range(3)))
