#!/usr/bin/python3
"""Golden images for tests/image/test_image.c, decoded by an independent decoder (Pillow).

Writes small PNG/PPM/PGM files covering the variants nnedge must decode (palette, tRNS,
gray+alpha, 1/2/4/16-bit, Adam7 interlacing, all five PNG filters, maxval != 255) into
tests/golden/images/, each with `<file>.raw`: the 8-bit pixels Pillow decodes, normalised to
nnedge's NNE_IMAGE_LOAD_ANY rules (palette -> RGB(A), tRNS -> alpha, 16 bits -> high byte).
MANIFEST lists `file width height channels`.

Some files are written by Pillow (an independent encoder); the variants Pillow cannot write
(16-bit colour, low bit depths, interlacing, explicit filters) come from the small PNG
writer below, and Pillow still decodes them to give the expected pixels.

Usage (Debian's /usr/bin/python3 has PIL; the default python3 may not):
  /usr/bin/python3 scripts/gen_golden_images.py            # regenerate tests/golden/images
  /usr/bin/python3 scripts/gen_golden_images.py --check FILE RAW W H C
      decode FILE with Pillow and compare with the raw pixels in RAW; exit 0 if equal,
      1 if not, 77 if Pillow is missing (used by the C test to check nnedge's output).
"""
import os
import struct
import sys
import zlib

try:
    import numpy as np
    from PIL import Image
except ImportError:  # pragma: no cover
    if "--check" in sys.argv:
        sys.exit(77)
    raise

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "golden", "images")


# ---------------------------------------------------------------- independent decode
def pillow_pixels(path):
    """Pillow's decode of `path` as (width, height, channels, bytes), nnedge's ANY rules."""
    im = Image.open(path)
    im.load()
    mode, trns = im.mode, "transparency" in im.info
    if mode == "P":
        im = im.convert("RGBA" if trns else "RGB")
    elif mode == "1":
        im = im.convert("L")
    elif mode in ("L", "RGB") and trns:
        im = im.convert("LA" if mode == "L" else "RGBA")
    elif mode in ("I;16", "I;16B", "I"):
        a = np.asarray(im).astype(np.uint32)
        if trns:
            alpha = np.where(a == im.info["transparency"], 0, 255)
            a8 = np.stack([a >> 8, alpha], axis=-1)
        else:
            a8 = a >> 8
        a8 = a8.astype(np.uint8)
        c = 1 if a8.ndim == 2 else a8.shape[2]
        return im.width, im.height, c, a8.tobytes()
    if mode == "RGBA" and _png_color_type(path) == 4:
        # Pillow opens 16-bit gray+alpha as RGBA (gray replicated); nnedge keeps 2 channels.
        a = np.asarray(im)[:, :, [0, 3]]
        return im.width, im.height, 2, np.ascontiguousarray(a).tobytes()
    channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[im.mode]
    return im.width, im.height, channels, im.tobytes()


def _png_color_type(path):
    with open(path, "rb") as f:
        head = f.read(26)
    return head[25] if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) == 26 else None


# ---------------------------------------------------------------- a small PNG writer
def _chunk(tag, data):
    body = tag + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _filter_rows(rows, bpp, first_filter):
    """Filter each row with type (first_filter + y) % 5, so every filter is exercised."""
    out, prev = bytearray(), bytes(len(rows[0])) if rows else b""
    for y, row in enumerate(rows):
        ft = (first_filter + y) % 5
        f = bytearray([ft])
        for i, x in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            pred = [0, a, b, (a + b) // 2, _paeth(a, b, c)][ft]
            f.append((x - pred) & 0xFF)
        out += f
        prev = row
    return bytes(out)


def _pack_row(samples, depth):
    """Pack a row of samples (already one list per pixel, flattened) at `depth` bits."""
    if depth == 8:
        return bytes(samples)
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    out, acc, nbits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | s
        nbits += depth
        if nbits == 8:
            out.append(acc)
            acc, nbits = 0, 0
    if nbits:
        out.append(acc << (8 - nbits))
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def write_png(path, width, height, color_type, depth, pixels, interlace=False, plte=None,
              trns=None):
    """pixels[y][x] is a tuple of samples (palette index, gray, gray+alpha, RGB, RGBA)."""
    nch = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    bpp = max(1, nch * depth // 8)
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for k, (x0, y0, dx, dy) in enumerate(passes):
        xs, ys = range(x0, width, dx), range(y0, height, dy)
        if not xs or not ys:
            continue
        rows = [_pack_row([s for x in xs for s in pixels[y][x]], depth) for y in ys]
        raw += _filter_rows(rows, bpp, k)
    data = b"\x89PNG\r\n\x1a\n"
    data += _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0,
                                         1 if interlace else 0))
    if plte:
        data += _chunk(b"PLTE", b"".join(bytes(c) for c in plte))
    if trns is not None:
        data += _chunk(b"tRNS", trns)
    data += _chunk(b"tEXt", b"Comment\x00nnedge golden image (ignored by the decoder)")
    z = zlib.compress(bytes(raw), 9)
    for i in range(0, len(z), 100):  # several IDAT chunks
        data += _chunk(b"IDAT", z[i:i + 100])
    data += _chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- the golden set
