"""A model card per checkpoint, ``<checkpoint dir>/README.md`` in Hugging Face's format.

YAML front matter (``library_name``, ``pipeline_tag``, ``datasets``, ``co2_eq_emissions``...)
then Markdown: the data the checkpoint trained on and the table versions that pin it, pair
counts, the owners' opt-outs and takedown lists in force, AI-generated images left out,
audits present, energy and the method behind it, and known limits. Every fact is read from the
lake (``training.json``, ``training_manifest``, ``opt_outs``, ``hash_lists``,
``clip_scores``, ``replication_audit``, ``style_imitation``, ``opt_out_report``,
``opt_out_not_reached``), so the
cards can be rewritten whenever an audit lands (:func:`write_model_cards`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

from pipeline.lake.store import Lake
from pipeline.lake.tables import TableName

CARD = "README.md"
AI_COLUMN = "ai_generated"
KNOWN_LIMITS = (
    "Trained on a small index built by crawl2diffusion: its captions carry the web's "
    "stereotypes (see the dataset report's term lifts) and the CLIP and aesthetic filters "
    "shift which captions survive.",
    "Weights cannot forget: a pair withdrawn after training stays in this checkpoint "
    "(opt_out_report names them); retrain on a rebuilt release to honour it.",
    "The replication audit compares samples with training images under one copy "
    "descriptor; a sample it does not flag may still copy a training image.",
    "The style-imitation audit compares colour and texture statistics of samples with each "
    "artist's references; what those statistics miss (composition, subject matter) goes "
    "unmeasured, and an artist no caption names is referred to by drawings, not training "
    "images.",
    "Energy is an estimate from CPU seconds, not a power meter; a GPU's draw is not counted.",
)


@dataclass
class CardFacts:
    """What one checkpoint's card says, gathered from the lake."""

    fingerprint: str
    step: int
    sha256: str
    text_encoder: str
    config: dict[str, Any]
    energy: dict[str, Any] | None
    pairs: int = 0
    draws: int = 0
    crawls: list[str] = field(default_factory=list)
    pinned: dict[str, list[int]] = field(default_factory=dict)
    opt_outs: dict[str, int] = field(default_factory=dict)
    hash_lists: dict[str, int] = field(default_factory=dict)
    ai_recorded: bool = False
    ai_trained: int = 0
    audits: dict[str, dict[str, int]] = field(default_factory=dict)
    style: list[dict[str, Any]] = field(default_factory=list)
    """The style-imitation audit's rows for this checkpoint (one per artist)."""
    withdrawn_after: int = 0
    not_reached: list[dict[str, Any]] | None = None
    """Copies of withdrawn images on other URLs (``opt_out_not_reached``) it trained on;
    None: that table was never built."""


def _run_path(lake: Lake, fingerprint: str) -> str:
    return lake.path(TableName.DIFFUSION_MODEL, f"run={fingerprint}")


