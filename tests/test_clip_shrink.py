"""Hop 3 on Ray shrinks each image in the fetch task (:class:`pipeline.engine.clip.Shrink`);
the CLIP actor's preprocessing of the shrunk pixels must give the in-process tensor exactly."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from pipeline.engine.clip import _rgb_pixels, shrink_of

SIZES = [(333, 333), (187, 250), (640, 71), (71, 640), (64, 64), (64, 900), (20, 33), (65, 64),
         (1023, 767), (3, 2)]  # fmt: skip


@pytest.mark.parametrize(
    ("image_size", "interpolation"), [(64, None), (224, None), (96, "bilinear")]
)
def test_preprocessing_the_shrunk_pixels_gives_the_same_tensor(
    image_size: int, interpolation: str | None
) -> None:
    preprocess = open_clip.image_transform(image_size, False, interpolation=interpolation)
    shrink = shrink_of(preprocess)
    assert shrink is not None and shrink.crop == (image_size, image_size)
    rng = np.random.default_rng(image_size)
    for width, height in SIZES:
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        pixels = _rgb_pixels(image, shrink)
        assert pixels.shape == (image_size, image_size, 3)
        again = preprocess(Image.fromarray(pixels))
        assert torch.equal(again, preprocess(image)), (width, height)


@pytest.mark.parametrize("mode", ["longest", "squash"])
def test_other_preprocessing_ships_the_pixels_whole(mode: str) -> None:
    assert shrink_of(open_clip.image_transform(64, False, resize_mode=mode)) is None
    image = Image.new("RGB", (100, 80))
    assert _rgb_pixels(image, None).shape == (80, 100, 3)
