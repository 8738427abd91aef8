"""Train the small default CLIP on synthetic images and their captions (six languages).

    python -m pipeline.models.training.train_clip --out pipeline/models/tiny-clip

Writes ``open_clip_config.json`` and ``open_clip_model.safetensors`` (open_clip's
``local-dir:`` layout) and ``training_report.json`` with the held-out ROC AUC: how well the
model's cosine similarity separates an image's own caption from another image's caption.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from pipeline.models.training.samples import make_sample, pick_language, to_array, training_caption

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ClipTrainConfig:
    image_size: int = 64
    embed_dim: int = 128
    vision_width: int = 128
    vision_layers: int = 3
    patch_size: int = 8
    text_width: int = 96
    text_layers: int = 3
    text_heads: int = 4
    context_length: int = 32
    train_samples: int = 16_000
    heldout_samples: int = 1_000
    steps: int = 1_500
    batch_size: int = 128
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.1
    seed: int = 0
    workers: int = 2
    tag: str = "clip-train"
    heldout_tag: str = "clip-heldout"

    def model_cfg(self) -> dict:
        return {
            "embed_dim": self.embed_dim,
            "vision_cfg": {
                "image_size": self.image_size,
                "layers": self.vision_layers,
                "width": self.vision_width,
                "patch_size": self.patch_size,
                "head_width": 32,
            },
            "text_cfg": {
                "context_length": self.context_length,
                "vocab_size": 49408,
                "width": self.text_width,
                "heads": self.text_heads,
                "layers": self.text_layers,
            },
        }


@dataclass
class SampleSet:
    """Pre-rendered images (uint8, N x S x S x 3) with captions and labels."""

    images: np.ndarray
    captions: list[dict[str, str]]
    watermark: np.ndarray
    unsafe: np.ndarray
    aesthetic: np.ndarray
    meta: dict = field(default_factory=dict)


def _render_chunk(args: tuple[str, int, int, int]) -> tuple:
    tag, start, stop, size = args
    arrays, captions, wm, unsafe, aest = [], [], [], [], []
    for i in range(start, stop):
        s = make_sample(tag, i)
        arrays.append(to_array(s.image, size))
        captions.append(s.captions)
        wm.append(s.watermark)
        unsafe.append(s.unsafe)
        aest.append(s.aesthetic)
    return np.stack(arrays), captions, wm, unsafe, aest


def render_samples(tag: str, n: int, size: int, workers: int = 2) -> SampleSet:
    """Draw `n` samples (deterministic in `tag`) over `workers` processes."""
    chunk = max(1, math.ceil(n / (workers * 8)))
    jobs = [(tag, s, min(n, s + chunk), size) for s in range(0, n, chunk)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_render_chunk, jobs))
    else:
        parts = [_render_chunk(j) for j in jobs]
    return SampleSet(
        images=np.concatenate([p[0] for p in parts]),
        captions=[c for p in parts for c in p[1]],
        watermark=np.array([w for p in parts for w in p[2]], dtype=bool),
        unsafe=np.array([u for p in parts for u in p[3]], dtype=bool),
        aesthetic=np.array([a for p in parts for a in p[4]], dtype=np.float32),
    )


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> normalized float NCHW, as open_clip's preprocessing."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def build_model(cfg: ClipTrainConfig):
    import open_clip

    torch.manual_seed(cfg.seed)
    return open_clip.CLIP(**cfg.model_cfg())


def heldout_auc(model, tokenizer, heldout: SampleSet, seed: int = 1) -> dict[str, float]:
    """ROC AUC of cosine similarity: own caption (positive) against another image's caption."""
    from sklearn.metrics import roc_auc_score

    rng = random.Random(seed)
    n = len(heldout.captions)
    langs = [pick_language(rng) for _ in range(n)]
    own = [heldout.captions[i][langs[i]] for i in range(n)]
    others = [(i + rng.randrange(1, n)) % n for i in range(n)]
    other = [heldout.captions[j][langs[i]] for i, j in enumerate(others)]
    model.eval()
    with torch.inference_mode():
        img = model.encode_image(to_tensor(heldout.images), normalize=True)
        pos = (img * model.encode_text(tokenizer(own), normalize=True)).sum(-1).numpy()
        neg = (img * model.encode_text(tokenizer(other), normalize=True)).sum(-1).numpy()
    model.train()
    labels = np.r_[np.ones(n), np.zeros(n)]
    report = {"auc": float(roc_auc_score(labels, np.r_[pos, neg]))}
    for lang in sorted(set(langs)):
        mask = np.array([x == lang for x in langs])
        report[f"auc_{lang}"] = float(
            roc_auc_score(np.r_[np.ones(mask.sum()), np.zeros(mask.sum())],
                          np.r_[pos[mask], neg[mask]])
        )  # fmt: skip
    report["mean_similarity_match"] = float(pos.mean())
    report["mean_similarity_mismatch"] = float(neg.mean())
    return report


