"""Record-level lineage: answer "where did this URL go, and why?" from the lake.

A journey follows the pair through every hop: the WAT records it was seen in, the alt-text
decision, the CLIP filter, the released dataset, the aesthetic subset, the img2dataset
download (the shard and key that hold the image), the diffusion checkpoints it trained, and
the replication audit samples that were prompted with it or found nearest to it. Hops whose
tables are not materialized yet are simply absent.

A scan of the lake per question costs seconds at a few million links, so
:class:`LineageIndex` answers from a copy of the traced columns in a DuckDB file, sorted by
a hash of the image URL: a trace reads one row group, DuckDB's min/max zone maps skip the
others. The file is named after the lake state it was built from (each traced Delta table's
identity and version); when that state changes (a new or re-run partition is a new version),
a new index is built into a temporary file and renamed into place, and the older ones are
removed. The build reads each table at exactly the version the name records, so a partition
re-published meanwhile cannot mix into it. Published index files never change, readers open
them read-only, and each is written by one connection only (DuckDB is single-writer). Tables
are read with ``DeltaTable.to_pyarrow_dataset()``, so local and ``s3://`` lakes work alike
without DuckDB extensions.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import fsspec.core
import orjson
import pyarrow as pa

from pipeline.lake.delta import PARTITION
from pipeline.lake.history import file_lifetimes
from pipeline.lake.store import Lake
from pipeline.lake.tables import TRACED_TABLES as TRACED
from pipeline.lake.tables import TableName
from pipeline.lake.urls import normalize_url
from pipeline.lineage.pieces import ensure_pieces, generation_dir, remove_stale

INDEX_FORMAT = 9
"""Bump when the indexed columns or keys change: every index is then rebuilt."""

TRACED_TABLES = {name: ", ".join(f'"{c}"' for c in entry.traced) for name, entry in TRACED.items()}
"""Table -> the columns the index copies (from the registry, quoted for DuckDB)."""
PARTITION_COLUMN = {n: e.partition_column for n, e in TRACED.items() if e.partition_column}
"""Tables partitioned by crawl (or training run) get that key as a column (their rows do not
carry it)."""
ORDER = {name: f"ORDER BY {entry.trace_order}" for name, entry in TRACED.items()}
KEYS = {
    "url": "url_key",
    "pair_id": "pair_key",
    "page_url": "page_key",
    "sha256": "sha_key",
    "prompt_pair_id": "prompt_key",
    "nearest_pair_id": "nearest_key",
}
"""Looked-up column -> its 64-bit DuckDB ``hash``, stored beside it; each table is sorted by
the hash of its first key in :data:`TABLE_KEYS` (``url_key``, ``pair_key`` or ``prompt_key``),
so a trace by URL reads one row group, by pair or page a column of integers."""
TABLE_KEYS = {
    TableName.WAT_IMAGE_LINKS: ("url", "pair_id", "page_url"),
    TableName.ALT_TEXT_PAIRS: ("url", "pair_id", "page_url"),
    TableName.CLIP_SCORES: ("url", "pair_id", "sha256"),
    TableName.LAION_DATASET_DECISIONS: ("pair_id",),
    TableName.AESTHETIC_SUBSET: ("pair_id",),
    TableName.DOWNLOAD_RESULTS: ("pair_id", "sha256"),
    TableName.TRAINING_MANIFEST: ("pair_id",),
    TableName.REPLICATION_AUDIT: ("prompt_pair_id", "nearest_pair_id"),
}
LIFETIME = "_since, _until, _since_version, _until_version"
"""Per row, the commits (time, version) that added it and removed it (null: current)."""
SHARDS_TABLE = TableName.IMAGE_SHARDS
"""``download_results.shard`` is relative to this table's partition of the row's crawl."""


WITHDRAWN_PREFIXES = ("opted_out:", "hash_list:")
"""Drop reasons that mean an owner (or a takedown list) withdrew the image."""
EVENT_HOPS = (
    "alt_text",
    "clip",
    "release",
    "aesthetic",
    "download",
    "training",
    "opt_out",
    "erasure",
)


@dataclass
class Journey:
    """Everything the lake knows about one URL (or pair, or page)."""

    query: dict[str, str]
    sightings: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    clip: list[dict[str, Any]] = field(default_factory=list)
    release: list[dict[str, Any]] = field(default_factory=list)
    aesthetic: list[dict[str, Any]] = field(default_factory=list)
    downloads: list[dict[str, Any]] = field(default_factory=list)
    """``download_results`` rows of the subset pairs, with ``shard_uri`` (the tar's full URI;
    its members are ``key`` plus an extension)."""
    training: list[dict[str, Any]] = field(default_factory=list)
    """``training_manifest`` rows of the downloaded pairs: one per checkpoint each trained,
    with ``run_fingerprint`` (the manifest's partition)."""
    audit: list[dict[str, Any]] = field(default_factory=list)
    """``replication_audit`` rows whose prompt or nearest training image is a trained pair."""
    withdrawals: list[dict[str, Any]] = field(default_factory=list)
    """Opt-out entries (URL, domain, image file) that withdraw this image."""
    tombstones: list[dict[str, Any]] = field(default_factory=list)
    """Tombstones of the image's erasure: when, why, and what was removed (its bytes are
    gone; the decisions above stay)."""
    as_of: datetime | None = None
    """The time the journey describes the lake at (None: now)."""
    picture: dict[str, Any] | None = None
    """Trace by image: the picture's sha256, PDQ hash, contrast, the threshold used."""
    copies: list[dict[str, Any]] = field(default_factory=list)
    """Trace by image: stored fetches of the same file (sha256): ``url``, ``found_in``."""
    near_duplicates: list[dict[str, Any]] = field(default_factory=list)
    """Trace by image: stored fetches within the PDQ threshold: ``url``, ``distance``."""
    lookalikes: list[dict[str, Any]] = field(default_factory=list)
    """Trace by image: CLIP's nearest other images (``url``, ``similarity``); semantic
    neighbours, not copies: listed, never merged into the journey."""

    @property
    def seen(self) -> bool:
        return bool(self.sightings)

    @property
    def used_in_training(self) -> bool:
        return bool(self.training)

    @property
    def flagged(self) -> bool:
        """Some audited sample prompted with, or nearest to, this image was flagged as a copy."""
        return any(a["flagged"] for a in self.audit)

    def current(self, hop: str) -> list[dict[str, Any]]:
        """The rows of ``hop`` (``sightings``, ``decisions``, ``clip``...) that are current
        (at :attr:`as_of`): not replaced or removed since."""
        return [row for row in getattr(self, hop) if row["until"] is None]

    @property
    def withdrawn(self) -> bool:
        return bool(self.withdrawals)

    @property
    def erased(self) -> bool:
        return bool(self.tombstones)

    def events(self) -> list[dict[str, Any]]:
        """What happened to the image, in time order: each decision from hop 2 on when it was
        made (``at``), and the owners' withdrawals. Rows re-written unchanged are one event."""
        events = []

        def add(at, hop: str, pair_id: str | None, event: str) -> None:
            events.append({"at": at, "hop": hop, "pair_id": pair_id, "event": event})

        for d in self.decisions:
            verdict = "kept" if d["kept"] else f"dropped ({d['drop_reason']})"
            add(d["since"], "alt_text", d["pair_id"], f"alt text {verdict}")
        for c in self.clip:
            verdict = "passed" if c["kept"] else f"dropped ({c['drop_reason']})"
            add(c["since"], "clip", c["pair_id"], f"CLIP filter {verdict}")
        for r in self.release:
            if r["kept"]:
                verdict = f"released in {r['crawl']}"
            elif (r["drop_reason"] or "").startswith(WITHDRAWN_PREFIXES):
                verdict = f"withdrawn from the release of {r['crawl']} ({r['drop_reason']})"
            else:
                verdict = f"not released in {r['crawl']} ({r['drop_reason']})"
            add(r["since"], "release", r["pair_id"], verdict)
        for a in self.aesthetic:
            verdict = "in" if a["kept"] else f"left out of ({a['drop_reason']})"
            add(a["since"], "aesthetic", a["pair_id"], f"{verdict} the aesthetic subset")
        for d in self.downloads:
            where = f"shard {d['shard_uri']}, key {d['key']}" if d["shard_uri"] else d["status"]
            add(d["since"], "download", d["pair_id"], f"download {d['status']} ({where})")
        for t in self.training:
            add(
                t["since"],
                "training",
                t["pair_id"],
                f"trained checkpoint {t['checkpoint_sha256']} (step {t['checkpoint_step']}, "
                f"run {t['run_fingerprint']})",
            )
        for w in self.withdrawals:
            by = "a takedown list" if w["list"] else "its owner"
            add(w["added_at"], "opt_out", None, f"withdrawn by {by} ({w['match']})")
        for e in self.tombstones:
            removed = ", ".join(e["what"] or []) or "nothing stored"
            add(e["erased_at"], "erasure", e["pair_id"], f"erased ({e['reason']}): {removed}")
        order = {hop: i for i, hop in enumerate(EVENT_HOPS)}
        return sorted(
            events,
            key=lambda e: (e["at"] is not None, e["at"] or 0, order[e["hop"]], e["pair_id"] or ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "seen": self.seen,
            "sightings": self.sightings,
            "decisions": self.decisions,
            "clip": self.clip,
            "release": self.release,
            "aesthetic": self.aesthetic,
            "downloads": self.downloads,
            "training": self.training,
            "used_in_training": self.used_in_training,
            "audit": self.audit,
            "flagged": self.flagged,
            "withdrawals": self.withdrawals,
            "withdrawn": self.withdrawn,
            "tombstones": self.tombstones,
            "erased": self.erased,
            "events": self.events(),
            **(
                {
                    "picture": self.picture,
                    "copies": self.copies,
                    "near_duplicates": self.near_duplicates,
                    "lookalikes": self.lookalikes,
                }
                if self.picture is not None
                else {}
            ),
        }

    def story(self) -> str:
        """The journey as readable text, hop by hop."""
        what = ", ".join(f"{k} {v}" for k, v in self.query.items())
        if self.as_of is not None:
            what = f"{what} (as the lake stood at {_date(self.as_of)})"
        head = self._picture_lines()
        if not self.seen:
            return "\n".join([*head, f"{what}: never seen in any crawl processed into this lake."])
        pages = {s["page_url"] for s in self.sightings}
        crawls = sorted({s["crawl_id"] for s in self.sightings})
        lines = [
            *head,
            f"{what}: found {len(self.sightings)} time(s) on {len(pages)} page(s) "
            f"in crawl(s) {', '.join(crawls)}.",
            "",
            "1. Common Crawl WAT records:",
        ]
        for s in self.sightings[:50]:
            alt = "no alt attribute" if s["alt"] is None else f"alt {s['alt']!r}"
            lines.append(
                f"   - {s['crawl_id']} {s['wat_path']} @ {s['wat_record_offset']}: "
                f"page {s['page_url']} ({s['page_date']}), {alt}; "
                f"source WARC {s['warc_filename']} @ {s['warc_offset']}"
            )
        if len(self.sightings) > 50:
            lines.append(f"   ... and {len(self.sightings) - 50} more")
        lines.append("2. Alt-text parsing:")
        if not self.decisions:
            lines.append("   - not processed yet")
        for d in self.decisions:
            if d["kept"]:
                lang = d["language"] or "no language"
                lines.append(
                    f"   - pair {d['pair_id']} on {d['page_url']}: kept as {d['text']!r} "
                    f"({lang}, score {d['language_score']:.2f})"
                )
            else:
                lines.append(
                    f"   - pair {d['pair_id']} on {d['page_url']}: dropped ({d['drop_reason']})"
                )
        lines += self._later_hops()
        lines += self._history_lines()
        return "\n".join(lines)

    def _picture_lines(self) -> list[str]:
        """Trace by image: the copies and near-duplicates (the journey below is theirs) and
        the lookalikes (not merged)."""
        if self.picture is None:
            return []
        p = self.picture
        lines = [f"Picture sha256 {p['sha256']}, contrast {p['contrast']}:"]
        lines.append(f"  Exact copies (same sha256): {len(self.copies)}")
        lines += [f"   - {c['url']} ({c['found_in']})" for c in self.copies]
        if p["contrast"] < p["min_contrast"]:
            lines.append(
                f"  Near-duplicates: not searched (contrast {p['contrast']} < "
                f"{p['min_contrast']}: too featureless for its descriptor to identify it)"
            )
        else:
            lines.append(
                f"  Near-duplicates (copy descriptor within {p['near_duplicate_threshold']}): "
                f"{len(self.near_duplicates)}"
            )
        lines += [f"   - {n['url']} (distance {n['distance']})" for n in self.near_duplicates]
        lines.append(f"  Lookalikes (CLIP, not merged below): {len(self.lookalikes)}")
        lines += [f"   - {x['url']} (similarity {x['similarity']:.3f})" for x in self.lookalikes]
        return [*lines, ""]

    def _history_lines(self) -> list[str]:
        """The events, dated; and the state of the image now (or at :attr:`as_of`)."""
        events = self.events()
        if not events:
            return []
        lines = ["", "History" + (f" (as of {_date(self.as_of)})" if self.as_of else "") + ":"]
        for e in events:
            pair = f" [pair {e['pair_id']}]" if e["pair_id"] else ""
            lines.append(f"   - {_date(e['at'])}: {e['event']}{pair}")
        checkpoints = sorted({t["checkpoint_sha256"] for t in self.training})
        if self.withdrawn:
            matches = ", ".join(sorted({w["match"] for w in self.withdrawals}))
            trained = (
                f"{len(checkpoints)} checkpoint(s) trained on it before: {', '.join(checkpoints)}"
                if checkpoints
                else "no checkpoint trained on it"
            )
            lines.append(f"Withdrawn by its owner ({matches}); {trained}.")
        if self.erased:
            when = _date(self.tombstones[-1]["erased_at"])
            lines.append(f"Erased on {when}: its bytes and embeddings are gone, tombstone kept.")
        return lines

    def _later_hops(self) -> list[str]:
        """Story lines for the CLIP filter, the released dataset and the aesthetic subset."""
        if not any(d["kept"] for d in self.decisions):
            return []
        lines = ["3. CLIP filter (download, embed, similarity):"]
        if not self.clip:
            lines.append("   - not processed yet")
        for c in self.clip:
            image = f"{c['width']}x{c['height']}, sha256 {c['sha256'][:16]}…" if c["sha256"] else ""
            if c["similarity"] is not None:
                score = (
                    f"similarity {c['similarity']:.3f} (threshold {c['threshold']:.2f}), "
                    f"punsafe {c['punsafe']:.2f}, pwatermark {c['pwatermark']:.2f}"
                )
            else:
                score = f"fetch {c['fetch_status']}" + (f": {c['error']}" if c["error"] else "")
            verdict = "kept" if c["kept"] else f"dropped ({c['drop_reason']})"
            cache = ", embedding reused" if c["from_cache"] else ""
            lines.append(
                f"   - pair {c['pair_id']} ({c['crawl_id']}, model {c['model_id']}): {verdict}; "
                f"{score}{'; ' + image if image else ''}{cache}"
            )
        if any(c["kept"] for c in self.clip):
            lines.append("4. Released dataset (global dedup on URL and text):")
            if not self.release:
                lines.append("   - not released yet")
            for r in self.release:
                verdict = (
                    "released"
                    if r["kept"]
                    else (f"dropped ({r['drop_reason']}, duplicate of {r['duplicate_of']})")
                )
                lines.append(f"   - pair {r['pair_id']} in {r['crawl']}: {verdict}")
        if any(r["kept"] for r in self.release):
            lines.append("5. Aesthetic subset:")
            if not self.aesthetic:
                lines.append("   - not scored yet")
            for a in self.aesthetic:
                score = "no score" if a["aesthetic"] is None else f"score {a['aesthetic']:.2f}"
                verdict = "in the subset" if a["kept"] else f"left out ({a['drop_reason']})"
                lines.append(f"   - pair {a['pair_id']} in {a['crawl']}: {score}, {verdict}")
        if any(a["kept"] for a in self.aesthetic):
            lines += self._training_hops()
        return lines

    def _training_hops(self) -> list[str]:
        """Story lines for the image download, the diffusion training and the audit."""
        lines = ["6. Downloaded (img2dataset):"]
        if not self.downloads:
            lines.append("   - not downloaded yet")
        for d in self.downloads:
            where = f"   - pair {d['pair_id']} in {d['crawl']}: "
            tries = f"{d['attempts']} attempt(s)" if d["attempts"] is not None else "attempts ?"
            error = f": {d['error_message']}" if d["error_message"] else ""
            if d["status"] == "success":
                image = f"{d['width']}x{d['height']}" + (
                    f", sha256 {d['sha256'][:16]}…" if d["sha256"] else ""
                )
                lines.append(
                    f"{where}downloaded ({image}, {tries}); shard {d['shard_uri']}, key {d['key']}"
                )
            elif d["status"] == "not_attempted_yet":
                lines.append(f"{where}not attempted yet")
            else:
                lines.append(f"{where}{d['status']}{error} ({tries})")
        if not self.downloads:
            return lines
        lines.append("7. Trained (diffusion model):")
        trained: dict[str, list[dict[str, Any]]] = {}
        for t in self.training:
            trained.setdefault(t["pair_id"], []).append(t)
        for d in self.downloads:
            rows = trained.get(d["pair_id"], [])
            if not rows:
                why = "" if d["status"] == "success" else f" (download {d['status']})"
                lines.append(f"   - pair {d['pair_id']}: not used in training{why}")
            for t in rows:
                lines.append(
                    f"   - pair {t['pair_id']}: trained checkpoint {t['checkpoint_sha256']} "
                    f"(step {t['checkpoint_step']}, run {t['run_fingerprint']}), "
                    f"seen {t['times_seen']} time(s)"
                )
        if not self.training:
            return lines
        lines.append("8. Replication audit:")
        if not self.audit:
            lines.append("   - no audited sample was prompted with or matched to this pair")
        pairs = {t["pair_id"] for t in self.training}
        for a in self.audit:
            sample = f"sample (seed {a['seed']}, checkpoint {a['checkpoint_sha256'][:16]}…)"
            if a["prompt_pair_id"] in pairs:
                sample = f"{sample} prompted with pair {a['prompt_pair_id']}'s caption"
            else:
                sample = f"{sample} of prompt pair {a['prompt_pair_id']}"
            nearest = f"nearest training image pair {a['nearest_pair_id']}" + (
                " (its own)" if a["nearest_is_prompt_pair"] else ""
            )
            margin = f", margin {a['margin']:.3f}" if a["margin"] is not None else ""
            verdict = "FLAGGED as a possible copy" if a["flagged"] else "not flagged"
            lines.append(
                f"   - {sample}: {nearest}, {a['descriptor']} similarity "
                f"{a['similarity']:.3f}{margin}: {verdict}"
            )
        return lines


class LineageIndex:
    """The lake's traced tables, every row they ever held, looked up by key hash.

    Each Delta data file of a traced table has one immutable index piece
    (:mod:`pipeline.lineage.pieces`), built the first time an index sees the file; the
    commit log says when each file was current (:func:`file_lifetimes`). So a new or re-run
    partition costs only its own rows, and the index answers as of the table versions read
    when the object is made (:attr:`versions`): a snapshot. ``index_dir`` defaults to
    :func:`default_index_dir`.
    """

    def __init__(self, lake: Lake, index_dir: str | Path | None = None) -> None:
        self.lake = lake
        self.dir = Path(index_dir) if index_dir else default_index_dir(lake)
        self.versions = lake_versions(lake)
        self.fingerprint = fingerprint(self.versions)
        self.generation = generation_dir(self.dir, INDEX_FORMAT)
        self.pieces_built = 0
        """Pieces this object had to build (0: the index was up to date)."""
        self.con = duckdb.connect()
        self.con.execute("SET enable_object_cache = true")
        self.tables: set[str] = set()
        for table in TRACED_TABLES:
            if table in self.versions:
                self._attach(table, *self.versions[table])
        if self.pieces_built:
            remove_stale(self.dir, self.generation, {t: v[0] for t, v in self.versions.items()})

    @property
    def rebuilt(self) -> bool:
        """Whether this object added pieces (the lake changed since the last index)."""
        return self.pieces_built > 0

    def _attach(self, table: str, table_id: str, version: int) -> None:
        """Make ``table`` a view over its pieces joined to its files' lifetimes at
        ``version``, building the pieces of files no index has seen yet."""
        lifetimes = file_lifetimes(self.lake, table, version)
        if lifetimes.num_rows == 0:
            return
        paths = lifetimes.column("path").to_pylist()
        keys = {c: KEYS[c] for c in TABLE_KEYS[table]}
        pieces, built = ensure_pieces(
            self.lake,
            self.generation,
            table,
            table_id,
            version,
            paths,
            TRACED[table].traced,
            keys,
        )
        self.pieces_built += built
        self.con.register(f"{table}__lifetimes", lifetimes)
        files = ", ".join("'" + str(pieces[p]).replace("'", "''") + "'" for p in paths)
        partition = (
            f', l."{PARTITION}" AS {PARTITION_COLUMN[table]}' if table in PARTITION_COLUMN else ""
        )
        self.con.execute(
            f"CREATE VIEW {table} AS SELECT p.*{partition}, "
            f"l._since, l._until, l._since_version, l._until_version "
            f"FROM read_parquet([{files}]) p JOIN {table}__lifetimes l ON p._file = l.path"
        )
        self.tables.add(table)

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        cursor = self.con.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _journey(
        self, query: dict[str, str], column: str, values: list[str], as_of: datetime | None
    ) -> Journey:
        """Rows whose ``column`` is one of ``values``, found through its hash column: one
        lookup per value (an ``IN`` list would be pruned to its min..max range of hashes,
        which spans most of the table). A pair is followed to the next hop if it was kept
        at any time (as of ``as_of``): a later withdrawal does not hide what happened."""
        journey = Journey(query, as_of=as_of)

        def look(table: str, by: str, keys: list[str]) -> list[dict[str, Any]]:
            return self._lookup(table, by, keys, as_of) if table in self.tables and keys else []

        journey.sightings = look(TableName.WAT_IMAGE_LINKS, column, values)
        if journey.sightings:
            journey.decisions = look(TableName.ALT_TEXT_PAIRS, column, values)
        kept = [d["pair_id"] for d in journey.decisions if d["kept"]]
        journey.clip = look(TableName.CLIP_SCORES, "pair_id", kept)
        scored = [c["pair_id"] for c in journey.clip if c["kept"]]
        journey.release = look(TableName.LAION_DATASET_DECISIONS, "pair_id", scored)
        released = [r["pair_id"] for r in journey.release if r["kept"]]
        journey.aesthetic = look(TableName.AESTHETIC_SUBSET, "pair_id", released)
        subset = [a["pair_id"] for a in journey.aesthetic if a["kept"]]
        journey.downloads = look(TableName.DOWNLOAD_RESULTS, "pair_id", subset)
        for d in journey.downloads:
            root = self.lake.partition_uri(SHARDS_TABLE, d["crawl"])
            d["shard_uri"] = f"{root}/{d['shard']}" if d["shard"] else None
        downloaded = [d["pair_id"] for d in journey.downloads if d["status"] == "success"]
        journey.training = look(TableName.TRAINING_MANIFEST, "pair_id", downloaded)
        trained = [t["pair_id"] for t in journey.training]
        if TableName.REPLICATION_AUDIT in self.tables and trained:
            journey.audit = self._audit(trained, as_of)
        urls = {s["url"] for s in journey.sightings}
        journey.withdrawals = withdrawals(self.lake, urls, journey.clip, as_of)
        url_ids = {c["url_id"] for c in journey.clip if c.get("url_id")}
        journey.tombstones = tombstones(self.lake, url_ids, as_of)
        return journey

    def _audit(self, pair_ids: list[str], as_of: datetime | None) -> list[dict[str, Any]]:
        """Audit rows whose prompt or nearest training image is one of ``pair_ids``, once
        each (a sample nearest to its own prompt's image matches both ways)."""
        rows = self._lookup(TableName.REPLICATION_AUDIT, "prompt_pair_id", pair_ids, as_of)
        rows += self._lookup(TableName.REPLICATION_AUDIT, "nearest_pair_id", pair_ids, as_of)
        unique = {orjson.dumps(r, option=orjson.OPT_SORT_KEYS): r for r in rows}
        return sorted(
            unique.values(),
            key=lambda r: (
                r["checkpoint_sha256"],
                r["descriptor"],
                r["seed"],
                r["prompt_pair_id"],
                r["since_version"],
            ),
        )

    def _lookup(
        self, table: str, column: str, values: list[str], as_of: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Every row (current and past) whose ``column`` is in ``values``, as of ``as_of``,
        with its history (:func:`with_history`)."""
        values = list(dict.fromkeys(values))
        params = [v for value in values for v in (value, value)]
        columns = TRACED_TABLES[table] + (
            f", {PARTITION_COLUMN[table]}" if table in PARTITION_COLUMN else ""
        )
        one = (
            f"SELECT {columns}, {LIFETIME} FROM {table} "
            f"WHERE {KEYS[column]} = hash(?) AND {column} = ?"
        )
        sql = " UNION ALL ".join([one] * len(values)) + f" {ORDER[table]}, _since_version"
        return with_history(self._rows(sql, params), as_of)

    def trace(self, url: str, as_of: datetime | None = None) -> Journey:
        """The journey of an image URL (as written, resolved, or in normalized form); with
        ``as_of``, as the lake stood then."""
        try:
            normalized = normalize_url(url)
        except ValueError:
            normalized = url
        return self._journey({"url": url}, "url", [url, normalized], as_of)

    def trace_pair(self, pair_id: str, as_of: datetime | None = None) -> Journey:
        return self._journey({"pair_id": pair_id}, "pair_id", [pair_id], as_of)

    def trace_page(self, page_url: str, as_of: datetime | None = None) -> Journey:
        return self._journey({"page_url": page_url}, "page_url", [page_url], as_of)

    def trace_picture(self, picture, clip, k: int = 5, min_similarity: float = 0.5) -> Journey:
        """The journey of a picture (file bytes, or a decoded PIL image: no sha256 then):
        merged from its exact copies (sha256) and near-duplicates (copy descriptor within the
        calibrated distance) only; ``clip``'s nearest embeddings are listed as ``lookalikes``."""
        from pipeline.lineage.lookalike import match_picture

        found = match_picture(self.lake, picture, clip, k, min_similarity)
        copies = []
        if found.sha256 is not None:
            for table, column in (
                (TableName.CLIP_SCORES, "url"),
                (TableName.DOWNLOAD_RESULTS, "URL"),
            ):
                if table in self.tables:
                    rows = self._lookup(table, "sha256", [found.sha256], None)
                    copies += [{"url": r[column], "found_in": table} for r in rows if r[column]]
        copies = list({orjson.dumps(c): c for c in copies}.values())
        urls = [c["url"] for c in copies] + [n["url"] for n in found.near_duplicates]
        query = {"picture": found.sha256 or found.pdq}
        journey = self._journey(query, "url", urls, None) if urls else Journey(query)
        journey.picture = found.to_dict()
        journey.copies = copies
        journey.near_duplicates = found.near_duplicates
        journey.lookalikes = [
            {"url": x.url, "url_id": x.url_id, "similarity": x.similarity}
            for x in found.lookalikes
            if x.url not in set(urls)
        ]
        return journey

    trace_lookalike = trace_picture

    def trace_image(self, sha256: str, as_of: datetime | None = None) -> Journey:
        """Every URL whose downloaded bytes had this sha256 (the image file itself), as
        fetched for the CLIP filter or by img2dataset."""
        urls = []
        if TableName.CLIP_SCORES in self.tables:
            rows = self._lookup(TableName.CLIP_SCORES, "sha256", [sha256.lower()], as_of)
            urls += [r["url"] for r in rows]
        if TableName.DOWNLOAD_RESULTS in self.tables:
            rows = self._lookup(TableName.DOWNLOAD_RESULTS, "sha256", [sha256.lower()], as_of)
            urls += [r["URL"] for r in rows if r["URL"]]
        if not urls:
            return Journey({"sha256": sha256}, as_of=as_of)
        return self._journey({"sha256": sha256}, "url", urls, as_of)


HISTORY_FIELDS = ("since", "until", "since_version", "until_version")
"""Per journey row: when (commit time) and in which table version it was first current, and
when it stopped being current (null: it still is)."""


def _date(at: datetime | None) -> str:
    return "before the log began" if at is None else f"{at:%Y-%m-%d %H:%M:%S} UTC"


def with_history(rows: list[dict[str, Any]], as_of: datetime | None) -> list[dict[str, Any]]:
    """Rows as of ``as_of`` (those committed by then; one removed later is current then),
    each with :data:`HISTORY_FIELDS`; a row re-written unchanged by a re-run is one row from
    its first commit to its last (consecutive versions with equal content merge)."""
    out: list[dict[str, Any]] = []
    last: dict[bytes, dict[str, Any]] = {}
    for row in rows:
        since, until = row.pop("_since"), row.pop("_until")
        since_version, until_version = row.pop("_since_version"), row.pop("_until_version")
        if as_of is not None:
            if since is not None and since > as_of:
                continue
            if until is not None and until > as_of:
                until, until_version = None, None
        content = orjson.dumps(row, option=orjson.OPT_SORT_KEYS)
        previous = last.get(content)
        if previous is not None and previous["until_version"] == since_version:
            previous["until"], previous["until_version"] = until, until_version
            continue
        row.update(
            since=since, until=until, since_version=since_version, until_version=until_version
        )
        last[content] = row
        out.append(row)
    return out


def withdrawals(
    lake: Lake, urls: set[str], clip: list[dict[str, Any]], as_of: datetime | None
) -> list[dict[str, Any]]:
    """What withdraws the image, as the lists stood at ``as_of``: entries of the owners'
    opt-out list matching one of ``urls`` (or an image file the CLIP filter fetched for them),
    and takedown hash-list entries matching a fetched image's md5, sha256 or PDQ. Each:
    ``kind``, ``value``, ``match`` (the drop reason it causes), ``added_at``, ``note``,
    ``list`` and ``distance`` (hash lists)."""
    from pipeline.hops.dataset.hash_lists import HashLists, ImageHashes
    from pipeline.hops.dataset.opt_outs import OptOutList

    if not urls:
        return []
    found = []
    listed = lake.read(TableName.OPT_OUTS, as_of=as_of)
    shas = {c["url"]: c["sha256"] for c in clip if c.get("sha256")}
    for entry in listed.to_pylist() if listed is not None else []:
        single = OptOutList.from_table(pa.Table.from_pylist([entry], schema=listed.schema))
        hits = sorted({m for u in urls if (m := single.match(u, shas.get(u)))})
        if hits:
            found.append({**entry, "match": hits[0], "list": None, "distance": None})
    lists = lake.read(TableName.HASH_LISTS, as_of=as_of)
    if lists is not None:
        matcher = HashLists(lists)
        entries = {(r["name"], r["kind"], r["value"]): r for r in lists.to_pylist()}
        images = {(c.get("md5"), c.get("sha256"), c.get("pdq")) for c in clip}
        for md5, sha256, pdq in sorted(images, key=str):
            for m in matcher.matches(ImageHashes(md5, sha256, pdq)):
                entry = entries[(m.name, m.kind, m.value)]
                found.append(
                    {
                        "kind": m.kind,
                        "value": m.value,
                        "added_at": entry["added_at"],
                        "note": entry["note"],
                        "match": m.reason,
                        "list": m.name,
                        "distance": m.distance,
                    }
                )
    unique = {orjson.dumps(e, option=orjson.OPT_SORT_KEYS): e for e in found}
    return sorted(unique.values(), key=lambda e: (e["added_at"], e["kind"], e["value"]))


def tombstones(lake: Lake, url_ids: set[str], as_of: datetime | None) -> list[dict[str, Any]]:
    """Tombstones (``erasures``) of these images, as of ``as_of``, oldest first."""
    if not url_ids:
        return []
    found = lake.read(TableName.ERASURES, as_of=as_of)
    rows = [r for r in (found.to_pylist() if found is not None else []) if r["url_id"] in url_ids]
    return sorted(rows, key=lambda r: (r["erased_at"], r["erasure_id"], r["pair_id"] or ""))


def lake_versions(lake: Lake) -> dict[str, tuple[str, int]]:
    """Each traced table's Delta identity (its metadata id) and current version; tables not
    written yet are left out."""
    versions = {}
    for table in TRACED_TABLES:
        found = lake.delta_table(table)
        if found is not None:
            versions[table] = (found.metadata().id, found.version())
    return versions


def fingerprint(versions: dict[str, tuple[str, int]]) -> str:
    """Identity of a lake state: each traced table's identity and version (a moved lake keeps
    its index; a lake rebuilt from scratch has new table ids), the index format, DuckDB's
    version (its ``hash`` and file format may change with it)."""
    state = {"format": INDEX_FORMAT, "duckdb": duckdb.__version__, "tables": versions}
    return hashlib.sha256(orjson.dumps(state, option=orjson.OPT_SORT_KEYS)).hexdigest()


def default_index_dir(lake: Lake) -> Path:
    """``<lake>/_lineage`` for a local lake; for a remote one (DuckDB needs a local file),
    ``$XDG_CACHE_HOME/crawl2diffusion/lineage/<hash of the lake root>``."""
    if lake.is_local:
        return Path(fsspec.core.strip_protocol(lake.root)) / "_lineage"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return (
        cache / "crawl2diffusion" / "lineage" / hashlib.sha256(lake.root.encode()).hexdigest()[:16]
    )
