"""The current checkpoint for the steps that sample it, and the examples it trained on."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from assets_defs.resources import ClipModelResource
from pipeline.hops.training.model import DiffusionTrainConfig, text_encoder_for
from pipeline.lake.store import Lake
from pipeline.lake.tables import TableName

if TYPE_CHECKING:
    from pipeline.hops.samples.sample import Generator
    from pipeline.hops.training.train import TrainingExample


def current_generator(
    lake: Lake, clip_model: ClipModelResource, work_dir: str
) -> tuple[Generator, dict]:
    """The lake's current checkpoint as a generator, and its pointer (``current.json``)."""
    # torch and diffusers load when the step runs, not when the code location loads
    from pipeline.hops.samples.sample import Generator
    from pipeline.hops.training.publish import current_checkpoint

    pointer, checkpoint = current_checkpoint(lake, Path(work_dir))
    info = Generator.training_info(checkpoint)
    cfg = DiffusionTrainConfig.from_dict(info["config"])
    return Generator(checkpoint, text_encoder_for(cfg, clip_model.clip())), pointer


def trained_examples(lake: Lake, pointer: dict, sha256: str) -> list[TrainingExample]:
    """The examples checkpoint ``sha256`` of run ``pointer`` trained on, read back from the
    image shards (pinned by the training manifest)."""
    from pipeline.hops.training.data import load_examples

    manifest = lake.read(TableName.TRAINING_MANIFEST, [pointer["fingerprint"]])
    trained = manifest.filter(pc.equal(manifest.column("checkpoint_sha256"), pa.scalar(sha256)))
    pair_ids = set(trained.column("pair_id").to_pylist())
    return load_examples(lake, lake.partitions(TableName.DOWNLOAD_RESULTS), pair_ids)
