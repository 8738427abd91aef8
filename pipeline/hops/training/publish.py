"""Where a training run lives in the lake, and the pointer to the current checkpoint.

Runs train in ``<lake>/diffusion_model/run=<fingerprint>`` when the lake is local; with a
remote lake (``s3://``) they train in a local work directory and are uploaded after training.
``<lake>/diffusion_model/current.json`` names the checkpoint that ``samples`` and
``replication_audit`` use; the training manifest is the lake table ``training_manifest``
(one partition per run); each checkpoint directory holds its model card (``README.md``,
model_card.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.hops.training.model_card import write_model_cards
from pipeline.hops.training.train import TrainingRun
from pipeline.lake.store import Lake
from pipeline.lake.tables import TableName

CURRENT = "diffusion_model/current.json"


@dataclass(frozen=True)
class PublishedRun:
    run_uri: str
    checkpoint_uri: str
    manifest_uri: str
    model_card_uri: str
    """The final checkpoint's ``README.md`` (every checkpoint of the run has one)."""


def run_dir(lake: Lake, fingerprint: str, work_dir: Path) -> Path:
    """Local directory to train in (inside the lake when the lake is local)."""
    if lake.is_local:
        return Path(lake.path(TableName.DIFFUSION_MODEL, f"run={fingerprint}"))
    return work_dir / f"run={fingerprint}"


def publish_run(lake: Lake, run: TrainingRun) -> PublishedRun:
    """Upload the run (remote lake), write its training manifest and a model card per
    checkpoint (``<checkpoint dir>/README.md``), point ``current`` at it."""
    remote = lake.path(TableName.DIFFUSION_MODEL, f"run={run.fingerprint}")
    if not lake.is_local:
        lake.fs.put(run.out_dir.rstrip("/") + "/", remote, recursive=True)
    final = Path(run.final.path).name
    checkpoint = f"{remote}/checkpoints/{final}"
    manifest_uri = lake.write_partition(
        TableName.TRAINING_MANIFEST,
        run.manifest,
        run.fingerprint,
        {"checkpoint_sha256": run.final.sha256},
    )
    pointer = {
        "fingerprint": run.fingerprint,
        "run": lake.uri(remote),
        "checkpoint": lake.uri(checkpoint),
        "step": run.final.step,
        "sha256": run.final.sha256,
        "text_encoder": run.text_encoder,
    }
    cards = write_model_cards(lake, run.fingerprint)
    with lake.fs.open(lake.path(CURRENT), "wb") as fh:
        fh.write(json.dumps(pointer, indent=2).encode())
    return PublishedRun(lake.uri(remote), lake.uri(checkpoint), manifest_uri, cards[-1])


def current_checkpoint(lake: Lake, work_dir: Path) -> tuple[dict, Path]:
    """The current checkpoint's pointer and a local directory holding it (downloaded from a
    remote lake into ``work_dir`` when needed)."""
    try:
        with lake.fs.open(lake.path(CURRENT), "rb") as fh:
            pointer = json.loads(fh.read())
    except FileNotFoundError:
        raise FileNotFoundError("no trained diffusion model: materialize diffusion_model") from None
    if lake.is_local:
        return pointer, Path(pointer["checkpoint"])
    run = work_dir / f"run={pointer['fingerprint']}"
    step_dir = run / "checkpoints" / Path(pointer["checkpoint"]).name
    if not (step_dir / "unet").is_dir():
        remote = pointer["run"].split("://", 1)[1]
        step_dir.parent.mkdir(parents=True, exist_ok=True)
        lake.fs.get(f"{remote}/training.json", str(run / "training.json"))
        lake.fs.get(
            f"{remote}/checkpoints/{step_dir.name}/unet/", str(step_dir / "unet"), recursive=True
        )
    return pointer, step_dir


def read_published(
    root: str, storage_options: dict[str, Any], fingerprint: str, checkpoint_uri: str
) -> tuple[pa.Table, list[float]]:
    """A published run as the process that trained it had it: its ``training_manifest``
    partition and the losses of every step up to the final checkpoint. Read through a lake of
    its own (``root``), so the caller's ledger records no read of what it only reports."""
    lake = Lake(root, storage_options)
    manifest = lake.read(TableName.TRAINING_MANIFEST, [fingerprint])
    if manifest is None:
        raise FileNotFoundError(f"run {fingerprint} has no training manifest")
    run = lake.path(TableName.DIFFUSION_MODEL, f"run={fingerprint}")
    step = Path(checkpoint_uri).name
    with lake.fs.open(f"{run}/checkpoints/{step}/checkpoint.json", "rb") as fh:
        losses = json.loads(fh.read())["losses"]
    return manifest, losses
