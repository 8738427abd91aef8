"""The Ray engine gives the same rows as in process: hop 1 (a Ray task per WAT file), hop 3 (a
Ray Data pipeline: fetch tasks, the cluster's CLIP service) and the download (img2dataset's
``ray`` distributor); the CLIP service outlives a hop and leaves the cluster when idle. Every
test joins the one local cluster of the run (``ray_cluster``).

The in-process side is the small lake (``small_lake``, built once per run); the Ray side
materializes the same partition with ``EngineResource(kind="ray")`` on a fresh lake or a fork.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from assets_defs.assets.clip_scores import clip_scores
from assets_defs.assets.image_shards import image_shards
from assets_defs.assets.wat_image_links import wat_image_links
from assets_defs.resources import EngineResource
from pipeline.engine import Engine
from pipeline.engine.clip_service import release_clip_services
from pipeline.engine.worker_env import worker_env
from pipeline.hops.wat.records import ExtractStats, WatOpenError
from pipeline.lake.tables import TableName
from tests.conftest import REAL_WAT
from tests.lake_runs import LakeRun, checks_passed

ROOT = str(Path(__file__).resolve().parents[1])
FLOATS = ("similarity", "punsafe", "pwatermark", "threshold")


def on_ray(run: LakeRun, address: str) -> LakeRun:
    """The same lake run with the Ray engine."""
    resources = {**run.resources, "engine": EngineResource(kind="ray", ray_address=address)}
    return dataclasses.replace(run, resources=resources)


def same_rows(ours: pa.Table, theirs: pa.Table, key: str, floats: tuple[str, ...] = ()) -> None:
    """Equal tables up to row order (by ``key``); ``floats`` within 1e-5."""
    assert ours.schema == theirs.schema and ours.num_rows == theirs.num_rows > 0
    a, b = ours.sort_by(key), theirs.sort_by(key)
    for name in ours.column_names:
        x, y = a.column(name).to_pylist(), b.column(name).to_pylist()
        if name in floats or name == "embedding":
            assert [v is None for v in x] == [v is None for v in y], name
            pairs = [(u, v) for u, v in zip(x, y, strict=True) if u is not None]
            if pairs:
                np.testing.assert_allclose(*map(np.array, zip(*pairs, strict=True)), atol=1e-5)
        else:
            assert x == y, name


@pytest.fixture(scope="module")
def ray_slice(small_lake: LakeRun, ray_cluster: str, tmp_path_factory) -> LakeRun:
    """A fork of the small lake whose first slice went through hop 1 and hop 3 again on the
    Ray engine, with no embedding left to reuse (hop 3 fetches every URL again)."""
    run = on_ray(small_lake.fork(tmp_path_factory.mktemp("ray-slice")), ray_cluster)
    for table in (TableName.CLIP_SCORES, TableName.IMAGE_EMBEDDINGS):
        shutil.rmtree(run.lake.table_uri(table))
    key = small_lake.keys[0]
    checks_passed(run.run(wat_image_links, partition=key))
    checks_passed(run.run(clip_scores, partition=key))
    with Engine("ray", ray_cluster).session():  # the CLIP service's CPU back to the cluster
        release_clip_services()
    return run


def test_hop1_on_ray_gives_the_same_links_in_the_same_order(
    ray_slice: LakeRun, small_lake: LakeRun
) -> None:
    key = small_lake.keys[0]
    ours = ray_slice.lake.read(TableName.WAT_IMAGE_LINKS, [key])
    theirs = small_lake.lake.read(TableName.WAT_IMAGE_LINKS, [key])
    assert ours.equals(theirs)
    meta, before = (
        ray_slice.metadata(TableName.WAT_IMAGE_LINKS, key),
        small_lake.metadata(TableName.WAT_IMAGE_LINKS, key),
    )
    assert meta["engine"] == "ray" and before["engine"] == "in_process"
    for name in ("files_read", "records_read", "records_ok", "records_failed", "bytes_read"):
        assert meta[name] == before[name], name


def test_hop3_on_ray_gives_the_same_scores_and_embeddings(
    ray_slice: LakeRun, small_lake: LakeRun
) -> None:
    key = small_lake.keys[0]
    for table, by in ((TableName.CLIP_SCORES, "pair_id"), (TableName.IMAGE_EMBEDDINGS, "url_id")):
        same_rows(ray_slice.lake.read(table, [key]), small_lake.lake.read(table, [key]), by,
                  FLOATS)  # fmt: skip
    meta = ray_slice.metadata(TableName.CLIP_SCORES, key)
    before = small_lake.metadata(TableName.CLIP_SCORES, key)
    assert meta["engine"] == "ray"
    for name in ("urls_fetched", "rows_kept"):
        assert meta[name] == before[name], name
    # Ray Data's usage poller would query Prometheus through a later download's guard proxy
    pollers = [t.name for t in threading.enumerate() if "usage" in t.name]
    assert not pollers, pollers


def _service_state(names: list[str]) -> dict[str, dict]:
    import ray

    from pipeline.engine.clip_service import NAMESPACE

    return {n: ray.get(ray.get_actor(n, namespace=NAMESPACE).info.remote()) for n in names}


def _wait_for_cpus(ray, total: float, what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while ray.available_resources().get("CPU", 0) < total:
        assert time.monotonic() < deadline, f"waited {timeout_s:.0f} s for {what}"
        time.sleep(0.5)


def test_the_clip_service_serves_the_next_hop_and_leaves_the_cluster(
    small_lake: LakeRun, ray_cluster: str
) -> None:
    """Hop 3's CLIP service loads the model once per cluster: the next hop, a job of its own,
    is served by the same processes, both actors of the pool busy, with the same embeddings;
    released, or idle, it hands its CPUs back; a block sent to an actor that has left is
    embedded by a new one."""
    from PIL import Image

    from pipeline.engine.clip import OUTCOME_SCHEMA, RayClipPlan, ray_fetch_and_embed, service_spec
    from pipeline.engine.clip_service import embed_on_service, running_services, service_actor
    from pipeline.hops.clip.decode import DecodePolicy
    from pipeline.hops.clip.fetch import Fetcher, FetchPolicy
    from pipeline.synthetic.server import SyntheticWebServer

    key = small_lake.keys[0]
    stored = small_lake.lake.read(TableName.IMAGE_EMBEDDINGS, [key]).slice(0, 24)
    urls = dict(zip(stored.column("url_id").to_pylist(), stored.column("url").to_pylist(),
                    strict=True))  # fmt: skip
    expected = dict(zip(urls, stored.column("embedding").to_pylist(), strict=True))
    clip = small_lake.resources["clip_model"].clip()
    engine = Engine("ray", ray_cluster)
    plan = RayClipPlan(fetch_batch=8, embed_actors=2, embed_cpus=0.5)  # 3 blocks a hop
    with SyntheticWebServer(small_lake.web, slow_seconds=0.0) as server:
        web = server.base_url.removeprefix("http://")
        fetcher = Fetcher(FetchPolicy(resolve=dict.fromkeys(server.hosts, web),
                                      resolve_only=True), 8)  # fmt: skip
        served = []
        for _ in range(2):  # two hops, two jobs
            with engine.session():
                hop = ray_fetch_and_embed(urls, clip, fetcher, DecodePolicy(), plan=plan)
                got = {o.url_id: o.embedding for o in hop}
                served.append(_service_state(running_services()))
            assert got.keys() == expected.keys()
            for uid, embedding in got.items():
                np.testing.assert_allclose(embedding, expected[uid], atol=1e-5)
    first, second = served
    names = sorted(first)
    assert len(names) == 2 and sorted(second) == names
    for name in names:
        assert second[name]["pid"] == first[name]["pid"]  # the same process: loaded once
        assert second[name]["batches"] > 0  # blocks go to every actor of the pool
    assert sum(s["batches"] for s in second.values()) == 2 * sum(
        s["batches"] for s in first.values()
    )
    with engine.session() as ray:
        spec = service_spec(clip, plan)
        assert spec.names() == names
        assert dataclasses.replace(spec, code="changed").names() != names
        name = names[0]
        service_actor(spec, name)  # a handle this process keeps: stale once released
        assert release_clip_services() == names
        _wait_for_cpus(ray, 2.0, "the released service's CPU")
        assert running_services() == []
        # a block whose actor has left goes to a new one, which leaves after 1 s idle
        pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        block = pa.Table.from_pylist([{"url_id": "u", "pixels": pixels.tobytes(),
                                       "pixels_height": 64, "pixels_width": 64}],
                                     schema=OUTCOME_SCHEMA)  # fmt: skip
        embedded = embed_on_service(block, dataclasses.replace(spec, idle_s=1.0), name)
        embedding = np.frombuffer(embedded.column("embedding")[0].as_py(), np.float32)
        in_process = clip.embed_images([Image.fromarray(pixels)])[0]
        np.testing.assert_allclose(embedding, in_process, atol=1e-5)
        _wait_for_cpus(ray, 2.0, "the idle service to leave")
        assert running_services() == []


def _normalized(results: pa.Table) -> pa.Table:
    """Download results with loopback ports masked (each run has its own guard proxy)."""
    errors = [re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", e) if e else e
              for e in results.column("error_message").to_pylist()]  # fmt: skip
    index = results.schema.get_field_index("error_message")
    return results.set_column(index, "error_message", pa.array(errors, pa.string()))


def test_download_on_ray_reruns_a_shard_left_incomplete_and_gives_the_same_results(
    small_lake: LakeRun, ray_cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """img2dataset's ray distributor ignores a failed shard; the project runs img2dataset
    again for it. The fault (the first run leaves shard 0 without its stats) is injected, as
    it cannot be caused at will; the results still equal the in-process run's."""
    from pipeline.hops.download import shards

    crawl = small_lake.crawl
    here = small_lake.fork(tmp_path / "in-process")
    checks_passed(here.run(image_shards, partition=crawl))
    real, calls = shards._download, []

    def leaves_shard_0_incomplete(download, folder: str, spec: shards.ShardSpec) -> None:
        real(download, folder, spec)
        calls.append(spec.distributor)
        if len(calls) == 1:
            Path(folder, "00000_stats.json").unlink()

    monkeypatch.setattr(shards, "_download", leaves_shard_0_incomplete)
    there = on_ray(small_lake.fork(tmp_path / "ray"), ray_cluster)
    checks_passed(there.run(image_shards, partition=crawl))
    assert calls == ["ray", "ray"]
    ours = _normalized(there.lake.read(TableName.DOWNLOAD_RESULTS, [crawl]))
    theirs = _normalized(here.lake.read(TableName.DOWNLOAD_RESULTS, [crawl]))
    same_rows(ours, theirs, "pair_id")
    assert "success" in ours.column("status").to_pylist()
    meta = there.metadata(TableName.IMAGE_SHARDS, crawl)
    before = here.metadata(TableName.IMAGE_SHARDS, crawl)
    assert (meta["distributor"], meta["engine"]) == ("ray", "ray")
    assert (before["distributor"], before["engine"]) == ("multiprocessing", "in_process")
    assert meta["shards_written_now"] == before["shards_written_now"] > 0
    tars = sorted(p.name for p in (tmp_path / "ray" / "lake").rglob("*.tar"))
    assert tars == sorted(p.name for p in (tmp_path / "in-process" / "lake").rglob("*.tar"))


