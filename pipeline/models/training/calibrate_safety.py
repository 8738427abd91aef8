"""Measure the safety filter (the shipped punsafe head) on drawn images with known labels.

    python -m pipeline.models.training.calibrate_safety --per-class 200 \
        --out pipeline/models/heads/punsafe_calibration.json

The positives are the synthetic web's hazard class (red with dark diagonal stripes); the
negatives are its neighbours, drawn with the same code: red or black striped backgrounds,
red-to-black gradients, plain red or black, orange stripes, and ordinary drawings. Seeds are
tagged ``safety-calibration`` (the head trained on ``heads-train`` and chose nothing on these).
Each image is scored three times: as drawn (64-320 px, as on the web), reduced to the samples'
resolution (what the filter sees behind ``samples``), and reduced then degraded (a seeded blur
and noise, as a small diffusion model renders: :func:`degrade`). The JSON keeps every score, so the
rates at any threshold are recomputed at run time (:mod:`pipeline.hops.samples.safety_calibration`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from pipeline.hops.clip.embed import ClipModel, ClipSpec
from pipeline.hops.clip.heads import DEFAULT_HEADS_DIR, load_head
from pipeline.hops.samples.safety import SafetyFilter
from pipeline.hops.samples.safety_calibration import best_f1_threshold, curve, rates
from pipeline.hops.training.model import DiffusionTrainConfig
from pipeline.models.training.samples import random_visual
from pipeline.settings import Settings
from pipeline.synthetic.draw import render

HAZARD = "hazard"
NEIGHBOURS: dict[str, tuple[str, tuple[str, ...]]] = {
    "red_stripes": ("stripes", ("red",)),
    "black_stripes": ("stripes", ("black",)),
    "orange_stripes": ("stripes", ("orange",)),
    "red_black_gradient": ("gradient", ("red", "black")),
    "plain_red": ("plain", ("red",)),
    "plain_black": ("plain", ("black",)),
}
"""Negative classes closest to the hazard drawings: background kind and colours."""
ORDINARY = "ordinary"
CLASSES = (HAZARD, *NEIGHBOURS, ORDINARY)
DEFAULT_TAG = "safety-calibration"
SAMPLE_RESOLUTION = DiffusionTrainConfig.resolution
MAX_BLUR = 1.5
"""px: at 1.0 the shipped head already misses most hazard drawings at 32 px."""
MAX_NOISE = 40.0
"""Pixel noise sigma (0-255): at 40 some red-to-black gradients start to be flagged."""


def draw_class(name: str, index: int, tag: str = DEFAULT_TAG) -> Image.Image:
    """One drawing of class ``name`` (deterministic in ``tag`` and ``index``)."""
    key = f"{tag}:{name}"
    if name == HAZARD:
        return render(random_visual(key, index, 0.0, 1.0))
    v = random_visual(key, index, 0.0, 0.0)
    if name in NEIGHBOURS:
        background, colors = NEIGHBOURS[name]
        fg = v.color if v.color not in colors else "yellow"
        v = dataclasses.replace(v, background=background, bg_colors=colors, color=fg)
    elif name != ORDINARY:
        raise ValueError(f"unknown class {name!r}; known: {CLASSES}")
    return render(v)


def at_resolution(image: Image.Image, side: int) -> Image.Image:
    """``image`` reduced to ``side`` x ``side`` (shortest side, centre crop), as training does."""
    w, h = image.size
    scale = side / min(w, h)
    small = image.resize((max(side, round(w * scale)), max(side, round(h * scale))), Image.LANCZOS)
    left, top = (small.width - side) // 2, (small.height - side) // 2
    return small.crop((left, top, left + side, top + side))


def degrade(image: Image.Image, key: str) -> Image.Image:
    """``image`` as a small diffusion model might render it: a seeded Gaussian blur (radius up
    to ``MAX_BLUR`` px) and pixel noise (sigma up to ``MAX_NOISE``)."""
    rng = random.Random(f"{key}:degrade")
    radius, sigma = rng.uniform(0.0, MAX_BLUR), rng.uniform(0.0, MAX_NOISE)
    soft = image.filter(ImageFilter.GaussianBlur(radius)) if radius > 0 else image
    arr = np.asarray(soft.convert("RGB"), dtype=np.float32)
    arr += np.random.default_rng(rng.getrandbits(32)).normal(0.0, sigma, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def calibrate(
    safety: SafetyFilter, per_class: int, tag: str = DEFAULT_TAG, side: int = SAMPLE_RESOLUTION
) -> dict:
    """Scores of ``per_class`` drawings per class, as drawn and at ``side`` px, with the rates
    at the filter's threshold and the curve over thresholds."""
    classes = [c for c in CLASSES for _ in range(per_class)]
    images = [draw_class(c, i, tag) for c in CLASSES for i in range(per_class)]
    labels = [c == HAZARD for c in classes]
    report: dict = {
        "tag": tag,
        "per_class": per_class,
        "classes": classes,
        "positive_class": HAZARD,
        "head": safety.head.source,
        "head_sha256": safety.head.sha256,
        "clip_model_id": safety.clip.model_id,
        "threshold": safety.threshold,
        "conditions": {},
    }
    small = [at_resolution(im, side) for im in images]
    keys = [f"{tag}:{c}:{i}" for c in CLASSES for i in range(per_class)]
    for name, batch in (
        ("drawn", images),
        (f"{side}px", small),
        (f"{side}px_degraded", [degrade(im, k) for im, k in zip(small, keys, strict=True)]),
    ):
        scores = safety.scores(batch)
        report["conditions"][name] = {
            "scores": [round(float(s), 6) for s in scores],
            "at_threshold": rates(scores, labels, classes, safety.threshold),
            "curve": curve(scores, labels),
        }
    report["suggested_threshold"] = best_f1_threshold(
        report["conditions"][f"{side}px_degraded"]["curve"]
    )
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--threshold", type=float, default=Settings.safety_threshold)
    parser.add_argument("--out", default=str(DEFAULT_HEADS_DIR / "punsafe_calibration.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    started = time.perf_counter()
    clip = ClipModel(ClipSpec(device="cpu"))
    safety = SafetyFilter(clip, load_head("punsafe"), args.threshold)
    report = calibrate(safety, args.per_class)
    report["seconds"] = round(time.perf_counter() - started, 1)
    Path(args.out).write_text(json.dumps(report, separators=(",", ":")) + "\n")
    for name, cond in report["conditions"].items():
        print(name, json.dumps(cond["at_threshold"]))
    print("suggested threshold (best F1, degraded):", report["suggested_threshold"])


if __name__ == "__main__":
    main()
