"""Shared fixtures: environment for offline libraries, WAT-building helpers, a free port, a clean
settings environment, and the small web's materialized lake (built once per test run)."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest

from pipeline.synthetic.gzmember import gzip_member
from pipeline.synthetic.warc import warc_record as synthetic_warc_record

if TYPE_CHECKING:
    from tests.lake_runs import LakeRun

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
# pytest-xdist's workers share the cores: each one's torch/BLAS threads get its share
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))
if os.environ.get("PYTEST_XDIST_WORKER"):
    # execnet starts xdist's workers with SIGTERM ignored, and child processes inherit that:
    # multiprocessing's Pool.terminate (img2dataset) and the servers' SIGTERM would hang
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

REAL_WAT = Path(__file__).resolve().parent / "data" / "real-wat"
"""Two real Common Crawl WAT excerpts (a 2023 HTML page, a 2024 request-only file)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """One moto S3 server on loopback for the whole test run, with a ``lake`` bucket; its
    endpoint. Tests keep apart by key prefix."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket="lake")
    yield endpoint
    server.stop()


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """One local Ray cluster on loopback (2 CPUs, a 100 MB object store, no dashboard) for the
    Ray tests' module (tests/test_ray_engine.py: once per run); its address. Each hop joins it
    as a job. It stops with the module: a cluster left running keeps its workers' download
    retries going through loopback ports that later tests' guard proxies may be given."""
    from pipeline.engine.cluster import LocalRayCluster

    with LocalRayCluster(num_cpus=2, num_gpus=0, object_store_bytes=100 * 1024 * 1024) as cluster:
        yield cluster.address


@pytest.fixture
def s3_options(s3_server: str) -> dict:
    """Lake storage options (s3fs form) for the shared S3 server."""
    return {"client_kwargs": {"endpoint_url": s3_server}, "key": "testing", "secret": "testing"}


@pytest.fixture(scope="session")
def small_lake(tmp_path_factory: pytest.TempPathFactory) -> LakeRun:
    """The small synthetic web materialized through hops 1-3, the dataset and aesthetics, once
    per test run, shared by pytest-xdist's workers (tests/lake_runs.py). Tests only read it; a
    test that writes uses ``fork``."""
    from tests.lake_runs import shared_small_lake

    if os.environ.get("PYTEST_XDIST_WORKER"):  # the run's temp folder, above each worker's
        return shared_small_lake(tmp_path_factory.getbasetemp().parent / "small-lake")
    return shared_small_lake(tmp_path_factory.mktemp("small-lake"))


def warc_record(
    body: bytes,
    *,
    record_id: str = "1",
    warc_type: str = "metadata",
    content_length: int | None = None,
    newline: bytes = b"\r\n",
) -> bytes:
    """One WARC record (uncompressed) by the synthetic web's writer, optionally with a wrong
    Content-Length or LF lines."""
    length = len(body) if content_length is None else content_length
    record = synthetic_warc_record(
        [
            ("WARC-Type", warc_type),
            ("WARC-Target-URI", "http://site.test/page.html"),
            ("WARC-Date", "2024-05-18T01:58:10Z"),
            ("WARC-Record-ID", f"<urn:uuid:{record_id}>"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(length)),
        ],
        body,
    )
    if newline == b"\r\n":
        return record
    head, _, _ = record.partition(b"\r\n\r\n")
    return head.replace(b"\r\n", newline) + newline + newline + body + newline + newline


