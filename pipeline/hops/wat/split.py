"""Cut a WARC file's inflated pieces into records, in any form, within a record-size cap.

A member (:mod:`pipeline.hops.wat.members`; an uncompressed file is one member) holds one
record (Common Crawl) or many (whole-file gzip, uncompressed). A record is cut at its
``Content-Length`` when its block is followed by blank lines and then a ``WARC/`` line or the
member's end; else (wrong or missing length, garbage) at the next line that starts with
``WARC/``, so a bad record costs only itself, and the parser names its fault. A record longer
than ``max_record_bytes`` is counted ``record_too_large`` and its bytes are skipped as they
stream in, never held.

Offsets: a record alone in its gzip member has the member's file offset (Common Crawl's
address: seek there and inflate). A record of a member holding several, or of an
uncompressed file, has its offset in the file's inflated stream (every member's inflated
bytes in file order; for an uncompressed file, its byte offset in the file).
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Generator, Iterable, Iterator
from typing import NamedTuple

from pipeline.hops.wat.members import Piece

DEFAULT_MAX_RECORD_BYTES = 64 << 20
"""Largest record read (header and block); Common Crawl's WAT records are far smaller."""

_HEADER_END = re.compile(rb"\n\r?\n")
_NEXT_RECORD = re.compile(rb"\nWARC/")
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*([0-9]{1,18})[ \t]*\r?$")
_NOT_SPACE = re.compile(rb"[^\r\n\t ]")
_OVERLAP = 8
_TOO_LARGE = "record_too_large"


class RawRecord(NamedTuple):
    """One record's bytes (header, block, trailer), or the reason it has none (a named
    tuple, like :class:`~pipeline.hops.wat.members.Piece`)."""

    offset: int
    length: int
    """File bytes this record accounts for (a member's last record carries the member's)."""
    data: bytes
    error: str | None = None


class _Member:
    """One member's inflated bytes, pulled a piece at a time; ``buf[0]`` is at offset ``at``.

    Bytes before ``keep`` may be dropped when the next piece comes in.
    """

    def __init__(self, pieces: Iterator[Piece]) -> None:
        self.pieces = pieces
        self.buf: bytes | bytearray = b""
        self.at = self.keep = self.read = 0
        self.done = False
        self.error: str | None = None

    @property
    def end(self) -> int:
        return self.at + len(self.buf)

    def pull(self) -> bool:
        """Append the next piece; False once the member has ended."""
        piece = None if self.done else next(self.pieces, None)
        if piece is None:
            self.done = True
            return False
        self.read += piece.read
        self.done, self.error = piece.last, piece.error
        cut = min(self.keep - self.at, len(self.buf))
        if cut > 0:
            self.buf = self.buf[cut:]
            self.at += cut
        if not self.buf:
            self.buf = piece.data
        elif piece.data:
            self.buf = bytearray(self.buf) if isinstance(self.buf, bytes) else self.buf
            self.buf += piece.data
        return True

    def search(self, pattern: re.Pattern[bytes], start: int, limit: int) -> int | None:
        """File-independent offset of ``pattern``'s first match at or after ``start``; None at
        the member's end; -1 once ``limit`` bytes from ``start`` hold none."""
        scanned = start
        while True:
            match = pattern.search(self.buf, max(scanned - self.at, 0))
            if match is not None:
                return self.at + match.start()
            if self.end - start > limit:
                return -1
            scanned = max(start, self.end - _OVERLAP)
            if not self.pull():
                return None

    def fill(self, upto: int) -> None:
        """Pull until ``upto`` is buffered or the member ends."""
        while self.end < upto and self.pull():
            pass

    def skip_to(self, offset: int) -> None:
        """Drop everything before ``offset``, pulling (and dropping) pieces until there."""
        self.keep = offset
        self.fill(offset)
        self.keep = min(offset, self.end)

    def cut(self, start: int, end: int) -> bytes:
        lo, hi = start - self.at, end - self.at
        return self.buf[lo:hi] if isinstance(self.buf, bytes) else bytes(self.buf[lo:hi])


