"""The released dataset of one crawl: LAION's column layout, global dedup, language subsets."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from pipeline.hops.dataset.hash_lists import HashLists, stored_matches
from pipeline.hops.dataset.opt_outs import OptOutList
from pipeline.lake.tables import DECISION_SCHEMA, HASH_LIST_PREFIX, RELEASE_SCHEMA


@dataclass(frozen=True)
class SubsetNames:
    """File names of the language subsets, after LAION-5B's."""

    en: str = "laion2B-en"
    multi: str = "laion2B-multi"
    nolang: str = "laion1B-nolang"


@dataclass
class DatasetResult:
    release: pa.Table
    decisions: pa.Table
    subsets: dict[str, pa.Table]
    rows_in: int
    rows_kept: int
    dropped: Counter[str] = field(default_factory=Counter)
    languages: dict[str, int] = field(default_factory=dict)


def build_release(
    scores: pa.Table,
    names: SubsetNames | None = None,
    opt_outs: OptOutList | None = None,
    hash_lists: HashLists | None = None,
) -> DatasetResult:
    """Dedup kept ``clip_scores`` rows on (URL, TEXT) across the crawl's slices, keeping the
    most similar pair (ties: the lowest ``pair_id``, then slice, so the result does not depend
    on row or slice order), and split the release by language as LAION-5B did. Pairs on the
    opt-out list are dropped first (``opted_out:<kind>``), then pairs whose stored hashes a
    takedown list matches (``hash_list:<name>``: lists grow after slices are built), so a
    duplicate may take their place. The URL is compared normalized (``url_id``) and the text
    cleaned, hop 2's dedup key, so this is where pairs repeated across slices are decided."""
    names = names or SubsetNames()
    opt_outs = opt_outs or OptOutList()
    kept_rows = scores.filter(scores.column("kept"))
    hashes = [c for c in ("sha256", "md5", "pdq") if c in kept_rows.column_names]
    kept_rows = kept_rows.select(["pair_id", "url", *hashes])
    withdrawn = [
        (r["pair_id"], hit)
        for r in kept_rows.to_pylist()
        if (hit := opt_outs.match(r["url"], r.get("sha256")))
    ]
    if hash_lists:
        gone = {p for p, _ in withdrawn}
        first: dict[str, str] = {}  # closest match per pair (stored_matches sorts by distance)
        for m in stored_matches(kept_rows, hash_lists).sort_by("distance").to_pylist():
            if m["pair_id"] not in gone:
                first.setdefault(m["pair_id"], f"{HASH_LIST_PREFIX}{m['list_name']}")
        withdrawn += sorted(first.items())
    con = duckdb.connect()
    con.register("scores", scores)
    con.register(
        "opted_out",
        pa.table(
            {
                "pair_id": pa.array([p for p, _ in withdrawn], pa.string()),
                "reason": pa.array([h for _, h in withdrawn], pa.string()),
            }
        ),
    )
    ranked = """
        SELECT *, row_number() OVER w AS rank, first_value(pair_id) OVER w AS best
        FROM scores WHERE kept AND pair_id NOT IN (SELECT pair_id FROM opted_out)
        WINDOW w AS (PARTITION BY url_id, text
                     ORDER BY similarity DESC, pair_id, source_partition)
    """
    decisions = con.sql(
        f"""SELECT pair_id, url_id, rank = 1 AS kept,
                   CASE WHEN rank > 1 THEN 'global_duplicate' END AS drop_reason,
                   CASE WHEN rank > 1 THEN best END AS duplicate_of,
                   source_partition
            FROM ({ranked})
            UNION ALL
            SELECT s.pair_id, s.url_id, false, o.reason, NULL, s.source_partition
            FROM scores s JOIN opted_out o USING (pair_id) WHERE s.kept
            ORDER BY pair_id, source_partition"""
    ).to_arrow_table()
    release = con.sql(
        f"""SELECT url AS URL, text AS TEXT, width AS WIDTH, height AS HEIGHT, similarity,
                   punsafe, pwatermark, language AS LANGUAGE, pair_id, url_id, sha256, crawl_id,
                   CASE WHEN language IS NULL THEN '{names.nolang}'
                        WHEN language = 'en' THEN '{names.en}'
                        ELSE '{names.multi}' END AS subset
            FROM ({ranked}) WHERE rank = 1 ORDER BY subset, similarity DESC, pair_id"""
    ).to_arrow_table()
    con.close()
    release = release.cast(RELEASE_SCHEMA)
    decisions = decisions.cast(DECISION_SCHEMA)
    subset_col = release.column("subset").to_pylist()
    subsets = {}
    for name in (names.en, names.multi, names.nolang):
        mask = pa.array([s == name for s in subset_col], pa.bool_())
        subsets[name] = release.filter(mask)
    dropped = Counter(r for r in decisions.column("drop_reason").to_pylist() if r)
    languages = Counter(lang or "nolang" for lang in release.column("LANGUAGE").to_pylist())
    return DatasetResult(
        release=release,
        decisions=decisions,
        subsets=subsets,
        rows_in=decisions.num_rows,
        rows_kept=release.num_rows,
        dropped=dropped,
        languages=dict(languages.most_common()),
    )
