"""The scale model of docs/scale.md, on paper: nodes, hours and cost of each hop for one full
Common Crawl crawl and for a LAION-5B-sized run.

Every input is in ``bench/scale_rates.toml`` with its kind: measured here (bench/README.md),
cited (a published figure, GPUs included) or assumed. The script only does arithmetic on them
and prints the tables docs/scale.md quotes::

    .venv/bin/python bench/scale_model.py                     # the doc's tables
    .venv/bin/python bench/scale_model.py --days 3 --set unique_url_share=0.2
"""

from __future__ import annotations

import argparse
import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

RATES = Path(__file__).with_name("scale_rates.toml")
KINDS = {"measured": "M", "cited": "C", "assumed": "A"}
SLICE_SIZES = (1, 10, 50, 100, 500)


@dataclass(frozen=True)
class Figure:
    """One input: its value, what kind of figure it is, and where it comes from."""

    value: float
    kind: str
    unit: str
    source: str
    readme: str | None = None


Figures = dict[str, Figure]


@dataclass(frozen=True)
class Workload:
    """How much each hop sees."""

    name: str
    wat_files: float
    links: float
    """Image links with an alt (hop 1's output, hop 2's input)."""
    kept: float
    """Pairs hop 2 keeps (language identification runs on these)."""
    candidates: float
    """URLs hop 3 fetches and scores (new to the embedding cache)."""
    released: float
    """Pairs the CLIP filter keeps: what the download hop fetches and training may use."""


@dataclass(frozen=True)
class HopCost:
    """What one hop costs for a workload."""

    hop: str
    work: float
    work_unit: str
    rate_kinds: str
    node: str
    """"cpu" or "gpu": the node type it runs on."""
    node_hours: float
    usd: float
    gbps_per_node: float
    limit: str
    in_total: bool = True
    """False for an alternative shown beside the plan (CLIP on CPU)."""
    scales: bool = True
    """False for a fixed budget that does not grow with the input (training)."""

    def nodes_for(self, days: float) -> int:
        """Nodes of its type that finish it in ``days`` (running all the time)."""
        return math.ceil(self.node_hours / (days * 24))


def load_figures(path: Path = RATES) -> Figures:
    """The figures in ``path``; raises ValueError on an unknown kind or a missing field."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    figures: Figures = {}
    for name, entry in data["figures"].items():
        if entry.get("kind") not in KINDS:
            raise ValueError(f"{name}: kind must be one of {sorted(KINDS)}")
        missing = {"value", "unit", "source"} - entry.keys()
        if missing:
            raise ValueError(f"{name}: missing {sorted(missing)}")
        figures[name] = Figure(float(entry["value"]), entry["kind"], entry["unit"],
                               entry["source"], entry.get("readme"))  # fmt: skip
    return figures


def with_values(figures: Figures, **values: float) -> Figures:
    """``figures`` with some values replaced (kept as the kind "assumed")."""
    unknown = set(values) - figures.keys()
    if unknown:
        raise KeyError(f"unknown figures {sorted(unknown)}")
    out = dict(figures)
    for name, value in values.items():
        out[name] = replace(figures[name], value=float(value), kind="assumed")
    return out


def _v(figures: Figures, name: str) -> float:
    return figures[name].value


def per_wat_candidates(f: Figures) -> float:
    """URLs hop 3 fetches per WAT file."""
    return (_v(f, "wat_mb") * _v(f, "links_per_mb") * _v(f, "hop2_kept_share")
            * _v(f, "unique_url_share"))  # fmt: skip


def _workload(name: str, wat_files: float, f: Figures) -> Workload:
    links = wat_files * _v(f, "wat_mb") * _v(f, "links_per_mb")
    kept = links * _v(f, "hop2_kept_share")
    candidates = kept * _v(f, "unique_url_share")
    released = candidates * _v(f, "fetch_ok_share") * _v(f, "clip_keep_share")
    return Workload(name, wat_files, links, kept, candidates, released)


def one_crawl(f: Figures) -> Workload:
    """One full crawl: every WAT file."""
    return _workload("one crawl", _v(f, "wat_files_per_crawl"), f)


def laion_sized(f: Figures) -> Workload:
    """As many WAT files as it takes to give LAION-5B's candidate count."""
    return _workload("LAION-5B-sized", _v(f, "laion_candidates") / per_wat_candidates(f), f)


def _kinds(f: Figures, *names: str) -> str:
    return "".join(sorted({KINDS[f[n].kind] for n in names}))