def gather_facts(lake: Lake, fingerprint: str) -> list[CardFacts]:
    """One :class:`CardFacts` per checkpoint of run ``fingerprint``, in step order."""
    run = _run_path(lake, fingerprint)
    with lake.fs.open(f"{run}/training.json", "rb") as fh:
        info = json.loads(fh.read())
    manifest = lake.read(TableName.TRAINING_MANIFEST, [fingerprint])
    if manifest is None:
        raise FileNotFoundError(f"run {fingerprint} has no training manifest")
    con = duckdb.connect()
    con.register("manifest", manifest)
    opt_outs = _counts(lake, TableName.OPT_OUTS, "kind")
    hash_lists = _counts(lake, TableName.HASH_LISTS, "name")
    ai_recorded = AI_COLUMN in _columns(lake, TableName.CLIP_SCORES)
    out = []
    for ck in info.get("checkpoints", []):
        facts = CardFacts(
            fingerprint,
            ck["step"],
            ck["sha256"],
            info.get("text_encoder", ""),
            info.get("config", {}),
            ck.get("energy"),
            opt_outs=opt_outs,
            hash_lists=hash_lists,
            ai_recorded=ai_recorded,
        )
        facts.pairs, facts.draws = con.execute(
            "SELECT count(DISTINCT pair_id), coalesce(sum(times_seen), 0) FROM manifest "
            "WHERE checkpoint_sha256 = ?",
            [facts.sha256],
        ).fetchone()
        pinned = con.execute(
            "SELECT DISTINCT crawl, download_results_version FROM manifest "
            "WHERE checkpoint_sha256 = ? ORDER BY 1, 2",
            [facts.sha256],
        ).fetchall()
        facts.crawls = sorted({c for c, _ in pinned if c})
        versions = sorted({v for _, v in pinned if v is not None})
        facts.pinned = {TableName.DOWNLOAD_RESULTS: versions}
        if ai_recorded:
            facts.ai_trained = _ai_trained(lake, con, facts.sha256)
        facts.audits = _audits(lake, facts.sha256)
        facts.style = _style(lake, facts.sha256)
        facts.withdrawn_after = _withdrawn(lake, facts.sha256)
        facts.not_reached = _not_reached(lake, con, facts.sha256)
        out.append(facts)
    return out


def _columns(lake: Lake, table: str) -> list[str]:
    found = lake.delta_table(table)
    return [] if found is None else [f.name for f in found.schema().fields]


def _counts(lake: Lake, table: str, column: str) -> dict[str, int]:
    data = lake.read(table, columns=[column])
    if data is None:
        return {}
    counts: dict[str, int] = {}
    for value in data.column(column).to_pylist():
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items()))


def _ai_trained(lake: Lake, con: duckdb.DuckDBPyConnection, sha256: str) -> int:
    """Training pairs of the checkpoint that hop 3 marked AI-generated."""
    ids = [
        r
        for (r,) in con.execute(
            "SELECT DISTINCT pair_id FROM manifest WHERE checkpoint_sha256 = ?", [sha256]
        ).fetchall()
    ]
    found = lake.lookup(TableName.CLIP_SCORES, "pair_id", ids, columns=["pair_id", AI_COLUMN])
    if found is None:
        return 0
    marked = {
        p
        for p, ai in zip(
            found.column("pair_id").to_pylist(), found.column(AI_COLUMN).to_pylist(), strict=True
        )
        if ai
    }
    return len(marked)


def _audits(lake: Lake, sha256: str) -> dict[str, dict[str, int]]:
    """Replication audits of the checkpoint: per descriptor, samples audited and flagged."""
    key = sha256[:16]
    if key not in lake.partitions(TableName.REPLICATION_AUDIT):
        return {}
    data = lake.read(
        TableName.REPLICATION_AUDIT, [key], columns=["descriptor", "flagged", "checkpoint_sha256"]
    )
    out: dict[str, dict[str, int]] = {}
    for row in data.to_pylist():
        if row["checkpoint_sha256"] != sha256:
            continue
        entry = out.setdefault(f"replication ({row['descriptor']})", {"audited": 0, "flagged": 0})
        entry["audited"] += 1
        entry["flagged"] += int(bool(row["flagged"]))
    return out


def _style(lake: Lake, sha256: str) -> list[dict[str, Any]]:
    """The style-imitation audit of the checkpoint: one row per artist (none when absent)."""
    key = sha256[:16]
    if key not in lake.partitions(TableName.STYLE_IMITATION):
        return []
    data = lake.read(TableName.STYLE_IMITATION, [key])
    return [r for r in data.to_pylist() if r["checkpoint_sha256"] == sha256]


