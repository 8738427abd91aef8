"""Label the project's own outputs: every sample PNG says it was made by a trained model.

:func:`label_png` writes IPTC ``Iptc4xmpExt:DigitalSourceType`` = ``trainedAlgorithmicMedia``
in XMP, a ``crawl2diffusion`` iTXt chunk with the prompt, seed and checkpoint sha256, and,
when a signing key is configured (:class:`Signing`), a C2PA manifest whose ``c2pa.created``
action carries the same digital source type. Pixels are not changed (PNG is lossless).
"""

from __future__ import annotations

import functools
import io
import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from pipeline.provenance.container import XMP_PNG_KEY
from pipeline.provenance.generators import LABEL_KEY
from pipeline.provenance.signals import IPTC_SOURCE_TYPE_URI
from pipeline.settings import Settings

TRAINED = IPTC_SOURCE_TYPE_URI + "trainedAlgorithmicMedia"
XMP_PACKET = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" '
    'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
    f'Iptc4xmpExt:DigitalSourceType="{TRAINED}"/>'
    '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)


@dataclass(frozen=True)
class Signing:
    """A C2PA signer: a PEM certificate chain (signer first) and its PEM private key."""

    cert_chain: str
    key: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Signing | None:
        """The configured signer, or None when no key is configured."""
        if not (settings.c2pa_sign_cert or settings.c2pa_sign_key):
            return None
        if not (settings.c2pa_sign_cert and settings.c2pa_sign_key):
            raise ValueError("C2PA signing needs both c2pa_sign_cert and c2pa_sign_key")
        return cls(settings.c2pa_sign_cert, settings.c2pa_sign_key)

    @classmethod
    def from_env(cls) -> Signing | None:
        """The signer the environment configures (``CRAWL2DIFFUSION_C2PA_SIGN_*``)."""
        return cls.from_settings(Settings.from_env())


def _algorithm(key_pem: bytes):
    """The C2PA signing algorithm of a PEM private key."""
    import c2pa
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(key_pem, None)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return c2pa.C2paSigningAlg.ED25519
    if isinstance(key, ec.EllipticCurvePrivateKey):
        by_size = {256: "ES256", 384: "ES384", 521: "ES512"}
        return getattr(c2pa.C2paSigningAlg, by_size[key.curve.key_size])
    if isinstance(key, rsa.RSAPrivateKey):
        return c2pa.C2paSigningAlg.PS256
    raise ValueError(f"unsupported C2PA signing key type {type(key).__name__}")


@functools.lru_cache(maxsize=2)
def _signer_material(signing: Signing) -> tuple[bytes, bytes, object]:
    cert, key = Path(signing.cert_chain).read_bytes(), Path(signing.key).read_bytes()
    return cert, key, _algorithm(key)


@functools.lru_cache(maxsize=1)
def _builder_context():
    import c2pa

    settings = {"builder": {"thumbnail": {"enabled": False}}}
    return c2pa.Context(settings=c2pa.Settings.from_dict(settings))


def sign_png(png: bytes, signing: Signing, label: dict) -> bytes:
    """``png`` with a C2PA manifest: created by a trained model, by this project."""
    import c2pa

    cert, key, alg = _signer_material(signing)
    manifest = {
        "claim_generator_info": [{"name": "crawl2diffusion", "version": "0.1.0"}],
        "title": f"sample seed {label['seed']}",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED,
                            "softwareAgent": {"name": "crawl2diffusion"},
                            "parameters": {"org.crawl2diffusion.label": label},
                        }
                    ]
                },
            }
        ],
    }
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg, cert, key, None))
    out = io.BytesIO()
    with c2pa.Builder(manifest, context=_builder_context()) as builder:
        builder.sign(signer, "image/png", io.BytesIO(png), out)
    return out.getvalue()


def label_png(
    png: bytes, prompt: str, seed: int, checkpoint_sha256: str, signing: Signing | None = None
) -> bytes:
    """``png`` labelled as made by a trained model (XMP + text chunk), signed if configured."""
    label = {"prompt": prompt, "seed": int(seed), "checkpoint_sha256": checkpoint_sha256}
    info = PngInfo()
    info.add_itxt(XMP_PNG_KEY, XMP_PACKET)
    info.add_itxt(LABEL_KEY, json.dumps(label, ensure_ascii=False))
    buf = io.BytesIO()
    with Image.open(io.BytesIO(png)) as image:
        image.save(buf, format="PNG", pnginfo=info)
    labelled = buf.getvalue()
    return sign_png(labelled, signing, label) if signing is not None else labelled
