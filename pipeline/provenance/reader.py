"""Read every provenance signal of one file's raw bytes (before any decode or re-encode)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pipeline.provenance.c2pa_store import ABSENT, INVALID, C2paResult, read_c2pa
from pipeline.provenance.combine import Provenance, ai_generated, training_mining
from pipeline.provenance.container import walk
from pipeline.provenance.exif import exif_signals
from pipeline.provenance.generators import chunk_signals
from pipeline.provenance.limits import DEFAULT_LIMITS, Limits
from pipeline.provenance.signals import Signal
from pipeline.provenance.xmp import remote_manifest_url, xmp_signals
from pipeline.settings import Settings


def _note(value: str, detail: str | None = None) -> Signal:
    return Signal("container", "note", value, None, True, detail)


def read_provenance(
    body: bytes, limits: Limits = DEFAULT_LIMITS, trust_anchors: str = ""
) -> Provenance:
    """The provenance of ``body``; hostile metadata is capped and recorded, never raised.

    ``trust_anchors``: a PEM bundle's path; a manifest signed under it is ``trusted``."""
    if len(body) > limits.max_file_bytes:
        return Provenance(signals=[_note("oversize", f"{len(body)} B")])
    started = time.perf_counter()
    box = walk(body, limits)
    signals = [_note(n) for n in box.notes]
    steps = (
        lambda: xmp_signals(box.xmp),
        lambda: chunk_signals(box.texts),
        lambda: _exif(box.exif),
    )
    for step in steps:
        if time.perf_counter() - started > limits.max_seconds:
            signals.append(_note("time_capped"))
            break
        signals += step()
    c2pa = C2paResult()
    if box.c2pa_bytes > limits.max_c2pa_bytes:
        c2pa.state = INVALID
        signals.append(_note("c2pa_capped", f"{box.c2pa_bytes} B not verified"))
    elif box.c2pa_bytes or remote_manifest_url(box.xmp):
        if time.perf_counter() - started > limits.max_seconds:
            c2pa.state = None  # type: ignore[assignment]
            signals.append(_note("time_capped", "c2pa not read"))
        else:
            c2pa = read_c2pa(body, box.format, trust_anchors)
    signals = c2pa.signals + signals
    return Provenance(
        ai_generated=ai_generated(signals),
        c2pa_state=c2pa.state if c2pa.state is not None else None,
        training_mining=training_mining(c2pa.training.values()),
        signals=signals,
    )


@dataclass(frozen=True)
class ProvenancePolicy:
    """Whether and how a hop reads provenance: its caps and its C2PA trust anchors."""

    enabled: bool = True
    trust_anchors: str = ""
    """A PEM bundle's path (``CRAWL2DIFFUSION_C2PA_TRUST_ANCHORS``); empty: none trusted."""
    limits: Limits = DEFAULT_LIMITS

    @classmethod
    def from_settings(cls, settings: Settings) -> ProvenancePolicy:
        """Reading on, with the settings' trust anchors."""
        return cls(trust_anchors=settings.c2pa_trust_anchors)

    def read(self, body: bytes) -> Provenance | None:
        """The provenance of ``body``, or None when reading is off."""
        return read_provenance(body, self.limits, self.trust_anchors) if self.enabled else None


def _exif(block: bytes | None) -> list[Signal]:
    found, notes = exif_signals(block)
    return found + [_note(n) for n in notes]


__all__ = ["ABSENT", "Provenance", "ProvenancePolicy", "read_provenance"]
