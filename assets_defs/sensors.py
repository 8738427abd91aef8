"""Sensors: a new crawl in the crawl index triggers a manifest run (which registers its
slices); a change of the opt-out list rebuilds every crawl's dataset and the opt-out report."""

import orjson
from dagster import (
    AssetMaterialization,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from assets_defs.jobs import crawl_manifest_job, dataset_job, opt_out_report_job
from assets_defs.partitions import crawls
from assets_defs.resources import CrawlSourceResource, LakeResource
from pipeline.hops.crawl.manifest import list_crawls
from pipeline.hops.dataset.opt_outs import TABLE as OPT_OUT_TABLE
from pipeline.lake.tables import TableName


@sensor(
    job=crawl_manifest_job,
    minimum_interval_seconds=300,
    description="Watch the crawl index; when a crawl appears, refresh crawl_manifest so its "
    "slices become partitions (the hops then materialize them by automation condition).",
)
def new_crawl_sensor(
    context: SensorEvaluationContext, crawl_source: CrawlSourceResource
) -> SensorResult | SkipReason:
    crawls = crawl_source.crawl_ids or list_crawls(
        crawl_source.collinfo_uri, crawl_source.storage_options
    )
    known = set(orjson.loads(context.cursor)) if context.cursor else set()
    new = sorted(set(crawls) - known)
    if not new:
        return SkipReason(f"no new crawl among {len(crawls)} in the index")
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=f"new-crawls:{','.join(new)}",
                tags={"crawl2diffusion/new_crawls": ",".join(new)},
            )
        ],
        cursor=orjson.dumps(sorted(known | set(crawls))).decode(),
    )


@sensor(
    jobs=[dataset_job, opt_out_report_job],
    minimum_interval_seconds=60,
    description="Watch the lake's opt-out list; when it changes, record an opt_outs "
    "materialization, rebuild every crawl's dataset (opted-out pairs are dropped) and report "
    "the checkpoints that were trained on withdrawn items.",
)
def opt_out_sensor(context: SensorEvaluationContext, lake: LakeResource):
    manifest = lake.lake().manifest(OPT_OUT_TABLE)
    if manifest is None:
        return SkipReason("no opt-out list in the lake yet")
    version = manifest["file"]
    if version == context.cursor:
        return SkipReason("opt-out list unchanged")
    keys = sorted(context.instance.get_dynamic_partitions(crawls.name))
    requests = [
        RunRequest(run_key=f"opt-out:{version}:{key}", job_name=dataset_job.name, partition_key=key)
        for key in keys
    ]
    requests.append(
        RunRequest(run_key=f"opt-out:{version}:report", job_name=opt_out_report_job.name)
    )
    event = AssetMaterialization(
        TableName.OPT_OUTS,
        metadata={
            "entries": MetadataValue.int(manifest["rows"]),
            "dagster/uri": MetadataValue.path(lake.lake().partition_uri(OPT_OUT_TABLE)),
        },
    )
    return SensorResult(run_requests=requests, asset_events=[event], cursor=version)
