"""A C2PA signing key and certificate chain derived deterministically from a seed string.

Ed25519 keys come from sha256(seed, label) and Ed25519 signatures are deterministic, so one
seed always gives the same bytes: the signer's private key, the chain (signer certificate,
then the root) and the root alone (a trust anchor). Used by the committed test signer
(``tests/data/c2pa/generate.py``) and by the synthetic web's feedback crawl, which signs its
images with a signer derived from the web's seed. The keys are public: never for real use.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
NOT_AFTER = datetime.datetime(2045, 1, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class SeededSigner:
    """PEM bytes of a signer derived from a seed."""

    key: bytes
    """The signer's private key (PKCS#8)."""
    chain: bytes
    """Signer certificate, then the root."""
    ca: bytes
    """The root certificate (a trust anchor)."""


def _key(seed: str, label: str) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(f"{seed}:{label}".encode()).digest()
    )


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )


def seeded_signer(
    seed: str,
    not_after: datetime.datetime = NOT_AFTER,
    names: tuple[str, str, str] = (
        "crawl2diffusion test root",
        "crawl2diffusion test signer",
        "crawl2diffusion tests",
    ),
) -> SeededSigner:
    """The signer derived from ``seed``; ``not_after`` ends the signer's validity (the root's
    stays :data:`NOT_AFTER`); ``names``: root and signer common names, organization."""
    root_cn, signer_cn, organization = names
    ca_key, leaf_key = _key(seed, "root"), _key(seed, "signer")
    root = _name(root_cn, organization)
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
        .subject_name(_name(signer_cn, organization))
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
    return SeededSigner(key, leaf.public_bytes(pem) + ca.public_bytes(pem), ca.public_bytes(pem))
