"""A table's whole history: every data file it ever held, and from when until when.

Delta files never change: a partition is replaced by a commit that removes the old files and
adds new ones, and the removed files stay on storage (the decision tables are never
vacuumed). So a row's history is its file's: it was in the table from the commit that added
the file until the commit that removed it. :func:`file_lifetimes` reads that from the commit
log (``_delta_log/<version>.json``: ``add``, ``remove`` and ``commitInfo.timestamp``), and
:func:`rows_with_lifetimes` reads the rows of every file with ``_since``/``_until`` (commit
times) and ``_since_version``/``_until_version`` attached.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import pyarrow as pa
import pyarrow.dataset as ds

from pipeline.lake.delta import PARTITION, add_actions
from pipeline.lake.delta_types import restore
from pipeline.lake.store import Lake

_COMMIT = re.compile(r"(\d{20})\.json$")
LIFETIME_SCHEMA = pa.schema(
    [
        pa.field("path", pa.string()),
        pa.field(PARTITION, pa.string()),
        pa.field("_since_version", pa.int64()),
        pa.field("_until_version", pa.int64()),
        pa.field("_since", pa.timestamp("ms", tz="UTC")),
        pa.field("_until", pa.timestamp("ms", tz="UTC")),
    ]
)
"""One row per data file: its partition, the commit (version, time) that added it and the
one that removed it (null while it is current)."""


@dataclass(frozen=True)
class Commit:
    version: int
    at: datetime


def commits(lake: Lake, table: str) -> list[Commit]:
    """The table's commits that are still in its log, oldest first."""
    return [Commit(v, at) for v, at, _ in _log(lake, table)]


def commit_time(lake: Lake, table: str, version: int) -> datetime:
    """When ``version`` of ``table`` was committed."""
    for commit in commits(lake, table):
        if commit.version == version:
            return commit.at
    raise LookupError(f"{table} has no version {version} in its commit log")


def _log(lake: Lake, table: str) -> list[tuple[int, datetime, list[dict]]]:
    log_dir = lake.path(table, "_delta_log")
    if not lake.fs.exists(log_dir):
        return []
    found = []
    for name in lake.fs.ls(log_dir, detail=False):
        match = _COMMIT.search(name)
        if match:
            found.append((int(match.group(1)), name))
    out = []
    for version, name in sorted(found):
        with lake.fs.open(name, "rb") as handle:
            actions = [orjson.loads(line) for line in handle.read().splitlines() if line.strip()]
        info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
        at = datetime.fromtimestamp(info.get("timestamp", 0) / 1000, UTC)
        out.append((version, at, actions))
    return out


def file_lifetimes(lake: Lake, table: str, up_to: int | None = None) -> pa.Table:
    """Every data file the table ever held (:data:`LIFETIME_SCHEMA`), as of version ``up_to``
    (default: the latest). Files added before the oldest commit still logged count from that
    commit's predecessor, time unknown (null)."""
    log = [c for c in _log(lake, table) if up_to is None or c[0] <= up_to]
    if not log:
        return LIFETIME_SCHEMA.empty_table()
    live: dict[str, dict] = {}
    done: list[dict] = []
    first = log[0][0]
    if first > 0:  # the log was cleaned up: start from the state before the oldest commit
        seed = lake.delta_table(table, version=first - 1)
        assert seed is not None
        for action in add_actions(seed).to_pylist():
            live[action["path"]] = _life(action["path"], action[PARTITION], first - 1, None)
    for version, at, actions in log:
        for action in actions:
            if "remove" in action:
                path = action["remove"]["path"]
                if path in live:
                    done.append({**live.pop(path), "_until_version": version, "_until": at})
            elif "add" in action:
                add = action["add"]
                partition = (add.get("partitionValues") or {}).get(PARTITION)
                live[add["path"]] = _life(add["path"], partition, version, at)
    return pa.Table.from_pylist([*done, *live.values()], schema=LIFETIME_SCHEMA)


def _life(path: str, partition: str | None, version: int, at: datetime | None) -> dict:
    return {
        "path": path,
        PARTITION: partition,
        "_since_version": version,
        "_until_version": None,
        "_since": at,
        "_until": None,
    }


def file_rows(
    lake: Lake, table: str, paths: list[str], columns: list[str], up_to: int | None = None
) -> Iterator[tuple[str, pa.Table]]:
    """``(path, rows)`` for each data file in ``paths`` (as the commit log names them):
    ``columns`` with their Arrow types restored; columns the table lacks read as null strings.
    The table's schema is read at version ``up_to`` (default: the latest)."""
    current = lake.delta_table(table, version=up_to)
    if current is None or not paths:
        return
    dataset = current.to_pyarrow_dataset()
    missing = [c for c in columns if c not in dataset.schema.names]
    present = [c for c in columns if c in dataset.schema.names]
    schema = pa.schema([dataset.schema.field(c) for c in present])
    files = ds.dataset(paths, schema=schema, format="parquet", filesystem=dataset.filesystem)
    for fragment in files.get_fragments():
        rows = restore(fragment.to_table(schema=schema, columns=present))
        for name in missing:  # a column the table does not have (yet): null
            rows = rows.append_column(name, pa.nulls(len(rows), pa.string()))
        yield fragment.path, rows.select(columns)


def rows_with_lifetimes(
    lake: Lake, table: str, columns: list[str], up_to: int | None = None
) -> pa.Table | None:
    """``columns`` of every row the table held up to version ``up_to`` (default: the latest),
    with its file's :data:`PARTITION`, ``_since``, ``_until``, ``_since_version`` and
    ``_until_version``; None if the table does not exist."""
    if lake.delta_table(table, version=up_to) is None:
        return None
    lifetimes = file_lifetimes(lake, table, up_to)
    lives = {r["path"]: r for r in lifetimes.to_pylist()}
    parts = []
    for path, rows in file_rows(lake, table, list(lives), columns, up_to):
        for field in LIFETIME_SCHEMA.remove(0):
            value = lives[path][field.name]
            rows = rows.append_column(field, pa.array([value] * len(rows), field.type))
        parts.append(rows)
    if not parts:
        return None
    return pa.concat_tables(parts)


def resolve_as_of(lake: Lake, text: str) -> datetime:
    """A point in the lake's history: an ISO 8601 time (UTC unless it says otherwise) or
    ``table@version``, the time that version was committed."""
    if "@" in text:
        table, _, version = text.partition("@")
        if not version.isdigit():
            raise ValueError(f"{text!r}: expected table@version, e.g. laion_dataset@3")
        return commit_time(lake, table, int(version))
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r}: expected an ISO 8601 time or table@version") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)
