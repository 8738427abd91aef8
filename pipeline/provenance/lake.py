"""Provenance as the lake holds it: hop 3's ``ai_generated`` column, looked up by pair."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pyarrow.compute as pc

from pipeline.lake.tables import TableName

if TYPE_CHECKING:
    from pipeline.lake.store import Lake


def ai_generated_pairs(lake: Lake, pair_ids: Iterable[str]) -> frozenset[str]:
    """The pair_ids among ``pair_ids`` whose image hop 3 read as declared AI-generated (none
    where ``clip_scores`` predates the provenance columns)."""
    wanted = list(pair_ids)
    table = lake.delta_table(TableName.CLIP_SCORES)
    if not wanted or table is None:
        return frozenset()
    if "ai_generated" not in {f.name for f in table.schema().fields}:
        return frozenset()
    found = lake.lookup(TableName.CLIP_SCORES, "pair_id", wanted, ["pair_id", "ai_generated"])
    if found is None:
        return frozenset()
    hits = found.filter(pc.fill_null(found.column("ai_generated"), False))
    return frozenset(hits.column("pair_id").to_pylist())
