"""Test images with one provenance signal each, written by Pillow and c2pa-python's Builder
(signed with the committed test signer in ``tests/data/c2pa``)."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

C2PA_DIR = Path(__file__).resolve().parent / "data" / "c2pa"
CHAIN, KEY, CA = C2PA_DIR / "chain.pem", C2PA_DIR / "key.pem", C2PA_DIR / "ca.pem"
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
A1111 = (
    "a castle on a hill, oil painting\nNegative prompt: blurry\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x512, Model hash: abc123"
)
COMFY_PROMPT = '{"3": {"class_type": "KSampler", "inputs": {"seed": 5}}}'
COMFY_WORKFLOW = '{"last_node_id": 9, "nodes": [{"id": 3, "type": "KSampler"}]}'


def xmp(source_type: str, padding: int = 0) -> str:
    """An XMP packet declaring ``source_type`` (an IPTC name), after ``padding`` filler bytes."""
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f"<!-- {'x' * padding} -->"
        '<rdf:Description rdf:about="" '
        'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">'
        f"<Iptc4xmpExt:DigitalSourceType>{IPTC}{source_type}</Iptc4xmpExt:DigitalSourceType>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    )


def image(color: tuple[int, int, int] = (200, 40, 40), side: int = 48) -> Image.Image:
    img = Image.new("RGB", (side, side), color)
    img.putpixel((1, 1), (0, 0, 0))
    return img


def save(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def plain(fmt: str = "PNG") -> bytes:
    return save(image(), fmt)


def with_xmp(source_type: str, fmt: str = "PNG", padding: int = 0) -> bytes:
    """An image whose XMP declares ``source_type``, in PNG (iTXt), JPEG (APP1) or WebP."""
    packet = xmp(source_type, padding)
    if fmt == "PNG":
        info = PngInfo()
        info.add_itxt("XML:com.adobe.xmp", packet)
        return save(image(), fmt, pnginfo=info)
    return save(image(), fmt, xmp=packet.encode())


def with_text(key: str, value: str, kind: str) -> bytes:
    """A PNG with one text chunk of ``kind`` tEXt, zTXt or iTXt."""
    info = PngInfo()
    if kind == "tEXt":
        info.add_text(key, value)
    elif kind == "zTXt":
        info.add_text(key, value, zip=True)
    else:
        info.add_itxt(key, value)
    return save(image(), "PNG", pnginfo=info)


def with_raw_chunk(kind: bytes, data: bytes) -> bytes:
    """A PNG with one chunk of ``kind`` holding ``data`` (Pillow's ``chunk`` writer)."""
    info = PngInfo()
    info.add(kind, data)
    return save(image(), "PNG", pnginfo=info)


def zip_bomb_ztxt(key: str, size: int) -> bytes:
    """A PNG whose zTXt chunk inflates to ``size`` bytes."""
    return with_raw_chunk(b"zTXt", key.encode() + b"\x00\x00" + zlib.compress(b"A" * size, 9))


def with_exif(fmt: str = "JPEG", **tags: str) -> bytes:
    """An image with EXIF IFD0 tags (Make, Model, Software, ImageDescription)."""
    ids = {"Make": 0x010F, "Model": 0x0110, "Software": 0x0131, "ImageDescription": 0x010E}
    exif = Image.Exif()
    for name, value in tags.items():
        exif[ids[name]] = value
    return save(image(), fmt, exif=exif)


def signer():
    import c2pa

    return c2pa.Signer.from_info(
        c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ED25519, CHAIN.read_bytes(), KEY.read_bytes(), None)
    )


def _context():
    import c2pa

    return c2pa.Context(
        settings=c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    )


def manifest(actions: list[dict] | None = None, training: dict | None = None,
             label: str = "cawg.training-mining") -> dict:  # fmt: skip
    assertions = []
    if actions:
        assertions.append({"label": "c2pa.actions", "data": {"actions": actions}})
    if training:
        entries = {k: {"use": v} for k, v in training.items()}
        assertions.append({"label": label, "data": {"entries": entries}})
    return {"claim_generator_info": [{"name": "tests", "version": "1"}], "assertions": assertions}


def created(source_type: str) -> dict:
    return {"action": "c2pa.created", "digitalSourceType": IPTC + source_type}


def signed(
    spec: dict,
    fmt: str = "PNG",
    base: bytes | None = None,
    ingredient: bytes | None = None,
    remote_url: str | None = None,
) -> bytes:
    """``base`` (default: a plain image) with a C2PA manifest built from ``spec``."""
    import c2pa

    mime = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}[fmt]
    base = base if base is not None else plain(fmt)
    with c2pa.Builder(spec, context=_context()) as builder:
        if ingredient is not None:
            meta = {"title": "parent.png", "relationship": "parentOf", "label": "p1"}
            builder.add_ingredient(meta, "image/png", io.BytesIO(ingredient))
        if remote_url:
            builder.set_no_embed()
            builder.set_remote_url(remote_url)
        out = io.BytesIO()
        builder.sign(signer(), mime, io.BytesIO(base), out)
    return out.getvalue()


def tamper_pixels(png: bytes) -> bytes:
    """``png`` with one byte of its image data flipped (the manifest is left as it was)."""
    at = png.index(b"IDAT") + 12
    return png[:at] + bytes([png[at] ^ 0xFF]) + png[at + 1 :]
