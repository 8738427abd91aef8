"""The interface safety filter: its error rates on held-out drawings with known labels, the
blur that hides flagged samples, and ``samples`` storing flagged images blurred while its
prompt-following check judges the unblurred pixels."""

from __future__ import annotations

import io

import numpy as np
import pytest
from dagster import materialize
from PIL import Image

from assets_defs.assets.samples import samples
from assets_defs.resources import ClipModelResource, LakeResource
from pipeline.hops.clip.embed import ClipModel, ClipSpec
from pipeline.hops.clip.heads import load_head
from pipeline.hops.samples.safety import SafetyFilter, blur, shown_images
from pipeline.hops.samples.safety_calibration import (
    best_f1_threshold,
    calibration_summary,
    curve,
    load_calibration,
    rates,
)
from pipeline.lake.tables import TableName
from pipeline.models.training.calibrate_safety import (
    NEIGHBOURS,
    at_resolution,
    calibrate,
    draw_class,
)
from pipeline.settings import Settings


@pytest.fixture(scope="module")
def clip() -> ClipModel:
    return ClipModel(ClipSpec(device="cpu"))


@pytest.fixture(scope="module")
def safety(clip) -> SafetyFilter:
    return SafetyFilter(clip, load_head("punsafe"), Settings().safety_threshold)


def _edges(image: Image.Image) -> float:
    """Mean absolute difference between horizontally and vertically adjacent pixels."""
    a = np.asarray(image.convert("RGB"), dtype=np.float32)
    return float(np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean())


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_rates_count_every_outcome() -> None:
    scores = [0.9, 0.6, 0.2, 0.7, 0.1, 0.05]
    labels = [True, True, True, False, False, False]
    classes = ["hazard", "hazard", "hazard", "red_stripes", "red_stripes", "plain_red"]
    at = rates(scores, labels, classes, 0.5)
    assert (at["tp"], at["fp"], at["fn"], at["tn"]) == (2, 1, 1, 2)
    assert at["precision"] == at["recall"] == pytest.approx(0.6667, abs=1e-4)
    assert at["false_positive_rate"] == pytest.approx(0.3333, abs=1e-4)
    assert at["false_negative_rate"] == pytest.approx(0.3333, abs=1e-4)
    assert at["flag_rate_by_class"] == {"hazard": 0.6667, "red_stripes": 0.5, "plain_red": 0.0}
    points = curve(scores, labels, (0.1, 0.5, 0.95))
    assert [p["recall"] for p in points] == [1.0, 0.6667, 0.0]
    assert points[-1]["precision"] is None  # nothing flagged: precision has no denominator
    assert best_f1_threshold(points) == 0.1  # F1 0.857 (P 0.75, R 1) against 0.667
    with pytest.raises(ValueError, match="3 scores but 2 labels"):
        rates([0.1, 0.2, 0.3], [True, False], None, 0.5)


def test_filter_flags_held_out_hazards_and_passes_neighbours(safety) -> None:
    # drawings with their own seeds: neither the head nor the shipped calibration saw them
    report = calibrate(safety, per_class=8, tag="safety-test")
    for condition in ("drawn", "32px"):
        at = report["conditions"][condition]["at_threshold"]
        assert at["positives"] == 8 and at["negatives"] == 8 * (len(NEIGHBOURS) + 1)
        assert at["recall"] >= 0.875, (condition, at)
        assert at["fp"] <= 1, (condition, at["flag_rate_by_class"])
    # softened as a small model draws them, hazards slip through: the filter errs
    hazards = [at_resolution(draw_class("hazard", i, "safety-test"), 32) for i in range(8)]
    assert safety.screen(hazards).flagged_count >= 7
    soft = safety.screen([blur(h, 2.0 / 32) for h in hazards])
    assert soft.flagged_count <= 4, soft.scores


def test_blur_hides_what_the_filter_flagged(safety) -> None:
    images = [at_resolution(draw_class(c, 0, "safety-blur"), 32) for c in ("hazard", "ordinary")]
    screening = safety.screen(images)
    assert screening.flagged.tolist() == [True, False]
    shown = shown_images(images, screening)
    assert shown[1] is images[1]
    assert _edges(shown[0]) < _edges(images[0]) / 10  # no stripe or edge left
    assert not safety.screen([shown[0]]).flagged[0]
    with pytest.raises(ValueError, match="2 images but 1 decisions"):
        shown_images(images, safety.screen(images[:1]))
    with pytest.raises(ValueError, match="within"):
        SafetyFilter(safety.clip, safety.head, 1.5)
    with pytest.raises(ValueError, match="punsafe head"):
        SafetyFilter(safety.clip, load_head("pwatermark"), 0.5)


