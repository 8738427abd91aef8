"""Benchmark the embedding-cache lookup: a slice's url_ids against millions of stored embeddings.

Run from the repository root::

    .venv/bin/python bench/embedding_lookup.py                        # 5 M x 128 (tiny CLIP)
    .venv/bin/python bench/embedding_lookup.py --dim 512              # ViT-B/32's width

It writes ``--rows`` synthetic ``image_embeddings`` rows (the registry's schema with every
column filled as hop 3 fills it, url_ids sorted within each partition as hop 3 writes them)
into ``--partitions`` slices of a lake under ``--out`` (``/tmp/crawl2diffusion-bench``) with
:class:`pipeline.lake.store.Lake` (so the layout is the real one; cached while the arguments
are unchanged). It removes the lake's key sidecars and times the first lookup, which writes
them (``pipeline/lake/keyindex.py``), then, each in a fresh process, looks up ``--lookups``
url_ids of which ``--hits`` fractions are stored, with :meth:`Lake.lookup` (what
``clip_scores`` and ``aesthetic_scores`` call) and, the peer, with a pyarrow dataset filter
(``url_id`` isin, pushed down, all columns). ``--cold`` drops the lake's files from the page
cache before each run (``posix_fadvise``). Prints wall time, the child's peak RSS (``VmHWM``,
imports included) and the ratio to the peer.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CACHE_COLUMNS = None
"""All columns: what ``clip_scores`` asks of the cache."""
MODEL_ID = "tiny-clip@" + "ab" * 32


def build(root: Path, rows: int, partitions: int, dim: int, seed: int, group_rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    from deltalake import WriterProperties

    from pipeline.lake import delta
    from pipeline.lake.store import Lake

    # the store's writer, with another row-group size when asked (a layout experiment)
    delta.WRITER = WriterProperties(compression="ZSTD", max_row_group_size=group_rows)
    from pipeline.lake.tables import PROVENANCE_FIELDS, TableName, embeddings_schema

    lake = Lake(str(root))
    schema = embeddings_schema(dim)
    per = rows // partitions
    rng = np.random.default_rng(seed)
    for p in range(partitions):
        ids = np.sort(rng.integers(0, 2**63, per, dtype=np.int64))
        url_ids = pa.array([f"{i:016x}" for i in ids.tolist()], pa.string())
        vectors = rng.standard_normal((per, dim), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        flat = pa.array(vectors.reshape(-1))
        hexes = rng.integers(0, 2**63, (per, 4), dtype=np.int64)
        sha = [f"{a:016x}{b:016x}{c:016x}{d:016x}" for a, b, c, d in hexes.tolist()]
        table = pa.table(
            {
                "url_id": url_ids,
                "url": pa.array([f"https://img{i % 997}.example/{i:x}.jpg" for i in ids.tolist()]),
                "model_id": pa.array([MODEL_ID] * per),
                "sha256": pa.array(sha),
                "md5": pa.array([s[:32] for s in sha]),
                "pdq": pa.array(sha[::-1]),
                "copy_desc": pa.array(
                    [bytes(r).hex() for r in rng.integers(-127, 128, (per, 432), dtype=np.int8)]
                ),
                "width": pa.array(rng.integers(64, 1024, per, dtype=np.int32)),
                "height": pa.array(rng.integers(64, 1024, per, dtype=np.int32)),
                "n_bytes": pa.array(rng.integers(5000, 500_000, per, dtype=np.int64)),
                "image_format": pa.array(["JPEG"] * per),
                "embedding": pa.FixedSizeListArray.from_arrays(flat, dim),
                **{f.name: pa.nulls(per, f.type) for f in PROVENANCE_FIELDS},
            },
            schema=schema,
        )
        lake.write_partition(TableName.IMAGE_EMBEDDINGS, table, f"BENCH-2026-01_{p:05d}")
        print(f"  wrote partition {p + 1}/{partitions}", end="\r", flush=True)
    print()


def queries(root: Path, lookups: int, hits: float, seed: int) -> list[str]:
    """``lookups`` url_ids, ``hits`` of them stored (drawn uniformly from every partition)."""
    import numpy as np

    from pipeline.lake.store import Lake
    from pipeline.lake.tables import TableName

    rng = np.random.default_rng(seed + 1)
    stored = Lake(str(root)).read(TableName.IMAGE_EMBEDDINGS, columns=["url_id"])["url_id"]
    n_hits = round(lookups * hits)
    found = stored.take(rng.choice(len(stored), n_hits, replace=False)).to_pylist()
    missing = [f"{i:016x}" for i in rng.integers(0, 2**63, lookups - n_hits).tolist()]
    assert not set(missing) & set(found)
    return found + missing


def child(root: str, method: str, ids_file: str) -> None:
    """One lookup in this process; prints JSON (seconds, rows found, peak RSS)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipeline.lake.store import Lake
    from pipeline.lake.tables import TableName

    ids = json.loads(Path(ids_file).read_text())
    lake = Lake(root)
    started = time.perf_counter()
    if method == "lookup":
        found = lake.lookup(TableName.IMAGE_EMBEDDINGS, "url_id", ids, columns=CACHE_COLUMNS)
    else:  # a pushed-down pyarrow dataset filter over every partition
        dataset = lake.delta_table(TableName.IMAGE_EMBEDDINGS).to_pyarrow_dataset()
        found = dataset.to_table(
            columns=CACHE_COLUMNS, filter=pc.field("url_id").isin(pa.array(ids))
        )
    seconds = time.perf_counter() - started
    rows = 0 if found is None else found.num_rows
    hwm = next(
        line for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmHWM")
    )  # fmt: skip
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_mb": int(hwm.split()[1]) / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--partitions", type=int, default=100)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--row-group-rows", type=int, default=65536, help="the store's default")
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--hits", type=float, nargs="+", default=[0.0, 0.01, 1.0])
    parser.add_argument("--methods", nargs="+", default=["dataset_filter", "lookup"])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--keep-sidecars", action="store_true", help="reuse the sidecars of an earlier run"
    )
    parser.add_argument(
        "--cold", action="store_true", help="evict the lake's files from the page cache first"
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/crawl2diffusion-bench"))
    parser.add_argument("--child", nargs=3, metavar=("ROOT", "METHOD", "IDS"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    layout = f"{args.rows}-{args.partitions}-{args.dim}-{args.seed}"
    if args.row_group_rows != 65536:
        layout += f"-rg{args.row_group_rows}"
    root = out / f"embeddings-{layout}"
    if not (root / ".done").exists():
        print(f"writing {args.rows:,} embeddings x {args.dim} in {args.partitions} partitions")
        started = time.perf_counter()
        build(root, args.rows, args.partitions, args.dim, args.seed, args.row_group_rows)
        (root / ".done").write_text("")
        print(f"  {time.perf_counter() - started:.1f} s")
    size = sum(f.stat().st_size for f in root.rglob("*.parquet")) / 2**20
    print(f"lake: {root} ({size:,.0f} MiB of Parquet)")
    if not args.keep_sidecars:
        shutil.rmtree(root / "_indexes", ignore_errors=True)
    first = run_child(root, "lookup", out / f"lookup-ids-{layout}-none.json", [])
    sidecars = sum(f.stat().st_size for f in (root / "_indexes").rglob("lookup-*")) / 2**20
    print(
        f"first lookup ({'reuses' if args.keep_sidecars else 'writes'} {args.partitions} "
        f"sidecars, {sidecars:,.0f} MiB): {first['seconds']:.1f} s, "
        f"peak RSS {first['peak_mb']:,.0f} MB"
    )
    for hits in args.hits:
        ids = queries(root, args.lookups, hits, args.seed)
        best = {}
        for method in args.methods:
            ids_file = out / f"lookup-ids-{layout}-{args.lookups}-{hits}.json"
            runs = [run_child(root, method, ids_file, ids, args.cold) for _ in range(args.repeat)]
            best[method] = min(runs, key=lambda r: r["seconds"])
            times = ", ".join(f"{r['seconds']:.3f}" for r in runs)
            ratio = ""
            if method != "dataset_filter" and "dataset_filter" in best:
                ratio = f", {best['dataset_filter']['seconds'] / best[method]['seconds']:.0f}x"
            print(
                f"{args.lookups:,} lookups, {hits:.0%} stored, {method:>14}: "
                f"{best[method]['seconds']:.3f} s (runs {times}), "
                f"{best[method]['rows']:,} rows, peak RSS {max(r['peak_mb'] for r in runs):,.0f} MB"
                f"{ratio}"
            )


def evict(root: Path) -> None:
    """Drop the lake's files (Parquet, Delta log, sidecars) from the page cache."""
    for path in root.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def run_child(root: Path, method: str, ids_file: Path, ids: list[str], cold: bool = False) -> dict:
    """One lookup of ``ids`` in a fresh process (``cold``: the lake's files out of the page
    cache): its seconds, rows and peak RSS."""
    ids_file.write_text(json.dumps(ids))
    if cold:
        evict(root)
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(root), method, str(ids_file)],
        capture_output=True, text=True, check=True, env={**os.environ},
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
