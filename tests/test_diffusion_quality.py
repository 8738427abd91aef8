"""The CPU default learns to follow prompts; the replication audit tells a copying model from a
normal one. Trains real models (minutes on 2 cores), hence slow."""

from __future__ import annotations

import pytest

from assets_defs.assets.diffusion_model import DiffusionModelConfig
from assets_defs.assets.samples import DEFAULT_PROMPTS, ReplicationAuditConfig
from pipeline.hops.audit.replication import audit_generator, descriptor_for
from pipeline.hops.clip.embed import ClipModel, ClipSpec
from pipeline.hops.samples.sample import Generator, SampleSpec, prompt_alignment
from pipeline.hops.training.model import DiffusionTrainConfig
from pipeline.hops.training.text import OpenClipTextEncoder
from pipeline.hops.training.train import TrainingExample, train_diffusion
from pipeline.models.training.samples import make_sample

pytestmark = pytest.mark.slow
HEAVY = pytest.mark.heavy
"""Trains the asset's default model (500 steps, about 4 minutes on 2 cores): a heavy proof, run
by `make test-heavy`, not by `make test`."""


@pytest.fixture(scope="module")
def clip():
    return ClipModel(ClipSpec(device="cpu"))


def _examples(tag: str, n: int) -> list[TrainingExample]:
    out = []
    for i in range(n):
        s = make_sample(tag, i, 0.0, 0.0)
        out.append(TrainingExample(f"{tag}-{i:04d}", s.captions["en"], s.image))
    return out


@pytest.fixture(scope="module")
def normal(tmp_path_factory, clip):
    """The asset's default configuration on 600 drawn images."""
    examples = _examples("quality", 600)
    cfg = DiffusionModelConfig().train_config()
    run = train_diffusion(
        examples,
        OpenClipTextEncoder(clip),
        cfg,
        tmp_path_factory.mktemp("normal"),
        log=lambda m: None,
    )
    return run, examples


def _audit(run, examples, clip, n: int):
    rules = ReplicationAuditConfig().rules()
    gen = Generator(run.final.path, OpenClipTextEncoder(clip), device="cpu")
    return audit_generator(
        gen, examples, examples[:n], rules, SampleSpec(), descriptor_for(rules, clip)
    )


@HEAVY
def test_default_samples_follow_their_prompts(normal, clip):
    run, _ = normal
    gen = Generator(run.final.path, OpenClipTextEncoder(clip), device="cpu")
    seeds = [0, 1, 2, 3]
    prompts = [p for p in DEFAULT_PROMPTS for _ in seeds]
    images = gen.generate(prompts, seeds * len(DEFAULT_PROMPTS), SampleSpec())
    alignment = prompt_alignment(clip, images, DEFAULT_PROMPTS, len(seeds))
    own, others = alignment.own, alignment.others
    assert own.mean() > others.mean() + 0.05
    assert (own > others).mean() >= 0.75
    assert alignment.top1 > 1.2 / len(DEFAULT_PROMPTS)  # chance: 1/6


@HEAVY
def test_audit_passes_a_normally_trained_model(normal, clip):
    run, examples = normal
    result = _audit(run, examples, clip, 24)
    assert result.flagged_count == 0, result.table.to_pylist()


def _square(example: TrainingExample) -> TrainingExample:
    """The centre square of the image: all a model trains on (it centre-crops), so a copy of it
    is a copy of the whole reference image the audit compares with."""
    w, h = example.image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    image = example.image.crop((left, top, left + side, top + side))
    return TrainingExample(example.pair_id, example.caption, image)


def test_audit_flags_a_deliberately_overfit_model(tmp_path, clip):
    # Square images: the pixel descriptor squashes a whole image to 16x16, so a perfect copy of
    # a non-square one's centre crop scores only 0.18 against it (image 3 here, uncropped).
    # 16 px (the descriptor's side) and two wide levels memorize the 4 images in 400 steps.
    # Measured, seeds 0-4 (one torch thread): 4/4 flagged, the 3rd-best similarity 0.83-0.91
    # (threshold 0.5), every margin 0.69-1.13 (min 0.25). 800 steps at 32 px with
    # (16, 32, 64) took 4x as long and flagged 3 with the 3rd-best at 0.72-0.79.
    examples = [_square(e) for e in _examples("overfit", 4)]
    cfg = DiffusionTrainConfig(
        resolution=16,
        block_out_channels=(32, 64),
        batch_size=4,
        train_steps=400,
        learning_rate=2e-3,
        warmup_steps=10,
        checkpoint_every=400,
    )
    run = train_diffusion(examples, OpenClipTextEncoder(clip), cfg, tmp_path, log=lambda m: None)
    result = _audit(run, examples, clip, 4)
    assert result.flagged_count >= 3, result.table.to_pylist()
    flagged = result.table.filter(result.table.column("flagged")).to_pylist()
    assert all(row["nearest_is_prompt_pair"] for row in flagged)
