"""``alt_text_pairs`` (hop 2): cleaned, language-tagged pairs, each kept or dropped by reason."""

from collections import Counter

import pyarrow.compute as pc
from dagster import (
    AssetExecutionContext,
    AutomationCondition,
    Config,
    MaterializeResult,
    MetadataValue,
)

from assets_defs.assets.wat_image_links import wat_image_links
from assets_defs.factory import Decisions, read_input, table_asset, table_result
from assets_defs.metadata import stopwatch
from assets_defs.partitions import wat_slices
from assets_defs.resources import LakeResource, SyntheticWebResource
from pipeline.hops.alt_text.language import language_confusion
from pipeline.hops.alt_text.pairs import AltTextRules, parse_alt_texts
from pipeline.hops.dataset import opt_outs
from pipeline.lake.tables import TableName
from pipeline.synthetic.evaluate import caption_languages


class AltTextConfig(Config):
    min_chars: int = 5
    """LAION's minimum alt-text length."""
    private_host_allowlist: list[str] = []
    """Hosts, host:port or CIDRs admitted despite the private-address rule."""
    min_language_score: float = 0.05
    """Least margin of the top language's confidence over the runner-up's (lingua's minimum
    relative distance) for a language to be named; stored as ``language_score``."""
    min_language_words: int = 2
    """Alts with fewer words (or mostly non-words: file names, codes) get no language."""
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
            min_language_words=self.min_language_words,
            languages=tuple(self.languages),
            low_accuracy_language_mode=self.low_accuracy_language_mode,
        )


@table_asset(
    TableName.ALT_TEXT_PAIRS,
    __name__,
    conserves=True,
    row_count=True,
    partitions_def=wat_slices,
    deps=[wat_image_links],
    group_name="crawl",
    kinds={"parquet"},
    automation_condition=AutomationCondition.eager(),
)
def alt_text_pairs(
    context: AssetExecutionContext,
    config: AltTextConfig,
    lake: LakeResource,
    synthetic_web: SyntheticWebResource,
) -> MaterializeResult:
    """Apply the hop-2 rules to the partition's links (dedup within the slice only)."""
    started = stopwatch()
    key = context.partition_key
    lake_ = lake.lake()
    links = read_input(lake_, TableName.WAT_IMAGE_LINKS, [key])
    withdrawn = opt_outs.load(lake_)  # the version read is in lake/versions_read
    result = parse_alt_texts(links, config.rules(), withdrawn)
    uri = lake_.write_partition(TableName.ALT_TEXT_PAIRS, result.table, key)
    kept = result.table.filter(result.table.column("kept"))
    languages = Counter(
        code or "nolang" for code in kept.column("language").to_pylist()
    ).most_common(20)
    quality = {}
    if synthetic_web.enabled:  # the truth says which language each clean caption is in
        confusion = language_confusion(*caption_languages(result.table, synthetic_web.root))
        quality["language_confusion"] = MetadataValue.json(confusion)
        quality["language_recall"] = MetadataValue.json(
            {lang: round(s["recall"], 3) for lang, s in confusion["per_language"].items()}
        )
    return table_result(
        context,
        TableName.ALT_TEXT_PAIRS,
        result.table,
        uri,
        decisions=Decisions(links.num_rows, result.rows_kept, result.dropped),
        max_row_change=config.max_row_change,
        started=started,
        metadata={
            "languages": MetadataValue.json(dict(languages)),
            "mean_language_score": MetadataValue.float(
                float(pc.mean(kept.column("language_score")).as_py() or 0.0)
            ),
            "upstream_partition": MetadataValue.text(key),
            **quality,
        },
    )
