"""``image_shards`` and ``download_results``: img2dataset over one crawl's aesthetic subset."""

import time

from dagster import (
    AssetExecutionContext,
    AssetSpec,
    Config,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from assets_defs.factory import Decisions, read_input, table_checks, table_result
from assets_defs.freshness import WEEKLY_FRESHNESS
from assets_defs.metadata import code_version, counts_metadata
from assets_defs.partitions import crawls
from assets_defs.resources import LakeResource, SyntheticWebResource
from pipeline.hops.download.shards import ShardSpec, download_shards
from pipeline.lake.tables import TableName

CODE_VERSION = code_version(__name__)


class ImageShardsConfig(Config):
    image_size: int = 64
    """img2dataset's resize target (64 px for the default demo, 512 px for real runs)."""
    resize_mode: str = "center_crop"
    encode_format: str = "jpg"
    samples_per_shard: int = 256
    distributor: str = "multiprocessing"
    """img2dataset's distributor: ``multiprocessing`` here, ``pyspark`` or ``ray`` on a cluster."""
    processes_count: int = 1
    thread_count: int = 16
    timeout_s: int = 10
    retries: int = 1
    max_attempts: int = 3
    """Runs that may try a failed URL before it is given up."""
    disallowed_header_directives: list[str] = ["noai", "noimageai", "noindex", "noimageindex"]
    user_agent_token: str = "crawl2diffusion"

    def spec(self, proxy: str | None) -> ShardSpec:
        """img2dataset settings; with a proxy (the synthetic web), https URLs go through it
        as plain http, since the loopback server speaks no TLS."""
        return ShardSpec(
            image_size=self.image_size,
            resize_mode=self.resize_mode,
            encode_format=self.encode_format,
            samples_per_shard=self.samples_per_shard,
            processes_count=self.processes_count,
            thread_count=self.thread_count,
            distributor=self.distributor,
            timeout=self.timeout_s,
            retries=self.retries,
            max_attempts=self.max_attempts,
            disallowed_header_directives=tuple(self.disallowed_header_directives),
            user_agent_token=self.user_agent_token or None,
            http_proxy=proxy,
            https_as_http=proxy is not None,
        )


@multi_asset(
    specs=[
        AssetSpec(
            TableName.IMAGE_SHARDS,
            code_version=CODE_VERSION,
            deps=[TableName.AESTHETIC_SUBSET],
            group_name="training",
            kinds={"webdataset", "img2dataset"},
            description="WebDataset tar shards of the aesthetic subset, with img2dataset's "
            "parquet and stats files.",
        ),
        AssetSpec(
            TableName.DOWNLOAD_RESULTS,
            code_version=CODE_VERSION,
            deps=[TableName.AESTHETIC_SUBSET],
            group_name="training",
            kinds={"parquet"},
            description="One row per subset pair: img2dataset status, shard and key.",
            freshness_policy=WEEKLY_FRESHNESS,
        ),
    ],
    partitions_def=crawls,
    check_specs=table_checks(TableName.DOWNLOAD_RESULTS, conserves=True),
    can_subset=False,
)
def image_shards(
    context: AssetExecutionContext,
    config: ImageShardsConfig,
    lake: LakeResource,
    synthetic_web: SyntheticWebResource,
):
    """Download the subset with img2dataset; re-runs redo missing shards and failed URLs."""
    started = time.perf_counter()
    crawl = context.partition_key
    lake_ = lake.lake()
    subset = read_input(lake_, TableName.AESTHETIC_SUBSET, [crawl])
    subset = subset.filter(subset.column("kept"))
    previous = lake_.read(TableName.DOWNLOAD_RESULTS, [crawl])
    root = lake_.partition_uri(TableName.IMAGE_SHARDS, crawl)
    result = download_shards(
        subset,
        root,
        config.spec(synthetic_web.proxy_url),
        previous,
        storage_options=lake_.storage_options,
    )
    uri = lake_.write_partition(TableName.DOWNLOAD_RESULTS, result.results, crawl)
    counts = result.status_counts
    ok = counts.get("success", 0)
    failed = {k: v for k, v in counts.items() if k != "success"}
    yield MaterializeResult(
        asset_key=TableName.IMAGE_SHARDS,
        metadata={
            "dagster/uri": MetadataValue.path(root),
            "shards": MetadataValue.int(len(result.shard_uris)),
            "shards_written_now": MetadataValue.int(result.shards_written),
            "images": MetadataValue.int(ok),
            "batch": MetadataValue.text(result.batch or ""),
            "image_size": MetadataValue.int(config.image_size),
            "distributor": MetadataValue.text(config.distributor),
        },
    )
    yield table_result(
        context,
        TableName.DOWNLOAD_RESULTS,
        result.results,
        uri,
        decisions=Decisions(subset.num_rows, ok, failed),
        started=started,
        yielded=True,
        metadata={
            "urls_attempted_now": MetadataValue.int(result.attempted),
            **counts_metadata(
                "status", counts, ("success", "failed_to_download", "failed_to_resize")
            ),
        },
    )
