"""The safety filter's error rates: precision, recall and false positive/negative rates at a
threshold, the curve over thresholds, and the stored calibration of the shipped head.

The calibration (``pipeline/models/heads/punsafe_calibration.json``, written by
:mod:`pipeline.models.training.calibrate_safety`) keeps every score of its labelled drawings,
so the rates at whatever threshold ``samples`` runs with are recomputed, never copied.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.models import MODELS_DIR

CALIBRATION_FILE = MODELS_DIR / "heads" / "punsafe_calibration.json"  # no torch at load
CURVE_THRESHOLDS = tuple(
    sorted({0.001, 0.005, 0.995, 0.999, *(round(t, 2) for t in np.linspace(0.01, 0.99, 99))})
)


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def rates(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[bool] | np.ndarray,
    classes: Sequence[str] | None,
    threshold: float,
) -> dict:
    """Counts and rates of ``scores >= threshold`` against ``labels`` (True: unsafe), and the
    share flagged per class when ``classes`` is given. A rate without a denominator is None."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    if s.shape != y.shape:
        raise ValueError(f"{len(s)} scores but {len(y)} labels")
    flagged = s >= threshold
    tp, fp = int((flagged & y).sum()), int((flagged & ~y).sum())
    fn, tn = int((~flagged & y).sum()), int((~flagged & ~y).sum())
    out: dict = {
        "threshold": float(threshold),
        "positives": tp + fn,
        "negatives": fp + tn,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "false_positive_rate": _ratio(fp, fp + tn),
        "false_negative_rate": _ratio(fn, tp + fn),
    }
    if classes is not None:
        total = Counter(classes)
        hit = Counter(c for c, f in zip(classes, flagged, strict=True) if f)
        out["flag_rate_by_class"] = {c: _ratio(hit[c], n) for c, n in total.items()}
    return out


def curve(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[bool] | np.ndarray,
    thresholds: Sequence[float] = CURVE_THRESHOLDS,
) -> list[dict]:
    """Precision, recall and false positive rate at each threshold."""
    keys = ("threshold", "precision", "recall", "false_positive_rate")
    return [{k: rates(scores, labels, None, t)[k] for k in keys} for t in thresholds]


def best_f1_threshold(points: Sequence[dict]) -> float:
    """The threshold of ``points`` (from :func:`curve`) with the highest F1; the highest such
    threshold on ties."""

    def f1(p: dict) -> float:
        pr, rc = p["precision"] or 0.0, p["recall"] or 0.0
        return 2 * pr * rc / (pr + rc) if pr + rc else 0.0

    return max(points, key=lambda p: (round(f1(p), 4), p["threshold"]))["threshold"]


def load_calibration(path: str | Path = CALIBRATION_FILE) -> dict:
    return json.loads(Path(path).read_text())


def calibration_summary(calibration: dict, head_sha256: str | None, threshold: float) -> dict:
    """Rates at ``threshold`` per condition of ``calibration``, recomputed from its scores;
    ``matches_head`` says whether it measured the head in use (else the rates say nothing
    about it)."""
    classes = calibration["classes"]
    labels = [c == calibration["positive_class"] for c in classes]
    return {
        "matches_head": calibration["head_sha256"] == head_sha256,
        "head_sha256": calibration["head_sha256"],
        "images_per_class": calibration["per_class"],
        "conditions": {
            name: rates(cond["scores"], labels, classes, threshold)
            for name, cond in calibration["conditions"].items()
        },
    }


def pr_curve_png(calibration: dict, threshold: float) -> bytes:
    """Precision-recall curve per condition, with the operating point at ``threshold``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [c == calibration["positive_class"] for c in calibration["classes"]]
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, cond in calibration["conditions"].items():
        points = [p for p in curve(cond["scores"], labels) if p["precision"] is not None]
        line = ax.plot([p["recall"] for p in points], [p["precision"] for p in points], label=name)
        at = rates(cond["scores"], labels, None, threshold)
        if at["precision"] is not None:
            ax.plot(at["recall"], at["precision"], "o", color=line[0].get_color())
    ax.set_xlabel("recall (hazard drawings flagged)")
    ax.set_ylabel("precision")
    ax.set_title(f"punsafe filter; dots: threshold {threshold:g}")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()
