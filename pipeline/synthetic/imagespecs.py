"""Plan images: what each shows, where it is served, and its flags.

Flags are assigned once all images exist: unsafe (hazard stripes), watermark, faults,
X-Robots-Tag opt-outs, the aesthetic score and the true captions in every language.
"""

from __future__ import annotations

import hashlib
import math
import random

from . import vocab
from .artists import Attribution
from .captions import caption
from .config import SyntheticWebConfig
from .model import ImageSpec, Site, Visual
from .sampling import Deck, pick_counts, rng_for
from .urls import BLOCKED_REDIRECTS, canonical_url

_UNICODE_STEMS = (
    "café-crème", "grüne-formen", "étoile-filante", "niño-dibujo", "smørrebrød",
    "naïve-kunst", "übersicht", "piñata", "crème-brûlée", "größe-xl",
)  # fmt: skip
_QUERIES = ("v=3", "ver=1.2.0", "w=600&h=400", "itok=Zx81kQ", "resize=300%2C200&ssl=1")
_IMAGE_ROBOTS = ("noimageai", "noai, noimageai", "all", "noai")
# Roles whose images get faults, watermarks and unsafe content (not logos, not pixels).
_CONTENT_ROLES = ("content", "cdn")


def image_url(im: ImageSpec) -> str:
    """The canonical (percent-encoded) URL an image is served at."""
    url = canonical_url(f"{im.scheme}://{im.host}{im.path}")
    return f"{url}?{im.query}" if im.query else url


def new_visual(cfg: SyntheticWebConfig, decks: dict[str, Deck], image_id: int, role: str) -> Visual:
    """What a new image shows: shape, colours, count, background, size and format."""
    rng = rng_for(cfg.seed, "visual", image_id)
    if role == "logo":
        size_class, fmt, background = "logo", "PNG", "plain"
        width, height = rng.choice(((160, 48), (64, 64), (96, 96), (200, 60)))
        count = 1
    else:
        size_class = decks["size"].draw()
        fmt = decks["format"].draw()
        background = decks["background"].draw()
        lo, hi = next((lo, hi) for c, _, lo, hi in cfg.size_classes if c == size_class)
        side = rng.randint(lo, hi)
        aspect = 1.0 if size_class in ("icon", "xl") else rng.choice((1, 1, 1, 4 / 3, 3 / 2))
        width = height = side
        if aspect != 1.0:
            long_side = min(1024, round(side * aspect))
            width, height = (long_side, side) if rng.random() < 0.7 else (side, long_side)
        if size_class == "icon":
            count, background = 1, rng.choice(("plain", "plain", background))
            fmt = rng.choice(("PNG", "GIF", fmt))
        else:
            weights = (40, 25, 15, 12, 8)[: cfg.max_shape_count]
            count = rng.choices(range(1, len(weights) + 1), weights)[0]
        if background == "noise" and max(width, height) > 384 and fmt in ("PNG", "GIF"):
            fmt = "JPEG"  # grain does not compress losslessly: keep files web-sized
    palette = rng.choices(*zip(*cfg.palette_weights, strict=True))[0]
    if palette == "harmonious":
        fg, bg = rng.choice(vocab.HARMONIOUS)
    elif palette == "clashing":
        fg, bg = rng.choice(vocab.CLASHING)
    else:
        fg, bg = rng.sample(list(vocab.COLORS), 2)
    bg_colors: tuple[str, ...] = (bg,)
    if background == "gradient":
        bg_colors = (bg, rng.choice([c for c in vocab.COLORS if c not in (fg, bg)]))
    centered_share = cfg.centered_share_few if count <= 2 else cfg.centered_share_many
    centered = role == "logo" or rng.random() < centered_share
    return Visual(
        seed=f"{cfg.seed}:pixels:{image_id}",
        shape=rng.choice(vocab.SHAPES),
        color=fg,
        count=count,
        background=background,
        bg_colors=bg_colors,
        composition="centered" if centered else "scattered",
        palette=palette,
        width=width,
        height=height,
        format=fmt,
        size_class=size_class,
    )


def _ext(fmt: str, rng: random.Random) -> str:
    if fmt == "JPEG":
        return rng.choice((".jpg", ".jpg", ".jpg", ".jpg", ".jpeg", ".JPG"))
    return {"PNG": ".png", "WEBP": ".webp", "GIF": ".gif"}[fmt]


