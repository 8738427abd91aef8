"""Hop 1: read Common Crawl WAT files and emit every ``IMG@/src`` link with its provenance.

Streaming: the file is read in any WARC form (gzip per record, whole-file gzip or
uncompressed, told by content) and inflated a piece at a time (ISA-L,
:mod:`pipeline.hops.wat.members`), cut into records of at most ``max_record_bytes``
(:mod:`pipeline.hops.wat.split`, which also defines ``wat_record_offset`` per form), WARC
headers are parsed by FastWARC (quirks mode for LF-only files), and each JSON payload is
validated and parsed once by simdjson, lazily: only the page fields become Python objects.
The ``IMG@/src`` links of a batch of pages are read by a numpy scan of their JSON bytes
(:mod:`pipeline.hops.wat.links`) and resolved a batch at a time (:mod:`pipeline.hops.wat.url_join`).
Memory is bounded by the record cap plus one output batch. A malformed record is counted by
reason and skipped; a file that cannot be opened raises :class:`WatOpenError`.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NamedTuple

import fsspec
import numpy as np
import pyarrow as pa
import simdjson
from fastwarc.warc import WarcRecord, WarcRecordType

from pipeline.hops.wat.links import (
    HTML_POINTER,
    LINKS_POINTER,
    ImageLink,
    LinksRegion,
    links_region,
    scan_image_links,
    walk_image_links,
)
from pipeline.hops.wat.members import iter_pieces
from pipeline.hops.wat.split import DEFAULT_MAX_RECORD_BYTES, iter_records
from pipeline.hops.wat.url_join import join_url, resolve_urls
from pipeline.hops.wat.warc_html import decode_html, http_message, is_html, read_html
from pipeline.lake.keys import pair_ids
from pipeline.lake.tables import IMAGE_LINK_SCHEMA


class WatOpenError(RuntimeError):
    """A WAT file could not be opened or read at all."""


@dataclass
class ExtractStats:
    """What one extraction read, kept and failed."""

    files_read: int = 0
    bytes_read: int = 0
    records_read: int = 0
    records_ok: int = 0
    """Records read without fault (``records_read == records_ok + records_failed``)."""
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
        self.records_ok += other.records_ok
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
            "records_ok": self.records_ok,
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


_PAGE_FIELDS = tuple(IMAGE_LINK_SCHEMA.names[1 : IMAGE_LINK_SCHEMA.get_field_index("link_index")])
"""Columns whose value is the same for every link of a page: kept once per page and
expanded (``take``) when a batch is built."""


class _Pages:
    """The pages of one output batch: their fields, resolution bases and image links, either
    as :class:`LinksRegion` for :func:`scan_image_links` or as rows already walked."""

    def __init__(self, max_region_bytes: int) -> None:
        self.max_region_bytes = max_region_bytes
        self.fields: list[tuple[Any, ...]] = []
        self.bases: list[str] = []
        self.regions: list[LinksRegion] = []
        self.region_page: list[int] = []
        self.region_bytes = 0
        self.walked: list[tuple[int, int, str, str | None]] = []
        self.rows = 0

    def add(self, fields: tuple[Any, ...], base: str, page: _Page) -> None:
        index = len(self.fields)
        self.fields.append(fields)
        self.bases.append(base)
        if page.region is not None:
            self.regions.append(page.region)
            self.region_page.append(index)
            self.region_bytes += len(page.region.payload) - page.region.start
        else:
            self.walked.extend((index, *link) for link in page.images)
        self.rows += page.n_images

    def full(self, batch_size: int) -> bool:
        return self.rows >= batch_size or self.region_bytes >= self.max_region_bytes

    def to_batch(self) -> pa.RecordBatch:
        """The rows of these pages, in page and link order, then start afresh."""
        scanned = scan_image_links(self.regions)
        region_page = np.asarray(self.region_page, dtype=np.int64)
        page = region_page[scanned.region]
        link_index, url_raw, alt = scanned.link_index, scanned.url_raw, scanned.alt
        parser = simdjson.Parser()
        for region in scanned.rejected:  # pages the scan cannot read: walk them
            links = parser.parse(self.regions[region].payload).at_pointer(LINKS_POINTER)
            page_index = int(region_page[region])
            self.walked.extend((page_index, *link) for link in walk_image_links(links))
            del links
        if self.walked:
            w_page, w_index, w_url, w_alt = zip(*self.walked, strict=True)
            page = np.concatenate((page, np.asarray(w_page, dtype=np.int64)))
            link_index = np.concatenate((link_index, np.asarray(w_index, dtype=np.int64)))
            order = np.lexsort((link_index, page))
            page, link_index = page[order], link_index[order]
            url_raw = pa.concat_arrays([url_raw, pa.array(w_url, pa.string())]).take(order)
            alt = pa.concat_arrays([alt, pa.array(w_alt, pa.string())]).take(order)
        url = resolve_urls(url_raw, page, self.bases)
        take = pa.array(page)
        columns = list(zip(*self.fields, strict=True)) if self.fields else [()] * len(_PAGE_FIELDS)
        arrays: dict[str, pa.Array] = {
            name: pa.array(values, IMAGE_LINK_SCHEMA.field(name).type).take(take)
            for name, values in zip(_PAGE_FIELDS, columns, strict=True)
        }
        arrays["pair_id"] = pair_ids(url, alt)
        arrays["link_index"] = pa.array(link_index, pa.int32())
        arrays["url_raw"] = url_raw
        arrays["url"] = url
        arrays["alt"] = alt
        batch = pa.RecordBatch.from_arrays(
            [arrays[name] for name in IMAGE_LINK_SCHEMA.names], schema=IMAGE_LINK_SCHEMA
        )
        self.__init__(self.max_region_bytes)
        return batch


def _parse_record(data: bytes) -> tuple[WarcRecord, bytes] | str:
    """Parse one inflated member as a WARC record; return (record, payload) or an error reason."""
    try:
        record = WarcRecord.from_bytes(data)
        if record.record_type == WarcRecordType.unknown:
            record = WarcRecord.from_reader(io.BytesIO(data), quirks_mode=True)
    except Exception:
        return "bad_warc_header"
    if record.record_type == WarcRecordType.unknown:
        return "bad_warc_header"
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n", 0, crlf if crlf >= 0 else len(data))  # LF-only headers
    block = lf + 2 if lf >= 0 else crlf + 4
    at = data.find(b"\nContent-Length:", 0, block)  # as written; else FastWARC's lookup
    try:
        declared = int(
            data[at + 16 : data.find(b"\n", at + 16)]
            if at >= 0
            else record.headers.get("Content-Length", "-1")
        )
    except ValueError:
        return "bad_warc_header"
    payload = data[block : block + declared]  # the block, as FastWARC's reader gives it
    if len(payload) != declared or data[block + declared :].strip():
        return "content_length_mismatch"  # the block is shorter or longer than declared
    return record, payload


def _robots(metas: Any) -> str | None:
    """The page's robots meta content (all of them, comma-joined), or None.

    ``metas`` is the lazy ``Head.Metas`` value: only each meta's ``name`` is read.
    """
    values = [
        meta.get("content") or ""
        for meta in metas or ()
        if isinstance(meta, simdjson.Object) and str(meta.get("name", "")).lower() == "robots"
    ]
    return ", ".join(values) if values else None


class _Page(NamedTuple):
    """What one WAT page contributes: its fields and its image links (a JSON region to scan,
    or rows already walked)."""

    page_url: str
    warc_record_id: str | None
    page_date: str | None
    warc_filename: str
    warc_offset: int
    base: str | None
    robots: str | None
    region: LinksRegion | None
    images: list[ImageLink]
    n_images: int
    """Image links (walked), or an upper bound (the number of links) for a region."""


def _read_page(parser: simdjson.Parser, payload: bytes) -> _Page | str | None:
    """The page fields and ``IMG@/src`` links of one WAT JSON payload, read lazily.

    Only the values used become Python objects. Returns an error reason, None for a record
    without ``HTML-Metadata`` (request, warcinfo, non-HTML), or a :class:`_Page`. No lazy
    value outlives the call, so the parser can be reused.
    """
    try:
        doc = parser.parse(payload)
    except UnicodeDecodeError:
        return "not_utf8"
    except ValueError:
        return "bad_json"
    except RuntimeError:  # a lazy value of the previous record still alive
        return "parser_busy"
    if not isinstance(doc, simdjson.Object) or "Envelope" not in doc:
        return "missing_keys"
    if b'"HTML-Metadata"' not in payload and b"\\u" not in payload:
        return None  # no such key, even escaped: cheaper than the failing lookup below
    try:
        html = doc.at_pointer(HTML_POINTER)
    except (KeyError, TypeError, ValueError):
        return None  # request, warcinfo and non-HTML records: not an error
    try:
        header = doc.at_pointer("/Envelope/WARC-Header-Metadata")
        container = doc["Container"]
        warc_filename = container["Filename"]
        warc_offset = int(container["Offset"])
        page_url = header.get("WARC-Target-URI")
        if not isinstance(page_url, str) or not page_url:
            return "missing_target_uri"
        links = html.get("Links") or () if isinstance(html, simdjson.Object) else None
        head = html.get("Head")
        if isinstance(head, simdjson.Object):
            base, robots = head.get("Base"), _robots(head.get("Metas"))
        elif not head:
            base, robots = None, None
        else:
            raise TypeError("Head")
        if links is None:
            raise TypeError("Links")
        region = links_region(payload, links) if isinstance(links, simdjson.Array) else None
        if region is None:
            images = walk_image_links(links)
            n_images = len(images)
        else:
            images, n_images = [], region.n_links
    except (KeyError, TypeError, ValueError, AttributeError):
        return "missing_keys"
    return _Page(
        page_url,
        header.get("WARC-Record-ID"),
        header.get("WARC-Date"),
        warc_filename,
        warc_offset,
        base if isinstance(base, str) else None,
        robots,
        region,
        images,
        n_images,
    )


def _response_page(record: WarcRecord, block: bytes, path: str, offset: int) -> _Page | str | None:
    """The page of a WARC ``response`` record of HTML (:mod:`pipeline.hops.wat.warc_html`).

    Lineage points at the record itself: ``warc_filename`` is the file's name and
    ``warc_offset`` the record's offset, as are ``wat_path`` and ``wat_record_offset`` (no
    WAT stands between); ``wat_record_id`` and ``warc_record_id`` are the record's id.
    """
    if "application/http" not in record.headers.get("Content-Type", "").lower():
        return None  # dns:, whois: and other non-HTTP responses
    message = http_message(block)
    if isinstance(message, str):
        return message
    headers, entity = message
    if not entity or not is_html(headers):
        return None
    page_url = record.headers.get("WARC-Target-URI", "").strip().strip("<>")
    if not page_url:
        return "missing_target_uri"
    html = read_html(decode_html(entity, headers.get("content-type", "")))
    return _Page(
        page_url,
        record.record_id,
        record.headers.get("WARC-Date"),
        path.rstrip("/").rsplit("/", 1)[-1],
        offset,
        html.base,
        html.robots,
        None,
        html.images,
        len(html.images),
    )


def iter_image_link_batches(
    path: str,
    crawl_id: str = "",
    *,
    stats: ExtractStats | None = None,
    batch_size: int = 65_536,
    max_region_bytes: int = 32 << 20,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    storage_options: dict[str, Any] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream one WAT file (or WARC file: its HTML ``response`` records are read too) as
    RecordBatches of :data:`IMAGE_LINK_SCHEMA`.

    A batch ends once its pages hold ``batch_size`` image links (a page left to the scan
    counts all its links, an upper bound) or ``max_region_bytes`` of ``Links`` JSON,
    whichever comes first. A record over ``max_record_bytes`` is skipped unread
    (``record_too_large``). ``stats`` (if given) is filled as the file is read; malformed
    records are counted in ``stats.records_failed`` by reason and skipped.
    """
    stats = stats if stats is not None else ExtractStats()
    started = time.perf_counter()
    out = _Pages(max_region_bytes)
    parser = simdjson.Parser()
    stream = open_wat(path, storage_options)
    try:
        stats.files_read += 1
        for raw in iter_records(iter_pieces(stream), max_record_bytes):
            stats.bytes_read += raw.length
            stats.records_read += 1
            page = raw.error or _parse_record(raw.data)
            if not isinstance(page, str):
                record, payload = page
                page = None
                if record.record_type == WarcRecordType.metadata:
                    stats.metadata_records += 1
                    if "warc-fields" in record.headers.get("Content-Type", ""):
                        page = None  # a WARC file's own metadata (fetch time, charset)
                    else:
                        page = _read_page(parser, payload) if payload else "empty_record"
                elif record.record_type == WarcRecordType.response:
                    page = _response_page(record, payload, path, raw.offset)
            if isinstance(page, str):
                stats.records_failed[page.split(":")[0]] += 1
                if page == "parser_busy":  # should not happen; start afresh
                    parser = simdjson.Parser()
                continue
            stats.records_ok += 1
            if page is None:
                continue
            stats.records_with_html += 1
            if not page.n_images:
                continue
            fields = (
                crawl_id,
                path,
                raw.offset,
                record.record_id,
                page.warc_record_id,
                page.page_url,
                page.page_date or record.headers.get("WARC-Date"),
                page.warc_filename,
                page.warc_offset,
                page.base,
                page.robots,
            )
            base = join_url(page.page_url, page.base) if page.base else page.page_url
            out.add(fields, base, page)
            if out.full(batch_size):
                batch = out.to_batch()
                stats.image_links += batch.num_rows
                yield batch
        if out.rows:
            batch = out.to_batch()
            stats.image_links += batch.num_rows
            yield batch
    except WatOpenError:
        raise
    except OSError as exc:
        raise WatOpenError(f"cannot read WAT file {path!r}: {exc}") from exc
    finally:
        stream.close()
        stats.seconds += time.perf_counter() - started


def extract_image_links(
    path: str, crawl_id: str = "", **kwargs: Any
) -> tuple[pa.Table, ExtractStats]:
    """Read a whole WAT file into one table (for small files, tests and the CLI)."""
    stats = ExtractStats()
    batches = list(iter_image_link_batches(path, crawl_id, stats=stats, **kwargs))
    return pa.Table.from_batches(batches, schema=IMAGE_LINK_SCHEMA), stats
