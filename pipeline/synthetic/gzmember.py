"""Gzip members as Common Crawl writes them: one per record, a fixed 10-byte header."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

# ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=2 OS=3, byte for byte what CC's WARC/WAT files carry.
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03"
HEADER_LENGTH = len(_HEADER)
FOOTER_LENGTH = 8


def gzip_member(data: bytes, level: int = 6) -> bytes:
    """One complete gzip member (deterministic: no time, no file name)."""
    comp = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = comp.compress(data) + comp.flush()
    footer = struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)
    return _HEADER + body + footer


@dataclass(frozen=True)
class Member:
    """A gzip member found in a file: where it starts, its compressed size, its content."""

    offset: int
    length: int
    data: bytes

    @property
    def signed_crc(self) -> int:
        """CRC-32 of the inflated data as a signed 32-bit int (as CC's WAT writes it)."""
        crc = zlib.crc32(self.data)
        return crc - (1 << 32) if crc >= 1 << 31 else crc


def iter_members(blob: bytes, chunk: int = 1 << 16) -> Iterator[Member]:
    """Inflate a many-member gzip blob member by member, in linear time."""
    pos, end = 0, len(blob)
    while pos < end:
        d = zlib.decompressobj(zlib.MAX_WBITS | 16)
        parts, p = [], pos
        while not d.eof:
            if p >= end:
                raise ValueError(f"truncated gzip member at offset {pos}")
            piece = blob[p : p + chunk]
            parts.append(d.decompress(piece))
            p += len(piece)
        stop = p - len(d.unused_data)
        yield Member(pos, stop - pos, b"".join(parts))
        pos = stop
