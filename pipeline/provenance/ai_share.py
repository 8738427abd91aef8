"""The AI-generated share of one crawl at every hop, by signal, and recall against a truth.

:func:`compute_ai_share` reads the crawl's rows of ``clip_scores``, ``laion_dataset``,
``aesthetic_subset`` and (when downloaded) ``download_results`` through a
:class:`~pipeline.lake.store.Lake` (so the step records the versions it read) into DuckDB and
returns the figures as one long table (:data:`~pipeline.lake.tables.AI_SHARE_SCHEMA`):

- ``share``: at each stage (:data:`STAGES`), the rows whose image hop 3 read as AI-generated,
  by the signal that said so (``any``: ``ai_generated``; a row with two signals counts under
  both), out of the stage's rows; with ``without_exclusion`` / ``without_total``, the same
  counts had the aesthetic subset not left AI images out (the pairs it dropped with reason
  ``ai_generated``, which the rules would otherwise have kept; for the training shards an
  upper bound: every one of them downloaded);
- ``dropped``: pairs dropped at hop 3 because their credentials say ``notAllowed``;
- ``recall`` (with a truth table, e.g. the synthetic web's ``truth.parquet``): per truth
  share, of the image URLs hop 3 read, how many it flagged (``not_allowed``: how many it read
  as ``notAllowed``; ``human``: human images flagged, false positives). A ``stripped`` image
  carries no metadata, so nothing flags it: its count is the AI images that are undetectable
  by metadata;
- ``undetected`` (with a truth table): at each stage, the rows the truth says are AI that hop
  3 did not flag, so no exclusion can remove them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from pipeline.hops.crawl.manifest import crawl_of_partition
from pipeline.lake.store import Lake
from pipeline.lake.tables import AI_SHARE_SCHEMA, TableName

HOP3, RELEASE, SUBSET, SHARDS = (TableName.CLIP_SCORES, "release", TableName.AESTHETIC_SUBSET,
                                  "training_shards")  # fmt: skip
STAGES = (HOP3, RELEASE, SUBSET, SHARDS)
"""Where the share is measured: every row hop 3 judged, the release, the aesthetic subset's
kept rows, the downloaded image shards (what training reads)."""
SIGNALS = ("any", "c2pa", "xmp", "a1111", "comfyui", "exif", "crawl2diffusion", "generator_text")
"""How a row's AI signal is named: ``any`` is ``ai_generated``; ``crawl2diffusion`` is this
project's own label chunk; ``generator_text`` a generator named in another PNG text chunk."""
TRUTH_SHARES = ("c2pa", "xmp", "a1111", "comfyui", "exif", "stripped")
"""The synthetic truth's AI shares (``feedback.SHARES``)."""
EXCLUSION_REASON = "ai_generated"
NO_TRAINING_REASON = "credentials_no_training"
_CLIP_COLUMNS = ["pair_id", "url", "kept", "drop_reason", "ai_generated", "ai_signals",
                 "training_mining", "c2pa_state"]  # fmt: skip
_GENERATOR_TEXT = {"automatic1111": "a1111", "comfyui": "comfyui",
                   "crawl2diffusion": "crawl2diffusion"}  # fmt: skip


def signal_names(ai_signals: str | None) -> list[str]:
    """The signals (:data:`SIGNALS`) among an ``ai_signals`` JSON list that declare a trained
    model and count, each once, in :data:`SIGNALS` order."""
    try:
        entries = json.loads(ai_signals) if ai_signals else []
    except ValueError:
        return []
    found = set()
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("declares") != "ai":
            continue
        if entry.get("counted") is False:
            continue
        source = str(entry.get("source", ""))
        if source.startswith("c2pa"):
            found.add("c2pa")
        elif source in ("xmp", "exif"):
            found.add(source)
        elif source == "png_text":
            found.add(_GENERATOR_TEXT.get(str(entry.get("value")), "generator_text"))
    return [s for s in SIGNALS if s in found]


@dataclass
class AiShareTables:
    """One crawl's rows as DuckDB views, and the table versions read."""

    crawl: str
    con: duckdb.DuckDBPyConnection
    versions: dict[str, int] = field(default_factory=dict)
    has_downloads: bool = False
    has_truth: bool = False


