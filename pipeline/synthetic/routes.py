"""The route table (routes.jsonl): what the server answers for each synthetic image URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from .model import ImageSpec

MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
_STATUS = {"not_found": 404, "server_error": 500, "redirect": 302, "redirect_blocked": 302}


def served_format(im: ImageSpec) -> str | None:
    """The format of the bytes a client gets (None when no image comes back)."""
    if im.served_as is not None:
        return im.served_as
    if im.role == "pixel":
        return "GIF"
    if im.fault == "oversized" and im.oversized_kind == "bomb":
        return "PNG"
    return im.visual.format if im.visual is not None else None


def route_record(im: ImageSpec, last_modified: str) -> dict[str, Any]:
    """One line of routes.jsonl."""
    status = _STATUS.get(im.fault or "", 200)
    fmt = served_format(im)
    if status in (404, 500) or im.fault == "wrong_content_type":
        content_type = "text/html; charset=utf-8"
    elif im.fault == "not_image":
        content_type = "image/jpeg"
    elif status == 302:
        content_type = "text/html; charset=utf-8"
    else:
        content_type = MIME[fmt or "JPEG"]
    headers = {"Cache-Control": "no-store" if im.role == "pixel" else "max-age=86400"}
    if status == 200:
        headers["Last-Modified"] = last_modified
    tags = (["noai"] if im.host_noai else []) + ([im.robots_header] if im.robots_header else [])
    if tags:
        headers["X-Robots-Tag"] = ", ".join(tags)
    record: dict[str, Any] = {
        "host": im.host,
        "path": im.path,
        "file": im.file,
        "status": status,
        "content_type": content_type,
        "fault": im.fault,
        "headers": headers,
        "location": im.location,
        "image_id": im.id,
    }
    if im.fault == "oversized" and im.oversized_kind == "padded":
        record["pad_to"] = im.n_bytes
    return record


def write_routes(
    path: Path,
    images: list[ImageSpec],
    last_modified: str,
    epoch2: dict[int, dict[str, Any]] | None = None,
) -> int:
    """Write routes.jsonl, one route per image spec (with its ``epoch2`` answer, if it
    changes after hop 3); return the count."""
    later = epoch2 or {}
    lines = []
    for im in images:
        record = route_record(im, last_modified)
        if im.id in later:
            record["epoch2"] = later[im.id]
        lines.append(orjson.dumps(record))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return len(lines)


def at_epoch(route: dict[str, Any], epoch: int) -> dict[str, Any]:
    """The answer of a route at ``epoch`` (1: as generated; 2: after hop 3)."""
    later = route.get("epoch2")
    return {**route, **later} if epoch >= 2 and later else route


def load_routes(path: Path, epoch: int = 1) -> dict[tuple[str, str], dict[str, Any]]:
    """Routes by (host, decoded path), as answered at ``epoch``."""
    routes = {}
    for line in path.read_bytes().splitlines():
        if line.strip():
            rec = orjson.loads(line)
            routes[(rec["host"], rec["path"])] = at_epoch(rec, epoch)
    return routes
