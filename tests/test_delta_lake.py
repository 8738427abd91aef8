"""The lake's Delta tables: one configuration for fsspec and delta-rs, Arrow types kept, empty
partitions, time travel, streaming in bounded memory, concurrent writers (local and S3)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.lake.options import lake_options
from pipeline.lake.store import Lake

TABLE = pa.table({"pair_id": ["a", "b"], "n": [1, 2]})


def test_one_configuration_for_fsspec_and_delta() -> None:
    short = lake_options(
        "s3://lake/p",
        {"endpoint_url": "http://127.0.0.1:9", "key": "k", "secret": "s", "region": "eu-west-1"},
    )
    assert short.fsspec == {
        "key": "k",
        "secret": "s",
        "client_kwargs": {"endpoint_url": "http://127.0.0.1:9", "region_name": "eu-west-1"},
    }
    assert short.delta == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_REGION": "eu-west-1",
        "AWS_ALLOW_HTTP": "true",
        "conditional_put": "etag",
    }
    s3fs_style = lake_options(
        "s3://lake/p",
        {"client_kwargs": {"endpoint_url": "http://127.0.0.1:9", "region_name": "eu-west-1"}}
        | {"key": "k", "secret": "s"},
    )
    assert s3fs_style == short
    real_s3 = lake_options("s3://lake/p", {"anon": True, "delta": {"timeout": "30s"}})
    assert real_s3.fsspec == {"anon": True}
    assert real_s3.delta == {"AWS_SKIP_SIGNATURE": "true", "conditional_put": "etag"} | {
        "timeout": "30s"
    }
    assert lake_options("/data/lake", {"auto_mkdir": True}).delta == {}


def test_arrow_types_come_back(tmp_path: Path) -> None:
    schema = pa.schema(
        [
            pa.field("url_id", pa.string(), nullable=False),
            pa.field("embedding", pa.list_(pa.float32(), 3)),
            pa.field("added_at", pa.timestamp("s", tz="UTC"), nullable=False),
            pa.field("width", pa.int16()),
            pa.field("png", pa.binary()),
            pa.field("count", pa.uint32()),
        ]
    )
    data = pa.table(
        {
            "url_id": ["u1", "u2"],
            "embedding": [[0.5, 1.0, 2.0], None],
            "added_at": [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)] * 2,
            "width": [7, None],
            "png": [b"\x89PNG", None],
            "count": [4_000_000_000, 1],
        },
        schema=schema,
    )
    lake = Lake(str(tmp_path / "lake"))
    lake.write_partition("t", data, "CC-1")
    back = lake.read("t")
    assert back.schema.equals(schema, check_metadata=True)
    assert back.equals(data)
    assert lake.read("t", columns=["embedding"]).schema.field(0).type == pa.list_(pa.float32(), 3)


def test_embedding_width_may_change(tmp_path: Path) -> None:
    """Another model's embeddings (width 4, not 3) replace a partition; each partition reads
    at its own width, and both together as plain lists."""
    lake = Lake(str(tmp_path / "lake"))
    for key, width in (("A", 3), ("B", 4)):
        vectors = pa.array([[1.0] * width], pa.list_(pa.float32(), width))
        lake.write_partition("t", pa.table({"embedding": vectors}), key)
    assert lake.read("t", ["A"]).schema.field(0).type == pa.list_(pa.float32(), 3)
    assert lake.read("t", ["B"]).schema.field(0).type == pa.list_(pa.float32(), 4)
    assert lake.read("t").column(0).to_pylist() == [[1.0] * 3, [1.0] * 4]


def test_missing_tables_read_as_none_and_write_nothing(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "nothing"))
    assert lake.read("t") is None and lake.read_with_partition("t", "crawl") is None
    assert lake.version("t") is None and lake.delta_table("t") is None
    assert lake.manifests("t") == [] and lake.manifest("t") is None
    assert lake.partitions("t") == [] and lake.files("t") == []
    assert not (tmp_path / "nothing").exists()
    lake.write_partition("t", TABLE, "P1")
    assert lake.read("t", ["P2"]) is None  # a partition never published


def test_empty_partition_is_published_and_empty(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.write_partition("t", TABLE, "P1")
    lake.write_partition("t", TABLE.slice(0, 0))  # unpartitioned: the key "all"
    lake.write_partition("t", TABLE.slice(0, 0), "P1")  # replaces P1 by nothing
    assert lake.partitions("t") == ["P1", "all"]
    assert [m["rows"] for m in lake.manifests("t")] == [0, 0]
    empty = lake.read("t", ["P1"])
    assert empty.num_rows == 0 and empty.schema == TABLE.schema
    with lake.partition_writer("t", "P2", TABLE.schema):
        pass  # a block that writes no row publishes an empty partition
    assert lake.manifest("t", "P2")["rows"] == 0
    lake.write_partition("t", TABLE, "P1")
    assert lake.read("t").to_pylist() == TABLE.to_pylist()


def test_partition_key_column_and_order(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    for key, n in (("CC-2", 2), ("CC-1", 1), ("CC-3", 3)):
        lake.write_partition("t", pa.table({"n": [n] * n}), key, extra={"model_id": "m1"})
    read = lake.read_with_partition("t", "crawl", ["CC-3", "CC-1"])
    assert read.column_names == ["n", "crawl"]
    assert read.to_pylist() == [{"n": 1, "crawl": "CC-1"}] + [{"n": 3, "crawl": "CC-3"}] * 3
    assert lake.read("t").column("n").to_pylist() == [1, 2, 2, 3, 3, 3]
    manifests = lake.manifests("t", ["CC-2", "CC-3"])
    assert [(m["partition"], m["rows"]) for m in manifests] == [("CC-2", 2), ("CC-3", 3)]
    assert {m["version"] for m in manifests} == {lake.version("t")}
    assert lake.delta_table("t").history(1)[0]["model_id"] == "m1"  # extra: commit metadata


def test_a_partition_may_gain_a_column(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.write_partition("t", TABLE, "P1")
    lake.write_partition("t", TABLE.append_column("note", pa.array(["x", None])), "P2")
    assert lake.read("t").column("note").to_pylist() == [None, None, "x", None]


def test_time_travel_by_version_and_timestamp(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.write_partition("t", TABLE, "P1")
    first = lake.version("t")
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    lake.write_partition("t", TABLE.slice(1, 1), "P1")
    lake.write_partition("t", TABLE, "P2")
    assert lake.version("t") == first + 2
    assert lake.read("t", version=first).to_pylist() == TABLE.to_pylist()
    assert lake.read("t", as_of=between).to_pylist() == TABLE.to_pylist()
    assert lake.version("t", as_of=between) == first
    assert lake.partitions("t", version=first) == ["P1"]
    assert lake.manifest("t", "P1", version=first)["rows"] == 2
    assert lake.read("t", ["P1"]).to_pylist() == TABLE.slice(1, 1).to_pylist()


def test_history_keeps_every_row_with_its_commits(tmp_path: Path) -> None:
    """Rows replaced by a re-written partition stay readable with the commits that added and
    removed them; ``table@version`` and ISO times resolve to commit times."""
    from pipeline.lake.history import commits, file_lifetimes, resolve_as_of, rows_with_lifetimes

    lake = Lake(str(tmp_path / "lake"))
    lake.write_partition("t", TABLE, "P1")
    lake.write_partition("t", TABLE, "P2")
    lake.write_partition("t", TABLE.slice(1, 1), "P1")
    v1, v2, v3 = (c.version for c in commits(lake, "t")[1:])
    lives = sorted(file_lifetimes(lake, "t").to_pylist(), key=lambda r: r["_since_version"])
    assert [(r["partition"], r["_since_version"], r["_until_version"]) for r in lives] == [
        ("P1", v1, v3),
        ("P2", v2, None),
        ("P1", v3, None),
    ]
    rows = rows_with_lifetimes(lake, "t", ["pair_id"])
    history = sorted(
        (r["partition"], r["pair_id"], r["_since_version"], r["_until_version"])
        for r in rows.to_pylist()
    )
    ids = TABLE.column("pair_id").to_pylist()
    assert history == sorted(
        [("P1", i, v1, v3) for i in ids]
        + [("P2", i, v2, None) for i in ids]
        + [("P1", ids[1], v3, None)]
    )
    # as of version 2, nothing was removed yet
    assert {
        r["_until_version"]
        for r in rows_with_lifetimes(lake, "t", ["pair_id"], up_to=v2).to_pylist()
    } == {None}
    assert resolve_as_of(lake, f"t@{v2}") == commits(lake, "t")[v2].at
    assert resolve_as_of(lake, "2026-01-02T03:04:05").tzinfo is not None
    with pytest.raises(ValueError, match="table@version"):
        resolve_as_of(lake, "t@latest")
    with pytest.raises(LookupError):
        resolve_as_of(lake, "t@99")


def test_ledger_records_versions_read_and_written(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.write_partition("t", TABLE, "P1")
    other = Lake(str(tmp_path / "lake"))
    other.write_partition("t", TABLE, "P2")  # another writer commits in between
    lake.write_partition("t", TABLE, "P3")
    lake.read("t", ["P1"])
    assert [(a.access, a.version, a.partitions) for a in lake.ledger.accesses()] == [
        ("wrote", 1, ("P1",)),
        ("wrote", 3, ("P3",)),
        ("read", 3, ("P1",)),
    ]
    assert lake.ledger.versions("wrote") == {"t": [1, 3]}


def test_partition_writer_streams_in_bounded_memory(tmp_path: Path) -> None:
    """200 MiB of batches pass through while at most a few MiB of them are alive at once."""
    lake = Lake(str(tmp_path / "lake"))
    schema = pa.schema([("text", pa.string())])
    baseline, peak = pa.total_allocated_bytes(), 0
    with lake.partition_writer("t", "P1", schema) as writer:
        for i in range(200):
            batch = pa.record_batch([pa.array([f"{i:04d}" * 256] * 1024)], schema=schema)
            writer.write_batch(batch)  # 1 MiB
            del batch
            peak = max(peak, pa.total_allocated_bytes() - baseline)
    assert lake.manifest("t", "P1")["rows"] == 200 * 1024
    assert peak < 32 * 2**20


def _write_rounds(root: str, options: dict, key: str, rounds: int, barrier) -> None:
    """Write partition ``key`` ``rounds`` times, starting when every writer is ready."""
    lake = Lake(root, options)
    barrier.wait()
    for r in range(rounds):
        lake.write_partition("t", pa.table({"key": [key] * (r + 1), "round": [r] * (r + 1)}), key)


@pytest.mark.parametrize("where", ["local", "s3"])
@pytest.mark.parametrize("how", ["threads", "processes"])
def test_concurrent_writers_of_different_partitions_all_land(
    where: str, how: str, tmp_path: Path, s3_options: dict
) -> None:
    if where == "local":
        root, options = str(tmp_path / "lake"), {}
    else:
        root, options = f"s3://lake/{how}-{tmp_path.name}", s3_options
    keys, rounds = ["CC-1", "CC-2"], 3
    if how == "threads":
        barrier = threading.Barrier(len(keys))
        workers = [
            threading.Thread(target=_write_rounds, args=(root, options, k, rounds, barrier))
            for k in keys
        ]
    else:
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(len(keys))
        workers = [
            context.Process(target=_write_rounds, args=(root, options, k, rounds, barrier))
            for k in keys
        ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=600)  # generous: spawned writers import the package on a busy machine
    running = [w.name for w in workers if w.is_alive()]
    assert not running, f"writers {running} still running after 600 s (waiting for 3 commits each)"
    if how == "processes":
        assert [w.exitcode for w in workers] == [0] * len(keys)  # type: ignore[union-attr]
    lake = Lake(root, options)
    assert lake.partitions("t") == keys
    last = rounds - 1
    assert lake.read("t").to_pylist() == [
        {"key": k, "round": last} for k in keys for _ in range(rounds)
    ]
    # every write is its own commit, after the table's creation (raced by both writers)
    assert lake.version("t") >= len(keys) * rounds