def test_workers_get_the_hop_environment_and_a_bad_file_fails_with_its_path(
    ray_cluster: str, tmp_path: Path
) -> None:
    """S3 options, proxies and offline switches travel in the job's runtime_env; a task's
    error reaches the step as the file's WatOpenError, naming the file (one job for both)."""
    engine = Engine("ray", ray_cluster)
    options = {"key": "AK", "secret": "SK", "client_kwargs": {"endpoint_url": "http://s3:9"}}
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "http_proxy",
             "NO_ALBUMENTATIONS_UPDATE")  # fmt: skip
    empty = tmp_path / "empty.warc.wat.gz"
    empty.write_bytes(b"")
    missing = str(tmp_path / "missing.warc.wat.gz")
    with engine.session(options, {"http_proxy": "http://127.0.0.1:1"}) as ray:
        seen = ray.get(ray.remote(_environment).remote(names))
        with pytest.raises(WatOpenError, match=r"missing\.warc\.wat\.gz"):
            list(engine.image_link_batches([str(empty), missing], "X", ExtractStats()))
    assert seen == ["AK", "SK", "http://s3:9", "http://127.0.0.1:1", "1"]
    assert worker_env(options, local=False, environ={}).get("PYTHONPATH") is None


def _environment(names: tuple[str, ...]) -> list[str | None]:
    import os

    return [os.environ.get(name) for name in names]


