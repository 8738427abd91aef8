"""Generator signals: A1111 / ComfyUI text chunks, and a generator named in a text field."""

from __future__ import annotations

import json
import re

from pipeline.provenance.container import TextChunk
from pipeline.provenance.signals import Signal

GENERATOR_NAMES = re.compile(
    r"\b(stable[ -]?diffusion|sdxl|midjourney|dall[-·]?e|novelai|comfyui|automatic1111|a1111|"
    r"invokeai|fooocus|adobe firefly|imagen|leonardo\.ai|flux\.1|ideogram|bing image creator|"
    r"crawl2diffusion)\b",
    re.IGNORECASE,
)
"""Generators (image models and their front ends) a Software or description field may name."""
A1111_MARKERS = re.compile(r"\b(Steps|Sampler|CFG scale|Seed|Model hash):\s*\S")
LABEL_KEY = "crawl2diffusion"
"""The text chunk this project writes into its own samples (prompt, seed, checkpoint)."""


def named_generator(text: str) -> str | None:
    """The generator ``text`` names (lower case), if any."""
    match = GENERATOR_NAMES.search(text[:4096])
    return match.group(1).lower() if match else None


def a1111_parameters(text: str) -> bool:
    """Whether ``text`` reads like AUTOMATIC1111's ``parameters`` (``Steps: 20, Sampler: ...``)."""
    return len(A1111_MARKERS.findall(text[-8192:])) >= 2


def _json(text: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _comfyui(key: str, text: str) -> bool:
    """ComfyUI's API ``prompt`` (node id -> {class_type, inputs}) or its ``workflow`` graph."""
    data = _json(text)
    if not isinstance(data, dict):
        return False
    if key == "workflow":
        return isinstance(data.get("nodes"), list)
    return any(isinstance(v, dict) and "class_type" in v for v in list(data.values())[:1000])


def chunk_signals(texts: list[TextChunk]) -> list[Signal]:
    """A signal per text chunk that names or carries a generator."""
    out: list[Signal] = []
    for chunk in texts:
        key, text, where = chunk.key, chunk.value, f"{chunk.kind} {chunk.key}"
        if key == "parameters" and a1111_parameters(text):
            out.append(Signal("png_text", "generator", "automatic1111", "ai", detail=where))
        elif key in ("prompt", "workflow") and _comfyui(key, text):
            out.append(Signal("png_text", "generator", "comfyui", "ai", detail=where))
        elif key == LABEL_KEY and isinstance(_json(text), dict):
            out.append(Signal("png_text", "generator", LABEL_KEY, "ai", detail=where))
        elif key in ("Software", "Description", "Comment") and (name := named_generator(text)):
            out.append(Signal("png_text", "generator", name, "ai", detail=where))
    return out