def _record_end(m: _Member, start: int, cap: int) -> tuple[int, str | None]:
    """Where the record at ``start`` ends, and ``record_too_large`` if it is over ``cap``."""
    header = m.search(_HEADER_END, start, cap)
    if header is not None and header >= 0:
        header_end = m.buf.index(b"\n", header - m.at + 1) + 1 + m.at
        declared = _CONTENT_LENGTH.search(m.buf, start - m.at, header_end - m.at)
        if m.buf[start - m.at : start - m.at + 5] == b"WARC/" and declared is not None:
            block_end = header_end + int(declared[1])
            if block_end - start > cap:
                m.skip_to(block_end)
                return block_end, _TOO_LARGE
            after = block_end
            while True:  # blank lines after the block, then the next record or the end
                m.fill(after + 5)
                found = _NOT_SPACE.search(m.buf, after - m.at)
                if found is not None or m.done or m.end - start > cap:
                    break
                after = m.end
            if found is None and m.done:
                return m.end, None
            if found is not None and m.buf[found.start() : found.start() + 5] == b"WARC/":
                return m.at + found.start(), None
    nxt = m.search(_NEXT_RECORD, start, cap)
    if nxt is None:
        return m.end, None
    if nxt >= 0:
        return nxt + 1, None
    while nxt is not None and nxt < 0:  # over the cap: drop bytes until the next record
        m.keep = m.end - _OVERLAP
        nxt = m.search(_NEXT_RECORD, m.keep, cap)
    return (m.end if nxt is None else nxt + 1), _TOO_LARGE


def _member_records(
    offset: int, pieces: Iterator[Piece], base: int, cap: int
) -> Generator[RawRecord, None, int]:
    """The records of one member; returns its inflated length."""
    m = _Member(pieces)
    m.pull()
    held: RawRecord | None = None  # the latest record, sent once the next one is cut
    count = 0
    pos = 0
    while True:
        while True:  # skip blank lines between records
            found = _NOT_SPACE.search(m.buf, max(pos - m.at, 0))
            if found is not None or not m.pull():
                break
        if found is None:
            break
        start = m.at + found.start()
        m.keep = start
        end, error = _record_end(m, start, cap)
        if m.error is not None and end >= m.end and m.done:
            pos = start
            break  # cut short by the member's damage: counted below
        data = b"" if error else m.cut(start, end)
        if held is not None:
            yield held
        held = RawRecord(base + start, 0, data, error)
        count += 1
        pos = m.keep = end
    if m.error is not None:
        if held is not None:
            yield held
        yield RawRecord(offset if count == 0 else base + pos, m.read, b"", m.error)
    elif held is None:
        yield RawRecord(offset, m.read, b"", "empty_record")
    elif count == 1:
        yield RawRecord(offset, m.read, held.data, held.error)
    else:
        yield RawRecord(held.offset, m.read, held.data, held.error)
    return m.end


def _one_whole_record(data: bytes) -> bool:
    """Whether ``data`` (starting ``WARC/``) is one record whose CRLF header's
    ``Content-Length`` ends its block where only blank lines follow: read from the header,
    without scanning the block (the slow way cuts such a member the same). The header is read
    with ``find``, as written, not with :data:`_CONTENT_LENGTH`: the regex would add 0.19 s to
    a 200 MB file; a header it would read and this does not goes the slow way."""
    header_end = data.find(b"\r\n\r\n")
    at = data.find(b"\r\nContent-Length:", 0, header_end) if header_end > 0 else -1
    if at < 0:
        return False
    try:
        declared = int(data[at + 17 : data.find(b"\r\n", at + 17)])
    except ValueError:
        return False
    block_end = header_end + 4 + declared
    return declared >= 0 and block_end <= len(data) and _NOT_SPACE.search(data, block_end) is None


def iter_records(
    pieces: Iterable[Piece], max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
) -> Iterator[RawRecord]:
    """Every record of a file's pieces (:func:`pipeline.hops.wat.members.iter_pieces`)."""
    inflated = 0
    for offset, group in itertools.groupby(pieces, key=operator.attrgetter("member")):
        first = next(group)
        data = first.data
        if (  # the usual case, one whole record in one piece: no need to cut it
            first.last
            and first.error is None
            and data[:5] == b"WARC/"
            and len(data) <= max_record_bytes
            and _one_whole_record(data)
        ):
            yield RawRecord(offset, first.read, data)
            inflated += len(data)
            continue
        group = itertools.chain((first,), group)
        inflated += yield from _member_records(offset, group, inflated, max_record_bytes)
