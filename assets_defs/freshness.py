"""The freshness policy of the assets the weekly schedule rebuilds.

A ``FreshnessPolicy`` on each asset (not the superseded freshness checks and their sensor): the
daemon evaluates it (``freshness: enabled: true`` in the instance's dagster.yaml) and the UI
shows each asset fresh or stale.
"""

from datetime import timedelta

from dagster import FreshnessPolicy

WEEKLY_FRESHNESS = FreshnessPolicy.cron(
    deadline_cron="0 9 * * 1", lower_bound_delta=timedelta(days=7), timezone="UTC"
)
"""Stale when not materialized in the week before Monday 09:00 UTC (``weekly_dataset_rebuild``
starts at 03:00): laion_dataset, aesthetic_scores, aesthetic_subset, download_results."""
