"""Write WARC files the way Common Crawl does: warcinfo, then request/response/metadata."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .gzmember import gzip_member
from .layout import http_date, warc_date
from .model import PagePlan

WARC_SPEC = "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.0/"
USER_AGENT = "SynthBot/1.0 (crawl2diffusion synthetic web; +https://example.test/bot)"


def sha1_digest(data: bytes) -> str:
    """WARC digest: sha1 in base32."""
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()


def record_id(rng: random.Random) -> str:
    """A deterministic <urn:uuid:...> record id."""
    return f"<urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}>"


def warc_record(headers: list[tuple[str, str]], block: bytes) -> bytes:
    """A WARC/1.0 record: CRLF headers, a blank line, the block, CRLF CRLF."""
    head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("utf-8") + block + b"\r\n\r\n"


def warc_fields(fields: list[tuple[str, str]]) -> bytes:
    """An application/warc-fields block."""
    return "".join(f"{k}: {v}\r\n" for k, v in fields).encode("utf-8")


@dataclass
class Capture:
    """Where one page capture landed in a WARC file."""

    page: PagePlan
    response_offset: int
    response_id: str
    date: str


def _ip(host: str) -> str:
    """A stable address in 198.18.0.0/15 (reserved for benchmarks) per host."""
    h = hashlib.sha1(host.encode()).digest()
    return f"198.{18 + h[0] % 2}.{h[1]}.{h[2] % 254 + 1}"


def _http_request(url: str, lang: str) -> bytes:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [
        f"GET {target or '/'} HTTP/1.1",
        f"User-Agent: {USER_AGENT}",
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        f"Accept-Language: {lang},en-US;q=0.7,en;q=0.5",
        "Accept-Encoding: br,gzip",
        f"Host: {parts.netloc}",
        "Connection: Keep-Alive",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _http_response(page: PagePlan, when: dt.datetime) -> bytes:
    if page.status == 301:
        lines = [
            "HTTP/1.1 301 Moved Permanently",
            f"Date: {http_date(when)}",
            "Server: nginx/1.25.3",
            f"Location: {page.location}",
            "Content-Length: 0",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()
    lines = [
        "HTTP/1.1 200 OK",
        f"Date: {http_date(when)}",
        "Server: nginx/1.25.3",
        "Content-Type: text/html; charset=utf-8",
        f"Content-Length: {len(page.html)}",
        f"Last-Modified: {http_date(when - dt.timedelta(days=23, hours=5))}",
        "Vary: Accept-Encoding",
        "Cache-Control: max-age=600",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + page.html


def write_warc(
    path: Path,
    filename: str,
    crawl_id: str,
    pages: list[PagePlan],
    start: dt.datetime,
    rng: random.Random,
) -> list[Capture]:
    """Write one WARC.gz (gzip member per record); return where each response landed."""
    out = bytearray()
    info_id = record_id(rng)
    info = warc_fields(
        [
            ("isPartOf", crawl_id),
            ("publisher", "crawl2diffusion synthetic web (not real data)"),
            ("description", f"Synthetic crawl {crawl_id} of the reserved .test web"),
            ("operator", "crawl2diffusion"),
            ("hostname", "synth-crawler-01.synth.test"),
            ("software", "crawl2diffusion synthetic web generator"),
            ("robots", "checked via synthetic robots rules"),
            ("format", "WARC File Format 1.0"),
            ("conformsTo", WARC_SPEC),
        ]
    )
    out += gzip_member(
        warc_record(
            [
                ("WARC-Type", "warcinfo"),
                ("WARC-Date", warc_date(start)),
                ("WARC-Filename", filename),
                ("WARC-Record-ID", info_id),
                ("Content-Type", "application/warc-fields"),
                ("Content-Length", str(len(info))),
            ],
            info,
        )
    )
    captures = []
    for k, page in enumerate(pages):
        when = start + dt.timedelta(seconds=7 * k + 3)
        date, ip = warc_date(when), _ip(urlsplit(page.url).netloc)
        req_id, resp_id, meta_id = record_id(rng), record_id(rng), record_id(rng)
        request = _http_request(page.url, page.lang)
        out += gzip_member(
            warc_record(
                [
                    ("WARC-Type", "request"),
                    ("WARC-Date", date),
                    ("WARC-Record-ID", req_id),
                    ("Content-Length", str(len(request))),
                    ("Content-Type", "application/http; msgtype=request"),
                    ("WARC-Warcinfo-ID", info_id),
                    ("WARC-IP-Address", ip),
                    ("WARC-Target-URI", page.url),
                ],
                request,
            )
        )
        response = _http_response(page, when)
        payload = response.split(b"\r\n\r\n", 1)[1]
        offset = len(out)
        out += gzip_member(
            warc_record(
                [
                    ("WARC-Type", "response"),
                    ("WARC-Date", date),
                    ("WARC-Record-ID", resp_id),
                    ("Content-Length", str(len(response))),
                    ("Content-Type", "application/http; msgtype=response"),
                    ("WARC-Warcinfo-ID", info_id),
                    ("WARC-Concurrent-To", req_id),
                    ("WARC-IP-Address", ip),
                    ("WARC-Target-URI", page.url),
                    ("WARC-Payload-Digest", sha1_digest(payload)),
                    ("WARC-Block-Digest", sha1_digest(response)),
                    ("WARC-Identified-Payload-Type", "text/html" if payload else "unknown"),
                ],
                response,
            )
        )
        captures.append(Capture(page, offset, resp_id, date))
        meta = warc_fields(
            [
                ("fetchTimeMs", str(40 + rng.randrange(900))),
                ("charset-detected", "UTF-8"),
            ]
        )
        out += gzip_member(
            warc_record(
                [
                    ("WARC-Type", "metadata"),
                    ("WARC-Date", date),
                    ("WARC-Record-ID", meta_id),
                    ("Content-Length", str(len(meta))),
                    ("Content-Type", "application/warc-fields"),
                    ("WARC-Warcinfo-ID", info_id),
                    ("WARC-Concurrent-To", resp_id),
                    ("WARC-Target-URI", page.url),
                    ("WARC-Block-Digest", sha1_digest(meta)),
                ],
                meta,
            )
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return captures
