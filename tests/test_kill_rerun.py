"""Kill and re-run (issue 13.8): a hop SIGKILLed mid-way (``pipeline/faults.py``) and run again
leaves the tables an uninterrupted run leaves. The killed run is a child process; the re-run
and the uninterrupted run happen here, each on its own copy of the same lake."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyarrow as pa
import pytest
from dagster import DagsterInstance, materialize

from pipeline import faults
from pipeline.hops.training.model import DiffusionTrainConfig
from pipeline.hops.training.publish import CURRENT
from pipeline.hops.training.train import TrainingExample, TrainingRun
from pipeline.lake.store import Lake
from pipeline.lake.tables import TableName

REPO = Path(__file__).resolve().parents[1]
TINY_WEB = {"pages_per_crawl": 12, "wat_files_per_crawl": 1, "sites": 4}
"""One WAT file per crawl: one slice of about 45 kept pairs, 8 of them embeddable images."""
LANGUAGES = ["en", "de", "fr", "es", "it", "nl"]
"""The synthetic web's languages (hop 2 loads only their lingua models)."""
CLIP_KILL_AFTER = 2
"""Images embedded before the hop-3 child is killed."""
TINY_TRAIN = DiffusionTrainConfig(
    resolution=16,
    block_out_channels=(8, 16),
    attention_head_dim=4,
    train_steps=5,
    batch_size=2,
    warmup_steps=1,
    checkpoint_every=2,
)
TRAIN_KILL_AFTER = 3
"""Steps done before the training child is killed: after checkpoint 2, before checkpoint 4."""


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Tiny models run many times faster on one thread when the 2 cores are shared; the killed,
    resumed and uninterrupted runs all use it, so their arithmetic is the same."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def clip_resources(lake: str, web: str) -> dict:
    """Resources for hops 1-3: the lake, and the tiny synthetic web generated in ``web``."""
    from assets_defs.resources import (
        ClipModelResource,
        CrawlSourceResource,
        EngineResource,
        LakeResource,
        SyntheticWebResource,
    )

    return {
        "lake": LakeResource(root=lake),
        "crawl_source": CrawlSourceResource(data_root=web, collinfo_uri=f"{web}/collinfo.json"),
        "synthetic_web": SyntheticWebResource(root=web, **TINY_WEB),
        "clip_model": ClipModelResource(),
        "engine": EngineResource(),
    }


def materialize_clip_scores(lake: str, web: str, key: str) -> None:
    """Hop 3 (clip_scores + image_embeddings) of slice ``key``."""
    from assets_defs.assets.clip_scores import clip_scores
    from assets_defs.partitions import wat_slices

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(wat_slices.name, [key])
    with one_torch_thread():
        result = materialize(
            [clip_scores],
            partition_key=key,
            instance=instance,
            resources=clip_resources(lake, web),
        )
    assert result.success


def tiny_examples() -> list[TrainingExample]:
    from pipeline.models.training.samples import make_sample

    samples = [make_sample("kill-rerun", i, 0.0, 0.0) for i in range(4)]
    return [TrainingExample(f"pair-{i}", s.captions["en"], s.image) for i, s in enumerate(samples)]


def train_and_publish(lake_root: str) -> TrainingRun:
    """Train (or resume) the tiny run in the lake's run directory and publish its manifest."""
    from pipeline.hops.clip.embed import ClipModel, ClipSpec
    from pipeline.hops.training.publish import publish_run, run_dir
    from pipeline.hops.training.text import OpenClipTextEncoder
    from pipeline.hops.training.train import run_fingerprint, train_diffusion

    lake = Lake(lake_root)
    encoder = OpenClipTextEncoder(ClipModel(ClipSpec(device="cpu")))
    examples = tiny_examples()
    fingerprint = run_fingerprint(TINY_TRAIN, examples, encoder.source)
    out = run_dir(lake, fingerprint, Path(lake_root) / "work")
    with one_torch_thread():
        run = train_diffusion(examples, encoder, TINY_TRAIN, out, log=lambda _: None)
    publish_run(lake, run)
    return run


