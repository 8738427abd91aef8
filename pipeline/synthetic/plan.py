"""Plan the whole web (sites, pages, <img> tags, crawls) before writing a byte.

Planning draws nothing, so the counts of any config are cheap to check. Order of work:
structure (which <img> shows which image, with which kind of alt and URL), then per-image
flags (`imagespecs.assign_image_flags`), then rendering page by page (`render`).
"""

from __future__ import annotations

import random

from . import vocab
from .artists import ArtistDesk, Attribution
from .config import SyntheticWebConfig
from .imagespecs import assign_image_flags, new_image
from .model import CrawlPlan, ImageSpec, ImgTag, PagePlan, Site, WebPlan
from .render import PageRenderer, page_dir
from .sampling import Deck, rng_for, share_deck
from .urls import DEAD_HOSTS

CDN_HOST = "static.pixelcdn.synth.test"
TRACKER_HOST = "px.trackly.synth.test"
_IMG_DIRS = ("/img/", "/wp-content/uploads/2026/03/", "/media/", "/static/images/", "/assets/img/")
_TOPIC_SLUGS = ("new-shapes", "colour-study", "weekly-sketches", "favourites", "fresh-prints")
_ROBOTS_NOAI = ("noai, noimageai", "noimageai", "noai", "NoAI, NoImageAI")


