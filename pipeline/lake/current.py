"""A table's current Delta state, kept open per process and brought up to date cheaply.

A search that runs many times a second (trace by image) needs each partition's current data
files. Opening the table reads its log (the last checkpoint and every commit after it) each
time; a table kept open is brought up to date by reading only the commits made since
(``DeltaTable.update_incremental``), under a millisecond when nothing changed. What is derived
from the state is cached by the caller under the table's version. A table deleted and made
again under the same URI, with no more versions than this process saw, is not noticed (the
lake never does that; tests use fresh directories).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

if TYPE_CHECKING:
    from pipeline.lake.store import Lake

_tables: dict[str, DeltaTable] = {}
_lock = threading.Lock()


def table(lake: Lake, name: str) -> DeltaTable | None:
    """The latest state of table ``name`` (None while it does not exist), shared: read it,
    never move it to another version."""
    uri = lake.table_uri(name)
    with _lock:
        found = _tables.get(uri)
        if found is not None:
            try:
                found.update_incremental()
                return found
            except (DeltaError, OSError):  # gone or unreadable: open it afresh below
                del _tables[uri]
        found = lake.delta_table(name)
        if found is not None:
            _tables[uri] = found
        return found
