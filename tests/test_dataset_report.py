"""``dataset_report``: every figure of the datasheet equals an independent query of the lake.

The report runs on a fork of the small lake with its image shards (every hop through the
download), with term groups and artist names the synthetic captions hold. The checks read
the Delta tables directly (deltalake + DuckDB, not the lake store or the report's queries)
and match words with Python, not SQL regexes.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import pytest
from deltalake import DeltaTable

from assets_defs.assets.dataset_report import DatasetReportConfig, dataset_report
from assets_defs.assets.image_shards import image_shards
from pipeline.datasheet.terms import DEFAULT_TERM_GROUPS, exclusive_terms
from pipeline.lake.tables import TableName
from tests.lake_runs import LakeRun, checks_passed

GROUPS = {"circle": ["circle", "red circle", "blue circle"], "star": ["star", "yellow star"]}
ARTISTS = ["green", "hexagon", "nobody-at-all"]


@pytest.fixture(scope="module")
def reported(small_lake: LakeRun, tmp_path_factory: pytest.TempPathFactory) -> LakeRun:
    """A fork of the small lake with image shards and the crawl's dataset report."""
    run = small_lake.fork(tmp_path_factory.mktemp("report"))
    checks_passed(run.run(image_shards, partition=run.crawl))
    config = {"term_groups": GROUPS, "artists": ARTISTS}
    checks_passed(
        run.run(
            dataset_report,
            partition=run.crawl,
            run_config={"ops": {TableName.DATASET_REPORT: {"config": config}}},
        )
    )
    return run


@pytest.fixture(scope="module")
def db(reported: LakeRun) -> duckdb.DuckDBPyConnection:
    """The lake's current tables of the crawl, read with deltalake, as DuckDB views."""
    con = duckdb.connect()
    root = reported.root / "lake"
    crawl = reported.crawl
    for table in (TableName.WAT_IMAGE_LINKS, TableName.ALT_TEXT_PAIRS, TableName.CLIP_SCORES):
        data = DeltaTable(str(root / table)).to_pyarrow_table()
        con.register(f"raw_{table}", data)
        con.execute(
            f"CREATE VIEW {table} AS SELECT * FROM raw_{table} "
            f"WHERE starts_with(partition, '{crawl}_')"
        )
    for table in (
        TableName.LAION_DATASET_DECISIONS,
        TableName.LAION_DATASET,
        TableName.AESTHETIC_SUBSET,
        TableName.DOWNLOAD_RESULTS,
        TableName.DATASET_REPORT,
    ):
        con.register(f"raw_{table}", DeltaTable(str(root / table)).to_pyarrow_table())
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM raw_{table} WHERE partition = '{crawl}'")
    return con


def _figures(db, section: str) -> dict[tuple[str, str], dict]:
    found = db.execute(f"SELECT * FROM {TableName.DATASET_REPORT} WHERE section = ?", [section])
    names = [d[0] for d in found.description]
    rows = [dict(zip(names, row, strict=True)) for row in found.fetchall()]
    return {(r["name"], r["stage"]): r for r in rows}


def test_funnel_and_drop_reasons_match_the_lake(db) -> None:
    t = TableName
    hops = {
        "alt_text": f"SELECT kept, drop_reason FROM {t.ALT_TEXT_PAIRS}",
        "clip": f"SELECT kept, drop_reason FROM {t.CLIP_SCORES}",
        "release": f"SELECT kept, drop_reason FROM {t.LAION_DATASET_DECISIONS}",
        "aesthetic": f"SELECT kept, drop_reason FROM {t.AESTHETIC_SUBSET}",
        "download": f"SELECT status = 'success' AS kept, nullif(status, 'success') AS drop_reason "
        f"FROM {t.DOWNLOAD_RESULTS}",
    }
    funnel = _figures(db, "funnel")
    dropped = _figures(db, "dropped")
    (links,) = db.execute(f"SELECT count(*) FROM {t.WAT_IMAGE_LINKS}").fetchone()
    assert funnel["links", "links"]["count"] == links > 0
    expected_drops = {}
    previous_kept = links
    for hop, query in hops.items():
        counts = Counter()
        for kept, reason in db.execute(query).fetchall():
            counts["(kept)" if kept else reason] += 1
        rows_in = sum(counts.values())
        assert rows_in == previous_kept, hop  # each hop reads what the one before kept
        figure = funnel[hop, hop]
        assert (figure["total"], figure["count"]) == (rows_in, counts["(kept)"]), hop
        assert figure["share"] == pytest.approx(counts["(kept)"] / rows_in)
        previous_kept = counts.pop("(kept)")
        expected_drops.update({(reason, hop): n for reason, n in counts.items()})
    assert {k: v["count"] for k, v in dropped.items()} == expected_drops
    assert {"duplicate", "below_threshold"} <= {reason for reason, _ in expected_drops}
    assert set(funnel) == {("links", "links")} | {(h, h) for h in hops}


