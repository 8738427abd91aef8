"""What an erasure removes: the pairs and images a request names, read off the decision tables.

A request names image URLs, domains (with their subdomains), image sha256s, or everything the
opt-out list withdraws now. Every table of the registry whose stored schema has ``url_id``, a
URL column and ``sha256`` (hop 3's scores, the embeddings, the release, the downloads...) is
scanned; a row matches by its URL, host or hash, and then every row of a matched ``url_id``
(each pair naming that image) is a target.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from pipeline.hops.dataset import opt_outs as optout
from pipeline.hops.dataset.opt_outs import OptOutList
from pipeline.lake.keys import url_id
from pipeline.lake.store import Lake
from pipeline.lake.tables import TABLES
from pipeline.lake.urls import normalize_url

OWNER_REQUEST = "owner_request"
URL_COLUMNS = ("url", "URL")


@dataclass(frozen=True)
class EraseRequest:
    """Which images to erase, and the reason recorded in their tombstones (default: the
    opt-out match, ``opted_out:<kind>``, for ``opted_out``; else ``owner_request``)."""

    urls: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    sha256s: tuple[str, ...] = ()
    opted_out: bool = False
    reason: str | None = None

    def __post_init__(self) -> None:
        if not (self.urls or self.domains or self.sha256s or self.opted_out):
            raise ValueError("name a URL, a domain, a sha256 or the opted-out items to erase")
        for value in self.sha256s:
            if len(value) != 64 or any(c not in "0123456789abcdefABCDEF" for c in value):
                raise ValueError(f"not a sha256 hex digest: {value!r}")

    def named(self) -> OptOutList:
        """The request's own URLs, domains and hashes as a list to match rows against."""
        return OptOutList(
            frozenset(url_id(normalize_url(u.strip())) for u in self.urls),
            frozenset(d.strip().lower().strip(".") for d in self.domains),
            frozenset(s.lower() for s in self.sha256s),
        )


@dataclass(frozen=True)
class Target:
    """One erased pair (``pair_id`` None: an image no pair names, e.g. only embedded)."""

    url_id: str
    pair_id: str | None
    url: str | None
    sha256: str | None
    reason: str


@dataclass(frozen=True)
class Targets:
    rows: tuple[Target, ...]
    sha256s: frozenset[str]
    """Every hash recorded for the targets' images (hop 3's and img2dataset's)."""

    @property
    def url_ids(self) -> frozenset[str]:
        return frozenset(t.url_id for t in self.rows)

    @property
    def pair_ids(self) -> frozenset[str]:
        return frozenset(t.pair_id for t in self.rows if t.pair_id)

    def __bool__(self) -> bool:
        return bool(self.rows)


def _stored_names(lake: Lake, table: str) -> set[str] | None:
    found = lake.delta_table(table)
    return None if found is None else set(pa.schema(found.schema().to_arrow()).names)


def source_tables(lake: Lake) -> dict[str, list[str]]:
    """Table -> the columns read from it (``url_id``, its URL column, ``sha256``, and
    ``pair_id`` if it has one), for every registered table in the lake whose stored schema
    has ``url_id``, a URL column and ``sha256``."""
    found = {}
    for name, entry in TABLES.items():
        names = None if entry.files else _stored_names(lake, name)
        url = next((c for c in URL_COLUMNS if c in (names or ())), None)
        if names and url and {"url_id", "sha256"} <= names:
            found[name] = ["url_id", url, "sha256", *(["pair_id"] if "pair_id" in names else [])]
    return found


def _candidates(lake: Lake) -> Iterator[dict[str, str | None]]:
    """``url_id, pair_id, url, sha256`` of every row of every source table."""
    for name, columns in source_tables(lake).items():
        data = lake.read(name, columns=columns)
        for row in data.to_pylist() if data is not None else []:
            if row["url_id"]:
                yield {
                    "url_id": row["url_id"],
                    "pair_id": row.get("pair_id"),
                    "url": row[columns[1]],
                    "sha256": row["sha256"],
                }


def resolve(lake: Lake, request: EraseRequest) -> Targets:
    """The pairs and images ``request`` names, one :class:`Target` per (url_id, pair_id)."""
    named = request.named()
    opted = optout.load(lake) if request.opted_out else OptOutList()
    rows = list(_candidates(lake))
    reasons: dict[str, str] = {}
    for row in rows:
        if row["url_id"] in reasons:
            continue
        if named and named.match(row["url"], row["sha256"]):
            reasons[row["url_id"]] = request.reason or OWNER_REQUEST
        elif opted and (hit := opted.match(row["url"], row["sha256"])):
            reasons[row["url_id"]] = request.reason or hit
    by_key: dict[tuple[str, str | None], Target] = {}
    hashes: set[str] = set()
    for row in rows:
        uid = row["url_id"]
        if uid not in reasons:
            continue
        if row["sha256"]:
            hashes.add(row["sha256"])
        key = (uid, row["pair_id"])
        old = by_key.get(key)
        if old is None or (old.sha256 is None and row["sha256"]):
            by_key[key] = Target(uid, row["pair_id"], row["url"], row["sha256"], reasons[uid])
    paired = {uid for uid, pid in by_key if pid is not None}
    targets = [t for (uid, pid), t in by_key.items() if pid is not None or uid not in paired]
    targets.sort(key=lambda t: (t.url_id, t.pair_id or ""))
    return Targets(tuple(targets), frozenset(hashes))
