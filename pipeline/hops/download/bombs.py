"""Decompression bombs refused at download time, before img2dataset decodes them.

img2dataset decodes with OpenCV (``cv2.imdecode``), whose own limit is 2**30 pixels. Its
resizer is wrapped, in the process that builds it, by :class:`BombGuardedResizer`, which
reads the image's declared size from its header with PIL (no pixels are decoded) and refuses
images over ``max_pixels``, as hop 3 does. The wrapper is part of the pickled downloader, so
it runs in every worker process; its error message starts with :data:`BOMB` and img2dataset
records it as ``failed_to_resize``.
"""

from __future__ import annotations

import importlib
import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from PIL import Image, UnidentifiedImageError

BOMB = "decompression_bomb"
"""Start of the error message of a refused image."""


def declared_pixels(data: bytes) -> tuple[int, int] | None:
    """Width and height from the image header (None when PIL cannot read the header)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # we decide, not PIL
        try:
            with Image.open(io.BytesIO(data)) as img:
                return img.width, img.height
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            return None
        finally:
            Image.MAX_IMAGE_PIXELS = saved


class BombGuardedResizer:
    """img2dataset's resizer behind a declared-size check (picklable)."""

    def __init__(self, inner: Any, max_pixels: int) -> None:
        self.inner = inner
        self.max_pixels = max_pixels

    @classmethod
    def build(cls, max_pixels: int, resizer_class: type, **kwargs: Any) -> BombGuardedResizer:
        return cls(resizer_class(**kwargs), max_pixels)

    def __call__(self, img_stream: io.BytesIO, blurring_bbox_list: Any = None) -> tuple:
        img_stream.seek(0)
        size = declared_pixels(img_stream.read())
        img_stream.seek(0)
        if size is not None and size[0] * size[1] > self.max_pixels:
            error = f"{BOMB}: {size[0]}x{size[1]} declared, over {self.max_pixels} pixels"
            return None, None, None, None, None, error
        return self.inner(img_stream, blurring_bbox_list)


@contextmanager
def bombs_refused(max_pixels: int) -> Iterator[None]:
    """While entered, img2dataset's ``download`` builds guarded resizers."""
    main = importlib.import_module("img2dataset.main")  # the package's ``main`` is a function
    real = main.Resizer
    main.Resizer = partial(BombGuardedResizer.build, max_pixels, real)
    try:
        yield
    finally:
        main.Resizer = real
