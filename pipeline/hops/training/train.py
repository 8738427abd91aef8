"""Train a text-conditional UNet with diffusers and accelerate, checkpointing as it goes.

A run lives in one directory::

    checkpoints/step-000400/unet/        diffusers ``save_pretrained`` (safetensors)
    checkpoints/step-000400/state/       accelerate state (optimizer, LR schedule) to resume
    checkpoints/step-000400/trained_pairs.parquet   pair_id -> times seen up to this step
    checkpoints/step-000400/checkpoint.json         step, sha256 of the UNet weights, losses,
                                                    CPU seconds since the run began
    training.json                        config, text encoder, data, checkpoints (each with
                                         its energy and emissions, energy.py)

Every step draws its batch, noise and timesteps from generators seeded by (seed, step), so a
run that resumes from a checkpoint continues exactly as an uninterrupted run would.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image

from pipeline.faults import maybe_kill
from pipeline.hops.clip.embed import file_sha256
from pipeline.hops.training.energy import Energy, EnergyPolicy, estimate
from pipeline.hops.training.model import (
    DiffusionTrainConfig,
    build_unet,
    load_vae,
    noise_scheduler,
)
from pipeline.lake.tables import TRAINING_MANIFEST_SCHEMA as MANIFEST_SCHEMA
from pipeline.lake.tables import TRAINING_SOURCE_COLUMNS as SOURCE_COLUMNS
from pipeline.models.training.samples import to_array


@dataclass(frozen=True)
class TrainingExample:
    pair_id: str
    caption: str
    image: Image.Image
    source: dict[str, Any] | None = None
    """:data:`SOURCE_COLUMNS` of the download the example was read from (None: not from the
    lake)."""


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: str
    """The checkpoint directory (its ``unet/`` loads with ``from_pretrained``)."""
    sha256: str
    """sha256 of ``unet/diffusion_pytorch_model.safetensors``."""
    cpu_seconds: float = 0.0
    """CPU seconds (all threads) the run spent training up to this checkpoint, resumes
    included."""


@dataclass
class TrainingRun:
    out_dir: str
    config: DiffusionTrainConfig
    fingerprint: str
    text_encoder: str
    examples: int
    checkpoints: list[Checkpoint]
    losses: list[float]
    manifest: pa.Table
    steps_this_call: int = 0
    resumed_from: int | None = None
    seconds: float = 0.0
    samples_per_second: float = 0.0
    meta: dict = field(default_factory=dict)
    energy: EnergyPolicy = field(default_factory=EnergyPolicy)
    """How the checkpoints' energy is estimated (:func:`energy_of`)."""

    @property
    def final(self) -> Checkpoint:
        return self.checkpoints[-1]

    def energy_of(self, checkpoint: Checkpoint) -> Energy:
        """The energy and emissions of training up to ``checkpoint``."""
        return estimate(checkpoint.cpu_seconds, self.energy)


def run_fingerprint(
    cfg: DiffusionTrainConfig, examples: Sequence[TrainingExample], text_encoder_source: str
) -> str:
    """Names a run by what decides its result: config, text encoder, and the training pairs."""
    digest = hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode())
    digest.update(text_encoder_source.encode())
    for pair_id, caption in sorted((e.pair_id, e.caption) for e in examples):
        digest.update(f"{pair_id}\t{caption}\n".encode())
    return digest.hexdigest()[:16]


def images_to_tensor(images: Sequence[Image.Image], resolution: int) -> torch.Tensor:
    """``[N, 3, R, R]`` in [-1, 1]: shortest side resized to R, centre-cropped."""
    arr = np.stack([to_array(im.convert("RGB"), resolution) for im in images])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


@torch.no_grad()
def _encode_latents(vae, pixels: torch.Tensor, seed: int, batch: int = 32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, len(pixels), batch):
        dist = vae.encode(pixels[start : start + batch]).latent_dist
        noise = torch.randn(dist.mean.shape, generator=gen)
        out.append((dist.mean + dist.std * noise) * vae.config.scaling_factor)
    return torch.cat(out)


def _step_generators(seed: int, step: int) -> tuple[np.random.Generator, torch.Generator]:
    return (
        np.random.default_rng([seed, step]),
        torch.Generator().manual_seed(seed * 1_000_003 + step),
    )


