"""Procedural images with a known description, drawn with PIL and numpy."""

from __future__ import annotations

import hashlib
import io
import math
import random
import struct
import zlib

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFont
from scipy.ndimage import maximum_filter

from .model import Visual
from .vocab import COLORS

RGB = tuple[int, int, int]
TEXTURES = ("halftone", "hatch", "speckle", "outline", "scanlines", "wash")
"""Marks an artist's hand leaves over a drawing (`vocab.Artist.texture`)."""


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def _shade(c: RGB) -> RGB:
    """A lighter (dark colours) or darker (light colours) variant of the same hue."""
    light = sum(c) / 3 > 140
    return _mix(c, (0, 0, 0), 0.28) if light else _mix(c, (255, 255, 255), 0.35)


def _background(v: Visual, rng: random.Random, nrng: np.random.Generator) -> Image.Image:
    w, h = v.width, v.height
    base = COLORS[v.bg_colors[0]]
    if v.background == "gradient":
        vertical = Image.linear_gradient("L")
        horizontal = vertical.transpose(Image.Transpose.ROTATE_90)
        mask = rng.choice((vertical, horizontal, ImageChops.add(vertical, horizontal, scale=2)))
        mask = mask.resize((w, h), Image.Resampling.BILINEAR)
        end = Image.new("RGB", (w, h), COLORS[v.bg_colors[-1]])
        return Image.composite(end, Image.new("RGB", (w, h), base), mask)
    img = Image.new("RGB", (w, h), base)
    if v.background == "plain":
        return img
    draw = ImageDraw.Draw(img)
    side = min(w, h)
    if v.background in ("stripes", "hazard"):
        period = max(4, side // rng.choice((6, 8, 10)))
        color = (25, 25, 25) if v.background == "hazard" else _shade(base)
        if v.background == "hazard":
            draw.rectangle((0, 0, w, h), fill=COLORS["red"])
        half = period // 2
        if v.background == "hazard" or rng.random() < 0.4:
            for x0 in range(-h, w + period, period):
                draw.polygon([(x0, 0), (x0 + half, 0), (x0 + half + h, h), (x0 + h, h)], fill=color)
        else:
            for x0 in range(0, w, period):
                draw.rectangle((x0, 0, x0 + half - 1, h), fill=color)
        return img
    if v.background == "dots":
        period = max(4, side // rng.choice((6, 8, 12)))
        r = max(1, period // 4)
        color = _shade(base)
        for y in range(period // 2, h, period):
            for x in range(period // 2, w, period):
                draw.ellipse((x - r, y - r, x + r, y + r), fill=color)
        return img
    # noise: grain over the base colour
    arr = np.asarray(img, dtype=np.int16) + nrng.normal(0, 30, (h, w, 1)).astype(np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _polygon(shape: str, cx: float, cy: float, r: float, rot: float) -> list[tuple[float, float]]:
    def ring(n: int, radii: tuple[float, ...], start: float) -> list[tuple[float, float]]:
        pts = []
        for i in range(n * len(radii)):
            a = start + rot + 2 * math.pi * i / (n * len(radii))
            rr = radii[i % len(radii)]
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
        return pts

    if shape == "square":
        return ring(4, (r,), math.pi / 4)
    if shape == "triangle":
        return ring(3, (r,), -math.pi / 2)
    if shape == "star":
        return ring(5, (r, r * 0.45), -math.pi / 2)
    if shape == "hexagon":
        return ring(6, (r,), 0.0)
    if shape == "diamond":
        return [(cx, cy - r), (cx + 0.65 * r, cy), (cx, cy + r), (cx - 0.65 * r, cy)]
    if shape == "cross":
        t = r * 0.32
        pts = [(-t, -r), (t, -r), (t, -t), (r, -t), (r, t), (t, t), (t, r), (-t, r), (-t, t)]
        pts += [(-r, t), (-r, -t), (-t, -t)]
        c, s = math.cos(rot), math.sin(rot)
        return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts]
    if shape == "heart":
        pts = []
        for i in range(48):
            a = 2 * math.pi * i / 48
            x = 16 * math.sin(a) ** 3
            y = -(13 * math.cos(a) - 5 * math.cos(2 * a) - 2 * math.cos(3 * a) - math.cos(4 * a))
            pts.append((cx + x * r / 17, cy + y * r / 17))
        return pts
    raise ValueError(shape)


def _draw_shape(mask: Image.Image, shape: str, cx: float, cy: float, r: float, rot: float) -> None:
    draw = ImageDraw.Draw(mask)
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        draw.ellipse(box, fill=255)
    elif shape == "ring":
        draw.ellipse(box, outline=255, width=max(1, round(r * 0.35)))
    elif shape == "crescent":
        part = Image.new("L", mask.size, 0)
        pd = ImageDraw.Draw(part)
        pd.ellipse(box, fill=255)
        off = r * 0.45
        pd.ellipse((box[0] + off, box[1] - off * 0.3, box[2] + off, box[3] - off * 0.3), fill=0)
        mask.paste(255, (0, 0), part)
    else:
        draw.polygon(_polygon(shape, cx, cy, r, rot), fill=255)


def _layout(v: Visual, rng: random.Random) -> list[tuple[float, float, float]]:
    """(cx, cy, radius) of each shape: centred rows for well-made images, scattered else."""
    w, h, n = v.width, v.height, v.count
    side = min(w, h)
    if v.composition == "centered":
        cols = n if n <= 3 else math.ceil(n / 2)
        rows = math.ceil(n / cols)
        r = min(w / cols, h / rows) * (0.34 if n > 1 else 0.3)
        r = max(r, 2.0)
        out = []
        for i in range(n):
            row, col = divmod(i, cols)
            in_row = min(cols, n - row * cols)
            cx = w / 2 + (col - (in_row - 1) / 2) * (w / cols)
            cy = h / 2 + (row - (rows - 1) / 2) * (h / rows)
            out.append((cx, cy, r))
        return out
    # Scattered: random sizes and places, inside the frame and barely overlapping, so that
    # the count in the caption stays true.
    placed: list[tuple[float, float, float]] = []
    for _ in range(n):
        r = rng.uniform(0.09, 0.2) * side
        for _attempt in range(40):
            cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
            if all(math.hypot(cx - x, cy - y) > 0.9 * (r + q) for x, y, q in placed):
                break
            r *= 0.95
        placed.append((cx, cy, max(r, 1.5)))
    return placed


def _watermark(img: Image.Image, rng: random.Random) -> Image.Image:
    """A visible, semi-transparent stock-photo watermark tiled diagonally over the image."""
    w, h = img.size
    size = max(8, min(w, h) // 7)
    font = ImageFont.load_default(size=size)
    text = rng.choice(("© SYNTHSTOCK", "SYNTHSTOCK", "© pixel-depot", "PREVIEW"))
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
    tile = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(tile).text((-left, -top), text, font=font, fill=130)
    tile = tile.rotate(30, resample=Image.Resampling.BILINEAR, expand=True)
    light = Image.new("RGB", tile.size, (255, 255, 255))
    step_x, step_y = tile.width + size // 2, max(size * 3, tile.height // 2)
    for row, y in enumerate(range(-tile.height // 2, h, step_y)):
        for x in range(-tile.width + (row % 2) * step_x // 2, w, step_x):
            img.paste(light, (x, y), tile)
    return img


def _texture(img: Image.Image, mask: Image.Image, v: Visual) -> Image.Image:
    """Overlay the artist's texture: halftone dots, diagonal hatching, light speckles, a pale
    outline round the motifs, horizontal scanlines, or a darkening wash towards the edges."""
    w, h = img.size
    arr = np.asarray(img, dtype=np.float32).copy()
    period = max(3, min(w, h) // 16)
    xx, yy = np.arange(w)[None, :], np.arange(h)[:, None]
    if v.texture == "halftone":
        half = (period - 1) / 2
        dx, dy = (xx % period - half) ** 2, (yy % period - half) ** 2
        on = dx + dy < max(0.8, 0.3 * period) ** 2
        arr[on] = arr[on] * 0.55 + 255 * 0.45
    elif v.texture == "hatch":
        arr[(xx + yy) % period < max(1, period // 3)] *= 0.6
    elif v.texture == "scanlines":
        arr[np.broadcast_to(yy % period < max(1, period // 3), (h, w))] *= 0.7
    elif v.texture == "speckle":
        seed = int.from_bytes(hashlib.sha256(f"{v.seed}:texture".encode()).digest()[:8])
        on = np.random.default_rng(seed).random((h, w), dtype=np.float32) < 0.05
        arr[on] = arr[on] * 0.4 + 255 * 0.6
    elif v.texture == "outline":
        shape = np.asarray(mask) > 0
        grown = maximum_filter(shape, size=max(3, min(w, h) // 40 * 2 + 1))
        arr[grown & ~shape] = (245, 245, 245)
    elif v.texture == "wash":
        rx, ry = ((xx - (w - 1) / 2) / (w / 2)) ** 2, ((yy - (h - 1) / 2) / (h / 2)) ** 2
        arr *= (1.0 - 0.3 * np.minimum(rx + ry, 1.96)).astype(np.float32)[..., None]
    else:
        raise ValueError(f"unknown texture {v.texture!r}")
    return Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), "RGB")


def render(v: Visual) -> Image.Image:
    """Draw the image a visual describes (deterministic in `v.seed`)."""
    rng = random.Random(v.seed)
    nrng = np.random.default_rng(int.from_bytes(hashlib.sha256(v.seed.encode()).digest()[:8]))
    img = _background(v, rng, nrng)
    mask = Image.new("L", img.size, 0)
    for cx, cy, r in _layout(v, rng):
        rot = 0.0 if v.composition == "centered" else rng.uniform(0, math.pi)
        _draw_shape(mask, v.shape, cx, cy, r, rot)
    img.paste(COLORS[v.color], (0, 0), mask)
    if v.texture:
        img = _texture(img, mask, v)
    if v.watermark:
        img = _watermark(img, rng)
    return img


def encode(img: Image.Image, fmt: str, jpeg_quality: int) -> bytes:
    """Image bytes in one of the four web formats."""
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, "JPEG", quality=jpeg_quality)
    elif fmt == "PNG":
        img.save(buf, "PNG")
    elif fmt == "WEBP":
        img.save(buf, "WEBP", quality=85, method=3)
    elif fmt == "GIF":
        img.convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(buf, "GIF")
    else:
        raise ValueError(fmt)
    return buf.getvalue()


def pixel_gif() -> bytes:
    """A 1x1 transparent GIF, the classic tracking pixel."""
    buf = io.BytesIO()
    Image.new("P", (1, 1), 0).save(buf, "GIF", transparency=0)
    return buf.getvalue()


def bomb_png(side: int) -> bytes:
    """A valid 1-bit PNG of side x side pixels that compresses to a few tens of KB."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    comp = zlib.compressobj(9)
    parts = [comp.compress(row) for _ in range(side)]
    idat = b"".join(parts) + comp.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def not_image_html(host: str) -> bytes:
    """What hotlink protection sends instead of the image."""
    return (
        "<!DOCTYPE html>\n<html><head><title>Hotlinking not allowed</title></head>\n"
        f"<body><h1>403 - Please visit {host} to see this image</h1></body></html>\n"
    ).encode()
