"""``image_shards`` and ``download_results``: img2dataset over one crawl's aesthetic subset."""

from dataclasses import replace

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
from assets_defs.metadata import code_version, counts_metadata, stopwatch
from assets_defs.partitions import crawls
from assets_defs.pools import Pool
from assets_defs.resources import EngineResource, LakeResource, SyntheticWebResource
from pipeline.hops.dataset import opt_outs as optout
from pipeline.hops.download.output import output_to
from pipeline.hops.download.shards import ShardSpec, download_shards
from pipeline.lake.tables import (
    DOWNLOAD_STATUSES,
    TableName,
)
from pipeline.lake.urls import HostPolicy

CODE_VERSION = code_version(__name__)


SHARD_DEFAULTS = ShardSpec()
"""The one place the download defaults live (pipeline/hops/download/shards.py)."""


class ImageShardsConfig(Config):
    image_size: int = SHARD_DEFAULTS.image_size
    """img2dataset's resize target (64 px for the default demo, 512 px for real runs)."""
    resize_mode: str = SHARD_DEFAULTS.resize_mode
    encode_format: str = SHARD_DEFAULTS.encode_format
    samples_per_shard: int = SHARD_DEFAULTS.samples_per_shard
    distributor: str = SHARD_DEFAULTS.distributor
    """img2dataset's distributor: ``multiprocessing`` here, ``pyspark`` or ``ray`` on a cluster."""
    processes_count: int = SHARD_DEFAULTS.processes_count
    thread_count: int = SHARD_DEFAULTS.thread_count
    timeout_s: int = SHARD_DEFAULTS.timeout
    retries: int = SHARD_DEFAULTS.retries
    max_attempts: int = SHARD_DEFAULTS.max_attempts
    """Runs that may try a failed URL before it is given up."""
    disallowed_header_directives: list[str] = list(SHARD_DEFAULTS.disallowed_header_directives)
    user_agent_token: str = SHARD_DEFAULTS.user_agent_token or ""
    private_host_allowlist: list[str] = []
    """Hosts, host:port or CIDRs the download guard admits despite the private-address rule."""
    max_image_pixels: int = SHARD_DEFAULTS.max_image_pixels
    """Images declaring more pixels are refused from their header (decompression_bomb)."""

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
            host_policy=HostPolicy.from_list(self.private_host_allowlist),
            max_image_pixels=self.max_image_pixels,
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
    pool=Pool.DOWNLOAD,
    check_specs=table_checks(TableName.DOWNLOAD_RESULTS, conserves=True),
    can_subset=False,
)
def image_shards(
    context: AssetExecutionContext,
    config: ImageShardsConfig,
    lake: LakeResource,
    synthetic_web: SyntheticWebResource,
    engine: EngineResource,
):
    """Download the subset with img2dataset; re-runs redo missing shards and failed URLs."""
    started = stopwatch()
    crawl = context.partition_key
    lake_ = lake.lake()
    subset = read_input(lake_, TableName.AESTHETIC_SUBSET, [crawl])
    subset = subset.filter(subset.column("kept"))
    previous = lake_.read(TableName.DOWNLOAD_RESULTS, [crawl])
    root = lake_.partition_uri(TableName.IMAGE_SHARDS, crawl)
    runner = engine.engine()  # img2dataset's multiprocessing or ray distributor
    distributor = runner.distributor(config.distributor)
    spec = replace(
        config.spec(synthetic_web.download_proxy_url),
        opt_outs=optout.load(lake_),
        distributor=distributor,
    )
    with output_to(lambda line: context.log.info(f"img2dataset: {line}")):
        result = download_shards(
            subset,
            root,
            spec,
            previous,
            storage_options=lake_.storage_options,
            cluster=runner.download_cluster(),
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
            "distributor": MetadataValue.text(distributor),
            "engine": MetadataValue.text(runner.kind),
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
            **counts_metadata("status", counts, DOWNLOAD_STATUSES),
            "unverified": MetadataValue.int(result.unverified),
            "guard_refusals": MetadataValue.json(result.guard_refusals or {}),
        },
    )
