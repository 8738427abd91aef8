"""``wat_image_links`` (hop 1): every ``IMG@/src`` link of a partition's WAT files."""

import pyarrow.compute as pc
from dagster import (
    AssetExecutionContext,
    AutomationCondition,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
)

from assets_defs.assets.crawl_manifest import crawl_manifest
from assets_defs.factory import read_input, table_asset, table_result
from assets_defs.metadata import counts_metadata, stopwatch
from assets_defs.partitions import wat_slices
from assets_defs.pools import Pool
from assets_defs.resources import CrawlSourceResource, EngineResource, LakeResource
from pipeline.hops.crawl.manifest import crawl_of_partition
from pipeline.hops.wat.records import ExtractStats
from pipeline.hops.wat.split import DEFAULT_MAX_RECORD_BYTES
from pipeline.lake.tables import IMAGE_LINK_SCHEMA, RECORD_ERRORS, TableName


class WatExtractConfig(Config):
    batch_size: int = 65_536
    """Rows per Arrow batch written (bounds memory)."""
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    """Larger WARC records are skipped unread and counted as ``record_too_large``."""
    max_row_change: float = 0.5
    """Warn when a slice's link count moves more than this fraction between runs."""


@table_asset(
    TableName.WAT_IMAGE_LINKS,
    __name__,
    row_count=True,
    partitions_def=wat_slices,
    deps=[crawl_manifest],
    group_name="crawl",
    kinds={"parquet"},
    pool=Pool.DOWNLOAD,
    # only slices never materialized: a manifest refresh must not rebuild every slice
    automation_condition=AutomationCondition.on_missing(),
)
def wat_image_links(
    context: AssetExecutionContext,
    config: WatExtractConfig,
    lake: LakeResource,
    crawl_source: CrawlSourceResource,
    engine: EngineResource,
) -> MaterializeResult:
    """Stream the partition's WAT files and write their image links to the lake."""
    started, key = stopwatch(), context.partition_key
    lake_ = lake.lake()
    manifest = read_input(lake_, TableName.CRAWL_MANIFEST)
    mine = manifest.filter(pc.equal(manifest.column("partition_key"), key))
    if mine.num_rows == 0:
        raise Failure(f"partition {key!r} is not in the current crawl_manifest")
    uris = mine.column("wat_uri").to_pylist()
    stats = ExtractStats()
    runner = engine.engine()  # in process, or one Ray task per WAT file
    with (
        lake_.partition_writer(TableName.WAT_IMAGE_LINKS, key, IMAGE_LINK_SCHEMA) as writer,
        runner.session(crawl_source.storage_options),
    ):
        for batch in runner.image_link_batches(
            uris,
            crawl_of_partition(key),
            stats,
            batch_size=config.batch_size,
            max_record_bytes=config.max_record_bytes,
            storage_options=crawl_source.storage_options,
        ):
            writer.write_batch(batch)
    summary = stats.as_dict()
    context.log.info(
        f"{stats.files_read} WAT files, {stats.records_read:,} records "
        f"({summary['records_failed']:,} failed), {stats.image_links:,} image links"
    )
    return table_result(
        context,
        TableName.WAT_IMAGE_LINKS,
        read_input(lake_, TableName.WAT_IMAGE_LINKS, [key]),
        lake_.partition_uri(TableName.WAT_IMAGE_LINKS, key),
        rows=stats.image_links,
        max_row_change=config.max_row_change,
        started=started,
        metadata={
            "wat_uris": MetadataValue.json(uris),
            "files_read": MetadataValue.int(stats.files_read),
            "bytes_read": MetadataValue.int(stats.bytes_read),
            "records_read": MetadataValue.int(stats.records_read),
            "records_ok": MetadataValue.int(stats.records_ok),
            "records_with_html": MetadataValue.int(stats.records_with_html),
            "records_failed": MetadataValue.int(summary["records_failed"]),
            **counts_metadata("records_failed", stats.records_failed, RECORD_ERRORS),
            "engine": MetadataValue.text(runner.kind),
        },
    )