def _style_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The audit section's lines for the style-imitation audit."""
    if not rows:
        return []
    scored = [r for r in rows if r["imitation"] is not None]
    imitated = [r["artist"] for r in scored if r["imitated"]]
    named = f" ({', '.join(imitated)})" if imitated else ""
    lines = [
        f"- Style imitation (`{rows[0]['descriptor']}` descriptor): {len(imitated)} of "
        f"{len(scored)} artists imitated by name{named}; imitation is the margin of samples "
        'prompted "<subject> by <artist>" over the nearest other artist\'s style, minus that '
        "margin under a shuffled name:"
    ]
    for r in scored:
        lines.append(
            f"  - {r['artist']}: imitation {r['imitation']:+.3f} (margin {r['margin']:+.3f}, "
            f"shuffled name {r['shuffled_margin']:+.3f}; {r['reference_count']} "
            f"{r['reference_source']} references; {r['training_images']} training captions "
            "name them)"
        )
    unscored = [r["artist"] for r in rows if r["imitation"] is None]
    if unscored:
        lines.append(f"  - not scored (too few references): {', '.join(unscored)}")
    return lines


def _withdrawn(lake: Lake, sha256: str) -> int:
    """Pairs this checkpoint trained on that their owners withdrew since (opt_out_report)."""
    data = lake.read(TableName.OPT_OUT_REPORT, columns=["checkpoint_sha256", "pair_id"])
    if data is None:
        return 0
    return len(
        {
            p
            for c, p in zip(
                data.column("checkpoint_sha256").to_pylist(),
                data.column("pair_id").to_pylist(),
                strict=True,
            )
            if c == sha256
        }
    )


def _not_reached(
    lake: Lake, con: duckdb.DuckDBPyConnection, sha256: str
) -> list[dict[str, Any]] | None:
    """The copies of withdrawn images on URLs the opt-out list does not name (the last
    ``opt_out_not_reached``) among the checkpoint's training images, by url_id; None when
    the table was never built."""
    found = lake.read(
        TableName.OPT_OUT_NOT_REACHED, columns=["url_id", "url", "match", "original_url"]
    )
    if found is None:
        return None
    if not found.num_rows:
        return []
    con.register("not_reached", found)
    rows = con.execute(
        "SELECT DISTINCT n.url, n.match, n.original_url FROM not_reached n JOIN manifest m "
        "ON m.url_id = n.url_id WHERE m.checkpoint_sha256 = ? ORDER BY n.url",
        [sha256],
    ).fetchall()
    return [{"url": u, "match": k, "original_url": o} for u, k, o in rows]


def _not_reached_lines(rows: list[dict[str, Any]] | None, limit: int = 10) -> list[str]:
    """The opt-out section's lines on copies the opt-outs did not reach."""
    if rows is None:
        return [
            "- Copies of withdrawn images on other URLs: not checked (materialize "
            f"`{TableName.OPT_OUT_NOT_REACHED}`)"
        ]
    kinds: dict[str, int] = {}
    for r in rows:
        kinds[r["match"]] = kinds.get(r["match"], 0) + 1
    counts = ", ".join(f"{n} by {k}" for k, n in sorted(kinds.items()))
    lines = [
        f"- Copies of withdrawn images on other URLs that the opt-outs did not reach, trained "
        f"on: {len(rows)}" + (f" ({counts}; `{TableName.OPT_OUT_NOT_REACHED}`)" if rows else "")
    ]
    lines += [f"  - {r['url']} ({r['match']} of {r['original_url']})" for r in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"  - ... {len(rows) - limit} more")
    return lines


