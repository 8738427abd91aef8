"""The feedback crawl's image files: each carries exactly one provenance signal, or none.

Written with real libraries only: Pillow for XMP, PNG text chunks and EXIF, c2pa-python's
``Builder`` for C2PA manifests (signed by a ``seeded_signer.SeededSigner``).

- ``c2pa``: a PNG with a C2PA manifest whose ``c2pa.created`` action says
  ``trainedAlgorithmicMedia``;
- ``xmp``: a JPEG whose XMP says ``Iptc4xmpExt:DigitalSourceType`` = ``trainedAlgorithmicMedia``;
- ``a1111``: a PNG with AUTOMATIC1111's ``parameters`` text chunk (prompt, steps, sampler...);
- ``comfyui``: a PNG with ComfyUI's ``prompt`` and ``workflow`` text chunks;
- ``exif``: a JPEG whose EXIF ``Software`` names the generator;
- ``stripped`` (:data:`STRIPPED`): a PNG with no metadata at all;
- :func:`not_allowed_png`: a human drawing whose C2PA credentials say AI training
  ``notAllowed`` (CAWG ``cawg.training-mining``).

C2PA's salted hashes are random (the SDK draws the salts), so a signed file's bytes differ
from run to run; every other file is the same bytes for the same pixels and parameters.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from pipeline.provenance.seeded_signer import SeededSigner
from pipeline.provenance.signals import IPTC_SOURCE_TYPE_URI

SIGNALS = ("c2pa", "xmp", "a1111", "comfyui", "exif")
"""The signals a feedback AI image may carry, one per file."""
STRIPPED = "stripped"
"""An AI image stripped of all metadata: nothing in its bytes says how it was made."""
GENERATOR = "crawl2diffusion"
"""The generator the files name (this project's own diffusion model)."""
TRAINED = IPTC_SOURCE_TYPE_URI + "trainedAlgorithmicMedia"
EXIF_SOFTWARE = 0x0131
FORMATS = {"c2pa": "PNG", "xmp": "JPEG", "a1111": "PNG", "comfyui": "PNG", "exif": "JPEG",
           STRIPPED: "PNG"}  # fmt: skip
"""The file format each share is written in."""
JPEG_QUALITY = 92


@dataclass(frozen=True)
class Generation:
    """How an AI image was made: what its metadata may say."""

    prompt: str
    seed: int
    steps: int
    checkpoint_sha256: str


def _xmp(source_type_uri: str) -> bytes:
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" '
        'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">'
        f"<Iptc4xmpExt:DigitalSourceType>{source_type_uri}</Iptc4xmpExt:DigitalSourceType>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()


def _save(image: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format=fmt, **params)
    return buf.getvalue()


def _a1111(gen: Generation, side: int) -> str:
    return (
        f"{gen.prompt}\nNegative prompt: blurry\nSteps: {gen.steps}, Sampler: DDIM, "
        f"CFG scale: 3, Seed: {gen.seed}, Size: {side}x{side}, "
        f"Model hash: {gen.checkpoint_sha256[:10]}, Model: {GENERATOR}"
    )


def _comfyui(gen: Generation) -> tuple[str, str]:
    prompt = {
        "3": {"class_type": "KSampler", "inputs": {"seed": gen.seed, "steps": gen.steps,
                                                     "cfg": 3.0, "sampler_name": "ddim"}},
        "4": {"class_type": "CheckpointLoaderSimple",
              "inputs": {"ckpt_name": f"{GENERATOR}-{gen.checkpoint_sha256[:10]}.safetensors"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": gen.prompt}},
    }  # fmt: skip
    workflow = {
        "last_node_id": 6,
        "nodes": [{"id": int(k), "type": v["class_type"]} for k, v in prompt.items()],
    }
    return json.dumps(prompt), json.dumps(workflow)


def _context():
    import c2pa

    settings = {"builder": {"thumbnail": {"enabled": False}}}
    return c2pa.Context(settings=c2pa.Settings.from_dict(settings))


def sign(png: bytes, signer: SeededSigner, manifest: dict) -> bytes:
    """``png`` with a C2PA manifest built from ``manifest``, signed by ``signer`` (Ed25519)."""
    import c2pa

    info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ED25519, signer.chain, signer.key, None)
    out = io.BytesIO()
    with c2pa.Builder(manifest, context=_context()) as builder:
        builder.sign(c2pa.Signer.from_info(info), "image/png", io.BytesIO(png), out)
    return out.getvalue()


def _manifest(title: str, actions: list[dict], extra: list[dict] | None = None) -> dict:
    assertions = [{"label": "c2pa.actions", "data": {"actions": actions}}, *(extra or [])]
    return {
        "claim_generator_info": [{"name": GENERATOR, "version": "synthetic-web"}],
        "title": title,
        "assertions": assertions,
    }


def ai_file(image: Image.Image, share: str, gen: Generation, signer: SeededSigner) -> bytes:
    """``image`` encoded for ``share`` (a signal of :data:`SIGNALS`, or :data:`STRIPPED`)."""
    side = image.width
    if share == "c2pa":
        action = {"action": "c2pa.created", "digitalSourceType": TRAINED,
                  "softwareAgent": {"name": GENERATOR}}  # fmt: skip
        return sign(_save(image, "PNG"), signer, _manifest(f"seed {gen.seed}", [action]))
    if share == "xmp":
        return _save(image, "JPEG", quality=JPEG_QUALITY, xmp=_xmp(TRAINED))
    if share == "a1111":
        info = PngInfo()
        info.add_text("parameters", _a1111(gen, side))
        return _save(image, "PNG", pnginfo=info)
    if share == "comfyui":
        prompt, workflow = _comfyui(gen)
        info = PngInfo()
        info.add_text("prompt", prompt)
        info.add_text("workflow", workflow)
        return _save(image, "PNG", pnginfo=info)
    if share == "exif":
        exif = Image.Exif()
        exif[EXIF_SOFTWARE] = f"{GENERATOR} (diffusers), checkpoint {gen.checkpoint_sha256[:10]}"
        return _save(image, "JPEG", quality=JPEG_QUALITY, exif=exif)
    if share == STRIPPED:
        return _save(image, "PNG")
    raise ValueError(f"unknown share {share!r} (known: {[*SIGNALS, STRIPPED]})")


def not_allowed_png(image: Image.Image, title: str, signer: SeededSigner) -> bytes:
    """A human drawing as PNG with C2PA credentials: made by a person (``digitalCreation``),
    AI training and generative AI training ``notAllowed``."""
    created = {"action": "c2pa.created",
               "digitalSourceType": IPTC_SOURCE_TYPE_URI + "digitalCreation"}  # fmt: skip
    entries = {
        k: {"use": "notAllowed"} for k in ("cawg.ai_training", "cawg.ai_generative_training")
    }
    training = {"label": "cawg.training-mining", "data": {"entries": entries}}
    return sign(_save(image, "PNG"), signer, _manifest(title, [created], [training]))
