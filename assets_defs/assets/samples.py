"""``samples`` and ``replication_audit``: what the trained model draws, and whether it copies."""

import io
import random
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
)

from assets_defs.checkpoint import current_generator, trained_examples
from assets_defs.factory import table_asset, table_result
from assets_defs.metadata import report_metadata, stopwatch
from assets_defs.resources import ClipModelResource, LakeResource
from assets_defs.safety import safety_metadata
from pipeline.hops.audit.replication import AuditRules, audit_generator, descriptor_for
from pipeline.hops.samples.label import Signing, label_png
from pipeline.hops.training.model_card import write_model_cards
from pipeline.lake.tables import SAMPLES_SCHEMA, TableName
from pipeline.reports import grid_png

if TYPE_CHECKING:
    from pipeline.hops.samples.sample import SampleSpec

DEFAULT_PROMPTS = [
    "a red circle on a white background",
    "a blue square on a yellow background",
    "a green triangle on a black background",
    "a yellow star on a blue background",
    "a white heart on a purple background",
    "an orange circle on a turquoise background",
]


class SamplerConfig(Config):
    steps: int = 40
    guidance_scale: float = 3.0
    scheduler: str = "ddim"
    """``ddim``, ``ddpm`` or ``dpm``."""
    work_dir: str = "data/work/diffusion"
    """Where a remote lake's checkpoint is downloaded to."""

    def spec(self) -> "SampleSpec":
        from pipeline.hops.samples.sample import SampleSpec

        return SampleSpec(self.steps, self.guidance_scale, self.scheduler)


class SamplesConfig(SamplerConfig):
    prompts: list[str] = DEFAULT_PROMPTS
    seeds: list[int] = [0, 1, 2, 3]


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@table_asset(
    TableName.SAMPLES,
    __name__,
    deps=[TableName.DIFFUSION_MODEL],
    group_name="training",
    kinds={"diffusers", "parquet"},
    checks=(
        AssetCheckSpec(
            "follows_prompts",
            asset=TableName.SAMPLES,
            description=(
                "samples are more CLIP-similar to their own prompt than to the other prompts"
            ),
        ),
    ),
)
def samples(
    context: AssetExecutionContext,
    config: SamplesConfig,
    lake: LakeResource,
    clip_model: ClipModelResource,
) -> MaterializeResult:
    """Seeded sample grids for the configured prompts, with everything needed to redo them."""
    started = stopwatch()
    lake_ = lake.lake()
    generator, pointer = current_generator(lake_, clip_model, config.work_dir)
    prompts = [p for p in config.prompts for _ in config.seeds]
    seeds = [s for _ in config.prompts for s in config.seeds]
    images = generator.generate(prompts, seeds, config.spec())
    from pipeline.hops.samples.safety import shown_images
    from pipeline.hops.samples.sample import prompt_alignment

    # checks judge the unblurred pixels; only ``stored`` (flagged ones blurred) leaves memory
    alignment = prompt_alignment(clip_model.clip(), images, config.prompts, len(config.seeds))
    own, others = alignment.own, alignment.others
    safety = clip_model.safety_filter()
    screening = safety.screen(images)
    stored = shown_images(images, screening)
    table = pa.table(
        {
            "prompt": prompts,
            "seed": seeds,
            "steps": pa.array([config.steps] * len(images), pa.int32()),
            "scheduler": [config.scheduler] * len(images),
            "guidance_scale": pa.array([config.guidance_scale] * len(images), pa.float32()),
            "checkpoint_sha256": [generator.sha256] * len(images),
            "prompt_similarity": pa.array(own, pa.float32()),
            "punsafe": pa.array(screening.scores, pa.float32()),
            "safety_flagged": pa.array(screening.flagged, pa.bool_()),
            "png": [  # blurred where flagged, then labelled (and signed when a key is set)
                label_png(_png(im), p, s, generator.sha256, Signing.from_env())
                for im, p, s in zip(stored, prompts, seeds, strict=True)
            ],
        },
        schema=SAMPLES_SCHEMA,
    )
    uri = lake_.write_partition(TableName.SAMPLES, table, generator.sha256[:16])
    n = len(config.seeds)
    grid = grid_png([(p[:16], stored[i * n : (i + 1) * n]) for i, p in enumerate(config.prompts)])
    top1 = alignment.top1
    return table_result(
        context,
        TableName.SAMPLES,
        table,
        uri,
        started=started,
        checks=[
            AssetCheckResult(
                check_name="follows_prompts",
                passed=bool(own.mean() > others.mean()),
                severity=AssetCheckSeverity.WARN,
                metadata={
                    "own_prompt_similarity": float(own.mean()),
                    "other_prompt_similarity": float(others.mean()),
                    "top1_prompt_accuracy": top1,
                },
            )
        ],
        metadata={
            "checkpoint_sha256": MetadataValue.text(generator.sha256),
            "checkpoint": MetadataValue.path(pointer["checkpoint"]),
            "prompts": MetadataValue.json(list(config.prompts)),
            "seeds": MetadataValue.json(list(config.seeds)),
            "steps": MetadataValue.int(config.steps),
            "scheduler": MetadataValue.text(config.scheduler),
            "guidance_scale": MetadataValue.float(config.guidance_scale),
            **report_metadata(
                lake_,
                "grid",
                f"samples-{generator.sha256[:16]}.png",
                grid,
                "samples, one row per prompt",
            ),
            **safety_metadata(lake_, screening, prompts, seeds, safety.head.sha256),
        },
    )


