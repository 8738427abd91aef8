"""IPTC ``Iptc4xmpExt:DigitalSourceType`` (and a C2PA remote-manifest reference) in XMP.

The packet is searched, not parsed: no entity is expanded and no DTD is read. Every pattern
starts at a literal and its repeats are bounded, so a hostile packet costs at most a linear
scan of its capped bytes (see :class:`pipeline.provenance.limits.Limits`).
"""

from __future__ import annotations

import re

from pipeline.provenance.signals import Signal, declares_for, source_type_name

_SOURCE_TYPE = re.compile(
    rb""":DigitalSourceType\s*(?:=\s*["']([^"'<>]{1,512})["']"""
    rb"""|>\s*([^<>]{1,512}?)\s*<"""
    rb"""|[^>]{0,256}?rdf:resource\s*=\s*["']([^"'<>]{1,512})["'])"""
)
_PROVENANCE = re.compile(
    rb"""dcterms:provenance\s*(?:=\s*["']([^"'<>]{1,2048})["']|>\s*([^<>]{1,2048}?)\s*<)"""
)


def xmp_signals(packets: list[bytes]) -> list[Signal]:
    """One signal per DigitalSourceType value in the packets (duplicates kept once)."""
    seen: set[str] = set()
    out: list[Signal] = []
    for packet in packets:
        for match in _SOURCE_TYPE.finditer(packet):
            raw = next(g for g in match.groups() if g is not None)
            value = raw.decode("utf-8", "replace").strip()
            if not value or value in seen:
                continue
            seen.add(value)
            out.append(
                Signal("xmp", "digital_source_type", source_type_name(value), declares_for(value))
            )
    return out


def remote_manifest_url(packets: list[bytes]) -> str | None:
    """The ``dcterms:provenance`` URL a C2PA remote manifest is announced by, if any."""
    for packet in packets:
        match = _PROVENANCE.search(packet)
        if match:
            raw = next(g for g in match.groups() if g is not None)
            return raw.decode("utf-8", "replace").strip()
    return None
