"""Freshness checks on the assets the weekly schedule rebuilds, and the sensor that runs them.

``build_last_update_freshness_checks`` (rather than a ``FreshnessPolicy``) because its results
are asset checks: they show on the asset page next to the data-quality checks, and a test can
run them in-process.
"""

from datetime import timedelta

from dagster import build_last_update_freshness_checks, build_sensor_for_freshness_checks

from pipeline.lake.tables import TableName

WEEKLY_ASSETS = [
    TableName.LAION_DATASET,
    TableName.AESTHETIC_SCORES,
    TableName.AESTHETIC_SUBSET,
    TableName.DOWNLOAD_RESULTS,
]
"""What ``weekly_dataset_rebuild`` materializes every Monday (per crawl)."""

weekly_freshness_checks = build_last_update_freshness_checks(
    assets=WEEKLY_ASSETS,
    lower_bound_delta=timedelta(days=7, hours=6),
    deadline_cron="0 9 * * 1",
    timezone="UTC",
)
"""Fail when an asset was not updated in the week before Monday 09:00 UTC (the rebuild starts
at 03:00)."""

freshness_sensor = build_sensor_for_freshness_checks(
    freshness_checks=weekly_freshness_checks, name="weekly_freshness_sensor"
)
