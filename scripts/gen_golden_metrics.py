#!/usr/bin/python3
"""Generate the golden image pairs and reference metric values for tests/metrics.

Run with Debian's Python (it has numpy, scipy, scikit-image, Pillow and torch):

    /usr/bin/python3 scripts/gen_golden_metrics.py [--shared ../shared] [--out tests/golden/metrics]

Writes <out>/pair<N>_{ref,dist}.png and <out>/metrics_golden.txt. Deterministic: fixed
crops of fixed training photos (never Kodak, which is test data), fixed seeds, and
Pillow's JPEG encoder at fixed qualities.

Reference values, computed independently of nnedge's C code:
  * MSE, PSNR: scikit-image (mean_squared_error, peak_signal_noise_ratio(data_range=255)),
    over all samples of all channels together (= CompressAI's psnr).
  * SSIM: scikit-image structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=-1). skimage filters with
    reflect padding and then crops (win_size - 1) // 2 = 5 pixels from every border before
    taking the mean, which equals "valid" filtering; checked below against a direct valid
    2-D convolution.
  * MS-SSIM: the NumPy/SciPy implementation below, written from the definition in
    docs/metrics.md (pytorch_msssim's conventions), cross-checked against a float64 torch
    implementation built on torch.nn.functional.avg_pool2d (whose odd-size padding is the
    subtle part).
"""
import argparse
import os
import sys

import numpy as np
import PIL
from PIL import Image
from scipy import ndimage, signal
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

TAPS = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03
L = 255.0
WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])


def gaussian_1d():
    d = np.arange(TAPS, dtype=np.float64) - (TAPS - 1) / 2
    g = np.exp(-(d ** 2) / (2 * SIGMA ** 2))
    return g / g.sum()


def ssim_cs_plane(x, y):
    """Mean SSIM and mean contrast-structure of two 2-D float64 planes, valid filtering,
    done as a full (non-separable) 2-D convolution with the outer-product window."""
    g = gaussian_1d()
    win = np.outer(g, g)

    def filt(a):
        return signal.convolve2d(a, win, mode="valid")  # symmetric window: conv == corr

    c1, c2 = (K1 * L) ** 2, (K2 * L) ** 2
    mx, my = filt(x), filt(y)
    vx = filt(x * x) - mx * mx
    vy = filt(y * y) - my * my
    vxy = filt(x * y) - mx * my
    cs = (2 * vxy + c2) / (vx + vy + c2)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return float(np.mean(lum * cs)), float(np.mean(cs))


def avg_pool_2x2(a):
    """F.avg_pool2d(kernel_size=2, stride=2, padding=[h % 2, w % 2], count_include_pad=True):
    an odd dimension gets one zero on each side; output n = floor((size + 2p - 2) / 2) + 1;
    each output is the sum of its 2x2 window (pads included) divided by 4."""
    h, w = a.shape
    ph, pw = h % 2, w % 2
    p = np.pad(a, ((ph, ph), (pw, pw)), mode="constant")
    oh = (h + 2 * ph - 2) // 2 + 1
    ow = (w + 2 * pw - 2) // 2 + 1
    p = p[: 2 * oh, : 2 * ow]
    return p.reshape(oh, 2, ow, 2).sum(axis=(1, 3)) / 4.0


