"""Diffusion training, resume, latent mode and sampling through the public functions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from pipeline.hops.clip.embed import ClipModel, ClipSpec
from pipeline.hops.samples.sample import Generator, SampleSpec
from pipeline.hops.training.model import DiffusionTrainConfig
from pipeline.hops.training.text import OpenClipTextEncoder
from pipeline.hops.training.train import TrainingExample, train_diffusion
from pipeline.models.training.samples import make_sample

TINY = DiffusionTrainConfig(
    resolution=16,
    block_out_channels=(8, 16),
    attention_head_dim=4,
    train_steps=6,
    batch_size=4,
    warmup_steps=1,
    checkpoint_every=3,
)


@pytest.fixture(scope="module")
def text_encoder():
    return OpenClipTextEncoder(ClipModel(ClipSpec(device="cpu")))


@pytest.fixture(scope="module")
def examples():
    out = []
    for i in range(10):
        s = make_sample("test-diffusion", i, 0.0, 0.0)
        out.append(TrainingExample(f"pair-{i:02d}", s.captions["en"], s.image))
    return out


def _weights(run) -> dict[str, torch.Tensor]:
    return load_file(f"{run.final.path}/unet/diffusion_pytorch_model.safetensors")


def test_resumed_run_equals_uninterrupted_run(tmp_path, examples, text_encoder):
    straight = train_diffusion(examples, text_encoder, TINY, tmp_path / "a", log=lambda m: None)
    first = train_diffusion(
        examples, text_encoder, TINY, tmp_path / "b", log=lambda m: None, max_steps_this_call=3
    )
    assert first.steps_this_call == 3 and [c.step for c in first.checkpoints] == [3]
    resumed = train_diffusion(examples, text_encoder, TINY, tmp_path / "b", log=lambda m: None)
    assert resumed.resumed_from == 3 and resumed.steps_this_call == 3
    assert [c.step for c in resumed.checkpoints] == [3, 6]
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-4)
    # a finished run resumes to nothing
    again = train_diffusion(examples, text_encoder, TINY, tmp_path / "b", log=lambda m: None)
    assert again.steps_this_call == 0 and again.final.sha256 == resumed.final.sha256


def test_manifest_says_which_pairs_trained_which_checkpoint(tmp_path, examples, text_encoder):
    run = train_diffusion(examples, text_encoder, TINY, tmp_path / "run", log=lambda m: None)
    rows = run.manifest.to_pylist()
    by_checkpoint: dict[str, list[dict]] = {}
    for row in rows:
        by_checkpoint.setdefault(row["checkpoint_sha256"], []).append(row)
    assert set(by_checkpoint) == {c.sha256 for c in run.checkpoints}
    # every draw is counted: steps x batch per checkpoint
    for ck in run.checkpoints:
        assert sum(r["times_seen"] for r in by_checkpoint[ck.sha256]) == ck.step * TINY.batch_size
    final_pairs = {r["pair_id"] for r in by_checkpoint[run.final.sha256]}
    assert final_pairs <= {e.pair_id for e in examples}
    info = json.loads((tmp_path / "run" / "training.json").read_text())
    assert info["checkpoints"][-1]["sha256"] == run.final.sha256
    assert info["text_encoder"] == text_encoder.source


def test_other_data_in_the_same_directory_is_refused(tmp_path, examples, text_encoder):
    train_diffusion(examples, text_encoder, TINY, tmp_path / "run", log=lambda m: None)
    with pytest.raises(ValueError, match="different run"):
        train_diffusion(examples[:5], text_encoder, TINY, tmp_path / "run", log=lambda m: None)
    with pytest.raises(ValueError, match="no training examples"):
        train_diffusion([], text_encoder, TINY, tmp_path / "empty", log=lambda m: None)


def test_sampling_is_seeded_and_every_scheduler_works(tmp_path, examples, text_encoder):
    run = train_diffusion(examples, text_encoder, TINY, tmp_path / "run", log=lambda m: None)
    gen = Generator(run.final.path, text_encoder, device="cpu")
    assert gen.sha256 == run.final.sha256
    spec = SampleSpec(steps=4)
    one = gen.generate(["a red circle", "a blue square"], [1, 2], spec)
    two = gen.generate(["a red circle", "a blue square"], [1, 2], spec)
    assert [im.size for im in one] == [(16, 16), (16, 16)]
    assert np.array_equal(np.asarray(one[0]), np.asarray(two[0]))
    assert not np.array_equal(np.asarray(one[0]), np.asarray(one[1]))
    for name in ("ddpm", "dpm"):
        assert len(gen.generate(["a red circle"], [0], SampleSpec(steps=3, scheduler=name))) == 1
    with pytest.raises(ValueError, match="scheduler"):
        gen.generate(["x"], [0], SampleSpec(steps=2, scheduler="euler-ish"))


def test_latent_mode_trains_and_decodes_through_the_vae(tmp_path, examples, text_encoder):
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=32,
    )
    vae.save_pretrained(tmp_path / "vae")
    cfg = DiffusionTrainConfig(
        resolution=32,
        vae=str(tmp_path / "vae"),
        block_out_channels=(8, 16),
        attention_head_dim=4,
        train_steps=2,
        batch_size=2,
        warmup_steps=1,
        checkpoint_every=2,
    )
    run = train_diffusion(examples, text_encoder, cfg, tmp_path / "run", log=lambda m: None)
    gen = Generator(run.final.path, text_encoder, device="cpu")
    assert gen.unet.config.in_channels == 4 and gen.unet.config.sample_size == 16
    images = gen.generate(["a red circle"], [0], SampleSpec(steps=2))
    assert images[0].size == (32, 32)


def _write_clip_tokenizer(folder) -> None:
    """HF CLIPTokenizer files built from open_clip's BPE merges (the same vocabulary)."""
    import gzip

    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    with gzip.open(default_bpe()) as fh:
        merges = fh.read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


