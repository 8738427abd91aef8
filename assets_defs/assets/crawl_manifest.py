"""``crawl_manifest``: the WAT files of each crawl, sampled and cut into dynamic partitions."""

import pyarrow as pa
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue

from assets_defs.factory import table_asset, table_result
from assets_defs.metadata import stopwatch
from assets_defs.partitions import crawls, wat_slices
from assets_defs.resources import CrawlSourceResource, LakeResource, SyntheticWebResource
from pipeline.hops.crawl.manifest import SlicePlan, list_crawls, list_wat_paths, plan_slices
from pipeline.lake.tables import CRAWL_MANIFEST_SCHEMA as MANIFEST_SCHEMA
from pipeline.lake.tables import TableName


class CrawlManifestConfig(Config):
    slice_size: int = 2
    """WAT files per partition."""
    sample_size: int | None = None
    """WAT files to take from each crawl (a seeded sample); None takes all."""
    sample_seed: int = 0


@table_asset(TableName.CRAWL_MANIFEST, __name__, group_name="crawl", kinds={"parquet"})
def crawl_manifest(
    context: AssetExecutionContext,
    config: CrawlManifestConfig,
    lake: LakeResource,
    crawl_source: CrawlSourceResource,
    synthetic_web: SyntheticWebResource,
) -> MaterializeResult:
    """List each crawl's WAT files, sample them, and register one partition per slice."""
    del synthetic_web  # required so the demo web exists (and is served) during the run
    started = stopwatch()
    opts = crawl_source.storage_options
    crawl_ids = crawl_source.crawl_ids or list_crawls(crawl_source.collinfo_uri, opts)
    plan = SlicePlan(config.slice_size, config.sample_size, config.sample_seed)
    tables = [
        plan_slices(
            crawl, list_wat_paths(crawl_source.data_root, crawl, opts), crawl_source.data_root, plan
        )
        for crawl in crawl_ids
    ]
    table = pa.concat_tables(tables) if tables else MANIFEST_SCHEMA.empty_table()
    lake_ = lake.lake()
    uri = lake_.write_partition(TableName.CRAWL_MANIFEST, table)
    keys = sorted(set(table.column("partition_key").to_pylist()))
    known = set(context.instance.get_dynamic_partitions(wat_slices.name))
    new_keys = [k for k in keys if k not in known]
    if new_keys:
        context.instance.add_dynamic_partitions(wat_slices.name, new_keys)
    known_crawls = set(context.instance.get_dynamic_partitions(crawls.name))
    new_crawls = [c for c in crawl_ids if c not in known_crawls]
    if new_crawls:
        context.instance.add_dynamic_partitions(crawls.name, new_crawls)
    context.log.info(f"{len(keys)} partitions ({len(new_keys)} new) for crawls {crawl_ids}")
    return table_result(
        context,
        TableName.CRAWL_MANIFEST,
        table,
        uri,
        started=started,
        metadata={
            "crawls": MetadataValue.json(crawl_ids),
            "partitions": MetadataValue.int(len(keys)),
            "partitions_added": MetadataValue.int(len(new_keys)),
            "wat_files": MetadataValue.int(table.num_rows),
            "slice_size": MetadataValue.int(config.slice_size),
            "data_root": MetadataValue.text(crawl_source.data_root),
        },
    )
