"""The dataset report as a document: Markdown (for Dagster metadata) and a self-contained
HTML file (plots inline as base64 PNG), both from the figures table and one list of blocks,
in the sections of "Datasheets for Datasets" (Gebru et al., 2021)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline.datasheet.figures import STAGES

HOP_NAMES = {
    "links": "hop 1: image links in the WAT files",
    "alt_text": "hop 2: URL rules, opt-outs, alt-text cleaning, dedup in the slice",
    "clip": "hop 3: fetch, decode, CLIP similarity threshold, takedown lists",
    "release": "release: dedup on (URL, TEXT) over the crawl, opt-outs",
    "aesthetic": "aesthetic subset: score band, punsafe, pwatermark",
    "download": "download: img2dataset",
}


@dataclass(frozen=True)
class Block:
    """A heading (``h``), paragraph (``p``), table (``table``) or PNG plot (``img``)."""

    kind: str
    text: str = ""
    header: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    png: bytes = b""


def _num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def build_blocks(figures: pa.Table, versions: dict[str, int], plots: bool = True) -> list[Block]:
    """The report's blocks from its figures (one crawl, one release version)."""
    rows = figures.to_pylist()
    by = {}
    for r in rows:
        by.setdefault(r["section"], []).append(r)
    crawl = rows[0]["crawl"] if rows else "?"
    version = rows[0]["release_version"] if rows else None
    funnel = by.get("funnel", [])
    out = [
        Block("h", f"Datasheet: crawl {crawl}, release version {version}"),
        Block("h2", "Motivation"),
        Block(
            "p",
            "A LAION-style image-text index rebuilt from Common Crawl WAT files by "
            "crawl2diffusion, so that what is included and excluded, and why, can be "
            "answered on every rebuild. This datasheet is computed from the lake's tables, "
            "at these versions: "
            + ", ".join(f"{t} v{v}" for t, v in sorted(versions.items()))
            + ".",
        ),
        Block("h2", "Composition: the funnel"),
        Block(
            "table",
            header=("stage", "what it decides", "rows in", "kept", "kept share"),
            rows=tuple(
                (r["stage"], HOP_NAMES[r["stage"]], r["total"], r["count"], _pct(r["share"]))
                for r in funnel
            ),
        ),
    ]
    if plots and funnel:
        out.append(
            Block(
                "img",
                "rows kept per stage",
                png=_bars(
                    [r["stage"] for r in funnel],
                    [r["count"] for r in funnel],
                    "rows kept per stage",
                ),
            )
        )
    out += [
        Block("h2", "Collection process and cleaning: drop reasons at every hop"),
        Block(
            "table",
            header=("hop", "reason", "rows", "share of the hop's rows"),
            rows=tuple(
                (r["stage"], r["name"], r["count"], _pct(r["share"])) for r in by.get("dropped", [])
            ),
        ),
        Block("h2", "Composition: top image domains"),
        Block(
            "table",
            header=(
                "domain",
                "links",
                "share of links",
                "released",
                "share of release",
                "opted out",
                "opt-out rate",
            ),
            rows=_domain_rows(by.get("domain", [])),
        ),
        Block("h2", "Composition: languages"),
        Block("table", header=("language", *STAGES[1:5]), rows=_pivot(by.get("language", []))),
    ]
    if plots and by.get("language"):
        out.append(Block("img", "languages", png=_language_plot(by["language"])))
    out += _term_blocks("Caption terms before and after each filter", by.get("term", []))
    if plots and by.get("term"):
        out.append(Block("img", "term rates", png=_term_plot(by["term"])))
    artists = by.get("artist", [])
    out += (
        _term_blocks("Artist names", artists)
        if artists
        else [Block("h2", "Artist names"), Block("p", "No artist names were given.")]
    )
    out += [
        Block("h2", "Duplicates"),
        Block(
            "table",
            header=("what", "stage", "rows", "of", "share"),
            rows=tuple(
                (r["name"], r["stage"], r["count"], r["total"], _pct(r["share"]))
                for r in by.get("duplicates", [])
            ),
        ),
        Block("h2", "AI-generated images"),
    ]
    ai = by.get("ai_generated", [])
    out.append(
        Block(
            "table",
            header=("stage", "marked AI-generated", "judged", "share"),
            rows=tuple((r["stage"], r["count"], r["total"], _pct(r["share"])) for r in ai),
        )
        if ai
        else Block("p", "Not recorded: clip_scores has no ai_generated column in this lake.")
    )
    out += [
        Block("h2", "Uses, distribution and maintenance"),
        Block(
            "p",
            "For research on dataset construction and its biases. The released index lists "
            "URLs and texts, not images; owners' opt-outs and takedown lists are applied at "
            "hops 2 and 3 and at the release, and a rebuild publishes a new release version "
            "(this report names the one it describes).",
        ),
    ]
    return out


def _domain_rows(rows: list[dict]) -> tuple[tuple[Any, ...], ...]:
    by_domain: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_domain.setdefault(r["name"], {})[r["stage"]] = r
    return tuple(
        (
            d,
            s["links"]["count"],
            _pct(s["links"]["share"]),
            s["release"]["count"],
            _pct(s["release"]["share"]),
            s["opted_out"]["count"],
            _pct(s["opted_out"]["share"]),
        )
        for d, s in by_domain.items()
    )


