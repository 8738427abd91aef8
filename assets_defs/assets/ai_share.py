"""``ai_share``: per crawl, the AI-generated share by signal at each hop, with and without
the aesthetic subset's exclusion, and recall against the synthetic truth
(pipeline/provenance/ai_share.py)."""

from pathlib import Path

import pyarrow.parquet as pq
from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue

from assets_defs.factory import table_asset, table_result
from assets_defs.metadata import stopwatch
from assets_defs.partitions import crawls
from assets_defs.resources import LakeResource, SyntheticWebResource
from pipeline.lake.tables import TableName
from pipeline.provenance.ai_share import compute_ai_share, load_ai_share
from pipeline.provenance.ai_share_report import plot_png, summary_line, to_markdown
from pipeline.reports import markdown_link


def _truth(web: SyntheticWebResource):
    """The synthetic web's truth table, when the web is the source."""
    path = Path(web.root) / "truth.parquet"
    return pq.read_table(path) if web.enabled and path.exists() else None


@table_asset(
    TableName.AI_SHARE,
    __name__,
    partitions_def=crawls,
    deps=[TableName.AESTHETIC_SUBSET, TableName.DOWNLOAD_RESULTS],
    group_name="laion",
    kinds={"duckdb"},
)
def ai_share(
    context: AssetExecutionContext, lake: LakeResource, synthetic_web: SyntheticWebResource
) -> MaterializeResult:
    """How much of the crawl declares itself AI-generated at each hop, and what was missed."""
    started = stopwatch()
    crawl = context.partition_key
    lake_ = lake.lake()
    truth = _truth(synthetic_web)
    try:
        tables = load_ai_share(lake_, crawl, truth)
    except ValueError as error:
        raise Failure(str(error)) from error
    figures = compute_ai_share(tables)
    uri = lake_.write_partition(TableName.AI_SHARE, figures, crawl)
    plot = lake_.write_report(f"{TableName.AI_SHARE}-{crawl}.png", plot_png(figures, crawl))
    return table_result(
        context,
        TableName.AI_SHARE,
        figures,
        uri,
        started=started,
        metadata={
            TableName.AI_SHARE: MetadataValue.md(to_markdown(figures)),
            "ai_share_plot": MetadataValue.md(markdown_link(plot, f"AI share in {crawl}")),
            "ai_share_plot_path": MetadataValue.path(plot),
            "summary": MetadataValue.text(summary_line(figures)),
            "downloads_included": MetadataValue.bool(tables.has_downloads),
            "truth_included": MetadataValue.bool(tables.has_truth),
        },
    )
