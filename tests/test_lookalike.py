"""Trace by image: the near-duplicate calibration and the per-partition ANN indexes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from pipeline.hops.dataset.hash_lists import pdq_distance, pdq_hash_quality
from pipeline.lake.store import Lake
from pipeline.lake.tables import TableName
from pipeline.lineage import ann
from pipeline.lineage.calibrate import (
    REPORT,
    CalibrationConfig,
    calibrate,
    drawings,
    near_duplicate_rule,
)
from pipeline.lineage.lookalike import match_picture


def test_small_calibration_agrees_with_the_committed_report() -> None:
    """A small recalibration (seconds) at the committed threshold keeps its precision;
    JPEG re-encodes are found far more often than crops (PDQ is not crop-robust)."""
    report = json.loads(REPORT.read_text())
    rule = near_duplicate_rule()
    assert rule.threshold == report["threshold"] and report["precision"] >= 0.99
    small = calibrate(CalibrationConfig(originals=40, distinct=40))
    assert small["counts"]["copies"] == 40 * 6 and small["counts"]["pairs"] == 40 * 280
    at = next(c for c in small["curve"] if c["threshold"] == small["threshold"])
    assert at["precision"] >= 0.95
    assert small["per_transform_recall"]["jpeg"] >= 0.2
    assert small["per_transform_recall"]["jpeg"] > small["per_transform_recall"]["crop"]
    ones = next(c for c in small["curve"] if c["threshold"] == 128)
    assert ones["recall"] > 0.6 > ones["precision"]  # a loose threshold matches everything


def _pdq_lake(root: Path, hashes: dict[str, list[str]]) -> Lake:
    lake = Lake(str(root))
    for partition, values in hashes.items():
        rows = [
            {"url_id": f"{i:016x}", "url": f"http://h/{partition}/{i}.png", "pdq": v}
            for i, v in enumerate(values)
        ]
        lake.write_partition(TableName.CLIP_SCORES, pa.Table.from_pylist(rows), partition)
    return lake


def test_pdq_index_per_partition_merged_and_renamed_on_rewrite(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    codes = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex() for _ in range(600)]
    lake = _pdq_lake(tmp_path / "lake", {"a": codes[:300], "b": codes[300:]})
    query = bytearray(bytes.fromhex(codes[450]))
    query[0] ^= 0b111  # 3 bits off
    hits = ann.nearest_pdq(lake, query.hex(), k=5, max_distance=31)
    assert [(h.url, h.distance) for h in hits] == [("http://h/b/150.png", 3.0)]
    files = sorted(p.name for p in ann.index_root(lake).rglob("*.usearch"))
    assert len(files) == 2
    # re-writing a partition gives its index a new name; the old file is pruned
    _pdq_lake(tmp_path / "lake", {"b": codes[300:310]})
    assert not ann.nearest_pdq(lake, query.hex(), k=5, max_distance=31)
    now = sorted(p.name for p in ann.index_root(lake).rglob("*.usearch"))
    assert len(now) == 2 and now != files


def test_picture_near_duplicate_found_through_the_index(tmp_path: Path) -> None:
    """A half-size JPEG of a stored drawing is a near-duplicate (within the calibrated
    threshold); other drawings are not."""
    pool = drawings(30, 7)
    hashed = [(pdq_hash_quality(img), img) for _, _, img in pool]
    rule = near_duplicate_rule()
    (target, _quality), image = next(
        (h, img)
        for h, img in hashed
        if h[1] >= rule.min_pdq_quality
        and pdq_distance(h[0], pdq_hash_quality(_half_jpeg(img))[0]) <= rule.threshold
    )
    lake = _pdq_lake(tmp_path / "lake", {"x": [h[0] for h, _ in hashed]})
    found = match_picture(lake, _half_jpeg_bytes(image), clip=None)
    assert found.sha256 is not None and found.pdq_quality >= rule.min_pdq_quality
    assert [n["pdq"] for n in found.near_duplicates] == [target]


def _half_jpeg_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.resize((image.width // 2, image.height // 2), Image.Resampling.BICUBIC).save(
        buf, "JPEG", quality=75
    )
    return buf.getvalue()


def _half_jpeg(image: Image.Image) -> Image.Image:
    return Image.open(io.BytesIO(_half_jpeg_bytes(image))).convert("RGB")
