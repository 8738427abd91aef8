"""Dagster: hops 1-3 for two slices of a small synthetic web, the dataset and aesthetics, then
image shards, diffusion training, samples and the replication audit.

The synthetic web is generated and served by the SyntheticWebResource; the CLIP model and
heads are the shipped defaults. Rows are conserved at every hop, every check passes, and a
re-run fetches nothing it already embedded.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance, materialize
from PIL import Image

from assets_defs.assets.aesthetics import aesthetic_scores, aesthetic_subset
from assets_defs.assets.alt_text_pairs import alt_text_pairs
from assets_defs.assets.clip_scores import clip_scores
from assets_defs.assets.crawl_manifest import crawl_manifest
from assets_defs.assets.diffusion_model import diffusion_model
from assets_defs.assets.image_shards import image_shards
from assets_defs.assets.laion_dataset import laion_dataset
from assets_defs.assets.opt_outs import opt_out_report
from assets_defs.assets.samples import replication_audit, samples
from assets_defs.assets.wat_image_links import wat_image_links
from assets_defs.partitions import crawls, wat_slices
from assets_defs.resources import (
    ClipModelResource,
    CrawlSourceResource,
    LakeResource,
    SyntheticWebResource,
)
from pipeline.lake.store import Lake
from pipeline.lake.tables import TableName

ALL = [
    crawl_manifest,
    wat_image_links,
    alt_text_pairs,
    clip_scores,
    laion_dataset,
    aesthetic_scores,
    aesthetic_subset,
    image_shards,
    diffusion_model,
    samples,
    replication_audit,
    opt_out_report,
]
WEB = {"pages_per_crawl": 80, "wat_files_per_crawl": 2, "sites": 8}


def metadata(instance: DagsterInstance, asset: str, partition: str | None) -> dict:
    records = instance.fetch_materializations(AssetKey(asset), limit=50).records
    event = next(r for r in records if r.partition_key == partition)
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def run_assets(run: dict, *assets, partition: str | None = None, run_config: dict | None = None):
    """Materialize ``assets`` in the module's instance, with its resources."""
    return materialize(
        ALL,
        selection=list(assets),
        partition_key=partition,
        instance=run["instance"],
        resources=run["resources"],
        run_config=run_config,
    )


def checks_passed(result) -> None:
    failed = [
        (c.asset_key.to_user_string(), c.check_name, c.description)
        for c in result.get_asset_check_evaluations()
        if not c.passed and c.check_name != "row_count_change"
    ]
    assert not failed, failed


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("laion")
    web_root = root / "web"
    resources = {
        "lake": LakeResource(root=str(root / "lake")),
        "crawl_source": CrawlSourceResource(
            data_root=str(web_root), collinfo_uri=str(web_root / "collinfo.json")
        ),
        "synthetic_web": SyntheticWebResource(root=str(web_root), **WEB),
        "clip_model": ClipModelResource(),
    }
    instance = DagsterInstance.ephemeral()
    first = materialize(
        ALL,
        selection=[crawl_manifest],
        instance=instance,
        resources=resources,
        run_config={"ops": {TableName.CRAWL_MANIFEST: {"config": {"slice_size": 1}}}},
    )
    assert first.success
    crawl = instance.get_dynamic_partitions(crawls.name)[0]
    keys = [k for k in instance.get_dynamic_partitions(wat_slices.name) if k.startswith(crawl)]
    assert len(keys) == 2
    for key in keys:
        hops = materialize(
            ALL,
            selection=[wat_image_links, alt_text_pairs, clip_scores],
            partition_key=key,
            instance=instance,
            resources=resources,
        )
        assert hops.success
        checks_passed(hops)
    dataset = materialize(
        ALL,
        selection=[laion_dataset, aesthetic_scores, aesthetic_subset],
        partition_key=crawl,
        instance=instance,
        resources=resources,
    )
    assert dataset.success
    checks_passed(dataset)
    return {
        "instance": instance,
        "resources": resources,
        "keys": keys,
        "crawl": crawl,
        "lake": Lake(str(root / "lake")),
        "web": web_root,
    }


