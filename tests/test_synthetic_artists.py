"""The synthetic web's artists (home sites, styles, reposts, credits) and its planted caption
terms, checked against the truth tables of a generated web."""

from __future__ import annotations

import collections
import json
import math
import re
from typing import Any

import pyarrow.parquet as pq
import pytest

from pipeline.datasheet.terms import (
    DEFAULT_TERM_GROUPS,
    exclusive_terms,
    synthetic_artist_names,
    term_pattern,
)
from pipeline.synthetic import vocab
from pipeline.synthetic.config import SyntheticWebConfig
from pipeline.synthetic.draw import TEXTURES
from pipeline.synthetic.generate import WebManifest, generate_web
from pipeline.synthetic.plan import plan_web

# A small web whose every term is planted often enough to measure its rate.
RATE = 0.04
CONFIG = SyntheticWebConfig(
    wat_files_per_crawl=2,
    pages_per_crawl=60,
    sites=8,
    term_rates=tuple((t, RATE) for ts in DEFAULT_TERM_GROUPS.values() for t in ts),
)
NAMES = re.compile("|".join(re.escape(a.name) for a in vocab.ARTISTS))


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> WebManifest:
    return generate_web(tmp_path_factory.mktemp("artists") / "web", CONFIG)


@pytest.fixture(scope="module")
def truth(web: WebManifest) -> dict[int, dict[str, Any]]:
    return {r["image_id"]: r for r in pq.read_table(web.path("truth")).to_pylist()}


@pytest.fixture(scope="module")
def pages(web: WebManifest) -> list[dict[str, Any]]:
    """One row per distinct <img> (a page re-crawled in the second crawl counts once)."""
    rows = pq.read_table(web.path("pages")).to_pylist()
    return list({(r["page_url"], r["img_index"]): r for r in rows}.values())


def _matched_term(text: str) -> str | None:
    """The term of the dataset report's default groups that ``text`` counts for."""
    found = []
    for _, term, longer in exclusive_terms(DEFAULT_TERM_GROUPS):
        if re.search(term_pattern(term), text) and not any(
            re.search(term_pattern(o), text) for o in longer
        ):
            found.append(term)
    assert len(found) <= 1, (text, found)
    return found[0] if found else None


def test_roster_is_the_dataset_reports_default() -> None:
    assert synthetic_artist_names() == tuple(a.name for a in vocab.ARTISTS)
    assert sum(a.famous for a in vocab.ARTISTS) == 2 and len(vocab.ARTISTS) == 6
    assert {a.texture for a in vocab.ARTISTS} == set(TEXTURES)  # one mark per hand
    assert len({(a.colors, a.grounds) for a in vocab.ARTISTS}) == len(vocab.ARTISTS)
    planted = {t for t, _ in SyntheticWebConfig().term_rates}
    assert planted == {t for ts in DEFAULT_TERM_GROUPS.values() for t in ts}


def test_artists_images_homes_and_reposts(web: WebManifest, truth: dict[int, dict]) -> None:
    roster = json.loads((web.root / "manifest.json").read_text())["artists"]
    assert list(roster) == [a.name for a in vocab.ARTISTS]
    by_artist = collections.defaultdict(list)
    for row in truth.values():
        if row["artist"] is not None:
            by_artist[row["artist"]].append(row)
    assert set(by_artist) <= set(roster) and len(by_artist) >= 4
    copies = 0
    for name, rows in by_artist.items():
        artist = next(a for a in vocab.ARTISTS if a.name == name)
        for row in rows:
            assert row["shape"] in artist.shapes and row["color"] in artist.colors
            assert not row["unsafe"]  # no artist draws the hazard
            if row["repost_of"] is None and row["redirect_image_id"] is None:
                assert row["host"] == roster[name]["home"]  # originals live at home
        for row in rows:
            if row["repost_of"] is None:
                continue
            assert row["host"] != roster[name]["home"]
            original = truth.get(row["repost_of"])
            if original is None or original["sha256"] is None or row["sha256"] is None:
                continue
            assert original["artist"] == name and original["shape"] == row["shape"]
            same = (original["watermark"], original["fault"]) == (row["watermark"], row["fault"])
            if row["repost_kind"] == "copy" and same and row["fault"] is None:
                assert row["sha256"] == original["sha256"]  # byte-identical repost
                copies += 1
            if row["repost_kind"] == "resized":
                assert (row["width"], row["height"]) != (original["width"], original["height"])
            if row["repost_kind"] == "reencoded":
                assert row["format"] != original["format"]
    assert copies >= 1
    plain = [r for r in truth.values() if r["artist"] is None and r["role"] == "content"]
    assert plain and len(plain) > len(truth) // 3


