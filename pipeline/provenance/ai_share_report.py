"""The AI share of a crawl as Markdown, a plot (PNG) and one summary line per crawl."""

from __future__ import annotations

import io

import pyarrow as pa

from pipeline.provenance.ai_share import STAGES, TRUTH_SHARES


def _pct(count: int, total: int) -> str:
    return f"{100 * count / total:.1f} %" if total else "-"


def _rows(figures: pa.Table, section: str) -> list[dict]:
    return [r for r in figures.to_pylist() if r["section"] == section]


def to_markdown(figures: pa.Table) -> str:
    """Tables: the share by stage and signal (with and without the exclusion), the pairs
    dropped for their credentials, and recall against the truth."""
    lines = [
        "| stage | signal | AI rows | of rows | share | without the exclusion |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in _rows(figures, "share"):
        without = f"{r['without_exclusion']} of {r['without_total']}"
        lines.append(
            f"| {r['stage']} | {r['signal']} | {r['count']} | {r['total']} | "
            f"{_pct(r['count'], r['total'])} | {without} |"
        )
    for r in _rows(figures, "dropped"):
        lines.append(f"\n{r['count']} of {r['total']} hop-3 rows dropped: `{r['signal']}`.")
    recall = _rows(figures, "recall")
    if recall:
        lines += ["", "| truth | flagged | of URLs read | recall |", "|---|---:|---:|---:|"]
        for r in recall:
            lines.append(
                f"| {r['signal']} | {r['count']} | {r['total']} | {_pct(r['count'], r['total'])} |"
            )
        missed = _rows(figures, "undetected")
        if missed:
            lines += ["", "| stage | AI rows (truth) not flagged | of rows |", "|---|---:|---:|"]
            lines += [f"| {r['stage']} | {r['count']} | {r['total']} |" for r in missed]
        stripped = next((r for r in recall if r["signal"] == "stripped"), None)
        if stripped and stripped["total"]:
            lines.append(
                f"\n{stripped['total']} AI images stripped of their metadata: undetectable by "
                "metadata (nothing in their bytes says how they were made)."
            )
    return "\n".join(lines)


def plot_png(figures: pa.Table, title: str) -> bytes:
    """AI share per stage and signal (bars), and the share without the exclusion (outlines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _rows(figures, "share")
    stages = [s for s in STAGES if any(r["stage"] == s for r in rows)]
    signals = list(dict.fromkeys(r["signal"] for r in rows))
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / max(1, len(signals))
    for i, signal in enumerate(signals):
        got = {r["stage"]: r for r in rows if r["signal"] == signal}
        xs = [j + i * width for j in range(len(stages))]
        with_ = [_share(got.get(s), "count", "total") for s in stages]
        without = [_share(got.get(s), "without_exclusion", "without_total") for s in stages]
        bars = ax.bar(xs, with_, width, label=signal)
        ax.bar(xs, without, width, fill=False, edgecolor=bars.patches[0].get_facecolor(), ls="--")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(stages))], stages)
    ax.set_ylabel("AI share of the stage's rows")
    ax.set_title(f"{title} (dashed: without the exclusion)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def _share(row: dict | None, count: str, total: str) -> float:
    return row[count] / row[total] if row and row[total] else 0.0


def summary_line(figures: pa.Table) -> str:
    """One line for the demo's summary: the share at each stage (and without the exclusion),
    recall per truth share, the stripped images and the ``notAllowed`` drops."""
    rows = figures.to_pylist()
    if not rows:
        return "no figures"
    parts = []
    for r in rows:
        if r["section"] == "share" and r["signal"] == "any":
            text = f"{r['stage']} {r['count']}/{r['total']}"
            if r["without_exclusion"] != r["count"]:
                text += f" (without the exclusion {r['without_exclusion']}/{r['without_total']})"
            parts.append(text)
    line = "AI-generated " + ", ".join(parts)
    recall = {r["signal"]: r for r in rows if r["section"] == "recall"}
    if recall.get("any", {}).get("total"):
        found = [f"{s} {recall[s]['count']}/{recall[s]['total']}" for s in TRUTH_SHARES
                 if s != "stripped" and recall[s]["total"]]  # fmt: skip
        line += "; recall " + ", ".join(found)
        stripped = recall["stripped"]
        line += f"; {stripped['total']} stripped (undetectable by metadata)"
    if recall.get("not_allowed", {}).get("total"):
        na = recall["not_allowed"]
        line += f"; notAllowed read {na['count']}/{na['total']}"
    for r in rows:
        if r["section"] == "dropped" and r["count"]:
            line += f"; {r['count']} dropped {r['signal']}"
    missed = [f"{r['stage']} {r['count']}" for r in rows
              if r["section"] == "undetected" and r["count"]]  # fmt: skip
    if missed:
        line += "; undetected AI rows: " + ", ".join(missed)
    return line
