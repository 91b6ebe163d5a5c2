#!/usr/bin/python3
"""Generate golden outputs for the f32 reference kernels (src/ops/) with PyTorch.

Usage (Debian's Python, which has torch; the pyenv `python3` on PATH does not):

    /usr/bin/python3 scripts/gen_golden_ops.py [--out tests/golden/ops]

For every case it draws small random inputs from a seeded generator, evaluates the op with
torch.nn.functional in float32 on the CPU (an implementation independent of ours), converts
tensors to nnedge layouts (activations NHWC, conv weights OHWI) and writes one file
<op>_<NNN>.gold in the NNEGOLD1 format (tests/golden/README.md, tests/golden.h), plus
index.txt listing the files in order. Output is deterministic: fixed seeds, one torch
thread, files rewritten byte for byte identically on the same machine.

Every case file holds at least:
    op    u8   the op name (dispatch key of tests/ops/test_ops_golden.c)
    desc  u8   a one-line description for failure messages
    y     f32  the expected output, nnedge layout
plus the op's inputs and int32/f32 parameters (see the make_* functions below).
"""
import argparse
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

MAGIC = b"NNEGOLD1"
DT_F32, DT_I32, DT_U8 = 0, 1, 2


# ---------------------------------------------------------------------------------------
# NNEGOLD1 writer (reusable: `from gen_golden_ops import write_golden`).
# Layout, all integers little-endian:
#   magic "NNEGOLD1" | u32 count | count x { u32 name_len | name (ASCII, no NUL) |
#   u32 dtype (0 f32, 1 i32, 2 u8) | u32 ndim | i32 dims[ndim] | data (prod(dims) elements,
#   LE, no padding) }
def write_golden(path, arrays):
    """arrays: list of (name, value); value is a numpy array (float32/int32/uint8), a str
    (stored as u8) or a python int/float (stored as a 1-element i32/f32 array)."""
    out = bytearray(MAGIC)
    out += struct.pack("<I", len(arrays))
    seen = set()
    for name, v in arrays:
        assert name not in seen, name
        seen.add(name)
        if isinstance(v, str):
            v = np.frombuffer(v.encode("ascii"), dtype=np.uint8)
        elif isinstance(v, bool) or isinstance(v, int):
            v = np.array([int(v)], dtype=np.int32)
        elif isinstance(v, float):
            v = np.array([v], dtype=np.float32)
        elif isinstance(v, torch.Tensor):
            v = v.detach().cpu().numpy()
        v = np.ascontiguousarray(v)
        dt = {np.dtype(np.float32): DT_F32, np.dtype(np.int32): DT_I32,
              np.dtype(np.uint8): DT_U8}[v.dtype]
        nb = name.encode("ascii")
        out += struct.pack("<I", len(nb)) + nb
        out += struct.pack("<II", dt, v.ndim)
        out += struct.pack("<%di" % v.ndim, *v.shape)
        out += v.astype(v.dtype.newbyteorder("<"), copy=False).tobytes()
    with open(path, "wb") as f:
        f.write(bytes(out))
    return len(out)


# ---------------------------------------------------------------------------------------
# Helpers: seeded inputs and layout conversion.
class Rng:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def u(self, *shape, lo=-1.0, hi=1.0):
        return torch.rand(*shape, generator=self.g, dtype=torch.float32) * (hi - lo) + lo


def nchw_to_nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous()


def conv_w_to_ohwi(w):
    """torch Conv2d weight (Cout, Cin/g, kh, kw) -> OHWI (Cout, kh, kw, Cin/g)."""
    return w.permute(0, 2, 3, 1).contiguous()


def tconv_w_to_ohwi(w, groups):
    """torch ConvTranspose2d weight (Cin, Cout/g, kh, kw) -> OHWI (Cout, kh, kw, Cin/g):
    out[g*ocg + j][ky][kx][c] = w[g*icg + c][j][ky][kx]."""
    cin, ocg, kh, kw = w.shape
    icg = cin // groups
    w = w.reshape(groups, icg, ocg, kh, kw)        # [g][c][j][ky][kx]
    w = w.permute(0, 2, 3, 4, 1)                   # [g][j][ky][kx][c]
    return w.reshape(groups * ocg, kh, kw, icg).contiguous()


