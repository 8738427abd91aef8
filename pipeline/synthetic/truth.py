"""Truth tables that let tests check every hop of the pipeline against what was generated.

- truth.parquet: one row per image URL the server answers (pixels: one row per query), with
  the artist whose work it shows (``artist``, null when nobody's) and, for a repost, the
  original it copies (``repost_of``, ``repost_kind``); whether a diffusion model made it
  (``ai_generated``), the one provenance signal its file carries (``ai_signal``: ``c2pa``,
  ``xmp``, ``a1111``, ``comfyui``, ``exif``; null for none), whether its file was stripped of
  all metadata (``metadata_stripped``) and what its C2PA credentials say about AI training
  (``training_mining``). Only a feedback crawl (``feedback.py``) has AI images.
- pages.parquet: one row per <img> in every captured HTML page (a page re-crawled in a
  second crawl has rows under both crawl ids), with whether its alt credits the image's
  artist (``artist_credited``) and the caption term planted in it (``planted_term``).
- captures.parquet: one row per page capture in the WARC files (redirect captures too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .model import ImageSpec, PagePlan, WebPlan
from .routes import route_record, served_format
from .warc import Capture

_TEXTURES = frozenset({"stripes", "dots", "noise", "hazard"})


@dataclass
class CaptureInfo:
    """Where a page capture of a crawl lives: WARC/WAT paths, offset, record id."""

    crawl_id: str
    capture: Capture
    warc_path: str
    wat_path: str


def _image_columns(
    im: ImageSpec, plan: WebPlan, languages: tuple[str, ...], bomb_side: int
) -> dict[str, Any]:
    v = im.visual
    target = plan.images[im.redirect_to] if im.redirect_to is not None else None
    bomb = im.fault == "oversized" and im.oversized_kind == "bomb"
    width = 1 if im.role == "pixel" else (v.width if v else None)
    height = 1 if im.role == "pixel" else (v.height if v else None)
    if bomb:
        width = height = bomb_side
    route = route_record(im, "")
    row: dict[str, Any] = {
        "image_id": im.id,
        "role": im.role,
        "host": im.host,
        "path": im.path,
        "path_style": im.path_style,
        "format": served_format(im),
        "width": width,
        "height": height,
        "n_bytes": im.n_bytes,
        "sha256": im.sha256,
        "file": im.file,
        "shape": v.shape if v else None,
        "color": v.color if v else None,
        "count": v.count if v else None,
        "background": v.background if v else None,
        "background_colors": list(v.bg_colors) if v else None,
        "texture": v.background if v and v.background in _TEXTURES else None,
        "composition": v.composition if v else None,
        "palette": v.palette if v else None,
        "size_class": v.size_class if v else None,
        "artist": im.artist,
        "repost_of": im.repost_of,
        "repost_kind": im.repost_kind,
    }
    for lang in languages:
        row[f"caption_{lang}"] = im.captions.get(lang)
    row |= {
        "watermark": bool(v and v.watermark),
        "unsafe": bool(v and v.unsafe),
        "aesthetic": im.aesthetic,
        "host_noai": im.host_noai,
        "header_noai": im.header_noai,
        "x_robots_tag": route["headers"].get("X-Robots-Tag"),
        "fault": im.fault,
        "status": route["status"],
        "content_type": route["content_type"],
        "location": im.location,
        "redirect_image_id": target.id if target else None,
        "first_crawl_id": im.first_crawl_id,
        "ai_generated": im.ai_generated,
        "ai_signal": im.ai_signal,
        "metadata_stripped": im.metadata_stripped,
        "training_mining": im.training_mining,
    }
    return row


def truth_rows(plan: WebPlan, languages: tuple[str, ...], bomb_side: int) -> list[dict[str, Any]]:
    """One row per distinct served image URL linked from any page."""
    rows: dict[str, dict[str, Any]] = {}
    cache: dict[int, dict[str, Any]] = {}
    for crawl in plan.crawls:
        for page in crawl.pages:
            for tag in page.imgs:
                if tag.image_url is None or tag.image_id is None or tag.image_url in rows:
                    continue
                if tag.image_id not in cache:
                    im = plan.images[tag.image_id]
                    cache[tag.image_id] = _image_columns(im, plan, languages, bomb_side)
                rows[tag.image_url] = {"url": tag.image_url, **cache[tag.image_id]}
    return list(rows.values())


def page_rows(plan: WebPlan, infos: list[CaptureInfo]) -> list[dict[str, Any]]:
    """One row per <img> of each HTML page capture."""
    rows = []
    recrawled = {c.crawl_id: c.recrawled for c in plan.crawls}
    for info in infos:
        page: PagePlan = info.capture.page
        if page.status != 200:
            continue
        site = plan.sites[page.site]
        for i, tag in enumerate(page.imgs):
            image = plan.images[tag.image_id] if tag.image_id is not None else None
            rows.append(
                {
                    "crawl_id": info.crawl_id,
                    "page_url": page.url,
                    "page_host": site.host,
                    "page_lang": page.lang,
                    "recrawl": page.uid in recrawled[info.crawl_id],
                    "first_crawl_id": page.first_crawl_id,
                    "page_noai": page.noai,
                    "robots_meta": page.robots_meta,
                    "base_href": page.base_href,
                    "wat_path": info.wat_path,
                    "warc_path": info.warc_path,
                    "warc_offset": info.capture.response_offset,
                    "warc_record_id": info.capture.response_id,
                    "img_index": i,
                    "slot": tag.slot,
                    "src": tag.src,
                    "alt": tag.alt,
                    "alt_kind": tag.alt_kind,
                    "alt_lang": tag.alt_lang,
                    "describes_image": tag.describes_image,
                    "artist_credited": tag.artist_credited,
                    "planted_term": tag.planted_term,
                    "url_kind": tag.url_kind,
                    "path_style": image.path_style if image and image.role != "pixel" else None,
                    "url_resolved": tag.url_resolved,
                    "image_url": tag.image_url,
                    "image_id": tag.image_id,
                }
            )
    return rows


def capture_rows(infos: list[CaptureInfo]) -> list[dict[str, Any]]:
    """One row per page capture (HTML pages and redirects)."""
    return [
        {
            "crawl_id": info.crawl_id,
            "page_url": info.capture.page.url,
            "status": info.capture.page.status,
            "location": info.capture.page.location,
            "date": info.capture.date,
            "page_noai": info.capture.page.noai,
            "n_imgs": len(info.capture.page.imgs),
            "wat_path": info.wat_path,
            "warc_path": info.warc_path,
            "warc_offset": info.capture.response_offset,
            "warc_record_id": info.capture.response_id,
        }
        for info in infos
    ]


_TYPES = {
    "image_id": pa.int64(),
    "width": pa.int32(),
    "height": pa.int32(),
    "n_bytes": pa.int64(),
    "count": pa.int32(),
    "background_colors": pa.list_(pa.string()),
    "watermark": pa.bool_(),
    "unsafe": pa.bool_(),
    "aesthetic": pa.float64(),
    "host_noai": pa.bool_(),
    "header_noai": pa.bool_(),
    "status": pa.int32(),
    "redirect_image_id": pa.int64(),
    "repost_of": pa.int64(),
    "artist_credited": pa.bool_(),
    "recrawl": pa.bool_(),
    "page_noai": pa.bool_(),
    "warc_offset": pa.int64(),
    "img_index": pa.int32(),
    "describes_image": pa.bool_(),
    "n_imgs": pa.int32(),
    "ai_generated": pa.bool_(),
    "metadata_stripped": pa.bool_(),
}


def write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write rows as Parquet with a fixed schema (strings unless listed in `_TYPES`)."""
    schema = pa.schema([(k, _TYPES.get(k, pa.string())) for k in rows[0]])
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, path, compression="zstd")
