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


def test_freshness_policy_reports_stale_and_fresh_weekly_assets(tmp_path) -> None:
    """The freshness daemon, over the real code location loaded in process, reports a weekly
    asset last materialized two weeks ago as stale and one materialized now as fresh."""
    from datetime import timedelta

    from dagster import AssetKey, AssetMaterialization
    from dagster._core.definitions.freshness import FreshnessState
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.test_utils import freeze_time, instance_for_test
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
    from dagster._daemon.freshness import FreshnessDaemon
    from dagster._time import get_current_datetime

    stale, fresh = AssetKey(TableName.LAION_DATASET), AssetKey(TableName.DOWNLOAD_RESULTS)
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="assets_defs.definitions", attribute="defs")
    )
    with instance_for_test({"freshness": {"enabled": True}}) as instance:
        instance.add_dynamic_partitions("crawls", ["CC-TEST-1"])
        two_weeks_ago = get_current_datetime() - timedelta(days=14)
        with freeze_time(two_weeks_ago):
            instance.report_runless_asset_event(AssetMaterialization(stale, partition="CC-TEST-1"))
        instance.report_runless_asset_event(AssetMaterialization(fresh, partition="CC-TEST-1"))
        with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as context:
            list(FreshnessDaemon().run_iteration(context))
        states = instance.get_freshness_state_records([stale, fresh])
        assert states[stale].freshness_state == FreshnessState.FAIL
        assert states[fresh].freshness_state == FreshnessState.PASS


def test_code_location_loads_without_warnings_or_torch() -> None:
    """Loading the code location raises none of Dagster's superseded/deprecated warnings and
    no warning from the project's own modules, and leaves torch for the steps that use it
    (a fresh interpreter: imports are cached)."""
    import subprocess
    import sys

    script = (
        "import warnings\n"
        "warnings.simplefilter('error', FutureWarning)\n"  # Dagster's SupersessionWarning
        "warnings.filterwarnings('error', module=r'(assets_defs|pipeline|quality)(\\..*)?$')\n"
        "import assets_defs.definitions\n"
        "import sys\n"
        "assert 'torch' not in sys.modules, 'torch imported at load'\n"  # loads in seconds
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Warning" not in done.stderr, done.stderr[-2000:]