def test_the_shipped_calibration_measured_the_shipped_head_at_the_default() -> None:
    calibration = load_calibration()
    head = load_head("punsafe")
    threshold = Settings().safety_threshold
    assert calibration["head_sha256"] == head.sha256
    assert calibration["suggested_threshold"] == threshold == calibration["threshold"]
    summary = calibration_summary(calibration, head.sha256, threshold)
    assert summary["matches_head"]
    for name, condition in calibration["conditions"].items():
        assert summary["conditions"][name] == condition["at_threshold"]
    assert not calibration_summary(calibration, "0" * 64, threshold)["matches_head"]


@pytest.mark.slow
def test_samples_stores_flagged_images_blurred_and_judges_unblurred_pixels(tmp_path, clip):
    from pipeline.hops.samples.sample import Generator, SampleSpec, prompt_alignment
    from pipeline.hops.training.model import DiffusionTrainConfig
    from pipeline.hops.training.publish import publish_run, run_dir
    from pipeline.hops.training.text import OpenClipTextEncoder
    from pipeline.hops.training.train import TrainingExample, run_fingerprint, train_diffusion
    from pipeline.lake.store import Lake
    from pipeline.models.training.samples import make_sample

    cfg = DiffusionTrainConfig(
        resolution=16,
        block_out_channels=(8, 16),
        attention_head_dim=4,
        train_steps=2,
        batch_size=4,
        warmup_steps=1,
        checkpoint_every=2,
    )
    examples = [
        TrainingExample(f"pair-{i}", s.captions["en"], s.image)
        for i, s in enumerate(make_sample("safety-asset", i, 0.0, 0.5) for i in range(4))
    ]
    encoder = OpenClipTextEncoder(clip)
    lake = Lake(str(tmp_path / "lake"))
    out = run_dir(lake, run_fingerprint(cfg, examples, encoder.source), tmp_path / "work")
    run = train_diffusion(examples, encoder, cfg, out, log=lambda m: None)
    publish_run(lake, run)
    prompts, seeds = ["a blue square", "a red circle"], [0, 1]  # the order the table sorts to
    spec = SampleSpec(steps=2)
    # the same seeded images the asset will draw, to pick a threshold that flags exactly one
    images = Generator(run.final.path, encoder).generate(
        [p for p in prompts for _ in seeds], [s for _ in prompts for s in seeds], spec
    )
    scores = SafetyFilter(clip, load_head("punsafe"), 0.5).scores(images)
    top, second = np.sort(scores.astype(np.float64))[-2:][::-1]
    assert top > 1.5 * second, scores  # noise-like samples score near 0, yet apart
    threshold = float(np.sqrt(top * second))
    flagged = int(np.argmax(scores))

    result = materialize(
        [samples],
        resources={
            "lake": LakeResource(root=str(tmp_path / "lake")),
            "clip_model": ClipModelResource(device="cpu", safety_threshold=threshold),
        },
        run_config={
            "ops": {TableName.SAMPLES: {"config": {"prompts": prompts, "seeds": seeds, "steps": 2}}}
        },
    )
    assert result.success
    table = lake.read(TableName.SAMPLES).sort_by([("prompt", "ascending"), ("seed", "ascending")])
    assert table.column("safety_flagged").to_pylist() == [i == flagged for i in range(4)]
    np.testing.assert_allclose(table.column("punsafe").to_numpy(), scores, rtol=1e-3, atol=1e-9)
    stored = [_pixels(png) for png in table.column("png").to_pylist()]
    for i, image in enumerate(images):
        expected = blur(image) if i == flagged else image
        np.testing.assert_array_equal(stored[i], np.asarray(expected))
    assert _edges(Image.fromarray(stored[flagged])) < _edges(images[flagged]) / 5
    # prompt following was judged on the unblurred pixels, which were never written
    unblurred = prompt_alignment(clip, images, prompts, len(seeds)).own
    screening = SafetyFilter(clip, load_head("punsafe"), threshold).screen(images)
    shown = prompt_alignment(clip, shown_images(images, screening), prompts, len(seeds)).own
    similarity = table.column("prompt_similarity").to_numpy()
    np.testing.assert_allclose(similarity, unblurred, atol=1e-5)
    assert abs(similarity[flagged] - shown[flagged]) > 1e-4
    meta = result.asset_materializations_for_node(TableName.SAMPLES)[0].metadata
    assert meta["safety_flagged"].value == 1 and meta["safety_threshold"].value == threshold
    decisions = meta["safety_decisions"].value
    assert [d["flagged"] for d in decisions] == [i == flagged for i in range(4)]
    assert [(d["prompt"], d["seed"]) for d in decisions] == [(p, s) for p in prompts for s in seeds]
    assert 0.0 <= meta["safety_32px_degraded_false_negative_rate"].value <= 1.0
    assert meta["safety_calibration"].value["matches_head"] is True