def ms_ssim_numpy(a, b):
    """MS-SSIM of two HxW or HxWxC uint8 images: per channel
    prod_{s<5} relu(cs_s)^w_s * relu(ssim_5)^w_5, then mean over channels."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    assert min(a.shape[:2]) > (TAPS - 1) * 2 ** 4, "too small for MS-SSIM"
    vals = []
    for c in range(a.shape[2]):
        x, y = a[..., c], b[..., c]
        val = 1.0
        for s in range(len(WEIGHTS)):
            ssim, cs = ssim_cs_plane(x, y)
            if s < len(WEIGHTS) - 1:
                val *= max(cs, 0.0) ** WEIGHTS[s]
                x, y = avg_pool_2x2(x), avg_pool_2x2(y)
            else:
                val *= max(ssim, 0.0) ** WEIGHTS[s]
        vals.append(val)
    return float(np.mean(vals))


def ssim_numpy(a, b):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    return float(np.mean([ssim_cs_plane(a[..., c], b[..., c])[0] for c in range(a.shape[2])]))


def ms_ssim_torch(a, b):
    """Cross-check with torch ops (float64): separable conv2d + F.avg_pool2d."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(a.astype(np.float64))
    y = torch.from_numpy(b.astype(np.float64))
    if x.dim() == 2:
        x, y = x[..., None], y[..., None]
    x = x.permute(2, 0, 1)[None]  # (1, C, H, W)
    y = y.permute(2, 0, 1)[None]
    ch = x.shape[1]
    g = torch.from_numpy(gaussian_1d())
    wh = g.view(1, 1, 1, TAPS).repeat(ch, 1, 1, 1)
    wv = g.view(1, 1, TAPS, 1).repeat(ch, 1, 1, 1)

    def filt(t):
        return F.conv2d(F.conv2d(t, wh, groups=ch), wv, groups=ch)

    c1, c2 = (K1 * L) ** 2, (K2 * L) ** 2
    mcs = []
    for s in range(len(WEIGHTS)):
        mx, my = filt(x), filt(y)
        vx = filt(x * x) - mx * mx
        vy = filt(y * y) - my * my
        vxy = filt(x * y) - mx * my
        cs_map = (2 * vxy + c2) / (vx + vy + c2)
        ssim_map = (2 * mx * my + c1) / (mx * mx + my * my + c1) * cs_map
        ssim_c = ssim_map.flatten(2).mean(-1)
        cs_c = cs_map.flatten(2).mean(-1)
        if s < len(WEIGHTS) - 1:
            mcs.append(torch.relu(cs_c))
            pad = [d % 2 for d in x.shape[2:]]
            x = F.avg_pool2d(x, kernel_size=2, padding=pad)
            y = F.avg_pool2d(y, kernel_size=2, padding=pad)
    stack = torch.stack(mcs + [torch.relu(ssim_c)], dim=0)
    w = torch.from_numpy(WEIGHTS).view(-1, 1, 1)
    return float(torch.prod(stack ** w, dim=0).mean())


# ---------------------------------------------------------------------------------------
# The pairs: (name, source photo, crop box (left, top, width, height), mode, distortion).


def jpeg(q):
    def f(img, rng):
        import io

        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=q)
        buf.seek(0)
        out = Image.open(buf)
        out.load()
        return out.convert(img.mode)

    f.desc = "Pillow JPEG quality %d" % q
    return f


def noise(sigma):
    def f(img, rng):
        a = np.asarray(img).astype(np.float64)
        a = a + rng.normal(0.0, sigma, a.shape)
        return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), img.mode)

    f.desc = "Gaussian noise sigma %g, rounded and clipped" % sigma
    return f


def blur(sigma):
    def f(img, rng):
        a = np.asarray(img).astype(np.float64)
        s = (sigma, sigma, 0) if a.ndim == 3 else (sigma, sigma)
        a = ndimage.gaussian_filter(a, s, mode="reflect")
        return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), img.mode)

    f.desc = "Gaussian blur sigma %g" % sigma
    return f


def shift(delta):
    def f(img, rng):
        a = np.asarray(img).astype(np.int32) + delta
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), img.mode)

    f.desc = "constant shift %+d, clipped" % delta
    return f


def invert_channel(c):
    def f(img, rng):
        a = np.array(img)
        a[..., c] = 255 - a[..., c]
        return Image.fromarray(a, img.mode)

    f.desc = "channel %d inverted (negative cs: relu)" % c
    return f


