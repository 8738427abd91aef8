"""Hop 1 reads every WARC form (gzip per record, whole-file gzip, uncompressed; CRLF or LF),
within a record-size cap, and survives malformed and mutated input."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

from pipeline.hops.wat.records import extract_image_links
from pipeline.synthetic.gzmember import gzip_member
from tests.data.make_malformed import (
    EXPECTED,
    HERE,
    corpus,
    page_url,
    payload,
    per_record,
    record,
)

ROOT = Path(__file__).resolve().parents[1]


def lf(raw: bytes) -> bytes:
    """The record with LF header lines (the JSON block has no raw newline)."""
    return raw.replace(b"\r\n", b"\n")


def rows(path: Path) -> list[tuple]:
    table = extract_image_links(str(path))[0]
    return sorted(
        zip(
            *(table.column(c).to_pylist() for c in ("page_url", "link_index", "url", "alt")),
            strict=True,
        )
    )


@pytest.mark.parametrize("newline", ["crlf", "lf"])
def test_three_forms_give_the_same_rows_and_addressable_offsets(tmp_path, newline) -> None:
    records = [record(n) for n in (1, 2, 3)]
    records = records if newline == "crlf" else [lf(r) for r in records]
    forms = {
        "per_record.warc.wat.gz": per_record(records),
        "whole.warc.wat.gz": gzip_member(b"".join(records)),
        "plain.warc.wat": b"".join(records),
    }
    found = {}
    for name, data in forms.items():
        (tmp_path / name).write_bytes(data)
        table, stats = extract_image_links(str(tmp_path / name))
        assert (stats.records_read, stats.records_ok) == (3, 3)
        found[name] = rows(tmp_path / name)
        offsets = sorted(set(table.column("wat_record_offset").to_pylist()))
        inflated = b"".join(records)
        if name == "per_record.warc.wat.gz":  # seek to the member, inflate it
            assert [zlib.decompressobj(31).decompress(data[o:]) for o in offsets] == records
        else:  # the offset in the inflated stream (the file itself when uncompressed)
            assert [
                inflated[o : o + len(r)] for o, r in zip(offsets, records, strict=True)
            ] == records
    assert len(found["plain.warc.wat"]) == 6
    assert found["per_record.warc.wat.gz"] == found["whole.warc.wat.gz"] == found["plain.warc.wat"]


@pytest.mark.parametrize("form", ["per_record", "whole", "plain"])
def test_record_over_the_cap_is_counted_and_the_rest_read(tmp_path, form) -> None:
    big = record(2, payload(2).replace(b'"Title":"t"', b'"Title":"' + b"t" * 5000 + b'"'))
    records = [record(1), big, record(3)]
    data = {
        "per_record": per_record(records),
        "whole": gzip_member(b"".join(records)),
        "plain": b"".join(records),
    }[form]
    path = tmp_path / "capped.warc.wat"
    path.write_bytes(data)
    table, stats = extract_image_links(str(path), max_record_bytes=4096)
    assert dict(stats.records_failed) == {"record_too_large": 1}
    assert sorted(set(table.column("page_url").to_pylist())) == [page_url(1), page_url(3)]
    table, stats = extract_image_links(str(path), max_record_bytes=8192)
    assert (stats.records_failed, table.num_rows) == ({}, 6)


_CHILD = textwrap.dedent(
    """
    import resource, subprocess, sys
    worker = (
        "import sys; from pipeline.hops.wat.records import extract_image_links; "
        "t, s = extract_image_links(sys.argv[1]); "
        "print(dict(s.records_failed), sorted(set(t.column('page_url').to_pylist())))"
    )
    out = subprocess.run([sys.executable, "-c", worker, sys.argv[1]], check=True,
                         capture_output=True, text=True).stdout.strip()
    print(out)
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    """
)


def write_bomb(path: Path, inflated: int = 1 << 30) -> None:
    """A record whose one gzip member inflates to ``inflated`` bytes of zeros, then a good
    record. Each 8 MiB of zeros is deflated once and its bytes repeated (a full flush makes
    them independent), so nothing near ``inflated`` is ever held."""
    chunk = 8 << 20
    header = f"WARC/1.0\r\nWARC-Type: metadata\r\nContent-Length: {inflated}\r\n\r\n".encode()
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = comp.compress(header) + comp.flush(zlib.Z_FULL_FLUSH)
    zeros = bytes(chunk)
    block = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(header)
    for _ in range(inflated // chunk):
        crc = zlib.crc32(zeros, crc)
    size = (len(header) + inflated) & 0xFFFFFFFF
    with path.open("wb") as out:
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03" + head)
        for _ in range(inflated // chunk):
            out.write(block)
        out.write(comp.flush() + crc.to_bytes(4, "little") + size.to_bytes(4, "little"))
        out.write(per_record([record(3)]))


def test_member_inflating_to_1_gib_is_skipped_within_a_memory_cap(tmp_path) -> None:
    path = tmp_path / "bomb.warc.wat.gz"
    write_bomb(path)
    assert path.stat().st_size < 2 << 20
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    result, peak_kib = child.stdout.strip().splitlines()
    assert result == f"{{'record_too_large': 1}} ['{page_url(3)}']"
    assert int(peak_kib) < 1 << 20  # KiB: under 1 GiB


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_malformed_corpus_counts_the_reason_and_reads_the_rest(name) -> None:
    failures, pages = EXPECTED[name]
    table, stats = extract_image_links(str(HERE / name))
    assert dict(stats.records_failed) == failures
    assert sorted(set(table.column("page_url").to_pylist())) == [page_url(n) for n in pages]
    assert table.num_rows == 2 * len(pages)
    assert stats.records_read == stats.records_ok + sum(failures.values())


def test_malformed_corpus_is_what_the_script_writes() -> None:
    assert {p.name: p.read_bytes() for p in HERE.iterdir()} == corpus()


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Flip bytes, cut the end, or insert bytes, a few times."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(("flip", "cut", "insert"))
        at = rng.randrange(len(out) + 1)
        if kind == "flip" and at < len(out):
            out[at] ^= 1 << rng.randrange(8)
        elif kind == "cut":
            del out[at:]
        else:
            out[at:at] = rng.choice([b"\n", b"\r\n\r\n", b"WARC/1.0\r\n", b"\x1f\x8b\x08", b"{"])
    return bytes(out)


@pytest.mark.parametrize("form", ["per_record", "whole", "plain"])
def test_fuzzed_input_never_raises_and_every_record_is_accounted(tmp_path, form) -> None:
    records = [record(1), lf(record(2)), record(3)]
    good = {
        "per_record": per_record(records),
        "whole": gzip_member(b"".join(records)),
        "plain": b"".join(records),
    }[form]
    rng = random.Random(13)
    path = tmp_path / "fuzz.warc.wat.gz"
    outcomes = set()
    for _ in range(150):
        path.write_bytes(mutate(good, rng))
        table, stats = extract_image_links(str(path), max_record_bytes=1500)
        failed = sum(stats.records_failed.values())
        assert stats.records_read == stats.records_ok + failed
        assert table.num_rows <= 2 * stats.records_ok
        outcomes.add((failed > 0, table.num_rows > 0))
    assert (True, True) in outcomes  # faults found, and good records around them still read
