"""Training as its own process: ``python -m pipeline.hops.training.child``, started by the
``diffusion_model`` asset through Dagster Pipes (a subprocess here, a GPU pod with
``PipesK8sClient`` in a cluster; docs/deploy.md).

The step sends :class:`TrainingParams` as the Pipes extra ``training``. The child loads the
examples, trains (or resumes) with its progress lines in the Dagster log, publishes the run
(checkpoints, ``training_manifest``, the ``current`` pointer) exactly as in-process training
did, and reports what it did as the materialization's metadata: the run's facts, its own PID
and :data:`ACCESSES` (every table version its lake read and wrote, for the step's ledger).
The step then builds the asset's standard result from what the child published.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

EXTRA = "training"
"""The Pipes extra holding :class:`TrainingParams` (as a dict)."""
ACCESSES = "lake/accesses"
"""Metadata key of the child's table accesses (``AccessLedger`` entries as dicts)."""
MODULE = __name__


@dataclass(frozen=True)
class TrainingParams:
    """Everything the child needs, as JSON: where the lake is, what to train on and how."""

    lake_root: str
    storage_options: dict[str, Any]
    crawls: list[str]
    """Crawls to train on; empty: every crawl with downloads."""
    config: dict[str, Any]
    """:meth:`DiffusionTrainConfig.to_dict`."""
    clip: dict[str, Any]
    """:class:`~pipeline.hops.clip.embed.ClipSpec` fields (the text encoder's CLIP)."""
    work_dir: str
    resume: bool = True
    log_file: str | None = None
    """Where the child writes its stderr and progress lines (None: inherited stderr)."""

    def to_extras(self) -> dict[str, Any]:
        return {EXTRA: asdict(self)}


def train_and_publish(params: TrainingParams, log: Callable[[str], None]) -> dict[str, Any]:
    """Train (or resume) and publish the run; its facts as Pipes metadata (scalars inferred,
    paths and JSON typed)."""
    from pipeline.hops.clip.embed import ClipModel, ClipSpec
    from pipeline.hops.training.data import load_examples
    from pipeline.hops.training.energy import EnergyPolicy
    from pipeline.hops.training.model import DiffusionTrainConfig, text_encoder_for
    from pipeline.hops.training.publish import publish_run, run_dir
    from pipeline.hops.training.train import run_fingerprint, train_diffusion
    from pipeline.lake.store import Lake
    from pipeline.lake.tables import TableName
    from pipeline.settings import Settings

    lake = Lake(params.lake_root, params.storage_options)
    crawls = params.crawls or lake.partitions(TableName.DOWNLOAD_RESULTS)
    examples = load_examples(lake, crawls)
    if not examples:
        raise RuntimeError(
            f"no downloaded images in crawls {crawls}: materialize image_shards first"
        )
    cfg = DiffusionTrainConfig.from_dict(params.config)
    text_encoder = text_encoder_for(cfg, ClipModel(ClipSpec(**params.clip)))
    fingerprint = run_fingerprint(cfg, examples, text_encoder.source)
    out = run_dir(lake, fingerprint, Path(params.work_dir))
    energy = EnergyPolicy.from_settings(Settings.from_env())
    run = train_diffusion(
        examples, text_encoder, cfg, out, log=log, resume=params.resume, energy=energy
    )
    published = publish_run(lake, run)
    tail = run.losses[-50:]
    cost = run.energy_of(run.final)
    return {
        "dagster/uri": _path(published.run_uri),
        "checkpoint": _path(published.checkpoint_uri),
        "checkpoint_sha256": run.final.sha256,
        "checkpoints": _json([{"step": c.step, "sha256": c.sha256} for c in run.checkpoints]),
        "run_fingerprint": fingerprint,
        "mode": "latent" if cfg.latent else "pixel",
        "text_encoder": text_encoder.source,
        "crawls": _json(list(crawls)),
        "trained_from": _json(
            {
                TableName.DOWNLOAD_RESULTS: sorted(
                    {e.source["download_results_version"] for e in examples if e.source}
                )
            }
        ),
        "training_pairs": run.examples,
        "steps": cfg.train_steps,
        "steps_this_run": run.steps_this_call,
        "resumed_from_step": run.resumed_from or 0,
        "final_loss": round(sum(tail) / max(1, len(tail)), 4),
        "samples_per_second": round(run.samples_per_second, 1),
        "training_cpu_s": cost.cpu_seconds,
        "energy_kwh": cost.energy_kwh,
        "emissions_g_co2e": cost.emissions_g,
        "energy": _json(cost.to_dict()),
        "model_card": _path(published.model_card_uri),
        "config": _json(cfg.to_dict()),
        "child_pid": os.getpid(),
        ACCESSES: _json(
            [
                {**asdict(a), "partitions": None if a.partitions is None else list(a.partitions)}
                for a in lake.ledger.accesses()
            ]
        ),
    }


def _json(value: Any) -> dict[str, Any]:
    return {"raw_value": value, "type": "json"}


def _path(value: str) -> dict[str, Any]:
    return {"raw_value": value, "type": "path"}


def _log_to(path: str | None) -> None:
    """Send this process's stderr (fd 2: tracebacks, warnings, native crashes) to ``path``,
    unbuffered, so a killed child leaves everything it said."""
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def main() -> None:
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as pipes:
        params = TrainingParams(**pipes.get_extra(EXTRA))
        _log_to(params.log_file)

        def log(line: str) -> None:
            pipes.log.info(line)
            print(line, file=sys.stderr, flush=True)

        log(f"training child pid {os.getpid()}")
        pipes.report_asset_materialization(metadata=train_and_publish(params, log))


if __name__ == "__main__":
    main()
