"""The synthetic web's artists: their home sites, which images are theirs, and their style.

Each artist of `vocab.ARTISTS` gets a home site (famous ones among the busier sites, obscure
ones among the quieter; never a site that opts out by header). There, `artist_home_share` of
the new content images are their originals. Elsewhere, `artist_repost_share` of the new
content images repost an original (famous artists `famous_repost_weight` times as often):
a byte-identical copy, a resized copy or a re-encoded copy. Every draw comes from a generator
of its own (per image id), so the rest of the web's draws are unchanged by the artists.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass

from . import vocab
from .config import SyntheticWebConfig
from .model import ImageSpec, Site, Visual
from .sampling import Deck, rng_for

BY_NAME: dict[str, vocab.Artist] = {a.name: a for a in vocab.ARTISTS}
_OTHER_FORMAT = {"JPEG": "WEBP", "PNG": "JPEG", "WEBP": "JPEG", "GIF": "PNG"}


def style_visual(v: Visual, artist: vocab.Artist, rng: random.Random) -> None:
    """Draw ``v`` in ``artist``'s style: their motif, colours, background and texture (the
    count, size and format stay, so the true caption still describes the image)."""
    v.shape = rng.choice(artist.shapes)
    v.color = rng.choice(artist.colors)
    if artist.background == "gradient":
        v.bg_colors = (artist.grounds[0], artist.grounds[-1])
    else:
        v.bg_colors = (rng.choice(artist.grounds),)
    v.background = artist.background
    v.composition = artist.composition
    v.palette = "harmonious" if (v.color, v.bg_colors[0]) in vocab.HARMONIOUS else "neutral"
    v.texture = artist.texture


def artist_visual(artist: vocab.Artist, tag: str, index: int) -> Visual:
    """A new drawing in ``artist``'s style under seeds of its own (``tag``): the artist's
    portfolio beyond the web, for references and tests (64-320 px, 1-5 motifs)."""
    rng = random.Random(f"{tag}:{artist.name}:{index}")
    side = rng.randint(64, 320)
    aspect = rng.choice((1.0, 1.0, 4 / 3, 3 / 2))
    long_side = round(side * aspect)
    width, height = (long_side, side) if rng.random() < 0.7 else (side, long_side)
    v = Visual(
        seed=f"{tag}:{artist.name}:pixels:{index}",
        shape="",
        color="",
        count=rng.choices(range(1, 6), (40, 25, 15, 12, 8))[0],
        background="plain",
        bg_colors=(),
        composition="centered",
        palette="neutral",
        width=width,
        height=height,
        format="PNG",
        size_class="medium",
    )
    style_visual(v, artist, rng)
    return v


def _homes(cfg: SyntheticWebConfig, sites: Sequence[Site]) -> dict[str, Site]:
    """A home site per artist: famous ones among the busier half of the sites (lower index,
    more pages), obscure ones among the rest; distinct while sites last."""
    rng = rng_for(cfg.seed, "artists", "homes")
    open_sites = [s for s in sites if not s.header_noai] or list(sites)
    half = max(1, len(open_sites) // 2)
    pools = {True: open_sites[:half], False: open_sites[half:] or open_sites[:half]}
    taken: set[int] = set()
    homes = {}
    for artist in vocab.ARTISTS:
        pool = pools[artist.famous]
        free = [s for s in pool if s.index not in taken] or [
            s for s in open_sites if s.index not in taken
        ]
        site = rng.choice(free or pool)
        taken.add(site.index)
        homes[artist.name] = site
    return homes


@dataclass
class Attribution:
    """Whose work a new image is, and how it copies an original (reposts)."""

    artist: vocab.Artist
    style: random.Random
    """Draws the style of an original (unused by reposts)."""
    original: ImageSpec | None = None
    repost_kind: str | None = None
    scale: float = 1.0

    def restyle(self, v: Visual) -> None:
        """Make ``v`` the artist's drawing (before the image is named and its extension
        chosen, so both follow what it shows)."""
        if self.original is None:
            style_visual(v, self.artist, self.style)
            return
        o = self.original.visual
        assert o is not None
        width, height, fmt = o.width, o.height, o.format
        if self.repost_kind == "resized":
            width = max(16, min(1024, round(o.width * self.scale)))
            height = max(16, min(1024, round(o.height * self.scale)))
        elif self.repost_kind == "reencoded":
            fmt = _OTHER_FORMAT[o.format]
        copied = dataclasses.replace(o, width=width, height=height, format=fmt)
        for f in dataclasses.fields(Visual):
            setattr(v, f.name, getattr(copied, f.name))
        v.watermark = v.unsafe = False

    def mark(self, im: ImageSpec) -> None:
        """Record the attribution on the image (the truth's ``artist`` and ``repost_of``)."""
        im.artist = self.artist.name
        if self.original is not None:
            im.repost_of, im.repost_kind = self.original.id, self.repost_kind


class ArtistDesk:
    """Decides, image by image while the web is planned, which new images are artists'."""

    def __init__(self, cfg: SyntheticWebConfig, sites: Sequence[Site]) -> None:
        self.cfg = cfg
        self.homes = _homes(cfg, sites)
        self.homed: dict[int, list[vocab.Artist]] = {}
        for artist in vocab.ARTISTS:
            self.homed.setdefault(self.homes[artist.name].index, []).append(artist)
        self.originals: dict[str, list[ImageSpec]] = {}
        self.kinds = Deck(cfg.repost_kind_weights, rng_for(cfg.seed, "deck", "repost"), 100)

    def attribute(self, image_id: int, site: Site) -> Attribution | None:
        """The attribution of new content image ``image_id`` of ``site``, or None."""
        cfg = self.cfg
        rng = rng_for(cfg.seed, "artist", image_id)
        homed = self.homed.get(site.index)
        if homed:
            if rng.random() >= cfg.artist_home_share:
                return None
            return Attribution(rng.choice(homed), rng)
        if not self.originals or rng.random() >= cfg.artist_repost_share:
            return None
        names = [a.name for a in vocab.ARTISTS if self.originals.get(a.name)]
        weights = [cfg.famous_repost_weight if BY_NAME[n].famous else 1.0 for n in names]
        if sum(weights) <= 0:
            return None
        artist = BY_NAME[rng.choices(names, weights)[0]]
        original = rng.choice(self.originals[artist.name])
        scale = rng.choice((0.5, 0.75, 1.5))
        return Attribution(artist, rng, original, self.kinds.draw(), scale)

    def record(self, im: ImageSpec, attribution: Attribution) -> None:
        """Remember a new original (reposts copy originals only)."""
        attribution.mark(im)
        if attribution.original is None:
            self.originals.setdefault(attribution.artist.name, []).append(im)

    def home_hosts(self) -> dict[str, str]:
        """Artist name -> host of their home site."""
        return {name: site.host for name, site in self.homes.items()}


def artist_roster(homes: dict[str, str]) -> dict[str, dict[str, object]]:
    """The roster as the web's manifest records it: name -> home host, famous, style."""
    return {
        a.name: {
            "home": homes.get(a.name),
            "famous": a.famous,
            "colors": list(a.colors),
            "grounds": list(a.grounds),
            "shapes": list(a.shapes),
            "background": a.background,
            "texture": a.texture,
        }
        for a in vocab.ARTISTS
    }
