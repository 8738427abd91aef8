"""Hop 1: read Common Crawl WAT files and emit every ``IMG@/src`` link with its provenance.

Streaming: members are inflated one at a time (ISA-L, :mod:`pipeline.gzip_members`), WARC
headers are parsed by FastWARC (quirks mode for LF-only files), each JSON payload is parsed
once with orjson. Memory is bounded by one record plus one output batch. A malformed record is
counted by reason and skipped; a file that cannot be opened raises :class:`WatOpenError`.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import urljoin

import fsspec
import orjson
import pyarrow as pa
from fastwarc.warc import WarcRecord, WarcRecordType

from pipeline.gzip_members import iter_members
from pipeline.keys import pair_id

IMAGE_LINK_SCHEMA = pa.schema(
    [
        pa.field("pair_id", pa.string()),
        pa.field("crawl_id", pa.string()),
        pa.field("wat_path", pa.string()),
        pa.field("wat_record_offset", pa.int64()),
        pa.field("wat_record_id", pa.string()),
        pa.field("warc_record_id", pa.string()),
        pa.field("page_url", pa.string()),
        pa.field("page_date", pa.string()),
        pa.field("warc_filename", pa.string()),
        pa.field("warc_offset", pa.int64()),
        pa.field("base_url", pa.string()),
        pa.field("page_robots", pa.string()),
        pa.field("link_index", pa.int32()),
        pa.field("url_raw", pa.string()),
        pa.field("url", pa.string()),
        pa.field("alt", pa.string()),
    ]
)
"""Hop-1 columns: one row per ``IMG@/src`` link. ``url`` is ``url_raw`` resolved against
``base_url`` or ``page_url``; ``alt`` is null when the tag had no alt attribute;
``pair_id`` is :func:`pipeline.keys.pair_id` of (url, alt)."""

RECORD_ERRORS = (
    "gzip_error",
    "truncated_member",
    "bad_warc_header",
    "content_length_mismatch",
    "not_utf8",
    "bad_json",
    "missing_keys",
)


class WatOpenError(RuntimeError):
    """A WAT file could not be opened or read at all."""


@dataclass
class ExtractStats:
    """What one extraction read, kept and failed."""

    files_read: int = 0
    bytes_read: int = 0
    records_read: int = 0
    metadata_records: int = 0
    records_with_html: int = 0
    image_links: int = 0
    records_failed: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def merge(self, other: ExtractStats) -> None:
        """Add another file's figures to these."""
        self.files_read += other.files_read
        self.bytes_read += other.bytes_read
        self.records_read += other.records_read
        self.metadata_records += other.metadata_records
        self.records_with_html += other.records_with_html
        self.image_links += other.image_links
        self.records_failed.update(other.records_failed)
        self.seconds += other.seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "files_read": self.files_read,
            "bytes_read": self.bytes_read,
            "records_read": self.records_read,
            "metadata_records": self.metadata_records,
            "records_with_html": self.records_with_html,
            "image_links": self.image_links,
            "records_failed": sum(self.records_failed.values()),
            "records_failed_by_reason": dict(sorted(self.records_failed.items())),
            "seconds": round(self.seconds, 3),
        }


def open_wat(path: str, storage_options: dict[str, Any] | None = None) -> BinaryIO:
    """Open a local path, http(s) URL or ``s3://`` URL for streaming binary reads."""
    try:
        return fsspec.open(path, "rb", **(storage_options or {})).open()
    except Exception as exc:  # fsspec raises many kinds; the caller needs the path
        raise WatOpenError(f"cannot open WAT file {path!r}: {exc}") from exc


class _Columns:
    """Column buffers for one output batch."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {name: [] for name in IMAGE_LINK_SCHEMA.names}

    def __len__(self) -> int:
        return len(self.cols["url"])

    def to_batch(self) -> pa.RecordBatch:
        batch = pa.RecordBatch.from_pydict(self.cols, schema=IMAGE_LINK_SCHEMA)
        self.__init__()
        return batch


def _parse_record(data: bytes) -> tuple[WarcRecord, bytes] | str:
    """Parse one inflated member as a WARC record; return (record, payload) or an error reason."""
    try:
        record = WarcRecord.from_bytes(data)
        if record.record_type == WarcRecordType.unknown:
            record = WarcRecord.from_reader(io.BytesIO(data), quirks_mode=True)
        payload = record.reader.read()
    except Exception:
        return "bad_warc_header"
    if record.record_type == WarcRecordType.unknown:
        return "bad_warc_header"
    try:
        declared = int(record.headers.get("Content-Length", "-1"))
    except ValueError:
        return "bad_warc_header"
    if len(payload) != declared or not data.rstrip().endswith(payload.rstrip()):
        return "content_length_mismatch"
    return record, payload


def _robots(head: dict[str, Any]) -> str | None:
    """The page's robots meta content (all of them, comma-joined), or None."""
    values = [
        meta.get("content") or ""
        for meta in head.get("Metas") or ()
        if isinstance(meta, dict) and str(meta.get("name", "")).lower() == "robots"
    ]
    return ", ".join(values) if values else None