def wat_payload(
    links: list[dict],
    *,
    page_url: str = "http://site.test/dir/page.html",
    base: str | None = None,
    metas: list[dict] | None = None,
    warc_offset: str = "1234",
) -> bytes:
    """A response-metadata WAT JSON payload in Common Crawl's layout."""
    head: dict = {"Title": "t", "Metas": metas or []}
    if base is not None:
        head["Base"] = base
    return orjson.dumps(
        {
            "Container": {
                "Filename": "SYN-00000.warc.gz",
                "Compressed": True,
                "Offset": warc_offset,
            },
            "Envelope": {
                "Format": "WARC",
                "WARC-Header-Metadata": {
                    "WARC-Type": "response",
                    "WARC-Date": "2024-05-18T01:58:10Z",
                    "WARC-Record-ID": "<urn:uuid:resp-1>",
                    "WARC-Target-URI": page_url,
                },
                "Payload-Metadata": {
                    "HTTP-Response-Metadata": {
                        "HTML-Metadata": {"Head": head, "Links": links},
                    }
                },
            },
        }
    )


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ``CRAWL2DIFFUSION_*`` setting in the environment, and ``tmp_path`` as the working
    directory (so the default ``./data`` is a fresh folder)."""
    from pipeline.settings import Settings, env_name

    for field in Settings.__dataclass_fields__:
        monkeypatch.delenv(env_name(field), raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def write_wat(tmp_path: Path):
    """Write a list of raw member bytes to a .warc.wat.gz file and return its path."""

    def _write(members: list[bytes], name: str = "test.warc.wat.gz") -> str:
        path = tmp_path / name
        path.write_bytes(b"".join(members))
        return str(path)

    return _write


def page_links(page: int, n_images: int = 4) -> list[dict]:
    """Links of one synthetic page: images with varied alts, plus an anchor."""
    out: list[dict] = [{"path": "A@/href", "url": "/index.html", "text": "home"}]
    for i in range(n_images):
        link = {"path": "IMG@/src", "url": f"/img/{page}-{i}.png"}
        if i % 4 != 3:
            link["alt"] = ["a green triangle on white", "logo", "", "unused"][i % 4] + (
                f" number {page}" if i % 4 == 0 else ""
            )
        out.append(link)
    out.append({"path": "IMG@/src", "url": "/img/shared.png", "alt": "the shared site banner"})
    return out


@pytest.fixture
def mini_crawl(tmp_path: Path) -> Path:
    """A tiny Common-Crawl-shaped tree: collinfo.json, wat.paths.gz, 4 WAT files in one crawl."""
    import gzip

    root = tmp_path / "web"
    crawl = "MINI-2026-01"
    wat_dir = root / "crawl-data" / crawl / "segments" / "1" / "wat"
    wat_dir.mkdir(parents=True)
    paths = []
    for f in range(4):
        # the last file's last page re-crawls the first file's first page (a cross-slice repeat)
        pages = [(f * 10 + p, f"http://site{f}.test/p{p}.html") for p in range(5)]
        if f == 3:
            pages[-1] = (0, "http://site0.test/p0.html")
        members = [
            gzip_member(warc_record(wat_payload(page_links(n), page_url=url), record_id=f"{f}-{p}"))
            for p, (n, url) in enumerate(pages)
        ]
        name = f"MINI-{f:05d}.warc.wat.gz"
        (wat_dir / name).write_bytes(b"".join(members))
        paths.append(f"crawl-data/{crawl}/segments/1/wat/{name}")
    with gzip.open(root / "crawl-data" / crawl / "wat.paths.gz", "wt") as handle:
        handle.write("\n".join(paths) + "\n")
    (root / "collinfo.json").write_bytes(orjson.dumps([{"id": crawl, "name": "mini"}]))
    return root


@pytest.fixture
def mini_resources(mini_crawl: Path, tmp_path: Path) -> dict:
    """Dagster resources for the mini crawl: a temporary lake, no synthetic web."""
    from dagster import PipesSubprocessClient

    from assets_defs.resources import (
        CrawlSourceResource,
        EngineResource,
        LakeResource,
        SyntheticWebResource,
    )

    return {
        "lake": LakeResource(root=str(tmp_path / "lake")),
        "crawl_source": CrawlSourceResource(
            data_root=str(mini_crawl), collinfo_uri=str(mini_crawl / "collinfo.json")
        ),
        "synthetic_web": SyntheticWebResource(enabled=False),
        "pipes_subprocess_client": PipesSubprocessClient(),
        "engine": EngineResource(),
    }


COSTLY_MODULES_FIRST = (
    "test_deployment.py",
    "test_demo.py",
    "test_ray_engine.py",
    "test_kill_rerun.py",
    "test_dataset_report.py",
    "test_laion_hops.py",
    "test_pipes.py",
    "test_diffusion_quality.py",
    "test_erase.py",
    "test_shards.py",
    "test_synthetic_server.py",
    "test_synthetic_web.py",
)
"""The slowest modules, slowest first (measured with ``--durations``): pytest-xdist hands out
whole modules (``--dist loadfile``) in collection order (``--no-loadscope-reorder``), so
queueing these first lets the workers finish together."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the costly modules first, in ``COSTLY_MODULES_FIRST`` order; the rest keep theirs."""
    rank = {name: i for i, name in enumerate(COSTLY_MODULES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
