"""Aesthetic scores from stored CLIP embeddings, and the LAION-Aesthetics-style subsets."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.lake.tables import AESTHETIC_SCORES_SCHEMA as SCORES_SCHEMA
from pipeline.lake.tables import AESTHETIC_SUBSET_SCHEMA as SUBSET_SCHEMA
from pipeline.settings import Settings

if TYPE_CHECKING:  # torch loads only when a head does
    from pipeline.hops.clip.heads import Head


@dataclass(frozen=True)
class SubsetRules:
    """LAION-Aesthetics V2: score cut-offs 5, 6 and 6.5; punsafe < 0.5; pwatermark < 0.8."""

    bands: tuple[float, ...] = (5.0, 6.0, 6.5)
    min_score: float | None = None
    """The subset's own cut-off; None: the lowest band."""
    max_punsafe: float = 0.5
    max_pwatermark: float = 0.8
    exclude_ai_generated: bool = Settings.exclude_ai_generated
    """Leave out pairs whose image's metadata declares a trained model (``ai_generated``)."""

    @property
    def cutoff(self) -> float:
        return self.min_score if self.min_score is not None else min(self.bands)


@dataclass
class AestheticResult:
    table: pa.Table
    rows_in: int
    rows_kept: int
    dropped: Counter[str] = field(default_factory=Counter)
    bands: dict[str, int] = field(default_factory=dict)


def embedding_matrix(
    embeddings: pa.Table, model_id: str, url_ids: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(rows found, matrix) for ``url_ids``, looked up in stored ``image_embeddings``."""
    mine = embeddings.filter(pc.equal(embeddings.column("model_id"), model_id))
    index = {uid: i for i, uid in enumerate(mine.column("url_id").to_pylist())}
    flat = mine.column("embedding").combine_chunks()
    dim = flat.type.list_size
    matrix = flat.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
    found = np.array([uid in index for uid in url_ids], dtype=bool)
    rows = [index[uid] for uid in url_ids if uid in index]
    return found, matrix[rows].astype(np.float32)


def score_embeddings(
    release: pa.Table, embeddings: pa.Table, model_id: str, head: Head
) -> pa.Table:
    """Aesthetic score of every released pair from its stored image embedding."""
    url_ids = release.column("url_id").to_pylist()
    found, matrix = embedding_matrix(embeddings, model_id, url_ids)
    scores = np.full(len(url_ids), np.nan, dtype=np.float32)
    if matrix.shape[0]:
        scores[found] = head(matrix)
    columns = {name: release.column(name) for name in SCORES_SCHEMA.names[:-1]}
    values = [None if np.isnan(s) else float(s) for s in scores]
    return pa.table({**columns, "aesthetic": pa.array(values, pa.float32())}).cast(SCORES_SCHEMA)


def apply_rules(
    scored: pa.Table, rules: SubsetRules, ai_generated: Collection[str] = frozenset()
) -> AestheticResult:
    """Keep rows at or above the cut-off that are neither unsafe nor watermarked nor, when
    the rules exclude them, among the ``ai_generated`` pair_ids (hop 3's metadata reading)."""
    reasons: list[str | None] = []
    bands: list[float | None] = []
    for row in scored.select(["pair_id", "aesthetic", "punsafe", "pwatermark"]).to_pylist():
        score = row["aesthetic"]
        met = [b for b in rules.bands if score is not None and score >= b]
        bands.append(max(met) if met else None)
        if score is None:
            reasons.append("missing_embedding")
        elif score < rules.cutoff:
            reasons.append("below_aesthetic")
        elif (row["punsafe"] or 0.0) >= rules.max_punsafe:
            reasons.append("unsafe")
        elif (row["pwatermark"] or 0.0) >= rules.max_pwatermark:
            reasons.append("watermarked")
        elif rules.exclude_ai_generated and row["pair_id"] in ai_generated:
            reasons.append("ai_generated")
        else:
            reasons.append(None)
    table = (
        scored.append_column("kept", pa.array([r is None for r in reasons]))
        .append_column("drop_reason", pa.array(reasons, pa.string()))
        .append_column("aesthetic_band", pa.array(bands, pa.float32()))
        .cast(SUBSET_SCHEMA)
    )
    dropped = Counter(r for r in reasons if r)
    band_counts = Counter(f">={b:g}" for b in bands if b is not None)
    return AestheticResult(table, scored.num_rows, scored.num_rows - sum(dropped.values()),
                           dropped, dict(sorted(band_counts.items())))  # fmt: skip
