"""Synthetic training examples: drawn images with their true captions and labels.

The same drawing code as the synthetic web (`pipeline.synthetic.draw`), with seeds of their
own, so the web's images stay held out from training.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pipeline.synthetic import vocab
from pipeline.synthetic.captions import caption
from pipeline.synthetic.draw import render
from pipeline.synthetic.imagespecs import aesthetic_score
from pipeline.synthetic.model import Visual

BACKGROUNDS = ("plain", "gradient", "stripes", "dots", "noise")
LANGUAGE_WEIGHTS = (("en", 0.45), ("de", 0.11), ("fr", 0.11), ("es", 0.11), ("it", 0.11),
                    ("nl", 0.11))  # fmt: skip
WATERMARK_WORDS = {
    "en": "with a watermark",
    "de": "mit Wasserzeichen",
    "fr": "avec un filigrane",
    "es": "con marca de agua",
    "it": "con filigrana",
    "nl": "met een watermerk",
}


@dataclass
class Sample:
    visual: Visual
    image: Image.Image
    captions: dict[str, str]
    watermark: bool
    unsafe: bool
    aesthetic: float


def random_visual(tag: str, index: int, watermark_share: float, unsafe_share: float) -> Visual:
    """A random visual, drawn like the web's (sizes 64-320 px, any palette or layout)."""
    rng = random.Random(f"{tag}:{index}")
    palette = rng.choices(("harmonious", "clashing", "neutral"), (0.45, 0.25, 0.3))[0]
    if palette == "harmonious":
        fg, bg = rng.choice(vocab.HARMONIOUS)
    elif palette == "clashing":
        fg, bg = rng.choice(vocab.CLASHING)
    else:
        fg, bg = rng.sample(list(vocab.COLORS), 2)
    background = rng.choice(BACKGROUNDS)
    bg_colors: tuple[str, ...] = (bg,)
    if background == "gradient":
        bg_colors = (bg, rng.choice([c for c in vocab.COLORS if c not in (fg, bg)]))
    unsafe = rng.random() < unsafe_share
    if unsafe:
        background, bg_colors = "hazard", ("red", "black")
        if fg in ("red", "black"):
            fg = rng.choice(("yellow", "white", "turquoise"))
    side = rng.randint(64, 320)
    aspect = rng.choice((1.0, 1.0, 4 / 3, 3 / 2))
    width, height = (
        (round(side * aspect), side) if rng.random() < 0.7 else (side, round(side * aspect))
    )
    count = rng.choices(range(1, 6), (40, 25, 15, 12, 8))[0]
    return Visual(
        seed=f"{tag}:pixels:{index}",
        shape=rng.choice(vocab.SHAPES),
        color=fg,
        count=count,
        background=background,
        bg_colors=bg_colors,
        composition="centered" if rng.random() < (0.8 if count <= 2 else 0.35) else "scattered",
        palette=palette,
        width=width,
        height=height,
        format="PNG",
        size_class="medium",
        watermark=not unsafe and min(width, height) >= 96 and rng.random() < watermark_share,
        unsafe=unsafe,
    )


def make_sample(
    tag: str, index: int, watermark_share: float = 0.15, unsafe_share: float = 0.08
) -> Sample:
    v = random_visual(tag, index, watermark_share, unsafe_share)
    captions = {
        lang: caption(lang, v.shape, v.color, v.count, v.background, v.bg_colors)
        for lang in vocab.LANGUAGES
    }
    return Sample(v, render(v), captions, v.watermark, v.unsafe, aesthetic_score(v))


def pick_language(rng: random.Random) -> str:
    langs, weights = zip(*LANGUAGE_WEIGHTS, strict=True)
    return rng.choices(langs, weights)[0]


def training_caption(captions: dict[str, str], watermark: bool, rng: random.Random) -> str:
    """A caption in a random language; watermarked images often say so, as web alts do."""
    lang = pick_language(rng)
    text = captions[lang]
    if watermark and rng.random() < 0.7:
        text = f"{text} {WATERMARK_WORDS[lang]}"
    return text


def to_array(img: Image.Image, size: int) -> np.ndarray:
    """Resize the shortest side to `size` and centre-crop, as open_clip's eval preprocessing."""
    w, h = img.size
    scale = size / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)).convert("RGB"))
