"""Every figure of a crawl's dataset report, computed with DuckDB over the lake's tables.

:func:`load_crawl` reads the crawl's rows of each hop (through :class:`~pipeline.lake.store.Lake`,
so the step records the versions it read) into DuckDB; :func:`compute_figures` returns the
figures as one long table (:data:`~pipeline.lake.tables.DATASET_REPORT_SCHEMA`): the funnel and
drop reasons at every hop, top domains with their opt-out rates, languages, caption terms and
artist names per stage with the lift each filter applies, duplicates, and the AI-generated
share where hop 3 records it.

Stages, in order (:data:`STAGES`): ``links`` (every hop-1 link; its text is the raw alt),
``alt_text`` (hop 2 kept), ``clip`` (hop 3 kept), ``release`` (released after global dedup and
opt-outs), ``aesthetic`` (the aesthetic subset) and ``download`` (downloaded, when
``download_results`` has the crawl). A filter's lift on a term is the term's rate among the
captions after it over its rate before it (1: the filter neither favours nor disfavours it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from pipeline.datasheet.terms import (
    DEFAULT_TERM_GROUPS,
    exclusive_terms,
    synthetic_artist_names,
    term_pattern,
)
from pipeline.hops.crawl.manifest import crawl_of_partition
from pipeline.lake.store import Lake
from pipeline.lake.tables import DATASET_REPORT_SCHEMA, TableName

STAGES = ("links", "alt_text", "clip", "release", "aesthetic", "download")
"""The report's stages, in pipeline order (``download`` only when downloads exist)."""
TOP_DOMAINS = 10
AI_COLUMN = "ai_generated"

HOST = (
    "regexp_replace(regexp_replace(lower(regexp_extract({col}, "
    "'^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)', 1)), '^.*@', ''), ':[0-9]*$', '')"
)
"""SQL for a URL's host: lower case, without user info or port."""

_SLICE_TABLES = {
    "links": (TableName.WAT_IMAGE_LINKS, ["alt"]),
    "pairs": (
        TableName.ALT_TEXT_PAIRS,
        ["pair_id", "url", "text", "language", "kept", "drop_reason"],
    ),
    "clip": (
        TableName.CLIP_SCORES,
        ["pair_id", "url", "text", "language", "sha256", "kept", "drop_reason"],
    ),
}
_CRAWL_TABLES = {
    "decisions": (
        TableName.LAION_DATASET_DECISIONS,
        ["pair_id", "kept", "drop_reason", "source_partition"],
    ),
    "release": (TableName.LAION_DATASET, ["pair_id", "URL", "TEXT", "LANGUAGE", "sha256"]),
    "subset": (
        TableName.AESTHETIC_SUBSET,
        ["pair_id", "URL", "TEXT", "LANGUAGE", "kept", "drop_reason"],
    ),
    "downloads": (TableName.DOWNLOAD_RESULTS, ["pair_id", "URL", "TEXT", "status"]),
}


@dataclass
class CrawlTables:
    """One crawl's rows of every hop, as DuckDB views, and the table versions read."""

    crawl: str
    con: duckdb.DuckDBPyConnection
    versions: dict[str, int] = field(default_factory=dict)
    slices: list[str] = field(default_factory=list)
    has_downloads: bool = False
    has_ai_column: bool = False

    @property
    def release_version(self) -> int:
        return self.versions[TableName.LAION_DATASET]

    @property
    def stages(self) -> tuple[str, ...]:
        return STAGES if self.has_downloads else STAGES[:-1]