def pattern(w, h, nch, maxv, seed):
    """Deterministic pixels with gradients, extremes and a little noise."""
    state = seed * 2654435761 % 2**32 or 1
    rows = []
    for y in range(h):
        row = []
        for x in range(w):
            px = []
            for c in range(nch):
                state = (state * 1103515245 + 12345) % 2**31
                v = ((x * 37 + y * 53 + c * 91) * maxv // 97 + (state >> 16)) % (maxv + 1)
                if (x + y + c) % 11 == 0:
                    v = maxv
                if (x * 3 + y + c) % 13 == 0:
                    v = 0
                px.append(v)
            row.append(tuple(px))
        rows.append(row)
    return rows


def to_pillow(w, h, mode, rows):
    flat = bytes(s for row in rows for px in row for s in px)
    return Image.frombytes(mode, (w, h), flat)


def generate():
    os.makedirs(OUT, exist_ok=True)
    made = []

    def add(name):
        made.append(name)

    # Written by Pillow.
    for mode, nch, (w, h) in [("L", 1, (13, 7)), ("LA", 2, (5, 9)), ("RGB", 3, (17, 3)),
                              ("RGBA", 4, (7, 11))]:
        name = f"pil_{mode.lower()}.png"
        to_pillow(w, h, mode, pattern(w, h, nch, 255, w)).save(os.path.join(OUT, name))
        add(name)
    im = to_pillow(11, 6, "RGB", pattern(11, 6, 3, 255, 3)).quantize(colors=12)
    im.save(os.path.join(OUT, "pil_palette.png"))
    add("pil_palette.png")
    im.info["transparency"] = bytes([0, 128, 255, 40])  # tRNS shorter than the palette
    im.save(os.path.join(OUT, "pil_palette_trns.png"), transparency=bytes([0, 128, 255, 40]))
    add("pil_palette_trns.png")
    to_pillow(9, 5, "L", pattern(9, 5, 1, 255, 5)).save(os.path.join(OUT, "pil_l_trns.png"),
                                                          transparency=255)
    add("pil_l_trns.png")
    to_pillow(6, 6, "RGB", pattern(6, 6, 3, 255, 6)).save(os.path.join(OUT, "pil_rgb_trns.png"),
                                                          transparency=(255, 255, 255))
    add("pil_rgb_trns.png")
    to_pillow(10, 3, "L", pattern(10, 3, 1, 255, 7)).convert("1").save(
        os.path.join(OUT, "pil_1bit.png"))
    add("pil_1bit.png")
    g16 = pattern(7, 5, 1, 65535, 8)
    Image.frombytes("I;16", (7, 5), b"".join(struct.pack("<H", px[0]) for r in g16 for px in r)
                    ).save(os.path.join(OUT, "pil_gray16.png"))
    add("pil_gray16.png")
    to_pillow(5, 4, "RGB", pattern(5, 4, 3, 255, 9)).save(os.path.join(OUT, "pil_rgb.ppm"))
    add("pil_rgb.ppm")
    to_pillow(3, 7, "L", pattern(3, 7, 1, 255, 10)).save(os.path.join(OUT, "pil_gray.pgm"))
    add("pil_gray.pgm")

    # Written by write_png above, decoded by Pillow.
    variants = [
        # name, w, h, color type, depth, interlace
        ("rgb16", 9, 5, 2, 16, False),
        ("rgba16", 5, 4, 6, 16, False),
        ("la16", 6, 3, 4, 16, False),
        ("gray2", 11, 3, 0, 2, False),
        ("gray4", 7, 4, 0, 4, False),
        ("rgb8_adam7", 13, 11, 2, 8, True),
        ("rgba8_adam7", 3, 9, 6, 8, True),
        ("gray1_adam7", 10, 10, 0, 1, True),
        ("rgba16_adam7", 9, 9, 6, 16, True),
        ("gray8_1x1_adam7", 1, 1, 0, 8, True),
        ("gray8_2x1_adam7", 2, 1, 0, 8, True),
    ]
    for name, w, h, ct, depth, il in variants:
        nch = {0: 1, 2: 3, 4: 2, 6: 4}[ct]
        src = pattern(w, h, nch, (1 << depth) - 1, w * h)
        write_png(os.path.join(OUT, name + ".png"), w, h, ct, depth, src, interlace=il)
        add(name + ".png")
        # Cross-check Pillow against what was written: 16 bits -> high byte, 1/2/4 bits ->
        # bit replication (v * 255 / (2^depth - 1), exact for these depths).
        conv = (lambda v: v >> 8) if depth == 16 else (lambda v: v * 255 // ((1 << depth) - 1))
        want = bytes(conv(s) for row in src for px in row for s in px)
        assert pillow_pixels(os.path.join(OUT, name + ".png"))[3] == want, name
    plte = [(i * 37 % 256, i * 91 % 256, 255 - i * 16) for i in range(16)]
    write_png(os.path.join(OUT, "pal4_trns_adam7.png"), 9, 7, 3, 4,
              pattern(9, 7, 1, 15, 11), interlace=True, plte=plte, trns=bytes([0, 64, 200]))
    add("pal4_trns_adam7.png")
    write_png(os.path.join(OUT, "gray16_trns.png"), 5, 5, 0, 16, pattern(5, 5, 1, 65535, 12),
              trns=struct.pack(">H", 65535))
    add("gray16_trns.png")
    write_png(os.path.join(OUT, "rgb8_trns.png"), 4, 3, 2, 8, pattern(4, 3, 3, 255, 13),
              trns=struct.pack(">HHH", 255, 255, 255))
    add("rgb8_trns.png")

    # JPEG, written by Pillow (libjpeg-turbo): nnedge decodes with the same library and
    # settings, so the pixels must match Pillow's decode exactly. A smooth pattern with an
    # edge, so that chroma subsampling and the DCT are exercised.
    def smooth(w, h, c):
        img = Image.new("RGB" if c == 3 else "L", (w, h))
        px = []
        for y in range(h):
            for x in range(w):
                v = [(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)),
                     255 if x > w // 2 else 40]
                px.append(tuple(v) if c == 3 else v[0] // 2 + v[1] // 2)
        img.putdata(px)
        return img
    smooth(37, 29, 3).save(os.path.join(OUT, "jpeg_rgb_q75.jpg"), quality=75)
    add("jpeg_rgb_q75.jpg")
    smooth(21, 17, 1).save(os.path.join(OUT, "jpeg_gray_q90.jpg"), quality=90)
    add("jpeg_gray_q90.jpg")
    smooth(33, 35, 3).save(os.path.join(OUT, "jpeg_rgb_progressive.jpg"), quality=60,
                           progressive=True)
    add("jpeg_rgb_progressive.jpg")

    lines = []
    for name in made:
        path = os.path.join(OUT, name)
        w, h, c, data = pillow_pixels(path)
        assert len(data) == w * h * c
        with open(path + ".raw", "wb") as f:
            f.write(data)
        lines.append(f"{name} {w} {h} {c}")
    with open(os.path.join(OUT, "MANIFEST"), "w") as f:
        f.write("# file width height channels; <file>.raw: Pillow's 8-bit decode "
                "(scripts/gen_golden_images.py)\n")
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(made)} images to {OUT}")


def check(path, raw_path, w, h, c):
    pw, ph, pc, data = pillow_pixels(path)
    with open(raw_path, "rb") as f:
        want = f.read()
    if (pw, ph, pc) != (w, h, c) or data != want:
        print(f"{path}: Pillow decodes {pw}x{ph}x{pc}, expected {w}x{h}x{c}; "
              f"pixels {'equal' if data == want else 'differ'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2], sys.argv[3], *map(int, sys.argv[4:7])))
    if len(sys.argv) != 1:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    generate()