def render_card(facts: CardFacts) -> str:
    """The card: YAML front matter and Markdown."""
    energy = facts.energy or {}
    front: dict[str, Any] = {
        "library_name": "diffusers",
        "pipeline_tag": "text-to-image",
        "license": "other",
        "tags": ["crawl2diffusion", "text-to-image", "diffusers", "unet-2d-condition"],
        "datasets": facts.crawls,
        "base_model": facts.config.get("sd_checkpoint") or None,
    }
    if energy:
        front["co2_eq_emissions"] = {
            "emissions": round(energy["emissions_g"], 6),
            "source": f"estimate: {energy['method']} ({energy['watts_per_core']} W per core)",
            "training_type": "fine-tuning" if facts.config.get("sd_checkpoint") else "pre-training",
            "geographical_location": energy["country"],
            "hardware_used": "CPU" if not energy.get("gpu_metered") else "GPU",
        }
    front = {k: v for k, v in front.items() if v is not None}
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False).rstrip(),
        "---",
        "",
        f"# crawl2diffusion UNet, run {facts.fingerprint}, step {facts.step}",
        "",
        f"A text-conditional `UNet2DConditionModel` (diffusers) trained by crawl2diffusion on "
        f"the text encoder `{facts.text_encoder}`. Weights: `unet/diffusion_pytorch_model."
        f"safetensors`, sha256 `{facts.sha256}`.",
        "",
        "## Training data",
        "",
        f"- Crawls: {', '.join(facts.crawls) or 'none recorded'}",
        "- Pinned versions: "
        + "; ".join(f"`{t}` v{', v'.join(map(str, v))}" for t, v in facts.pinned.items() if v),
        f"- Image-text pairs trained on: {facts.pairs:,} ({facts.draws:,} draws in batches)",
        f"- Which pairs: the `{TableName.TRAINING_MANIFEST}` table, partition "
        f"`{facts.fingerprint}`, rows with this checkpoint's sha256",
        "",
        "## Opt-outs and takedown lists honoured",
        "",
        "- Owners' opt-outs in force: "
        + (", ".join(f"{n} by {k}" for k, n in facts.opt_outs.items()) or "none registered"),
        "- Takedown hash lists: "
        + (", ".join(f"`{k}` ({n} hashes)" for k, n in facts.hash_lists.items()) or "none"),
        f"- Pairs withdrawn after this checkpoint trained on them: {facts.withdrawn_after}",
        *_not_reached_lines(facts.not_reached),
        "",
        "## AI-generated images",
        "",
        (
            f"- Training pairs hop 3 marked AI-generated: {facts.ai_trained}"
            if facts.ai_recorded
            else "- Not recorded: this lake's `clip_scores` has no `ai_generated` column, so "
            "AI-generated images were not left out."
        ),
        "",
        "## Audits",
        "",
        *(
            [
                f"- {k}: {v['audited']} samples, {v['flagged']} flagged as copies"
                for k, v in facts.audits.items()
            ]
            + _style_lines(facts.style)
            or [
                "- None yet: materialize `replication_audit` and `style_imitation` for this "
                "checkpoint."
            ]
        ),
        "",
        "## Energy and emissions",
        "",
    ]
    if energy:
        lines += [
            f"- CPU seconds of training up to this checkpoint: {energy['cpu_seconds']:,}",
            f"- Energy: {energy['energy_kwh']:.6f} kWh; emissions: {energy['emissions_g']:.4f} "
            f"g CO2e ({energy['country']}, {energy['carbon_intensity_g_per_kwh']} g/kWh)",
            f"- Method: `{energy['method']}`: CPU seconds x {energy['watts_per_core']} W per "
            "busy core; a GPU's draw is not metered",
        ]
    else:
        lines.append("- Not recorded for this checkpoint.")
    lines += ["", "## Known limits", "", *(f"- {t}" for t in KNOWN_LIMITS), ""]
    return "\n".join(lines)


def write_model_cards(lake: Lake, fingerprint: str) -> list[str]:
    """(Re)write ``README.md`` in every checkpoint directory of the run; their URIs."""
    run = _run_path(lake, fingerprint)
    uris = []
    for facts in gather_facts(lake, fingerprint):
        path = f"{run}/checkpoints/step-{facts.step:06d}/{CARD}"
        lake.fs.pipe(path, render_card(facts).encode())
        uris.append(lake.uri(path))
    return uris


def read_front_matter(text: str) -> dict[str, Any]:
    """The YAML front matter of a card (for readers and tests)."""
    if not text.startswith("---\n"):
        raise ValueError("a model card starts with '---' (YAML front matter)")
    return yaml.safe_load(text.split("---\n", 2)[1])


def card_path(checkpoint_dir: str | Path) -> Path:
    return Path(checkpoint_dir) / CARD
