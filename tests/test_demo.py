"""The main job end to end on a small synthetic web, through a persistent Dagster instance."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from assets_defs.demo import run_demo


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    summary = run_demo(tmp_path / "data", slice_size=2, web={"pages_per_crawl": 120})
    crawls = 2
    assert summary.partitions and summary.runs == 1 + 2 * len(summary.partitions) + crawls
    links = summary.table_rows["wat_image_links"]
    pairs = summary.table_rows["alt_text_pairs"]
    kept = summary.table_rows["alt_text_pairs (kept)"]
    assert links == pairs > kept > 0
    assert pairs == kept + sum(summary.dropped.values())
    for reason in (
        "missing_alt",
        "empty_alt",
        "alt_too_short",
        "not_http",
        "private_host",
        "page_noai",
        "duplicate",
    ):
        assert summary.dropped.get(reason, 0) > 0, reason
    assert summary.table_rows["clip_scores"] == kept
    assert 0 < summary.table_rows["clip_scores (kept)"] < kept
    assert summary.table_rows["laion_dataset"] <= summary.table_rows["clip_scores (kept)"]
    assert summary.table_rows["aesthetic_subset"] == summary.table_rows["laion_dataset"]
    assert 0 < summary.table_rows["aesthetic_subset (kept)"] < summary.table_rows["laion_dataset"]
    assert "open the UI" in summary.render()

    # the persistent instance holds the runs, partitions and check results for the UI
    instance = DagsterInstance.from_config(str(summary.dagster_home))
    assert len(instance.get_runs()) == summary.runs
    assert sorted(instance.get_dynamic_partitions("wat_slices")) == summary.partitions
    materialized = instance.get_materialized_partitions(AssetKey("alt_text_pairs"))
    assert materialized == set(summary.partitions)
    again = run_demo(tmp_path / "data", slice_size=2, web={"pages_per_crawl": 120})
    assert again.table_rows == summary.table_rows  # idempotent re-run over the same web
    # the re-run fetches only URLs that failed before: the rest were embedded by this model
    records = instance.fetch_materializations(AssetKey("clip_scores"), limit=200).records
    for key in summary.partitions:
        runs = [r.asset_materialization.metadata for r in records if r.partition_key == key]
        latest, first = runs[0], runs[-1]
        assert latest["urls_fetched"].value < first["urls_fetched"].value
        assert latest["urls_from_cache"].value > 0
