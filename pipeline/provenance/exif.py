"""EXIF: a generator named in Software / ImageDescription (or A1111 parameters in
UserComment) declares AI; a camera Make / Model declares another origin."""

from __future__ import annotations

from PIL import Image

from pipeline.provenance.generators import a1111_parameters, named_generator
from pipeline.provenance.signals import Signal

MAKE, MODEL, SOFTWARE, DESCRIPTION = 0x010F, 0x0110, 0x0131, 0x010E
EXIF_IFD, USER_COMMENT = 0x8769, 0x9286


def _text(value: object) -> str:
    if isinstance(value, bytes):
        if value[:8] in (b"UNICODE\x00", b"ASCII\x00\x00\x00"):
            codec = "utf-16-be" if value.startswith(b"UNICODE") else "ascii"
            return value[8:].decode(codec, "replace")
        return value.decode("utf-8", "replace")
    return str(value) if value is not None else ""


def exif_signals(block: bytes | None) -> tuple[list[Signal], list[str]]:
    """Signals of one EXIF block (TIFF structure), and notes on a block that does not parse."""
    if not block:
        return [], []
    exif = Image.Exif()
    try:
        exif.load(block)
        tags = (MAKE, MODEL, SOFTWARE, DESCRIPTION)
        base = {tag: _text(exif.get(tag)).strip("\x00 ") for tag in tags}
        comment = _text(exif.get_ifd(EXIF_IFD).get(USER_COMMENT))
    except Exception as exc:  # a hostile block is recorded, never fatal
        return [], [f"exif_unreadable:{type(exc).__name__}"]
    out: list[Signal] = []
    for tag, field in ((SOFTWARE, "Software"), (DESCRIPTION, "ImageDescription")):
        if name := named_generator(base[tag]):
            out.append(Signal("exif", "generator", name, "ai", detail=field))
    if a1111_parameters(comment):
        out.append(Signal("exif", "generator", "automatic1111", "ai", detail="UserComment"))
    camera = " ".join(v for v in (base[MAKE], base[MODEL]) if v)
    if camera:
        out.append(Signal("exif", "camera", camera[:200], "other", detail="Make/Model"))
    return out, []
