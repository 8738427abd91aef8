"""Schedules: a weekly rebuild of the dataset-level assets, one run per crawl."""

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from assets_defs.jobs import dataset_job
from assets_defs.partitions import crawls


@schedule(
    job=dataset_job,
    cron_schedule="0 3 * * 1",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Every Monday 03:00 UTC: rebuild laion_dataset, aesthetic_scores and "
    "aesthetic_subset for every registered crawl (picks up re-run slices and new weights).",
)
def weekly_dataset_rebuild(context: ScheduleEvaluationContext):
    keys = sorted(context.instance.get_dynamic_partitions(crawls.name))
    if not keys:
        return SkipReason("no crawl registered yet: materialize crawl_manifest first")
    tick = (
        context.scheduled_execution_time.strftime("%Y-%m-%d")
        if context.scheduled_execution_time
        else "now"
    )
    return [RunRequest(run_key=f"weekly:{tick}:{key}", partition_key=key) for key in keys]
