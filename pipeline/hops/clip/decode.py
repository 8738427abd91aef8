"""Decode fetched image bytes with guards: minimum size, decompression bombs, corrupt files."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError


@dataclass(frozen=True)
class DecodePolicy:
    min_bytes: int = 5 * 1024
    """LAION dropped images under 5 KB."""
    min_side: int = 0
    max_pixels: int = 64_000_000
    """Images declaring more pixels than this are refused before their pixels are read."""


@dataclass
class DecodedImage:
    image: Image.Image | None
    status: str
    width: int | None = None
    height: int | None = None
    sha256: str | None = None
    n_bytes: int = 0
    format: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def decode_image(body: bytes, policy: DecodePolicy) -> DecodedImage:
    """RGB image plus width, height and sha256, or the reason it cannot be used."""
    digest = hashlib.sha256(body).hexdigest()
    out = DecodedImage(image=None, status="ok", sha256=digest, n_bytes=len(body))
    if len(body) < policy.min_bytes:
        out.status, out.error = "too_small", f"{len(body)} B < {policy.min_bytes} B"
        return out
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(body))
            out.width, out.height, out.format = img.width, img.height, img.format
            if img.width * img.height > policy.max_pixels:
                out.status = "decode_failed:decompression_bomb"
                out.error = f"{img.width}x{img.height} declared"
                return out
            img.draft("RGB", (img.width, img.height))
            rgb = img.convert("RGB")
    except UnidentifiedImageError as exc:
        out.status, out.error = "decode_failed:not_image", str(exc)[:200]
        return out
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        out.status, out.error = "decode_failed:decompression_bomb", str(exc)[:200]
        return out
    except (OSError, ValueError, SyntaxError) as exc:
        out.status, out.error = "decode_failed:corrupt", str(exc)[:200]
        return out
    if min(rgb.size) < policy.min_side:
        out.status, out.error = "too_small", f"{rgb.width}x{rgb.height} < {policy.min_side} px"
        return out
    out.image = rgb
    return out
