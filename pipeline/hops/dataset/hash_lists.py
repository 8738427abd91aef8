"""Takedown hash lists: named lists of image hashes (md5, sha256 or PDQ) to keep out.

The lists are the lake table ``hash_lists`` (one row per hash, edited with
``crawl2diffusion opt-out --hash-list FILE --name NAME``). Hop 3 hashes every fetched image
(:func:`file_hashes` of the bytes, :func:`pdq_hash` of the decoded pixels) and drops a match
with ``hash_list:<name>`` before it is embedded or stored. The hashes are kept in
``clip_scores``, so when a list grows, :func:`stored_matches` finds the earlier fetches it now
matches (``laion_dataset`` drops them; the opt-out report names the checkpoints).

md5 and sha256 match exactly; PDQ (Meta's perceptual hash, 256 bits) matches within a Hamming
distance (:attr:`HashMatching.max_pdq_distance`, 31 by default, as PDQ's authors suggest), so
resized and re-encoded copies match too. PDQ is unreliable on nearly flat images (its quality
score is low): their copies can lie further apart, and such images hash alike.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from PIL import Image

from pipeline.lake.store import Lake
from pipeline.lake.tables import (
    HASH_KINDS,
    HASH_LIST_NAME,
    HASH_LIST_PREFIX,
    HASH_LIST_SCHEMA,
    TableName,
)

TABLE = TableName.HASH_LISTS
HEX_LENGTHS = {"md5": 32, "sha256": 64, "pdq": 64}
PDQ_MAX_SIDE = 512
"""Images are reduced to at most this side before PDQ (PDQ itself works on 64x64), which
bounds its memory; the hash changes by a few bits at most."""
_NAME = re.compile(f"^{HASH_LIST_NAME}$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1).astype(np.int32)

MATCH_SCHEMA = pa.schema(
    [
        pa.field("pair_id", pa.string()),
        pa.field("url_id", pa.string()),
        pa.field("sha256", pa.string()),
        pa.field("list_name", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("value", pa.string(), nullable=False),
        pa.field("distance", pa.int32(), nullable=False),
    ]
)
"""One row per (stored fetch, list it matches): the list's entry and the Hamming distance
(0 for md5 and sha256)."""


@dataclass(frozen=True)
class HashMatching:
    """How hashes match (hop 3's and laion_dataset's config)."""

    max_pdq_distance: int = 31
    """Largest Hamming distance, of 256 bits, at which two PDQ hashes match."""


@dataclass(frozen=True)
class ImageHashes:
    """One image's hashes, lower-case hex: md5 and sha256 of its bytes, PDQ of its pixels
    (None when it could not be decoded)."""

    md5: str | None = None
    sha256: str | None = None
    pdq: str | None = None


def file_hashes(body: bytes) -> ImageHashes:
    """md5 and sha256 of an image file's bytes."""
    return ImageHashes(hashlib.md5(body).hexdigest(), hashlib.sha256(body).hexdigest())


def pdq_hash(image: Image.Image) -> str:
    """The PDQ hash of an image's RGB pixels as 64 hex digits (the format of Meta's tools)."""
    return pdq_hash_quality(image)[0]


def pdq_hash_quality(image: Image.Image) -> tuple[str, int]:
    """The PDQ hash (hex) and PDQ's quality score (0-100; below 50 the image is too
    featureless for its hash to identify it, as Meta's reference code advises)."""
    import pdqhash

    if max(image.size) > PDQ_MAX_SIDE:
        scale = PDQ_MAX_SIDE / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BOX)
    pixels = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    bits, quality = pdqhash.compute(pixels)
    return np.packbits(bits.astype(np.uint8)).tobytes().hex(), int(quality)


def _bits(hexes: list[str]) -> np.ndarray:
    return np.frombuffer(bytes.fromhex("".join(hexes)), np.uint8).reshape(len(hexes), 32)


