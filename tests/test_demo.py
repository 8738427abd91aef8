"""The main job end to end at the small demo's size (``crawl2diffusion demo --small``: one
crawl, two WAT files, a short training), through a persistent Dagster instance, then again."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from assets_defs.demo import run_demo
from assets_defs.demo_profiles import SMALL as SMALL_DEMO
from pipeline.lake.store import Lake
from pipeline.lake.tables import TableName
from pipeline.provenance.ai_share import SHARDS
from pipeline.provenance.reader import read_provenance
from pipeline.synthetic.feedback import FeedbackConfig

SMALL = dataclasses.replace(  # the small demo with the smallest feedback crawl
    SMALL_DEMO, feedback=FeedbackConfig(wat_files=1, per_signal=1, not_allowed=1)
)
TRAINING = {  # the small demo's training, shorter still: the test proves every hop runs
    "ops": {
        TableName.DIFFUSION_MODEL: {
            "config": {"train_steps": 4, "checkpoint_every": 4, "batch_size": 4, "warmup_steps": 1}
        },
        TableName.SAMPLES: {"config": {"steps": 4, "seeds": [0]}},
        TableName.REPLICATION_AUDIT: {"config": {"steps": 4, "captions": 4}},
        TableName.STYLE_IMITATION: {"config": {"steps": 4, "seeds": [0]}},
    }
}


def _check_feedback_loop(summary, lake: Lake, web: Path) -> None:
    """The web grew by the feedback crawl from the trained checkpoint; hops 1-3, the release,
    the subset and ``ai_share`` ran on it; the summary says its AI share."""
    crawl = SMALL.feedback.crawl_id
    sha = summary.training[TableName.DIFFUSION_MODEL].rsplit("checkpoint ", 1)[1]
    assert f"checkpoint {sha}" in summary.feedback[crawl]
    manifest = json.loads((web / "manifest.json").read_text())
    assert manifest["feedback"]["checkpoint_sha256"].startswith(sha)
    assert any(p.startswith(crawl) for p in summary.partitions)
    assert crawl in lake.partitions(TableName.AESTHETIC_SUBSET)
    assert crawl not in lake.partitions(TableName.DOWNLOAD_RESULTS)  # up to the subset only
    assert set(summary.ai_share) == {*SMALL.web["crawl_ids"], crawl}
    assert "stripped (undetectable by metadata)" in summary.ai_share[crawl]
    assert f"AI share of {crawl}" in summary.render()
    base = lake.read(TableName.AI_SHARE, list(SMALL.web["crawl_ids"])).to_pylist()
    key = ("share", SHARDS, "any")
    shards = [r for r in base if (r["section"], r["stage"], r["signal"]) == key]
    assert [r["total"] for r in shards] == [summary.downloads["success"]]  # what training read
    figures = lake.read(TableName.AI_SHARE, [crawl]).to_pylist()
    read = {r["signal"]: r for r in figures if r["section"] == "recall"}
    assert read["any"]["total"] > 0 and read["human"]["count"] == 0
    assert read["stripped"]["count"] == 0 < read["stripped"]["total"]


@pytest.mark.slow
def test_demo_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    summary = run_demo(tmp_path / "data", profile=SMALL, training=TRAINING)
    out, console = capfd.readouterr()
    for line in ("-> crawl_manifest_job", "<- clip_filter_job [", "fetched ", "img2dataset: "):
        assert line in console, line  # runs start and end, hop 3 and downloads show progress
    assert "img2dataset: Downloading starting now" in console  # its output is in the run log
    assert "Downloading starting now" not in out
    assert console.count("training child pid") == 1  # the child's lines, once (through Pipes)
    crawls = len(SMALL.web["crawl_ids"])
    # the feedback loop adds a crawl_manifest_job and a release_job run, and its slices
    assert summary.partitions and summary.runs == 1 + 2 * len(summary.partitions) + crawls + 3
    links = summary.table_rows[TableName.WAT_IMAGE_LINKS]
    pairs = summary.table_rows[TableName.ALT_TEXT_PAIRS]
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
    assert summary.table_rows[TableName.CLIP_SCORES] == kept
    assert 0 < summary.table_rows["clip_scores (kept)"] < kept
    assert summary.table_rows[TableName.LAION_DATASET] <= summary.table_rows["clip_scores (kept)"]
    assert (
        summary.table_rows[TableName.AESTHETIC_SUBSET]
        == summary.table_rows[TableName.LAION_DATASET]
    )
    assert (
        0
        < summary.table_rows["aesthetic_subset (kept)"]
        < summary.table_rows[TableName.LAION_DATASET]
    )
    assert "open the UI" in summary.render()
    lake = Lake(str(tmp_path / "data" / "lake"))
    web_crawls = list(SMALL.web["crawl_ids"])
    subset = lake.read(TableName.AESTHETIC_SUBSET, web_crawls, columns=["kept"])
    assert sum(summary.downloads.values()) == sum(subset.column("kept").to_pylist())
    _check_feedback_loop(summary, lake, tmp_path / "data" / "web")
    assert summary.downloads["success"] > 0
    assert "checkpoint" in summary.training[TableName.DIFFUSION_MODEL]
    assert "flagged" in summary.training[TableName.REPLICATION_AUDIT]
    assert "artists imitated by name" in summary.training[TableName.STYLE_IMITATION]
    assert "own-prompt" in summary.training[TableName.SAMPLES]
    pngs = lake.read(TableName.SAMPLES, columns=["png"])
    assert pngs is not None and pngs.num_rows > 0  # every sample is labelled, our reader knows
    assert {read_provenance(p).ai_generated for p in pngs.column("png").to_pylist()} == {True}

    # the persistent instance holds the runs, partitions and check results for the UI
    instance = DagsterInstance.from_config(str(summary.dagster_home))
    assert len(instance.get_runs()) == summary.runs
    assert sorted(instance.get_dynamic_partitions("wat_slices")) == summary.partitions
    materialized = instance.get_materialized_partitions(AssetKey(TableName.ALT_TEXT_PAIRS))
    assert materialized == set(summary.partitions)
    # the re-run leaves the feedback crawl as it is (growing again: tests/test_feedback_loop.py)
    again = run_demo(tmp_path / "data", profile=dataclasses.replace(SMALL, feedback=None),
                     training=TRAINING)  # fmt: skip
    assert again.table_rows == summary.table_rows  # idempotent re-run over the same web
    # the re-run fetches only URLs that failed before: the rest were embedded by this model
    records = instance.fetch_materializations(AssetKey(TableName.CLIP_SCORES), limit=200).records
    for key in again.partitions:
        runs = [r.asset_materialization.metadata for r in records if r.partition_key == key]
        latest, first = runs[0], runs[-1]
        assert latest["urls_fetched"].value < first["urls_fetched"].value
        assert latest["urls_from_cache"].value > 0
    # the re-run downloads no image it already has, and trains nothing (same data and config)
    assert sum(again.downloads.values()) == sum(summary.downloads.values())
    assert again.downloads["success"] >= summary.downloads["success"]
    shards = instance.fetch_materializations(AssetKey(TableName.DOWNLOAD_RESULTS), limit=20).records
    assert all(r.asset_materialization.metadata["urls_attempted_now"].value
               <= summary.downloads.get("failed_to_download", 0)
               + summary.downloads.get("failed_to_resize", 0)
               for r in shards[:crawls])  # fmt: skip
    if again.downloads["success"] == summary.downloads["success"]:  # same training data
        model = instance.fetch_materializations(
            AssetKey(TableName.DIFFUSION_MODEL), limit=2
        ).records
        assert model[0].asset_materialization.metadata["steps_this_run"].value == 0
        assert (
            again.training[TableName.DIFFUSION_MODEL] == summary.training[TableName.DIFFUSION_MODEL]
        )
