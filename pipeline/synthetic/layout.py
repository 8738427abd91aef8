"""Names and dates of the Common-Crawl-like layout: crawls, segments, WARC/WAT files."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

_CRAWL_RE = re.compile(r"^(?P<prefix>.+)-(?P<year>\d{4})-(?P<week>\d{2})$")


def crawl_start(crawl_id: str) -> dt.datetime:
    """When a crawl started: Monday of the ISO week in its id (e.g. SYNTH-2026-10)."""
    m = _CRAWL_RE.match(crawl_id)
    if m and 1 <= int(m["week"]) <= 52:
        day = dt.date.fromisocalendar(int(m["year"]), int(m["week"]), 1)
    else:
        offset = int(hashlib.sha1(crawl_id.encode()).hexdigest(), 16) % 365
        day = dt.date(2026, 1, 1) + dt.timedelta(days=offset)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def crawl_prefix(crawl_id: str) -> str:
    """The file-name prefix of a crawl ("CC-MAIN" for CC-MAIN-2024-22)."""
    m = _CRAWL_RE.match(crawl_id)
    return m["prefix"] if m else crawl_id


def warc_date(t: dt.datetime) -> str:
    """2026-03-02T00:00:07Z"""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def http_date(t: dt.datetime) -> str:
    """Mon, 02 Mar 2026 00:00:07 GMT"""
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return f"{days[t.weekday()]}, {t.day:02d} {months[t.month - 1]} {t:%Y %H:%M:%S} GMT"


def file_start(crawl_id: str, index: int) -> dt.datetime:
    """When the crawler began writing WARC file `index`."""
    return crawl_start(crawl_id) + dt.timedelta(minutes=37 * index)


def warc_filename(crawl_id: str, index: int) -> str:
    """SYNTH-20260302000000-20260302030000-00000.warc.gz"""
    start = file_start(crawl_id, index)
    end = start + dt.timedelta(hours=3)
    return f"{crawl_prefix(crawl_id)}-{start:%Y%m%d%H%M%S}-{end:%Y%m%d%H%M%S}-{index:05d}.warc.gz"


def segment_name(crawl_id: str, file_index: int, files: int, segments: int) -> str:
    """The segment a file belongs to, named like CC's (<epoch ms>.<nn>)."""
    seg = file_index * segments // files
    return f"{int(crawl_start(crawl_id).timestamp() * 1000)}.{seg:02d}"


def warc_relpath(crawl_id: str, index: int, files: int, segments: int) -> str:
    """Path of a WARC file relative to the web root (as CC's are to data.commoncrawl.org)."""
    seg = segment_name(crawl_id, index, files, segments)
    return f"crawl-data/{crawl_id}/segments/{seg}/warc/{warc_filename(crawl_id, index)}"


def wat_relpath(crawl_id: str, index: int, files: int, segments: int) -> str:
    """Path of the WAT file derived from WARC file `index`."""
    seg = segment_name(crawl_id, index, files, segments)
    name = warc_filename(crawl_id, index).removesuffix(".gz") + ".wat.gz"
    return f"crawl-data/{crawl_id}/segments/{seg}/wat/{name}"


def collinfo(crawl_ids: tuple[str, ...], files: int) -> list[dict[str, object]]:
    """Entries of collinfo.json, newest crawl first, with Common Crawl's field names."""
    out: list[dict[str, object]] = []
    for crawl_id in reversed(crawl_ids):
        start = crawl_start(crawl_id)
        end = file_start(crawl_id, files - 1) + dt.timedelta(hours=3)
        out.append(
            {
                "id": crawl_id,
                "name": f"{crawl_id} synthetic crawl ({start:%B %Y})",
                "timegate": None,
                "cdx-api": None,
                "from": start.strftime("%Y-%m-%dT%H:%M:%S"),
                "to": end.strftime("%Y-%m-%dT%H:%M:%S"),
                "synthetic": True,
            }
        )
    return out