def test_fine_tunes_a_local_stable_diffusion_directory(tmp_path, examples):
    """A Stable Diffusion layout (unet/, vae/, text_encoder/, tokenizer/, scheduler/), tiny."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    sd = tmp_path / "tiny-sd"
    _write_clip_tokenizer(sd / "tokenizer")
    tokenizer = CLIPTokenizer(
        str(sd / "tokenizer/vocab.json"), str(sd / "tokenizer/merges.txt"), model_max_length=77
    )
    tokenizer.save_pretrained(sd / "tokenizer")
    text = CLIPTextModel(CLIPTextConfig(hidden_size=32, intermediate_size=64,
                                        num_attention_heads=4, num_hidden_layers=2,
                                        max_position_embeddings=77))  # fmt: skip
    text.save_pretrained(sd / "text_encoder")
    AutoencoderKL(block_out_channels=(8, 16), latent_channels=4, norm_num_groups=8,
                  down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2).save_pretrained(sd / "vae")  # fmt: skip
    UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
                         block_out_channels=(16, 32), norm_num_groups=8, cross_attention_dim=32,
                         down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                         up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                         attention_head_dim=4).save_pretrained(sd / "unet")  # fmt: skip
    DDPMScheduler(num_train_timesteps=100).save_pretrained(sd / "scheduler")

    from pipeline.hops.training.model import text_encoder_for

    cfg = DiffusionTrainConfig(resolution=32, sd_checkpoint=str(sd), train_steps=2,
                               batch_size=2, warmup_steps=1, checkpoint_every=2)  # fmt: skip
    encoder = text_encoder_for(cfg)
    assert encoder.hidden_size == 32 and encoder.source.startswith("tiny-sd/text_encoder@")
    run = train_diffusion(examples, encoder, cfg, tmp_path / "run", log=lambda m: None)
    before = load_file(sd / "unet" / "diffusion_pytorch_model.safetensors")
    after = _weights(run)
    assert before.keys() == after.keys()  # the SD UNet itself was fine-tuned
    assert any(not torch.equal(before[k], after[k]) for k in before)
    gen = Generator(run.final.path, encoder, device="cpu")
    assert gen.scheduler("ddim").config.num_train_timesteps == 100
    assert gen.generate(["a red circle"], [0], SampleSpec(steps=2))[0].size == (32, 32)