class ReplicationAuditConfig(SamplerConfig):
    captions: int = 32
    """Training captions to prompt with (chosen with ``seed``)."""
    seed: int = 0
    descriptor: str = "pixels"
    """``pixels`` (tiny-image copy descriptor), ``clip`` or ``sscd`` (with ``sscd_weights``)."""
    threshold: float = 0.5
    """Nearest-neighbour similarity that may be a copy (calibration: pipeline/hops/audit/
replication.py)."""
    min_margin: float = 0.25
    k: int = 5
    sscd_weights: str | None = None

    def rules(self) -> AuditRules:
        return AuditRules(
            self.descriptor, self.threshold, self.min_margin, self.k, self.sscd_weights
        )


@table_asset(
    TableName.REPLICATION_AUDIT,
    __name__,
    deps=[TableName.DIFFUSION_MODEL, TableName.IMAGE_SHARDS],
    group_name="training",
    kinds={"diffusers", "parquet"},
    checks=(
        AssetCheckSpec(
            "no_replication",
            asset=TableName.REPLICATION_AUDIT,
            description="no sample is flagged as a copy of a training image",
        ),
    ),
)
def replication_audit(
    context: AssetExecutionContext,
    config: ReplicationAuditConfig,
    lake: LakeResource,
    clip_model: ClipModelResource,
) -> MaterializeResult:
    """Prompt with training captions; flag samples that copy their nearest training image."""
    started = stopwatch()
    lake_ = lake.lake()
    generator, pointer = current_generator(lake_, clip_model, config.work_dir)
    examples = trained_examples(lake_, pointer, generator.sha256)
    chosen = random.Random(config.seed).sample(examples, min(config.captions, len(examples)))
    rules = config.rules()
    describe = descriptor_for(rules, clip_model.clip())
    result = audit_generator(generator, examples, chosen, rules, config.spec(), describe)
    images = result.samples
    uri = lake_.write_partition(TableName.REPLICATION_AUDIT, result.table, generator.sha256[:16])
    cards = write_model_cards(lake_, pointer["fingerprint"])  # the cards now name this audit
    extra = {"model_cards": MetadataValue.json(cards)}
    if result.flagged:
        from pipeline.hops.samples.safety import shown_images

        # the audit judged the unblurred samples; the grid shows unsafe ones blurred
        picked = [images[i] for i, _ in result.flagged[:8]]
        picked = shown_images(picked, clip_model.safety_filter().screen(picked))
        rows = [
            (f"{result.table['similarity'][i].as_py():.3f}", [picked[n], examples[j].image])
            for n, (i, j) in enumerate(result.flagged[:8])
        ]
        shown = [examples[j] for _, j in result.flagged[:8]]
        extra |= report_metadata(
            lake_,
            "flagged_pairs",
            f"replication_audit-{generator.sha256[:16]}.png",
            grid_png(rows),
            "flagged: sample | nearest training image",
            {"pair_id": [e.pair_id for e in shown]},
        )
    sims = result.table.column("similarity").to_numpy()
    return table_result(
        context,
        TableName.REPLICATION_AUDIT,
        result.table,
        uri,
        started=started,
        checks=[
            AssetCheckResult(
                check_name="no_replication",
                passed=result.flagged_count == 0,
                severity=AssetCheckSeverity.WARN,
                metadata={"flagged": result.flagged_count, "audited": len(chosen)},
            ),
        ],
        metadata={
            "checkpoint_sha256": MetadataValue.text(generator.sha256),
            "descriptor": MetadataValue.text(rules.descriptor),
            "threshold": MetadataValue.float(rules.threshold),
            "min_margin": MetadataValue.float(rules.min_margin),
            "training_images": MetadataValue.int(len(examples)),
            "audited_samples": MetadataValue.int(len(chosen)),
            "flagged": MetadataValue.int(result.flagged_count),
            "max_similarity": MetadataValue.float(float(sims.max()) if len(sims) else 0.0),
            "median_similarity": MetadataValue.float(float(np.median(sims)) if len(sims) else 0.0),
            **extra,
        },
    )
