"""A WAT file built from the real Common Crawl excerpts' records, for the hop-1 benchmark.

``bench/_watgen.py`` writes pages the project designed; a benchmark on it alone can flatter
the extractor (an independent 200 MB file gave 1.6x cc2dataset where the generator gave
2.06x). This file is built from the records in ``tests/data/real-wat/`` instead:

- every page is a real request record (``CC-MAIN-2024-22-request-only``) followed by the real
  response record of ``CC-MAIN-2023-06-excerpt`` (a Russian song archive page, windows-1251,
  699 links of which 670 ``A@/href``, 27 ``IMG@/src`` and 2 ``TD@/background``), their JSON
  kept as it is (``Head`` with ``Metas``, ``Title``, ``Link``, ``Scripts``; container and
  envelope fields) except for what varies per page:
- the target URI and host (``siteN.example-N.ru/songs/M.html``), record ids and dates;
- the link list: its length is the real one times a log-normal factor (median 1), its links
  drawn with replacement from the real record's 699, a share of them (uniform 1-10% per
  page) turned into ``IMG@/src`` links whose ``alt`` (80% of them) is a real anchor ``text``
  or ``title`` of the same record, and a third of the URLs given a ``?p=N`` suffix so image
  URLs are not all identical.

The real record carries no image with an alt at all, so some variation of the link list is
needed for any alt pair to exist; the variation above takes its words and URL shapes from
the record, not from the project's generator. Deterministic for a ``(size_mb, seed)``;
cached in ``bench/out/`` with a JSON sidecar like ``_watgen``'s files.
"""

from __future__ import annotations

import gzip
import json
import random
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
from _watgen import (
    MB,
    OUT_DIR,
    ChunkStats,
    WatFile,
    cached_wat,
    metadata_member,
    warcinfo_member,
)

REAL_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "real-wat"
RESPONSE_FILE = REAL_DIR / "CC-MAIN-2023-06-excerpt.warc.wat.gz"
REQUEST_FILE = REAL_DIR / "CC-MAIN-2024-22-request-only.warc.wat.gz"
GENERATOR_VERSION = 1


def _json_payloads(path: Path) -> list[dict[str, Any]]:
    """The JSON payloads of a WAT file's metadata records (cut by their Content-Length)."""
    data = gzip.decompress(path.read_bytes())
    payloads = []
    at = 0
    while (start := data.find(b"WARC/1.0", at)) >= 0:
        crlf = data.find(b"\r\n\r\n", start)
        lf = data.find(b"\n\n", start)
        head_end, sep = (crlf, 4) if crlf >= 0 and (lf < 0 or crlf <= lf) else (lf, 2)
        header = data[start:head_end].decode()
        length = int(header.split("Content-Length:")[1].split()[0])
        body = data[head_end + sep : head_end + sep + length]
        if b"application/json" in data[start:head_end]:
            payloads.append(json.loads(body))
        at = head_end + sep + length
    return payloads


class _RealPages:
    """Pages made of the real records, varied as the module says, from one random stream."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(f"watreal:{seed}")
        self.request = _json_payloads(REQUEST_FILE)[0]
        self.response = _json_payloads(RESPONSE_FILE)[0]
        html = self.response["Envelope"]["Payload-Metadata"]["HTTP-Response-Metadata"]
        self.links: list[dict[str, str]] = html["HTML-Metadata"]["Links"]
        self.words = sorted(
            {w for link in self.links for k in ("text", "title") if (w := link.get(k, "").strip())}
        )
        self.stats = ChunkStats()

    def _uuid(self) -> str:
        return f"<urn:uuid:{uuid.UUID(int=self.rng.getrandbits(128), version=4)}>"

    def _links(self) -> list[dict[str, str]]:
        rng = self.rng
        count = max(1, int(len(self.links) * rng.lognormvariate(0.0, 0.6)))
        img_share = rng.uniform(0.01, 0.10)
        out = []
        for _ in range(count):
            link = dict(rng.choice(self.links))
            if rng.random() < 1 / 3:
                link["url"] = f"{link['url']}?p={rng.randrange(10_000)}"
            if rng.random() < img_share:
                link = {"path": "IMG@/src", "url": link["url"]}
                if rng.random() < 0.8:
                    link["alt"] = rng.choice(self.words)
            out.append(link)
        self.stats.links += len(out)
        imgs = [x for x in out if x["path"] == "IMG@/src"]
        self.stats.img_links += len(imgs)
        self.stats.img_with_alt += sum(1 for x in imgs if x.get("alt", "").strip())
        return out

    def _record(self, uri: str, date: str, refers_to: str, payload: bytes) -> bytes:
        return metadata_member(uri, date, self._uuid(), refers_to, payload, self.stats)

    def page(self, index: int) -> bytes:
        """The request and response records of page ``index`` as gzip members."""
        host = f"site{index % 997}.example-{index % 89}.ru"
        uri = f"http://{host}/songs/{index}.html"
        date = f"2023-02-{1 + index % 28:02d}T{index % 24:02d}:06:10Z"
        request = json.loads(json.dumps(self.request))
        meta = request["Envelope"]["Payload-Metadata"]["HTTP-Request-Metadata"]
        meta["Request-Message"]["Path"] = f"/songs/{index}.html"
        meta["Headers"]["Host"] = host
        request["Envelope"]["WARC-Header-Metadata"]["WARC-Target-URI"] = uri
        response = dict(self.response)
        envelope = dict(response["Envelope"])
        payload_meta = dict(envelope["Payload-Metadata"])
        http = dict(payload_meta["HTTP-Response-Metadata"])
        html = dict(http["HTML-Metadata"])
        html["Links"] = self._links()
        http["HTML-Metadata"] = html
        payload_meta["HTTP-Response-Metadata"] = http
        envelope["Payload-Metadata"] = payload_meta
        header_meta = dict(envelope["WARC-Header-Metadata"])
        header_meta["WARC-Target-URI"] = uri
        envelope["WARC-Header-Metadata"] = header_meta
        response["Envelope"] = envelope
        self.stats.pages += 1
        return self._record(uri, date, self._uuid(), orjson.dumps(request)) + self._record(
            uri, date, self._uuid(), orjson.dumps(response)
        )


def real_wat_path(size_mb: int, seed: int) -> Path:
    return OUT_DIR / f"real-records-{size_mb}mb-seed{seed}-v{GENERATOR_VERSION}.warc.wat.gz"


def ensure_real_wat(size_mb: int, seed: int = 0) -> WatFile:
    """Return the cached real-records WAT file of at least ``size_mb`` MiB, building it if
    missing (one process: the records are copies, so it is fast)."""
    path = real_wat_path(size_mb, seed)
    if cached := cached_wat(path, size_mb, seed):
        return cached
    sidecar = path.with_suffix(".json")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    pages = _RealPages(seed)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        out.write(warcinfo_member(path.name, pages.stats))
        index = 0
        while pages.stats.compressed_bytes < size_mb * MB:
            out.write(pages.page(index))
            index += 1
    tmp.replace(path)
    seconds = time.perf_counter() - started
    meta = {"size": path.stat().st_size, "stats": asdict(pages.stats), "seconds": seconds}
    sidecar.write_text(json.dumps(meta, indent=1))
    return WatFile(path, size_mb, seed, pages.stats, seconds, False)