def load_crawl(lake: Lake, crawl: str) -> CrawlTables:
    """Read crawl ``crawl``'s rows of every hop into an in-memory DuckDB database (views
    ``links``, ``pairs``, ``clip`` with their slice in ``part``; ``decisions``, ``release``,
    ``subset`` and, if present, ``downloads``). A hop without the crawl is an error naming it;
    ``download_results`` is optional."""
    con = duckdb.connect()
    tables = CrawlTables(crawl, con)
    links_table = _SLICE_TABLES["links"][0]
    tables.slices = [k for k in lake.partitions(links_table) if crawl_of_partition(k) == crawl]
    if not tables.slices:
        raise ValueError(f"{links_table} has no slice of crawl {crawl!r}")
    for view, (table, columns) in _SLICE_TABLES.items():
        if table == TableName.CLIP_SCORES:
            tables.has_ai_column = AI_COLUMN in _column_names(lake, table)
            columns = [*columns, AI_COLUMN] if tables.has_ai_column else columns
        data = lake.read_with_partition(table, "part", tables.slices)
        if data is None:
            raise ValueError(f"{table} has no slice of crawl {crawl!r}: materialize it first")
        tables.versions[table] = lake.version(table)
        con.register(view, data.select([*columns, "part"]))
    for view, (table, columns) in _CRAWL_TABLES.items():
        data = (
            lake.read(table, [crawl], columns=columns) if crawl in lake.partitions(table) else None
        )
        if data is None:
            if table == TableName.DOWNLOAD_RESULTS:
                continue
            raise ValueError(f"{table} has no partition {crawl!r}: materialize it first")
        tables.versions[table] = lake.version(table)
        tables.has_downloads |= table == TableName.DOWNLOAD_RESULTS
        con.register(view, data)
    _stage_views(tables)
    return tables


def _column_names(lake: Lake, table: str) -> list[str]:
    found = lake.delta_table(table)
    return [] if found is None else [f.name for f in found.schema().fields]


def _stage_views(tables: CrawlTables) -> None:
    """``stage_text``: (stage, text) of every row at each stage; ``fates``: every hop-1 row's
    last hop, drop reason (null: it reached the end) and URL."""
    con = tables.con
    download = (
        "UNION ALL SELECT 'download', TEXT FROM downloads WHERE status = 'success'"
        if tables.has_downloads
        else ""
    )
    con.execute(f"""CREATE VIEW stage_text AS
        SELECT 'links' AS stage, alt AS text FROM links
        UNION ALL SELECT 'alt_text', text FROM pairs WHERE kept
        UNION ALL SELECT 'clip', text FROM clip WHERE kept
        UNION ALL SELECT 'release', TEXT FROM release
        UNION ALL SELECT 'aesthetic', TEXT FROM subset WHERE kept {download}""")
    last = (
        """UNION ALL SELECT 'download', URL,
               CASE WHEN status = 'success' THEN NULL ELSE status END FROM downloads"""
        if tables.has_downloads
        else "UNION ALL SELECT 'aesthetic', URL, NULL FROM subset WHERE kept"
    )
    con.execute(f"""CREATE VIEW fates AS
        SELECT 'alt_text' AS hop, url, drop_reason FROM pairs WHERE NOT kept
        UNION ALL SELECT 'clip', url, drop_reason FROM clip WHERE NOT kept
        UNION ALL SELECT 'release', c.url, d.drop_reason FROM decisions d
            JOIN clip c ON c.pair_id = d.pair_id AND c.part = d.source_partition
            WHERE NOT d.kept
        UNION ALL SELECT 'aesthetic', URL, drop_reason FROM subset WHERE NOT kept
        {last}""")


@dataclass(frozen=True)
class ReportOptions:
    """What the report follows: caption term groups, artist names, how many domains."""

    term_groups: Mapping[str, Sequence[str]] = field(
        default_factory=lambda: dict(DEFAULT_TERM_GROUPS)
    )
    artists: Sequence[str] = field(default_factory=synthetic_artist_names)
    top_domains: int = TOP_DOMAINS

    def __post_init__(self) -> None:
        groups = {g: tuple(terms) for g, terms in self.term_groups.items()}
        object.__setattr__(self, "term_groups", groups)
        object.__setattr__(self, "artists", tuple(self.artists))
        if self.top_domains < 1:
            raise ValueError(f"top_domains must be at least 1, not {self.top_domains}")