def download_some(web: str, root: str) -> pa.Table:
    """Download a few healthy images of the tiny web (two per shard) with img2dataset; the
    results are written beside the shards, as the asset publishes them."""
    import pyarrow.parquet as pq

    from pipeline.hops.download.shards import ShardSpec, download_shards
    from pipeline.lake.keys import pair_id, url_id
    from pipeline.synthetic.server import SyntheticWebServer

    truth = pq.read_table(Path(web) / "truth.parquet").to_pylist()
    healthy = (
        r["url"]
        for r in truth
        if r["fault"] is None and not (r["x_robots_tag"] or r["header_noai"] or r["host_noai"])
    )
    urls = sorted(set(healthy))[:6]
    subset = pa.table(
        {
            "pair_id": [pair_id(u, "a drawing") for u in urls],
            "url_id": [url_id(u) for u in urls],
            "URL": urls,
            "TEXT": ["a drawing"] * len(urls),
        }
    )
    with SyntheticWebServer(web) as server:
        spec = ShardSpec(samples_per_shard=2, thread_count=2, http_proxy=server.proxy_url,
                         https_as_http=True, timeout=5)  # fmt: skip
        result = download_shards(subset, root, spec)
    pq.write_table(result.results, Path(root) / "results.parquet")
    return result.results


@dataclass(frozen=True)
class Child:
    """A child process and the file its stderr goes to."""

    process: subprocess.Popen
    stderr: IO[str]


@contextmanager
def killed_child(call: str, point: str, after: int) -> Iterator[Child]:
    """Start ``call`` (a function of this module) in a child told to die at ``point``, in its
    own process group; the block runs meanwhile. Whatever of the group still runs when the
    block ends (a child not killed yet, img2dataset's orphaned workers) is killed."""
    env = {**os.environ, faults.ENV: f"kill:{point}:{after}"}
    code = f"from tests.test_kill_rerun import *; {call}"
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
        try:
            yield Child(process, stderr)
        finally:
            kill_group(process)
            process.wait()


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process group ``process`` leads, if any of it is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def wait_killed(child: Child) -> str:
    """Wait for the child (up to 300 s); assert it died of SIGKILL; its stderr."""
    child.process.wait(timeout=300)
    kill_group(child.process)  # orphaned workers would keep writing to the lake
    child.stderr.seek(0)
    stderr = child.stderr.read()
    assert child.process.returncode == -signal.SIGKILL, (child.process.returncode, stderr[-3000:])
    return stderr


def rows(table: pa.Table | None, *keys: str) -> list[dict]:
    """A table's rows sorted by ``keys`` (run timestamps and durations are not columns)."""
    assert table is not None and table.num_rows > 0
    return table.sort_by([(k, "ascending") for k in keys]).to_pylist()


@dataclass(frozen=True)
class Slice:
    """A lake through hops 1-2 for one slice of the tiny web."""

    lake: Path
    web: Path
    key: str


@pytest.fixture(scope="module")
def one_slice(tmp_path_factory: pytest.TempPathFactory) -> Slice:
    """Hops 1-2 over the tiny web's first slice, once for the module (tests copy the lake)."""
    from assets_defs.assets.alt_text_pairs import alt_text_pairs
    from assets_defs.assets.crawl_manifest import crawl_manifest
    from assets_defs.assets.wat_image_links import wat_image_links
    from assets_defs.partitions import wat_slices

    root = tmp_path_factory.mktemp("kill-rerun")
    lake, web = root / "lake", root / "web"
    resources = clip_resources(str(lake), str(web))
    instance = DagsterInstance.ephemeral()
    assert materialize([crawl_manifest], instance=instance, resources=resources).success
    key = sorted(instance.get_dynamic_partitions(wat_slices.name))[0]
    config = {"languages": LANGUAGES, "low_accuracy_language_mode": True}
    hops = materialize(
        [crawl_manifest, wat_image_links, alt_text_pairs],
        selection=[wat_image_links, alt_text_pairs],
        partition_key=key,
        instance=instance,
        resources=resources,
        run_config={"ops": {TableName.ALT_TEXT_PAIRS: {"config": config}}},
    )
    assert hops.success
    return Slice(lake, web, key)