def pdq_distance(a: str, b: str) -> int:
    """Hamming distance of two PDQ hashes (hex)."""
    return int(_POPCOUNT[_bits([a])[0] ^ _bits([b])[0]].sum())


@dataclass(frozen=True)
class Match:
    """A list entry an image matched, and how far its hash is from it."""

    name: str
    kind: str
    value: str
    distance: int = 0

    @property
    def reason(self) -> str:
        return f"{HASH_LIST_PREFIX}{self.name}"


class HashLists:
    """The loaded lists, matching md5 and sha256 exactly and PDQ within a distance."""

    def __init__(self, table: pa.Table | None = None, matching: HashMatching = HashMatching()):
        self.matching = matching
        rows = table.select(["name", "kind", "value"]).to_pylist() if table is not None else []
        self.exact: dict[tuple[str, str], list[str]] = {}
        pdq = sorted({(r["value"], r["name"]) for r in rows if r["kind"] == "pdq"})
        for r in sorted(rows, key=lambda r: r["name"]):
            if r["kind"] != "pdq":
                self.exact.setdefault((r["kind"], r["value"]), []).append(r["name"])
        self._pdq_entries = pdq
        self._pdq = _bits([v for v, _ in pdq]) if pdq else np.zeros((0, 32), np.uint8)
        self.names = tuple(sorted({r["name"] for r in rows}))

    def __bool__(self) -> bool:
        return bool(self.names)

    @property
    def has_pdq(self) -> bool:
        return bool(self._pdq_entries)

    def matches(self, hashes: ImageHashes) -> list[Match]:
        """Every list the image is on, once each (its closest entry), closest first, then by
        name: exact (md5, sha256) matches have distance 0."""
        best: dict[str, Match] = {}
        for kind in ("md5", "sha256"):
            value = getattr(hashes, kind)
            for name in self.exact.get((kind, value), []) if value else []:
                best.setdefault(name, Match(name, kind, value))
        if hashes.pdq and self._pdq_entries:
            distances = _POPCOUNT[self._pdq ^ _bits([hashes.pdq])[0]].sum(1)
            for i in np.flatnonzero(distances <= self.matching.max_pdq_distance):
                value, name = self._pdq_entries[i]
                found = Match(name, "pdq", value, int(distances[i]))
                if name not in best or found.distance < best[name].distance:
                    best[name] = found
        return sorted(best.values(), key=lambda m: (m.distance, m.name))

    def match(self, hashes: ImageHashes) -> Match | None:
        """The closest match (see :meth:`matches`), or None."""
        found = self.matches(hashes)
        return found[0] if found else None


def load(lake: Lake, matching: HashMatching = HashMatching()) -> HashLists:
    return HashLists(lake.read(TABLE), matching)


def parse_line(line: str, kind: str | None = None) -> tuple[str, str] | None:
    """``(kind, hex)`` of one line of a list file, None for a blank line or ``#`` comment.

    A line is a hash, optionally prefixed ``md5:``, ``sha256:`` or ``pdq:``; anything after
    the first comma or space is ignored (PDQ files often add the quality). Unprefixed lines
    take ``kind``; without it, 32 hex digits are md5 and 64 are refused, since a sha256 and a
    PDQ hash are both 64 hex digits."""
    text = line.split("#", 1)[0].strip()
    if not text:
        return None
    value = re.split(r"[\s,]", text, maxsplit=1)[0]
    prefix, sep, rest = value.partition(":")
    if sep:
        if prefix.lower() not in HASH_KINDS:
            raise ValueError(f"unknown hash kind {prefix!r} in {line.strip()!r}")
        line_kind, value = prefix.lower(), rest
    elif kind is not None:
        line_kind = kind
    elif len(value) == HEX_LENGTHS["md5"]:
        line_kind = "md5"
    else:
        raise ValueError(
            f"cannot tell the kind of {value!r}: 64 hex digits are a sha256 or a PDQ hash; "
            "give --kind or prefix the line with sha256: or pdq:"
        )
    if line_kind not in HASH_KINDS:
        raise ValueError(f"hash kind must be one of {HASH_KINDS}, not {line_kind!r}")
    if len(value) != HEX_LENGTHS[line_kind] or not _HEX.match(value):
        raise ValueError(f"not a {line_kind} hash ({HEX_LENGTHS[line_kind]} hex digits): {value!r}")
    return line_kind, value.lower()


