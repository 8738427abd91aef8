"""Record-level lineage: trace URLs kept, dropped and never seen, as a story and as JSON."""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from crawl2diffusion.cli import main
from pipeline.hops.alt_text.pairs import parse_alt_texts
from pipeline.hops.wat.records import extract_image_links
from pipeline.lake.store import Lake
from pipeline.lake.tables import TableName
from pipeline.lineage import index as lineage_index
from pipeline.lineage.index import LineageIndex, default_index_dir, lake_versions


def wat_files(mini_crawl: Path) -> list[Path]:
    return sorted((mini_crawl / "crawl-data").rglob("*.warc.wat.gz"))


def publish(lake: Lake, wat: Path, i: int) -> pa.Table:
    """Hops 1 and 2 of one WAT file as partition ``i``; returns the hop-1 table."""
    key = f"MINI-2026-01_{i:05d}"
    links, _ = extract_image_links(str(wat), "MINI-2026-01")
    lake.write_partition(TableName.WAT_IMAGE_LINKS, links, key)
    lake.write_partition(TableName.ALT_TEXT_PAIRS, parse_alt_texts(links).table, key)
    return links


@pytest.fixture
def lake(mini_crawl: Path, tmp_path: Path) -> Lake:
    """Hops 1 and 2 of the mini crawl, one partition per WAT file."""
    lake = Lake(str(tmp_path / "lake"))
    for i, wat in enumerate(wat_files(mini_crawl)):
        publish(lake, wat, i)
    return lake


def test_trace_kept_url(lake: Lake) -> None:
    journey = LineageIndex(lake).trace("http://site0.test/img/0-0.png")
    assert journey.seen
    # page 0 of site 0, and its re-crawl in the last file
    assert len(journey.sightings) == 2
    assert {s["wat_path"].rsplit("/", 1)[1] for s in journey.sightings} == {
        "MINI-00000.warc.wat.gz",
        "MINI-00003.warc.wat.gz",
    }
    assert [d["kept"] for d in journey.decisions] == [True, True]  # separate partitions
    story = journey.story()
    assert "kept as 'a green triangle on white number 0'" in story
    assert "MINI-00000.warc.wat.gz @ 0" in story


def test_trace_dropped_url_gives_reason(lake: Lake) -> None:
    journey = LineageIndex(lake).trace("http://site1.test/img/10-1.png")
    assert [d["drop_reason"] for d in journey.decisions] == ["alt_too_short"]
    assert "dropped (alt_too_short)" in journey.story()


def test_trace_normalizes_the_query(lake: Lake) -> None:
    journey = LineageIndex(lake).trace("HTTP://site1.test:80/img/10-0.png#x")
    assert journey.seen


def test_trace_never_seen(lake: Lake) -> None:
    journey = LineageIndex(lake).trace("http://elsewhere.test/x.png")
    assert not journey.seen
    assert "never seen" in journey.story()


def test_trace_by_pair_and_page(lake: Lake) -> None:
    index = LineageIndex(lake)
    pair = index.trace("http://site2.test/img/20-0.png").sightings[0]["pair_id"]
    assert index.trace_pair(pair).sightings[0]["url"] == "http://site2.test/img/20-0.png"
    page = index.trace_page("http://site2.test/p0.html")
    assert len(page.sightings) == 5


def test_trace_cli_json(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "http://site1.test/img/10-2.png", "--json", "--lake", lake.root]) == 0
    data = orjson.loads(capsys.readouterr().out)
    assert data["seen"] and data["decisions"][0]["drop_reason"] == "empty_alt"
    assert main(["trace", "http://site1.test/img/10-2.png", "--lake", lake.root]) == 0
    assert "dropped (empty_alt)" in capsys.readouterr().out


