"""``diffusion_model``: a text-to-image UNet trained with diffusers on the image shards."""

import json
import time
from pathlib import Path

from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets_defs.factory import table_checks, table_result
from assets_defs.metadata import code_version, report_metadata
from assets_defs.resources import ClipModelResource, LakeResource
from pipeline.hops.training.model import DiffusionTrainConfig, text_encoder_for
from pipeline.lake.tables import TableName
from pipeline.reports import line_png

TRAIN_DEFAULTS = DiffusionTrainConfig()
"""The one place the training defaults live (pipeline/hops/training/model.py)."""


class DiffusionModelConfig(Config):
    crawls: list[str] = []
    """Crawls whose shards to train on; empty: every crawl with shards."""
    resolution: int = TRAIN_DEFAULTS.resolution
    vae: str | None = TRAIN_DEFAULTS.vae
    """An AutoencoderKL directory: latent mode (Stable Diffusion style)."""
    sd_checkpoint: str | None = TRAIN_DEFAULTS.sd_checkpoint
    """A local Stable Diffusion directory to fine-tune (unet/, vae/, text_encoder/, tokenizer/)."""
    block_out_channels: list[int] = list(TRAIN_DEFAULTS.block_out_channels)
    layers_per_block: int = TRAIN_DEFAULTS.layers_per_block
    attention_head_dim: int = TRAIN_DEFAULTS.attention_head_dim
    train_steps: int = TRAIN_DEFAULTS.train_steps
    batch_size: int = TRAIN_DEFAULTS.batch_size
    learning_rate: float = TRAIN_DEFAULTS.learning_rate
    warmup_steps: int = TRAIN_DEFAULTS.warmup_steps
    prediction_type: str = TRAIN_DEFAULTS.prediction_type
    """``sample`` (x0; learns fastest, the CPU default), ``v_prediction`` or ``epsilon``."""
    caption_dropout: float = TRAIN_DEFAULTS.caption_dropout
    checkpoint_every: int = TRAIN_DEFAULTS.checkpoint_every
    mixed_precision: str = TRAIN_DEFAULTS.mixed_precision
    """accelerate's ``no``, ``fp16`` or ``bf16`` (fp16/bf16 on a GPU)."""
    seed: int = TRAIN_DEFAULTS.seed
    resume: bool = True
    """Continue from the last checkpoint of an identical run (same config and data)."""
    work_dir: str = "data/work/diffusion"
    """Local directory for training when the lake is remote (checkpoints are then uploaded)."""

    def train_config(self) -> DiffusionTrainConfig:
        return DiffusionTrainConfig(
            resolution=self.resolution,
            vae=self.vae,
            sd_checkpoint=self.sd_checkpoint,
            block_out_channels=tuple(self.block_out_channels),
            layers_per_block=self.layers_per_block,
            attention_head_dim=self.attention_head_dim,
            train_steps=self.train_steps,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            warmup_steps=self.warmup_steps,
            prediction_type=self.prediction_type,
            caption_dropout=self.caption_dropout,
            checkpoint_every=self.checkpoint_every,
            mixed_precision=self.mixed_precision,
            seed=self.seed,
        )


@asset(
    name=TableName.DIFFUSION_MODEL,
    code_version=code_version(__name__),
    deps=[
        AssetDep(TableName.IMAGE_SHARDS, partition_mapping=AllPartitionMapping()),
        AssetDep(TableName.DOWNLOAD_RESULTS, partition_mapping=AllPartitionMapping()),
    ],
    group_name="training",
    kinds={"pytorch", "diffusers", "safetensors"},
    check_specs=table_checks(TableName.TRAINING_MANIFEST, asset_name=TableName.DIFFUSION_MODEL),
)
def diffusion_model(
    context: AssetExecutionContext,
    config: DiffusionModelConfig,
    lake: LakeResource,
    clip_model: ClipModelResource,
) -> MaterializeResult:
    """Train (or resume) a text-conditional UNet on every successfully downloaded image."""
    # torch and diffusers load when the step runs, not when the code location loads
    from pipeline.hops.training.data import load_examples
    from pipeline.hops.training.publish import publish_run, run_dir
    from pipeline.hops.training.train import run_fingerprint, train_diffusion

    started = time.perf_counter()
    lake_ = lake.lake()
    crawls = config.crawls or lake_.partitions(TableName.DOWNLOAD_RESULTS)
    examples = load_examples(lake_, crawls)
    if not examples:
        raise Failure(f"no downloaded images in crawls {crawls}: materialize image_shards first")
    cfg = config.train_config()
    text_encoder = text_encoder_for(cfg, clip_model.clip())
    fingerprint = run_fingerprint(cfg, examples, text_encoder.source)
    out = run_dir(lake_, fingerprint, Path(config.work_dir))
    run = train_diffusion(
        examples, text_encoder, cfg, out, log=context.log.info, resume=config.resume
    )
    published = publish_run(lake_, run)
    loss_png = line_png(run.losses, "diffusion training loss (MSE on noise)")
    return table_result(
        context,
        TableName.TRAINING_MANIFEST,
        run.manifest,
        published.manifest_uri,
        asset_name=TableName.DIFFUSION_MODEL,
        started=started,
        metadata={
            "dagster/uri": MetadataValue.path(published.run_uri),
            "checkpoint": MetadataValue.path(published.checkpoint_uri),
            "checkpoint_sha256": MetadataValue.text(run.final.sha256),
            "checkpoints": MetadataValue.json(
                [{"step": c.step, "sha256": c.sha256} for c in run.checkpoints]
            ),
            "run_fingerprint": MetadataValue.text(fingerprint),
            "mode": MetadataValue.text("latent" if cfg.latent else "pixel"),
            "text_encoder": MetadataValue.text(text_encoder.source),
            "crawls": MetadataValue.json(list(crawls)),
            "trained_from": MetadataValue.json(
                {
                    TableName.DOWNLOAD_RESULTS: sorted(
                        {e.source["download_results_version"] for e in examples if e.source}
                    )
                }
            ),
            "training_pairs": MetadataValue.int(run.examples),
            "steps": MetadataValue.int(cfg.train_steps),
            "steps_this_run": MetadataValue.int(run.steps_this_call),
            "resumed_from_step": MetadataValue.int(run.resumed_from or 0),
            "final_loss": MetadataValue.float(
                round(sum(run.losses[-50:]) / max(1, len(run.losses[-50:])), 4)
            ),
            "samples_per_second": MetadataValue.float(round(run.samples_per_second, 1)),
            "config": MetadataValue.json(json.loads(json.dumps(cfg.to_dict()))),
            **report_metadata(
                lake_,
                "loss_curve",
                f"diffusion_model-{fingerprint}-loss.png",
                loss_png,
                "training loss",
            ),
        },
    )
