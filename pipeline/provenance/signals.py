"""One provenance signal, and the IPTC digital source types that say what made an image."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Declares = Literal["ai", "other"] | None

IPTC_SOURCE_TYPE_URI = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED_MODEL_TYPES = frozenset(
    {"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "compositeSynthetic"}
)
"""IPTC digital source types that declare a trained model (``ai_generated`` true)."""
OTHER_ORIGIN_TYPES = frozenset(
    {
        "digitalCapture",
        "computationalCapture",
        "negativeFilm",
        "positiveFilm",
        "print",
        "minorHumanEdits",
        "humanEdits",
        "compositeCapture",
        "algorithmicallyEnhanced",
        "algorithmicMedia",
        "dataDrivenMedia",
        "digitalArt",
        "digitalCreation",
        "virtualRecording",
        "composite",
        "screenCapture",
        "softwareImage",
    }
)
"""IPTC digital source types of another origin. ``algorithmicMedia`` is made by an algorithm
(a fractal, a procedural drawing), not a trained model, so it declares no AI."""


@dataclass(frozen=True)
class Signal:
    """What one piece of metadata says, and whether the rules count it."""

    source: str
    """Where it was read: ``c2pa``, ``c2pa_ingredient``, ``c2pa_action``, ``xmp``,
    ``png_text``, ``exif``, ``container``."""
    kind: str
    """``digital_source_type``, ``generator``, ``camera``, ``training_mining``,
    ``c2pa_validation`` or ``note``."""
    value: str
    declares: Declares = None
    """``ai`` (a trained model made it), ``other`` (another origin) or None (neither)."""
    counted: bool = True
    """False where the claim is void (its manifest's content or signature fails)."""
    detail: str | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def source_type_name(value: str) -> str:
    """``trainedAlgorithmicMedia`` from its IPTC URI (any scheme), or the value as given."""
    text = value.strip()
    marker = "digitalsourcetype/"
    i = text.lower().rfind(marker)
    return text[i + len(marker) :].strip("/ ") if i >= 0 else text


def declares_for(source_type: str) -> Declares:
    """What an IPTC digital source type (URI or name) declares."""
    name = source_type_name(source_type)
    if name in TRAINED_MODEL_TYPES:
        return "ai"
    if name in OTHER_ORIGIN_TYPES:
        return "other"
    return None