def test_trace_url_job_shows_markdown(lake: Lake) -> None:
    from dagster import DagsterInstance

    from assets_defs.resources import LakeResource
    from assets_defs.trace_job import trace_url

    with DagsterInstance.ephemeral() as instance:
        result = trace_url.execute_in_process(
            instance=instance,
            run_config={
                "ops": {"trace_one_url": {"config": {"url": "http://site1.test/img/10-1.png"}}}
            },
            resources={"lake": LakeResource(root=lake.root)},
        )
    assert result.success and result.output_for_node("trace_one_url") is True
    outputs = [e for e in result.all_node_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = outputs[0].event_specific_data.metadata
    assert "dropped (alt_too_short)" in metadata["journey"].value
    assert metadata["journey_json"].value["decisions"][0]["drop_reason"] == "alt_too_short"


CRAWL = "MINI-2026-01"
RUN = "0123456789abcdef0123456789abcdef"
CHECKPOINTS = {2: "c2" * 32, 4: "c4" * 32}
SUBSET_URLS = {  # the kept alt of page n's first image: one sighting each
    "ok": "http://site2.test/img/20-0.png",
    "failed": "http://site2.test/img/21-0.png",
    "copied": "http://site2.test/img/22-0.png",
}


def publish_subset(lake: Lake) -> dict[str, str]:
    """Hops 3 to 5 for the pairs of :data:`SUBSET_URLS`, all kept; returns role -> pair_id."""
    # the real schemas (their modules import torch: only the tests that need them pay)
    from pipeline.lake.tables import AESTHETIC_SUBSET_SCHEMA as SUBSET_SCHEMA
    from pipeline.lake.tables import CLIP_SCORES_SCHEMA, DECISION_SCHEMA

    pairs = lake.read(TableName.ALT_TEXT_PAIRS).to_pylist()
    by_url = {p["url"]: p for p in pairs if p["kept"]}
    rows = {role: by_url[url] for role, url in SUBSET_URLS.items()}
    clip = [
        {
            "pair_id": p["pair_id"], "url_id": p["url_id"], "url": p["url"], "text": p["text"],
            "crawl_id": CRAWL, "model_id": "tiny-clip", "fetch_status": "ok", "http_status": 200,
            "final_url": p["url"], "fetch_attempts": 1, "from_cache": False, "width": 64,
            "height": 64, "n_bytes": 900, "sha256": f"{i}" * 64, "similarity": 0.33,
            "threshold": 0.28, "punsafe": 0.01, "pwatermark": 0.02, "kept": True,
        }
        for i, p in enumerate(rows.values())
    ]  # fmt: skip
    lake.write_partition(
        TableName.CLIP_SCORES, pa.Table.from_pylist(clip, CLIP_SCORES_SCHEMA), CRAWL
    )
    release = [
        {"pair_id": p["pair_id"], "url_id": p["url_id"], "kept": True, "source_partition": CRAWL}
        for p in rows.values()
    ]
    decisions = pa.Table.from_pylist(release, DECISION_SCHEMA)
    lake.write_partition(TableName.LAION_DATASET_DECISIONS, decisions, CRAWL)
    subset = [
        {"pair_id": p["pair_id"], "url_id": p["url_id"], "URL": p["url"], "TEXT": p["text"],
         "aesthetic": 6.2, "kept": True, "aesthetic_band": 6.0}
        for p in rows.values()
    ]  # fmt: skip
    lake.write_partition(
        TableName.AESTHETIC_SUBSET, pa.Table.from_pylist(subset, SUBSET_SCHEMA), CRAWL
    )
    return {role: p["pair_id"] for role, p in rows.items()}


def publish_downloads(lake: Lake, pairs: dict[str, str]) -> None:
    """img2dataset's results: ``ok`` and ``copied`` in shard 00000, ``failed`` a 404."""
    from pipeline.lake.tables import DOWNLOAD_RESULTS_SCHEMA

    done = {"status": "success", "batch": "00000", "shard": "00000.tar", "width": 64,
            "height": 64, "original_width": 80, "original_height": 80, "attempts": 1}  # fmt: skip
    results = [
        {**done, "pair_id": pairs["ok"], "key": "000000000", "sha256": "d" * 64},
        {"pair_id": pairs["failed"], "batch": "00000", "status": "failed_to_download",
         "error_message": "HTTP Error 404: Not Found", "attempts": 2},
        {**done, "pair_id": pairs["copied"], "key": "000000002", "sha256": "e" * 64},
    ]  # fmt: skip
    for row in results:
        row["URL"] = SUBSET_URLS[next(r for r, p in pairs.items() if p == row["pair_id"])]
    table = pa.Table.from_pylist(results, DOWNLOAD_RESULTS_SCHEMA)
    lake.write_partition(TableName.DOWNLOAD_RESULTS, table, CRAWL)


def publish_training(lake: Lake, pairs: dict[str, str]) -> None:
    """One run, two checkpoints (``ok`` trained both, ``copied`` the last), and its audit:
    ``copied``'s sample is flagged as a copy of its own image."""
    from pipeline.lake.tables import AUDIT_SCHEMA
    from pipeline.lake.tables import TRAINING_MANIFEST_SCHEMA as MANIFEST_SCHEMA

    manifest = [
        {"pair_id": pairs["ok"], "checkpoint_step": 2, "checkpoint_sha256": CHECKPOINTS[2],
         "times_seen": 1},
        {"pair_id": pairs["ok"], "checkpoint_step": 4, "checkpoint_sha256": CHECKPOINTS[4],
         "times_seen": 3},
        {"pair_id": pairs["copied"], "checkpoint_step": 4, "checkpoint_sha256": CHECKPOINTS[4],
         "times_seen": 2},
    ]  # fmt: skip
    lake.write_partition(
        TableName.TRAINING_MANIFEST, pa.Table.from_pylist(manifest, MANIFEST_SCHEMA), RUN
    )
    sample = {"checkpoint_sha256": CHECKPOINTS[4], "descriptor": "pixels", "next_similarity": 0.1}
    audit = [
        {**sample, "prompt_pair_id": pairs["ok"], "prompt": "a green triangle", "seed": 0,
         "nearest_pair_id": pairs["ok"], "similarity": 0.41, "margin": 0.31,
         "nearest_is_prompt_pair": True, "flagged": False},
        {**sample, "prompt_pair_id": pairs["copied"], "prompt": "a green triangle", "seed": 1,
         "nearest_pair_id": pairs["copied"], "similarity": 0.97, "margin": 0.87,
         "nearest_is_prompt_pair": True, "flagged": True},
    ]  # fmt: skip
    lake.write_partition(
        TableName.REPLICATION_AUDIT, pa.Table.from_pylist(audit, AUDIT_SCHEMA), CHECKPOINTS[4][:16]
    )


def test_trace_through_download_training_and_audit(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = publish_subset(lake)
    # the later tables are not materialized yet: the journey stops at the download
    story = LineageIndex(lake).trace(SUBSET_URLS["ok"]).story()
    assert "5. Aesthetic subset:" in story and "6. Downloaded (img2dataset):" in story
    assert "not downloaded yet" in story and "7. Trained" not in story

    publish_downloads(lake, pairs)
    index = LineageIndex(lake)
    assert index.rebuilt  # a new table is a new lake state
    journey = index.trace(SUBSET_URLS["ok"])
    shard = f"{lake.partition_uri(TableName.IMAGE_SHARDS, CRAWL)}/00000.tar"
    assert journey.downloads[0]["shard_uri"] == shard
    assert f"shard {shard}, key 000000000" in journey.story()
    assert "not used in training" in journey.story()  # no model trained yet
    assert "8. Replication audit" not in journey.story()

    publish_training(lake, pairs)
    index = LineageIndex(lake)
    journey = index.trace(SUBSET_URLS["ok"])
    assert [(t["checkpoint_step"], t["times_seen"]) for t in journey.training] == [(2, 1), (4, 3)]
    assert {t["run_fingerprint"] for t in journey.training} == {RUN}
    story = journey.story()
    for step, sha in CHECKPOINTS.items():
        assert f"trained checkpoint {sha} (step {step}, run {RUN})" in story
    assert "not used in training" not in story
    assert "8. Replication audit:" in story and "not flagged" in story
    assert [a["seed"] for a in journey.audit] == [0] and not journey.flagged

    data = journey.to_dict()
    assert data["downloads"][0]["status"] == "success" and data["downloads"][0]["attempts"] == 1
    assert data["used_in_training"] and len(data["training"]) == 2
    assert data["audit"][0]["nearest_pair_id"] == pairs["ok"] and not data["flagged"]

    failed = index.trace(SUBSET_URLS["failed"])
    story = failed.story()
    assert "failed_to_download: HTTP Error 404: Not Found (2 attempt(s))" in story
    assert "not used in training (download failed_to_download)" in story
    assert "8. Replication audit" not in story
    assert failed.to_dict()["downloads"][0]["shard_uri"] is None
    assert not failed.to_dict()["used_in_training"] and failed.to_dict()["training"] == []

    # by pair, and through the CLI's JSON
    argv = ["trace", pairs["copied"], "--by", "pair_id", "--lake", lake.root]
    assert main([*argv, "--json"]) == 0
    data = orjson.loads(capsys.readouterr().out)
    assert data["flagged"] and data["audit"][0]["similarity"] == pytest.approx(0.97)
    assert data["training"][0]["checkpoint_sha256"] == CHECKPOINTS[4]
    assert main(argv) == 0
    assert "similarity 0.970, margin 0.870: FLAGGED as a possible copy" in capsys.readouterr().out

    # the image img2dataset downloaded leads back to its URL
    assert index.trace_image("E" * 64).sightings[0]["url"] == SUBSET_URLS["copied"]


def _pieces(index: LineageIndex) -> set[Path]:
    return set(index.generation.glob("*/*.parquet"))


def test_index_merges_only_what_a_new_partition_adds(mini_crawl: Path, tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    wats = wat_files(mini_crawl)
    for i, wat in enumerate(wats[:3]):
        publish(lake, wat, i)
    first = LineageIndex(lake)
    assert first.generation.parent == tmp_path / "lake" / "_lineage"
    assert first.pieces_built == 6  # one piece per data file: 3 partitions x 2 tables
    assert len(first.trace("http://site0.test/img/0-0.png").sightings) == 1
    before = {p: p.stat().st_mtime_ns for p in _pieces(first)}
    again = LineageIndex(lake)
    assert not again.rebuilt  # unchanged lake: nothing to build

    publish(lake, wats[3], 3)  # re-crawls page 0 of site 0
    fresh = LineageIndex(lake)
    assert fresh.pieces_built == 2  # only the new partition's two files
    assert {p: p.stat().st_mtime_ns for p in _pieces(first) if p in before} == before
    assert len(fresh.trace("http://site0.test/img/0-0.png").sightings) == 2
    # an index opened before the change keeps answering from its own snapshot
    assert len(first.trace("http://site0.test/img/0-0.png").sightings) == 1


def test_rerun_partition_is_not_answered_from_the_stale_index(
    mini_crawl: Path, tmp_path: Path
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    links = publish(lake, wat_files(mini_crawl)[1], 0)
    url = "http://site1.test/img/10-1.png"
    assert LineageIndex(lake).trace(url).decisions[0]["drop_reason"] == "alt_too_short"
    # the partition re-runs without that link: same partition key, new data file
    rerun = links.filter(pc.not_equal(links["url"], url))
    lake.write_partition(TableName.WAT_IMAGE_LINKS, rerun, "MINI-2026-01_00000")
    lake.write_partition(
        TableName.ALT_TEXT_PAIRS, parse_alt_texts(rerun).table, "MINI-2026-01_00000"
    )
    index = LineageIndex(lake)
    # the index is rebuilt: the link's rows are history now, ended by the re-run's commit
    journey = index.trace(url)
    assert index.rebuilt and journey.seen and not journey.current("sightings")
    [sighting] = journey.sightings
    assert sighting["until_version"] == lake.version(TableName.WAT_IMAGE_LINKS)
    assert sighting["since_version"] < sighting["until_version"]
    assert index.trace("http://site1.test/img/10-0.png").current("sightings")


def test_index_holds_the_versions_it_is_named_after(
    mini_crawl: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    links = publish(lake, wat_files(mini_crawl)[1], 0)
    url = "http://site1.test/img/10-1.png"
    versions_before_rerun = lake_versions(lake)
    # the partition re-runs without that link after the versions were read, before the build
    rerun = links.filter(pc.not_equal(links["url"], url))
    lake.write_partition(TableName.WAT_IMAGE_LINKS, rerun, "MINI-2026-01_00000")
    lake.write_partition(
        TableName.ALT_TEXT_PAIRS, parse_alt_texts(rerun).table, "MINI-2026-01_00000"
    )
    monkeypatch.setattr(lineage_index, "lake_versions", lambda _: versions_before_rerun)
    snapshot = LineageIndex(lake)
    # built at the versions it names: there the link is current
    assert snapshot.rebuilt and snapshot.trace(url).current("sightings")
    monkeypatch.undo()
    fresh = LineageIndex(lake)
    assert fresh.pieces_built == 2  # the re-run's two files, which the snapshot never saw
    assert fresh.trace(url).seen and not fresh.trace(url).current("sightings")


def test_empty_lake_writes_nothing(tmp_path: Path) -> None:
    journey = LineageIndex(Lake(str(tmp_path / "nothing"))).trace("http://x.test/a.png")
    assert not journey.seen and not (tmp_path / "nothing").exists()


def test_trace_on_s3_lake_indexes_in_the_cache(
    s3_options: dict, mini_crawl: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    lake = Lake("s3://lake/lineage", s3_options)
    publish(lake, wat_files(mini_crawl)[1], 0)
    index = LineageIndex(lake)
    assert index.generation.parent == default_index_dir(lake)
    assert index.generation.is_relative_to(tmp_path / "cache" / "crawl2diffusion" / "lineage")
    assert index.rebuilt and _pieces(index)
    assert index.trace("http://site1.test/img/10-1.png").decisions[0]["drop_reason"] == (
        "alt_too_short"
    )
    assert not LineageIndex(lake).rebuilt
