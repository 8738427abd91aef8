"""Pure rules of hops 3-5: thresholds, the embedding cache, global dedup, aesthetic cut-offs."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.hops.aesthetic.scores import SubsetRules, apply_rules
from pipeline.hops.clip.filter import Thresholds, UrlOutcome, cached_outcomes, embeddings_table
from pipeline.hops.dataset.release import SubsetNames, build_release
from pipeline.lake.tables import AESTHETIC_SCORES_SCHEMA as SCORES_SCHEMA
from pipeline.lake.tables import CLIP_SCORES_SCHEMA, RELEASE_SCHEMA, TableName
from quality.gx_runner import run_suite
from quality.suites import build_suite


def test_thresholds_by_language() -> None:
    t = Thresholds()
    assert t.for_language("en") == 0.28
    assert t.for_language("de") == t.for_language(None) == t.for_language("") == 0.26
    custom = Thresholds({"en": 0.3, "fr": 0.2}, other=0.25)
    assert (custom.for_language("fr"), custom.for_language("nl")) == (0.2, 0.25)


def test_embedding_cache_matches_model_and_url() -> None:
    outcomes = [
        UrlOutcome(url_id=f"{i:016x}", url=f"http://a.test/{i}.png", status="ok", width=64,
                   height=64, n_bytes=9000, sha256="0" * 64, image_format="PNG",
                   embedding=np.full(4, i, np.float32))
        for i in range(3)
    ]  # fmt: skip
    table = pa.concat_tables(
        [embeddings_table(outcomes, "m@1", 4), embeddings_table(outcomes[:1], "m@2", 4)]
    )
    found = cached_outcomes(table, "m@1", {f"{0:016x}", f"{2:016x}", "ffffffffffffffff"})
    assert set(found) == {f"{0:016x}", f"{2:016x}"}
    assert found[f"{2:016x}"].from_cache and found[f"{2:016x}"].embedding.tolist() == [2.0] * 4
    assert set(cached_outcomes(table, "m@2", {f"{1:016x}"})) == set()
    assert cached_outcomes(None, "m@1", {"x"}) == {}


def _scores(rows: list[dict]) -> pa.Table:
    base = {"url_id": "a" * 16, "crawl_id": "C", "width": 100, "height": 80,
            "sha256": "f" * 64, "punsafe": 0.1, "pwatermark": 0.1, "kept": True,
            "source_partition": "C_00000"}  # fmt: skip
    return pa.Table.from_pylist([{**base, **r} for r in rows])


def test_release_dedups_url_and_text_and_splits_by_language() -> None:
    scores = _scores([
        {"pair_id": "0" * 16, "url": "http://a.test/1.png", "text": "a red circle",
         "language": "en", "similarity": 0.30},
        {"pair_id": "1" * 16, "url": "http://a.test/1.png", "text": "a red circle",
         "language": "en", "similarity": 0.35},
        {"pair_id": "2" * 16, "url": "http://a.test/2.png", "text": "ein roter Kreis",
         "language": "de", "similarity": 0.31},
        {"pair_id": "3" * 16, "url": "http://a.test/3.png", "text": "zzzz qqq",
         "language": None, "similarity": 0.29},
        {"pair_id": "4" * 16, "url": "http://a.test/4.png", "text": "dropped earlier",
         "language": "en", "similarity": 0.1, "kept": False},
    ])  # fmt: skip
    result = build_release(scores, SubsetNames())
    assert result.rows_in == 4 and result.rows_kept == 3
    assert dict(result.dropped) == {"global_duplicate": 1}
    dup = result.decisions.filter(pa.compute.equal(result.decisions["pair_id"], "0" * 16))
    assert dup.column("duplicate_of").to_pylist() == ["1" * 16]
    assert result.release.schema == RELEASE_SCHEMA
    assert {k: t.num_rows for k, t in result.subsets.items()} == {
        "laion2B-en": 1, "laion2B-multi": 1, "laion1B-nolang": 1
    }  # fmt: skip
    assert result.subsets["laion2B-en"].column("pair_id").to_pylist() == ["1" * 16]
    assert run_suite(result.release, build_suite(TableName.LAION_DATASET)).success


def test_release_suite_fails_on_bad_values() -> None:
    good = build_release(_scores([
        {"pair_id": "0" * 16, "url": "http://a.test/1.png", "text": "a red circle",
         "language": "en", "similarity": 0.30}]), SubsetNames()).release  # fmt: skip
    bad = good.set_column(4, "similarity", pa.array([1.5], pa.float32()))
    result = run_suite(bad, build_suite(TableName.LAION_DATASET))
    assert not result.success and "similarity" in result.summary()


def _scored(rows: list[dict]) -> pa.Table:
    base = {"url_id": "a" * 16, "URL": "http://a.test/x.png", "TEXT": "t", "LANGUAGE": "en",
            "WIDTH": 64, "HEIGHT": 64, "similarity": 0.3, "punsafe": 0.1, "pwatermark": 0.1,
            "sha256": "f" * 64}  # fmt: skip
    return pa.Table.from_pylist([{**base, **r} for r in rows], schema=SCORES_SCHEMA)


def test_aesthetic_rules_name_every_drop() -> None:
    scored = _scored([
        {"pair_id": "0" * 16, "aesthetic": 6.7},
        {"pair_id": "1" * 16, "aesthetic": 4.0},
        {"pair_id": "2" * 16, "aesthetic": 6.1, "punsafe": 0.9},
        {"pair_id": "3" * 16, "aesthetic": 5.5, "pwatermark": 0.95},
        {"pair_id": "4" * 16, "aesthetic": None},
        {"pair_id": "5" * 16, "aesthetic": 5.2},
    ])  # fmt: skip
    result = apply_rules(scored, SubsetRules())
    assert result.table.column("drop_reason").to_pylist() == [
        None, "below_aesthetic", "unsafe", "watermarked", "missing_embedding", None
    ]  # fmt: skip
    assert result.table.column("aesthetic_band").to_pylist() == [6.5, None, 6.0, 5.0, None, 5.0]
    assert result.rows_kept == 2 and result.rows_in == 6
    assert result.bands == {">=5": 2, ">=6": 1, ">=6.5": 1}
    strict = apply_rules(scored, SubsetRules(min_score=6.5))
    assert strict.rows_kept == 1
    assert run_suite(result.table, build_suite(TableName.AESTHETIC_SUBSET)).success


def _clip_row(**over) -> dict:
    row = {name: None for name in CLIP_SCORES_SCHEMA.names}
    row.update(
        pair_id="0" * 16, url_id="1" * 16, url="http://a.test/x.png", text="a red circle",
        language="en", crawl_id="C", model_id="m@1", fetch_status="ok", http_status=200,
        fetch_attempts=1, from_cache=False, width=64, height=64, n_bytes=9000, sha256="e" * 64,
        similarity=0.5, threshold=0.28, punsafe=0.1, pwatermark=0.2, kept=True,
    )  # fmt: skip
    row.update(over)
    return row


def test_clip_scores_suite_on_good_and_bad_rows() -> None:
    good = pa.Table.from_pylist(
        [_clip_row(), _clip_row(pair_id="2" * 16, similarity=None, punsafe=None, pwatermark=None,
                                width=None, height=None, n_bytes=None, sha256=None, kept=False,
                                fetch_status="download_failed:http_4xx",
                                drop_reason="download_failed:http_4xx")],
        schema=CLIP_SCORES_SCHEMA,
    )  # fmt: skip
    assert run_suite(good, build_suite(TableName.CLIP_SCORES)).success
    cases = {
        "punsafe": _clip_row(punsafe=1.5),
        "drop_reason": _clip_row(kept=False, drop_reason="because"),
        "similarity": _clip_row(similarity=0.1),  # kept below its threshold
    }
    for column, row in cases.items():
        result = run_suite(pa.Table.from_pylist([row], schema=CLIP_SCORES_SCHEMA),
                           build_suite(TableName.CLIP_SCORES))  # fmt: skip
        assert not result.success and column in result.summary(), column


def test_release_dedups_urls_that_differ_only_by_normalization() -> None:
    """The release's key is hop 2's: the normalized URL (url_id) and the cleaned text."""
    from pipeline.lake.keys import url_id
    from pipeline.lake.urls import normalize_url

    urls = ["http://A.test:80/1.png#top", "http://a.test/1.png", "http://a.test/2.png"]
    scores = _scores([
        {"pair_id": str(i) * 16, "url": u, "url_id": url_id(normalize_url(u)),
         "text": "a red circle", "language": "en", "similarity": 0.3}
        for i, u in enumerate(urls)
    ])  # fmt: skip
    result = build_release(scores)
    assert sorted(result.release.column("URL").to_pylist()) == urls[:1] + urls[2:]
    assert dict(result.dropped) == {"global_duplicate": 1}