def compute_figures(tables: CrawlTables, options: ReportOptions) -> pa.Table:
    """Every figure of the report, one row each (:data:`DATASET_REPORT_SCHEMA`)."""
    rows: list[dict] = []
    rows += funnel(tables)
    rows += domains(tables, options.top_domains)
    rows += languages(tables)
    rows += terms(tables, "term", exclusive_terms(options.term_groups))
    rows += terms(tables, "artist", [("artist", a, []) for a in dict.fromkeys(options.artists)])
    rows += duplicates(tables)
    rows += ai_generated(tables)
    for row in rows:
        row.setdefault("lift", None)
        total = row["total"]
        row["share"] = row["count"] / total if total else None
        row["crawl"] = tables.crawl
        row["release_version"] = tables.release_version
    return pa.Table.from_pylist(rows, DATASET_REPORT_SCHEMA)


def _fig(section: str, name: str, stage: str, count: int, total: int, **kw) -> dict:
    return {
        "section": section,
        "name": name,
        "stage": stage,
        "count": int(count),
        "total": int(total),
        **kw,
    }


def funnel(tables: CrawlTables) -> list[dict]:
    """Per hop: rows in and kept (``funnel``), and rows dropped by reason (``dropped``)."""
    con = tables.con
    hops = {
        "alt_text": "SELECT kept, drop_reason FROM pairs",
        "clip": "SELECT kept, drop_reason FROM clip",
        "release": "SELECT kept, drop_reason FROM decisions",
        "aesthetic": "SELECT kept, drop_reason FROM subset",
    }
    if tables.has_downloads:
        hops["download"] = (
            "SELECT status = 'success' AS kept, "
            "CASE WHEN status = 'success' THEN NULL ELSE status END AS drop_reason FROM downloads"
        )
    (links,) = con.execute("SELECT count(*) FROM links").fetchone()
    out = [_fig("funnel", "links", "links", links, links)]
    for hop, query in hops.items():
        rows_in, kept = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE kept) FROM ({query})"
        ).fetchone()
        out.append(_fig("funnel", hop, hop, kept, rows_in))
        for reason, n in con.execute(
            f"SELECT drop_reason, count(*) FROM ({query}) WHERE NOT kept "
            "GROUP BY 1 ORDER BY 2 DESC, 1"
        ).fetchall():
            out.append(_fig("dropped", reason or "(none)", hop, n, rows_in))
    return out


def domains(tables: CrawlTables, top: int) -> list[dict]:
    """The ``top`` image domains by hop-2 rows: their links, released rows and the rows their
    owners withdrew (``opted_out:*`` at any hop) over their links (the opt-out rate)."""
    con = tables.con
    host = HOST.format(col="url")
    (with_host,) = con.execute(
        f"SELECT count(*) FROM pairs WHERE coalesce({host}, '') <> ''"
    ).fetchone()
    (released,) = con.execute("SELECT count(*) FROM release").fetchone()
    ranked = con.execute(
        f"""SELECT {host} AS domain, count(*) AS n FROM pairs
            WHERE coalesce({host}, '') <> '' GROUP BY 1 ORDER BY n DESC, domain LIMIT {top}"""
    ).fetchall()
    out = []
    for domain, n in ranked:
        (kept,) = con.execute(
            f"SELECT count(*) FROM release WHERE {HOST.format(col='URL')} = ?", [domain]
        ).fetchone()
        (opted,) = con.execute(
            f"SELECT count(*) FROM fates WHERE {host} = ? AND drop_reason LIKE 'opted_out:%'",
            [domain],
        ).fetchone()
        out.append(_fig("domain", domain, "links", n, with_host))
        out.append(_fig("domain", domain, "release", kept, released))
        out.append(_fig("domain", domain, "opted_out", opted, n))
    return out


