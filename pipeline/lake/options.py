"""One lake configuration, spoken both ways: fsspec (s3fs) options and delta-rs storage options.

A lake is configured once, by its root and ``storage_options``. The options may be written the
short way (``endpoint_url``, ``key``, ``secret``, ``token``, ``region``, ``anon``) or the s3fs
way (``client_kwargs={"endpoint_url": ..., "region_name": ...}``); both become the s3fs keyword
arguments for :mod:`fsspec` and the ``AWS_*`` keys delta-rs (object_store) reads. Keys the
mapping does not know go to fsspec unchanged; a ``delta`` dict goes to delta-rs unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

S3_PROTOCOLS = ("s3", "s3a")
_SHORT = (
    *("endpoint_url", "key", "secret", "token", "region", "anon", "delta"),
    *("aws_access_key_id", "aws_secret_access_key"),
)


@dataclass(frozen=True)
class LakeOptions:
    """The storage options of one lake, for fsspec and for delta-rs."""

    fsspec: dict[str, Any] = field(default_factory=dict)
    delta: dict[str, str] = field(default_factory=dict)


def protocol_of(root: str) -> str:
    """``s3`` for ``s3://bucket/prefix``, ``file`` for a local path or ``file://`` URL."""
    return root.split("://", 1)[0].lower() if "://" in root else "file"


def lake_options(root: str, storage_options: Mapping[str, Any] | None = None) -> LakeOptions:
    """Map one lake configuration to fsspec's and delta-rs's options."""
    given = dict(storage_options or {})
    extra_delta = {k: str(v) for k, v in dict(given.get("delta") or {}).items()}
    if protocol_of(root) not in S3_PROTOCOLS:
        return LakeOptions({k: v for k, v in given.items() if k != "delta"}, extra_delta)
    client = dict(given.get("client_kwargs") or {})
    endpoint = given.get("endpoint_url") or client.get("endpoint_url")
    region = given.get("region") or client.get("region_name")
    key = given.get("key") or given.get("aws_access_key_id")
    secret = given.get("secret") or given.get("aws_secret_access_key")
    token = given.get("token")
    anon = bool(given.get("anon"))

    fs = {k: v for k, v in given.items() if k not in _SHORT and k != "client_kwargs"}
    fs.update({k: v for k, v in (("key", key), ("secret", secret), ("token", token)) if v})
    if anon:
        fs["anon"] = True
    client.update({k: v for k, v in (("endpoint_url", endpoint), ("region_name", region)) if v})
    if client:
        fs["client_kwargs"] = client

    delta = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_SESSION_TOKEN": token,
        "AWS_REGION": region,
        "AWS_ALLOW_HTTP": "true" if str(endpoint or "").startswith("http://") else None,
        "AWS_SKIP_SIGNATURE": "true" if anon else None,
        # A commit is a put-if-absent of the next log entry: concurrent writers stay safe.
        "conditional_put": "etag",
    }
    return LakeOptions(fs, {k: str(v) for k, v in delta.items() if v} | extra_delta)
