"""``trace_url``: a job that shows one URL's journey as Markdown in the run's metadata."""

from dagster import Config, MetadataValue, OpExecutionContext, Output, job, op

from assets_defs.resources import LakeResource
from pipeline.lake.history import resolve_as_of
from pipeline.lineage.index import LineageIndex


class TraceConfig(Config):
    url: str
    """Image URL to trace (as written in the page, resolved, or normalized)."""
    as_of: str | None = None
    """Answer as the lake stood then: an ISO 8601 time (UTC by default) or ``table@version``."""


@op
def trace_one_url(context: OpExecutionContext, config: TraceConfig, lake: LakeResource) -> Output:
    lake_ = lake.lake()
    as_of = resolve_as_of(lake_, config.as_of) if config.as_of else None
    journey = LineageIndex(lake_).trace(config.url, as_of)
    story = journey.story()
    context.log.info(story)
    return Output(
        journey.seen,
        metadata={
            "journey": MetadataValue.md(f"```\n{story}\n```"),
            "seen": MetadataValue.bool(journey.seen),
            "sightings": MetadataValue.int(len(journey.sightings)),
            "kept": MetadataValue.int(sum(1 for d in journey.decisions if d["kept"])),
            "used_in_training": MetadataValue.bool(journey.used_in_training),
            "withdrawn": MetadataValue.bool(journey.withdrawn),
            "journey_json": MetadataValue.json(orjson_safe(journey.to_dict())),
        },
    )


def orjson_safe(value: object) -> object:
    """Round-trip through orjson so numpy/duckdb scalars become plain JSON values."""
    import orjson

    return orjson.loads(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY, default=str))


@job(description="Trace one image URL through every hop; the journey is in the op's metadata.")
def trace_url() -> None:
    trace_one_url()