def _checkpoints(out_dir: Path) -> list[Checkpoint]:
    found = []
    for meta in sorted(out_dir.glob("checkpoints/step-*/checkpoint.json")):
        info = json.loads(meta.read_text())
        found.append(
            Checkpoint(info["step"], str(meta.parent), info["sha256"], info.get("cpu_seconds", 0.0))
        )
    return found


def _manifest(checkpoints: list[Checkpoint], examples: Sequence[TrainingExample] = ()) -> pa.Table:
    """Per checkpoint, every pair it trained on, how often, and where the pair came from."""
    sources = {e.pair_id: e.source or {} for e in examples}
    tables = []
    for ck in checkpoints:
        seen = pq.read_table(Path(ck.path) / "trained_pairs.parquet")
        n = seen.num_rows
        pair_ids = seen.column("pair_id").to_pylist()
        columns = {
            "pair_id": seen.column("pair_id"),
            "checkpoint_step": pa.array([ck.step] * n, pa.int32()),
            "checkpoint_sha256": pa.array([ck.sha256] * n, pa.string()),
            "times_seen": seen.column("times_seen").cast(pa.int32()),
        }
        for name in SOURCE_COLUMNS:
            values = [sources.get(p, {}).get(name) for p in pair_ids]
            columns[name] = pa.array(values, MANIFEST_SCHEMA.field(name).type)
        tables.append(pa.table(columns, schema=MANIFEST_SCHEMA))
    return pa.concat_tables(tables) if tables else MANIFEST_SCHEMA.empty_table()


def train_diffusion(
    examples: Sequence[TrainingExample],
    text_encoder,
    cfg: DiffusionTrainConfig,
    out_dir: str | Path,
    log: Callable[[str], None] = print,
    resume: bool = True,
    max_steps_this_call: int | None = None,
    energy: EnergyPolicy | None = None,
) -> TrainingRun:
    """Train (or resume) a run in ``out_dir`` and return its checkpoints and manifest.

    ``max_steps_this_call`` stops early after a checkpoint (for time-boxed or preemptible
    jobs); calling again with ``resume=True`` continues from the last checkpoint.
    ``energy``: how each checkpoint's energy and emissions are estimated (training.json).
    """
    from accelerate import Accelerator
    from diffusers.optimization import get_scheduler

    if not examples:
        raise ValueError("no training examples: the image shards hold no successful downloads")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = run_fingerprint(cfg, examples, text_encoder.source)
    existing = _checkpoints(out) if resume else []
    info_path = out / "training.json"
    if existing and json.loads(info_path.read_text()).get("fingerprint") != fingerprint:
        raise ValueError(f"{out} holds a different run; use a fresh directory or resume=False")

    policy = energy or EnergyPolicy()
    started = time.perf_counter()
    cpu_started = time.process_time()
    accelerator = Accelerator(
        mixed_precision=cfg.mixed_precision, cpu=not torch.cuda.is_available()
    )
    torch.manual_seed(cfg.seed)
    vae = load_vae(cfg)
    unet = build_unet(cfg, text_encoder.hidden_size, vae)
    scheduler = noise_scheduler(cfg)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=cfg.learning_rate, weight_decay=1e-2)
    lr_schedule = get_scheduler(
        "cosine", optimizer, num_warmup_steps=cfg.warmup_steps, num_training_steps=cfg.train_steps
    )
    unet, optimizer, lr_schedule = accelerator.prepare(unet, optimizer, lr_schedule)

    captions = sorted({e.caption for e in examples} | {""})
    encoded = text_encoder.encode(captions)
    caption_index = {c: i for i, c in enumerate(captions)}
    cond_ids = torch.tensor([caption_index[e.caption] for e in examples])
    empty_id = caption_index[""]
    data = images_to_tensor([e.image for e in examples], cfg.resolution)
    if vae is not None:
        data = _encode_latents(vae, data, cfg.seed)
    pair_ids = [e.pair_id for e in examples]
    seen = np.zeros(len(examples), dtype=np.int64)

    losses: list[float] = []
    start_step = 0
    cpu_before = 0.0
    if existing:
        last = existing[-1]
        accelerator.load_state(str(Path(last.path) / "state"))
        meta = json.loads((Path(last.path) / "checkpoint.json").read_text())
        losses = list(meta["losses"])
        seen = np.array(meta["seen"], dtype=np.int64)
        start_step = last.step
        cpu_before = last.cpu_seconds
        log(f"resuming {out} from step {start_step}")
    info = {
        "fingerprint": fingerprint,
        "config": cfg.to_dict(),
        "text_encoder": text_encoder.source,
        "examples": len(examples),
        "noise_scheduler": dict(scheduler.config),
    }
    info_path.write_text(json.dumps(info, indent=2, default=list))

    device = accelerator.device
    encoded = encoded.to(device)
    unet.train()
    steps_done = 0
    step = start_step
    while step < cfg.train_steps:
        rng, gen = _step_generators(cfg.seed, step)
        n = len(examples)
        idx = (
            rng.permutation(n)[: cfg.batch_size]
            if n >= cfg.batch_size
            else rng.integers(0, n, cfg.batch_size)
        )
        drop = rng.random(len(idx)) < cfg.caption_dropout
        np.add.at(seen, idx, 1)
        x0 = data[idx].to(device)
        ids = torch.where(torch.from_numpy(drop), empty_id, cond_ids[idx])
        cond = encoded[ids.to(device)]
        noise = torch.randn(x0.shape, generator=gen).to(device)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(idx),), generator=gen)
        noisy = scheduler.add_noise(x0, noise, t.to(device))
        with accelerator.autocast():
            pred = unet(noisy, t.to(device), encoder_hidden_states=cond).sample
        loss = torch.nn.functional.mse_loss(pred.float(), _target(scheduler, x0, noise, t))
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        lr_schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach().cpu()))
        step += 1
        steps_done += 1
        if step % 50 == 0:
            log(f"step {step}/{cfg.train_steps} loss {np.mean(losses[-50:]):.4f}")
        at_end = step == cfg.train_steps
        stopping = max_steps_this_call is not None and steps_done >= max_steps_this_call
        if at_end or step % cfg.checkpoint_every == 0 or stopping:
            cpu = cpu_before + time.process_time() - cpu_started
            _save_checkpoint(accelerator, unet, out, step, losses, seen, pair_ids, cpu)
        if stopping and not at_end:
            break
        maybe_kill("train.step")

    seconds = time.perf_counter() - started
    checkpoints = _checkpoints(out)
    run = TrainingRun(
        out_dir=str(out),
        config=cfg,
        fingerprint=fingerprint,
        text_encoder=text_encoder.source,
        examples=len(examples),
        checkpoints=checkpoints,
        losses=losses,
        manifest=_manifest(checkpoints, examples),
        steps_this_call=steps_done,
        resumed_from=start_step if existing else None,
        seconds=seconds,
        samples_per_second=steps_done * cfg.batch_size / seconds if steps_done else 0.0,
        energy=policy,
    )
    info["checkpoints"] = [
        {"step": c.step, "sha256": c.sha256, "energy": estimate(c.cpu_seconds, policy).to_dict()}
        for c in checkpoints
    ]
    info_path.write_text(json.dumps(info, indent=2, default=list))
    return run


