"""Hop 2: turn raw image links into cleaned, language-tagged (url, text) pairs.

Every input row leaves with exactly one decision: kept, or dropped with a reason (datatrove
style: each rule returns ``(True, None)`` or ``(False, reason)``). Rules, in order:
URL (bad_url, not_http, private_host), owners' opt-outs of the URL or its domain (the lake's
``opt_outs`` list: opted_out:url, opted_out:domain), page opt-out (page_noai), alt text
(missing_alt, empty_alt, alt_too_short), then duplicate (within the partition only: pairs
repeated across slices are decided by ``laion_dataset``'s global dedup, so a slice's decisions
do not depend on which other slices ran before it). Kept rows get a language, its score (margin
over the runner-up) and the detector's name.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import ftfy
import pyarrow as pa

from pipeline.hops.alt_text import language
from pipeline.hops.alt_text.language import LanguageRules
from pipeline.hops.dataset.opt_outs import OptOutList
from pipeline.lake.keys import pair_id as make_pair_id
from pipeline.lake.keys import url_id as make_url_id
from pipeline.lake.tables import ALT_TEXT_SCHEMA
from pipeline.lake.urls import HostPolicy, check_url, normalize_url

_OPT_OUT_TOKENS = frozenset({"noai", "noimageai"})
_TOKEN_SPLIT = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class AltTextRules:
    """The hop-2 thresholds and switches (all configurable from Dagster)."""

    min_chars: int = 5
    private_host_allowlist: tuple[str, ...] = ()
    min_language_score: float = 0.05
    """Least margin of the top language's confidence over the runner-up's (lingua's
    minimum relative distance) for a language to be named; the margin is ``language_score``."""
    min_language_words: int = 2
    """Texts with fewer words (or mostly non-words: file names, codes) get no language."""
    languages: tuple[str, ...] = ()
    """ISO 639-1 codes the detector may answer; empty means every language lingua knows."""
    low_accuracy_language_mode: bool = False


def clean_alt(alt: str) -> str:
    """Unescape HTML entities (also double-escaped ones), fix mojibake and control characters
    (ftfy), collapse whitespace."""
    text = alt
    for _ in range(3):
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    if not (text.isascii() and text.isprintable()):  # ftfy leaves printable ASCII as it is
        text = ftfy.fix_text(text, unescape_html=False)
    return " ".join(text.split())


def is_page_opted_out(robots: str | None) -> bool:
    """True when a robots meta value carries ``noai`` or ``noimageai``."""
    if not robots:
        return False
    return not _OPT_OUT_TOKENS.isdisjoint(_TOKEN_SPLIT.split(robots.lower()))


def check_alt(alt: str | None, min_chars: int) -> tuple[bool, str | None, str | None]:
    """``(ok, reason, cleaned_text)`` for one raw alt attribute."""
    if alt is None:
        return False, "missing_alt", None
    text = clean_alt(alt)
    if not text:
        return False, "empty_alt", text
    if len(text) < min_chars:
        return False, "alt_too_short", text
    return True, None, text


def language_rules(rules: AltTextRules) -> LanguageRules:
    """The language part of the hop-2 rules."""
    return LanguageRules(
        min_margin=rules.min_language_score,
        min_words=rules.min_language_words,
        languages=tuple(rules.languages),
        low_accuracy=rules.low_accuracy_language_mode,
    )


def detector_name(rules: AltTextRules) -> str:
    return language.detector_name(rules.low_accuracy_language_mode)


def detect_languages(texts: Sequence[str], rules: AltTextRules) -> list[tuple[str | None, float]]:
    """(ISO 639-1 code or None when unsure, score) for each text, offline (see ``language``)."""
    return language.identify(texts, language_rules(rules))


@dataclass
class AltTextResult:
    """One partition's decisions: every input row, and the counts by outcome."""

    table: pa.Table
    dropped: Counter[str] = field(default_factory=Counter)

    @property
    def rows_in(self) -> int:
        return self.table.num_rows

    @property
    def rows_kept(self) -> int:
        return self.rows_in - sum(self.dropped.values())


def parse_alt_texts(
    links: pa.Table,
    rules: AltTextRules = AltTextRules(),
    opt_outs: OptOutList | None = None,
) -> AltTextResult:
    """Decide every row of one partition of a hop-1 table, from that partition alone;
    ``opt_outs`` is the owners' list (URLs, domains). Of the pairs sharing a dedup key, the
    earliest link (WAT path, record offset, link index) is kept, whatever the row order."""
    policy = HostPolicy.from_list(rules.private_host_allowlist)
    opt_outs = opt_outs or OptOutList()
    first: dict[str, tuple] = {}  # dedup key -> where its kept pair is (the earliest link)
    rows = links.select(
        [
            "pair_id",
            "url",
            "alt",
            "page_robots",
            "crawl_id",
            "page_url",
            "wat_path",
            "wat_record_offset",
            "link_index",
        ]
    ).to_pydict()
    n = links.num_rows
    out: dict[str, list] = {name: [None] * n for name in ALT_TEXT_SCHEMA.names}
    dropped: Counter[str] = Counter()
    to_detect: list[int] = []
    for i in range(n):
        url, alt = rows["url"][i], rows["alt"][i]
        out["pair_id"][i] = rows["pair_id"][i]
        out["url"][i] = url
        out["alt"][i] = alt
        for name in ("crawl_id", "page_url", "wat_path", "wat_record_offset", "link_index"):
            out[name][i] = rows[name][i]
        reason: str | None
        ok, reason = check_url(url, policy)
        if ok:
            normalized = normalize_url(url)
            out["url_id"][i] = make_url_id(normalized)
            if opt_outs and (withdrawn := opt_outs.match(url)):
                ok, reason = False, withdrawn
            elif is_page_opted_out(rows["page_robots"][i]):
                ok, reason = False, "page_noai"
        if ok:
            ok, reason, text = check_alt(alt, rules.min_chars)
            out["text"][i] = text
        if ok:
            key = make_pair_id(normalized, out["text"][i])
            out["dedup_key"][i] = key
            at = (rows["wat_path"][i], rows["wat_record_offset"][i], rows["link_index"][i], i)
            if key not in first or at < first[key]:
                first[key] = at
        out["kept"][i] = ok
        out["drop_reason"][i] = reason
    for i in range(n):
        key = out["dedup_key"][i]
        if out["kept"][i] and first[key][-1] != i:
            out["kept"][i], out["drop_reason"][i] = False, "duplicate"
        if out["kept"][i]:
            to_detect.append(i)
        else:
            dropped[out["drop_reason"][i] or "unknown"] += 1
    name = detector_name(rules)
    for i, (code, score) in zip(
        to_detect, detect_languages([out["text"][i] for i in to_detect], rules), strict=True
    ):
        out["language"][i] = code
        out["language_score"][i] = score
        out["language_detector"][i] = name
    return AltTextResult(pa.Table.from_pydict(out, schema=ALT_TEXT_SCHEMA), dropped)
