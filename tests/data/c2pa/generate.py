"""Write the committed C2PA test signing key and certificate chain, deterministically.

Ed25519 keys come from sha256(seed, label) and Ed25519 signatures are deterministic, so this
script always writes the same bytes: ``key.pem`` (the signer's private key), ``chain.pem``
(signer certificate, then the root) and ``ca.pem`` (the root, a trust anchor for tests).
Run: ``python tests/data/c2pa/generate.py``. For tests only: the key is public.
"""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SEED = "crawl2diffusion-test-signer-1"
HERE = Path(__file__).parent
NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
NOT_AFTER = datetime.datetime(2045, 1, 1, tzinfo=datetime.UTC)


def _key(seed: str, label: str) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(f"{seed}:{label}".encode()).digest()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "crawl2diffusion tests"),
        ]
    )


def build(seed: str = SEED, not_after: datetime.datetime = NOT_AFTER) -> tuple[bytes, bytes, bytes]:
    """(key.pem, chain.pem, ca.pem) derived from ``seed``; ``not_after`` ends the signer's
    validity (the root's stays :data:`NOT_AFTER`)."""
    ca_key, leaf_key = _key(seed, "root"), _key(seed, "signer")
    root = _name("crawl2diffusion test root")
    ca = (
        x509.CertificateBuilder()
        .subject_name(root)
        .issuer_name(root)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, None)
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("crawl2diffusion test signer"))
        .issuer_name(root)
        .public_key(leaf_key.public_key())
        .serial_number(2)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, None)
    )
    pem = serialization.Encoding.PEM
    key = leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key, leaf.public_bytes(pem) + ca.public_bytes(pem), ca.public_bytes(pem)


if __name__ == "__main__":
    for name, data in zip(("key.pem", "chain.pem", "ca.pem"), build(), strict=True):
        (HERE / name).write_bytes(data)
