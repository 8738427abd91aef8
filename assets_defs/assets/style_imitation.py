"""``style_imitation``: does typing an artist's name make the trained model draw like them?"""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
)

from assets_defs.assets.samples import SamplerConfig
from assets_defs.checkpoint import current_generator, trained_examples
from assets_defs.factory import table_asset, table_result
from assets_defs.metadata import report_metadata, stopwatch
from assets_defs.resources import ClipModelResource, LakeResource
from pipeline.datasheet.terms import synthetic_artist_names
from pipeline.hops.audit.style import StyleDescriptor
from pipeline.hops.audit.style_imitation import (
    DEFAULT_SUBJECTS,
    StyleRules,
    audit_style,
    style_grid,
)
from pipeline.hops.audit.style_references import PORTFOLIO_SIZE, artist_references
from pipeline.hops.training.model_card import write_model_cards
from pipeline.lake.tables import TableName


class StyleImitationConfig(SamplerConfig):
    artists: list[str] | None = None
    """Artists to audit; None: the synthetic web's roster (``vocab.ARTISTS``)."""
    subjects: list[str] = list(DEFAULT_SUBJECTS)
    """Each artist is prompted with ``"<subject> by <artist>"``, the same subjects for all."""
    seeds: list[int] = list(StyleRules().seeds)
    threshold: float = StyleRules().threshold
    """Imitation (margin over the shuffled-name baseline) that counts as imitating."""
    min_references: int = StyleRules().min_references
    portfolio_size: int = PORTFOLIO_SIZE
    """Drawings of a roster artist's style used as references when the checkpoint trained on
    fewer than ``min_references`` captions naming them."""
    side: int = 0
    """Resolution the style descriptor compares at; 0: the model's."""

    def rules(self) -> StyleRules:
        return StyleRules(
            tuple(self.subjects), tuple(self.seeds), self.threshold, self.min_references
        )


@table_asset(
    TableName.STYLE_IMITATION,
    __name__,
    deps=[TableName.DIFFUSION_MODEL, TableName.IMAGE_SHARDS],
    group_name="training",
    kinds={"diffusers", "parquet"},
    checks=(
        AssetCheckSpec(
            "no_style_imitation",
            asset=TableName.STYLE_IMITATION,
            description="no artist's name makes the model draw in their style",
        ),
    ),
)
def style_imitation(
    context: AssetExecutionContext,
    config: StyleImitationConfig,
    lake: LakeResource,
    clip_model: ClipModelResource,
) -> MaterializeResult:
    """Prompt "<subject> by <artist>" per artist; score the samples' style against each
    artist's references (margin over the nearest other artist, against a shuffled name)."""
    started = stopwatch()
    lake_ = lake.lake()
    generator, pointer = current_generator(lake_, clip_model, config.work_dir)
    examples = trained_examples(lake_, pointer, generator.sha256)
    artists = list(config.artists) if config.artists is not None else synthetic_artist_names()
    references = artist_references(examples, artists, config.min_references, config.portfolio_size)
    descriptor = StyleDescriptor(side=config.side or generator.config.resolution)
    rules = config.rules()
    result = audit_style(generator, references, rules, config.spec(), descriptor)
    key = generator.sha256[:16]
    uri = lake_.write_partition(TableName.STYLE_IMITATION, result.table, key)
    cards = write_model_cards(lake_, pointer["fingerprint"])  # the cards now name this audit
    rows = result.table.to_pylist()
    imitated = [r["artist"] for r in rows if r["imitated"]]
    scored = [r for r in rows if r["imitation"] is not None]
    extra = {}
    if result.samples:
        from pipeline.hops.samples.safety import shown_images

        # the audit judged the unblurred samples; the grid shows unsafe ones blurred
        safety = clip_model.safety_filter()
        blurred = {a: shown_images(ims, safety.screen(ims)) for a, ims in result.samples.items()}
        grid, shown = style_grid(result, references, blurred)
        extra = report_metadata(
            lake_,
            "grid",
            f"{TableName.STYLE_IMITATION}-{key}.png",
            grid,
            "per artist: references | samples prompted with their name",
            {"pair_id": shown},
        )
    per_artist = {
        r["artist"]: {
            k: (round(v, 4) if isinstance(v, float) else v)
            for k, v in r.items()
            if k not in ("checkpoint_sha256", "descriptor", "artist")
        }
        for r in rows
    }
    return table_result(
        context,
        TableName.STYLE_IMITATION,
        result.table,
        uri,
        started=started,
        checks=[
            AssetCheckResult(
                check_name="no_style_imitation",
                passed=not imitated,
                severity=AssetCheckSeverity.WARN,
                metadata={"imitated": MetadataValue.json(imitated), "scored": len(scored)},
            )
        ],
        metadata={
            "checkpoint_sha256": MetadataValue.text(generator.sha256),
            "descriptor": MetadataValue.text(descriptor.name),
            "descriptor_side": MetadataValue.int(descriptor.side),
            "subjects": MetadataValue.json(list(rules.subjects)),
            "seeds": MetadataValue.json(list(rules.seeds)),
            "threshold": MetadataValue.float(rules.threshold),
            "artists_scored": MetadataValue.int(len(scored)),
            "imitated": MetadataValue.json(imitated),
            "per_artist": MetadataValue.json(per_artist),
            "model_cards": MetadataValue.json(cards),
            **extra,
        },
    )