def _make_sites(cfg: SyntheticWebConfig, rng: random.Random) -> list[Site]:
    """Content sites: every configured language gets at least one (when there are enough)."""
    names = [(a, b) for a in vocab.SITE_ADJECTIVES for b in vocab.SITE_NOUNS]
    rng.shuffle(names)
    sites = []
    for i in range(cfg.sites):
        a, b = names[i % len(names)]
        suffix = "" if i < len(names) else str(i // len(names))
        if i < len(cfg.languages):
            lang = cfg.languages[i]
        else:
            lang = rng.choices(cfg.languages, cfg.site_language_weights)[0]
        sites.append(
            Site(
                index=i,
                host=f"{a}-{b}{suffix}.synth.test",
                name=f"{a.title()} {b.title()}",
                scheme="https" if rng.random() < cfg.https_share else "http",
                lang=lang,
                kind=rng.choice(vocab.SITE_KINDS),
                img_dir=rng.choice(_IMG_DIRS),
                has_logo=rng.random() < cfg.logo_site_share,
                logo_alt_style=rng.choice(("boilerplate", "named_logo", "missing")),
            )
        )
    n_noai = min(len(sites), max(1, round(cfg.host_noai_share * len(sites))))
    for site in rng.sample(sites, n_noai):
        site.header_noai = True
    return sites


class _Planner:
    def __init__(self, cfg: SyntheticWebConfig) -> None:
        self.cfg = cfg
        seed = cfg.seed
        self.images: list[ImageSpec] = []
        self.pages: dict[str, PagePlan] = {}
        self.decks = {
            name: Deck(weights, rng_for(seed, "deck", name), block)
            for name, weights, block in (
                ("alt", cfg.alt_weights(), 100),
                ("ref", cfg.ref_kind_weights, 100),
                ("special", cfg.special_kind_weights, 100),
                ("path_style", cfg.path_style_weights, 100),
                ("format", cfg.format_weights, 100),
                ("background", cfg.background_weights, 100),
                ("size", [(c, w) for c, w, _, _ in cfg.size_classes], 1000),
            )
        }
        self.shares = {
            name: share_deck(share, rng_for(seed, "share", name))
            for name, share in (
                ("pixel", cfg.pixel_page_share),
                ("special", cfg.special_page_share),
                ("base", cfg.base_href_page_share),
                ("noai", cfg.noai_meta_page_share),
            )
        }
        self.sites = _make_sites(cfg, rng_for(seed, "sites"))
        self.artists = ArtistDesk(cfg, self.sites)
        self.site_weights = [1 / (i + 1) ** 0.6 for i in range(len(self.sites))]
        n = len(self.sites)
        self.cdn = Site(n, CDN_HOST, "Pixel CDN", "https", "en", "cdn", "/c/", role="cdn")
        self.tracker = Site(
            n + 1, TRACKER_HOST, "Trackly", "http", "en", "tracker", "/", role="tracker"
        )
        self.pixel_id: int | None = None
        self.noai_counter = 0

    def _image(
        self,
        role: str,
        site: Site,
        directory: str,
        crawl_id: str,
        attribution: Attribution | None = None,
    ) -> ImageSpec:
        im = new_image(
            self.cfg, self.decks, len(self.images), role, site, directory, crawl_id, attribution
        )
        if attribution is not None:
            self.artists.record(im, attribution)
        self.images.append(im)
        return im

    def _pixel_id(self, crawl_id: str) -> int:
        if self.pixel_id is None:
            im = ImageSpec(
                len(self.images),
                "pixel",
                TRACKER_HOST,
                "http",
                "/px.gif",
                "",
                "plain",
                None,
                crawl_id,
            )
            self.images.append(im)
            self.pixel_id = im.id
        return self.pixel_id

    def _page_path(self, site: Site, n: int, rng: random.Random) -> str:
        if n == 1:
            return "/"
        slug = f"{rng.choice(_TOPIC_SLUGS)}-{n}"
        return {
            "gallery": f"/gallery/{slug}.html",
            "blog": f"/blog/2026/{rng.randint(1, 12):02d}/{slug}/",
            "shop": f"/shop/products/{slug}",
            "news": f"/news/{slug}.html",
            "portfolio": f"/portfolio/{slug}/",
        }[site.kind]

    def _new_page(self, crawl_id: str, rng: random.Random) -> PagePlan:
        cfg = self.cfg
        site = rng.choices(self.sites, self.site_weights)[0]
        site.page_counter += 1
        path = self._page_path(site, site.page_counter, rng)
        url = site.origin + path
        page = PagePlan(uid=url, site=site.index, url=url, lang=site.lang, first_crawl_id=crawl_id)
        if self.shares["noai"].draw() == "yes":
            page.robots_meta = _ROBOTS_NOAI[self.noai_counter % len(_ROBOTS_NOAI)]
            page.noai = True
            self.noai_counter += 1
        elif rng.random() < 0.3:
            page.robots_meta = rng.choice(("index, follow", "max-image-preview:large"))
        if self.shares["base"].draw() == "yes":
            if rng.random() < 0.5:
                page.base_href = f"{self.cdn.origin}/c/{site.host.split('.')[0]}/"
            else:
                page.base_href = site.origin + page_dir(path) + "media/"
        tags: list[ImgTag] = []
        if site.has_logo:
            if site.logo_image is None:
                site.logo_image = self._image("logo", site, "/static/", crawl_id).id
            tags.append(ImgTag("logo", site.logo_alt_style, "root_relative", site.logo_image))
        special = self.shares["special"].draw() == "yes"
        pixel = self.shares["pixel"].draw() == "yes"
        n_content = max(1, rng.randint(*cfg.imgs_per_page) - len(tags) - special - pixel)
        for _ in range(n_content):
            tags.append(self._content_tag(site, crawl_id, page_dir(path) + "img/", rng))
        if special:
            pos = rng.randint(1 if site.has_logo else 0, len(tags))
            tags.insert(pos, ImgTag("special", "", self.decks["special"].draw()))
        if pixel:
            alt_kind = "empty" if rng.random() < 0.7 else "missing"
            tags.append(ImgTag("pixel", alt_kind, "tracking_pixel", self._pixel_id(crawl_id)))
        page.imgs = tags
        site.pages.append(url)
        self.pages[url] = page
        return page

    def _content_tag(self, site: Site, crawl_id: str, local_dir: str, rng: random.Random) -> ImgTag:
        """A content image: new, reused from the site, or from the shared CDN."""
        cfg = self.cfg
        x = rng.random()
        if x < cfg.cdn_image_share:
            if not self.cdn.images or rng.random() < cfg.cdn_new_image_share:
                im = self._image("cdn", self.cdn, "/c/", crawl_id)
                self.cdn.images.append(im.id)
            else:
                im = self.images[rng.choice(self.cdn.images)]
        elif x < cfg.cdn_image_share + cfg.new_image_share or not site.images:
            directory = local_dir if rng.random() < cfg.page_local_image_share else site.img_dir
            attribution = self.artists.attribute(len(self.images), site)
            im = self._image("content", site, directory, crawl_id, attribution)
            site.images.append(im.id)
        else:
            im = self.images[rng.choice(site.images)]
        alt_kind = self.decks["alt"].draw()
        follow = rng.random() < cfg.alt_follows_site_language
        if alt_kind == "match_en" and site.lang != "en" and follow:
            alt_kind = f"match_{site.lang}"
        return ImgTag("content", alt_kind, self.decks["ref"].draw(), im.id)

    def _redirect_capture(self, crawl_id: str, i: int, target: PagePlan) -> PagePlan:
        """A 301 capture (no HTML) pointing at a page of the same crawl."""
        site = self.sites[target.site]
        url = f"http://{site.host}/old/{crawl_id.lower()}-{i}.html"
        return PagePlan(
            uid=f"{url}#{crawl_id}",
            site=site.index,
            url=url,
            lang=site.lang,
            first_crawl_id=crawl_id,
            status=301,
            location=target.url,
        )

    def run(self) -> WebPlan:
        cfg = self.cfg
        crawls: list[CrawlPlan] = []
        previous: list[PagePlan] = []
        for crawl_id in cfg.crawl_ids:
            rng = rng_for(cfg.seed, "crawl", crawl_id)
            n_re = min(len(previous), round(cfg.recrawl_share * cfg.pages_per_crawl))
            recrawled = rng.sample(previous, n_re)
            new = [self._new_page(crawl_id, rng) for _ in range(cfg.pages_per_crawl - n_re)]
            pages = recrawled + new
            rng.shuffle(pages)
            for i in range(round(cfg.redirect_record_share * len(pages))):
                capture = self._redirect_capture(crawl_id, i, rng.choice(pages))
                pages.insert(rng.randrange(len(pages) + 1), capture)
            crawls.append(CrawlPlan(crawl_id, pages, {p.uid for p in recrawled}))
            previous.extend(new)
        assign_image_flags(self.images, cfg)
        homes = self.artists.home_hosts()
        renderer = PageRenderer(cfg, self.sites, self.images, homes)
        for page in self.pages.values():
            renderer.render(page)
        sites = [*self.sites, self.cdn, self.tracker]
        return WebPlan(sites, self.images, crawls, DEAD_HOSTS, homes)


def plan_web(cfg: SyntheticWebConfig) -> WebPlan:
    """The full plan of a synthetic web: deterministic in the config."""
    return _Planner(cfg).run()
