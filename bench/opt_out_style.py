"""Does an opt-out remove the style? Train, audit, opt the artist's domain out, rebuild, retrain
with the same settings, audit again, and name the copies the opt-out did not reach.

Every hop runs through Dagster's ``materialize`` on a synthetic web (the ``small`` demo
profile's web by default): hops 1-3 for each slice, the release, the aesthetic subset, the
shards, a small diffusion model, and ``style_imitation`` (the existing audit: each artist's
margin over the nearest other artist's style, and the same for a shuffled name). Then the
artist's home domain is added to the opt-out list, ``dataset_job``'s assets rebuild the
release and the shards, the model is retrained with the same config, the audit runs again,
and ``opt_out_not_reached`` lists the copies of the withdrawn images on other domains (by
sha256, redirect and near-duplicate search), with the checkpoints that trained on them. The
not-reached list is scored against the web's truth (reposts and redirects of images on the
withdrawn domain).

    python bench/opt_out_style.py [--root DIR] [--artist NAME] [--steps 1000] [--seeds 4]

About 15 minutes on this shared 2-core machine (bench/README.md). Prints a JSON summary and
writes it to ``<root>/opt_out_style.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

os.environ.setdefault("OMP_NUM_THREADS", "1")  # on 2 shared cores two threads spin-wait
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow.parquet as pq
from dagster import DagsterInstance, materialize

from assets_defs.demo_profiles import SMALL, WEB_LANGUAGES
from assets_defs.partitions import crawls, wat_slices
from pipeline.hops.dataset import opt_out_reach, opt_outs
from pipeline.hops.training.publish import CURRENT
from pipeline.lake.store import Lake
from pipeline.lake.tables import NOT_REACHED_MATCHES, TableName
from pipeline.synthetic.artists import BY_NAME

T = TableName
PORTFOLIO = 48
"""Portfolio drawings per artist, and the training captions naming an artist above which the
audit would refer to those instead (more than any artist has in the default web: 27)."""


def resources(root: Path, web: dict[str, Any]) -> dict[str, Any]:
    """The code location's resources for a data folder at ``root`` and a web sized ``web``."""
    from assets_defs.definitions import build_resources
    from pipeline.settings import Settings

    return build_resources(Settings(data=str(root)), web=web)


class Bench:
    def __init__(self, root: Path, web: dict[str, Any]) -> None:
        from dagster import AssetsDefinition

        from assets_defs.definitions import ASSETS

        self.assets = [a for a in ASSETS if isinstance(a, AssetsDefinition)]
        self.root = root
        (root / "dagster_home").mkdir(parents=True, exist_ok=True)
        self.instance = DagsterInstance.ephemeral()
        self.resources = resources(root, web)
        self.lake = Lake(str(root / "lake"))
        self.seconds: dict[str, float] = {}

    def run(self, label: str, names: list[str], partition=None, config=None) -> None:
        started = time.monotonic()
        result = materialize(
            self.assets,
            selection=[a for a in self.assets if {k.to_user_string() for k in a.keys} & set(names)],
            partition_key=partition,
            instance=self.instance,
            resources=self.resources,
            run_config=config,
        )
        assert result.success, label
        self.seconds[label] = self.seconds.get(label, 0.0) + round(time.monotonic() - started, 1)
        print(f"[{time.strftime('%H:%M:%S')}] {label}: {self.seconds[label]} s", flush=True)


def style_rows(lake: Lake, sha256: str) -> dict[str, dict[str, Any]]:
    data = lake.read(T.STYLE_IMITATION, [sha256[:16]])
    return {r["artist"]: r for r in data.to_pylist() if r["checkpoint_sha256"] == sha256}


def current_checkpoint(lake: Lake) -> str:
    """The sha256 of the checkpoint ``diffusion_model`` points at now."""
    with lake.fs.open(lake.path(CURRENT), "rb") as fh:
        return json.loads(fh.read())["sha256"]