def new_image(
    cfg: SyntheticWebConfig,
    decks: dict[str, Deck],
    image_id: int,
    role: str,
    site: Site,
    directory: str,
    crawl_id: str,
    attribution: Attribution | None = None,
) -> ImageSpec:
    """A new image of `site` under `directory`, named the many ways the web names files;
    an artist's work (`attribution`) is drawn in their style before it is named."""
    rng = rng_for(cfg.seed, "image", image_id)
    visual = new_visual(cfg, decks, image_id, role)
    if attribution is not None:
        attribution.restyle(visual)
    style = "plain" if role == "logo" else decks["path_style"].draw()
    ext = _ext(visual.format, rng)
    if role == "logo":
        name = rng.choice(("logo", "site-logo", f"{site.host.split('.')[0]}-logo"))
    elif style == "unicode":
        name = f"{rng.choice(_UNICODE_STEMS)}-{image_id}"
    else:
        x = rng.random()
        if x < 0.35:
            name = f"{visual.color}-{visual.shape}-{image_id}"
        elif x < 0.5:
            name = f"IMG_{1000 + image_id}"
        elif x < 0.6:
            name = f"DSC{image_id:05d}"
        elif x < 0.85:
            name = hashlib.sha1(f"{cfg.seed}:{image_id}".encode()).hexdigest()[:12]
        else:
            name = f"artwork-{image_id}"
    if role == "cdn":
        directory = f"/c/{hashlib.sha1(str(image_id).encode()).hexdigest()[:2]}/"
    return ImageSpec(
        id=image_id,
        role=role,
        host=site.host,
        scheme=site.scheme,
        path=f"{directory}{name}{ext}",
        query=rng.choice(_QUERIES) if style == "query" else "",
        path_style=style,
        visual=visual,
        first_crawl_id=crawl_id,
        host_noai=site.header_noai,
        header_noai=site.header_noai,
    )


def aesthetic_score(v: Visual) -> float:
    """1..10: centred, harmonious, large, uncluttered images score high."""
    score = 5.0
    score += 1.6 if v.composition == "centered" else -1.0
    score += {"harmonious": 1.4, "clashing": -1.4}.get(v.palette, 0.0)
    score -= 0.45 * (v.count - 1)
    score += {"gradient": 0.6, "plain": 0.2, "noise": -1.0, "dots": -0.3}.get(v.background, 0)
    score += {"stripes": -0.2, "hazard": -0.8}.get(v.background, 0.0)
    score += max(-2.0, min(1.2, 0.8 * math.log2(min(v.width, v.height) / 192)))
    score -= 1.2 if v.watermark else 0.0
    score += random.Random(f"{v.seed}:aesthetic").gauss(0.0, 0.35)
    return round(max(1.0, min(10.0, score)), 2)


def _mark_unsafe_and_watermarks(
    eligible: list[ImageSpec], cfg: SyntheticWebConfig, rng: random.Random
) -> None:
    anyone = [im for im in eligible if im.artist is None]  # no artist draws the hazard
    n_unsafe = min(len(anyone), max(1, round(cfg.unsafe_share * len(eligible))))
    for im in rng.sample(anyone, n_unsafe):
        v = im.visual
        assert v is not None
        v.unsafe, v.background, v.bg_colors = True, "hazard", ("red", "black")
        if v.color in ("red", "black"):
            v.color = rng.choice(("yellow", "white", "turquoise"))
    big = [
        im
        for im in eligible
        if im.visual and min(im.visual.width, im.visual.height) >= 96 and not im.visual.unsafe
    ]
    for im in rng.sample(big, min(len(big), max(1, round(cfg.watermark_share * len(eligible))))):
        assert im.visual is not None
        im.visual.watermark = True


def _assign_faults(
    eligible: list[ImageSpec], cfg: SyntheticWebConfig, rng: random.Random
) -> list[ImageSpec]:
    """Give each fault kind its share (at least one); return the healthy images."""
    order = rng.sample(eligible, len(eligible))
    counts = pick_counts(len(order), cfg.fault_shares)
    if 0 < counts.get("oversized", 0) < 2 and sum(counts.values()) < len(order):
        counts["oversized"] = 2  # one decompression bomb and one padded body
    pos = 0
    for fault, k in counts.items():
        for im in order[pos : pos + k]:
            im.fault = fault
        pos += k
    faulty, healthy = order[:pos], order[pos:]
    oversized = [im for im in faulty if im.fault == "oversized"]
    for n, im in enumerate(oversized):
        im.oversized_kind = "bomb" if n % 2 == 0 else "padded"
    redirects = [im for im in faulty if im.fault in ("redirect", "redirect_blocked")]
    for n, im in enumerate(redirects):
        if im.fault == "redirect" and healthy:
            target = rng.choice(healthy)
            # Following the redirect yields the target: the URL shows what the target shows.
            im.redirect_to, im.visual, im.location = target.id, target.visual, image_url(target)
            im.artist, im.repost_of, im.repost_kind = target.artist, None, None
        else:
            im.fault = "redirect_blocked"
            im.location = BLOCKED_REDIRECTS[n % len(BLOCKED_REDIRECTS)]
    return healthy


def assign_image_flags(images: list[ImageSpec], cfg: SyntheticWebConfig) -> None:
    """Unsafe, watermark, faults, opt-out headers, aesthetic scores and captions."""
    rng = rng_for(cfg.seed, "flags")
    eligible = [im for im in images if im.role in _CONTENT_ROLES]
    _mark_unsafe_and_watermarks(eligible, cfg, rng)
    healthy = _assign_faults(eligible, cfg, rng)
    n_robots = min(len(healthy), max(2, round(cfg.image_noai_share * len(eligible))))
    for n, im in enumerate(rng.sample(healthy, n_robots)):
        im.robots_header = _IMAGE_ROBOTS[n % len(_IMAGE_ROBOTS)]
        im.header_noai = im.header_noai or im.robots_header != "all"
    for im in images:
        v = im.visual
        if v is not None:
            im.aesthetic = aesthetic_score(v)
            im.captions = {
                lang: caption(lang, v.shape, v.color, v.count, v.background, v.bg_colors)
                for lang in cfg.languages
            }
