"""``aesthetic_scores`` and ``aesthetic_subset``: LAION-Aesthetics over the released index."""

import itertools

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

from assets_defs.assets.laion_dataset import laion_dataset
from assets_defs.factory import Decisions, read_input, table_asset, table_result
from assets_defs.freshness import WEEKLY_FRESHNESS
from assets_defs.metadata import report_metadata, stopwatch
from assets_defs.partitions import crawls
from assets_defs.resources import ClipModelResource, LakeResource, SyntheticWebResource
from pipeline.hops.aesthetic.scores import SubsetRules, apply_rules, score_embeddings
from pipeline.hops.clip.decode import DecodePolicy, decode_image
from pipeline.hops.clip.fetch import Fetcher, FetchPolicy
from pipeline.hops.dataset import opt_outs
from pipeline.lake.tables import TableName
from pipeline.lake.urls import HostPolicy
from pipeline.provenance.lake import ai_generated_pairs
from pipeline.reports import grid_png, histograms_png
from pipeline.settings import Settings


class AestheticSubsetConfig(Config):
    bands: list[float] = [5.0, 6.0, 6.5]
    """Score cut-offs reported as bands (LAION-Aesthetics V2: 5, 6, 6.5)."""
    min_score: float | None = None
    """The subset's cut-off; None: the lowest band."""
    max_punsafe: float = 0.5
    max_pwatermark: float = 0.8
    exclude_ai_generated: bool = Settings.from_env().exclude_ai_generated
    """Leave out pairs hop 3 found declared AI-generated (``ai_generated``), reason
    ``ai_generated``; default: the ``exclude_ai_generated`` setting (on)."""
    grid_images_per_band: int = 6
    """Sample images fetched per band for the metadata grid (0: no grid)."""

    def rules(self) -> SubsetRules:
        return SubsetRules(tuple(self.bands), self.min_score, self.max_punsafe,
                           self.max_pwatermark, self.exclude_ai_generated)  # fmt: skip


@table_asset(
    TableName.AESTHETIC_SCORES,
    __name__,
    partitions_def=crawls,
    deps=[
        laion_dataset,
        AssetDep(TableName.IMAGE_EMBEDDINGS, partition_mapping=AllPartitionMapping()),
    ],
    group_name="aesthetics",
    kinds={"parquet", "pytorch"},
    freshness_policy=WEEKLY_FRESHNESS,
    automation_condition=AutomationCondition.eager(),
)
def aesthetic_scores(
    context: AssetExecutionContext, lake: LakeResource, clip_model: ClipModelResource
) -> MaterializeResult:
    """Score every released pair with the aesthetic head, from stored embeddings only."""
    started = stopwatch()
    crawl = context.partition_key
    lake_ = lake.lake()
    release = read_input(lake_, TableName.LAION_DATASET, [crawl])
    # only the released pairs' embeddings (looked up by url_id), not every stored one
    embeddings = lake_.lookup(
        TableName.IMAGE_EMBEDDINGS,
        "url_id",
        release.column("url_id").to_pylist(),
        columns=["url_id", "model_id", "embedding"],
    )
    if embeddings is None:
        raise Failure(f"{TableName.IMAGE_EMBEDDINGS} has no published partition")
    model_id = clip_model.clip().model_id
    head = clip_model.head("aesthetic")
    table = score_embeddings(release, embeddings, model_id, head)
    uri = lake_.write_partition(TableName.AESTHETIC_SCORES, table, crawl)
    scores = [s for s in table.column("aesthetic").to_pylist() if s is not None]
    plot = histograms_png({"aesthetic": scores})
    return table_result(
        context,
        TableName.AESTHETIC_SCORES,
        table,
        uri,
        started=started,
        metadata={
            "model_id": MetadataValue.text(model_id),
            "aesthetic_head": MetadataValue.text(head.source),
            "aesthetic_head_sha256": MetadataValue.text(head.sha256 or ""),
            "missing_embeddings": MetadataValue.int(table.column("aesthetic").null_count),
            "mean_aesthetic": MetadataValue.float(
                round(sum(scores) / len(scores), 3) if scores else 0.0
            ),
            **report_metadata(
                lake_,
                "histogram",
                f"aesthetic_scores-{crawl}-histogram.png",
                plot,
                "aesthetic scores",
            ),
        },
    )


