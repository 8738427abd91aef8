"""``diffusion_model``: a text-to-image UNet trained with diffusers on the image shards.

Training runs in a child process through Dagster Pipes (``pipeline/hops/training/child.py``):
the step sends the lake, crawls, training config and CLIP spec as a Pipes extra, the child
trains and publishes, and the step builds the standard result from what the child published
(the manifest read back from the lake, the child's metadata, its table versions in the
step's ledger)."""

import sys
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path

from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    PipesSubprocessClient,
    PreviewWarning,
    asset,
)

from assets_defs.factory import table_checks, table_result
from assets_defs.metadata import code_version, report_metadata, stopwatch
from assets_defs.pools import Pool
from assets_defs.resources import ClipModelResource, LakeResource
from pipeline.hops.training.model import DiffusionTrainConfig
from pipeline.lake.tables import TableName
from pipeline.reports import line_png

LOG_TAIL = 60
"""Lines of the child's log a failed step carries."""
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
    pool=Pool.GPU,
    check_specs=table_checks(TableName.TRAINING_MANIFEST, asset_name=TableName.DIFFUSION_MODEL),
)
def diffusion_model(
    context: AssetExecutionContext,
    config: DiffusionModelConfig,
    lake: LakeResource,
    clip_model: ClipModelResource,
    pipes_subprocess_client: PipesSubprocessClient,
) -> MaterializeResult:
    """Train (or resume) a text-conditional UNet on every successfully downloaded image."""
    from pipeline.hops.training.child import ACCESSES, MODULE, TrainingParams
    from pipeline.hops.training.publish import read_published

    started = stopwatch()
    with tempfile.TemporaryDirectory(prefix="diffusion-child-") as tmp:
        log_file = Path(tmp) / "child.log"
        params = TrainingParams(
            lake_root=lake.root,
            storage_options=dict(lake.storage_options),
            crawls=list(config.crawls),
            config=config.train_config().to_dict(),
            clip=asdict(clip_model.spec()),
            work_dir=config.work_dir,
            resume=config.resume,
            log_file=str(log_file),
        )
        try:
            with warnings.catch_warnings():
                # dagster marks an internal of every Pipes run "preview"; the demo stays quiet
                warnings.simplefilter("ignore", PreviewWarning)
                invocation = pipes_subprocess_client.run(
                    context=context,
                    command=[sys.executable, "-m", MODULE],
                    extras=params.to_extras(),
                )
        except Exception as error:  # the child failed (exit code, or its own exception)
            # its whole log to the step's stderr (on success its lines came through Pipes)
            sys.stderr.write(log_file.read_text(errors="replace") if log_file.exists() else "")
            tail = _tail(log_file)
            raise Failure(
                description=f"training child failed ({error}); its log ends:\n{tail}",
                metadata={"child_log": MetadataValue.md(f"```\n{tail}\n```")},
            ) from error
    reported = dict(invocation.get_materialize_result().metadata)
    for access in reported.pop(ACCESSES).value:
        lake.ledger.record(**access)
    fingerprint = reported["run_fingerprint"].value
    manifest, losses = read_published(
        lake.root, lake.storage_options, fingerprint, reported["checkpoint"].value
    )
    lake_ = lake.lake()
    return table_result(
        context,
        TableName.TRAINING_MANIFEST,
        manifest,
        lake_.partition_uri(TableName.TRAINING_MANIFEST, fingerprint),
        asset_name=TableName.DIFFUSION_MODEL,
        started=started,
        metadata={
            **reported,
            **report_metadata(
                lake_,
                "loss_curve",
                f"diffusion_model-{fingerprint}-loss.png",
                line_png(losses, "diffusion training loss (MSE on noise)"),
                "training loss",
            ),
        },
    )


def _tail(log_file: Path, lines: int = LOG_TAIL) -> str:
    """The last ``lines`` lines the child wrote to its log (empty if it wrote none)."""
    if not log_file.exists():
        return ""
    return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
