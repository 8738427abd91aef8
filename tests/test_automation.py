"""Sensors and automation conditions, evaluated with Dagster's own test APIs."""

from __future__ import annotations

from pathlib import Path

import orjson
from dagster import DagsterInstance, SkipReason, build_sensor_context

from assets_defs.resources import CrawlSourceResource
from assets_defs.sensors import new_crawl_sensor
from pipeline.lake.tables import TableName


def source(root: Path) -> CrawlSourceResource:
    return CrawlSourceResource(data_root=str(root), collinfo_uri=str(root / "collinfo.json"))


def test_new_crawl_sensor_requests_manifest_once(mini_crawl: Path) -> None:
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(
            instance=instance, resources={"crawl_source": source(mini_crawl)}
        )
        first = new_crawl_sensor(context)
        assert [r.tags["crawl2diffusion/new_crawls"] for r in first.run_requests] == [
            "MINI-2026-01"
        ]
        cursor = first.cursor
        again = new_crawl_sensor(
            build_sensor_context(
                instance=instance, cursor=cursor, resources={"crawl_source": source(mini_crawl)}
            )
        )
        assert isinstance(again, SkipReason)

        # the crawl index publishes a new crawl
        index = mini_crawl / "collinfo.json"
        entries = orjson.loads(index.read_bytes())
        index.write_bytes(orjson.dumps([{"id": "MINI-2026-02", "name": "new"}, *entries]))
        later = new_crawl_sensor(
            build_sensor_context(
                instance=instance, cursor=cursor, resources={"crawl_source": source(mini_crawl)}
            )
        )
        assert later.run_requests[0].tags["crawl2diffusion/new_crawls"] == "MINI-2026-02"
        assert later.run_requests[0].run_key == "new-crawls:MINI-2026-02"
        assert set(orjson.loads(later.cursor)) == {"MINI-2026-01", "MINI-2026-02"}


def test_automation_materializes_new_slices_only(mini_resources: dict) -> None:
    from dagster import AssetKey, Definitions, evaluate_automation_conditions, materialize

    from assets_defs.assets.alt_text_pairs import alt_text_pairs
    from assets_defs.assets.crawl_manifest import crawl_manifest
    from assets_defs.assets.wat_image_links import wat_image_links

    resources = mini_resources
    assets = [crawl_manifest, wat_image_links, alt_text_pairs]
    defs = Definitions(assets=assets, resources=resources)
    with DagsterInstance.ephemeral() as instance:
        result = evaluate_automation_conditions(defs=defs, instance=instance)
        assert result.total_requested == 0  # no partitions yet
        materialize([crawl_manifest], instance=instance, resources=resources)
        result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        keys = instance.get_dynamic_partitions("wat_slices")
        assert result.get_num_requested(AssetKey(TableName.WAT_IMAGE_LINKS)) == len(keys) == 2
        assert result.get_num_requested(AssetKey(TableName.ALT_TEXT_PAIRS)) == 2
        for key in keys:
            materialize(
                assets,
                selection=assets[1:],
                partition_key=key,
                instance=instance,
                resources=resources,
            )
        # a manifest refresh must not rebuild slices already materialized
        materialize([crawl_manifest], instance=instance, resources=resources)
        result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert result.get_num_requested(AssetKey(TableName.WAT_IMAGE_LINKS)) == 0


def test_weekly_schedule_rebuilds_every_crawl() -> None:
    from datetime import UTC, datetime

    from dagster import build_schedule_context, instance_for_test

    from assets_defs.partitions import crawls
    from assets_defs.schedules import weekly_dataset_rebuild

    when = datetime(2026, 11, 23, 3, tzinfo=UTC)
    with (
        instance_for_test() as instance,
        build_schedule_context(instance=instance, scheduled_execution_time=when) as context,
    ):
        assert isinstance(weekly_dataset_rebuild(context), SkipReason)
        instance.add_dynamic_partitions(crawls.name, ["C-2026-20", "C-2026-10"])
        requests = weekly_dataset_rebuild(context)
        assert [r.partition_key for r in requests] == ["C-2026-10", "C-2026-20"]
        assert requests[0].run_key == "weekly:2026-11-23:C-2026-10"
        assert weekly_dataset_rebuild.job_name == "dataset_job"


def test_freshness_checks_fail_stale_weekly_assets_and_pass_fresh_ones() -> None:
    from dagster import AssetMaterialization, AssetSelection, Definitions, define_asset_job

    from assets_defs.definitions import defs
    from assets_defs.freshness import WEEKLY_ASSETS, weekly_freshness_checks

    job = define_asset_job("freshness", selection=AssetSelection.checks(*weekly_freshness_checks))
    merged = Definitions.merge(defs, Definitions(jobs=[job]))
    with DagsterInstance.ephemeral() as instance:
        never = merged.resolve_job_def("freshness").execute_in_process(instance=instance)
        verdicts = {e.asset_key.to_user_string(): e.passed
                    for e in never.get_asset_check_evaluations()}  # fmt: skip
        assert verdicts == dict.fromkeys(WEEKLY_ASSETS, False)
        instance.add_dynamic_partitions("crawls", ["CC-TEST-1"])
        for asset in WEEKLY_ASSETS[:2]:
            instance.report_runless_asset_event(AssetMaterialization(asset, partition="CC-TEST-1"))
        later = merged.resolve_job_def("freshness").execute_in_process(instance=instance)
        verdicts = {e.asset_key.to_user_string(): e.passed
                    for e in later.get_asset_check_evaluations()}  # fmt: skip
        assert verdicts == {a: a in WEEKLY_ASSETS[:2] for a in WEEKLY_ASSETS}