def hop_costs(w: Workload, f: Figures) -> list[HopCost]:
    """Each hop's node-hours, cost and per-node network for workload ``w``."""
    cores, nic = _v(f, "cpu_node_cores"), _v(f, "node_nic_gbps")
    cpu_usd, gpu_usd = _v(f, "cpu_node_usd_h"), _v(f, "gpu_node_usd_h")
    image_gbit = _v(f, "image_kb") * 8 / 1e6

    def cpu_hop(hop: str, work: float, unit: str, per_core_s: str, gbit_per_unit: float,
                in_total: bool = True) -> HopCost:  # fmt: skip
        rate = _v(f, per_core_s)
        node_hours = work / rate / 3600 / cores
        gbps = cores * rate * gbit_per_unit
        limit = "CPU" if gbps < nic else "NIC"
        kinds = _kinds(f, per_core_s, "cpu_node_cores", "cpu_node_usd_h")
        return HopCost(hop, work, unit, kinds, "cpu", node_hours, node_hours * cpu_usd, gbps,
                       limit, in_total)  # fmt: skip

    fetch_node_s = _v(f, "fetch_per_node_s")
    fetched_ok = w.candidates * _v(f, "fetch_ok_share")
    feed = _v(f, "clip_gpu_node_s") / fetch_node_s
    rows = [
        cpu_hop("hop 1: WAT -> image links", w.wat_files * _v(f, "wat_mb"), "MB",
                "hop1_mb_per_core_s", 8 / 1000),
        cpu_hop("hop 2: URL rules, cleaning, dedup", w.links, "links",
                "hop2_rules_per_core_s", 0.0),
        cpu_hop("hop 2: language id (lingua)", w.kept, "pairs", "hop2_langid_per_core_s", 0.0),
    ]  # fmt: skip
    fetch_hours = w.candidates / fetch_node_s / 3600
    loopback = _v(f, "hop3_fetch_loopback_per_core_s") * cores
    rows.append(
        HopCost("hop 3: fetch + decode (Internet)", w.candidates, "URLs",
                _kinds(f, "fetch_per_node_s", "image_kb", "cpu_node_usd_h"), "cpu", fetch_hours,
                fetch_hours * cpu_usd, fetch_node_s * image_gbit,
                f"latency + DNS ({fetch_node_s:,.0f} lookups/s a node; CPU allows "
                f"{loopback:,.0f}/s on loopback)")
    )  # fmt: skip
    gpu_hours = fetched_ok / _v(f, "clip_gpu_node_s") / 3600
    rows.append(
        HopCost("hop 3: CLIP ViT-B/32 on 8 x A100", fetched_ok, "images",
                _kinds(f, "clip_gpu_node_s", "gpu_node_usd_h"), "gpu", gpu_hours,
                gpu_hours * gpu_usd, _v(f, "clip_gpu_node_s") * image_gbit,
                f"resizing; needs {feed:.0f} fetch nodes per GPU node")
    )  # fmt: skip
    rows.append(
        cpu_hop("hop 3: CLIP ViT-B/32 on CPU instead", fetched_ok, "images",
                "clip_cpu_per_core_s", 0.0, in_total=False)
    )  # fmt: skip
    l14_hours = w.released / _v(f, "clip_l14_gpu_node_s") / 3600
    rows.append(
        HopCost("aesthetics: ViT-L/14 on the released pairs", w.released, "images",
                _kinds(f, "clip_l14_gpu_node_s", "gpu_node_usd_h"), "gpu", l14_hours,
                l14_hours * gpu_usd, _v(f, "clip_l14_gpu_node_s") * image_gbit, "GPU")
    )  # fmt: skip
    download_hours = w.released / fetch_node_s / 3600
    rows.append(
        HopCost("download: img2dataset shards", w.released, "pairs",
                _kinds(f, "fetch_per_node_s", "cpu_node_usd_h"), "cpu", download_hours,
                download_hours * cpu_usd, fetch_node_s * image_gbit, "latency + DNS")
    )  # fmt: skip
    train_hours = _v(f, "sd_training_gpu_hours") / _v(f, "gpus_per_node")
    rows.append(
        HopCost("training: Stable Diffusion v1's budget", _v(f, "sd_training_gpu_hours"),
                "A100-hours", _kinds(f, "sd_training_gpu_hours", "gpu_node_usd_h"), "gpu",
                train_hours, train_hours * gpu_usd, 0.0, "GPU (a fixed budget, not per crawl)",
                scales=False)
    )  # fmt: skip
    return rows


def totals(rows: Sequence[HopCost]) -> dict[str, float]:
    """Node-hours by node type and the cost of the rows that count (not the alternatives),
    in all and without the fixed training budget."""
    counted = [r for r in rows if r.in_total]
    return {
        "cpu_node_hours": sum(r.node_hours for r in counted if r.node == "cpu"),
        "gpu_node_hours": sum(r.node_hours for r in counted if r.node == "gpu"),
        "usd": sum(r.usd for r in counted),
        "usd_data": sum(r.usd for r in counted if r.scales),
    }


