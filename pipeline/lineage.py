"""Record-level lineage: DuckDB views over the lake that answer "where did this URL go, and why?".

Views are built over each table's published files (Arrow datasets on the lake's fsspec
filesystem, so local and ``s3://`` lakes work alike without DuckDB extensions). One connection
per :class:`LineageIndex`; it only reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow.dataset as ds

from pipeline.lake import Lake
from pipeline.urls import normalize_url

TRACED_TABLES = ("wat_image_links", "alt_text_pairs")


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
    """DuckDB views over the lake's published partitions."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.con = duckdb.connect()
        self.tables: set[str] = set()
        for table in TRACED_TABLES:
            files = [self._path(uri) for uri in lake.files(table)]
            if not files:
                continue
            dataset = ds.dataset(files, format="parquet", filesystem=lake.fs)
            self.con.register(f"{table}_ds", dataset)
            self.con.execute(f"CREATE VIEW {table} AS SELECT * FROM {table}_ds")
            self.tables.add(table)

    def _path(self, uri: str) -> str:
        return uri.split("://", 1)[1] if "://" in uri else uri

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        cursor = self.con.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _journey(self, query: dict[str, str], where: str, params: list[Any]) -> Journey:
        journey = Journey(query)
        if "wat_image_links" in self.tables:
            journey.sightings = self._rows(
                "SELECT pair_id, crawl_id, wat_path, wat_record_offset, wat_record_id, "
                "warc_record_id, page_url, page_date, warc_filename, warc_offset, url_raw, url, "
                f"alt, link_index FROM wat_image_links WHERE {where} "
                "ORDER BY crawl_id, wat_path, wat_record_offset, link_index",
                params,
            )
        if "alt_text_pairs" in self.tables and journey.sightings:
            journey.decisions = self._rows(
                "SELECT pair_id, url_id, page_url, alt, text, language, language_score, kept, "
                "drop_reason, crawl_id, wat_path, wat_record_offset, link_index "
                f"FROM alt_text_pairs WHERE {where} "
                "ORDER BY crawl_id, wat_path, wat_record_offset, link_index",
                params,
            )
        return journey

    def trace(self, url: str) -> Journey:
        """The journey of an image URL (as written, resolved, or in normalized form)."""
        try:
            normalized = normalize_url(url)
        except ValueError:
            normalized = url
        return self._journey({"url": url}, "url IN (?, ?)", [url, normalized])

    def trace_pair(self, pair_id: str) -> Journey:
        return self._journey({"pair_id": pair_id}, "pair_id = ?", [pair_id])

    def trace_page(self, page_url: str) -> Journey:
        return self._journey({"page_url": page_url}, "page_url = ?", [page_url])