def test_rows_are_conserved_hop_by_hop(run: dict) -> None:
    instance, lake, keys, crawl = run["instance"], run["lake"], run["keys"], run["crawl"]
    kept_pairs = 0
    clip_kept = 0
    for key in keys:
        pairs = lake.read(TableName.ALT_TEXT_PAIRS, [key])
        scores = lake.read(TableName.CLIP_SCORES, [key])
        n_kept = int(pc.sum(pairs.column("kept")).as_py())
        meta = metadata(instance, TableName.CLIP_SCORES, key)
        assert scores.num_rows == n_kept == meta["rows_in"]
        dropped = Counter(r for r in scores.column("drop_reason").to_pylist() if r)
        assert meta["rows_kept"] + sum(dropped.values()) == meta["rows_in"]
        assert all(meta[f"dropped/{r}"] == n for r, n in dropped.items())
        kept_pairs += n_kept
        clip_kept += meta["rows_kept"]
    release = metadata(instance, TableName.LAION_DATASET, crawl)
    assert release["rows_in"] == clip_kept
    assert release["rows_kept"] + release["dropped/global_duplicate"] == clip_kept
    assert release["stages"]["alt_text_pairs_kept"] == kept_pairs
    subset = metadata(instance, TableName.AESTHETIC_SUBSET, crawl)
    assert subset["rows_in"] == release["rows_kept"]
    dropped = sum(v for k, v in subset.items() if k.startswith("dropped/"))
    assert subset["rows_kept"] + dropped == subset["rows_in"]
    assert subset["rows_kept"] > 0 and "band_samples" in subset


def test_drop_reasons_follow_the_served_faults(run: dict) -> None:
    lake, keys = run["lake"], run["keys"]
    scores = lake.read(TableName.CLIP_SCORES, keys)
    reasons = Counter(scores.column("drop_reason").to_pylist())
    assert reasons[None] > 0 and reasons["too_small"] > 0 and reasons["below_threshold"] > 0
    assert any(r and r.startswith("download_failed:") for r in reasons)
    truth = pq.read_table(run["web"] / "truth.parquet").to_pylist()
    by_url = {row["url"]: row for row in truth}
    for row in scores.to_pylist():
        fact = by_url.get(row["url"])
        if fact is None:
            continue
        if fact["fault"] in ("not_found", "server_error", "truncated", "redirect_blocked"):
            assert row["drop_reason"].startswith("download_failed:"), row
        if fact["fault"] == "not_image":
            assert row["drop_reason"] in ("decode_failed:not_image", "too_small"), row
        if fact["header_noai"] and fact["fault"] is None:
            assert row["drop_reason"] == "header_noai", row


def test_released_dataset_layout_and_subsets(run: dict) -> None:
    lake, crawl = run["lake"], run["crawl"]
    release = lake.read(TableName.LAION_DATASET, [crawl])
    assert release.column_names[:8] == [
        "URL",
        "TEXT",
        "WIDTH",
        "HEIGHT",
        "similarity",
        "punsafe",
        "pwatermark",
        "LANGUAGE",
    ]
    assert {"pair_id", "url_id"} <= set(release.column_names)
    subsets = {
        name: lake.read(f"laion_subsets/{name}", [crawl])
        for name in ("laion2B-en", "laion2B-multi", "laion1B-nolang")
    }
    assert sum(t.num_rows for t in subsets.values() if t is not None) == release.num_rows
    assert set(subsets["laion2B-en"].column("LANGUAGE").to_pylist()) == {"en"}


def test_rerun_reuses_embeddings_without_fetching(run: dict) -> None:
    instance, key = run["instance"], run["keys"][0]
    before = metadata(instance, TableName.CLIP_SCORES, key)
    again = materialize(
        ALL,
        selection=[clip_scores],
        partition_key=key,
        instance=instance,
        resources=run["resources"],
    )
    assert again.success
    after = metadata(instance, TableName.CLIP_SCORES, key)
    assert after["urls_fetched"] < before["urls_fetched"]
    assert after["urls_from_cache"] >= before["urls_fetched"] - after["urls_fetched"]
    assert after["rows_kept"] == before["rows_kept"]
    scores = run["lake"].read(TableName.CLIP_SCORES, [key])
    assert any(scores.column("from_cache").to_pylist())
    embeddings = run["lake"].read(TableName.IMAGE_EMBEDDINGS, [key])
    assert embeddings.num_rows >= before["rows_kept"] > 0 or embeddings.num_rows > 0