def _pivot(rows: list[dict]) -> tuple[tuple[Any, ...], ...]:
    """Language x stage: count (share)."""
    stages = STAGES[1:5]
    table: dict[str, dict[str, dict]] = {}
    for r in rows:
        table.setdefault(r["name"], {})[r["stage"]] = r
    return tuple(
        (
            lang,
            *(f"{_num(c[s]['count'])} ({_pct(c[s]['share'])})" if s in c else "0" for s in stages),
        )
        for lang, c in table.items()
    )


def _term_blocks(title: str, rows: list[dict]) -> list[Block]:
    """Per term: captions holding it at each stage (rate), and each filter's lift."""
    stages = [s for s in STAGES if any(r["stage"] == s for r in rows)]
    by_term: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_term.setdefault(r["name"], {})[r["stage"]] = r
    body = []
    for term, per in by_term.items():
        cells = [f"{per[s]['count']} ({_pct(per[s]['share'])})" for s in stages]
        lifts = [_num(per[s]["lift"]) for s in stages[1:]]
        body.append((term, *cells, *lifts))
    label = "artist" if title.startswith("Artist") else "term"
    header = (label, *stages, *(f"lift {s}" for s in stages[1:]))
    return [
        Block("h2", title),
        Block(
            "p",
            "Captions holding the term at each stage (its rate among the stage's "
            "captions); lift: the rate after a filter over the rate before it.",
        ),
        Block("table", header=header, rows=tuple(body)),
    ]


def to_markdown(blocks: Sequence[Block]) -> str:
    """Markdown (plots are in the HTML file only)."""
    lines: list[str] = []
    for b in blocks:
        if b.kind == "h":
            lines += [f"# {b.text}", ""]
        elif b.kind == "h2":
            lines += [f"## {b.text}", ""]
        elif b.kind == "p":
            lines += [b.text, ""]
        elif b.kind == "table":
            lines.append("| " + " | ".join(b.header) + " |")
            lines.append("|" + "---|" * len(b.header))
            lines += ["| " + " | ".join(_num(c) for c in row) + " |" for row in b.rows]
            lines.append("")
    return "\n".join(lines)


def to_html(blocks: Sequence[Block]) -> str:
    """One self-contained HTML page: no external file, script or style sheet."""
    title = next((b.text for b in blocks if b.kind == "h"), "Datasheet")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;"
        "max-width:70em;margin:auto}table{border-collapse:collapse}td,th{border:1px solid"
        " #ccc;padding:2px 6px;text-align:right}td:first-child{text-align:left}</style>",
        "</head><body>",
    ]
    for b in blocks:
        if b.kind in ("h", "h2"):
            tag = "h1" if b.kind == "h" else "h2"
            parts.append(f"<{tag}>{html.escape(b.text)}</{tag}>")
        elif b.kind == "p":
            parts.append(f"<p>{html.escape(b.text)}</p>")
        elif b.kind == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(_num(c))}</td>" for c in row) + "</tr>"
                for row in b.rows
            )
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
        elif b.kind == "img":
            data = base64.b64encode(b.png).decode()
            parts.append(
                f"<p><img alt='{html.escape(b.text)}' src='data:image/png;base64,{data}'></p>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def _figure(width: float = 7, height: float = 3):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    return plt, fig, ax


def _png(plt, fig) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def _bars(labels: list[str], values: list[int], title: str) -> bytes:
    plt, fig, ax = _figure()
    ax.barh(labels[::-1], values[::-1], color="#3465a4")
    ax.set_title(title)
    return _png(plt, fig)


def _language_plot(rows: list[dict]) -> bytes:
    plt, fig, ax = _figure()
    stages = [s for s in STAGES if any(r["stage"] == s for r in rows)]
    langs = sorted({r["name"] for r in rows})
    width = 0.8 / max(1, len(stages))
    for i, stage in enumerate(stages):
        shares = {r["name"]: r["share"] or 0.0 for r in rows if r["stage"] == stage}
        ax.bar(
            [j + i * width for j in range(len(langs))],
            [shares.get(x, 0.0) for x in langs],
            width,
            label=stage,
        )
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(langs))], langs)
    ax.set_ylabel("share of the stage's rows")
    ax.legend(fontsize=7)
    return _png(plt, fig)


def _term_plot(rows: list[dict]) -> bytes:
    plt, fig, ax = _figure(7, 3.5)
    stages = [s for s in STAGES if any(r["stage"] == s for r in rows)]
    names = list(dict.fromkeys(r["name"] for r in rows))
    for name in names:
        rates = {r["stage"]: (r["share"] or 0.0) for r in rows if r["name"] == name}
        if any(rates.values()):
            ax.plot(stages, [rates.get(s, 0.0) for s in stages], marker="o", label=name)
    ax.set_ylabel("share of captions")
    ax.set_title("caption terms through the filters")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, ncol=2)
    return _png(plt, fig)
