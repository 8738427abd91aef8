"""Walk an image file's metadata containers (PNG chunks, JPEG segments, WebP RIFF chunks).

Only lengths are followed: pixel data is skipped, never decoded. What is found is returned
as raw pieces (text chunks, XMP packets, the EXIF block, whether a C2PA store is embedded)
for the signal modules; every cap hit or structural fault is a note, never an exception.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from pipeline.provenance.limits import DEFAULT_LIMITS, Limits

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_PNG_KEY = "XML:com.adobe.xmp"
XMP_JPEG_PREFIX = b"http://ns.adobe.com/xap/1.0/\x00"
EXIF_JPEG_PREFIX = b"Exif\x00\x00"


@dataclass
class TextChunk:
    """A PNG text chunk: its key, its (possibly cut) value and its chunk type."""

    key: str
    value: str
    kind: str


@dataclass
class Container:
    """The metadata pieces of one file."""

    format: str | None = None
    """``png``, ``jpeg``, ``webp`` or None (not one of them)."""
    texts: list[TextChunk] = field(default_factory=list)
    xmp: list[bytes] = field(default_factory=list)
    exif: bytes | None = None
    """The TIFF-structured EXIF block, without JPEG's ``Exif\\0\\0`` prefix."""
    c2pa_bytes: int = 0
    """Bytes of embedded C2PA (JUMBF) data; 0: none embedded."""
    notes: list[str] = field(default_factory=list)
    """Caps hit and structural faults, e.g. ``xmp_capped``, ``png_truncated``."""


def sniff(body: bytes) -> str | None:
    """The container format from the first bytes."""
    if body.startswith(PNG_SIGNATURE):
        return "png"
    if body.startswith(b"\xff\xd8"):
        return "jpeg"
    if body[:4] == b"RIFF" and body[8:12] == b"WEBP":
        return "webp"
    return None


def walk(body: bytes, limits: Limits = DEFAULT_LIMITS) -> Container:
    """The metadata pieces of ``body``; unknown formats give an empty container."""
    out = Container(format=sniff(body))
    if out.format == "png":
        _walk_png(body, out, limits)
    elif out.format == "jpeg":
        _walk_jpeg(body, out, limits)
    elif out.format == "webp":
        _walk_webp(body, out, limits)
    return out


def _add_xmp(out: Container, data: bytes, limits: Limits) -> None:
    if len(data) > limits.max_xmp_bytes:
        out.notes.append(f"xmp_capped:{len(data)}")
        data = data[: limits.max_xmp_bytes]
    out.xmp.append(data)


def _add_exif(out: Container, data: bytes, limits: Limits) -> None:
    if len(data) > limits.max_exif_bytes:
        out.notes.append(f"exif_skipped:{len(data)}")
    elif out.exif is None:
        out.exif = data


def _inflate(data: bytes, limits: Limits, out: Container) -> bytes | None:
    """zlib data inflated to at most ``max_text_bytes`` (a zip bomb stops there)."""
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(data, limits.max_text_bytes)
    except zlib.error:
        out.notes.append("text_inflate_failed")
        return None
    if inflater.unconsumed_tail:
        out.notes.append("text_capped")
    return text


def _cut(text: bytes, limits: Limits, out: Container) -> bytes:
    if len(text) > limits.max_text_bytes:
        out.notes.append("text_capped")
        return text[: limits.max_text_bytes]
    return text


def _png_text(kind: str, data: bytes, limits: Limits, out: Container) -> None:
    key_raw, sep, rest = data.partition(b"\x00")
    if not sep:
        out.notes.append(f"{kind}_malformed")
        return
    key = key_raw[:79].decode("latin-1")
    if kind == "tEXt":
        value: bytes | None = _cut(rest, limits, out)
        encoding = "latin-1"
    elif kind == "zTXt":
        value, encoding = _inflate(rest[1:], limits, out), "latin-1"
    else:  # iTXt: flag, method, language\0, translated key\0, text
        if len(rest) < 2:
            out.notes.append("iTXt_malformed")
            return
        compressed, tail = rest[0], rest[2:]
        parts = tail.split(b"\x00", 2)
        if len(parts) < 3:
            out.notes.append("iTXt_malformed")
            return
        value = _inflate(parts[2], limits, out) if compressed else _cut(parts[2], limits, out)
        encoding = "utf-8"
    if value is None:
        return
    if key == XMP_PNG_KEY:
        _add_xmp(out, value, limits)
    else:
        out.texts.append(TextChunk(key, value.decode(encoding, "replace"), kind))


def _walk_png(body: bytes, out: Container, limits: Limits) -> None:
    pos, seen = len(PNG_SIGNATURE), 0
    while pos + 8 <= len(body):
        seen += 1
        if seen > limits.max_segments:
            out.notes.append("segments_capped")
            return
        length, kind_raw = struct.unpack(">I4s", body[pos : pos + 8])
        start, end = pos + 8, pos + 8 + length
        if end + 4 > len(body):
            out.notes.append("png_truncated")
            return
        kind = kind_raw.decode("latin-1")
        if kind in ("tEXt", "zTXt", "iTXt"):
            _png_text(kind, body[start:end], limits, out)
        elif kind == "eXIf":
            _add_exif(out, body[start:end], limits)
        elif kind == "caBX":
            out.c2pa_bytes += length
        elif kind == "IEND":
            return
        pos = end + 4


def _walk_jpeg(body: bytes, out: Container, limits: Limits) -> None:
    pos, seen = 2, 0
    while pos + 4 <= len(body):
        seen += 1
        if seen > limits.max_segments:
            out.notes.append("segments_capped")
            return
        if body[pos] != 0xFF:
            out.notes.append("jpeg_malformed")
            return
        marker = body[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: metadata is before
            return
        (length,) = struct.unpack(">H", body[pos + 2 : pos + 4])
        start, end = pos + 4, pos + 2 + length
        if length < 2 or end > len(body):
            out.notes.append("jpeg_truncated")
            return
        data = body[start:end]
        if marker == 0xE1 and data.startswith(EXIF_JPEG_PREFIX):
            _add_exif(out, data[len(EXIF_JPEG_PREFIX) :], limits)
        elif marker == 0xE1 and data.startswith(XMP_JPEG_PREFIX):
            _add_xmp(out, data[len(XMP_JPEG_PREFIX) :], limits)
        elif marker == 0xEB and data.startswith(b"JP"):  # JUMBF (C2PA) in APP11
            out.c2pa_bytes += len(data)
        pos = end


def _walk_webp(body: bytes, out: Container, limits: Limits) -> None:
    pos, seen = 12, 0
    while pos + 8 <= len(body):
        seen += 1
        if seen > limits.max_segments:
            out.notes.append("segments_capped")
            return
        fourcc, length = body[pos : pos + 4], struct.unpack("<I", body[pos + 4 : pos + 8])[0]
        start, end = pos + 8, pos + 8 + length
        if end > len(body):
            out.notes.append("webp_truncated")
            return
        if fourcc == b"XMP ":
            _add_xmp(out, body[start:end], limits)
        elif fourcc == b"EXIF":
            data = body[start:end]
            if data.startswith(EXIF_JPEG_PREFIX):
                data = data[len(EXIF_JPEG_PREFIX) :]
            _add_exif(out, data, limits)
        elif fourcc == b"C2PA":
            out.c2pa_bytes += length
        pos = end + (length & 1)
