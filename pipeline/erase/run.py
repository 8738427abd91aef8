"""``erase``: resolve a request to pairs, remove their bytes everywhere, vacuum, tombstone.

Order: tar members and img2dataset's parquet rows, rows of byte/embedding tables, report
grids, then VACUUM of the byte tables and their ANN index files (``lineage.ann``: the index
of a partition the DELETE rewrote is named after files that are gone), then the opt-out
list (what the request names, so no later hop fetches the image again) and the tombstones.
Each step is idempotent, so an interrupted erasure is finished by running it again. Vacuum
deletes files that no current version names: run an erasure while no hop writes the byte
tables.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

from pipeline.erase.reports import erase_reports
from pipeline.erase.rows import byte_tables, remove_rows, vacuum
from pipeline.erase.shards import erase_from_shards
from pipeline.erase.targets import EraseRequest, Targets, resolve
from pipeline.erase.tombstones import tombstones, write_tombstones
from pipeline.hops.dataset import opt_outs
from pipeline.lake.store import Lake
from pipeline.lineage import ann


@dataclass
class ErasureResult:
    erasure_id: str
    dry_run: bool
    targets: Targets
    tar_members: int = 0
    """Members removed from tars (a sample's image, caption and json each count)."""
    tars_rewritten: int = 0
    shard_rows: int = 0
    """Rows removed from img2dataset's per-shard and input parquet files."""
    table_rows: dict[str, int] = field(default_factory=dict)
    """Rows removed per byte/embedding table."""
    reports: list[str] = field(default_factory=list)
    vacuumed: dict[str, int] = field(default_factory=dict)
    """Files vacuum deleted per byte/embedding table."""
    indexes: int = 0
    """ANN index files removed (built on rows the erasure deleted)."""
    tombstones: int = 0

    def counts(self) -> dict[str, object]:
        return {
            "erasure_id": self.erasure_id,
            "dry_run": self.dry_run,
            "pairs": len(self.targets.pair_ids),
            "images": len(self.targets.url_ids),
            "tar_members": self.tar_members,
            "tars_rewritten": self.tars_rewritten,
            "shard_parquet_rows": self.shard_rows,
            "table_rows": dict(self.table_rows),
            "reports": list(self.reports),
            "vacuumed_files": dict(self.vacuumed),
            "index_files": self.indexes,
            "tombstones": self.tombstones,
        }


def _erasure_id(now: dt.datetime, targets: Targets) -> str:
    digest = hashlib.sha256("\n".join(sorted(targets.url_ids)).encode()).hexdigest()[:8]
    return f"{now:%Y%m%dT%H%M%SZ}-{digest}"


def erase(
    lake: Lake, request: EraseRequest, dry_run: bool = False, now: dt.datetime | None = None
) -> ErasureResult:
    """Erase what ``request`` names (``dry_run``: count it, change nothing)."""
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    targets = resolve(lake, request)
    result = ErasureResult(_erasure_id(now, targets), dry_run, targets)
    if not targets:
        return result
    what: dict[str, set[str]] = defaultdict(set)
    by_pair = {t.pair_id: t.url_id for t in targets.rows if t.pair_id}

    samples = erase_from_shards(lake, targets, dry_run)
    result.shard_rows = len(samples)
    result.tar_members = sum(s.members for s in samples)
    result.tars_rewritten = len({s.shard for s in samples if s.members})
    for s in samples:
        owner = s.url_id or by_pair.get(s.pair_id or "")
        if owner and s.members:
            what[owner].add(f"tar:{s.shard}#{s.key}")
        elif owner:
            what[owner].add(f"img2dataset:{s.shard}")

    extra = {"erasure_id": result.erasure_id}
    tables = byte_tables(lake)
    for table, schema in tables.items():
        counts = remove_rows(lake, table, schema, targets, dry_run, extra)
        if counts:
            result.table_rows[table] = sum(counts.values())
        for key in counts:
            what[by_pair.get(key, key)].add(table)

    for name, shown in erase_reports(lake, targets, dry_run).items():
        result.reports.append(name)
        for uid in shown:
            what[uid].add(f"report:{name}")

    for table in tables:
        result.vacuumed[table] = vacuum(lake, table, dry_run)
        if not dry_run:
            result.indexes += len(ann.prune(lake, table))

    rows = tombstones(result.erasure_id, now, targets, what)
    result.tombstones = rows.num_rows
    if not dry_run:
        withdraw(lake, request, result.erasure_id)
        write_tombstones(lake, rows, result.erasure_id)
    return result


def withdraw(lake: Lake, request: EraseRequest, erasure_id: str) -> None:
    """Put what an erasure names on the opt-out list too, so that no later hop fetches,
    embeds or downloads the erased image again (``--opted-out`` names entries already there)."""
    entries = [("url", u) for u in request.urls] + [("domain", d) for d in request.domains]
    entries += [("sha256", h) for h in request.sha256s]
    if entries:
        opt_outs.add(lake, entries, note=f"erasure {erasure_id}")
