#!/usr/bin/python3
"""PyTorch peer of bench/bench_train.c: cae-seed training throughput on the CPU.

Usage (Debian's Python, which has torch; the pyenv `python3` on PATH does not):

    /usr/bin/python3 scripts/bench_train_torch.py [--batch 8] [--size 256] [--threads 1,2]
                                                  [--steps 7] [--warmup 2]

The same network as nnedge's cae-seed (the Cae module of scripts/gen_golden_train.py: five
3x3 valid Conv2d, the mirrored ConvTranspose2d decoder with cae_seed.c's output padding,
nn.PReLU(C) after the first four of each half), the same initialisation (nnedge's PRNG), the
same step: zero_grad, forward, F.mse_loss(model(x), x), backward, torch.optim.Adam(lr 1e-4)
step, on a batch of random crops (uniform [0, 1)), float32. --layout nhwc (default) keeps
model and data channels_last, which sends Conv2d and ConvTranspose2d to oneDNN (MKL-DNN);
--layout nchw is PyTorch's default layout, whose convolutions take im2col + the system
BLAS (Debian's python3-torch links generic BLAS: netlib's reference by default).
For each thread count (torch.set_num_threads) a fresh model runs the warm-up steps and then
the timed steps; the median step time gives crops/s and GFLOP/s = 3 x 2 x forward MACs /
median, counted exactly as bench_train does. Prints a Markdown table and one
`RESULT threads=T crops_per_s=X gflops=Y ms=Z` line per thread count.
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_golden_train import Cae, init_like_nnedge  # noqa: E402


def forward_macs(model, batch, h, w):
    """Conv MACs of one forward pass: output pixels x taps x Cin (Conv2d), input pixels x
    taps x Cout (ConvTranspose2d), measured with forward hooks."""
    macs = [0]

    def hook(mod, inp, out):
        kh, kw = mod.kernel_size
        if isinstance(mod, torch.nn.ConvTranspose2d):
            n, c, ih, iw = inp[0].shape
            macs[0] += n * ih * iw * c * kh * kw * mod.out_channels // mod.groups
        else:
            n, c, oh, ow = out.shape
            macs[0] += n * oh * ow * c * kh * kw * mod.in_channels // mod.groups

    hooks = [m.register_forward_hook(hook) for m in model.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    with torch.no_grad():
        model(torch.zeros(batch, 3, h, w))
    for hk in hooks:
        hk.remove()
    return macs[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--steps", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--layout", choices=["nchw", "nhwc"], default="nhwc",
                    help="nhwc = torch.channels_last (oneDNN convolutions; nchw takes "
                    "im2col + the system BLAS, netlib on Debian: much slower)")
    args = ap.parse_args()
    fmt = torch.channels_last if args.layout == "nhwc" else torch.contiguous_format
    b, s = args.batch, args.size
    g = torch.Generator().manual_seed(42)
    data = [torch.rand(b, 3, s, s, generator=g).contiguous(memory_format=fmt) for _ in range(4)]

    macs = None
    print(f"## PyTorch {torch.__version__} ({args.layout}): cae-seed, batch {b} of {s}x{s} crops, "
          "MSE, Adam\n")
    print("| threads | step ms (median) | range ms | crops/s | GFLOP/s | loss first -> last |")
    print("|---|---|---|---|---|---|")
    results = []
    for nt in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(nt)
        model = Cae(s, s)
        init_like_nnedge(model, 1)
        model = model.to(memory_format=fmt)
        if macs is None:
            macs = forward_macs(model, b, s, s)
        flop = 3 * 2 * macs
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        times, losses = [], []
        for step in range(args.warmup + args.steps):
            x = data[step % len(data)]
            t0 = time.perf_counter()
            opt.zero_grad()
            loss = F.mse_loss(model(x), x)
            loss.backward()
            opt.step()
            lv = loss.item()
            t1 = time.perf_counter()
            losses.append(lv)
            if step >= args.warmup:
                times.append(t1 - t0)
        med = statistics.median(times)
        print(f"| {nt} | {med * 1e3:.1f} | {min(times) * 1e3:.1f}-{max(times) * 1e3:.1f} | "
              f"{b / med:.2f} | {flop / med * 1e-9:.1f} | {losses[0]:.4f} -> {losses[-1]:.4f} |")
        results.append(f"RESULT threads={nt} crops_per_s={b / med:.3f} "
                       f"gflops={flop / med * 1e-9:.2f} ms={med * 1e3:.2f}")
    print(f"\nForward: {macs * 1e-9:.3f} GMAC per step\n")
    for r in results:
        print(r)


if __name__ == "__main__":
    main()
