"""Sensors: a new crawl in the crawl index triggers a manifest run (which registers its slices)."""

import orjson
from dagster import RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from assets_defs.jobs import crawl_manifest_job
from assets_defs.resources import CrawlSourceResource
from pipeline.crawls import list_crawls


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
