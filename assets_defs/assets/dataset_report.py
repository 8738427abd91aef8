"""``dataset_report``: a datasheet per crawl and release version (pipeline/datasheet/)."""

from dagster import AssetExecutionContext, Config, Failure, MaterializeResult, MetadataValue

from assets_defs.factory import table_asset, table_result
from assets_defs.metadata import stopwatch
from assets_defs.partitions import crawls
from assets_defs.resources import LakeResource
from pipeline.datasheet.figures import ReportOptions, compute_figures, load_crawl
from pipeline.datasheet.render import build_blocks, to_html, to_markdown
from pipeline.lake.tables import TableName

REPORT_DEFAULTS = ReportOptions()
"""The one place the report's defaults live (pipeline/datasheet/figures.py)."""


class DatasetReportConfig(Config):
    term_groups: dict[str, list[str]] = {k: list(v) for k, v in REPORT_DEFAULTS.term_groups.items()}
    """Caption term groups: an unmarked term first, its marked variants after it."""
    artists: list[str] = list(REPORT_DEFAULTS.artists)
    """Artist names to follow (default: those the synthetic web's vocabulary defines)."""
    top_domains: int = REPORT_DEFAULTS.top_domains

    def options(self) -> ReportOptions:
        return ReportOptions(self.term_groups, self.artists, self.top_domains)


@table_asset(
    TableName.DATASET_REPORT,
    __name__,
    partitions_def=crawls,
    deps=[TableName.AESTHETIC_SUBSET, TableName.DOWNLOAD_RESULTS],
    group_name="laion",
    kinds={"duckdb", "html"},
)
def dataset_report(
    context: AssetExecutionContext, config: DatasetReportConfig, lake: LakeResource
) -> MaterializeResult:
    """The crawl's datasheet: figures in the lake, Markdown here, HTML in ``_reports/``."""
    started = stopwatch()
    crawl = context.partition_key
    lake_ = lake.lake()
    try:
        tables = load_crawl(lake_, crawl)
    except ValueError as error:
        raise Failure(str(error)) from error
    figures = compute_figures(tables, config.options())
    uri = lake_.write_partition(TableName.DATASET_REPORT, figures, crawl)
    blocks = build_blocks(figures, tables.versions)
    name = f"{TableName.DATASET_REPORT}-{crawl}-release-v{tables.release_version}.html"
    html_uri = lake_.write_report(name, to_html(blocks).encode())
    return table_result(
        context,
        TableName.DATASET_REPORT,
        figures,
        uri,
        started=started,
        metadata={
            "datasheet": MetadataValue.md(to_markdown(blocks)),
            "datasheet_html": MetadataValue.path(html_uri),
            "release_version": MetadataValue.int(tables.release_version),
            "downloads_included": MetadataValue.bool(tables.has_downloads),
            "ai_generated_recorded": MetadataValue.bool(tables.has_ai_column),
        },
    )