def load_ai_share(lake: Lake, crawl: str, truth: pa.Table | None = None) -> AiShareTables:
    """Read ``crawl``'s rows into DuckDB: views ``clip`` (with ``signals``, a list),
    ``release``, ``subset``, ``downloads`` (empty when not downloaded) and ``truth``."""
    con = duckdb.connect()
    out = AiShareTables(crawl, con)
    slices = [k for k in lake.partitions(TableName.CLIP_SCORES) if crawl_of_partition(k) == crawl]
    clip = lake.read(TableName.CLIP_SCORES, slices, columns=_CLIP_COLUMNS) if slices else None
    if clip is None:
        raise ValueError(f"{TableName.CLIP_SCORES} has no slice of crawl {crawl!r}")
    signals = [signal_names(s) for s in clip.column("ai_signals").to_pylist()]
    clip = clip.append_column("signals", pa.array(signals, pa.list_(pa.string())))
    con.register("clip", clip)
    out.versions[TableName.CLIP_SCORES] = lake.version(TableName.CLIP_SCORES)
    wanted = {
        "release": (TableName.LAION_DATASET, ["pair_id"]),
        "subset": (TableName.AESTHETIC_SUBSET, ["pair_id", "kept", "drop_reason"]),
        "downloads": (TableName.DOWNLOAD_RESULTS, ["pair_id", "status"]),
    }
    for view, (table, columns) in wanted.items():
        found = lake.read(table, [crawl], columns) if crawl in lake.partitions(table) else None
        if found is None and table != TableName.DOWNLOAD_RESULTS:
            raise ValueError(f"{table} has no partition {crawl!r}: materialize it first")
        if found is None:
            found = pa.table({"pair_id": pa.array([], pa.string()),
                              "status": pa.array([], pa.string())})  # fmt: skip
        else:
            out.versions[table] = lake.version(table)
        out.has_downloads |= view == "downloads" and found.num_rows > 0
        con.register(view, found)
    if truth is not None:
        con.register("truth", truth)
        out.has_truth = True
    return out


def _fig(section: str, stage: str, signal: str, count: int, total: int, **kw) -> dict:
    return {"section": section, "stage": stage, "signal": signal, "count": int(count),
            "total": int(total), **kw}  # fmt: skip


_STAGE_ROWS = {
    HOP3: "SELECT pair_id, ai_generated, signals, FALSE AS excluded FROM clip",
    RELEASE: """SELECT r.pair_id, c.ai_generated, c.signals, FALSE AS excluded FROM release r
        LEFT JOIN (SELECT pair_id, any_value(ai_generated) AS ai_generated,
                          any_value(signals) AS signals FROM clip GROUP BY 1) c USING (pair_id)""",
    SUBSET: """SELECT s.pair_id, c.ai_generated, c.signals,
            NOT s.kept AS excluded FROM subset s
        LEFT JOIN (SELECT pair_id, any_value(ai_generated) AS ai_generated,
                          any_value(signals) AS signals FROM clip GROUP BY 1) c USING (pair_id)
        WHERE s.kept OR s.drop_reason = '{reason}'""",
    SHARDS: """SELECT d.pair_id, c.ai_generated, c.signals, FALSE AS excluded
        FROM downloads d
        LEFT JOIN (SELECT pair_id, any_value(ai_generated) AS ai_generated,
                          any_value(signals) AS signals FROM clip GROUP BY 1) c USING (pair_id)
        WHERE d.status = 'success'""",
}


def shares(tables: AiShareTables) -> list[dict]:
    """Per stage and signal: AI rows / the stage's rows, and the counts without the
    aesthetic subset's exclusion (its excluded pairs added back, at the subset and, as an
    upper bound, at the training shards)."""
    con = tables.con
    excluded = con.execute(
        f"""SELECT count(*) FROM subset WHERE drop_reason = '{EXCLUSION_REASON}'"""
    ).fetchone()[0]
    by_signal = dict(
        con.execute(
            f"""SELECT sig, count(*) FROM (SELECT unnest(c.signals) AS sig FROM subset s
                JOIN (SELECT pair_id, any_value(signals) AS signals FROM clip GROUP BY 1) c
                USING (pair_id) WHERE s.drop_reason = '{EXCLUSION_REASON}') GROUP BY 1"""
        ).fetchall()
    )
    by_signal["any"] = excluded
    out = []
    for stage in STAGES if tables.has_downloads else STAGES[:-1]:
        query = _STAGE_ROWS[stage].format(reason=EXCLUSION_REASON)
        total, any_ai = con.execute(
            f"""SELECT count(*) FILTER (WHERE NOT excluded),
                       count(*) FILTER (WHERE ai_generated AND NOT excluded) FROM ({query})"""
        ).fetchone()
        counts = dict(
            con.execute(
                f"""SELECT sig, count(*) FROM (SELECT unnest(signals) AS sig FROM ({query})
                    WHERE NOT excluded) GROUP BY 1"""
            ).fetchall()
        )
        counts["any"] = any_ai
        added = stage in (SUBSET, SHARDS)
        for signal in SIGNALS:
            n = counts.get(signal, 0)
            back = by_signal.get(signal, 0) if added else 0
            extra = {
                "without_exclusion": n + back,
                "without_total": total + (excluded if added else 0),
            }
            if signal == "any" or n or back:
                out.append(_fig("share", stage, signal, n, total, **extra))
    return out