def truth_copies(web: Path, domain: str) -> set[str]:
    """URLs on other hosts whose image reposts, or redirects to, an image on ``domain``."""
    truth = pq.read_table(web / "truth.parquet").to_pylist()
    on_domain = {r["image_id"] for r in truth if r["host"] == domain}
    return {
        r["url"]
        for r in truth
        if r["host"] != domain
        and (r["repost_of"] in on_domain or r["redirect_image_id"] in on_domain)
    }


def score_not_reached(lake: Lake, web: Path, domain: str) -> dict[str, Any]:
    """``opt_out_not_reached`` against the web's truth: precision over the copies listed as
    still held, recall over the truth's copies in the release (and over those whose withdrawn
    original hop 3 fetched, the only ones a search can start from). URLs compare unquoted (the
    lake keeps ``piñata``, the truth ``pi%C3%B1ata``)."""
    found = lake.read(T.OPT_OUT_NOT_REACHED).to_pylist()
    held = [r for r in found if r["held_in"] or r["checkpoints"]]
    rows = pq.read_table(web / "truth.parquet").to_pylist()
    by_url = {unquote(r["url"]): r for r in rows}
    by_id = {r["image_id"]: unquote(r["url"]) for r in rows}
    truth = {unquote(u) for u in truth_copies(web, domain)}
    released = {unquote(r["URL"]) for r in lake.read(T.LAION_DATASET, columns=["URL"]).to_pylist()}
    truth_held = truth & released
    fetched = {unquote(f.url) for f in opt_out_reach.stored_fetches(lake)}
    findable = {
        u
        for u in truth_held
        if by_id.get(by_url[u]["repost_of"] or by_url[u]["redirect_image_id"]) in fetched
    }
    listed = {unquote(r["url"]) for r in held}
    return {
        "copies_found": len(found),
        "still_held": len(held),
        "by_match": {k: sum(r["match"] == k for r in held) for k in NOT_REACHED_MATCHES},
        "truth_copies": len(truth),
        "truth_copies_released": len(truth_held),
        "truth_copies_findable": len(findable),
        "precision": round(len(listed & truth) / len(listed), 3) if listed else None,
        "recall": round(len(listed & truth_held) / len(truth_held), 3) if truth_held else None,
        "recall_findable": round(len(listed & findable) / len(findable), 3) if findable else None,
        "listed_not_in_truth": sorted(listed - truth),
        "missed": sorted(truth_held - listed),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="/tmp/opt-out-style")
    parser.add_argument("--artist", default=None, help="default: the most imitated artist")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=4, help="audit seeds per subject")
    parser.add_argument(
        "--min-score", type=float, default=0.0,
        help="aesthetic cut-off of the subset trained on (0: every safe, unwatermarked "
        "released pair; the demo's default is 5)",
    )  # fmt: skip
    parser.add_argument(
        "--web", choices=("small", "default"), default="default",
        help="the synthetic web: the small demo profile's, or the default's first crawl",
    )  # fmt: skip
    args = parser.parse_args(argv)
    root = Path(args.root)
    started, load0 = time.monotonic(), os.getloadavg()
    web = SMALL.web if args.web == "small" else {"crawl_ids": list(SMALL.web["crawl_ids"])}
    bench = Bench(root, web)
    lake = bench.lake
    train = {
        "resolution": 16,
        "block_out_channels": [8, 16],
        "train_steps": args.steps,
        "batch_size": 16,
        "learning_rate": 3e-3,
        "warmup_steps": 10,
        "checkpoint_every": args.steps,
    }
    # portfolio references for every artist, before and after (the audit's own fallback when
    # fewer training captions name them than min_references): the same yardstick on both
    # sides, whatever the training captions name
    audit = {
        "steps": 10,
        "seeds": list(range(args.seeds)),
        "min_references": PORTFOLIO,
        "portfolio_size": PORTFOLIO,
    }
    training = {"ops": {T.DIFFUSION_MODEL: {"config": train}, T.STYLE_IMITATION: {"config": audit}}}
    bands = sorted({args.min_score, 5.0, 6.0, 6.5})  # a kept row reaches at least one band
    subset = {"min_score": args.min_score, "bands": bands}
    dataset = {"ops": {T.AESTHETIC_SUBSET: {"config": subset}}}
    dataset_assets = [
        T.LAION_DATASET,
        T.AESTHETIC_SCORES,
        T.AESTHETIC_SUBSET,
        T.IMAGE_SHARDS,
        T.DOWNLOAD_RESULTS,
    ]

    slices = {"ops": {T.CRAWL_MANIFEST: {"config": {"slice_size": SMALL.slice_size}}}}
    bench.run("crawl_manifest", [T.CRAWL_MANIFEST], config=slices)
    crawl = bench.instance.get_dynamic_partitions(crawls.name)[0]
    languages = {"ops": {T.ALT_TEXT_PAIRS: {"config": {"languages": list(WEB_LANGUAGES)}}}}
    for key in bench.instance.get_dynamic_partitions(wat_slices.name):
        hops = [T.WAT_IMAGE_LINKS, T.ALT_TEXT_PAIRS, T.CLIP_SCORES]
        bench.run("hops 1-3", hops, key, languages)
    bench.run("dataset (before)", dataset_assets, crawl, dataset)
    bench.run("training (before)", [T.DIFFUSION_MODEL, T.STYLE_IMITATION], config=training)
    before_sha = current_checkpoint(lake)
    before = style_rows(lake, before_sha)
    artist = (
        args.artist
        or max(  # the artist most training captions name
            before.values(), key=lambda r: (r["training_images"], r["imitation"] or 0.0)
        )["artist"]
    )
    manifest = json.loads((root / "web" / "manifest.json").read_text())
    domain = manifest["artists"][artist]["home"]
    assert artist in BY_NAME

    opt_outs.add(lake, [("domain", domain)], note=f"bench: {artist}")
    bench.run("dataset (after opt-out)", dataset_assets, crawl, dataset)
    bench.run("training (after)", [T.DIFFUSION_MODEL, T.STYLE_IMITATION], config=training)
    after_sha = current_checkpoint(lake)
    after = style_rows(lake, after_sha)
    bench.run("opt_out_not_reached", [T.OPT_OUT_NOT_REACHED])

    found = lake.read(T.OPT_OUT_NOT_REACHED).to_pylist()
    held = [r for r in found if r["held_in"] or r["checkpoints"]]
    manifest_rows = lake.read(T.TRAINING_MANIFEST, columns=["url_id", "checkpoint_sha256"])
    trained_after = {
        r["url_id"] for r in manifest_rows.to_pylist() if r["checkpoint_sha256"] == after_sha
    }
    keep_style = [
        {k: r[k] for k in ("url", "domain", "sha256", "match", "distance", "original_url")}
        for r in held
        if r["url_id"] in trained_after
    ]

    def scores(row: dict[str, Any]) -> dict[str, Any]:
        keys = ("imitation", "margin", "shuffled_margin", "imitated", "reference_source")
        out = {k: row[k] for k in (*keys, "reference_count", "training_images")}
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}

    summary = {
        "artist": artist,
        "domain": domain,
        "train": train,
        "audit": audit,
        "checkpoints": {"before": before_sha, "after": after_sha},
        "before": scores(before[artist]),
        "after": scores(after[artist]),
        "others_before": {a: scores(r) for a, r in before.items() if a != artist},
        "others_after": {a: scores(r) for a, r in after.items() if a != artist},
        "not_reached": {
            **score_not_reached(lake, root / "web", domain),
            "trained_by_retrained_model": keep_style,
        },
        "summary_md": opt_out_reach.summary_lines(lake.read(T.OPT_OUT_NOT_REACHED)),
        "seconds": bench.seconds,
        "wall_s": round(time.monotonic() - started, 1),
        "cpu_s": round(
            sum(
                getattr(resource.getrusage(w), f)
                for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                for f in ("ru_utime", "ru_stime")
            ),
            1,
        ),
        "load_average": {"start": [round(x, 2) for x in load0], "end": list(os.getloadavg())},
    }
    (root / "opt_out_style.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
