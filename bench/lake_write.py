"""Benchmark the lake: write and read one 100k-row partition, Delta (the store) vs the old path.

Run from the repository root::

    .venv/bin/python bench/lake_write.py                  # 100k rows, best of 5
    .venv/bin/python bench/lake_write.py --stream-mib 1024

The rows have hop 1's schema (``wat_image_links``), deterministic and about as long as real
ones. "Delta" is :class:`pipeline.lake.store.Lake` (``write_partition``, then ``read`` of the
partition). "Parquet" is the lake before Delta, reproduced here: one zstd Parquet file under a
unique name, then a ``_MANIFEST.json`` published by ``os.replace``, and the previous file
deleted; read by following the manifest. Each write replaces the same partition (a re-run).
Prints the best time of each, and Delta's time over Parquet's.

``--stream-mib N`` also streams N MiB of incompressible rows through ``partition_writer`` in a
fresh process per size (N/8 and N) and prints each one's peak RSS: bounded memory means the
two peaks are about the same.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.lake.store import Lake
from pipeline.lake.tables import IMAGE_LINK_SCHEMA, TableName

KEY = "CC-MAIN-2026-05_00000"


def links(rows: int, seed: int = 2026) -> pa.Table:
    """``rows`` hop-1 rows: 20 links a page, 1000 sites, an alt on most links."""
    rng = np.random.default_rng(seed)
    page = np.arange(rows) // 20
    site = rng.integers(0, 1000, rows)
    image = rng.integers(0, rows // 4, rows)
    page_url = [f"https://site{s}.example/page/{p}.html" for s, p in zip(site, page, strict=True)]
    url = [f"https://site{s}.example/img/{i}.jpg" for s, i in zip(site, image, strict=True)]
    words = np.array(["a", "red", "blue", "house", "dog", "on", "the", "beach", "photo", "of"])
    alt = [" ".join(words[rng.integers(0, 10, 6)]) if i % 7 else None for i in range(rows)]
    data = {
        "pair_id": [f"{h:016x}" for h in rng.integers(0, 2**62, rows)],
        "crawl_id": ["CC-MAIN-2026-05"] * rows,
        "wat_path": [f"crawl-data/CC-MAIN-2026-05/wat/{p // 5000:05d}.warc.wat.gz" for p in page],
        "wat_record_offset": (page * 4096).tolist(),
        "wat_record_id": [f"<urn:uuid:{p:032x}>" for p in page],
        "warc_record_id": [f"<urn:uuid:{p + 1:032x}>" for p in page],
        "page_url": page_url,
        "page_date": ["2026-01-15T10:00:00Z"] * rows,
        "warc_filename": [f"crawl-data/CC-MAIN-2026-05/warc/{p // 5000:05d}.warc.gz" for p in page],
        "warc_offset": (page * 65536).tolist(),
        "base_url": [None] * rows,
        "page_robots": [None] * rows,
        "link_index": (np.arange(rows) % 20).astype(np.int32).tolist(),
        "url_raw": [u.split(".example", 1)[1] for u in url],
        "url": url,
        "alt": alt,
    }
    return pa.Table.from_pydict(data, schema=IMAGE_LINK_SCHEMA)


def parquet_write(root: Path, data: pa.Table) -> None:
    """The pre-Delta store's write: unique file, manifest by ``os.replace``, old file gone."""
    directory = root / TableName.WAT_IMAGE_LINKS / f"partition={KEY}"
    directory.mkdir(parents=True, exist_ok=True)
    name = f"part-{uuid.uuid4().hex[:8]}.parquet"
    with pq.ParquetWriter(directory / name, data.schema, compression="zstd") as writer:
        writer.write_table(data)
    manifest = directory / "_MANIFEST.json"
    previous = orjson.loads(manifest.read_bytes()) if manifest.exists() else None
    rows = pq.ParquetFile(directory / name).metadata.num_rows
    tmp = directory / f".{manifest.name}.{uuid.uuid4().hex[:8]}"
    tmp.write_bytes(orjson.dumps({"partition": KEY, "file": name, "rows": rows}))
    os.replace(tmp, manifest)
    if previous:
        (directory / previous["file"]).unlink(missing_ok=True)


def parquet_read(root: Path) -> pa.Table:
    directory = root / TableName.WAT_IMAGE_LINKS / f"partition={KEY}"
    manifest = orjson.loads((directory / "_MANIFEST.json").read_bytes())
    return pq.read_table(directory / manifest["file"])


def best(repeats: int, step: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return min(times)


def compare(rows: int, repeats: int) -> None:
    data = links(rows)
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(str(Path(tmp) / "delta"))
        old = Path(tmp) / "parquet"
        results = {
            "write": (
                best(repeats, lambda: lake.write_partition(TableName.WAT_IMAGE_LINKS, data, KEY)),
                best(repeats, lambda: parquet_write(old, data)),
            ),
            "read": (
                best(repeats, lambda: lake.read(TableName.WAT_IMAGE_LINKS, [KEY])),
                best(repeats, lambda: parquet_read(old)),
            ),
        }
        assert lake.read(TableName.WAT_IMAGE_LINKS, [KEY]).equals(parquet_read(old))
    print(f"{rows} rows ({data.nbytes / 2**20:.1f} MiB in Arrow), best of {repeats}:")
    print(f"{'':6s} {'delta_s':>9s} {'parquet_s':>9s} {'ratio':>7s}")
    for what, (delta_s, parquet_s) in results.items():
        print(f"{what:6s} {delta_s:9.3f} {parquet_s:9.3f} {delta_s / parquet_s:7.2f}")


def stream(mib: int) -> None:
    """(Child) stream ``mib`` MiB of random text through ``partition_writer``; print peak RSS."""
    schema = pa.schema([("text", pa.string())])
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(tmp)
        started = time.perf_counter()
        with lake.partition_writer("t", KEY, schema) as writer:
            for _ in range(mib):  # 1 MiB a batch: 1024 random hex strings of 1 KiB
                blob = rng.integers(0, 256, 512 * 1024, dtype=np.uint8).tobytes().hex()
                text = [blob[i * 1024 : (i + 1) * 1024] for i in range(1024)]
                writer.write_batch(pa.record_batch([pa.array(text)], schema=schema))
        seconds = time.perf_counter() - started
        rows = lake.manifest("t", KEY)["rows"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"stream {mib:5d} MiB ({rows} rows): {seconds:6.1f} s, peak RSS {peak:6.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stream-mib", type=int, default=0)
    parser.add_argument("--child-stream", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_stream:
        stream(args.child_stream)
        return
    compare(args.rows, args.repeats)
    if args.stream_mib:
        for mib in (max(1, args.stream_mib // 8), args.stream_mib):
            subprocess.run([sys.executable, __file__, "--child-stream", str(mib)], check=True)


if __name__ == "__main__":
    main()
