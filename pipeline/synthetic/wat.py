"""Derive a WAT file from a WARC file, in Common Crawl's WAT format.

The WARC is read back member by member; each record becomes one `WARC-Type: metadata`
record whose JSON payload has CC's shape and key order: `Container` (source file name,
compressed offset of the record's gzip member, Gzip-Metadata) and `Envelope`
(Payload-Metadata with HTTP-Request/Response-Metadata and, for HTML, HTML-Metadata;
Format; WARC-Header-Length; WARC-Header-Metadata).
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import orjson

from .gzmember import FOOTER_LENGTH, HEADER_LENGTH, Member, gzip_member, iter_members
from .htmlmeta import html_metadata
from .layout import http_date, warc_date
from .warc import record_id, sha1_digest, warc_fields, warc_record


def _split_headers(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("utf-8", "replace").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip()] = v.strip()
    return lines[0], headers


def _http_meta(block: bytes, kind: str) -> dict[str, Any]:
    head, _, entity = block.partition(b"\r\n\r\n")
    first, headers = _split_headers(head)
    meta: dict[str, Any] = {}
    if kind == "request":
        method, target, version = ([*first.split(" ", 2), "", ""])[:3]
        meta["Request-Message"] = {"Method": method, "Path": target, "Version": version}
    else:
        version, status, reason = ([*first.split(" ", 2), "", ""])[:3]
        meta["Response-Message"] = {"Status": status, "Version": version, "Reason": reason}
    meta["Headers-Length"] = str(len(head) + 4)
    meta["Headers"] = headers
    content_type = headers.get("Content-Type", "")
    if kind == "response" and entity and "html" in content_type:
        meta["HTML-Metadata"] = html_metadata(entity.decode("utf-8", "replace"))
    meta["Entity-Length"] = str(len(entity))
    meta["Entity-Digest"] = sha1_digest(entity)
    meta["Entity-Trailing-Slop-Length"] = "0"
    return meta


def _payload_meta(warc_type: str, content_type: str, block: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {"Actual-Content-Type": content_type}
    if warc_type in ("request", "response"):
        key = "HTTP-Request-Metadata" if warc_type == "request" else "HTTP-Response-Metadata"
        out[key] = _http_meta(block, warc_type)
    else:
        _, fields = _split_headers(b"\r\n" + block.rstrip(b"\r\n"))
        if warc_type == "warcinfo":
            out["WARC-Info-Metadata"] = fields
        else:
            records = [{"Name": k, "Value": v} for k, v in fields.items()]
            out["WARC-Metadata-Metadata"] = {"Metadata-Records": records}
    out["Actual-Content-Length"] = str(len(block))
    out["Trailing-Slop-Length"] = "4"
    out["Block-Digest"] = sha1_digest(block)
    return out


def wat_json(member: Member, warc_filename: str) -> tuple[dict[str, str], bytes]:
    """The WARC headers of one source record and the WAT JSON describing it."""
    head, _, rest = member.data.partition(b"\r\n\r\n")
    _, headers = _split_headers(head)
    block = rest[: int(headers.get("Content-Length", "0"))]
    container = {
        "Filename": warc_filename,
        "Compressed": True,
        "Offset": str(member.offset),
        "Gzip-Metadata": {
            "Deflate-Length": str(member.length - HEADER_LENGTH - FOOTER_LENGTH),
            "Header-Length": str(HEADER_LENGTH),
            "Footer-Length": str(FOOTER_LENGTH),
            "Inflated-CRC": str(member.signed_crc),
            "Inflated-Length": str(len(member.data)),
        },
    }
    envelope = {
        "Payload-Metadata": _payload_meta(
            headers.get("WARC-Type", ""), headers.get("Content-Type", ""), block
        ),
        "Format": "WARC/1.0",
        "WARC-Header-Length": str(len(head) + 4),
        "WARC-Header-Metadata": headers,
    }
    return headers, orjson.dumps({"Container": container, "Envelope": envelope})


def derive_wat(warc_path: Path, wat_path: Path, extracted: dt.datetime, rng: random.Random) -> int:
    """Write the WAT of a WARC file; return the number of metadata records written."""
    warc_filename = warc_path.name
    wat_filename = wat_path.name
    info = (
        warc_fields(
            [
                ("Software-Info", "crawl2diffusion-synthetic-web (ia-web-commons WAT layout)"),
                ("Extracted-Date", http_date(extracted)),
                ("ip", "198.18.0.10"),
                ("hostname", "synth-wat-01.synth.test"),
                ("format", "WARC File Format 1.0"),
                ("conformsTo", "http://bibnum.bnf.fr/WARC/WARC_ISO_28500_version1_latestdraft.pdf"),
            ]
        )
        + b"\r\n"
    )
    date = warc_date(extracted)
    out = bytearray(
        gzip_member(
            warc_record(
                [
                    ("WARC-Type", "warcinfo"),
                    ("WARC-Date", date),
                    ("WARC-Filename", wat_filename),
                    ("WARC-Record-ID", record_id(rng)),
                    ("Content-Type", "application/warc-fields"),
                    ("Content-Length", str(len(info))),
                    ("WARC-Block-Digest", sha1_digest(info)),
                ],
                info,
            )
        )
    )
    n = 0
    for member in iter_members(warc_path.read_bytes()):
        headers, payload = wat_json(member, warc_filename)
        target = headers.get("WARC-Target-URI", warc_filename)
        digest = sha1_digest(payload)
        out += gzip_member(
            warc_record(
                [
                    ("WARC-Type", "metadata"),
                    ("WARC-Target-URI", target),
                    ("WARC-Date", date),
                    ("WARC-Record-ID", record_id(rng)),
                    ("WARC-Refers-To", headers.get("WARC-Record-ID", "")),
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(payload))),
                    ("WARC-Payload-Digest", digest),
                    ("WARC-Block-Digest", digest),
                ],
                payload,
            )
        )
        n += 1
    wat_path.parent.mkdir(parents=True, exist_ok=True)
    wat_path.write_bytes(bytes(out))
    return n