def parse_lines(lines: Iterable[str], kind: str | None = None) -> list[tuple[str, str]]:
    """Every hash of a list file (see :func:`parse_line`); the first bad line raises."""
    out = []
    for number, line in enumerate(lines, 1):
        try:
            entry = parse_line(line, kind)
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
        if entry is not None:
            out.append(entry)
    return out


def add(
    lake: Lake, name: str, entries: Iterable[tuple[str, str]], note: str | None = None
) -> pa.Table:
    """Add ``(kind, hex)`` entries to list ``name`` (created if new); return every list.
    Entries already on that list are not added twice."""
    if not _NAME.match(name):
        raise ValueError(f"list name must match {HASH_LIST_NAME}: {name!r}")
    current = lake.read(TABLE)
    rows = current.to_pylist() if current is not None else []
    seen = {(r["name"], r["kind"], r["value"]) for r in rows}
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for kind, value in entries:
        checked = parse_line(f"{kind}:{value}")
        assert checked is not None
        if (name, *checked) not in seen:
            seen.add((name, *checked))
            rows.append(
                {"name": name, "kind": checked[0], "value": checked[1], "added_at": now,
                 "note": note}
            )  # fmt: skip
    table = pa.Table.from_pylist(rows, schema=HASH_LIST_SCHEMA)
    lake.write_partition(TABLE, table)
    return table


def stored_matches(fetches: pa.Table | None, lists: HashLists) -> pa.Table:
    """Which stored fetches the lists match: one row per (fetch, list), in ``MATCH_SCHEMA``.

    ``fetches`` has ``sha256``, ``md5`` and ``pdq`` and optionally ``pair_id``/``url_id``
    (``clip_scores`` rows, or any table keyed so); rows without hashes never match."""
    if fetches is None or not lists or fetches.num_rows == 0:
        return MATCH_SCHEMA.empty_table()
    columns = fetches.column_names
    data = {c: fetches.column(c).to_pylist() for c in MATCH_SCHEMA.names[:3] if c in columns}
    empty = [None] * fetches.num_rows
    md5s, sha256s, pdqs = (
        fetches.column(c).to_pylist() if c in columns else empty for c in ("md5", "sha256", "pdq")
    )
    rows = []
    for i in range(fetches.num_rows):
        image = ImageHashes(md5s[i], sha256s[i], pdqs[i])
        if not (image.md5 or image.sha256 or image.pdq):
            continue
        for m in lists.matches(image):
            rows.append(
                {**{c: data[c][i] for c in data}, "list_name": m.name, "kind": m.kind,
                 "value": m.value, "distance": m.distance}
            )  # fmt: skip
    table = pa.Table.from_pylist(rows, schema=MATCH_SCHEMA)
    return table.sort_by([("pair_id", "ascending"), ("list_name", "ascending")])


def lake_matches(lake: Lake, matching: HashMatching = HashMatching()) -> pa.Table:
    """:func:`stored_matches` of every ``clip_scores`` row in the lake against its lists."""
    lists = load(lake, matching)
    if not lists:
        return MATCH_SCHEMA.empty_table()
    found = lake.delta_table(TableName.CLIP_SCORES)
    if found is None:
        return MATCH_SCHEMA.empty_table()
    stored = {f.name for f in found.schema().fields}  # lakes from before md5/pdq lack them
    wanted = [c for c in ("pair_id", "url_id", "sha256", "md5", "pdq") if c in stored]
    return stored_matches(lake.read(TableName.CLIP_SCORES, columns=wanted), lists)
