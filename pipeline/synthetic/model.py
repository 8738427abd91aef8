"""Plain records of the planned web: sites, images, <img> tags, pages and crawls."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Site:
    """One host of the synthetic web."""

    index: int
    host: str
    name: str
    scheme: str
    lang: str
    kind: str
    img_dir: str
    role: str = "site"  # site | cdn | tracker
    header_noai: bool = False
    has_logo: bool = False
    logo_image: int | None = None
    logo_alt_style: str = "missing"  # boilerplate | named_logo | missing
    page_counter: int = 0
    images: list[int] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        """scheme://host"""
        return f"{self.scheme}://{self.host}"


@dataclass
class Visual:
    """What an image shows; enough to draw it and to describe it."""

    seed: str
    shape: str
    color: str
    count: int
    background: str  # plain | gradient | stripes | dots | noise | hazard
    bg_colors: tuple[str, ...]
    composition: str  # centered | scattered
    palette: str  # harmonious | clashing | neutral
    width: int
    height: int
    format: str  # JPEG | PNG | WEBP | GIF
    size_class: str
    watermark: bool = False
    unsafe: bool = False
    texture: str | None = None  # an artist's mark over the drawing (draw.TEXTURES)


@dataclass
class ImageSpec:
    """One served image URL (pixels: one spec, many query strings)."""

    id: int
    role: str  # content | logo | cdn | pixel
    host: str
    scheme: str
    path: str  # decoded path, the route key
    query: str
    path_style: str  # plain | query | unicode
    visual: Visual | None
    first_crawl_id: str
    fault: str | None = None
    redirect_to: int | None = None
    location: str | None = None
    robots_header: str | None = None
    host_noai: bool = False
    header_noai: bool = False
    aesthetic: float | None = None
    captions: dict[str, str] = field(default_factory=dict)
    file: str | None = None
    oversized_kind: str | None = None  # bomb | padded
    n_bytes: int | None = None
    sha256: str | None = None
    artist: str | None = None  # whose work it shows (vocab.ARTISTS), None when nobody's
    repost_of: int | None = None  # the artist's original this URL reposts
    repost_kind: str | None = None  # copy | resized | reencoded
    served_as: str | None = None  # format of a file with no Visual (the feedback crawl's)
    ai_generated: bool = False  # made by a diffusion model (the feedback crawl's AI images)
    ai_signal: str | None = None  # the one provenance signal its file carries (feedback.SIGNALS)
    metadata_stripped: bool = False  # its file carries no metadata at all
    training_mining: str | None = None  # what its C2PA credentials say about AI training


@dataclass
class ImgTag:
    """One <img> on a page, planned first (slot, kinds), rendered later (src, alt)."""

    slot: str  # content | logo | pixel | special
    alt_kind: str
    url_kind: str  # requested reference kind, replaced by the produced kind on rendering
    image_id: int | None = None
    special_target: str | None = None  # the URL a special tag points at
    src: str = ""
    alt: str | None = None  # the value a parser reads (entities decoded once)
    alt_lang: str | None = None
    describes_image: bool = False
    artist_credited: bool = False  # the alt names the image's artist
    planted_term: str | None = None  # the caption term planted in the alt (config.term_rates)
    image_url: str | None = None  # truth key (served URL) or None
    url_resolved: str | None = None
    attrs: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Anchor:
    """One <a href> on a page."""

    href: str
    text: str
    title: str | None = None
    target: str | None = None


@dataclass
class PagePlan:
    """One crawled page (or a redirect capture when status is 301)."""

    uid: str
    site: int
    url: str
    lang: str
    first_crawl_id: str
    status: int = 200
    location: str | None = None
    title: str = ""
    robots_meta: str | None = None
    noai: bool = False
    base_href: str | None = None
    paragraphs: list[str] = field(default_factory=list)
    imgs: list[ImgTag] = field(default_factory=list)
    anchors: list[Anchor] = field(default_factory=list)
    html: bytes = b""


@dataclass
class CrawlPlan:
    """The captures of one crawl, in WARC order, split into files."""

    crawl_id: str
    pages: list[PagePlan]
    recrawled: set[str] = field(default_factory=set)


@dataclass
class WebPlan:
    """Everything the generator writes, before any bytes are written."""

    sites: list[Site]
    images: list[ImageSpec] | dict[int, ImageSpec]
    """By id: a list for a generated web, a dict for a crawl grown onto one (feedback.py)."""
    crawls: list[CrawlPlan]
    dead_hosts: tuple[str, ...] = ()
    artist_homes: dict[str, str] = field(default_factory=dict)  # artist name -> home host