def test_fault_spec_is_checked() -> None:
    assert faults.parse("kill:clip.embedded:3, kill:train.step:1") == {
        "clip.embedded": 3,
        "train.step": 1,
    }
    assert faults.parse("kill:download.batch:1") == {"download.batch": 1}
    for bad in ("kill:clip.embeded:3", "kill:train.step:0", "stop:train.step:1", "kill:x"):
        with pytest.raises(ValueError, match=faults.ENV):
            faults.parse(bad)


def test_clip_scores_killed_mid_slice_reruns_to_the_uninterrupted_tables(
    one_slice: Slice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(faults.ENV, raising=False)
    web, key = str(one_slice.web), one_slice.key
    killed, straight = str(tmp_path / "killed"), str(tmp_path / "straight")
    for lake in (killed, straight):
        shutil.copytree(one_slice.lake, lake)

    call = f"materialize_clip_scores({killed!r}, {web!r}, {key!r})"
    with killed_child(call, "clip.embedded", CLIP_KILL_AFTER) as child:
        materialize_clip_scores(straight, web, key)  # the uninterrupted run, meanwhile
        stderr = wait_killed(child)
    assert 'Started execution of step "clip_scores"' in stderr
    assert Lake(killed).manifest(TableName.CLIP_SCORES, key) is None  # killed before publishing
    assert Lake(killed).manifest(TableName.IMAGE_EMBEDDINGS, key) is None

    materialize_clip_scores(killed, web, key)
    again, uninterrupted = Lake(killed), Lake(straight)
    embedded = uninterrupted.read(TableName.IMAGE_EMBEDDINGS, [key])
    assert embedded is not None and embedded.num_rows > CLIP_KILL_AFTER  # killed mid-hop
    for table, sort_key in (
        (TableName.CLIP_SCORES, "pair_id"),
        (TableName.IMAGE_EMBEDDINGS, "url_id"),
    ):
        assert rows(again.read(table, [key]), sort_key) == rows(
            uninterrupted.read(table, [key]), sort_key
        ), table


def test_training_killed_between_checkpoints_resumes_to_the_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(faults.ENV, raising=False)
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    with killed_child(f"train_and_publish({str(killed)!r})", "train.step", TRAIN_KILL_AFTER) as c:
        uninterrupted = train_and_publish(str(straight))  # meanwhile
        wait_killed(c)
    steps = sorted(p.name for p in killed.glob(f"{TableName.DIFFUSION_MODEL}/run=*/checkpoints/*"))
    assert steps == ["step-000002"]  # step 3 was trained, not saved
    assert Lake(str(killed)).read(TableName.TRAINING_MANIFEST) is None

    resumed = train_and_publish(str(killed))
    assert resumed.resumed_from == 2 and resumed.steps_this_call == 3
    assert resumed.final.sha256 == uninterrupted.final.sha256
    assert resumed.losses == uninterrupted.losses
    manifests = [
        rows(Lake(str(root)).read(TableName.TRAINING_MANIFEST), "checkpoint_step", "pair_id")
        for root in (killed, straight)
    ]
    assert manifests[0] == manifests[1]
    assert {r["checkpoint_step"] for r in manifests[0]} == {2, 4, 5}
    pointers = [json.loads((root / CURRENT).read_text()) for root in (killed, straight)]
    assert [(p["step"], p["sha256"]) for p in pointers] == [(5, uninterrupted.final.sha256)] * 2


def test_download_killed_after_img2dataset_reruns_to_the_uninterrupted_results(
    one_slice: Slice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(faults.ENV, raising=False)
    web = str(one_slice.web)
    killed, straight = str(tmp_path / "killed"), str(tmp_path / "straight")
    with killed_child(f"download_some({web!r}, {killed!r})", "download.batch", 1) as child:
        uninterrupted = download_some(web, straight)  # meanwhile
        wait_killed(child)
    assert list(Path(killed).glob("batches/*/*.tar"))  # img2dataset had written its shards
    assert not (Path(killed) / "results.parquet").exists()  # nothing read back or published

    again = download_some(web, killed)
    assert uninterrupted.num_rows == 6 and set(uninterrupted["status"].to_pylist()) == {"success"}
    assert rows(again, "pair_id") == rows(uninterrupted, "pair_id")