def _resolve(url_raw: str, base: str) -> str:
    if url_raw.startswith(("http://", "https://")):
        return url_raw
    try:
        return urljoin(base, url_raw)
    except ValueError:
        return url_raw


def iter_image_link_batches(
    path: str,
    crawl_id: str = "",
    *,
    stats: ExtractStats | None = None,
    batch_size: int = 65_536,
    storage_options: dict[str, Any] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream one WAT file as RecordBatches of :data:`IMAGE_LINK_SCHEMA`.

    ``stats`` (if given) is filled as the file is read; malformed records are counted in
    ``stats.records_failed`` by reason and skipped.
    """
    stats = stats if stats is not None else ExtractStats()
    started = time.perf_counter()
    out = _Columns()
    cols = out.cols
    stream = open_wat(path, storage_options)
    try:
        stats.files_read += 1
        for member in iter_members(stream):
            stats.bytes_read += member.length
            stats.records_read += 1
            if member.error is not None:
                stats.records_failed[member.error.split(":")[0]] += 1
                continue
            parsed = _parse_record(member.data)
            if isinstance(parsed, str):
                stats.records_failed[parsed] += 1
                continue
            record, payload = parsed
            if record.record_type != WarcRecordType.metadata:
                continue
            stats.metadata_records += 1
            try:
                doc = orjson.loads(payload)
            except orjson.JSONDecodeError as exc:
                reason = "not_utf8" if "UTF-8" in str(exc) else "bad_json"
                stats.records_failed[reason] += 1
                continue
            try:
                envelope = doc["Envelope"]
                html = envelope["Payload-Metadata"]["HTTP-Response-Metadata"]["HTML-Metadata"]
            except (KeyError, TypeError):
                # request, warcinfo and non-HTML records have no HTML-Metadata: not an error
                if not isinstance(doc, dict) or "Envelope" not in doc:
                    stats.records_failed["missing_keys"] += 1
                continue
            try:
                header = envelope["WARC-Header-Metadata"]
                page_url = header["WARC-Target-URI"]
                container = doc["Container"]
                warc_filename = container["Filename"]
                warc_offset = int(container["Offset"])
                links = html.get("Links") or ()
                head = html.get("Head") or {}
            except (KeyError, TypeError, ValueError, AttributeError):
                stats.records_failed["missing_keys"] += 1
                continue
            stats.records_with_html += 1
            base = head.get("Base") if isinstance(head.get("Base"), str) else None
            resolve_base = _resolve(base, page_url) if base else page_url
            robots = _robots(head)
            page_date = header.get("WARC-Date") or record.headers.get("WARC-Date")
            wat_record_id = record.record_id
            warc_record_id = header.get("WARC-Record-ID")
            for index, link in enumerate(links):
                if not isinstance(link, dict) or link.get("path") != "IMG@/src":
                    continue
                url_raw = link.get("url")
                url_raw = url_raw if isinstance(url_raw, str) else ""
                alt = link.get("alt")
                alt = alt if isinstance(alt, str) or alt is None else str(alt)
                url = _resolve(url_raw, resolve_base)
                cols["pair_id"].append(pair_id(url, alt))
                cols["crawl_id"].append(crawl_id)
                cols["wat_path"].append(path)
                cols["wat_record_offset"].append(member.offset)
                cols["wat_record_id"].append(wat_record_id)
                cols["warc_record_id"].append(warc_record_id)
                cols["page_url"].append(page_url)
                cols["page_date"].append(page_date)
                cols["warc_filename"].append(warc_filename)
                cols["warc_offset"].append(warc_offset)
                cols["base_url"].append(base)
                cols["page_robots"].append(robots)
                cols["link_index"].append(index)
                cols["url_raw"].append(url_raw)
                cols["url"].append(url)
                cols["alt"].append(alt)
                stats.image_links += 1
            if len(out) >= batch_size:
                yield out.to_batch()
                cols = out.cols
    except WatOpenError:
        raise
    except OSError as exc:
        raise WatOpenError(f"cannot read WAT file {path!r}: {exc}") from exc
    finally:
        stream.close()
        stats.seconds += time.perf_counter() - started
    if len(out):
        yield out.to_batch()


def extract_image_links(
    path: str, crawl_id: str = "", **kwargs: Any
) -> tuple[pa.Table, ExtractStats]:
    """Read a whole WAT file into one table (for small files, tests and the CLI)."""
    stats = ExtractStats()
    batches = list(iter_image_link_batches(path, crawl_id, stats=stats, **kwargs))
    return pa.Table.from_batches(batches, schema=IMAGE_LINK_SCHEMA), stats
