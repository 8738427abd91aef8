"""``laion_dataset``: one crawl's released index in LAION's layout, with language subsets."""

import pyarrow.compute as pc
from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    AutomationCondition,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
)

from assets_defs.factory import Decisions, table_asset, table_result
from assets_defs.freshness import WEEKLY_FRESHNESS
from assets_defs.metadata import report_metadata, stopwatch
from assets_defs.partitions import crawls
from assets_defs.resources import LakeResource
from pipeline.hops.crawl.manifest import crawl_of_partition
from pipeline.hops.dataset import hash_lists
from pipeline.hops.dataset import opt_outs as optout
from pipeline.hops.dataset.hash_lists import HashMatching
from pipeline.hops.dataset.release import SubsetNames, build_release
from pipeline.lake.tables import TableName
from pipeline.reports import histograms_png


class LaionDatasetConfig(Config):
    subset_en: str = "laion2B-en"
    subset_multi: str = "laion2B-multi"
    subset_nolang: str = "laion1B-nolang"
    max_pdq_distance: int = 31
    """Stored PDQ hashes match a takedown list's within this Hamming distance (as hop 3)."""

    def hash_matching(self) -> HashMatching:
        return HashMatching(max_pdq_distance=self.max_pdq_distance)


def crawl_partitions(lake_, table: str, crawl: str) -> list[str]:
    return [k for k in lake_.partitions(table) if crawl_of_partition(k) == crawl]


@table_asset(
    TableName.LAION_DATASET,
    __name__,
    conserves=True,
    partitions_def=crawls,
    deps=[
        AssetDep(TableName.CLIP_SCORES, partition_mapping=AllPartitionMapping()),
        TableName.OPT_OUTS,
        TableName.HASH_LISTS,
    ],
    group_name="laion",
    kinds={"parquet", "duckdb"},
    freshness_policy=WEEKLY_FRESHNESS,
    automation_condition=AutomationCondition.eager(),
)
def laion_dataset(
    context: AssetExecutionContext, config: LaionDatasetConfig, lake: LakeResource
) -> MaterializeResult:
    """Dedup the crawl's CLIP-kept pairs on (URL, TEXT) and release them with subsets."""
    started = stopwatch()
    crawl = context.partition_key
    lake_ = lake.lake()
    keys = crawl_partitions(lake_, TableName.CLIP_SCORES, crawl)
    scores = lake_.read_with_partition(TableName.CLIP_SCORES, "source_partition", keys)
    if scores is None:
        raise Failure(f"clip_scores has no published partition of crawl {crawl!r}")
    names = SubsetNames(config.subset_en, config.subset_multi, config.subset_nolang)
    opt_out_list = optout.load(lake_)
    takedowns = hash_lists.load(lake_, config.hash_matching())
    result = build_release(scores, names, opt_out_list, takedowns)
    uri = lake_.write_partition(TableName.LAION_DATASET, result.release, crawl)
    lake_.write_partition(TableName.LAION_DATASET_DECISIONS, result.decisions, crawl)
    subset_uris = {
        name: lake_.write_partition(f"{TableName.LAION_SUBSETS}/{name}", table, crawl)
        for name, table in result.subsets.items()
    }
    links = sum(m["rows"] for m in lake_.manifests(TableName.WAT_IMAGE_LINKS, keys))
    pairs = lake_.read(TableName.ALT_TEXT_PAIRS, keys, columns=["kept"])
    pairs_kept = int(pc.sum(pairs.column("kept")).as_py() or 0) if pairs is not None else 0
    stages = {
        TableName.WAT_IMAGE_LINKS: links,
        "alt_text_pairs_kept": pairs_kept,
        "clip_scores_in": scores.num_rows,
        "clip_scores_kept": int(pc.sum(scores.column("kept")).as_py() or 0),
        "released": result.rows_kept,
    }
    plot = histograms_png(
        {
            name: result.release.column(name).to_pylist()
            for name in ("similarity", "punsafe", "pwatermark")
        }
    )
    return table_result(
        context,
        TableName.LAION_DATASET,
        result.release,
        uri,
        decisions=Decisions(result.rows_in, result.rows_kept, result.dropped),
        started=started,
        metadata={
            "subsets": MetadataValue.json(
                {n: {"rows": t.num_rows, "uri": subset_uris[n]} for n, t in result.subsets.items()}
            ),
            "stages": MetadataValue.json(stages),
            "languages": MetadataValue.json(result.languages),
            "upstream_partitions": MetadataValue.json(keys),
            **report_metadata(
                lake_,
                "histograms",
                f"laion_dataset-{crawl}-histograms.png",
                plot,
                "similarity, punsafe, pwatermark",
            ),
        },
    )