def train_clip(cfg: ClipTrainConfig, out_dir: str | Path, log=print) -> dict:
    """Train, evaluate on held-out samples, and save in open_clip's local-dir layout."""
    import open_clip
    from open_clip.loss import ClipLoss

    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train = render_samples(cfg.tag, cfg.train_samples, cfg.image_size, cfg.workers)
    heldout = render_samples(cfg.heldout_tag, cfg.heldout_samples, cfg.image_size, cfg.workers)
    log(f"rendered {cfg.train_samples}+{cfg.heldout_samples} samples in "
        f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    model = build_model(cfg)
    tokenizer = open_clip.get_tokenizer("ViT-B-32", context_length=cfg.context_length)
    loss_fn = ClipLoss()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [
        p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)
    ]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0},
        ],
        lr=cfg.lr,
    )

    def lr_at(step: int) -> float:
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))

    rng = random.Random(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    losses: list[float] = []
    model.train()
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        idx = torch.randint(0, len(train.captions), (cfg.batch_size,), generator=gen).numpy()
        images = to_tensor(train.images[idx])
        flip = torch.rand(len(idx), generator=gen) < 0.5
        images[flip] = images[flip].flip(-1)
        texts = tokenizer(
            [training_caption(train.captions[i], bool(train.watermark[i]), rng) for i in idx]
        )
        img_f, txt_f, scale = model(images, texts)
        loss = loss_fn(img_f, txt_f, scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(float(loss.detach()))
        if step % 100 == 0 or step == cfg.steps - 1:
            log(f"step {step} loss {np.mean(losses[-100:]):.3f}")
    report = heldout_auc(model, tokenizer, heldout)
    model.eval()
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, out / "open_clip_model.safetensors")
    (out / "open_clip_config.json").write_text(
        json.dumps(
            {
                "model_cfg": cfg.model_cfg(),
                "preprocess_cfg": {
                    "size": cfg.image_size,
                    "mean": list(OPENAI_MEAN),
                    "std": list(OPENAI_STD),
                    "interpolation": "bicubic",
                    "resize_mode": "shortest",
                },
            },
            indent=2,
        )
    )
    report.update(
        steps=cfg.steps,
        first_loss=float(np.mean(losses[:20])),
        last_loss=float(np.mean(losses[-100:])),
        seconds=round(time.perf_counter() - started, 1),
        config=asdict(cfg),
    )
    (out / "training_report.json").write_text(json.dumps(report, indent=2))
    log(f"held-out ROC AUC {report['auc']:.4f}")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="pipeline/models/tiny-clip")
    parser.add_argument("--steps", type=int, default=ClipTrainConfig.steps)
    parser.add_argument("--train-samples", type=int, default=ClipTrainConfig.train_samples)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = ClipTrainConfig(steps=args.steps, train_samples=args.train_samples)
    train_clip(cfg, args.out)


if __name__ == "__main__":
    main()