def test_top_domains_shares_and_opt_out_rates_match_the_lake(db) -> None:
    t = TableName

    def host(url: str | None) -> str:
        return (urlsplit(url).hostname or "") if url else ""

    links = Counter(
        h for (u,) in db.execute(f"SELECT url FROM {t.ALT_TEXT_PAIRS}").fetchall() if (h := host(u))
    )
    released = Counter(
        host(u) for (u,) in db.execute(f"SELECT URL FROM {t.LAION_DATASET}").fetchall()
    )
    opted = Counter()
    for query in (
        f"SELECT url, drop_reason FROM {t.ALT_TEXT_PAIRS}",
        f"SELECT url, drop_reason FROM {t.CLIP_SCORES}",
        f"SELECT c.url, d.drop_reason FROM {t.LAION_DATASET_DECISIONS} d JOIN {t.CLIP_SCORES} c "
        "ON c.pair_id = d.pair_id AND c.partition = d.source_partition",
        f"SELECT URL, drop_reason FROM {t.AESTHETIC_SUBSET}",
        f"SELECT URL, status FROM {t.DOWNLOAD_RESULTS}",
    ):
        for url, reason in db.execute(query).fetchall():
            if reason and reason.startswith("opted_out:"):
                opted[host(url)] += 1
    figures = _figures(db, "domain")
    top = sorted(links.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert [name for name, stage in figures if stage == "links"] == [d for d, _ in top]
    for domain, n in top:
        assert figures[domain, "links"]["count"] == n
        assert figures[domain, "links"]["total"] == sum(links.values())
        assert figures[domain, "release"]["count"] == released[domain]
        assert figures[domain, "release"]["total"] == sum(released.values())
        assert figures[domain, "opted_out"]["count"] == opted[domain]
        assert figures[domain, "opted_out"]["share"] == pytest.approx(opted[domain] / n)


def test_languages_per_stage_match_the_lake(db) -> None:
    t = TableName
    queries = {
        "alt_text": f"SELECT language FROM {t.ALT_TEXT_PAIRS} WHERE kept",
        "clip": f"SELECT language FROM {t.CLIP_SCORES} WHERE kept",
        "release": f"SELECT LANGUAGE FROM {t.LAION_DATASET}",
        "aesthetic": f"SELECT LANGUAGE FROM {t.AESTHETIC_SUBSET} WHERE kept",
    }
    expected = {}
    for stage, query in queries.items():
        counts = Counter(lang or "unknown" for (lang,) in db.execute(query).fetchall())
        for lang, n in counts.items():
            expected[lang, stage] = (n, sum(counts.values()))
    figures = _figures(db, "language")
    assert {k: (v["count"], v["total"]) for k, v in figures.items()} == expected
    assert len({lang for lang, _ in expected}) >= 3


def _has(text: str | None, term: str) -> bool:
    """``term``'s words appear consecutively among the text's words (any case)."""
    words = re.findall(r"\w+", (text or "").lower())
    want = term.lower().split()
    return any(words[i : i + len(want)] == want for i in range(len(words)))


def _stage_texts(db) -> dict[str, list[str | None]]:
    t = TableName
    queries = {
        "links": f"SELECT alt FROM {t.WAT_IMAGE_LINKS}",
        "alt_text": f"SELECT text FROM {t.ALT_TEXT_PAIRS} WHERE kept",
        "clip": f"SELECT text FROM {t.CLIP_SCORES} WHERE kept",
        "release": f"SELECT TEXT FROM {t.LAION_DATASET}",
        "aesthetic": f"SELECT TEXT FROM {t.AESTHETIC_SUBSET} WHERE kept",
        "download": f"SELECT TEXT FROM {t.DOWNLOAD_RESULTS} WHERE status = 'success'",
    }
    return {s: [r for (r,) in db.execute(q).fetchall()] for s, q in queries.items()}


@pytest.mark.parametrize("section", ["term", "artist"])
def test_terms_and_artists_with_each_filters_lift_match_the_lake(db, section: str) -> None:
    texts = _stage_texts(db)
    figures = _figures(db, section)
    if section == "term":
        entries = [(f"{g}:{term}", term, others) for g, term, others in exclusive_terms(GROUPS)]
    else:
        entries = [(a, a, []) for a in ARTISTS]
    seen_lift = False
    for name, term, others in entries:
        previous = None
        for stage, captions in texts.items():
            n = sum(1 for c in captions if _has(c, term) and not any(_has(c, o) for o in others))
            figure = figures[name, stage]
            assert (figure["count"], figure["total"]) == (n, len(captions)), (name, stage)
            rate = n / len(captions)
            if previous:
                assert figure["lift"] == pytest.approx(rate / previous), (name, stage)
                seen_lift = True
            else:
                assert figure["lift"] is None
            previous = rate
    assert seen_lift
    assert len(figures) == len(entries) * len(texts)


def test_duplicates_and_missing_ai_column_match_the_lake(db, reported: LakeRun) -> None:
    t = TableName
    figures = _figures(db, "duplicates")
    pairs, within = db.execute(
        f"SELECT count(*), count(*) FILTER (WHERE drop_reason = 'duplicate') "
        f"FROM {t.ALT_TEXT_PAIRS}"
    ).fetchone()
    assert (
        figures["duplicate_in_slice", "alt_text"]["count"],
        figures["duplicate_in_slice", "alt_text"]["total"],
    ) == (within, pairs)
    decided, across = db.execute(
        f"SELECT count(*), count(*) FILTER (WHERE drop_reason = 'global_duplicate') "
        f"FROM {t.LAION_DATASET_DECISIONS}"
    ).fetchone()
    assert figures["duplicate_across_slices", "release"]["count"] == across
    assert figures["duplicate_across_slices", "release"]["total"] == decided
    hashes = Counter(h for (h,) in db.execute(f"SELECT sha256 FROM {t.LAION_DATASET}").fetchall())
    shared = sum(n for n in hashes.values() if n > 1)
    assert figures["released_rows_sharing_an_image", "release"]["count"] == shared
    assert figures["distinct_images_released", "release"]["count"] == len(
        [h for h in hashes if h is not None]
    )
    # the small lake's hop 3 records no ai_generated column: no figure, and the report says so
    schema = DeltaTable(str(reported.root / "lake" / t.CLIP_SCORES)).schema()
    columns = [f.name for f in schema.fields]
    meta = reported.metadata(t.DATASET_REPORT, reported.crawl)
    assert ("ai_generated" in columns) == meta["ai_generated_recorded"]
    if "ai_generated" not in columns:
        assert not _figures(db, "ai_generated")
        assert "no ai_generated column" in meta["datasheet"]


def test_datasheet_markdown_and_html_show_the_figures(db, reported: LakeRun) -> None:
    meta = reported.metadata(TableName.DATASET_REPORT, reported.crawl)
    markdown = meta["datasheet"]
    html = Path(meta["datasheet_html"]).read_text()
    (version,) = db.execute(
        f"SELECT DISTINCT release_version FROM {TableName.DATASET_REPORT}"
    ).fetchone()
    assert version == DeltaTable(str(reported.root / "lake" / TableName.LAION_DATASET)).version()
    assert meta["release_version"] == version and f"release-v{version}" in meta["datasheet_html"]
    for heading in (
        "Motivation",
        "Composition: the funnel",
        "drop reasons",
        "top image domains",
        "languages",
        "Caption terms",
        "Artist names",
        "Duplicates",
        "AI-generated",
    ):
        assert heading in markdown and heading in html, heading
    for row in _figures(db, "funnel").values():
        assert f"| {row['total']:,} | {row['count']:,} |" in markdown
    assert html.count("data:image/png;base64,") == 3  # funnel, languages, terms: inline
    assert "src='http" not in html and "<script" not in html
    assert meta["cpu_s"] >= meta["cpu_s/process"] > 0


def test_every_hop_reports_its_cpu_seconds(small_lake: LakeRun, reported: LakeRun) -> None:
    """Each hop's materialization has cpu_s = its threads' + its child processes' seconds."""
    key, crawl = small_lake.keys[0], small_lake.crawl
    hops = [
        (small_lake, TableName.CRAWL_MANIFEST, None),
        (small_lake, TableName.WAT_IMAGE_LINKS, key),
        (small_lake, TableName.ALT_TEXT_PAIRS, key),
        (small_lake, TableName.CLIP_SCORES, key),
        (small_lake, TableName.LAION_DATASET, crawl),
        (small_lake, TableName.AESTHETIC_SCORES, crawl),
        (small_lake, TableName.AESTHETIC_SUBSET, crawl),
        (reported, TableName.DOWNLOAD_RESULTS, crawl),
        (reported, TableName.DATASET_REPORT, crawl),
    ]
    for run, asset, partition in hops:
        meta = run.metadata(asset, partition)
        own, children = meta["cpu_s/process"], meta["cpu_s/children"]
        assert own > 0 and children >= 0, asset
        assert meta["cpu_s"] == pytest.approx(own + children, abs=2e-3), asset


def test_default_term_groups_and_bad_groups() -> None:
    defaults = DatasetReportConfig().options()
    assert defaults.term_groups == DEFAULT_TERM_GROUPS
    assert ("wedding", "wedding", ["gay wedding", "lesbian wedding"]) in exclusive_terms(
        DEFAULT_TERM_GROUPS
    )
    assert ("wedding", "gay wedding", []) in exclusive_terms(DEFAULT_TERM_GROUPS)
    with pytest.raises(ValueError, match="twice"):
        exclusive_terms({"x": ["nurse", "Nurse"]})
