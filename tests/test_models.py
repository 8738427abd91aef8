"""The default models: CLIP and heads load, separate matching captions, and still train."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.hops.clip.embed import DEFAULT_CLIP_DIR, ClipModel, ClipSpec
from pipeline.hops.clip.heads import (
    AESTHETIC_HIDDEN,
    DEFAULT_HEADS_DIR,
    aesthetic_mlp,
    head_from_state,
    load_head,
    safety_mlp,
)
from pipeline.models.training.samples import make_sample


@pytest.fixture(scope="module")
def clip() -> ClipModel:
    return ClipModel(ClipSpec(device="cpu"))


def test_default_clip_loads_through_open_clip_local_dir(clip: ClipModel) -> None:
    assert clip.spec.model == f"local-dir:{DEFAULT_CLIP_DIR}"
    assert clip.model_id.startswith("tiny-clip@") and clip.device == "cpu"
    emb = clip.embed_texts(["a red circle on a white background", "ein blaues Quadrat"])
    assert emb.shape == (2, clip.embed_dim)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)


def test_shipped_clip_reports_heldout_auc_above_target() -> None:
    report = json.loads((DEFAULT_CLIP_DIR / "training_report.json").read_text())
    assert report["auc"] >= 0.95, report


def test_default_clip_separates_matching_from_mismatching_captions(clip: ClipModel) -> None:
    """Fresh samples (a tag the training never used): own caption beats another's."""
    from sklearn.metrics import roc_auc_score

    samples = [make_sample("test-heldout", i) for i in range(120)]
    images = clip.embed_images([s.image for s in samples])
    langs = ["en", "de", "fr", "es", "it", "nl"]
    own = clip.embed_texts([s.captions[langs[i % 6]] for i, s in enumerate(samples)])
    other = clip.embed_texts(
        [samples[(i + 7) % len(samples)].captions[langs[i % 6]] for i in range(len(samples))]
    )
    pos, neg = (images * own).sum(1), (images * other).sum(1)
    auc = roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg])
    assert auc >= 0.9, auc


def test_default_heads_load_and_score(clip: ClipModel) -> None:
    samples = [make_sample("heads-test", i, watermark_share=0.5, unsafe_share=0.3)
               for i in range(60)]  # fmt: skip
    emb = clip.embed_images([s.image for s in samples])
    for kind in ("punsafe", "pwatermark"):
        head = load_head(kind)
        assert head.source.startswith(str(DEFAULT_HEADS_DIR)) and len(head.sha256) == 64
        p = head(emb)
        assert p.shape == (60,) and (p >= 0).all() and (p <= 1).all()
    unsafe = load_head("punsafe")(emb)
    flags = np.array([s.unsafe for s in samples])
    assert unsafe[flags].mean() > unsafe[~flags].mean() + 0.3
    aesthetic = load_head("aesthetic")(emb)
    truth = np.array([s.aesthetic for s in samples])
    assert np.corrcoef(aesthetic, truth)[0, 1] > 0.3


def test_heads_load_from_state_dicts_of_laion_shapes(tmp_path: Path) -> None:
    """LAION's aesthetic predictor (768-d ViT-L/14) and the H/14 NSFW detector (1024-d)."""
    aesthetic_state = aesthetic_mlp(768).state_dict()
    assert [tuple(v.shape) for k, v in aesthetic_state.items() if k.endswith("weight")] == [
        (1024, 768), (128, 1024), (64, 128), (16, 64), (1, 16)
    ]  # fmt: skip
    path = tmp_path / "sac+logos+ava1-l14-linearMSE.pth"
    torch.save(aesthetic_state, path)
    head = load_head("aesthetic", path)
    assert head.input_size == 768 and head.model.hidden == AESTHETIC_HIDDEN
    assert head(np.random.default_rng(0).normal(size=(3, 768)).astype(np.float32)).shape == (3,)
    with pytest.raises(ValueError, match="768-d embeddings"):
        head(np.zeros((1, 512), np.float32))

    safety_state = safety_mlp(1024).state_dict()
    path = tmp_path / "clip_autokeras_binary_nsfw_h14.pth"
    torch.save(safety_state, path)
    punsafe = load_head("punsafe", path)
    assert punsafe.input_size == 1024
    p = punsafe(np.random.default_rng(1).normal(size=(4, 1024)).astype(np.float32))
    assert ((p >= 0) & (p <= 1)).all()
    bad = {k: v for k, v in safety_state.items() if not k.startswith("layers.0.")}
    with pytest.raises((RuntimeError, ValueError)):
        head_from_state("punsafe", {**bad, "layers.0.weight": torch.zeros(3, 3)})


def test_training_scripts_still_train(tmp_path: Path) -> None:
    """A few steps on a few hundred samples: the loss falls and the files load again."""
    from pipeline.models.training.train_clip import ClipTrainConfig, train_clip
    from pipeline.models.training.train_heads import HeadsTrainConfig, train_heads

    cfg = ClipTrainConfig(
        train_samples=256, heldout_samples=64, steps=30, batch_size=32, warmup=5, workers=1,
        vision_layers=1, text_layers=1,
    )  # fmt: skip
    report = train_clip(cfg, tmp_path / "clip", log=lambda _: None)
    assert report["last_loss"] < report["first_loss"]
    assert 0.0 <= report["auc"] <= 1.0
    model = ClipModel(ClipSpec(model=f"local-dir:{tmp_path / 'clip'}", device="cpu"))
    assert model.embed_texts(["a red circle"]).shape == (1, cfg.embed_dim)
    heads = train_heads(
        tmp_path / "clip", tmp_path / "heads",
        HeadsTrainConfig(train_samples=128, heldout_samples=64, epochs=2, workers=1),
        log=lambda _: None,
    )  # fmt: skip
    assert {"punsafe_auc", "pwatermark_auc", "aesthetic_mae"} <= set(heads)
    assert load_head("aesthetic", tmp_path / "heads" / "aesthetic.safetensors").input_size == 128
