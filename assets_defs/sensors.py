"""Sensors: a new crawl in the crawl index triggers a manifest run (which registers its
slices); a change of the opt-out list or of a takedown hash list rebuilds every crawl's
dataset and the opt-out report (never hops 1-3: built slices are corrected downstream)."""

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
from pipeline.hops.dataset.hash_lists import TABLE as HASH_LIST_TABLE
from pipeline.hops.dataset.opt_outs import TABLE as OPT_OUT_TABLE


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


WATCHED = (OPT_OUT_TABLE, HASH_LIST_TABLE)
"""The withdrawal tables the opt-out sensor watches (their Delta versions are its cursor)."""


@sensor(
    jobs=[dataset_job, opt_out_report_job],
    minimum_interval_seconds=60,
    description="Watch the lake's opt-out list and takedown hash lists; when either changes, "
    "record its materialization, rebuild every crawl's dataset (withdrawn pairs are dropped "
    "there: slices already built are not re-run) and report the checkpoints that were trained "
    "on withdrawn items. It never requests hops 1-3.",
)
def opt_out_sensor(context: SensorEvaluationContext, lake: LakeResource):
    lake_ = lake.lake()
    versions = {table: lake_.version(table) for table in WATCHED}
    if all(v is None for v in versions.values()):
        return SkipReason("no opt-out list or hash list in the lake yet")
    try:
        seen = orjson.loads(context.cursor) if context.cursor else {}
    except orjson.JSONDecodeError:  # a cursor from before hash lists: a manifest's file name
        seen = {}
    seen = seen if isinstance(seen, dict) else {}
    changed = [t for t in WATCHED if versions[t] is not None and versions[t] != seen.get(t)]
    if not changed:
        return SkipReason("opt-out list and hash lists unchanged")
    tag = ",".join(f"{t}@{versions[t]}" for t in WATCHED if versions[t] is not None)
    keys = sorted(context.instance.get_dynamic_partitions(crawls.name))
    requests = [
        RunRequest(run_key=f"opt-out:{tag}:{key}", job_name=dataset_job.name, partition_key=key)
        for key in keys
    ]
    requests.append(RunRequest(run_key=f"opt-out:{tag}:report", job_name=opt_out_report_job.name))
    events = []
    for table in changed:
        manifest = lake_.manifest(table)
        events.append(
            AssetMaterialization(
                table,
                metadata={
                    "entries": MetadataValue.int(manifest["rows"] if manifest else 0),
                    "delta_version": MetadataValue.int(versions[table]),
                    "dagster/uri": MetadataValue.path(lake_.partition_uri(table)),
                },
            )
        )
    return SensorResult(
        run_requests=requests, asset_events=events, cursor=orjson.dumps(versions).decode()
    )
