#!/usr/bin/python3
"""Golden data for the training engine's PyTorch parity test (tests/train/test_parity.c).

Usage (Debian's Python, which has torch 1.13; the pyenv `python3` on PATH does not):

    /usr/bin/python3 scripts/gen_golden_train.py [--out tests/golden/train]

Builds the cae-seed network (src/models/cae_seed.c, docs/models.md) in PyTorch at a tiny
input, batch 2 of 24x28x3: five 3x3 "valid" Conv2d (3->32 s1, 32->32 s2, 32->64 s1,
64->64 s2, 64->32 s2) with nn.PReLU(C) after the first four, and the mirrored
ConvTranspose2d decoder with the output padding cae_seed.c derives, PReLU after the first
four, the latent and the output linear. The initial weights come from nnedge's own PRNG and
initialiser (nne_train_init_params: xoshiro256** seeded by splitmix64, PyTorch's
kaiming-uniform bounds), re-implemented here bit for bit, so the golden file does not need
to hold them. Then 3 steps of torch.optim.Adam (lr 1e-3) on F.mse_loss(model(x), x).

Written to cae_seed_adam.gold (NNEGOLD1, tests/golden.h), nnedge layouts (NHWC, OHWI):
    x                  f32 [2][24][28][3]   the batch (also the target)
    losses             f32 [4]              loss before each of the 3 steps, and after
    hparams            f32 [4]              lr, beta1, beta2, eps
    ints               i32 [5]              seed, batch, height, width, steps
    init_head:<name>   f32 [<=8]            first values of each initial tensor (bit-exact init)
    init_sum:<name>    f32 [1]              sum of the initial tensor (float64, rounded)
    grad0:<name>       f32                  step-1 gradient, every SUB-th element (all if <= 64)
    final:<name>       f32                  weights after 3 steps, same subsampling
<name> is the nnedge tensor name (conv2d_1.weight, conv2d_1.prelu.slope, ...). The file
stays under 200 KB by subsampling the ~168k parameters with stride SUB = 11 (coprime to
3, 9, 32 and 64, so every channel and tap is sampled).
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_golden_ops import write_golden  # noqa: E402

SEED = 20240601
BATCH, H, W = 2, 24, 28
STEPS = 3
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8
SUB = 11
M64 = (1 << 64) - 1


# ---- nnedge's PRNG (src/train/optim.c), bit for bit ------------------------------------
class Rng:
    def __init__(self, seed):
        x = seed & M64
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            self.s.append(z ^ (z >> 31))

    @staticmethod
    def _rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & M64

    def u64(self):
        s = self.s
        result = (self._rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def uniform_range(self, n, lo, hi):
        """lo + (hi - lo) * u in float32, u = (u64 >> 40) * 2^-24, as nne_rng_uniform_range."""
        u = np.array([self.u64() >> 40 for _ in range(n)], dtype=np.float64)
        u = (u * (1.0 / 16777216.0)).astype(np.float32)
        lo, hi = np.float32(lo), np.float32(hi)
        return (lo + (hi - lo) * u).astype(np.float32)


# ---- cae-seed ----------------------------------------------------------------------------
ENC = [("conv2d_1", 3, 32, 1, True), ("conv2d_2", 32, 32, 2, True), ("conv2d_3", 32, 64, 1, True),
       ("conv2d_4", 64, 64, 2, True), ("conv2d_5", 64, 32, 2, False)]
DEC = [("conv2d_transpose_1", 32, 64, 2, True), ("conv2d_transpose_2", 64, 64, 2, True),
       ("conv2d_transpose_3", 64, 32, 1, True), ("conv2d_transpose_4", 32, 32, 2, True),
       ("conv2d_transpose_5", 32, 3, 1, False)]


def sizes(n):
    s = [n]
    for (_, _, _, st, _) in ENC:
        s.append((s[-1] - 3) // st + 1)
    return s


class Cae(nn.Module):
    def __init__(self, h, w):
        super().__init__()
        hs, ws = sizes(h), sizes(w)
        self.layers = []  # (nnedge name, module, is_transpose, prelu module or None)
        for (name, cin, cout, st, pr) in ENC:
            self._add(name, nn.Conv2d(cin, cout, 3, st), False, cout if pr else 0)
        for k, (name, cin, cout, st, pr) in enumerate(DEC):
            oph = hs[4 - k] - ((hs[5 - k] - 1) * st + 3)
            opw = ws[4 - k] - ((ws[5 - k] - 1) * st + 3)
            self._add(name, nn.ConvTranspose2d(cin, cout, 3, st, output_padding=(oph, opw)), True,
                      cout if pr else 0)

    def _add(self, name, conv, transpose, prelu_c):
        mod_name = name.replace(".", "_")
        self.add_module(mod_name, conv)
        prelu = None
        if prelu_c:
            prelu = nn.PReLU(prelu_c)
            self.add_module(mod_name + "_prelu", prelu)
        self.layers.append((name, conv, transpose, prelu))

    def forward(self, x):
        for (_, conv, _, prelu) in self.layers:
            x = conv(x)
            if prelu is not None:
                x = prelu(x)
        return x


def init_like_nnedge(model, seed):
    """nne_train_init_params: node order, weight (OHWI storage order) then bias; slopes 0.25.
    Returns {nnedge name: torch parameter, ohwi_fn} for export."""
    rng = Rng(seed)
    params = []
    with torch.no_grad():
        for (name, conv, transpose, prelu) in model.layers:
            if transpose:
                cin, cout = conv.weight.shape[0], conv.weight.shape[1]
                fan_in = cout * 9  # PyTorch: weight.size(1) * kh * kw
            else:
                cout, cin = conv.weight.shape[0], conv.weight.shape[1]
                fan_in = cin * 9
            bound = np.float32(1.0 / math.sqrt(fan_in))
            w = rng.uniform_range(cout * 9 * cin, -bound, bound).reshape(cout, 3, 3, cin)
            b = rng.uniform_range(cout, -bound, bound)
            if transpose:  # OHWI (Cout, kh, kw, Cin) -> torch (Cin, Cout, kh, kw)
                conv.weight.copy_(torch.from_numpy(w.transpose(3, 0, 1, 2).copy()))
            else:  # OHWI -> (Cout, Cin, kh, kw)
                conv.weight.copy_(torch.from_numpy(w.transpose(0, 3, 1, 2).copy()))
            conv.bias.copy_(torch.from_numpy(b))
            params.append((name + ".weight", conv.weight, transpose))
            params.append((name + ".bias", conv.bias, None))
            if prelu is not None:
                prelu.weight.fill_(0.25)
                params.append((name + ".prelu.slope", prelu.weight, None))
    return params


def to_nnedge(t, transpose):
    """A parameter (or its gradient) in nnedge's flattened storage order."""
    a = t.detach().cpu().numpy()
    if transpose is True:  # (Cin, Cout, kh, kw) -> (Cout, kh, kw, Cin)
        a = a.transpose(1, 2, 3, 0)
    elif transpose is False:  # (Cout, Cin, kh, kw) -> (Cout, kh, kw, Cin)
        a = a.transpose(0, 2, 3, 1)
    # copy: the result must not alias p.grad, which later steps overwrite in place
    return np.array(a, dtype=np.float32, copy=True).reshape(-1)


