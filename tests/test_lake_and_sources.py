"""The lake (Delta tables, local and s3://) and WAT sources over http(s) and s3://."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.hops.crawl.manifest import SlicePlan, crawl_of_partition, list_wat_paths, plan_slices
from pipeline.hops.wat.records import WatOpenError, extract_image_links
from pipeline.lake.store import Lake
from tests.conftest import REAL_WAT

TABLE = pa.table({"pair_id": ["a", "b"], "n": [1, 2]})


@pytest.fixture
def s3_env(s3_options: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The shared S3 server's options, with its credentials also in the environment."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return s3_options


def test_local_partition_roundtrip_and_replace(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    uri = lake.write_partition("t", TABLE, "P_00000")
    assert uri.endswith("t/partition=P_00000")
    assert lake.read("t", ["P_00000"]).to_pylist() == TABLE.to_pylist()
    first = lake.version("t")
    lake.write_partition("t", TABLE.slice(0, 1), "P_00000")
    assert lake.read("t").to_pylist() == TABLE.slice(0, 1).to_pylist()
    assert lake.version("t") == first + 1  # one commit per write
    assert lake.manifest("t", "P_00000")["rows"] == 1
    assert len(lake.files("t")) == 1
    assert (tmp_path / "lake" / "t" / "_delta_log").is_dir()
    assert lake.read("t", version=first).to_pylist() == TABLE.to_pylist()  # history stays


def test_failed_write_leaves_nothing_visible(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.write_partition("t", TABLE, "P_00000")
    version = lake.version("t")
    with pytest.raises(RuntimeError), lake.partition_writer("t", "P_00000", TABLE.schema) as w:
        w.write_table(TABLE.slice(0, 1))
        raise RuntimeError("crash mid-write")
    with pytest.raises(RuntimeError), lake.partition_writer("t", "P_00001", TABLE.schema) as w:
        raise RuntimeError("crash before any row")
    assert lake.version("t") == version  # nothing committed
    assert lake.partitions("t") == ["P_00000"]
    assert lake.read("t").to_pylist() == TABLE.to_pylist()


def test_s3_lake(s3_env: dict) -> None:
    lake = Lake("s3://lake/prefix", s3_env)
    uri = lake.write_partition("t", TABLE, "P_00000")
    assert uri == "s3://lake/prefix/t/partition=P_00000"
    lake.write_partition("t", TABLE, "P_00001")
    assert lake.partitions("t") == ["P_00000", "P_00001"]
    assert lake.read("t").num_rows == 4
    assert all(f.startswith("s3://lake/prefix/t/partition=P_0000") for f in lake.files("t"))
    assert lake.fs.exists("lake/prefix/t/_delta_log/00000000000000000000.json")
    lake.write_partition("t", TABLE.slice(0, 0), "P_00000")  # an empty partition, on S3 too
    assert [m["rows"] for m in lake.manifests("t")] == [0, 2]
    assert lake.read("t", ["P_00000"]).num_rows == 0


def test_wat_from_s3(s3_env: dict) -> None:
    import fsspec

    fs = fsspec.filesystem("s3", **s3_env)
    fs.put(str(REAL_WAT / "CC-MAIN-2023-06-excerpt.warc.wat.gz"), "lake/cc/excerpt.warc.wat.gz")
    table, stats = extract_image_links("s3://lake/cc/excerpt.warc.wat.gz", storage_options=s3_env)
    assert table.num_rows == 27 and stats.bytes_read == 12946


@pytest.fixture(scope="module")
def http_root() -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(REAL_WAT))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_wat_over_http(http_root: str) -> None:
    table, _ = extract_image_links(f"{http_root}/CC-MAIN-2023-06-excerpt.warc.wat.gz")
    assert table.num_rows == 27


def test_missing_wat_over_http_names_it(http_root: str) -> None:
    with pytest.raises(WatOpenError, match="missing"):
        extract_image_links(f"{http_root}/missing.warc.wat.gz")


def test_slices_and_sampling(mini_crawl: Path) -> None:
    paths = list_wat_paths(str(mini_crawl), "MINI-2026-01")
    assert len(paths) == 4
    plan = plan_slices("MINI-2026-01", paths, str(mini_crawl), SlicePlan(slice_size=3))
    assert plan.column("partition_key").to_pylist() == ["MINI-2026-01_00000"] * 3 + [
        "MINI-2026-01_00001"
    ]
    assert crawl_of_partition("MINI-2026-01_00001") == "MINI-2026-01"
    sampled = plan_slices(
        "MINI-2026-01", paths, str(mini_crawl), SlicePlan(slice_size=1, sample_size=2)
    )
    again = plan_slices(
        "MINI-2026-01", paths, str(mini_crawl), SlicePlan(slice_size=1, sample_size=2)
    )
    assert sampled.num_rows == 2 and sampled.equals(again)
    with pytest.raises(FileNotFoundError, match="NOPE"):
        list_wat_paths(str(mini_crawl), "NOPE")