def test_credits_name_the_artist_and_nobody_else(pages: list[dict], truth: dict) -> None:
    credited = [r for r in pages if r["artist_credited"]]
    assert credited
    for row in pages:
        names = set(NAMES.findall(row["alt"] or ""))
        if row["artist_credited"]:
            assert row["alt_kind"].startswith("match_")
            assert names == {truth[row["image_id"]]["artist"]}, row["alt"]
        else:
            assert not names, row["alt"]
    langs = {r["alt_lang"] for r in credited}
    assert len(langs) >= 2  # "by", "von", "par"...: the alt's own language


def test_planted_terms_are_in_their_alts_and_nowhere_else(pages: list[dict]) -> None:
    for row in pages:
        found = _matched_term(row["alt"] or "")
        assert found == row["planted_term"], (row["alt"], row["planted_term"])
        if row["planted_term"] is not None:
            assert row["alt_kind"] == "match_en"


def _assert_rates(counts: collections.Counter, eligible: int, rates: dict[str, float]) -> None:
    """Every term's count is within 4 binomial standard deviations of its base rate."""
    assert eligible > 0
    for term, rate in rates.items():
        sd = math.sqrt(eligible * rate * (1 - rate))
        z = (counts[term] - eligible * rate) / max(sd, 1e-9)
        assert abs(z) < 4, (term, counts[term], eligible, rate)


def test_planted_rates_on_a_generated_web(pages: list[dict]) -> None:
    eligible = [r for r in pages if r["alt_kind"] == "match_en"]
    counts = collections.Counter(r["planted_term"] for r in eligible if r["planted_term"])
    _assert_rates(counts, len(eligible), dict(CONFIG.term_rates))
    total = sum(counts.values())
    share = len(CONFIG.term_rates) * RATE
    assert abs(total - share * len(eligible)) < 4 * math.sqrt(len(eligible) * share * (1 - share))


def test_planted_rates_on_the_default_web() -> None:
    cfg = SyntheticWebConfig()
    plan = plan_web(cfg)  # the default web's pages and alts, without drawing its images
    tags = {}
    for crawl in plan.crawls:
        for page in crawl.pages:
            for i, tag in enumerate(page.imgs):
                tags[(page.uid, i)] = tag
    eligible = [t for t in tags.values() if t.alt_kind == "match_en"]
    assert len(eligible) > 1500
    counts = collections.Counter(t.planted_term for t in eligible if t.planted_term)
    _assert_rates(counts, len(eligible), dict(cfg.term_rates))
    by_artist = collections.Counter(im.artist for im in plan.images if im.artist)
    reposts = collections.Counter(im.artist for im in plan.images if im.repost_of is not None)
    famous = [a.name for a in vocab.ARTISTS if a.famous]
    obscure = [a.name for a in vocab.ARTISTS if not a.famous]
    assert set(by_artist) == {a.name for a in vocab.ARTISTS}
    # famous artists are reposted across the web, obscure ones mostly stay at home
    assert min(reposts[n] for n in famous) > 3 * max(reposts[n] for n in obscure)
    assert all(reposts[n] < by_artist[n] - reposts[n] for n in obscure)
