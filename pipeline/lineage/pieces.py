"""The lineage index's pieces: one sorted Parquet file per Delta data file, built once.

A Delta data file never changes, so its index piece never does either: the traced columns
of its rows, the 64-bit DuckDB ``hash`` of each looked-up column, and ``_file`` (the data
file's path in the commit log), sorted by the table's first key hash in small row groups, so
a lookup by hash reads one row group per piece; bloom filters serve the other keys. A new or
re-written partition adds pieces for its new files only: merging costs time in proportion to
its rows. Whether a row is current, and since when, is not in the piece: it comes from the
commit log at query time (:func:`pipeline.lake.history.file_lifetimes`).

Pieces live under ``<index dir>/v<format>-duckdb<version>/<table>/`` and are named after the
table's Delta id and a hash of the data file's path; each is written to a temporary name and
renamed into place, so readers never see half a piece and two builders of one piece write the
same bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb

from pipeline.lake.history import file_rows
from pipeline.lake.store import Lake

ROW_GROUP = 8192
"""Rows per Parquet row group of a piece: a lookup by the sort key reads one per piece."""
DICTIONARY_LIMIT = 100_000
BLOOM_FPP = 0.01
"""Dictionary-encoded columns get Parquet bloom filters (1% false positives), so a lookup by
a key the piece is not sorted by (a page, a pair) skips the row groups that lack it: 5x
faster page traces at 5 M links for 14% more bytes."""


def generation_dir(index_dir: Path, index_format: int) -> Path:
    """Pieces of this index format and DuckDB version (its ``hash`` may change with it)."""
    return index_dir / f"v{index_format}-duckdb{duckdb.__version__}"


def piece_path(generation: Path, table: str, table_id: str, data_file: str) -> Path:
    digest = hashlib.sha256(data_file.encode()).hexdigest()[:24]
    return generation / table / f"{table_id[:12]}-{digest}.parquet"


def ensure_pieces(
    lake: Lake,
    generation: Path,
    table: str,
    table_id: str,
    version: int,
    data_files: Sequence[str],
    columns: Sequence[str],
    keys: Mapping[str, str],
) -> tuple[dict[str, Path], int]:
    """Each data file's piece (built if missing) and how many were built now. ``keys`` maps
    each looked-up column to its hash column; the first one orders the piece."""
    pieces = {f: piece_path(generation, table, table_id, f) for f in data_files}
    missing = [f for f, piece in pieces.items() if not piece.exists()]
    if missing:
        (generation / table).mkdir(parents=True, exist_ok=True)
        hashes = ", ".join(f'hash("{c}") AS {k}' for c, k in keys.items())
        quoted = ", ".join(f'"{c}"' for c in columns)
        order = next(iter(keys.values()))
        with duckdb.connect() as con:
            for data_file, rows in file_rows(lake, table, missing, list(columns), version):
                target = pieces[data_file]
                tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
                con.register("source", rows)
                try:
                    con.execute(
                        f"COPY (SELECT {hashes}, {quoted}, ? AS _file FROM source "
                        f"ORDER BY {order}) TO '{tmp}' "
                        f"(FORMAT parquet, ROW_GROUP_SIZE {ROW_GROUP}, COMPRESSION zstd, "
                        f"DICTIONARY_SIZE_LIMIT {DICTIONARY_LIMIT}, "
                        f"BLOOM_FILTER_FALSE_POSITIVE_RATIO {BLOOM_FPP})",
                        [data_file],
                    )
                    tmp.replace(target)
                finally:
                    con.unregister("source")
                    tmp.unlink(missing_ok=True)
    return pieces, len(missing)


def remove_stale(index_dir: Path, generation: Path, table_ids: Mapping[str, str]) -> None:
    """Remove other generations, pieces of tables re-created under a new id, the single-file
    indexes of earlier formats, and temporary files of builds that crashed an hour ago."""
    for old in index_dir.glob("v*-duckdb*"):
        if old.is_dir() and old != generation:
            shutil.rmtree(old, ignore_errors=True)
    for old in index_dir.glob("lineage-*.duckdb"):
        old.unlink(missing_ok=True)
    for table, table_id in table_ids.items():
        for piece in (generation / table).glob("*.parquet"):
            if not piece.name.startswith(table_id[:12]):
                piece.unlink(missing_ok=True)
    for crashed in generation.glob("*/.*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - crashed.stat().st_mtime > 3600:
                crashed.unlink()
