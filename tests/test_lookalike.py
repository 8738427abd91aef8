"""Trace by image: the near-duplicate calibration and the per-partition ANN indexes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from pipeline.hops.dataset.hash_lists import pdq_hash_quality
from pipeline.lake.store import Lake
from pipeline.lake.tables import (
    ALT_TEXT_SCHEMA,
    CLIP_SCORES_SCHEMA,
    IMAGE_LINK_SCHEMA,
    TableName,
)
from pipeline.lineage import ann, copydetect
from pipeline.lineage.calibrate import (
    REPORT,
    TUNING_SEED,
    CalibrationConfig,
    calibrate,
    looked_drawings,
    near_duplicate_rule,
)
from pipeline.lineage.lookalike import match_picture


def test_committed_rule_holds_on_a_small_held_out_set() -> None:
    """At the committed threshold, copies of drawings of a seed neither tuned nor calibrated
    on are found (every transform, crops and overlays included) and distinct drawings are
    not matched; a loose threshold matches everything."""
    report = json.loads(REPORT.read_text())
    rule = near_duplicate_rule()
    assert rule.threshold == report["threshold"] and report["precision"] >= 0.99
    assert report["recall"] >= 0.85 and min(report["per_transform_recall"].values()) >= 0.5
    config = CalibrationConfig(originals=30, distinct=30, seed=4242)
    assert config.seed not in (TUNING_SEED, CalibrationConfig.seed)
    small = calibrate(config, threshold=rule.threshold)
    assert small["counts"]["copies"] == 30 * 6 and small["counts"]["pairs"] == 30 * 210
    assert small["threshold"] == rule.threshold
    assert small["precision"] >= 0.99 and small["recall"] >= 0.8, small
    assert min(small["per_transform_recall"].values()) >= 0.7, small["per_transform_recall"]
    loose = next(c for c in small["curve"] if c["threshold"] == 0.2)
    assert loose["recall"] > 0.95 > loose["precision"]


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
    kept = next(ann.index_root(lake).rglob("a/*.usearch"))
    older = kept.with_suffix(".parquet")  # labels as an older layout wrote them
    older.write_bytes(b"x")
    # re-writing a partition gives its index a new name; the old file is pruned
    _pdq_lake(tmp_path / "lake", {"b": codes[300:310]})
    assert not ann.nearest_pdq(lake, query.hex(), k=5, max_distance=31)
    now = sorted(p.name for p in ann.index_root(lake).rglob("*.usearch"))
    assert len(now) == 2 and now != files and kept.name in now and not older.exists()


def _scores_lake(root: Path, images: list[Image.Image]) -> Lake:
    """A lake where each image was seen once (hop 1), kept (hop 2) and fetched (hop 3, with
    its hashes)."""
    seen, kept, scored = [], [], []
    for i, image in enumerate(images):
        ids = {"pair_id": f"{i:016x}", "url_id": f"{i:016x}", "url": f"http://h/{i}.png"}
        seen.append({**ids, "crawl_id": "CC-TEST", "page_url": f"http://p/{i}.html"})
        kept.append({**ids, "crawl_id": "CC-TEST", "kept": True})
        scored.append(
            {
                **ids,
                "crawl_id": "CC-TEST",
                "model_id": "m",
                "fetch_status": "ok",
                "pdq": pdq_hash_quality(image)[0],
                "copy_desc": copydetect.descriptor_hex(image),
                "kept": True,
            }
        )
    lake = Lake(str(root))
    for table, schema, rows in (
        (TableName.WAT_IMAGE_LINKS, IMAGE_LINK_SCHEMA, seen),
        (TableName.ALT_TEXT_PAIRS, ALT_TEXT_SCHEMA, kept),
        (TableName.CLIP_SCORES, CLIP_SCORES_SCHEMA, scored),
    ):
        lake.write_partition(table, pa.Table.from_pylist(rows, schema=schema), "CC-TEST_00000")
    return lake


def test_trace_by_image_merges_only_the_copy(tmp_path: Path) -> None:
    """A half-size JPEG and a copy cut by 5 % on two sides of a stored drawing are each a
    near-duplicate of it (and of its twin, the same picture at another size) alone, not of
    the other drawings, some alike in shape and colour, and only those journeys are merged; a
    plain picture makes no decision."""
    from pipeline.lineage.index import LineageIndex

    rule = near_duplicate_rule()
    drawn = looked_drawings(20, 7)
    pool = [img for _, _, img, _ in drawn]
    lake = _scores_lake(tmp_path / "lake", pool)
    # twins: one picture drawn under two image_ids (two hearts on white at two sizes)
    twins = {n: {m for m, d in enumerate(drawn) if d[3] == drawn[n][3]} for n in range(6)}
    assert any(len(t) > 1 for t in twins.values())
    index = LineageIndex(lake, tmp_path / "index")
    for n, image in enumerate(pool[:6]):
        w, h = image.size
        for copy in (_half_jpeg_bytes(image), image.crop((0, 0, w - w // 20, h - h // 20))):
            found = match_picture(lake, copy, clip=None)
            assert found.contrast >= rule.min_contrast
            urls = {f"http://h/{m}.png" for m in twins[n]}
            assert f"http://h/{n}.png" in {d["url"] for d in found.near_duplicates}
            assert {d["url"] for d in found.near_duplicates} <= urls
            assert all(d["distance"] <= rule.threshold for d in found.near_duplicates)
            journey = index.trace_picture(copy, clip=None)
            assert {x["url"] for x in journey.sightings} == urls
            assert {c["url"] for c in journey.clip} == urls
    plain = Image.new("RGB", (200, 200), (90, 120, 200))
    found = match_picture(lake, plain, clip=None)
    assert found.contrast < rule.min_contrast and not found.near_duplicates


def _half_jpeg_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.resize((image.width // 2, image.height // 2), Image.Resampling.BICUBIC).save(
        buf, "JPEG", quality=75
    )
    return buf.getvalue()


def _copies_lake(root: Path, partitions: dict[str, np.ndarray]) -> Lake:
    lake = Lake(str(root))
    for partition, stored in partitions.items():
        ids = [f"{partition}{i:04d}" for i in range(len(stored))]
        rows = {
            "url_id": ids,
            "url": [f"http://c/{i}.png" for i in ids],
            "pdq": pa.nulls(len(ids), pa.string()),
            "copy_desc": [d.tobytes().hex() for d in stored],
        }
        lake.write_partition(TableName.CLIP_SCORES, pa.table(rows), partition)
    return lake


def _int8(v: np.ndarray) -> np.ndarray:
    return np.round(v / np.abs(v).max(axis=-1, keepdims=True) * 127).astype(np.int8)


def test_copy_search_equals_exact_search_past_its_first_count(tmp_path: Path) -> None:
    """A picture re-published 30 times (more than the first count asked of each index) and
    500 other drawings: the index search returns what an exact search over every stored
    descriptor does within the threshold, for a query whose crop hypotheses are all wrong
    but one, and a search asking fewer gets the closest ones."""
    rng = np.random.default_rng(3)
    base = rng.standard_normal(copydetect.DIM).astype(np.float32)
    copies = _int8(base + 0.03 * rng.standard_normal((30, copydetect.DIM), dtype=np.float32))
    others = _int8(rng.standard_normal((500, copydetect.DIM), dtype=np.float32))
    stored = {"a": np.concatenate([copies[:20], others[:250]]), "b": np.concatenate(
        [others[250:], copies[20:]])}  # fmt: skip
    lake = _copies_lake(tmp_path / "lake", stored)
    views = _int8(rng.standard_normal((49, copydetect.DIM), dtype=np.float32))
    views[17] = _int8(base + 0.03 * rng.standard_normal(copydetect.DIM, dtype=np.float32))
    threshold = near_duplicate_rule().threshold
    exact = {}
    for partition, rows in stored.items():
        nearest = copydetect.distances(views, rows).min(axis=0)
        exact |= {f"{partition}{i:04d}": d for i, d in enumerate(nearest) if d <= threshold}
    assert len(exact) == 30 > ann.FIRST_COUNT
    found = ann.nearest_copies(lake, views, k=50, max_distance=threshold)
    assert {h.url_id for h in found} == set(exact)
    assert all(abs(h.distance - exact[h.url_id]) < 1e-3 for h in found)
    closest = ann.nearest_copies(lake, views, k=10, max_distance=threshold)
    assert [h.url_id for h in closest] == [h.url_id for h in found[:10]]
    assert not ann.nearest_copies(lake, views[:17], k=50, max_distance=threshold)


def test_search_state_is_kept_until_the_table_has_a_new_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Searches after the first open no Delta table and prune nothing; a partition re-written
    by another writer (another Lake, as another process) is searched as it is now, and its
    stale index is removed."""
    from pipeline.lake import delta

    rng = np.random.default_rng(1)
    codes = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex() for _ in range(40)]
    lake = _pdq_lake(tmp_path / "lake", {"a": codes[:20], "b": codes[20:]})
    assert [h.url for h in ann.nearest_pdq(lake, codes[25], k=1, max_distance=0)] == [
        "http://h/b/5.png"
    ]
    opened, pruned = [], []
    real_open, real_prune = delta.open_table, ann.prune
    monkeypatch.setattr(delta, "open_table", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    monkeypatch.setattr(ann, "prune", lambda *a, **k: pruned.append(a) or real_prune(*a, **k))
    for code in codes[:5]:
        assert len(ann.nearest_pdq(lake, code, k=1, max_distance=0)) == 1
    assert not opened and not pruned
    _pdq_lake(tmp_path / "lake", {"b": codes[30:35]})  # b's rows now: codes 30-34
    assert not ann.nearest_pdq(lake, codes[25], k=1, max_distance=0)
    assert [h.url for h in ann.nearest_pdq(lake, codes[31], k=1, max_distance=0)] == [
        "http://h/b/1.png"
    ]
    assert len(pruned) == 1 and len(list(ann.index_root(lake).rglob("pdq-*.usearch"))) == 2


def test_search_on_an_s3_lake_sees_a_rewrite(
    s3_options: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kept table state follows commits on S3 too (indexes in the local cache)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rng = np.random.default_rng(2)
    codes = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex() for _ in range(20)]
    root = f"s3://lake/ann-{tmp_path.name}"
    lake = Lake(root, s3_options)
    for partition, values in {"a": codes[:10], "b": codes[10:]}.items():
        rows = [{"url_id": f"{i:016x}", "url": f"http://h/{partition}/{i}", "pdq": v}
                for i, v in enumerate(values)]  # fmt: skip
        lake.write_partition(TableName.CLIP_SCORES, pa.Table.from_pylist(rows), partition)
    assert len(ann.nearest_pdq(lake, codes[12], k=1, max_distance=0)) == 1
    rows = [{"url_id": "ff", "url": "http://h/b/new", "pdq": codes[3]}]
    Lake(root, s3_options).write_partition(TableName.CLIP_SCORES, pa.Table.from_pylist(rows), "b")
    assert not ann.nearest_pdq(lake, codes[12], k=1, max_distance=0)
    assert {h.url for h in ann.nearest_pdq(lake, codes[3], k=2, max_distance=0)} == {
        "http://h/a/3",
        "http://h/b/new",
    }