def test_aesthetic_scores_come_from_stored_embeddings(run: dict) -> None:
    meta = metadata(run["instance"], TableName.AESTHETIC_SCORES, run["crawl"])
    assert meta["missing_embeddings"] == 0
    scores = run["lake"].read(TableName.AESTHETIC_SCORES, [run["crawl"]])
    assert scores.column("aesthetic").null_count == 0
    assert Path(meta["dagster/uri"]).exists()


def test_trace_follows_a_url_through_every_hop(run: dict) -> None:
    from pipeline.lineage.index import LineageIndex

    lake = run["lake"]
    subset = lake.read(TableName.AESTHETIC_SUBSET, [run["crawl"]]).to_pylist()
    chosen = next(r for r in subset if r["kept"])
    index = LineageIndex(lake)
    journey = index.trace(chosen["URL"])
    assert journey.seen and journey.clip and journey.release and journey.aesthetic
    story = journey.story()
    for heading in ("1. Common Crawl", "2. Alt-text", "3. CLIP filter", "4. Released", "5. Aesth"):
        assert heading in story
    assert "in the subset" in story and f"{chosen['aesthetic']:.2f}" in story
    by_file = index.trace_image(chosen["sha256"])
    assert chosen["pair_id"] in {c["pair_id"] for c in by_file.clip}
    assert by_file.to_dict()["query"] == {"sha256": chosen["sha256"]}

    scores = lake.read(TableName.CLIP_SCORES, run["keys"]).to_pylist()
    failed = next(r for r in scores if (r["drop_reason"] or "").startswith("download_failed:"))
    story = index.trace(failed["url"]).story()
    assert failed["drop_reason"] in story and "4. Released" not in story
    assert "never seen" in index.trace("https://nowhere.synth.test/none.png").story()


def test_shards_training_samples_and_audit(run: dict) -> None:
    """From aesthetic_subset to replication_audit, with a few training steps."""
    instance, lake, crawl = run["instance"], run["lake"], run["crawl"]
    shards = run_assets(run, image_shards, partition=crawl)
    assert shards.success
    checks_passed(shards)
    subset = lake.read(TableName.AESTHETIC_SUBSET, [crawl])
    results = lake.read(TableName.DOWNLOAD_RESULTS, [crawl])
    assert results.num_rows == int(pc.sum(subset.column("kept")).as_py())
    meta = metadata(instance, TableName.DOWNLOAD_RESULTS, crawl)
    ok = meta["status/success"]
    assert (
        ok > 0
        and ok + meta["status/failed_to_download"] + meta["status/failed_to_resize"]
        <= results.num_rows
    )
    assert metadata(instance, TableName.IMAGE_SHARDS, crawl)["shards_written_now"] >= 1

    again = run_assets(run, image_shards, partition=crawl)
    assert again.success
    assert metadata(instance, TableName.IMAGE_SHARDS, crawl)["shards_written_now"] == 0 or (
        metadata(instance, TableName.DOWNLOAD_RESULTS, crawl)["urls_attempted_now"]
        <= results.num_rows - ok
    )  # only failures are retried

    steps = {"train_steps": 20, "checkpoint_every": 10, "batch_size": 8, "warmup_steps": 2}
    sampler = {"steps": 4}
    trained = run_assets(
        run,
        diffusion_model,
        samples,
        replication_audit,
        run_config={
            "ops": {
                TableName.DIFFUSION_MODEL: {"config": steps},
                TableName.SAMPLES: {
                    "config": {
                        **sampler,
                        "prompts": ["a red circle on a white background", "a blue square"],
                        "seeds": [0, 1],
                    }
                },
                TableName.REPLICATION_AUDIT: {"config": {**sampler, "captions": 6}},
            }
        },
    )
    assert trained.success
    model = metadata(instance, TableName.DIFFUSION_MODEL, None)
    assert model["training_pairs"] == ok and model["steps_this_run"] == 20
    assert [c["step"] for c in model["checkpoints"]] == [10, 20]
    manifest = lake.read(TableName.TRAINING_MANIFEST, [model["run_fingerprint"]])
    final = manifest.filter(
        pc.equal(manifest.column("checkpoint_sha256"), model["checkpoint_sha256"])
    )
    assert set(final.column("pair_id").to_pylist()) <= set(results.column("pair_id").to_pylist())
    assert sum(final.column("times_seen").to_pylist()) == 20 * 8
    drawn = lake.read(TableName.SAMPLES, [model["checkpoint_sha256"][:16]])
    assert drawn.num_rows == 4 and set(drawn.column("seed").to_pylist()) == {0, 1}
    assert "grid" in metadata(instance, TableName.SAMPLES, None)
    audit = lake.read(TableName.REPLICATION_AUDIT, [model["checkpoint_sha256"][:16]])
    assert audit.num_rows == 6
    assert set(audit.column("nearest_pair_id").to_pylist()) <= set(
        final.column("pair_id").to_pylist()
    )

    resumed = run_assets(
        run, diffusion_model, run_config={"ops": {TableName.DIFFUSION_MODEL: {"config": steps}}}
    )
    assert resumed.success
    again_meta = metadata(instance, TableName.DIFFUSION_MODEL, None)
    assert again_meta["steps_this_run"] == 0  # same data and config: nothing left to train
    assert again_meta["checkpoint_sha256"] == model["checkpoint_sha256"]