def languages(tables: CrawlTables) -> list[dict]:
    """Rows per detected language (``unknown``: none detected) at each stage after hop 2."""
    queries = {
        "alt_text": "SELECT language AS lang FROM pairs WHERE kept",
        "clip": "SELECT language AS lang FROM clip WHERE kept",
        "release": "SELECT LANGUAGE AS lang FROM release",
        "aesthetic": "SELECT LANGUAGE AS lang FROM subset WHERE kept",
    }
    out = []
    for stage, query in queries.items():
        for lang, n, total in tables.con.execute(
            f"""SELECT coalesce(lang, 'unknown'), count(*), sum(count(*)) OVER ()
                FROM ({query}) GROUP BY 1 ORDER BY 2 DESC, 1"""
        ).fetchall():
            out.append(_fig("language", lang, stage, n, total))
    return out


def terms(
    tables: CrawlTables, section: str, entries: Sequence[tuple[str, str, Sequence[str]]]
) -> list[dict]:
    """Captions holding each term (and none of the longer terms that contain it) per stage,
    with the lift of the filter that led to the stage (null at ``links`` or when the term
    was absent before the filter)."""
    out = []
    stages = tables.stages
    totals = dict(
        tables.con.execute("SELECT stage, count(*) FROM stage_text GROUP BY 1").fetchall()
    )
    for group, term, longer in entries:
        cond = "regexp_matches(coalesce(text, ''), ?)"
        params = [term_pattern(term)]
        for other in longer:
            cond += " AND NOT regexp_matches(coalesce(text, ''), ?)"
            params.append(term_pattern(other))
        counts = dict(
            tables.con.execute(
                f"SELECT stage, count(*) FROM stage_text WHERE {cond} GROUP BY 1", params
            ).fetchall()
        )
        name = term if section == "artist" else f"{group}:{term}"
        previous = None
        for stage in stages:
            n, total = counts.get(stage, 0), totals.get(stage, 0)
            rate = n / total if total else None
            lift = rate / previous if rate is not None and previous else None
            out.append(_fig(section, name, stage, n, total, lift=lift))
            previous = rate
    return out


def duplicates(tables: CrawlTables) -> list[dict]:
    """Pairs dropped as duplicates within a slice (hop 2) and across the crawl (release), and
    released rows whose image (sha256) another released row also has."""
    con = tables.con
    (links,) = con.execute("SELECT count(*) FROM pairs").fetchone()
    (within,) = con.execute("SELECT count(*) FROM pairs WHERE drop_reason = 'duplicate'").fetchone()
    decided, across = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE drop_reason = 'global_duplicate') FROM decisions"
    ).fetchone()
    released, shared, distinct = con.execute(
        """SELECT count(*), count(*) FILTER (WHERE n > 1), count(DISTINCT sha256)
           FROM (SELECT sha256, count(*) OVER (PARTITION BY sha256) AS n FROM release)"""
    ).fetchone()
    return [
        _fig("duplicates", "duplicate_in_slice", "alt_text", within, links),
        _fig("duplicates", "duplicate_across_slices", "release", across, decided),
        _fig("duplicates", "released_rows_sharing_an_image", "release", shared, released),
        _fig("duplicates", "distinct_images_released", "release", distinct, released),
    ]


def ai_generated(tables: CrawlTables) -> list[dict]:
    """Rows hop 3 marked AI-generated among all it judged (kept or not), and among the
    released rows;
    nothing when ``clip_scores`` has no such column."""
    if not tables.has_ai_column:
        return []
    con = tables.con
    col = AI_COLUMN
    scored = con.execute(f"SELECT count(*) FILTER (WHERE {col}), count({col}) FROM clip").fetchone()
    released = con.execute(
        f"""SELECT count(*) FILTER (WHERE c.{col}), count(c.{col}) FROM release r
            JOIN (SELECT DISTINCT pair_id, {col} FROM clip) c USING (pair_id)"""
    ).fetchone()
    return [
        _fig("ai_generated", col, "clip", *scored),
        _fig("ai_generated", col, "release", *released),
    ]
