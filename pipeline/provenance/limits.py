"""Caps on what the provenance reader reads: hostile metadata is cut short, never fatal."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Size and time caps for one file's metadata."""

    max_file_bytes: int = 64 * 1024 * 1024
    """Files larger than this are not read for metadata at all (``oversize`` is recorded)."""
    max_segments: int = 4096
    """PNG chunks, JPEG segments or RIFF chunks walked before the walk stops."""
    max_xmp_bytes: int = 256 * 1024
    """XMP packets beyond this are cut to this size before they are searched."""
    max_text_bytes: int = 256 * 1024
    """A text chunk's value (after inflating ``zTXt``/``iTXt``) is cut to this size."""
    max_exif_bytes: int = 256 * 1024
    """EXIF blocks larger than this are not parsed."""
    max_c2pa_bytes: int = 16 * 1024 * 1024
    """Manifest stores larger than this (JUMBF bytes in the file) are not verified."""
    max_seconds: float = 2.0
    """Once one file's reading has taken this long, the remaining signals are skipped."""


DEFAULT_LIMITS = Limits()