def _target(scheduler, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """What the UNet should output, by the scheduler's ``prediction_type``."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise.float()
    if kind == "v_prediction":
        return scheduler.get_velocity(x0, noise, t.to(x0.device)).float()
    if kind == "sample":
        return x0.float()
    raise ValueError(f"unknown prediction_type {kind!r}")


def _save_checkpoint(
    accelerator,
    unet,
    out: Path,
    step: int,
    losses: list[float],
    seen: np.ndarray,
    pair_ids: list[str],
    cpu_seconds: float = 0.0,
) -> None:
    """Write a checkpoint to a temporary directory, then rename it into place."""
    import shutil

    final = out / "checkpoints" / f"step-{step:06d}"
    tmp = out / "checkpoints" / f".tmp-step-{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    accelerator.unwrap_model(unet).save_pretrained(tmp / "unet", safe_serialization=True)
    accelerator.save_state(str(tmp / "state"), safe_serialization=True)
    trained = seen > 0
    pq.write_table(
        pa.table(
            {
                "pair_id": [p for p, t in zip(pair_ids, trained, strict=True) if t],
                "times_seen": pa.array(seen[trained], pa.int32()),
            }
        ),
        tmp / "trained_pairs.parquet",
    )
    sha = file_sha256(tmp / "unet" / "diffusion_pytorch_model.safetensors")
    (tmp / "checkpoint.json").write_text(
        json.dumps(
            {
                "step": step,
                "sha256": sha,
                "losses": losses,
                "seen": seen.tolist(),
                "cpu_seconds": cpu_seconds,
            }
        )
    )
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
