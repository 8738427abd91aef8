"""Hop results scored against the synthetic web's truth (``pages.parquet``)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

PAGES = "pages.parquet"


def caption_languages(pairs: pa.Table, web_root: str | Path) -> tuple[list, list]:
    """``(predicted, truth)`` languages of the kept pairs whose alt is a clean caption of its
    image (``alt_kind`` ``match_*`` in the truth), matched by crawl, page, URL and raw alt."""
    pages = Path(web_root) / PAGES
    if not pages.exists():
        return [], []
    kept = pairs.filter(pairs.column("kept")).select(
        ["crawl_id", "page_url", "url", "alt", "language"]
    )
    con = duckdb.connect()
    con.register("kept", kept)
    rows = con.sql(
        f"""
        SELECT k.language, t.alt_lang
        FROM kept k
        JOIN (SELECT DISTINCT crawl_id, page_url, url_resolved, alt, alt_lang
              FROM read_parquet('{pages.as_posix()}') WHERE alt_kind LIKE 'match_%') t
          ON k.crawl_id = t.crawl_id AND k.page_url = t.page_url
         AND k.url = t.url_resolved AND k.alt = t.alt
        """
    ).fetchall()
    return [r[0] for r in rows], [r[1] for r in rows]
