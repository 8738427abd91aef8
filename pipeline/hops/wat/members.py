"""Split a many-member gzip stream into its members, with ISA-L, resyncing after corruption.

Common Crawl writes one gzip member per WARC record, so a member's compressed offset is the
record's address in the file. Reading member by member keeps memory bounded by the largest
record, and a damaged member (truncated, garbage between members) costs only that member:
the reader scans forward to the next gzip magic and goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from isal import isal_zlib

GZIP_MAGIC = b"\x1f\x8b\x08"


@dataclass(frozen=True, slots=True)
class Member:
    """One gzip member: its compressed offset, compressed length and inflated bytes.

    ``error`` is set (and ``data`` empty) when the bytes at ``offset`` were not a whole,
    valid member; ``length`` then covers the skipped bytes.
    """

    offset: int
    length: int
    data: bytes
    error: str | None = None


def iter_members(
    stream: BinaryIO, chunk_size: int = 1 << 20, window: int = 1 << 14
) -> Iterator[Member]:
    """Yield every gzip member of ``stream`` in order, and one error Member per damaged span.

    Input is fed to the inflater in windows of ``window`` bytes (doubling while a member goes
    on), so the bytes left over after a member's end (``unused_data``, a copy) stay small.
    """
    buf = b""  # current block; buf[pos:] is unconsumed and starts at absolute offset ``start``
    pos = 0
    start = 0
    eof = False

    def read() -> bytes:
        nonlocal eof
        block = stream.read(chunk_size)
        if not block:
            eof = True
        return block

    while True:
        if pos >= len(buf):
            if eof:
                return
            buf, pos = read(), 0
            if not buf:
                return
        view = memoryview(buf)
        raw: list[bytes | memoryview] = []  # raw bytes fed for this member, kept for resync
        decomp = isal_zlib.decompressobj(31)
        parts: list[bytes] = []
        fed = 0
        step = window
        error: str | None = None
        while True:
            if pos >= len(buf):
                buf, pos = read(), 0
                if not buf:
                    error = "truncated_member"
                    break
                view = memoryview(buf)
            piece = view[pos : pos + step]
            raw.append(piece)
            pos += len(piece)
            try:
                parts.append(decomp.decompress(piece))
            except isal_zlib.error as exc:
                error = f"gzip_error: {exc}"
                break
            if decomp.eof:
                unused = len(decomp.unused_data)
                pos -= unused
                fed += len(piece) - unused
                yield Member(start, fed, b"".join(parts))
                start += fed
                break
            fed += len(piece)
            step = min(step * 2, chunk_size)
        if error is None:
            continue
        # Resync: skip to the next gzip magic after this member's first byte.
        buffered = b"".join(raw) + buf[pos:]
        skipped = 0  # absolute offset of buffered[0] is start + skipped
        idx = buffered.find(GZIP_MAGIC, 1)
        while idx < 0:
            more = read()
            if not more:
                break
            keep = min(len(buffered), 2)  # the magic may straddle a block boundary
            skipped += len(buffered) - keep
            buffered = buffered[len(buffered) - keep :] + more
            idx = buffered.find(GZIP_MAGIC, max(1 - skipped, 0))
        if idx < 0:
            yield Member(start, skipped + len(buffered), b"", error)
            return
        yield Member(start, skipped + idx, b"", error)
        start += skipped + idx
        buf, pos = buffered, idx