def dropped(tables: AiShareTables) -> list[dict]:
    """Hop-3 rows dropped because their credentials say AI training ``notAllowed``."""
    n, total = tables.con.execute(
        f"SELECT count(*) FILTER (WHERE drop_reason = '{NO_TRAINING_REASON}'), count(*) FROM clip"
    ).fetchone()
    return [_fig("dropped", HOP3, NO_TRAINING_REASON, n, total)]


def recall(tables: AiShareTables) -> list[dict]:
    """Per truth share: distinct image URLs hop 3 read (``c2pa_state`` set) and how many it
    flagged ``ai_generated``; ``any`` over every AI share, ``not_allowed`` for credentials
    read as ``notAllowed``, ``human`` for human images flagged (false positives)."""
    if not tables.has_truth:
        return []
    con = tables.con
    con.execute("""CREATE OR REPLACE TEMP VIEW judged AS
        SELECT t.url, t.ai_generated AS truly_ai, t.ai_signal, t.metadata_stripped,
               t.training_mining AS truly_not_allowed,
               bool_or(coalesce(c.ai_generated, FALSE)) AS flagged,
               bool_or(coalesce(c.training_mining = 'notAllowed', FALSE)) AS read_not_allowed
        FROM clip c JOIN truth t ON t.url = c.url
        WHERE c.c2pa_state IS NOT NULL
        GROUP BY 1, 2, 3, 4, 5""")
    labels = {
        **{s: f"truly_ai AND ai_signal = '{s}'" for s in TRUTH_SHARES if s != "stripped"},
        "stripped": "truly_ai AND metadata_stripped",
        "any": "truly_ai",
    }
    out = []
    for signal, cond in labels.items():
        hit, total = con.execute(
            f"SELECT count(*) FILTER (WHERE flagged), count(*) FROM judged WHERE {cond}"
        ).fetchone()
        out.append(_fig("recall", HOP3, signal, hit, total))
    hit, total = con.execute(
        """SELECT count(*) FILTER (WHERE read_not_allowed), count(*) FROM judged
           WHERE truly_not_allowed = 'notAllowed'"""
    ).fetchone()
    out.append(_fig("recall", HOP3, "not_allowed", hit, total))
    hit, total = con.execute(
        "SELECT count(*) FILTER (WHERE flagged), count(*) FROM judged WHERE NOT truly_ai"
    ).fetchone()
    out.append(_fig("recall", HOP3, "human", hit, total))
    return out


def undetected(tables: AiShareTables) -> list[dict]:
    """Per stage: rows whose image the truth says is AI but hop 3 did not flag (the stripped
    ones first of all), out of the stage's rows: what slips past the exclusion."""
    if not tables.has_truth:
        return []
    out = []
    urls = "(SELECT pair_id, any_value(url) AS url FROM clip GROUP BY 1)"
    for stage in STAGES if tables.has_downloads else STAGES[:-1]:
        query = _STAGE_ROWS[stage].format(reason=EXCLUSION_REASON)
        n, total = tables.con.execute(
            f"""SELECT count(*) FILTER (WHERE NOT coalesce(q.ai_generated, FALSE)
                       AND u.url IN (SELECT url FROM truth WHERE ai_generated)), count(*)
                FROM ({query}) q JOIN {urls} u USING (pair_id) WHERE NOT q.excluded"""
        ).fetchone()
        out.append(_fig("undetected", stage, "truth_ai", n, total))
    return out


def compute_ai_share(tables: AiShareTables) -> pa.Table:
    """Every figure (:data:`~pipeline.lake.tables.AI_SHARE_SCHEMA`), one row each."""
    rows = shares(tables) + dropped(tables) + recall(tables) + undetected(tables)
    for row in rows:
        row["crawl"] = tables.crawl
        row["share"] = row["count"] / row["total"] if row["total"] else None
        row.setdefault("without_exclusion", None)
        row.setdefault("without_total", None)
    return pa.Table.from_pylist(rows, AI_SHARE_SCHEMA)
