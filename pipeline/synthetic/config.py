"""Configuration of the synthetic web: every size, rate and seed lives here."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

# Bump when the generator's output changes for an unchanged config, so that
# `generate_web` regenerates webs written by an older generator.
GENERATOR_VERSION = "4"

# The kinds the generator knows how to make (the config picks shares among them).
KNOWN_KINDS = {
    "fault_shares": {"not_found", "server_error", "slow", "truncated", "wrong_content_type",
                     "not_image", "redirect", "redirect_blocked", "oversized"},
    "ref_kind_weights": {"absolute", "root_relative", "relative", "protocol_relative"},
    "special_kind_weights": {"data", "javascript", "private", "dead_host", "lazy"},
    "path_style_weights": {"plain", "query", "unicode"},
    "format_weights": {"JPEG", "PNG", "WEBP", "GIF"},
    "background_weights": {"plain", "gradient", "stripes", "dots", "noise"},
    "palette_weights": {"harmonious", "clashing", "neutral"},
    "epoch2_shares": {"replaced", "late_redirect", "bomb"},
    "repost_kind_weights": {"copy", "resized", "reencoded"},
    "alt_kind_weights": {"mismatch", "boilerplate", "filename", "empty", "missing", "long",
                         "entity", "whitespace", "mojibake", "short"},
}  # fmt: skip


@dataclass(frozen=True)
class SyntheticWebConfig:
    """What the synthetic web contains. Equal configs give byte-identical webs."""

    seed: int = 2026
    crawl_ids: tuple[str, ...] = ("SYNTH-2026-10", "SYNTH-2026-20")
    wat_files_per_crawl: int = 4
    segments_per_crawl: int = 2
    pages_per_crawl: int = 1100
    sites: int = 40
    # Share of a crawl's pages that re-crawl pages of the previous crawl (same HTML).
    recrawl_share: float = 0.4
    # Languages of captions and alts; every one needs tables in `vocab.py`.
    languages: tuple[str, ...] = ("en", "de", "fr", "es", "it", "nl")
    # Weights of the site languages (same order as `languages`).
    site_language_weights: tuple[float, ...] = (0.55, 0.12, 0.1, 0.1, 0.07, 0.06)
    # Share of "match" alts that use the site's language instead of the drawn one.
    alt_follows_site_language: float = 0.5
    https_share: float = 0.6

    # <img> tags per page (inclusive range), and the page slots that are not content images.
    imgs_per_page: tuple[int, int] = (4, 8)
    logo_site_share: float = 0.7
    pixel_page_share: float = 0.15
    special_page_share: float = 0.3
    base_href_page_share: float = 0.08
    noai_meta_page_share: float = 0.06
    redirect_record_share: float = 0.02
    # Where a content <img> points: a new image, an image of the same site, or the CDN.
    new_image_share: float = 0.45
    cdn_image_share: float = 0.12
    cdn_new_image_share: float = 0.3

    # Alt kinds of content images and their weights (match_<lang> for each language).
    alt_kind_weights: tuple[tuple[str, float], ...] = (
        ("match_en", 0.30),
        ("match_de", 0.05),
        ("match_fr", 0.05),
        ("match_es", 0.05),
        ("match_it", 0.03),
        ("match_nl", 0.03),
        ("mismatch", 0.06),
        ("boilerplate", 0.08),
        ("filename", 0.06),
        ("empty", 0.05),
        ("missing", 0.08),
        ("long", 0.02),
        ("entity", 0.03),
        ("whitespace", 0.03),
        ("mojibake", 0.02),
        ("short", 0.02),
    )
    # How a content <img> writes its URL.
    ref_kind_weights: tuple[tuple[str, float], ...] = (
        ("absolute", 0.3),
        ("root_relative", 0.3),
        ("relative", 0.32),
        ("protocol_relative", 0.08),
    )
    # Special <img> tags (slots that are not images of the synthetic web).
    special_kind_weights: tuple[tuple[str, float], ...] = (
        ("data", 0.25),
        ("javascript", 0.1),
        ("private", 0.35),
        ("dead_host", 0.15),
        ("lazy", 0.15),
    )
    # Image URL styles: a plain path, a cache-busting query, non-ASCII characters.
    path_style_weights: tuple[tuple[str, float], ...] = (
        ("plain", 0.9),
        ("query", 0.06),
        ("unicode", 0.04),
    )

    # Image sizes: (class, weight, min side, max side).
    size_classes: tuple[tuple[str, float, int, int], ...] = (
        ("icon", 0.12, 16, 48),
        ("small", 0.25, 64, 128),
        ("medium", 0.56, 128, 384),
        ("large", 0.065, 512, 768),
        ("xl", 0.005, 1024, 1024),
    )
    format_weights: tuple[tuple[str, float], ...] = (
        ("JPEG", 0.45),
        ("PNG", 0.3),
        ("WEBP", 0.15),
        ("GIF", 0.1),
    )
    background_weights: tuple[tuple[str, float], ...] = (
        ("plain", 0.3),
        ("gradient", 0.25),
        ("stripes", 0.15),
        ("dots", 0.12),
        ("noise", 0.18),
    )
    max_shape_count: int = 5
    # Colour pairs: harmonious ones raise the aesthetic score, clashing ones lower it.
    palette_weights: tuple[tuple[str, float], ...] = (
        ("harmonious", 0.45),
        ("clashing", 0.25),
        ("neutral", 0.3),
    )
    # Share of centred (well composed) images among those with 1-2 shapes and with more.
    centered_share_few: float = 0.8
    centered_share_many: float = 0.35
    # Share of new site images stored next to their page (so `img/x.png` resolves).
    page_local_image_share: float = 0.3
    watermark_share: float = 0.1
    unsafe_share: float = 0.05
    jpeg_quality: int = 88

    # Faults of served images (each kind appears at least once).
    fault_shares: tuple[tuple[str, float], ...] = (
        ("not_found", 0.03),
        ("server_error", 0.015),
        ("slow", 0.004),
        ("truncated", 0.015),
        ("wrong_content_type", 0.015),
        ("not_image", 0.015),
        ("redirect", 0.02),
        ("redirect_blocked", 0.008),
        ("oversized", 0.004),
    )
    oversized_bytes: int = 24_000_000
    bomb_side: int = 20_000
    host_noai_share: float = 0.1
    image_noai_share: float = 0.01
    # What changes after hop 3 (a server with epoch=2): shares of the healthy, well-scored
    # content images that then serve other bytes, redirect into a private address, or a bomb.
    epoch2_shares: tuple[tuple[str, float], ...] = (
        ("replaced", 0.03),
        ("late_redirect", 0.015),
        ("bomb", 0.005),
    )

    # Artists (`vocab.ARTISTS`): each has a home site, where this share of new content images
    # is their work; this share of new content images elsewhere reposts an artist's image
    # (famous artists `famous_repost_weight` times as often as obscure ones), as a copy, a
    # resized copy or a re-encoded copy.
    artist_home_share: float = 0.6
    artist_repost_share: float = 0.05
    famous_repost_weight: float = 10.0
    repost_kind_weights: tuple[tuple[str, float], ...] = (
        ("copy", 0.5),
        ("resized", 0.3),
        ("reencoded", 0.2),
    )
    # Share of an artist's describing (match_*) alts that credit them ("... by Name"), on
    # their home site and elsewhere (reposts are often uncredited).
    artist_credit_home: float = 0.7
    artist_credit_elsewhere: float = 0.25
    # Caption terms planted in English describing alts (match_en), each at its base rate:
    # the share of those alts that carry it (at most one term each). The default terms are
    # the dataset report's (`pipeline.datasheet.terms.DEFAULT_TERM_GROUPS`).
    term_rates: tuple[tuple[str, float], ...] = (
        ("wedding", 0.03),
        ("gay wedding", 0.006),
        ("lesbian wedding", 0.004),
        ("professor", 0.02),
        ("female professor", 0.006),
        ("male professor", 0.002),
        ("nurse", 0.02),
        ("male nurse", 0.006),
        ("female nurse", 0.002),
        ("doctor", 0.02),
        ("female doctor", 0.006),
        ("male doctor", 0.002),
        ("engineer", 0.02),
        ("female engineer", 0.006),
        ("male engineer", 0.002),
        ("ceo", 0.01),
        ("female ceo", 0.004),
        ("male ceo", 0.001),
    )

    # Runtime only (how, not what): not part of the fingerprint.
    workers: int = field(default=2, metadata={"content": False})

    def __post_init__(self) -> None:
        """Reject configs the generator cannot honour."""
        from .vocab import LANGUAGES

        unknown = [lang for lang in self.languages if lang not in LANGUAGES]
        if unknown:
            raise ValueError(f"no caption tables for languages {unknown}")
        if len(self.site_language_weights) != len(self.languages):
            raise ValueError("site_language_weights must match languages")
        if not self.crawl_ids or len(set(self.crawl_ids)) != len(self.crawl_ids):
            raise ValueError("crawl_ids must be non-empty and unique")
        lo, hi = self.imgs_per_page
        if not 2 <= lo <= hi:
            raise ValueError("imgs_per_page must satisfy 2 <= min <= max")
        if self.sites < 1 or self.pages_per_crawl < 1 or self.wat_files_per_crawl < 1:
            raise ValueError("sites, pages_per_crawl and wat_files_per_crawl must be >= 1")
        if self.segments_per_crawl < 1:
            raise ValueError("segments_per_crawl must be >= 1")
        if "en" not in self.languages:
            raise ValueError("languages must include 'en' (truth captions are English)")
        self._check_artists_and_terms()
        for name, known in KNOWN_KINDS.items():
            for kind, *_ in getattr(self, name):
                if kind not in known and not (name == "alt_kind_weights" and kind[:6] == "match_"):
                    raise ValueError(f"{name}: unknown kind {kind!r} (known: {sorted(known)})")

    def _check_artists_and_terms(self) -> None:
        shares = ("artist_home_share", "artist_repost_share", "artist_credit_home",
                  "artist_credit_elsewhere")  # fmt: skip
        for name in shares:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.famous_repost_weight < 0:
            raise ValueError("famous_repost_weight must be >= 0")
        terms = [" ".join(t.lower().split()) for t, _ in self.term_rates]
        if len(set(terms)) != len(terms) or not all(terms):
            raise ValueError("term_rates must name distinct, non-empty terms")
        rates = [r for _, r in self.term_rates]
        if any(r < 0 for r in rates) or sum(rates) > 1.0:
            raise ValueError("term_rates must be >= 0 and sum to at most 1")

    def alt_weights(self) -> list[tuple[str, float]]:
        """Alt kind weights, without match_<lang> kinds of languages not configured."""
        return [
            (kind, w)
            for kind, w in self.alt_kind_weights
            if not kind.startswith("match_") or kind[6:] in self.languages
        ]

    def content_dict(self) -> dict[str, object]:
        """The fields that decide the generated bytes."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.metadata.get("content", True)
        }

    def fingerprint(self) -> str:
        """Stable hash of the content fields and the generator version."""
        payload = {"generator": GENERATOR_VERSION, "config": self.content_dict()}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()