PAIRS = [
    # (source, (left, top, w, h), mode, distortion)
    ("wikipedia/001.png", (400, 300, 256, 192), "RGB", jpeg(20)),
    ("bsds500/100007.jpg", (100, 80, 200, 161), "RGB", noise(12.0)),
    ("urban100-half/img_001.png", (150, 60, 201, 163), "RGB", blur(1.2)),
    ("wikipedia/002.png", (500, 200, 256, 256), "L", jpeg(50)),
    ("wikipedia/003.png", (700, 300, 192, 176), "RGB", shift(12)),
    ("bsds500/100039.jpg", (40, 30, 175, 171), "L", noise(60.0)),
    ("wikipedia/001.png", (800, 500, 48, 40), "RGB", jpeg(5)),  # too small for MS-SSIM
    ("sun80/abbey_sun_asztnlqhlrvirneh.jpg", (300, 200, 161, 161), "RGB", invert_channel(1)),
]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.path.join(here, "..", "..", "shared"))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "golden", "metrics"))
    ap.add_argument("--no-torch", action="store_true", help="skip the torch cross-check")
    args = ap.parse_args()
    train = os.path.join(args.shared, "data", "train")
    os.makedirs(args.out, exist_ok=True)

    lines = [
        "# nnedge metrics goldens, generated by scripts/gen_golden_metrics.py",
        "# numpy %s, scipy %s, scikit-image %s, Pillow %s"
        % (np.__version__, __import__("scipy").__version__,
           __import__("skimage").__version__, PIL.__version__),
        "# mse, psnr: skimage.metrics; ssim: skimage structural_similarity(gaussian_weights,"
        " sigma 1.5, population covariance, data_range 255);",
        "# ms_ssim: NumPy implementation of pytorch_msssim's definition (nan: too small).",
        "# ref dist width height channels mse psnr ssim ms_ssim",
    ]
    worst = {"ssim skimage vs numpy": 0.0, "ms-ssim numpy vs torch": 0.0}
    for i, (src, (left, top, w, h), mode, distort) in enumerate(PAIRS):
        img = Image.open(os.path.join(train, src)).convert("RGB")
        img = img.crop((left, top, left + w, top + h)).convert(mode)
        rng = np.random.default_rng(1000 + i)
        dist = distort(img, rng)
        ref_name, dist_name = "pair%d_ref.png" % i, "pair%d_dist.png" % i
        img.save(os.path.join(args.out, ref_name), optimize=True)
        dist.save(os.path.join(args.out, dist_name), optimize=True)
        # Re-read what was written, so the values describe the files exactly.
        a = np.asarray(Image.open(os.path.join(args.out, ref_name)))
        b = np.asarray(Image.open(os.path.join(args.out, dist_name)))
        assert a.shape == b.shape and a.dtype == np.uint8
        channels = 1 if a.ndim == 2 else a.shape[2]

        mse = float(mean_squared_error(a, b))
        psnr = float(peak_signal_noise_ratio(a, b, data_range=255))
        ssim = float(structural_similarity(
            a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            data_range=255, channel_axis=(-1 if channels > 1 else None)))
        d = abs(ssim - ssim_numpy(a, b))
        worst["ssim skimage vs numpy"] = max(worst["ssim skimage vs numpy"], d)
        assert d < 1e-10, "skimage SSIM is not valid-filtered SSIM? diff %g" % d
        if min(w, h) > (TAPS - 1) * 16:
            ms = ms_ssim_numpy(a, b)
            if not args.no_torch:
                d = abs(ms - ms_ssim_torch(a, b))
                worst["ms-ssim numpy vs torch"] = max(worst["ms-ssim numpy vs torch"], d)
                assert d < 1e-10, "numpy vs torch MS-SSIM diff %g" % d
            ms_s = "%.17g" % ms
        else:
            ms_s = "nan"
        lines.append("%s %s %d %d %d %.17g %.17g %.17g %s"
                     % (ref_name, dist_name, w, h, channels, mse, psnr, ssim, ms_s))
        print("pair%d %-28s %3dx%-3d %s %-45s psnr %.4f ssim %.6f ms-ssim %s"
              % (i, src, w, h, mode, distort.desc, psnr, ssim, ms_s), file=sys.stderr)
    with open(os.path.join(args.out, "metrics_golden.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    for k, v in worst.items():
        print("max |diff| %s: %.3g" % (k, v), file=sys.stderr)


if __name__ == "__main__":
    main()