def subsample(a):
    return a if a.size <= 64 else a[::SUB].copy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                  "golden", "train"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = Cae(H, W)
    params = init_like_nnedge(model, SEED)
    arrays = []
    for (name, p, tr) in params:
        a = to_nnedge(p, tr)
        arrays.append(("init_head:" + name, a[:8].copy()))
        arrays.append(("init_sum:" + name, np.array([a.astype(np.float64).sum()], np.float32)))

    g = torch.Generator().manual_seed(SEED)
    x = torch.rand(BATCH, 3, H, W, generator=g, dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS, eps=EPS)
    losses, grad0 = [], None
    for step in range(STEPS):
        opt.zero_grad()
        y = model(x)
        assert y.shape == x.shape, y.shape
        loss = F.mse_loss(y, x)
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            grad0 = [(name, to_nnedge(p.grad, tr)) for (name, p, tr) in params]
        opt.step()
    with torch.no_grad():
        losses.append(F.mse_loss(model(x), x).item())

    arrays += [("x", x.permute(0, 2, 3, 1).contiguous().numpy()),
               ("losses", np.array(losses, np.float32)),
               ("hparams", np.array([LR, BETAS[0], BETAS[1], EPS], np.float32)),
               ("ints", np.array([SEED & 0x7FFFFFFF, BATCH, H, W, STEPS], np.int32))]
    assert SEED <= 0x7FFFFFFF
    for (name, gr) in grad0:
        arrays.append(("grad0:" + name, subsample(gr)))
    for (name, p, tr) in params:
        arrays.append(("final:" + name, subsample(to_nnedge(p, tr))))
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "cae_seed_adam.gold")
    n = write_golden(path, arrays)
    print("%s: %d bytes, losses %s" % (path, n, " ".join("%.7f" % v for v in losses)))
    assert n < 200 * 1024


if __name__ == "__main__":
    main()
