"""Training through Dagster Pipes (issue 17.4): ``diffusion_model`` trains in a child process.

A lake holding a few real downloads of the tiny synthetic web (img2dataset shards and their
``download_results``) is trained three times with a tiny config: straight through; killed by
the fault injection at step 3, which fails the step with the child's log; and re-run, which
resumes from the step-2 checkpoint and ends on the uninterrupted run's checkpoint.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from dagster import DagsterInstance, PipesSubprocessClient, materialize

from assets_defs.assets.diffusion_model import diffusion_model
from assets_defs.resources import ClipModelResource, LakeResource
from pipeline import faults
from pipeline.lake.store import Lake
from pipeline.lake.tables import TableName
from tests.test_kill_rerun import TINY_TRAIN, TINY_WEB, TRAIN_KILL_AFTER, download_some

TRAIN = {
    "resolution": TINY_TRAIN.resolution,
    "block_out_channels": list(TINY_TRAIN.block_out_channels),
    "attention_head_dim": TINY_TRAIN.attention_head_dim,
    "train_steps": TINY_TRAIN.train_steps,
    "batch_size": TINY_TRAIN.batch_size,
    "warmup_steps": TINY_TRAIN.warmup_steps,
    "checkpoint_every": TINY_TRAIN.checkpoint_every,
}
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
"""Tiny models train fastest on one thread when the 2 cores are shared (every run uses it)."""


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake with one crawl's downloads: shards under image_shards and download_results."""
    from pipeline.synthetic.config import SyntheticWebConfig
    from pipeline.synthetic.generate import generate_web

    root = tmp_path_factory.mktemp("pipes")
    web = root / "web"
    config = SyntheticWebConfig(**TINY_WEB)
    generate_web(web, config)
    lake = Lake(str(root / "lake"))
    crawl = config.crawl_ids[0]
    results = download_some(str(web), lake.partition_uri(TableName.IMAGE_SHARDS, crawl))
    lake.write_partition(TableName.DOWNLOAD_RESULTS, results, crawl)
    return root / "lake"


def train(lake: Path, env: dict[str, str]):
    """Materialize diffusion_model on ``lake`` with the tiny config; the child gets ``env``."""
    return materialize(
        [diffusion_model],
        instance=DagsterInstance.ephemeral(),
        resources={
            "lake": LakeResource(root=str(lake)),
            "clip_model": ClipModelResource(device="cpu"),
            "pipes_subprocess_client": PipesSubprocessClient(env={**ONE_THREAD, **env}),
        },
        run_config={"ops": {TableName.DIFFUSION_MODEL: {"config": TRAIN}}},
        raise_on_error=False,
    )


def metadata(result) -> dict:
    [event] = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_training_runs_in_a_child_that_is_killed_then_resumed(
    downloads: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(faults.ENV, raising=False)
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    shutil.copytree(downloads, killed)
    shutil.copytree(downloads, straight)

    uninterrupted = train(straight, {})
    assert uninterrupted.success
    model = metadata(uninterrupted)
    assert model["child_pid"] != os.getpid()  # trained in another process
    assert model["steps_this_run"] == TINY_TRAIN.train_steps and model["resumed_from_step"] == 0
    assert [c["step"] for c in model["checkpoints"]] == [2, 4, 5]
    assert "lake/accesses" not in model
    # the child's table versions are the step's: read download_results, wrote the manifest
    pinned = Lake(str(straight)).version(TableName.DOWNLOAD_RESULTS)
    assert model["trained_from"] == {TableName.DOWNLOAD_RESULTS: [pinned]}
    assert model["lake/versions_read"][TableName.DOWNLOAD_RESULTS] == [pinned]
    assert TableName.TRAINING_MANIFEST in model["lake/versions_written"]
    assert all(c.passed for c in uninterrupted.get_asset_check_evaluations())
    assert "loss_curve" in model and model["dagster/row_count"] > 0

    fault = {faults.ENV: f"kill:train.step:{TRAIN_KILL_AFTER}"}  # the child's env only
    failed = train(killed, fault)
    assert not failed.success
    [failure] = [e for e in failed.all_events if e.is_step_failure]
    description = failure.step_failure_data.user_failure_data.description
    assert "failed with code -9" in description  # SIGKILL
    assert "training child pid" in description  # the child's own log, up to its death
    steps = sorted(p.name for p in killed.glob(f"{TableName.DIFFUSION_MODEL}/run=*/checkpoints/*"))
    assert steps == ["step-000002"]

    resumed = train(killed, {})
    assert resumed.success
    again = metadata(resumed)
    assert again["resumed_from_step"] == 2 and again["steps_this_run"] == 3
    assert again["checkpoint_sha256"] == model["checkpoint_sha256"]
    assert again["final_loss"] == model["final_loss"]