def fleet_gbps(w: Workload, f: Figures, days: float) -> float:
    """Aggregate download bandwidth (Gbit/s) for hop 3 and the download hop in ``days``."""
    gbit = (w.candidates + w.released) * _v(f, "image_kb") * 8 / 1e6
    return gbit / (days * 86400)


def slicing(f: Figures, sizes: Sequence[int] = SLICE_SIZES) -> list[dict[str, float]]:
    """Per slice size: partitions per crawl, crawls under the advised partition count, and
    one partition's work (hop 1 core-minutes, hop 3 fetch node-hours)."""
    files = _v(f, "wat_files_per_crawl")
    advised = _v(f, "dagster_partitions_advised")
    rows = []
    for size in sizes:
        partitions = math.ceil(files / size)
        rows.append({
            "slice_size": size,
            "partitions_per_crawl": partitions,
            "crawls_within_advice": math.floor(advised / partitions),
            "hop1_core_minutes": size * _v(f, "wat_mb") / _v(f, "hop1_mb_per_core_s") / 60,
            "hop3_fetch_node_hours": size * per_wat_candidates(f) / _v(f, "fetch_per_node_s")
            / 3600,
        })  # fmt: skip
    return rows


def _n(x: float) -> str:
    """Compact number: 1.2 B, 340 M, 12 k, 3.4."""
    for div, suffix in ((1e9, " B"), (1e6, " M"), (1e3, " k")):
        if abs(x) >= div:
            return f"{x / div:,.3g}{suffix}"
    return f"{x:,.3g}" if x else "0"


def render(f: Figures, days: float) -> str:
    """The Markdown tables of docs/scale.md."""
    out: list[str] = []
    for w in (one_crawl(f), laion_sized(f)):
        rows = hop_costs(w, f)
        t = totals(rows)
        out += [
            f"### {w.name}: {_n(w.wat_files)} WAT files, {_n(w.links)} links, "
            f"{_n(w.candidates)} URLs fetched, {_n(w.released)} released",
            "",
            f"| hop | work | inputs | node | node-hours | nodes for {days:g} days | "
            "USD | Gbit/s a node | limit |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            usd = f"{r.usd:,.0f}" if r.in_total else f"({r.usd:,.0f})"
            out.append(
                f"| {r.hop} | {_n(r.work)} {r.work_unit} | {r.rate_kinds} | {r.node} | "
                f"{r.node_hours:,.0f} | {r.nodes_for(days):,} | {usd} | "
                f"{r.gbps_per_node:.2g} | {r.limit} |"
            )
        out += [
            f"| **total** (without the CPU alternative) | | | | cpu {t['cpu_node_hours']:,.0f}, "
            f"gpu {t['gpu_node_hours']:,.0f} | | **{t['usd']:,.0f}** | | |",
            "",
            f"The data pipeline alone (every row but training): {t['usd_data']:,.0f} USD.",
            "",
            f"Aggregate download bandwidth to finish hop 3 and the download in {days:g} days: "
            f"{fleet_gbps(w, f, days):,.1f} Gbit/s.",
            "",
        ]
    out += [
        "### Slicing one crawl into Dagster partitions",
        "",
        "| WAT files per slice | partitions per crawl | crawls within "
        f"{_n(_v(f, 'dagster_partitions_advised'))} partitions | hop 1, core-minutes | "
        "hop 3 fetch, node-hours |",
        "|---|---|---|---|---|",
    ]
    for s in slicing(f):
        out.append(
            f"| {s['slice_size']:,} | {s['partitions_per_crawl']:,} | "
            f"{s['crawls_within_advice']:,} | {s['hop1_core_minutes']:,.1f} | "
            f"{s['hop3_fetch_node_hours']:,.1f} |"
        )
    out += ["", "Inputs (M measured here, C cited, A assumed):", ""]
    out += [f"- `{name}` = {_n(fig.value)} {fig.unit} [{KINDS[fig.kind]}]: {fig.source}"
            for name, fig in f.items()]  # fmt: skip
    return "\n".join(out)


def _parse_set(items: Sequence[str]) -> dict[str, float]:
    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set takes NAME=VALUE, got {item!r}")
        values[name.strip()] = float(value)
    return values


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=Path, default=RATES, help="the figures (TOML)")
    parser.add_argument("--days", type=float, default=7.0, help="wall-clock target")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="replace a figure (printed as assumed)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.days <= 0:
        parser.error("--days must be positive")
    figures = with_values(load_figures(args.rates), **_parse_set(args.set))
    print(render(figures, args.days))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
