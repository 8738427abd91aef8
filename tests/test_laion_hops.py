"""Dagster: hops 1-3 for two slices of a small synthetic web, the dataset and aesthetics, then
image shards, diffusion training, samples and the replication audit.

The small web's lake is built once per test run (``small_lake`` in conftest.py) and the
trained lake once per module (``trained``, a fork of it); tests only read them, and a test that
re-runs a hop or changes the lake does so on its own fork. The CLIP model and heads are the
shipped defaults. Rows are conserved at every hop, every check passes, and a re-run fetches
nothing it already embedded.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from PIL import Image

from assets_defs.assets.clip_scores import clip_scores
from assets_defs.assets.diffusion_model import diffusion_model
from assets_defs.assets.image_shards import ImageShardsConfig, image_shards
from assets_defs.assets.laion_dataset import laion_dataset
from assets_defs.assets.opt_outs import opt_out_report
from assets_defs.assets.samples import replication_audit, samples
from assets_defs.assets.style_imitation import style_imitation
from pipeline.lake.tables import (
    DOWNLOAD_FAILED_STATUSES,
    DOWNLOAD_REFUSED_STATUSES,
    DOWNLOAD_SUCCESS,
    RELEASE_DROP_REASONS,
    TableName,
)
from pipeline.lineage.calibrate import near_duplicate_rule
from tests.lake_runs import LakeRun, checks_passed

STEPS = {"train_steps": 20, "checkpoint_every": 10, "batch_size": 8, "warmup_steps": 2}
SAMPLER = {"steps": 4}
TRAINING = {
    "ops": {
        TableName.DIFFUSION_MODEL: {"config": STEPS},
        TableName.SAMPLES: {
            "config": {
                **SAMPLER,
                "prompts": ["a red circle on a white background", "a blue square"],
                "seeds": [0, 1],
            }
        },
        TableName.REPLICATION_AUDIT: {"config": {**SAMPLER, "captions": 6}},
        TableName.STYLE_IMITATION: {
            "config": {**SAMPLER, "subjects": ["a star"], "seeds": [0], "portfolio_size": 4}
        },
    }
}


@pytest.fixture(scope="module")
def trained(small_lake: LakeRun, tmp_path_factory: pytest.TempPathFactory) -> LakeRun:
    """A fork of the small lake through image_shards, a few training steps, samples and the
    replication audit."""
    run = small_lake.fork(tmp_path_factory.mktemp("trained"))
    checks_passed(run.run(image_shards, partition=run.crawl))
    run.run(diffusion_model, samples, replication_audit, style_imitation, run_config=TRAINING)
    return run


def test_rows_are_conserved_hop_by_hop(small_lake: LakeRun) -> None:
    lake, keys, crawl = small_lake.lake, small_lake.keys, small_lake.crawl
    kept_pairs = 0
    clip_kept = 0
    for key in keys:
        pairs = lake.read(TableName.ALT_TEXT_PAIRS, [key])
        scores = lake.read(TableName.CLIP_SCORES, [key])
        n_kept = int(pc.sum(pairs.column("kept")).as_py())
        meta = small_lake.metadata(TableName.CLIP_SCORES, key)
        assert scores.num_rows == n_kept == meta["rows_in"]
        dropped = Counter(r for r in scores.column("drop_reason").to_pylist() if r)
        assert meta["rows_kept"] + sum(dropped.values()) == meta["rows_in"]
        assert all(meta[f"dropped/{r}"] == n for r, n in dropped.items())
        assert meta["near_duplicate_threshold"] == near_duplicate_rule().threshold
        kept_pairs += n_kept
        clip_kept += meta["rows_kept"]
    release = small_lake.metadata(TableName.LAION_DATASET, crawl)
    assert release["rows_in"] == clip_kept
    dropped = {k: v for k, v in release.items() if k.startswith("dropped/")}
    assert set(dropped) <= {f"dropped/{r}" for r in RELEASE_DROP_REASONS}
    assert release["rows_kept"] + sum(dropped.values()) == clip_kept
    assert release["stages"]["alt_text_pairs_kept"] == kept_pairs
    subset = small_lake.metadata(TableName.AESTHETIC_SUBSET, crawl)
    assert subset["rows_in"] == release["rows_kept"]
    dropped = sum(v for k, v in subset.items() if k.startswith("dropped/"))
    assert subset["rows_kept"] + dropped == subset["rows_in"]
    assert subset["rows_kept"] > 0 and "band_samples" in subset


def test_drop_reasons_follow_the_served_faults(small_lake: LakeRun) -> None:
    lake, keys = small_lake.lake, small_lake.keys
    scores = lake.read(TableName.CLIP_SCORES, keys)
    reasons = Counter(scores.column("drop_reason").to_pylist())
    assert reasons[None] > 0 and reasons["too_small"] > 0 and reasons["below_threshold"] > 0
    assert any(r and r.startswith("download_failed:") for r in reasons)
    truth = pq.read_table(small_lake.web / "truth.parquet").to_pylist()
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


def test_released_dataset_layout_and_subsets(small_lake: LakeRun) -> None:
    lake, crawl = small_lake.lake, small_lake.crawl
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


def test_rerun_reuses_embeddings_without_fetching(small_lake: LakeRun, tmp_path: Path) -> None:
    key = small_lake.keys[0]
    before = small_lake.metadata(TableName.CLIP_SCORES, key)
    embedded = small_lake.lake.read(TableName.IMAGE_EMBEDDINGS, [key], columns=["url_id"])
    run = small_lake.fork(tmp_path)
    run.run(clip_scores, partition=key)
    after = run.metadata(TableName.CLIP_SCORES, key)
    assert after["urls_fetched"] < before["urls_fetched"]
    assert after["urls_from_cache"] >= before["urls_fetched"] - after["urls_fetched"]
    assert after["rows_kept"] == before["rows_kept"]
    scores = run.lake.read(TableName.CLIP_SCORES, [key])
    assert any(scores.column("from_cache").to_pylist())
    # the partition's earlier embeddings stay with it, with those embedded now, once each
    now = run.metadata(TableName.IMAGE_EMBEDDINGS, key)["urls_embedded_now"]
    again = run.lake.read(TableName.IMAGE_EMBEDDINGS, [key], columns=["url_id"])
    again_ids = again.column("url_id").to_pylist()
    assert set(embedded.column("url_id").to_pylist()) <= set(again_ids)
    assert len(again_ids) == len(set(again_ids)) == embedded.num_rows + now


def test_aesthetic_scores_come_from_stored_embeddings(small_lake: LakeRun) -> None:
    meta = small_lake.metadata(TableName.AESTHETIC_SCORES, small_lake.crawl)
    assert meta["missing_embeddings"] == 0
    scores = small_lake.lake.read(TableName.AESTHETIC_SCORES, [small_lake.crawl])
    assert scores.column("aesthetic").null_count == 0
    assert Path(meta["dagster/uri"]).exists()


def test_trace_follows_a_url_through_every_hop(small_lake: LakeRun) -> None:
    from pipeline.lineage.index import LineageIndex

    lake = small_lake.lake
    subset = lake.read(TableName.AESTHETIC_SUBSET, [small_lake.crawl]).to_pylist()
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

    scores = lake.read(TableName.CLIP_SCORES, small_lake.keys).to_pylist()
    failed = next(r for r in scores if (r["drop_reason"] or "").startswith("download_failed:"))
    story = index.trace(failed["url"]).story()
    assert failed["drop_reason"] in story and "4. Released" not in story
    assert "never seen" in index.trace("https://nowhere.synth.test/none.png").story()


def test_image_shards_record_every_download(trained: LakeRun) -> None:
    crawl, lake = trained.crawl, trained.lake
    subset = lake.read(TableName.AESTHETIC_SUBSET, [crawl])
    results = lake.read(TableName.DOWNLOAD_RESULTS, [crawl])
    assert results.num_rows == int(pc.sum(subset.column("kept")).as_py())
    meta = trained.metadata(TableName.DOWNLOAD_RESULTS, crawl)
    statuses = Counter(results.column("status").to_pylist())
    assert set(statuses) <= {
        DOWNLOAD_SUCCESS,
        *DOWNLOAD_FAILED_STATUSES,
        *DOWNLOAD_REFUSED_STATUSES,
    }
    assert {s: meta[f"status/{s}"] for s in statuses} == statuses and statuses["success"] > 0
    per_shard = ImageShardsConfig().samples_per_shard
    shards = trained.metadata(TableName.IMAGE_SHARDS, crawl)["shards_written_now"]
    assert shards == math.ceil(results.num_rows / per_shard)


def test_image_shards_rerun_retries_only_the_failures(trained: LakeRun, tmp_path: Path) -> None:
    crawl = trained.crawl
    first = trained.lake.read(TableName.DOWNLOAD_RESULTS, [crawl]).to_pylist()
    failed = [r["pair_id"] for r in first if r["status"] in DOWNLOAD_FAILED_STATUSES]
    run = trained.fork(tmp_path)
    run.run(image_shards, partition=crawl)
    per_shard = ImageShardsConfig().samples_per_shard
    assert run.metadata(TableName.DOWNLOAD_RESULTS, crawl)["urls_attempted_now"] == len(failed)
    shards = run.metadata(TableName.IMAGE_SHARDS, crawl)["shards_written_now"]
    assert shards == math.ceil(len(failed) / per_shard)
    again = {
        r["pair_id"]: r for r in run.lake.read(TableName.DOWNLOAD_RESULTS, [crawl]).to_pylist()
    }
    for row in first:  # successes and refusals carried as they were; failures tried once more
        if row["status"] not in DOWNLOAD_FAILED_STATUSES:
            assert (again[row["pair_id"]]["shard"], again[row["pair_id"]]["attempts"]) == (
                row["shard"],
                row["attempts"],
            )
        else:
            assert again[row["pair_id"]]["attempts"] == row["attempts"] + 1


def test_training_samples_and_audit(trained: LakeRun) -> None:
    """From the downloads to replication_audit, with a few training steps."""
    lake, crawl = trained.lake, trained.crawl
    results = lake.read(TableName.DOWNLOAD_RESULTS, [crawl])
    ok = trained.metadata(TableName.DOWNLOAD_RESULTS, crawl)["status/success"]
    model = trained.metadata(TableName.DIFFUSION_MODEL)
    assert model["training_pairs"] == ok and model["steps_this_run"] == 20
    assert [c["step"] for c in model["checkpoints"]] == [10, 20]
    manifest = lake.read(TableName.TRAINING_MANIFEST, [model["run_fingerprint"]])
    final = manifest.filter(
        pc.equal(manifest.column("checkpoint_sha256"), model["checkpoint_sha256"])
    )
    assert set(final.column("pair_id").to_pylist()) <= set(results.column("pair_id").to_pylist())
    assert sum(final.column("times_seen").to_pylist()) == 20 * 8
    # the manifest stands alone: per trained pair its URL, sha256, shard and key, and the
    # download_results version it trained from, which the run's metadata and lake_runs name
    by_pair = {r["pair_id"]: r for r in results.to_pylist()}
    pinned = lake.version(TableName.DOWNLOAD_RESULTS)
    for row in final.to_pylist():
        source = by_pair[row["pair_id"]]
        assert [row[k] for k in ("url_id", "URL", "sha256", "shard", "key")] == [
            source[k] for k in ("url_id", "URL", "sha256", "shard", "key")
        ]
        assert row["crawl"] == crawl and row["download_results_version"] == pinned
    assert model["trained_from"] == {TableName.DOWNLOAD_RESULTS: [pinned]}
    assert pinned in model["lake/versions_read"][TableName.DOWNLOAD_RESULTS]
    written = model["lake/versions_written"][TableName.TRAINING_MANIFEST]
    runs = lake.read(TableName.LAKE_RUNS).to_pylist()
    mine = [r for r in runs if r["asset"] == TableName.DIFFUSION_MODEL]
    assert {(r["table"], r["access"], r["table_version"]) for r in mine} >= {
        (TableName.DOWNLOAD_RESULTS, "read", pinned),
        (TableName.TRAINING_MANIFEST, "wrote", written[0]),
    }
    drawn = lake.read(TableName.SAMPLES, [model["checkpoint_sha256"][:16]])
    assert drawn.num_rows == 4 and set(drawn.column("seed").to_pylist()) == {0, 1}
    assert "grid" in trained.metadata(TableName.SAMPLES)
    audit = lake.read(TableName.REPLICATION_AUDIT, [model["checkpoint_sha256"][:16]])
    assert audit.num_rows == 6
    assert set(audit.column("nearest_pair_id").to_pylist()) <= set(
        final.column("pair_id").to_pylist()
    )


def test_style_imitation_audits_every_roster_artist(trained: LakeRun) -> None:
    """One row per artist of the synthetic roster, references from captions naming them or
    their portfolio, a grid, and the model card naming the audit."""
    from assets_defs.checkpoint import trained_examples
    from pipeline.datasheet.terms import synthetic_artist_names

    lake = trained.lake
    model = trained.metadata(TableName.DIFFUSION_MODEL)
    sha = model["checkpoint_sha256"]
    audit = lake.read(TableName.STYLE_IMITATION, [sha[:16]]).to_pylist()
    assert [r["artist"] for r in audit] == list(synthetic_artist_names())
    meta = trained.metadata(TableName.STYLE_IMITATION)
    assert meta["descriptor_side"] == 32 and "grid" in meta
    assert set(meta["per_artist"]) == set(synthetic_artist_names())
    pointer = {"fingerprint": model["run_fingerprint"]}
    captions = [e.caption.lower() for e in trained_examples(lake, pointer, sha)]
    for row in audit:
        assert row["checkpoint_sha256"] == sha and row["sample_count"] == 1
        assert row["imitation"] is not None  # every roster artist has references
        naming = sum(row["artist"].lower() in c for c in captions)
        assert row["training_images"] == naming
        assert row["reference_source"] == ("training" if naming >= 4 else "portfolio")
    card = Path(meta["model_cards"][-1].removeprefix("file://")).read_text()
    assert "Style imitation (`style` descriptor)" in card


def test_training_resumes_with_nothing_left_to_train(trained: LakeRun, tmp_path: Path) -> None:
    """Same data and config: the re-run trains no step and keeps the checkpoint."""
    model = trained.metadata(TableName.DIFFUSION_MODEL)
    run = trained.fork(tmp_path)
    run.run(diffusion_model, run_config={"ops": {TableName.DIFFUSION_MODEL: {"config": STEPS}}})
    again = run.metadata(TableName.DIFFUSION_MODEL)
    assert again["steps_this_run"] == 0 and again["resumed_from_step"] == 20
    assert again["checkpoint_sha256"] == model["checkpoint_sha256"]


def test_trace_by_lookalike_finds_a_resized_reencoded_copy(trained: LakeRun) -> None:
    """A shard's 64 px JPEG of an image finds the original URL, as a near-duplicate (PDQ)
    or a CLIP lookalike; only near-duplicates are merged into the journey."""
    from pipeline.hops.clip.embed import ClipModel, ClipSpec
    from pipeline.hops.download.shards import read_shard_samples
    from pipeline.lineage.index import LineageIndex

    lake, crawl = trained.lake, trained.crawl
    results = lake.read(TableName.DOWNLOAD_RESULTS, [crawl])
    ok = [r for r in results.to_pylist() if r["status"] == "success"][:3]
    root = lake.partition_uri(TableName.IMAGE_SHARDS, crawl)
    wanted = {r["pair_id"]: r["URL"] for r in ok}
    found = [
        s
        for s in read_shard_samples(sorted({f"{root}/{r['shard']}" for r in ok}))
        if s.pair_id in wanted
    ]
    assert len(found) == len(ok) == 3
    clip = ClipModel(ClipSpec(device="cpu"))
    index = LineageIndex(lake)
    for sample in found:
        journey = index.trace_picture(sample.image, clip, k=3, min_similarity=0.8)
        near = [n["url"] for n in journey.near_duplicates]
        assert wanted[sample.pair_id] in near + [x["url"] for x in journey.lookalikes]
        assert not journey.copies  # a decoded picture has no file hash
        assert journey.seen == bool(near)  # only copies and near-duplicates are merged
        if near:
            assert journey.downloads
    noise = Image.effect_noise((64, 64), 80).convert("RGB")
    journey = index.trace_picture(noise, clip, min_similarity=0.99)
    assert not journey.seen and not journey.near_duplicates


def _trace_json(lake_root: Path, url: str, *flags: str) -> dict:
    """``crawl2diffusion trace URL --json`` on the lake, parsed."""
    import contextlib
    import io

    import orjson

    from crawl2diffusion.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["trace", url, "--json", "--lake", str(lake_root), *flags]) == 0
    return orjson.loads(out.getvalue())


def _report(run: LakeRun) -> list[dict]:
    result = run.run(opt_out_report)
    [check] = result.get_asset_check_evaluations()
    assert not check.passed  # a checkpoint trained on a withdrawn pair: warned
    rows = run.lake.read(TableName.OPT_OUT_REPORT).to_pylist()
    return sorted(rows, key=lambda r: (r["checkpoint_sha256"], r["pair_id"]))


def test_opt_out_and_erasure_after_training_are_remembered_by_trace_and_report(
    trained: LakeRun, tmp_path: Path
) -> None:
    """An owner withdraws a domain whose image trained a checkpoint. The report names the
    checkpoint from the pinned manifest before and after the rebuild (any order); the
    rebuild drops the pair with opted_out:domain; the trace now shows the release, the
    training, the withdrawal and the erasure with their dates, and ``--as-of`` a time before
    the opt-out gives the JSON captured then, field by field."""
    import time
    from datetime import UTC, datetime
    from urllib.parse import urlsplit

    from assets_defs.assets.aesthetics import aesthetic_scores, aesthetic_subset
    from pipeline.hops.dataset import opt_outs as optout

    run = trained.fork(tmp_path)
    lake, crawl, lake_root = run.lake, run.crawl, run.root / "lake"
    manifest = lake.read(TableName.TRAINING_MANIFEST).to_pylist()
    pair, url = manifest[0]["pair_id"], manifest[0]["URL"]
    before = _trace_json(lake_root, url)
    assert before["used_in_training"] and not before["withdrawn"]
    captured_at = datetime.now(UTC)
    time.sleep(0.05)  # commits after this are later than captured_at

    optout.add(lake, [("domain", urlsplit(url).hostname)], note="owner request")
    report = _report(run)
    withdrawn_checkpoints = {r["checkpoint_sha256"] for r in manifest if r["pair_id"] == pair}
    assert {r["checkpoint_sha256"] for r in report if r["pair_id"] == pair} == (
        withdrawn_checkpoints
    )
    assert {r["match"] for r in report} == {"opted_out:domain"}

    for step in (laion_dataset, aesthetic_scores, aesthetic_subset, image_shards):
        checks_passed(run.run(step, partition=crawl))
    decisions = lake.read(TableName.LAION_DATASET_DECISIONS, [crawl]).to_pylist()
    assert {d["drop_reason"] for d in decisions if d["pair_id"] == pair} == {"opted_out:domain"}
    results = lake.read(TableName.DOWNLOAD_RESULTS, [crawl]).column("pair_id").to_pylist()
    assert pair not in results
    # the same report after the rebuild: it reads only the pinned manifests
    assert _report(run) == report

    now = _trace_json(lake_root, url)
    assert now["used_in_training"] and now["withdrawn"]
    assert {t["checkpoint_sha256"] for t in now["training"]} == withdrawn_checkpoints
    released = [r for r in now["release"] if r["pair_id"] == pair]
    assert [(r["kept"], r["until"] is None) for r in released] == [(True, False), (False, True)]
    assert released[1]["drop_reason"] == "opted_out:domain"
    events = [e["event"] for e in now["events"]]
    assert any(e.startswith("released in") for e in events)
    assert any(e.startswith("trained checkpoint") for e in events)
    assert events.index(next(e for e in events if e.startswith("withdrawn by its owner"))) > (
        events.index(next(e for e in events if e.startswith("trained checkpoint")))
    )
    assert events[-1].startswith("withdrawn from the release of")
    # the owner asks for erasure: the bytes go, the decisions and a tombstone stay
    from crawl2diffusion.cli import main

    assert main(["erase", "--opted-out", "--lake", str(lake_root)]) == 0
    erased = _trace_json(lake_root, url)
    assert erased["erased"] and {e["reason"] for e in erased["tombstones"]} == {"opted_out:domain"}
    assert erased["events"][-1]["event"].startswith("erased (opted_out:domain)")
    assert erased["training"] == now["training"] and erased["release"] == now["release"]
    # as the lake stood when the first trace was captured: the same JSON, field by field
    then = _trace_json(lake_root, url, "--as-of", captured_at.isoformat())
    for field_name in before:
        assert then[field_name] == before[field_name], field_name
    assert then == before
    # table@version resolves to that commit's time
    at_release = _trace_json(
        lake_root,
        url,
        "--as-of",
        f"{TableName.LAION_DATASET_DECISIONS}@{released[0]['since_version']}",
    )
    assert not at_release["withdrawn"] and at_release["release"][0]["kept"]


def test_alt_text_pairs_store_the_language_confusion(small_lake: LakeRun) -> None:
    """Hop 2's metadata holds its language confusion on the web's clean captions: recall
    >= 0.95 and precision >= 0.98 per language, summed over the crawl's slices."""
    totals: dict[str, Counter] = {}
    for key in small_lake.keys:
        confusion = small_lake.metadata(TableName.ALT_TEXT_PAIRS, key)["language_confusion"]
        for lang, stats in confusion["per_language"].items():
            totals.setdefault(lang, Counter()).update(
                {k: stats[k] for k in ("support", "predicted", "correct")}
            )
    assert len(totals) >= 4, totals
    for lang, n in totals.items():
        assert n["correct"] >= 0.95 * n["support"], (lang, n)
        assert n["correct"] >= 0.98 * n["predicted"], (lang, n)