def _band_grid(
    table, rules: SubsetRules, per_band: int, fetcher: Fetcher
) -> tuple[bytes, dict[str, list[str]]] | None:
    """Fetch a few images per score band (the pipeline keeps no image bytes) into a grid;
    the grid and the url_ids and pair_ids it shows."""
    if per_band <= 0 or table.num_rows == 0:
        return None
    rows = []
    shows: dict[str, list[str]] = {"url_id": [], "pair_id": []}
    edges = [float("-inf"), *sorted(rules.bands), float("inf")]
    data = table.select(["URL", "aesthetic", "url_id", "pair_id"]).to_pylist()
    for lo, hi in itertools.pairwise(edges):
        band = [r for r in data if r["aesthetic"] is not None and lo <= r["aesthetic"] < hi]
        images = []
        for row in band[: per_band * 2]:
            fetched = fetcher.fetch(row["URL"])
            decoded = decode_image(fetched.body, DecodePolicy(min_bytes=0)) if fetched.ok else None
            if decoded is not None and decoded.ok and decoded.image is not None:
                images.append(decoded.image)
                shows["url_id"].append(row["url_id"])
                shows["pair_id"].append(row["pair_id"])
            if len(images) == per_band:
                break
        label = f"< {hi:g}" if lo == float("-inf") else f">= {lo:g}"
        rows.append((label, images))
    return grid_png(rows), shows


@table_asset(
    TableName.AESTHETIC_SUBSET,
    __name__,
    conserves=True,
    partitions_def=crawls,
    deps=[aesthetic_scores],
    group_name="aesthetics",
    kinds={"parquet"},
    freshness_policy=WEEKLY_FRESHNESS,
    automation_condition=AutomationCondition.eager(),
)
def aesthetic_subset(
    context: AssetExecutionContext,
    config: AestheticSubsetConfig,
    lake: LakeResource,
    synthetic_web: SyntheticWebResource,
) -> MaterializeResult:
    """Cut the subset by score, punsafe and pwatermark; show sample images per band."""
    started = stopwatch()
    crawl = context.partition_key
    lake_ = lake.lake()
    scored = read_input(lake_, TableName.AESTHETIC_SCORES, [crawl])
    rules = config.rules()
    ai = ai_generated_pairs(lake_, scored.column("pair_id").to_pylist())
    result = apply_rules(scored, rules, ai)
    uri = lake_.write_partition(TableName.AESTHETIC_SUBSET, result.table, crawl)
    resolve = synthetic_web.resolve_map()
    fetcher = Fetcher(FetchPolicy(resolve=resolve, resolve_only=bool(resolve),
                                  host_policy=HostPolicy(), retries=0,
                                  opt_outs=opt_outs.load(lake_)), workers=1)  # fmt: skip
    grid = _band_grid(scored, rules, config.grid_images_per_band, fetcher)
    extra = {}
    if grid is not None:
        png, shows = grid
        name = f"aesthetic_subset-{crawl}-bands.png"
        extra = report_metadata(lake_, "band_samples", name, png, "samples per band", shows)
    return table_result(
        context,
        TableName.AESTHETIC_SUBSET,
        result.table,
        uri,
        decisions=Decisions(result.rows_in, result.rows_kept, result.dropped),
        started=started,
        metadata={
            "bands": MetadataValue.json(result.bands),
            "cutoff": MetadataValue.float(rules.cutoff),
            "max_punsafe": MetadataValue.float(rules.max_punsafe),
            "max_pwatermark": MetadataValue.float(rules.max_pwatermark),
            "exclude_ai_generated": MetadataValue.bool(rules.exclude_ai_generated),
            "ai_generated_released": MetadataValue.int(len(ai)),
            **extra,
        },
    )