def test_trace_by_lookalike_finds_a_resized_reencoded_copy(run: dict) -> None:
    """A shard's 64 px JPEG of an image finds the original URL by CLIP embedding."""
    from pipeline.hops.clip.embed import ClipModel, ClipSpec
    from pipeline.hops.download.shards import read_shard_samples
    from pipeline.lineage.index import LineageIndex

    lake, crawl = run["lake"], run["crawl"]
    results = lake.read(TableName.DOWNLOAD_RESULTS, [crawl])
    if results is None:  # the shards test did not run first (e.g. -k selection)
        pytest.skip("image_shards not materialized")
    ok = [r for r in results.to_pylist() if r["status"] == "success"][:3]
    root = lake.partition_uri(TableName.IMAGE_SHARDS, crawl)
    wanted = {r["pair_id"]: r["URL"] for r in ok}
    samples = [
        s
        for s in read_shard_samples(sorted({f"{root}/{r['shard']}" for r in ok}))
        if s.pair_id in wanted
    ]
    clip = ClipModel(ClipSpec(device="cpu"))
    index = LineageIndex(lake)
    for sample in samples[:3]:
        journey = index.trace_lookalike(sample.image, clip, k=3, min_similarity=0.8)
        assert wanted[sample.pair_id] in journey.query["lookalike"]
        assert journey.seen and journey.downloads
    noise = Image.effect_noise((64, 64), 80).convert("RGB")
    assert not index.trace_lookalike(noise, clip, min_similarity=0.99).seen


def test_opt_out_reports_checkpoints_and_rebuild_drops_the_pairs(run: dict) -> None:
    """An owner withdraws one trained image: the report names the checkpoint, and the next
    dataset build drops the pair with the reason opted_out:url."""
    from pipeline.hops.dataset import opt_outs as optout

    instance, lake, crawl = run["instance"], run["lake"], run["crawl"]
    manifest = lake.read(TableName.TRAINING_MANIFEST)
    if manifest is None:
        pytest.skip("diffusion_model not materialized")
    trained = manifest.column("pair_id")[0].as_py()
    url = next(
        r["URL"]
        for r in lake.read(TableName.DOWNLOAD_RESULTS).to_pylist()
        if r["pair_id"] == trained
    )
    optout.add(lake, [("url", url)], note="test")
    report = run_assets(run, opt_out_report)
    assert report.success
    meta = metadata(instance, TableName.OPT_OUT_REPORT, None)
    checkpoints = set(
        manifest.filter(pc.equal(manifest.column("pair_id"), trained))
        .column("checkpoint_sha256")
        .to_pylist()
    )
    assert set(meta["checkpoints_trained_on_opted_out"]) == checkpoints
    [check] = report.get_asset_check_evaluations()
    assert not check.passed
    rebuilt = run_assets(run, laion_dataset, partition=crawl)
    assert rebuilt.success
    checks_passed(rebuilt)
    decisions = lake.read(TableName.LAION_DATASET_DECISIONS, [crawl]).to_pylist()
    assert {d["drop_reason"] for d in decisions if d["pair_id"] == trained} == {"opted_out:url"}
    assert trained not in lake.read(TableName.LAION_DATASET, [crawl]).column("pair_id").to_pylist()
    assert metadata(instance, TableName.LAION_DATASET, crawl)["dropped/opted_out:url"] >= 1