# ---------------------------------------------------------------------------------------
# Case builders. Each returns (op, desc, arrays).
def make_conv2d(seed, n, ih, iw, ic, oc, kh, kw, stride=(1, 1), dil=(1, 1),
                pad=(0, 0, 0, 0), groups=1, bias=True):
    r = Rng(seed)
    pt, pl, pb, pr = pad
    x = r.u(n, ic, ih, iw)
    fan_in = (ic // groups) * kh * kw
    w = r.u(oc, ic // groups, kh, kw) / fan_in ** 0.5
    b = r.u(oc) if bias else None
    # Asymmetric padding: explicit zero pad, then a 'valid' convolution.
    y = F.conv2d(F.pad(x, (pl, pr, pt, pb)), w, b, stride=stride, dilation=dil, groups=groups)
    desc = ("conv2d n=%d %dx%dx%d -> oc=%d k=%dx%d s=%s d=%s pad(t,l,b,r)=%s g=%d bias=%d"
            % (n, ih, iw, ic, oc, kh, kw, stride, dil, pad, groups, bias))
    arrays = [("x", nchw_to_nhwc(x)), ("w", conv_w_to_ohwi(w))]
    if bias:
        arrays.append(("b", b))
    arrays += [("stride", np.array(stride, np.int32)), ("dilation", np.array(dil, np.int32)),
               ("pad", np.array(pad, np.int32)), ("groups", groups), ("y", nchw_to_nhwc(y))]
    return "conv2d", desc, arrays


def make_conv_transpose2d(seed, n, ih, iw, ic, oc, kh, kw, stride=(1, 1), dil=(1, 1),
                          pad=(0, 0), out_pad=(0, 0), groups=1, bias=True):
    """Symmetric cropping `pad` = (ph, pw) as torch supports; stored as (t, l, b, r)."""
    r = Rng(seed)
    x = r.u(n, ic, ih, iw)
    fan = (ic // groups) * kh * kw
    w = r.u(ic, oc // groups, kh, kw) / fan ** 0.5
    b = r.u(oc) if bias else None
    y = F.conv_transpose2d(x, w, b, stride=stride, padding=pad, output_padding=out_pad,
                           groups=groups, dilation=dil)
    pad4 = (pad[0], pad[1], pad[0], pad[1])
    desc = ("conv_transpose2d n=%d %dx%dx%d -> oc=%d k=%dx%d s=%s d=%s pad=%s out_pad=%s "
            "g=%d bias=%d" % (n, ih, iw, ic, oc, kh, kw, stride, dil, pad, out_pad, groups,
                              bias))
    arrays = [("x", nchw_to_nhwc(x)), ("w", tconv_w_to_ohwi(w, groups))]
    if bias:
        arrays.append(("b", b))
    arrays += [("stride", np.array(stride, np.int32)), ("dilation", np.array(dil, np.int32)),
               ("pad", np.array(pad4, np.int32)), ("out_pad", np.array(out_pad, np.int32)),
               ("groups", groups), ("y", nchw_to_nhwc(y))]
    return "conv_transpose2d", desc, arrays


def make_dense(seed, n, fin, fout, bias=True):
    r = Rng(seed)
    x = r.u(n, fin)
    w = r.u(fout, fin) / fin ** 0.5
    b = r.u(fout) if bias else None
    y = F.linear(x, w, b)
    arrays = [("x", x), ("w", w)] + ([("b", b)] if bias else []) + [("y", y)]
    return "dense", "dense n=%d in=%d out=%d bias=%d" % (n, fin, fout, bias), arrays


def make_pool(seed, kind, n, ih, iw, c, kh, kw, stride, pad=(0, 0, 0, 0), cip=1):
    r = Rng(seed)
    pt, pl, pb, pr = pad
    x = r.u(n, c, ih, iw)
    k, s = (kh, kw), stride
    if kind == "max":
        # Padding never wins: pad with -inf, then an unpadded max pool.
        y = F.max_pool2d(F.pad(x, (pl, pr, pt, pb), value=float("-inf")), k, s)
    elif cip:
        y = F.avg_pool2d(F.pad(x, (pl, pr, pt, pb)), k, s)      # zeros counted, / kh*kw
    else:
        # Divide the window sum by the number of in-image taps: ratio of two zero-padded
        # average pools (the kh*kw divisors cancel).
        ones = torch.ones_like(x)
        num = F.avg_pool2d(F.pad(x, (pl, pr, pt, pb)), k, s)
        den = F.avg_pool2d(F.pad(ones, (pl, pr, pt, pb)), k, s)
        y = num / den
        if pt == pb and pl == pr:
            # Symmetric: cross-check against torch's own count_include_pad=False.
            y2 = F.avg_pool2d(x, k, s, padding=(pt, pl), count_include_pad=False)
            assert torch.allclose(y, y2, atol=1e-6), "avg pool construction"
            y = y2
    if kind == "max" and pt == pb and pl == pr:
        y2 = F.max_pool2d(x, k, s, padding=(pt, pl))
        assert torch.equal(y, y2)
    op = "maxpool2d" if kind == "max" else "avgpool2d"
    desc = ("%s n=%d %dx%dx%d k=%dx%d s=%s pad(t,l,b,r)=%s count_include_pad=%d"
            % (op, n, ih, iw, c, kh, kw, stride, pad, cip))
    arrays = [("x", nchw_to_nhwc(x)), ("kernel", np.array(k, np.int32)),
              ("stride", np.array(s, np.int32)), ("pad", np.array(pad, np.int32)),
              ("count_include_pad", cip), ("y", nchw_to_nhwc(y))]
    return op, desc, arrays


def make_global_avgpool(seed, n, h, w, c):
    x = Rng(seed).u(n, c, h, w)
    y = F.adaptive_avg_pool2d(x, 1)
    return ("global_avgpool", "global_avgpool n=%d %dx%dx%d" % (n, h, w, c),
            [("x", nchw_to_nhwc(x)), ("y", nchw_to_nhwc(y))])


def make_act(seed, op, shape, scale=4.0):
    r = Rng(seed)
    x = r.u(*shape, lo=-scale, hi=scale)
    arrays = [("x", x)]
    if op == "relu":
        y = F.relu(x)
    elif op == "relu6":
        y = F.relu6(x)
    elif op == "leaky_relu":
        alpha = 0.1 + 0.2 * (seed % 3)     # 0.1, 0.3, 0.5, exact in the file as f32
        y = F.leaky_relu(x, negative_slope=float(np.float32(alpha)))
        arrays.append(("alpha", float(np.float32(alpha))))
    elif op == "sigmoid":
        y = torch.sigmoid(x)
    elif op == "tanh":
        y = torch.tanh(x)
    elif op == "hardswish":
        y = F.hardswish(x)
    else:
        raise ValueError(op)
    arrays.append(("y", y))
    return op, "%s shape=%s range=+-%g" % (op, list(shape), scale), arrays


def make_prelu(seed, n, h, w, c, shared):
    r = Rng(seed)
    x = r.u(n, c, h, w, lo=-3, hi=3)
    slope = r.u(1 if shared else c, lo=-0.5, hi=0.8)
    y = F.prelu(x, slope)
    return ("prelu", "prelu n=%d %dx%dx%d n_slope=%d" % (n, h, w, c, slope.numel()),
            [("x", nchw_to_nhwc(x)), ("slope", slope), ("y", nchw_to_nhwc(y))])


def make_gdn(seed, n, h, w, c, inverse):
    r = Rng(seed)
    x = r.u(n, c, h, w, lo=-2, hi=2)
    beta = r.u(c, lo=0.5, hi=1.5)
    # Non-negative, non-symmetric gamma (row i = output channel), as after training.
    gamma = r.u(c, c, lo=0.0, hi=0.2) + 0.1 * torch.eye(c)
    norm = F.conv2d(x * x, gamma.reshape(c, c, 1, 1), beta)
    y = x * torch.sqrt(norm) if inverse else x * torch.rsqrt(norm)
    op = "igdn" if inverse else "gdn"
    return (op, "%s n=%d %dx%dx%d" % (op, n, h, w, c),
            [("x", nchw_to_nhwc(x)), ("beta", beta), ("gamma", gamma),
             ("y", nchw_to_nhwc(y))])


def make_batchnorm(seed, n, h, w, c, eps):
    r = Rng(seed)
    x = r.u(n, c, h, w, lo=-3, hi=3)
    mean, var = r.u(c), r.u(c, lo=0.05, hi=2.0)
    gamma, beta = r.u(c, lo=-2, hi=2), r.u(c)
    y = F.batch_norm(x, mean, var, gamma, beta, training=False, eps=eps)
    return ("batchnorm", "batchnorm n=%d %dx%dx%d eps=%g" % (n, h, w, c, eps),
            [("x", nchw_to_nhwc(x)), ("mean", mean), ("var", var), ("gamma", gamma),
             ("beta", beta), ("eps", float(np.float32(eps))), ("y", nchw_to_nhwc(y))])


def make_add(seed, shape):
    r = Rng(seed)
    a, b = r.u(*shape, lo=-4, hi=4), r.u(*shape, lo=-4, hi=4)
    return "add", "add shape=%s" % list(shape), [("a", a), ("b", b), ("y", torch.add(a, b))]


def make_concat(seed, n, h, w, chans, axis):
    """NHWC tensors concatenated along `axis` (3 = channels, 1 = height); the inputs
    differ only along that axis: chans[k] is their extent there."""
    r = Rng(seed)
    xs = []
    for e in chans:
        shape = [n, h, w, e] if axis == 3 else [n, e, w, h]   # h doubles as channels
        xs.append(r.u(*shape))
    y = torch.cat(xs, dim=axis)
    arrays = [("x%d" % k, t) for k, t in enumerate(xs)]
    arrays += [("n_inputs", len(xs)), ("axis", axis), ("y", y)]
    return "concat", "concat NHWC axis=%d extents=%s" % (axis, chans), arrays


def make_upsample(seed, n, ih, iw, c, sh, sw, mode):
    x = Rng(seed).u(n, c, ih, iw)
    if mode == "nearest":
        y = F.interpolate(x, scale_factor=(sh, sw), mode="nearest")
    else:
        y = F.interpolate(x, scale_factor=(sh, sw), mode="bilinear", align_corners=False)
    assert y.shape[2:] == (ih * sh, iw * sw)
    return ("upsample", "upsample %s n=%d %dx%dx%d x(%d,%d)" % (mode, n, ih, iw, c, sh, sw),
            [("x", nchw_to_nhwc(x)), ("scale", np.array((sh, sw), np.int32)),
             ("mode", 0 if mode == "nearest" else 1), ("y", nchw_to_nhwc(y))])


def make_softmax(seed, shape, scale):
    x = Rng(seed).u(*shape, lo=-scale, hi=scale)
    return ("softmax", "softmax shape=%s range=+-%g" % (list(shape), scale),
            [("x", x), ("y", F.softmax(x, dim=-1))])


# ---------------------------------------------------------------------------------------
def cases():
    c = []
    # conv2d: (n, ih, iw, ic, oc, kh, kw, stride, dil, pad(t,l,b,r), groups, bias)
    conv = [
        (1, 5, 5, 1, 1, 3, 3, (1, 1), (1, 1), (0, 0, 0, 0), 1, True),
        (1, 9, 11, 5, 7, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), 1, True),
        (2, 8, 7, 3, 6, 3, 3, (2, 2), (1, 1), (1, 1, 1, 1), 1, True),
        (1, 13, 10, 4, 5, 5, 5, (2, 2), (1, 1), (2, 2, 2, 2), 1, False),
        (1, 12, 12, 6, 9, 3, 3, (3, 3), (1, 1), (1, 0, 2, 1), 1, True),
        (1, 11, 9, 3, 4, 3, 3, (1, 1), (2, 2), (2, 2, 2, 2), 1, True),
        (1, 10, 13, 4, 6, 3, 2, (2, 1), (2, 1), (0, 1, 3, 0), 2, True),
        (1, 9, 9, 6, 6, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), 6, True),     # depthwise
        (2, 10, 7, 5, 10, 3, 3, (2, 2), (1, 1), (0, 0, 1, 1), 5, True),   # depthwise x2
        (1, 14, 14, 3, 17, 5, 5, (2, 2), (1, 1), (2, 2, 1, 1), 1, True),  # TF 'same' s2
        (1, 7, 8, 19, 13, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), 1, True),   # 1x1
        (1, 8, 9, 12, 9, 1, 1, (2, 3), (1, 1), (0, 0, 0, 0), 3, True),    # strided 1x1 g3
        (1, 6, 15, 8, 4, 1, 7, (1, 2), (1, 1), (0, 3, 0, 3), 2, False),   # 1x7
        (1, 15, 6, 4, 4, 7, 1, (2, 1), (1, 1), (3, 0, 3, 0), 1, True),    # 7x1
        (1, 4, 4, 2, 3, 4, 4, (1, 1), (1, 1), (0, 0, 0, 0), 1, True),     # kernel == image
        (1, 7, 9, 17, 18, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), 1, True),   # > 16 channels
        (1, 12, 11, 16, 8, 5, 5, (2, 2), (2, 2), (4, 4, 4, 4), 4, True),
        (1, 7, 9, 3, 2, 2, 3, (3, 2), (3, 2), (3, 1, 0, 2), 1, True),
        (3, 5, 6, 4, 4, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), 2, True),
    ]
    for i, p in enumerate(conv):
        n, ih, iw, ic, oc, kh, kw, s, d, pad, g, b = p
        c.append(make_conv2d(1000 + i, n, ih, iw, ic, oc, kh, kw, s, d, pad, g, b))

    # conv_transpose2d: (n, ih, iw, ic, oc, kh, kw, stride, dil, pad, out_pad, groups, bias)
    tconv = [
        (1, 4, 4, 1, 1, 3, 3, (1, 1), (1, 1), (0, 0), (0, 0), 1, True),
        (1, 5, 6, 4, 3, 3, 3, (2, 2), (1, 1), (1, 1), (1, 1), 1, True),
        (2, 4, 5, 3, 5, 5, 5, (2, 2), (1, 1), (2, 2), (1, 1), 1, True),   # Balle synth
        (1, 3, 4, 6, 4, 4, 4, (2, 2), (1, 1), (1, 1), (0, 0), 2, False),
        (1, 4, 3, 5, 7, 3, 3, (3, 3), (1, 1), (0, 1), (2, 1), 1, True),
        (1, 5, 5, 4, 4, 3, 3, (1, 1), (2, 2), (2, 2), (0, 0), 1, True),
        (1, 4, 6, 6, 6, 3, 3, (2, 2), (1, 1), (1, 1), (1, 1), 6, True),   # depthwise
        (1, 3, 5, 8, 12, 2, 3, (2, 3), (2, 1), (1, 1), (1, 2), 4, True),
        (1, 6, 4, 3, 2, 1, 1, (2, 2), (1, 1), (0, 0), (1, 0), 1, True),   # 1x1 s2
        (1, 5, 5, 17, 9, 3, 3, (1, 1), (1, 1), (1, 1), (0, 0), 1, True),
        (3, 3, 3, 2, 4, 3, 3, (2, 2), (1, 1), (0, 0), (0, 0), 2, True),
        (1, 4, 4, 4, 2, 5, 3, (2, 1), (1, 1), (2, 1), (1, 0), 1, False),
    ]
    for i, p in enumerate(tconv):
        n, ih, iw, ic, oc, kh, kw, s, d, pad, op, g, b = p
        c.append(make_conv_transpose2d(2000 + i, n, ih, iw, ic, oc, kh, kw, s, d, pad, op, g,
                                       b))

    for i, (n, fi, fo, b) in enumerate([(1, 1, 1, True), (1, 17, 5, True), (3, 33, 10, False),
                                        (2, 64, 19, True), (4, 7, 40, True)]):
        c.append(make_dense(3000 + i, n, fi, fo, b))

    # pooling: (kind, n, ih, iw, c, kh, kw, stride, pad(t,l,b,r), count_include_pad)
    pools = [
        ("max", 1, 8, 8, 3, 2, 2, (2, 2), (0, 0, 0, 0), 1),
        ("max", 2, 9, 7, 5, 3, 3, (2, 2), (1, 1, 1, 1), 1),
        ("max", 1, 10, 11, 4, 3, 2, (3, 1), (1, 0, 2, 1), 1),
        ("max", 1, 7, 7, 17, 3, 3, (1, 1), (1, 1, 1, 1), 1),
        ("max", 1, 6, 9, 2, 4, 4, (2, 3), (2, 1, 3, 2), 1),
        ("avg", 1, 8, 8, 3, 2, 2, (2, 2), (0, 0, 0, 0), 1),
        ("avg", 2, 9, 7, 5, 3, 3, (2, 2), (1, 1, 1, 1), 1),
        ("avg", 2, 9, 7, 5, 3, 3, (2, 2), (1, 1, 1, 1), 0),
        ("avg", 1, 10, 11, 4, 3, 2, (3, 1), (1, 0, 2, 1), 1),
        ("avg", 1, 10, 11, 4, 3, 2, (3, 1), (1, 0, 2, 1), 0),
        ("avg", 1, 7, 7, 17, 3, 3, (1, 1), (1, 1, 1, 1), 0),
        ("avg", 1, 6, 9, 2, 4, 4, (2, 3), (2, 1, 3, 2), 0),
        ("avg", 1, 5, 13, 3, 5, 5, (1, 2), (2, 2, 2, 2), 1),
    ]
    for i, (k, n, ih, iw, ch, kh, kw, s, pad, cip) in enumerate(pools):
        c.append(make_pool(4000 + i, k, n, ih, iw, ch, kh, kw, s, pad, cip))
    for i, (n, h, w, ch) in enumerate([(1, 1, 1, 3), (2, 7, 5, 9), (1, 11, 13, 17)]):
        c.append(make_global_avgpool(4100 + i, n, h, w, ch))

    seed = 5000
    for op in ("relu", "relu6", "leaky_relu", "sigmoid", "tanh", "hardswish"):
        for shape, scale in (((2, 5, 7, 3), 8.0), ((1, 333), 20.0), ((3, 4, 4, 17), 4.0)):
            c.append(make_act(seed, op, shape, scale))
            seed += 1
    for i, (n, h, w, ch, sh) in enumerate([(1, 5, 5, 7, False), (2, 3, 4, 5, True),
                                           (1, 4, 6, 17, False)]):
        c.append(make_prelu(5100 + i, n, h, w, ch, sh))

    for i, (n, h, w, ch) in enumerate([(1, 4, 5, 3), (2, 3, 3, 8), (1, 5, 4, 19)]):
        c.append(make_gdn(6000 + i, n, h, w, ch, False))
        c.append(make_gdn(6100 + i, n, h, w, ch, True))
    for i, (n, h, w, ch, eps) in enumerate([(1, 4, 5, 3, 1e-5), (2, 3, 3, 17, 1e-3)]):
        c.append(make_batchnorm(6200 + i, n, h, w, ch, eps))

    c.append(make_add(7000, (1, 1)))
    c.append(make_add(7001, (2, 5, 7, 9)))
    c.append(make_concat(7100, 1, 4, 5, (3, 5), 3))
    c.append(make_concat(7101, 2, 3, 3, (1, 16, 7), 3))
    c.append(make_concat(7102, 2, 3, 4, (2, 5), 1))

    ups = [(1, 3, 4, 2, 2, 2, "nearest"), (2, 5, 3, 3, 3, 2, "nearest"),
           (1, 3, 4, 2, 2, 2, "bilinear"), (2, 5, 3, 3, 3, 2, "bilinear"),
           (1, 3, 3, 17, 4, 4, "bilinear"), (1, 1, 3, 2, 2, 3, "bilinear"),
           (1, 6, 5, 1, 1, 2, "bilinear")]
    for i, (n, ih, iw, ch, sh, sw, mode) in enumerate(ups):
        c.append(make_upsample(7200 + i, n, ih, iw, ch, sh, sw, mode))

    for i, (shape, scale) in enumerate([((1, 1), 1.0), ((4, 10), 3.0), ((2, 3, 17), 30.0),
                                        ((5, 100), 80.0)]):
        c.append(make_softmax(7300 + i, shape, scale))
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--out", default=os.path.join(root, "tests", "golden", "ops"))
    args = ap.parse_args()
    torch.set_num_threads(1)   # fixed reduction order -> byte-identical files
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    for f in os.listdir(args.out):             # drop stale cases
        if f.endswith(".gold"):
            os.remove(os.path.join(args.out, f))
    per_op, names, total = {}, [], 0
    for op, desc, arrays in cases():
        k = per_op.get(op, 0)
        per_op[op] = k + 1
        name = "%s_%03d.gold" % (op, k)
        total += write_golden(os.path.join(args.out, name),
                              [("op", op), ("desc", desc)] + arrays)
        names.append(name)
    with open(os.path.join(args.out, "index.txt"), "w") as f:
        f.write("# Generated by scripts/gen_golden_ops.py; one case file per line.\n")
        f.write("\n".join(names) + "\n")
    print("%d cases, %d bytes, torch %s: %s" % (len(names), total, torch.__version__,
          ", ".join("%s %d" % kv for kv in sorted(per_op.items()))), file=sys.stderr)


if __name__ == "__main__":
    main()
