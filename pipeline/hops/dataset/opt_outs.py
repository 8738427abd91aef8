"""Opt-outs: image URLs, whole domains, or image files (sha256) an owner withdrew.

The list is the lake table ``opt_outs`` (one row per entry; adding rewrites it: a new table
version, which the opt-out sensor sees). The dataset hop drops matching pairs with
the reason ``opted_out:<kind>``; :func:`trained_on_opted_out` names every checkpoint that was
trained on a pair the list now matches (opt-outs cannot be removed from trained weights, only
reported and left out of the next run).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import pyarrow as pa

from pipeline.hops.dataset.hash_lists import HashLists, ImageHashes
from pipeline.lake.keys import url_id
from pipeline.lake.store import Lake
from pipeline.lake.tables import OPT_OUT_KINDS as KINDS
from pipeline.lake.tables import OPT_OUT_REPORT_SCHEMA as REPORT_SCHEMA
from pipeline.lake.tables import OPT_OUT_SCHEMA, TableName
from pipeline.lake.urls import normalize_url

TABLE = TableName.OPT_OUTS


def _canonical(kind: str, value: str) -> str:
    value = value.strip()
    if kind == "url":
        return normalize_url(value)
    if kind == "domain":
        host = urlsplit(value).hostname if "://" in value else value
        return (host or "").lower().strip(".")
    if len(value) != 64 or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise ValueError(f"not a sha256 hex digest: {value!r}")
    return value.lower()


@dataclass(frozen=True)
class OptOutList:
    url_ids: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    sha256s: frozenset[str] = frozenset()

    @classmethod
    def from_table(cls, table: pa.Table | None) -> OptOutList:
        if table is None:
            return cls()
        rows = table.select(["kind", "value"]).to_pylist()
        return cls(
            frozenset(url_id(r["value"]) for r in rows if r["kind"] == "url"),
            frozenset(r["value"] for r in rows if r["kind"] == "domain"),
            frozenset(r["value"] for r in rows if r["kind"] == "sha256"),
        )

    def __bool__(self) -> bool:
        return bool(self.url_ids or self.domains or self.sha256s)

    def match(self, url: str | None, sha256: str | None = None) -> str | None:
        """``opted_out:<kind>`` when the URL, its host (or a parent domain) or the image file
        is on the list, else None."""
        found = self.entry(url, sha256)
        return f"opted_out:{found[0]}" if found else None

    def entry(self, url: str | None, sha256: str | None = None) -> tuple[str, str] | None:
        """The entry that withdraws the URL, its host or the image file, as ``(kind, value)``
        (for a URL entry, the normalized URL), else None."""
        if url and self.url_ids and url_id(normalize_url(url)) in self.url_ids:
            return "url", normalize_url(url)
        if url and self.domains:
            host = (urlsplit(url).hostname or "").lower().strip(".")
            labels = host.split(".")
            for i in range(len(labels)):
                if ".".join(labels[i:]) in self.domains:
                    return "domain", ".".join(labels[i:])
        if sha256 and sha256.lower() in self.sha256s:
            return "sha256", sha256.lower()
        return None


def load(lake: Lake) -> OptOutList:
    return OptOutList.from_table(lake.read(TABLE))


def add(lake: Lake, entries: Iterable[tuple[str, str]], note: str | None = None) -> pa.Table:
    """Add ``(kind, value)`` entries (kinds: url, domain, sha256); returns the whole list.
    Entries already on the list are not added twice."""
    current = lake.read(TABLE)
    rows = current.to_pylist() if current is not None else []
    seen = {(r["kind"], r["value"]) for r in rows}
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for kind, value in entries:
        if kind not in KINDS:
            raise ValueError(f"opt-out kind must be one of {KINDS}, not {kind!r}")
        canonical = _canonical(kind, value)
        if (kind, canonical) not in seen:
            seen.add((kind, canonical))
            rows.append({"kind": kind, "value": canonical, "added_at": now, "note": note})
    table = pa.Table.from_pylist(rows, schema=OPT_OUT_SCHEMA)
    lake.write_partition(TABLE, table)
    return table


def trained_on_opted_out(
    opt_outs: OptOutList, manifest: pa.Table | None, hash_lists: HashLists | None = None
) -> pa.Table:
    """Checkpoints (``training_manifest`` rows with ``run_fingerprint``) trained on pairs
    whose URL, domain or image file the opt-out list matches, or whose image a takedown hash
    list matches (``hash_list:<name>``, by the md5, sha256 or PDQ pinned in the manifest).
    The manifests are pinned (each row carries the URL and hashes it trained on), so the
    report does not depend on the current state of any other table, or on the order in
    which rebuilds and the report run."""
    if (not opt_outs and not hash_lists) or manifest is None:
        return REPORT_SCHEMA.empty_table()
    rows = []
    for row in manifest.to_pylist():
        hit = opt_outs.match(row.get("URL"), row.get("sha256"))
        if hit is None and hash_lists:
            image = ImageHashes(row.get("md5"), row.get("sha256"), row.get("pdq"))
            listed = hash_lists.match(image)
            hit = listed.reason if listed else None
        if hit:
            rows.append({**row, "match": hit})
    table = pa.Table.from_pylist(
        [{name: r.get(name) for name in REPORT_SCHEMA.names} for r in rows], schema=REPORT_SCHEMA
    )
    return table.sort_by(
        [("checkpoint_sha256", "ascending"), ("pair_id", "ascending"), ("match", "ascending")]
    )