NO_RAY = """
import sys
sys.modules["ray"] = None  # import ray fails, as where the extra is not installed
from assets_defs.definitions import defs
from assets_defs.resources import EngineResource
from pipeline.engine import Engine
from pipeline.engine.clip_service import release_clip_services
from pipeline.engine.cluster import RayUnavailableError
from pipeline.hops.wat.records import ExtractStats
engine = EngineResource().engine()
assert engine.kind == "in_process"
stats = ExtractStats()
with engine.session():
    rows = sum(b.num_rows for b in engine.image_link_batches([sys.argv[1]], "X", stats))
assert rows == stats.image_links > 0, (rows, stats)
try:
    Engine("ray", "127.0.0.1:1").session().__enter__()
except RayUnavailableError as exc:
    print("refused:", exc)
"""


def test_in_process_is_the_default_and_needs_no_ray() -> None:
    with pytest.raises(ValueError, match="unknown engine"):
        Engine("spark")
    assert EngineResource().engine() == Engine()  # one default per setting
    wat = next(REAL_WAT.rglob("*2023*"))
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, "-c", NO_RAY, str(wat)], capture_output=True,
                          text=True, timeout=300, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "refused: the ray engine needs Ray" in done.stdout


def test_demo_takes_an_engine_and_a_ray_address() -> None:
    from crawl2diffusion.cli import build_parser

    args = build_parser().parse_args(["demo", "--engine", "ray", "--ray-address", "h:6379"])
    assert (args.engine, args.ray_address) == ("ray", "h:6379")
    assert build_parser().parse_args(["demo"]).engine is None  # the setting's default
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--engine", "spark"])
