"""Record-level lineage: answer "where did this URL go, and why?" from the lake.

A scan of the lake per question costs seconds at a few million links, so
:class:`LineageIndex` answers from a copy of the traced columns in a DuckDB file, sorted by
a hash of the image URL: a trace reads one row group, DuckDB's min/max zone maps skip the
others. The file is named after the lake state it was built from (the published partition
files, each with a unique name); when that state changes (a new or re-run partition), a new
index is built into a temporary file and renamed into place, and the older ones are removed.
Published index files never change, readers open them read-only, and each is written by one
connection only (DuckDB is single-writer). Lake files are read as Arrow datasets on the
lake's fsspec filesystem, so local and ``s3://`` lakes work alike without DuckDB extensions.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import fsspec.core
import orjson
import pyarrow.dataset as ds

from pipeline.lake import Lake
from pipeline.urls import normalize_url

INDEX_FORMAT = 1
"""Bump when the indexed columns or keys change: every index is then rebuilt."""

SIGHTING_COLUMNS = (
    "pair_id, crawl_id, wat_path, wat_record_offset, wat_record_id, warc_record_id, page_url, "
    "page_date, warc_filename, warc_offset, url_raw, url, alt, link_index"
)
DECISION_COLUMNS = (
    "pair_id, url_id, page_url, alt, text, language, language_score, kept, drop_reason, "
    "crawl_id, wat_path, wat_record_offset, link_index"
)
TRACED_TABLES = {
    "wat_image_links": SIGHTING_COLUMNS,
    "alt_text_pairs": DECISION_COLUMNS + ", url",
}
ORDER = "ORDER BY crawl_id, wat_path, wat_record_offset, link_index"
KEYS = {"url": "url_key", "pair_id": "pair_key", "page_url": "page_key"}
"""Looked-up column -> its 64-bit DuckDB ``hash``, stored beside it; the tables are sorted by
``url_key``, so a trace by URL reads one row group, by pair or page a column of integers."""


@dataclass
class Journey:
    """Everything the lake knows about one URL (or pair, or page)."""

    query: dict[str, str]
    sightings: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def seen(self) -> bool:
        return bool(self.sightings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "seen": self.seen,
            "sightings": self.sightings,
            "decisions": self.decisions,
        }

    def story(self) -> str:
        """The journey as readable text, hop by hop."""
        what = ", ".join(f"{k} {v}" for k, v in self.query.items())
        if not self.seen:
            return f"{what}: never seen in any crawl processed into this lake."
        pages = {s["page_url"] for s in self.sightings}
        crawls = sorted({s["crawl_id"] for s in self.sightings})
        lines = [
            f"{what}: found {len(self.sightings)} time(s) on {len(pages)} page(s) "
            f"in crawl(s) {', '.join(crawls)}.",
            "",
            "1. Common Crawl WAT records:",
        ]
        for s in self.sightings[:50]:
            alt = "no alt attribute" if s["alt"] is None else f"alt {s['alt']!r}"
            lines.append(
                f"   - {s['crawl_id']} {s['wat_path']} @ {s['wat_record_offset']}: "
                f"page {s['page_url']} ({s['page_date']}), {alt}; "
                f"source WARC {s['warc_filename']} @ {s['warc_offset']}"
            )
        if len(self.sightings) > 50:
            lines.append(f"   ... and {len(self.sightings) - 50} more")
        lines.append("2. Alt-text parsing:")
        if not self.decisions:
            lines.append("   - not processed yet")
        for d in self.decisions:
            if d["kept"]:
                lang = d["language"] or "no language"
                lines.append(
                    f"   - pair {d['pair_id']} on {d['page_url']}: kept as {d['text']!r} "
                    f"({lang}, score {d['language_score']:.2f})"
                )
            else:
                lines.append(
                    f"   - pair {d['pair_id']} on {d['page_url']}: dropped ({d['drop_reason']})"
                )
        return "\n".join(lines)


class LineageIndex:
    """The lake's traced tables in a DuckDB file sorted by URL hash, rebuilt when stale.

    The file is named after the lake state it holds (:func:`fingerprint`), so an index file
    never changes once published: a new lake state gets a new file, and older files are
    removed. ``index_dir`` defaults to :func:`default_index_dir`. The index is a snapshot
    of the lake taken when the object is made.
    """

    def __init__(self, lake: Lake, index_dir: str | Path | None = None) -> None:
        self.lake = lake
        self.dir = Path(index_dir) if index_dir else default_index_dir(lake)
        self.rebuilt = False
        for attempt in range(3):
            self.files = {table: lake.files(table) for table in TRACED_TABLES}
            self.fingerprint = fingerprint(self.files)
            self.path = self.dir / f"lineage-{self.fingerprint[:24]}.duckdb"
            if self.path.exists() or not any(self.files.values()):
                break
            try:
                self._build()
            except Exception:
                # a partition re-published during the build deletes a file it was reading
                if attempt == 2 or self.files == {t: lake.files(t) for t in TRACED_TABLES}:
                    raise
            else:
                self.rebuilt = True
                break
        if self.path.exists():
            self.con = duckdb.connect(str(self.path), read_only=True)
        else:  # nothing published yet: write nothing into the lake
            self.con = duckdb.connect()
        self.tables = {
            name
            for (name,) in self.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        } & set(TRACED_TABLES)

    def _build(self) -> None:
        """Copy the traced columns of the published files into a new index file, sorted by
        ``url_key``; publish it with an atomic rename, then remove older index files."""
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{self.path.stem}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            with duckdb.connect(str(tmp)) as con:
                for table, columns in TRACED_TABLES.items():
                    if not self.files[table]:
                        continue
                    paths = [self._fs_path(uri) for uri in self.files[table]]
                    source = ds.dataset(paths, format="parquet", filesystem=self.lake.fs)
                    con.register("source", source)
                    keys = ", ".join(f"hash({col}) AS {key}" for col, key in KEYS.items())
                    con.execute(
                        f"CREATE TABLE {table} AS SELECT {keys}, {columns} FROM source "
                        "ORDER BY url_key"
                    )
                    con.unregister("source")
                con.execute(
                    "CREATE TABLE lineage_meta AS "
                    "SELECT ? AS fingerprint, ? AS lake, ? AS files, ? AS built_at",
                    [
                        self.fingerprint,
                        self.lake.root,
                        orjson.dumps(self.files).decode(),
                        datetime.now(UTC).isoformat(),
                    ],
                )
                con.execute("CHECKPOINT")
            os.replace(tmp, self.path)
        finally:
            for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
                leftover.unlink(missing_ok=True)
        # Older indexes go (readers that have one open keep reading it), and so do builds
        # that crashed: temporary files nobody has written to for an hour.
        for old in self.dir.glob("lineage-*.duckdb"):
            if old != self.path:
                old.unlink(missing_ok=True)
        for crashed in self.dir.glob(".lineage-*.tmp*"):
            with contextlib.suppress(OSError):
                if time.time() - crashed.stat().st_mtime > 3600:
                    crashed.unlink()

    def _fs_path(self, uri: str) -> str:
        return uri.split("://", 1)[1] if "://" in uri else uri

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        cursor = self.con.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _journey(self, query: dict[str, str], column: str, values: list[str]) -> Journey:
        """Rows whose ``column`` is one of ``values``, found through its hash column: one
        lookup per value (an ``IN`` list would be pruned to its min..max range of hashes,
        which spans most of the table)."""
        journey = Journey(query)
        values = list(dict.fromkeys(values))
        params = [v for value in values for v in (value, value)]

        def select(table: str, columns: str) -> str:
            one = f"SELECT {columns} FROM {table} WHERE {KEYS[column]} = hash(?) AND {column} = ?"
            return " UNION ALL ".join([one] * len(values)) + f" {ORDER}"

        if "wat_image_links" in self.tables:
            journey.sightings = self._rows(select("wat_image_links", SIGHTING_COLUMNS), params)
        if "alt_text_pairs" in self.tables and journey.sightings:
            journey.decisions = self._rows(select("alt_text_pairs", DECISION_COLUMNS), params)
        return journey

    def trace(self, url: str) -> Journey:
        """The journey of an image URL (as written, resolved, or in normalized form)."""
        try:
            normalized = normalize_url(url)
        except ValueError:
            normalized = url
        return self._journey({"url": url}, "url", [url, normalized])

    def trace_pair(self, pair_id: str) -> Journey:
        return self._journey({"pair_id": pair_id}, "pair_id", [pair_id])

    def trace_page(self, page_url: str) -> Journey:
        return self._journey({"page_url": page_url}, "page_url", [page_url])


def fingerprint(files: dict[str, list[str]]) -> str:
    """Identity of a lake state: each table's published files (partition directory and the
    file's unique name, so a moved lake keeps its index), the index format, DuckDB's version
    (its ``hash`` and file format may change with it)."""
    state = {
        "format": INDEX_FORMAT,
        "duckdb": duckdb.__version__,
        "files": {t: sorted("/".join(u.rsplit("/", 2)[-2:]) for u in f) for t, f in files.items()},
    }
    return hashlib.sha256(orjson.dumps(state, option=orjson.OPT_SORT_KEYS)).hexdigest()


def default_index_dir(lake: Lake) -> Path:
    """``<lake>/_lineage`` for a local lake; for a remote one (DuckDB needs a local file),
    ``$XDG_CACHE_HOME/crawl2diffusion/lineage/<hash of the lake root>``."""
    if lake.protocol in ("file", "local"):
        return Path(fsspec.core.strip_protocol(lake.root)) / "_lineage"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return (
        cache / "crawl2diffusion" / "lineage" / hashlib.sha256(lake.root.encode()).hexdigest()[:16]
    )
