"""A WARC file's content as inflated pieces, gzip or not, with ISA-L, resyncing after corruption.

The form is told by content, not by name: a file that starts with the gzip magic is a run of
gzip members (Common Crawl writes one per record; other tools one for the whole file),
anything else is read as uncompressed WARC. Each member is inflated in pieces of at most
``piece_bytes`` (``max_length``), so a member that inflates to gigabytes never sits in
memory whole. A damaged member (truncated, garbage between members) costs only that member:
the reader scans forward to the next gzip magic and goes on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple

from isal import isal_zlib

GZIP_MAGIC = b"\x1f\x8b\x08"
PIECE_BYTES = 1 << 20
"""Inflated bytes per :class:`Piece` at most (a member's last piece may be smaller)."""
_RESYNC_KEEP = 8 << 20
"""Compressed bytes of a failing member kept for the resync scan (the rest is skipped)."""


class Piece(NamedTuple):
    """The next inflated bytes of one member (an uncompressed file is one member at 0).

    A named tuple: made once per record, where a frozen dataclass costs twice as much."""

    member: int
    """File offset where the member starts."""
    data: bytes
    read: int = 0
    """File bytes this piece accounts for: the member's compressed length on its last piece,
    the bytes themselves for an uncompressed file, 0 otherwise."""
    last: bool = False
    error: str | None = None
    """Set (on a last piece) when the member was not a whole, valid gzip member."""


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


def iter_pieces(
    stream: BinaryIO,
    chunk_size: int = 1 << 20,
    window: int = 1 << 14,
    piece_bytes: int = PIECE_BYTES,
) -> Iterator[Piece]:
    """Every member's inflated bytes in file order, gzip or uncompressed (told by content)."""
    first = stream.read(chunk_size)
    if not first:
        return
    if first.startswith(GZIP_MAGIC[:2]):
        yield from _gzip_pieces(stream, first, chunk_size, window, piece_bytes)
        return
    block = first
    while block:
        following = stream.read(chunk_size)
        yield Piece(0, block, len(block), last=not following)
        block = following


def iter_members(
    stream: BinaryIO, chunk_size: int = 1 << 20, window: int = 1 << 14
) -> Iterator[Member]:
    """Yield every gzip member of ``stream`` whole, and one error Member per damaged span."""
    parts: list[bytes] = []
    for piece in iter_pieces(stream, chunk_size, window):
        parts.append(piece.data)
        if piece.last:
            data = b"".join(parts) if piece.error is None else b""
            yield Member(piece.member, piece.read, data, piece.error)
            parts = []


def _gzip_pieces(
    stream: BinaryIO, first: bytes, chunk_size: int, window: int, piece_bytes: int
) -> Iterator[Piece]:
    """Pieces of every gzip member of ``stream`` (whose first block is ``first``).

    Input is fed to the inflater in windows of ``window`` bytes (doubling while a member goes
    on), so the bytes left over after a member's end (``unused_data``, a copy) stay small.
    """
    buf = first  # current block; buf[pos:] is unconsumed and starts at file offset ``start``
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
        raw: deque[bytes | memoryview] = deque()  # raw bytes fed, kept for resync
        raw_at, raw_size = start, 0
        decomp = isal_zlib.decompressobj(31)
        parts: list[bytes] = []
        size = fed = 0
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
            raw_size += len(piece)
            while raw_size - len(raw[0]) > _RESYNC_KEEP:
                raw_at += len(raw[0])
                raw_size -= len(raw.popleft())
            pos += len(piece)
            data: bytes | memoryview = piece
            try:
                while True:  # inflate at most piece_bytes at a time
                    out = decomp.decompress(data, piece_bytes)
                    parts.append(out)
                    size += len(out)
                    if size >= piece_bytes:
                        yield Piece(start, b"".join(parts))
                        parts, size = [], 0
                    data = decomp.unconsumed_tail
                    if decomp.eof or (not data and len(out) < piece_bytes):
                        break
            except isal_zlib.error as exc:
                error = f"gzip_error: {exc}"
                break
            if decomp.eof:
                unused = len(decomp.unused_data)
                pos -= unused
                fed += len(piece) - unused
                yield Piece(start, b"".join(parts), fed, last=True)
                start += fed
                break
            fed += len(piece)
            step = min(step * 2, chunk_size)
        if error is None:
            continue
        if size:  # what inflated before the damage: whole records in it are still read
            yield Piece(start, b"".join(parts))
        # Resync: skip to the next gzip magic after this member's first byte.
        buffered = b"".join(raw) + buf[pos:]
        at = raw_at  # file offset of buffered[0]
        idx = buffered.find(GZIP_MAGIC, max(start + 1 - at, 0))
        while idx < 0:
            more = read()
            if not more:
                break
            keep = min(len(buffered), 2)  # the magic may straddle a block boundary
            at += len(buffered) - keep
            buffered = buffered[len(buffered) - keep :] + more
            idx = buffered.find(GZIP_MAGIC, max(start + 1 - at, 0))
        if idx < 0:
            yield Piece(start, b"", at + len(buffered) - start, last=True, error=error)
            return
        yield Piece(start, b"", at + idx - start, last=True, error=error)
        start = at + idx
        buf, pos = buffered, idx
