"""What an opt-out did not reach: copies of withdrawn images served from URLs the list does
not name, and which tables and checkpoints still hold them.

An owner withdraws a domain (or URLs, or files by sha256); the release drops the pairs whose
URL or file the list names. The same picture reposted on another site, or served there
through a redirect, is another URL: the release keeps it, and the next model trains on it.
:func:`not_reached` finds those copies among the stored fetches (``clip_scores``):

- ``redirect``: a URL on another host whose fetch ended on a withdrawn URL (the final URL);
- ``sha256``: a fetch whose file has the sha256 of a withdrawn fetch (a byte-identical copy);
- ``near_duplicate``: a fetch whose copy-detection descriptor lies within the calibrated
  near-duplicate threshold of a withdrawn fetch's (a resized or re-encoded copy), found by
  the trace's near-duplicate search (:func:`pipeline.lineage.ann.nearest_copies`). The
  withdrawn image's bytes are not kept, so its stored descriptor is the query: the uncropped
  hypothesis only (a cropped copy may be missed).

For each copy it names the tables that hold it now (``laion_dataset``, the kept rows of
``aesthetic_subset``, the successful downloads of ``download_results``, each at its current
version) and the checkpoints that trained on it (``training_manifest``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.hops.dataset.opt_outs import OptOutList, load
from pipeline.lake.store import Lake
from pipeline.lake.tables import NOT_REACHED_MATCHES, OPT_OUT_NOT_REACHED_SCHEMA, TableName
from pipeline.lineage import ann, copydetect
from pipeline.lineage.calibrate import near_duplicate_rule
from pipeline.lineage.lookalike import NEAR_DUPLICATE_CANDIDATES

FETCH_COLUMNS = ["url_id", "url", "final_url", "sha256", "copy_desc"]

HOLDERS = (
    (TableName.LAION_DATASET, None),
    (TableName.AESTHETIC_SUBSET, ("kept", True)),
    (TableName.DOWNLOAD_RESULTS, ("status", "success")),
)
"""The tables whose current rows put an image in the next training run, and the condition
a row must meet to count (None: every row)."""


@dataclass(frozen=True)
class Fetch:
    """One stored fetch of an image URL (a ``clip_scores`` row, one per ``url_id``)."""

    url_id: str
    url: str
    final_url: str | None
    sha256: str | None
    copy_desc: str | None


def host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().strip(".")


def stored_fetches(lake: Lake) -> list[Fetch]:
    """Every URL hop 3 fetched bytes of (``clip_scores``, current version), once per url_id."""
    scores = lake.read(TableName.CLIP_SCORES, columns=FETCH_COLUMNS)
    if scores is None:
        return []
    scores = scores.filter(pc.is_valid(scores.column("sha256")))
    seen: dict[str, Fetch] = {}
    for row in scores.to_pylist():
        seen.setdefault(row["url_id"], Fetch(**row))
    return list(seen.values())


def _label(entry: tuple[str, str]) -> str:
    return f"{entry[0]}:{entry[1]}"


def find_copies(
    lake: Lake, listed: OptOutList, fetches: list[Fetch] | None = None
) -> list[dict[str, object]]:
    """Fetches on URLs ``listed`` does not withdraw that serve a withdrawn fetch's image, one
    per (opt-out entry, url_id), by the strongest match (redirect, then sha256, then the
    nearest near-duplicate): ``opt_out``, ``url_id``, ``url``, ``domain``, ``sha256``,
    ``match``, ``distance``, ``original_url``, ``original_sha256``."""
    fetches = stored_fetches(lake) if fetches is None else fetches
    withdrawn: list[tuple[Fetch, tuple[str, str]]] = []
    others: dict[str, Fetch] = {}
    for f in fetches:
        entry = listed.entry(f.url, f.sha256)
        if entry is None:
            others[f.url_id] = f
        elif entry[0] == "sha256" or not f.final_url or listed.entry(f.final_url, f.sha256):
            withdrawn.append((f, entry))  # (not a withdrawn URL redirecting to another's image)
    by_sha: dict[str, list[Fetch]] = {}
    for f in others.values():
        by_sha.setdefault(f.sha256 or "", []).append(f)
    rank = {kind: i for i, kind in enumerate(NOT_REACHED_MATCHES)}
    best: dict[tuple[str, str], dict[str, object]] = {}

    def offer(copy: Fetch, original: Fetch, entry: tuple[str, str], kind: str, dist: float):
        key = (_label(entry), copy.url_id)
        row = {
            "opt_out": key[0],
            "url_id": copy.url_id,
            "url": copy.url,
            "domain": host(copy.url),
            "sha256": copy.sha256,
            "match": kind,
            "distance": round(dist, 4),
            "original_url": original.url,
            "original_sha256": original.sha256,
        }
        old = best.get(key)
        if old is None or (rank[kind], dist) < (rank[old["match"]], old["distance"]):
            best[key] = row

    for copy in others.values():  # redirects into a withdrawn URL
        if copy.final_url and copy.final_url != copy.url:
            entry = listed.entry(copy.final_url)
            if entry:
                original = Fetch(copy.url_id, copy.final_url, None, copy.sha256, None)
                offer(copy, original, entry, "redirect", 0.0)
    for original, entry in withdrawn:
        for copy in by_sha.get(original.sha256 or "", []):
            offer(copy, original, entry, "sha256", 0.0)
    rule = near_duplicate_rule()
    for original, entry in withdrawn:
        if not original.copy_desc:
            continue
        query = copydetect.from_hex([original.copy_desc])
        hits = ann.nearest_copies(lake, query, NEAR_DUPLICATE_CANDIDATES, rule.threshold)
        for hit in hits:
            if hit.url_id in others:
                offer(others[hit.url_id], original, entry, "near_duplicate", hit.distance)
    return sorted(best.values(), key=lambda r: (r["opt_out"], r["url"]))


def holders(lake: Lake, url_ids: Iterable[str]) -> tuple[dict[str, list[str]], dict[str, list]]:
    """For each url_id, the tables that hold it now (``<table>@<version>``, in the order of
    :data:`HOLDERS`) and the checkpoints (sha256) that trained on it."""
    ids = pa.array(sorted(set(url_ids)), pa.string())
    held: dict[str, list[str]] = {}
    trained: dict[str, list[str]] = {}
    if not len(ids):
        return held, trained
    for table, condition in HOLDERS:
        version = lake.version(table)
        columns = ["url_id"] + ([condition[0]] if condition else [])
        data = lake.read(table, columns=columns) if version is not None else None
        if data is None:
            continue
        data = data.filter(pc.is_in(data.column("url_id"), ids))
        if condition:
            data = data.filter(pc.equal(data.column(condition[0]), condition[1]))
        for uid in sorted(set(data.column("url_id").to_pylist())):
            held.setdefault(uid, []).append(f"{table}@{version}")
    manifest = lake.read(TableName.TRAINING_MANIFEST, columns=["url_id", "checkpoint_sha256"])
    if manifest is not None:
        manifest = manifest.filter(pc.is_in(manifest.column("url_id"), ids))
        for row in manifest.to_pylist():
            found = trained.setdefault(row["url_id"], [])
            if row["checkpoint_sha256"] not in found:
                found.append(row["checkpoint_sha256"])
    return held, {k: sorted(v) for k, v in trained.items()}


def not_reached(lake: Lake, listed: OptOutList | None = None) -> pa.Table:
    """Every copy of a withdrawn image on a URL the opt-out list (``listed``; default the
    lake's) does not withdraw, with the tables and checkpoints that hold it
    (``opt_out_not_reached``'s rows; empty lists: dropped before the release)."""
    listed = load(lake) if listed is None else listed
    if not listed:
        return OPT_OUT_NOT_REACHED_SCHEMA.empty_table()
    rows = find_copies(lake, listed)
    held, trained = holders(lake, (r["url_id"] for r in rows))
    for row in rows:
        row["held_in"] = held.get(row["url_id"], [])
        row["checkpoints"] = trained.get(row["url_id"], [])
    return pa.Table.from_pylist(rows, schema=OPT_OUT_NOT_REACHED_SCHEMA)


def still_held(table: pa.Table) -> pa.Table:
    """The rows of :func:`not_reached` that a table or a checkpoint still holds."""
    held = pc.greater(pc.list_value_length(table.column("held_in")), 0)
    trained = pc.greater(pc.list_value_length(table.column("checkpoints")), 0)
    return table.filter(pc.or_(held, trained))


def summary_lines(table: pa.Table, limit: int = 50) -> list[str]:
    """A Markdown summary: counts by entry and match, then the copies still held (up to
    ``limit``), each with URL, domain, sha256, match and where it is held."""
    if not table.num_rows:
        return ["No copy of a withdrawn image was found on another URL."]
    kept = still_held(table)
    lines = [
        f"{table.num_rows} copies of withdrawn images on URLs the opt-out list does not name; "
        f"{kept.num_rows} still held by the release, the subset, the shards or a checkpoint.",
        "",
        "| URL | domain | sha256 | match | withdrawn original | held in |",
        "|---|---|---|---|---|---|",
    ]
    for row in kept.to_pylist()[:limit]:
        where = [*row["held_in"], *(f"checkpoint {c[:12]}" for c in row["checkpoints"])]
        distance = f" ({row['distance']:.4f})" if row["match"] == "near_duplicate" else ""
        lines.append(
            f"| {row['url']} | {row['domain']} | `{(row['sha256'] or '')[:12]}` | "
            f"{row['match']}{distance} | {row['original_url']} | {', '.join(where)} |"
        )
    if kept.num_rows > limit:
        lines.append(f"| ... {kept.num_rows - limit} more in `{TableName.OPT_OUT_NOT_REACHED}` |")
    return lines
