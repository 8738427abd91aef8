"""``alt_text_pairs`` (hop 2): cleaned, language-tagged pairs, each kept or dropped by reason."""

import time
from collections import Counter

import pyarrow.compute as pc
from dagster import (
    AssetExecutionContext,
    AutomationCondition,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets_defs.assets.wat_image_links import wat_image_links
from assets_defs.column_lineage import column_lineage
from assets_defs.metadata import code_version, counts_metadata, table_metadata
from assets_defs.partitions import wat_slices
from assets_defs.resources import LakeResource
from pipeline.hops.alt_text.pairs import AltTextRules, parse_alt_texts
from pipeline.hops.crawl.manifest import crawl_of_partition
from pipeline.lake.tables import ALT_TEXT_DROP_REASONS as DROP_REASONS
from pipeline.lake.tables import TableName
from quality.checks import (
    conservation_check_result,
    conservation_check_spec,
    previous_row_count,
    row_count_check_result,
    row_count_check_spec,
    suite_check_result,
    suite_check_spec,
)


class AltTextConfig(Config):
    min_chars: int = 5
    """LAION's minimum alt-text length."""
    private_host_allowlist: list[str] = []
    """Hosts, host:port or CIDRs admitted despite the private-address rule."""
    min_language_score: float = 0.5
    languages: list[str] = []
    """ISO 639-1 codes the detector may answer; empty: every language lingua knows."""
    low_accuracy_language_mode: bool = False
    max_row_change: float = 0.5
    """Warn when a slice's kept pairs move more than this fraction between runs."""

    def rules(self) -> AltTextRules:
        return AltTextRules(
            min_chars=self.min_chars,
            private_host_allowlist=tuple(self.private_host_allowlist),
            min_language_score=self.min_language_score,
            languages=tuple(self.languages),
            low_accuracy_language_mode=self.low_accuracy_language_mode,
        )


@asset(
    code_version=code_version(__name__),
    partitions_def=wat_slices,
    deps=[wat_image_links],
    group_name="crawl",
    kinds={"parquet"},
    check_specs=[
        suite_check_spec(TableName.ALT_TEXT_PAIRS),
        conservation_check_spec(TableName.ALT_TEXT_PAIRS),
        row_count_check_spec(TableName.ALT_TEXT_PAIRS),
    ],
    automation_condition=AutomationCondition.eager(),
)
def alt_text_pairs(
    context: AssetExecutionContext, config: AltTextConfig, lake: LakeResource
) -> MaterializeResult:
    """Apply the hop-2 rules to the partition's links, deduplicating against earlier slices."""
    started = time.perf_counter()
    key = context.partition_key
    crawl = crawl_of_partition(key)
    lake_ = lake.lake()
    links = lake_.read(TableName.WAT_IMAGE_LINKS, [key])
    if links is None:
        raise Failure(f"wat_image_links has no published partition {key!r}")
    earlier = [
        k
        for k in lake_.partitions(TableName.ALT_TEXT_PAIRS)
        if crawl_of_partition(k) == crawl and k < key
    ]
    previous = lake_.read(TableName.ALT_TEXT_PAIRS, earlier, columns=["dedup_key", "kept"])
    already_kept = (
        previous.filter(previous.column("kept")).column("dedup_key").to_pylist()
        if previous is not None
        else []
    )
    result = parse_alt_texts(links, config.rules(), already_kept)
    previous_kept = previous_row_count(context.instance, TableName.ALT_TEXT_PAIRS, key, "rows_kept")
    uri = lake_.write_partition(TableName.ALT_TEXT_PAIRS, result.table, key)
    kept = result.table.filter(result.table.column("kept"))
    languages = Counter(
        code or "nolang" for code in kept.column("language").to_pylist()
    ).most_common(20)
    return MaterializeResult(
        check_results=[
            suite_check_result(TableName.ALT_TEXT_PAIRS, result.table),
            conservation_check_result(
                TableName.ALT_TEXT_PAIRS, links.num_rows, result.rows_kept, result.dropped
            ),
            row_count_check_result(
                TableName.ALT_TEXT_PAIRS, previous_kept, result.rows_kept, config.max_row_change
            ),
        ],
        metadata={
            **column_lineage(TableName.ALT_TEXT_PAIRS),
            **table_metadata(result.table.schema, result.rows_in, uri),
            "rows_in": MetadataValue.int(links.num_rows),
            "rows_kept": MetadataValue.int(result.rows_kept),
            "rows_dropped": MetadataValue.int(sum(result.dropped.values())),
            **counts_metadata("dropped", result.dropped, DROP_REASONS),
            "languages": MetadataValue.json(dict(languages)),
            "mean_language_score": MetadataValue.float(
                float(pc.mean(kept.column("language_score")).as_py() or 0.0)
            ),
            "dedup_against_partitions": MetadataValue.json(earlier),
            "upstream_partition": MetadataValue.text(key),
            "duration_s": MetadataValue.float(round(time.perf_counter() - started, 3)),
        },
    )
