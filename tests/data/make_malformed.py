"""Write the malformed-input corpus of hop 1 (``tests/data/malformed/``), once.

Run ``python -m tests.data.make_malformed`` from the repository root. Each file holds good
WAT records around one bad one, written with the synthetic web's record writer
(:func:`pipeline.synthetic.warc.warc_record`, :func:`pipeline.synthetic.gzmember.gzip_member`).
:data:`EXPECTED` says, per file, the failures hop 1 must count and the pages it must still
read (``tests/test_wat_forms.py``).
"""

from __future__ import annotations

from pathlib import Path

import orjson

from pipeline.synthetic.gzmember import gzip_member
from pipeline.synthetic.warc import warc_record

HERE = Path(__file__).resolve().parent / "malformed"

IMAGES = [
    {"path": "A@/href", "url": "/about", "text": "about"},
    {"path": "IMG@/src", "url": "img/a.png", "alt": "a red circle"},
    {"path": "IMG@/src", "url": "https://cdn.test/b.jpg"},
]


def page_url(n: int) -> str:
    return f"http://site.test/p{n}.html"


def payload(n: int, *, target: bool = True) -> bytes:
    """A response-metadata WAT JSON payload in Common Crawl's layout, page ``n``."""
    header = {"WARC-Type": "response", "WARC-Record-ID": f"<urn:uuid:resp-{n}>"}
    if target:
        header["WARC-Target-URI"] = page_url(n)
    html = {"Head": {"Title": "t"}, "Links": IMAGES}
    return orjson.dumps(
        {
            "Container": {"Filename": "SYN-00000.warc.gz", "Compressed": True, "Offset": "7"},
            "Envelope": {
                "WARC-Header-Metadata": header,
                "Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": html}},
            },
        }
    )


def record(n: int, body: bytes | None = None, *, length: int | None = None) -> bytes:
    """One WAT metadata record (uncompressed, CRLF) of page ``n``; ``length`` overrides its
    Content-Length."""
    body = payload(n) if body is None else body
    return warc_record(
        [
            ("WARC-Type", "metadata"),
            ("WARC-Target-URI", page_url(n)),
            ("WARC-Date", "2024-05-18T01:58:10Z"),
            ("WARC-Record-ID", f"<urn:uuid:meta-{n}>"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body) if length is None else length)),
        ],
        body,
    )


def per_record(records: list[bytes]) -> bytes:
    """Common Crawl's form: one gzip member per record."""
    return b"".join(gzip_member(r) for r in records)


def _files() -> dict[str, bytes]:
    cut = gzip_member(record(2))
    return {
        "content_length_short.warc.wat": b"".join([record(1), record(2, length=40), record(3)]),
        "content_length_long.warc.wat": b"".join(
            [record(1), record(2, length=len(payload(2)) + 60), record(3)]
        ),
        "content_length_long_whole.warc.wat.gz": gzip_member(
            b"".join([record(1), record(2, length=len(payload(2)) + 60), record(3)])
        ),
        "truncated_member.warc.wat.gz": per_record([record(1)])
        + cut[: len(cut) // 2]
        + per_record([record(3)]),
        "truncated_end_whole.warc.wat.gz": gzip_member(b"".join(map(record, (1, 2, 3))))[:-20],
        "bad_json.warc.wat": b"".join([record(1), record(2, b'{"Envelope": {'), record(3)]),
        "not_utf8.warc.wat.gz": per_record(
            [record(1), record(2, payload(2).replace(b"a red circle", b"caf\xe9")), record(3)]
        ),
        "zero_length.warc.wat": b"".join([record(1), record(2, b""), record(3)]),
        "empty_member.warc.wat.gz": per_record([record(1), b"", record(3)]),
        "missing_target_uri.warc.wat.gz": per_record(
            [record(1), record(2, payload(2, target=False)), record(3)]
        ),
    }


EXPECTED: dict[str, tuple[dict[str, int], list[int]]] = {
    "content_length_short.warc.wat": ({"content_length_mismatch": 1}, [1, 3]),
    "content_length_long.warc.wat": ({"content_length_mismatch": 1}, [1, 3]),
    "content_length_long_whole.warc.wat.gz": ({"content_length_mismatch": 1}, [1, 3]),
    "truncated_member.warc.wat.gz": ({"gzip_error": 1}, [1, 3]),
    "truncated_end_whole.warc.wat.gz": ({"truncated_member": 1}, [1, 2]),
    "bad_json.warc.wat": ({"bad_json": 1}, [1, 3]),
    "not_utf8.warc.wat.gz": ({"not_utf8": 1}, [1, 3]),
    "zero_length.warc.wat": ({"empty_record": 1}, [1, 3]),
    "empty_member.warc.wat.gz": ({"empty_record": 1}, [1, 3]),
    "missing_target_uri.warc.wat.gz": ({"missing_target_uri": 1}, [1, 3]),
}
"""Per file: failures by reason, and the pages whose links are still read."""


def corpus() -> dict[str, bytes]:
    """Every file of the corpus, by name."""
    return _files()


def main() -> None:
    HERE.mkdir(exist_ok=True)
    for name, data in corpus().items():
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
