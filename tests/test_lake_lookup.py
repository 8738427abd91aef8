"""Lake.lookup through key sidecars: the same rows as a filtered read, across versions,
re-written partitions, schema changes, hash collisions and erasure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipeline.lake import keyindex
from pipeline.lake.store import Lake
from pipeline.lake.tables import TableName
from pipeline.lineage import ann

TABLE = TableName.IMAGE_EMBEDDINGS


def _rows(ids: list[str], tag: str, start: int = 0, dim: int = 4) -> pa.Table:
    vectors = np.arange(start, start + len(ids) * dim, dtype=np.float32).reshape(-1, dim)
    flat = pa.array(vectors.reshape(-1))
    return pa.table(
        {
            "url_id": pa.array(ids, pa.string()),
            "model_id": pa.array([tag] * len(ids)),
            "embedding": pa.FixedSizeListArray.from_arrays(flat, dim),
        }
    )


def _expected(lake: Lake, values: set[str], columns: list[str] | None = None) -> pa.Table:
    data = lake.read(TABLE, columns=columns)
    return data.filter(pc.is_in(data.column("url_id"), pa.array(sorted(values), pa.string())))


def _lake(tmp_path: Path) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    # the same url_id in two partitions, and twice in one (two models)
    lake.write_partition(TABLE, _rows(["a", "b", "c", "b"], "m1"), "s1")
    lake.write_partition(TABLE, _rows(["d", "b", "e"], "m2", start=100), "s2")
    lake.write_partition(TABLE, _rows([], "m1"), "s3")  # published, empty
    return lake


def _sidecars(lake: Lake) -> list[str]:
    return sorted(p.name for p in (lake.index_root() / TABLE).glob("*/lookup-*"))


def test_lookup_equals_a_filtered_read(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    for values in ({"b"}, {"a", "e", "zz"}, {"zz"}, set(), {"a", "b", "c", "d", "e"}):
        found = lake.lookup(TABLE, "url_id", values)
        assert found.equals(_expected(lake, values)), values
    found = lake.lookup(TABLE, "url_id", ["b", "d"], columns=["url_id", "embedding"])
    assert found.equals(_expected(lake, {"b", "d"}, ["url_id", "embedding"]))
    assert found.schema.field("embedding").type == pa.list_(pa.float32(), 4)
    only = lake.lookup(TABLE, "url_id", ["b"], partitions=["s2"])
    assert only.column("model_id").to_pylist() == ["m2"]
    # one sidecar (rows + keys) per partition, written by the first lookup, reused after
    assert len(_sidecars(lake)) == 6
    assert Lake(str(tmp_path / "lake")).lookup(TABLE, "url_id", ["e"]).num_rows == 1
    assert len(_sidecars(lake)) == 6
    assert Lake(str(tmp_path / "nothing")).lookup(TABLE, "url_id", ["a"]) is None


def test_a_rewritten_partition_is_looked_up_as_it_is_now(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    lake.lookup(TABLE, "url_id", ["a"])
    before = _sidecars(lake)
    lake.write_partition(TABLE, _rows(["x", "a"], "m3"), "s1")
    found = lake.lookup(TABLE, "url_id", ["a", "b", "c", "x"])
    assert found.equals(_expected(lake, {"a", "b", "c", "x"}))
    assert set(found.column("model_id").to_pylist()) == {"m2", "m3"}
    after = _sidecars(lake)
    assert len(after) == 6 and len(set(before) & set(after)) == 4  # s1's old sidecar is gone


def test_a_column_added_later_is_read(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    lake.lookup(TABLE, "url_id", ["a"])
    wider = _rows(["f"], "m1").append_column("width", pa.array([7], pa.int32()))
    lake.write_partition(TABLE, wider, "s4")
    found = lake.lookup(TABLE, "url_id", ["a", "f"], columns=["url_id", "width"])
    assert found.to_pylist() == [{"url_id": "a", "width": None}, {"url_id": "f", "width": 7}]


def test_hash_collisions_never_return_a_foreign_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = _lake(tmp_path)
    real = keyindex.key_hashes
    # a collision cannot be caused with 64-bit hashes: keep 1 bit, so half the keys share one
    monkeypatch.setattr(keyindex, "key_hashes", lambda values: real(values) & np.uint64(1))
    for values in ({"a"}, {"b", "e"}, {"zz"}):
        assert lake.lookup(TABLE, "url_id", values).equals(_expected(lake, values))


def test_erasure_leaves_no_row_in_any_sidecar(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    lake.lookup(TABLE, "url_id", ["b"])
    vector = lake.lookup(TABLE, "url_id", ["d"]).column("embedding")[0].values
    secret = np.asarray(vector, np.float32).tobytes()
    files = list((lake.index_root() / TABLE).rglob("lookup-*.arrow"))
    assert any(secret in f.read_bytes() for f in files)
    # an erasure's Delta DELETE rewrites the partition's files, then the indexes are pruned
    lake.delta_table(TABLE).delete("url_id = 'd'")
    assert [p.name.startswith("lookup-") for p in ann.prune(lake, TABLE)] == [True, True]
    assert lake.lookup(TABLE, "url_id", ["d"]).num_rows == 0
    assert lake.lookup(TABLE, "url_id", ["e"]).num_rows == 1
    files = list((lake.index_root() / TABLE).rglob("lookup-*.arrow"))
    assert len(files) == 3 and not any(secret in f.read_bytes() for f in files)


def test_a_partition_of_many_blocks(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    ids = [f"{i:016x}" for i in range(0, 700, 7)]  # 100 rows: 4 blocks of keyindex.BLOCK
    assert len(ids) > 3 * keyindex.BLOCK
    lake.write_partition(TABLE, _rows(ids, "m1", start=5), "s1")
    # scattered blocks, then every block (one run of adjacent blocks, one read)
    for wanted in (set(ids[::9]) | {"nope"}, set(ids)):
        found = lake.lookup(TABLE, "url_id", wanted)
        assert found.equals(_expected(lake, wanted)) and found.num_rows == len(wanted - {"nope"})
    # several partitions searched at once (threads), found in read order
    for p in range(2, 7):
        lake.write_partition(TABLE, _rows(ids[p::7], f"m{p}", start=p), f"s{p}")
    wanted = set(ids[::3])
    assert lake.lookup(TABLE, "url_id", wanted).equals(_expected(lake, wanted))
