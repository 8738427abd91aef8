"""Dagster metadata of the interface safety filter: its decision per sample, and how often it
errs at its threshold (from the shipped head's calibration)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dagster import MetadataValue

from assets_defs.metadata import report_metadata
from pipeline.hops.samples.safety import Screening
from pipeline.hops.samples.safety_calibration import (
    CALIBRATION_FILE,
    calibration_summary,
    load_calibration,
    pr_curve_png,
)
from pipeline.lake.store import Lake

RATES = ("precision", "recall", "false_positive_rate", "false_negative_rate")


def safety_metadata(
    lake: Lake,
    screening: Screening,
    prompts: Sequence[str],
    seeds: Sequence[int],
    head_sha256: str | None,
) -> dict[str, Any]:
    """Threshold, flagged count, each sample's decision and score, and the calibrated error
    rates at the threshold (with a PR curve) when the calibration measured this head."""
    decisions = [
        {"prompt": p, "seed": int(s), "punsafe": round(float(score), 4), "flagged": bool(f)}
        for p, s, score, f in zip(prompts, seeds, screening.scores, screening.flagged, strict=True)
    ]
    out: dict[str, Any] = {
        "safety_threshold": MetadataValue.float(screening.threshold),
        "safety_flagged": MetadataValue.int(screening.flagged_count),
        "safety_head": MetadataValue.text(screening.head),
        "safety_decisions": MetadataValue.json(decisions),
    }
    calibration = load_calibration(CALIBRATION_FILE)
    summary = calibration_summary(calibration, head_sha256, screening.threshold)
    if not summary["matches_head"]:
        out["safety_calibration"] = MetadataValue.text(
            f"uncalibrated: {CALIBRATION_FILE.name} measured head sha256:"
            f"{summary['head_sha256']}, not this one"
        )
        return out
    out["safety_calibration"] = MetadataValue.json(summary)
    for condition, at in summary["conditions"].items():
        for rate in RATES:
            if at[rate] is not None:
                out[f"safety_{condition}_{rate}"] = MetadataValue.float(at[rate])
    out |= report_metadata(
        lake,
        "safety_pr_curve",
        f"safety-pr-{screening.threshold:g}.png",
        pr_curve_png(calibration, screening.threshold),
        "punsafe filter: precision-recall on labelled drawings",
    )
    return out
