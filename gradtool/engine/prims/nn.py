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
from .linalg import in_dtype_of


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
                       vjp=lambda g, x, out, **p: _call(pool_scatter, (g,), _index_params(x, p)),
                       jvp=lambda t, x, out, **p: _pool_gather(t, **_index_params(x, p)))
pool_scatter = Primitive("max_pool2d_backward", "MaxPool2DWithIndicesBackwardBackward0",
                         _pool_scatter, save="none", input_names=("grad_output",),
                         out_shape=lambda gs, indices, padded, offset, in_hw:
                         tuple(gs[:-2]) + tuple(in_hw),
                         doc="gradient of max pooling: scatter to the argmax positions",
                         batch=batching.per_example,
                         sample=lambda: _pool_pair_samples(),
                         vjp=lambda u, g, out, **p: _call(pool_gather, (u,), p),
                         jvp=lambda t, g, out, **p: _pool_scatter(t, **p))
pool_gather = Primitive("max_pool2d_gather", "MaxPool2DGatherBackward0", _pool_gather,
                        save="none", input_names=("self",),
                        doc="values at max pooling's argmax positions (its JVP)",
                        batch=batching.per_example,
                        sample=lambda: _gather_samples(),
                        vjp=lambda v, u, out, **p: _call(pool_scatter, (v,), p),
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
        out.append(((g,), params))
    return out


def _gather_samples():
    return [((_sample_rng().standard_normal((2, 2) + p["in_hw"]),), p)
            for (_, p) in _pool_pair_samples()]




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
    return np.frompyfunc(math.erf, 1, 1)(x).astype(x.dtype if x.dtype.kind == "f"
                                                     else np.float64)


def _erf_vjp(g, x, out):
    # d erf(x) = 2/sqrt(pi) exp(-x^2) dx
    return g * (2.0 / math.sqrt(math.pi)) * B.exp(-(x * x))


erf = Primitive("erf", "ErfBackward0", _erf, quiet=True, input_names=("self",),
                analytic=False,   # the forward (math.erf) takes real numbers only
                doc="the error function, elementwise", batch=batching.elementwise,
                sample=lambda: [((_sample_rng().standard_normal((3, 4)),), {})],
                vjp=_erf_vjp, jvp=_erf_vjp)
