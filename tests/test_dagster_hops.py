"""Dagster: the manifest registers partitions; both hops materialize and conserve rows."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from dagster import DagsterInstance, materialize

from assets_defs.assets.alt_text_pairs import alt_text_pairs
from assets_defs.assets.crawl_manifest import crawl_manifest
from assets_defs.assets.wat_image_links import wat_image_links
from assets_defs.definitions import build_definitions
from assets_defs.partitions import wat_slices
from assets_defs.resources import SyntheticWebResource
from pipeline.lake.store import Lake
from pipeline.lake.tables import TableName


@pytest.fixture
def resources(mini_resources: dict) -> dict:
    return mini_resources


def latest_metadata(instance: DagsterInstance, asset: str, partition: str | None = None) -> dict:
    from dagster import AssetKey

    event = instance.get_latest_materialization_event(AssetKey(asset))
    if partition is not None:
        records = instance.fetch_materializations(AssetKey(asset), limit=100).records
        event = next(r.event_log_entry for r in records if r.partition_key == partition)
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_definitions_load() -> None:
    defs = build_definitions("demo", "data")
    defs.validate_loadable(defs)
    assert {j.name for j in defs.resolve_all_job_defs()} >= {
        "crawl_manifest_job",
        "wat_to_pairs_job",
    }
    build_definitions("commoncrawl", "data").validate_loadable(
        build_definitions("commoncrawl", "data")
    )


def test_two_partitions_conserve_rows(resources: dict, tmp_path: Path) -> None:
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [crawl_manifest],
            instance=instance,
            resources=resources,
            run_config={"ops": {TableName.CRAWL_MANIFEST: {"config": {"slice_size": 2}}}},
        )
        assert result.success
        keys = instance.get_dynamic_partitions(wat_slices.name)
        assert keys == ["MINI-2026-01_00000", "MINI-2026-01_00001"]
        manifest_meta = latest_metadata(instance, TableName.CRAWL_MANIFEST)
        assert manifest_meta["partitions"] == 2 and manifest_meta["wat_files"] == 4

        for key in keys:
            run = materialize(
                [crawl_manifest, wat_image_links, alt_text_pairs],
                selection=[wat_image_links, alt_text_pairs],
                partition_key=key,
                instance=instance,
                resources=resources,
            )
            assert run.success

        # a second run of a slice compares its row count with the first
        rerun = materialize(
            [crawl_manifest, wat_image_links, alt_text_pairs],
            selection=[wat_image_links],
            partition_key=keys[0],
            instance=instance,
            resources=resources,
        )
        change = next(
            c for c in rerun.get_asset_check_evaluations() if c.check_name == "row_count_change"
        )
        assert change.passed and change.metadata["previous_rows"].value == 50

        lake = Lake(str(tmp_path / "lake"))
        for key in keys:
            links = lake.read(TableName.WAT_IMAGE_LINKS, [key])
            pairs = lake.read(TableName.ALT_TEXT_PAIRS, [key])
            # 2 WAT files x 5 pages x 5 image links
            assert links.num_rows == 50
            assert pairs.num_rows == links.num_rows
            assert set(pairs.column("pair_id").to_pylist()) == set(
                links.column("pair_id").to_pylist()
            )
            meta = latest_metadata(instance, TableName.ALT_TEXT_PAIRS, key)
            dropped = sum(v for k, v in meta.items() if k.startswith("dropped/"))
            assert meta["rows_in"] == meta["rows_kept"] + dropped == 50
            assert meta["dagster/row_count"] == 50
            assert meta["dagster/uri"].endswith(f"partition={key}")
            hop1 = latest_metadata(instance, TableName.WAT_IMAGE_LINKS, key)
            assert hop1["files_read"] == 2 and hop1["records_read"] == 10
            # versions are lineage: hop 2 read the version hop 1 wrote (last run of the key)
            [wrote] = hop1["lake/versions_written"][TableName.WAT_IMAGE_LINKS]
            if key != keys[0]:  # the first slice's hop 1 re-ran after its hop 2
                assert meta["lake/versions_read"][TableName.WAT_IMAGE_LINKS] == [wrote]
            assert hop1["records_failed"] == 0 and hop1["bytes_read"] > 0
            assert [c.name for c in hop1["dagster/column_schema"].columns][:2] == [
                "pair_id",
                "crawl_id",
            ]

        runs = lake.read(TableName.LAKE_RUNS).to_pylist()
        hop2 = {
            (r["asset_partition"], r["table"], r["access"])
            for r in runs
            if r["asset"] == TableName.ALT_TEXT_PAIRS
        }
        assert {(k, TableName.ALT_TEXT_PAIRS, "wrote") for k in keys} <= hop2
        assert {(k, TableName.WAT_IMAGE_LINKS, "read") for k in keys} <= hop2

        first, second = (lake.read(TableName.ALT_TEXT_PAIRS, [k]).to_pylist() for k in keys)
        banner = [r for r in first if r["alt"] == "the shared site banner" and r["kept"]]
        assert len(banner) == 2  # sites 0 and 1 each host /img/shared.png
        kept_first = {r["dedup_key"] for r in first if r["kept"]}
        kept_second = {r["dedup_key"] for r in second if r["kept"]}
        # hop 2 dedups within a slice only: the re-crawled page's pairs stay kept in the
        # second slice too (laion_dataset decides between them)
        assert {r["url"] for r in second if r["kept"] and r["dedup_key"] in kept_first} == {
            "http://site0.test/img/0-0.png",
            "http://site0.test/img/shared.png",
        }
        dups = [r["dedup_key"] for r in second if r["drop_reason"] == "duplicate"]
        assert dups and set(dups) <= kept_second  # each repeats a pair kept in its own slice
        reasons = {r["drop_reason"] for r in first}
        assert {"alt_too_short", "missing_alt", "empty_alt", None} <= reasons


def test_partition_missing_from_manifest_fails_clearly(resources: dict) -> None:
    with DagsterInstance.ephemeral() as instance:
        materialize([crawl_manifest], instance=instance, resources=resources)
        instance.add_dynamic_partitions(wat_slices.name, ["MINI-2026-01_00099"])
        result = materialize(
            [crawl_manifest, wat_image_links],
            selection=[wat_image_links],
            partition_key="MINI-2026-01_00099",
            instance=instance,
            resources=resources,
            raise_on_error=False,
        )
        assert not result.success
        failure = result.get_step_failure_events()[0]
        assert "not in the current crawl_manifest" in str(failure.event_specific_data.error)


def test_production_instance_config_is_valid() -> None:
    from dagster._core.instance.config import dagster_instance_config

    config, _ = dagster_instance_config(str(Path(__file__).parents[1] / "infra"), "dagster.yaml")
    assert "postgres" in config["storage"]
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"


def test_synthetic_web_resource_serves_only_during_execution(tmp_path: Path) -> None:
    import socket

    import pyarrow.parquet as pq
    import requests
    from dagster import build_init_resource_context

    resource = SyntheticWebResource(
        root=str(tmp_path / "web"), pages_per_crawl=30, wat_files_per_crawl=2
    )
    with resource.yield_for_execution(build_init_resource_context()) as web:
        proxy = web.proxy_url
        assert proxy and proxy.startswith("http://127.0.0.1:")
        truth = pq.read_table(tmp_path / "web" / "truth.parquet").to_pylist()
        image = next(
            r
            for r in truth
            if r["fault"] is None and r["url"].startswith("http://") and not r["header_noai"]
        )
        response = requests.get(image["url"], proxies={"http": proxy}, timeout=10)
        assert response.status_code == 200 and len(response.content) == image["n_bytes"]
    assert web.proxy_url is None
    port = int(proxy.rsplit(":", 1)[1])
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # stopped


def _clip_rows(lake: Lake, keys: list[str]) -> pa.Table:
    """Stand-in ``clip_scores`` rows for each slice's kept pairs, in slice order ``keys``: the
    same image and text score the same (ties are left to the release's pair_id order)."""
    rows = []
    for key in keys:
        for r in lake.read(TableName.ALT_TEXT_PAIRS, [key]).to_pylist():
            if r["kept"]:
                rows.append({
                    "pair_id": r["pair_id"], "url": r["url"], "url_id": r["url_id"],
                    "text": r["text"], "language": r["language"], "crawl_id": r["crawl_id"],
                    "kept": True, "similarity": int(r["url_id"][:4], 16) / 65536,
                    "width": 64, "height": 64, "sha256": r["url_id"] * 4, "punsafe": 0.0,
                    "pwatermark": 0.0, "source_partition": key,
                })  # fmt: skip
    return pa.Table.from_pylist(rows)


def test_release_does_not_depend_on_slice_order(mini_crawl: Path, tmp_path: Path) -> None:
    """Two lakes build the same two slices in opposite orders: hop 2 gives each slice the same
    rows, and the release (global dedup on url_id and text) is the same, with the pairs the
    re-crawled page repeats across slices released once."""
    from assets_defs.resources import CrawlSourceResource, EngineResource, LakeResource
    from pipeline.hops.dataset.release import build_release

    source = CrawlSourceResource(
        data_root=str(mini_crawl), collinfo_uri=str(mini_crawl / "collinfo.json")
    )
    lakes = {}
    for name, order in (("forward", 1), ("backward", -1)):
        resources = {
            "lake": LakeResource(root=str(tmp_path / name)),
            "crawl_source": source,
            "synthetic_web": SyntheticWebResource(enabled=False),
            "engine": EngineResource(),
        }
        with DagsterInstance.ephemeral() as instance:
            config = {"ops": {TableName.CRAWL_MANIFEST: {"config": {"slice_size": 2}}}}
            materialize([crawl_manifest], instance=instance, resources=resources, run_config=config)
            keys = instance.get_dynamic_partitions(wat_slices.name)
            for key in keys[::order]:
                assert materialize([crawl_manifest, wat_image_links, alt_text_pairs],
                                   selection=[wat_image_links, alt_text_pairs], partition_key=key,
                                   instance=instance, resources=resources).success  # fmt: skip
        lakes[name] = (Lake(str(tmp_path / name)), keys[::order])
    (forward, keys), (backward, reverse) = lakes["forward"], lakes["backward"]
    for key in keys:
        # hop 1 may write a slice's files in either order; hop 2 decides the same rows
        order = [("wat_path", "ascending"), ("wat_record_offset", "ascending"),
                 ("link_index", "ascending")]  # fmt: skip
        a, b = (
            lake.read(TableName.ALT_TEXT_PAIRS, [key]).sort_by(order)
            for lake in (forward, backward)
        )
        assert a.equals(b)
    one = build_release(_clip_rows(forward, keys))
    other = build_release(_clip_rows(backward, reverse))
    assert one.release.equals(other.release) and one.decisions.equals(other.decisions)
    clip = _clip_rows(forward, keys)
    pairs = {(r["url_id"], r["text"]) for r in clip.to_pylist()}
    assert one.rows_kept == len(pairs)  # one release row per (url_id, text)
    repeated = {
        r["url"] for r in one.decisions.join(clip, "pair_id").to_pylist()
        if r["drop_reason"] == "global_duplicate"
    }  # fmt: skip
    assert {"http://site0.test/img/0-0.png", "http://site0.test/img/shared.png"} <= repeated
