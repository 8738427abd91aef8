"""Render planned pages: titles, links, every <img> src and alt, and the HTML itself.

Each page draws from its own generator (seeded by its URL), so a page re-crawled in a later
crawl is byte-identical.
"""

from __future__ import annotations

import hashlib
import random

from . import vocab
from .alts import filename_alt, render_alt, unserved_caption
from .config import SyntheticWebConfig
from .htmlpage import render_page
from .imagespecs import image_url
from .model import Anchor, ImageSpec, ImgTag, PagePlan, Site
from .sampling import rng_for
from .urls import (
    DATA_URLS,
    DEAD_HOSTS,
    JAVASCRIPT_URLS,
    PRIVATE_IMAGE_URLS,
    canonical_url,
    display_form,
    make_src,
    resolve,
)


def page_dir(path: str) -> str:
    """The directory part of a URL path ("/a/b.html" -> "/a/", "/a/b/" -> "/a/b/")."""
    return path if path.endswith("/") else path.rsplit("/", 1)[0] + "/"


class PageRenderer:
    """Fills in the text, links, srcs, alts and HTML of planned pages."""

    def __init__(
        self,
        cfg: SyntheticWebConfig,
        sites: list[Site],
        images: list[ImageSpec],
        artist_homes: dict[str, str] | None = None,
    ):
        self.cfg = cfg
        self.sites = sites
        self.images = images
        self.artist_homes = artist_homes or {}
        self.captions = [im.captions for im in images if im.captions and im.role != "logo"]

    def render(self, page: PagePlan) -> None:
        """Render one HTML page in place (sets title, anchors, tags and html)."""
        rng = rng_for(self.cfg.seed, "render", page.uid)
        site = self.sites[page.site]
        page.title = f"{rng.choice(vocab.PAGE_TOPICS[page.lang])} #{rng.randint(2, 99)}"
        page.title += f" – {site.name}"
        page.paragraphs = rng.sample(vocab.PAGE_SENTENCES[page.lang], rng.randint(2, 4))
        page.anchors = self._anchors(page, site, rng)
        for i, tag in enumerate(page.imgs):
            if tag.slot == "special":
                self._special(tag, page, rng)
            else:
                self._image_tag(tag, page, site, rng, i)
        page.html = render_page(page, site, rng.choice(vocab.PAGE_SENTENCES[page.lang]))

    def _anchors(self, page: PagePlan, site: Site, rng: random.Random) -> list[Anchor]:
        nav = vocab.NAV_LABELS[page.lang]
        path = page.url.split(site.host, 1)[1]
        anchors = [
            Anchor("/", nav[0]),
            Anchor("/about.html", nav[1], title=nav[1]),
            Anchor(page_dir(path), nav[2]),
            Anchor("/contact.html", nav[3]),
        ]
        for other in rng.sample(site.pages, min(3, len(site.pages))):
            if other != page.url:
                href = other if rng.random() < 0.4 else other.split(site.host, 1)[1]
                anchors.append(Anchor(href, rng.choice(vocab.PAGE_TOPICS[page.lang])))
        friend = rng.choice(self.sites)
        anchors.append(Anchor(friend.origin + "/", friend.name, target="_blank"))
        anchors.append(Anchor(f"mailto:hello@{site.host}", "Mail"))
        anchors.append(Anchor("#top", "↑"))
        return anchors

    def _extras(self, tag: ImgTag, im: ImageSpec, page: PagePlan, site: Site, index: int) -> None:
        """Whether a describing alt credits the image's artist and which term it carries
        (drawn from a generator of the tag's own, so no other draw of the page moves)."""
        if not tag.alt_kind.startswith("match_"):
            return
        cfg = self.cfg
        rng = rng_for(cfg.seed, "extras", page.uid, index)
        if im.artist is not None:
            home = self.artist_homes.get(im.artist) == site.host
            share = cfg.artist_credit_home if home else cfg.artist_credit_elsewhere
            tag.artist_credited = rng.random() < share
        if tag.alt_kind == "match_en":
            draw, upto = rng.random(), 0.0
            for term, rate in cfg.term_rates:
                upto += rate
                if draw < upto:
                    tag.planted_term = term
                    break

    def _image_tag(
        self, tag: ImgTag, page: PagePlan, site: Site, rng: random.Random, index: int
    ) -> None:
        assert tag.image_id is not None
        im = self.images[tag.image_id]
        target = image_url(im)
        if tag.slot == "pixel":
            pid = hashlib.sha1(page.uid.encode()).hexdigest()[:10]
            tag.src = f"{target}?e=pv&pid={pid}&sid={site.index}"
            tag.attrs = [("width", "1"), ("height", "1")]
        else:
            written = display_form(target) if im.path_style == "unicode" else target
            tag.src, tag.url_kind = make_src(written, page.url, page.base_href, tag.url_kind)
        tag.url_resolved = resolve(page.url, page.base_href, tag.src)
        tag.image_url = canonical_url(tag.url_resolved)
        if tag.slot == "content":
            if rng.random() < 0.6 and im.visual is not None:
                tag.attrs = [("width", str(im.visual.width)), ("height", str(im.visual.height))]
            if rng.random() < 0.3:
                tag.attrs.append(("loading", "lazy"))
        if tag.slot == "logo" and tag.alt_kind == "boilerplate":
            tag.alt = "logo"  # one alt on every page of the site: duplicate (url, alt) pairs
            return
        self._extras(tag, im, page, site, index)
        credit = im.artist if tag.artist_credited else None
        alt = render_alt(
            tag.alt_kind, im, site, page.lang, rng, self.captions, credit, tag.planted_term
        )
        tag.alt, tag.alt_lang, tag.describes_image = alt.text, alt.lang, alt.describes

    def _special(self, tag: ImgTag, page: PagePlan, rng: random.Random) -> None:
        """<img> tags that point nowhere a crawler should fetch from."""
        kind = tag.url_kind
        tag.alt_kind = rng.choice(("empty", "boilerplate", "missing", "unserved_caption"))
        if kind == "data":
            tag.src = rng.choice(DATA_URLS)
        elif kind == "lazy":
            tag.url_kind, tag.src, tag.alt_kind = "data_lazy", DATA_URLS[0], "unserved_caption"
            site = self.sites[page.site]
            if site.images:
                lazy = self.images[rng.choice(site.images)]
                tag.attrs = [("data-src", image_url(lazy)), ("class", "lazyload")]
        elif kind == "javascript":
            tag.src = rng.choice(JAVASCRIPT_URLS)
            tag.alt_kind = rng.choice(("empty", "boilerplate"))
        elif kind == "private":
            tag.src = rng.choice(PRIVATE_IMAGE_URLS)
        elif kind == "dead_host":
            tag.src = f"http://{rng.choice(DEAD_HOSTS)}/images/{filename_alt(None, rng)}"
        else:
            raise ValueError(f"unknown special kind {kind}")
        tag.url_resolved = tag.src
        if tag.alt_kind == "unserved_caption":
            tag.alt, tag.alt_lang = unserved_caption(page.lang, rng), page.lang
        elif tag.alt_kind == "empty":
            tag.alt = ""
        elif tag.alt_kind == "boilerplate":
            tag.alt = rng.choice(vocab.BOILERPLATE_ALTS)
