"""Write the committed C2PA test signing key and certificate chain, deterministically.

The derivation is :func:`pipeline.provenance.seeded_signer.seeded_signer` (Ed25519 keys from
sha256(seed, label), deterministic signatures), so this script always writes the same bytes:
``key.pem`` (the signer's private key), ``chain.pem`` (signer certificate, then the root)
and ``ca.pem`` (the root, a trust anchor for tests).
Run: ``python tests/data/c2pa/generate.py``. For tests only: the key is public.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from pipeline.provenance.seeded_signer import NOT_AFTER, seeded_signer

SEED = "crawl2diffusion-test-signer-1"
HERE = Path(__file__).parent


def build(seed: str = SEED, not_after: datetime.datetime = NOT_AFTER) -> tuple[bytes, bytes, bytes]:
    """(key.pem, chain.pem, ca.pem) derived from ``seed``; ``not_after`` ends the signer's
    validity (the root's stays :data:`NOT_AFTER`)."""
    signer = seeded_signer(seed, not_after)
    return signer.key, signer.chain, signer.ca


if __name__ == "__main__":
    for name, data in zip(("key.pem", "chain.pem", "ca.pem"), build(), strict=True):
        (HERE / name).write_bytes(data)
