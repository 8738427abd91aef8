"""Train the default punsafe, pwatermark and aesthetic heads over the default CLIP's embeddings.

    python -m pipeline.models.training.train_heads --clip pipeline/models/tiny-clip \
        --out pipeline/models/heads

Labels come from the synthetic drawings: hazard-striped "unsafe" images, tiled stock-photo
watermarks, and the aesthetic score the synthetic web assigns to each visual (1-10).
Writes ``punsafe.safetensors``, ``pwatermark.safetensors``, ``aesthetic.safetensors`` and
``heads_report.json`` (held-out ROC AUC for the tags, MAE and Pearson r for aesthetics).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.hops.clip.embed import ClipModel, ClipSpec
from pipeline.hops.clip.heads import EmbeddingMLP, aesthetic_mlp, save_head
from pipeline.models.training.train_clip import render_samples, to_tensor


@dataclass
class HeadsTrainConfig:
    train_samples: int = 8_000
    heldout_samples: int = 1_000
    tag_hidden: tuple[int, ...] = (256, 64, 16)
    epochs: int = 60
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0
    workers: int = 2
    tag: str = "heads-train"
    heldout_tag: str = "heads-heldout"


def embed_arrays(clip: ClipModel, images: np.ndarray, batch: int = 512) -> np.ndarray:
    """Embed pre-cropped uint8 images (the size the model takes) with the model's normalization."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch):
            x = to_tensor(images[start : start + batch]).to(clip.device, dtype=clip._dtype)
            out.append(clip.model.encode_image(x, normalize=True).float().cpu().numpy())
    return np.concatenate(out)


def fit(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, cfg: HeadsTrainConfig, loss: str):
    """Full-batch-shuffled minibatch training with AdamW."""
    gen = torch.Generator().manual_seed(cfg.seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    pos_weight = None
    if loss == "bce":
        pos = float(yt.mean())
        pos_weight = torch.tensor((1 - pos) / max(pos, 1e-6))
    model.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            if loss == "bce":
                logits = model.layers(xt[idx]).squeeze(-1)
                value = torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, yt[idx], pos_weight=pos_weight
                )
            else:
                value = torch.nn.functional.mse_loss(model(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
    return model.eval()


def train_heads(
    clip_dir: str | Path, out_dir: str | Path, cfg: HeadsTrainConfig, log=print
) -> dict:
    from scipy.stats import pearsonr
    from sklearn.metrics import roc_auc_score

    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clip = ClipModel(ClipSpec(model=f"local-dir:{clip_dir}", device="cpu"))
    size = clip.preprocess.transforms[0].size
    size = size if isinstance(size, int) else size[0]
    train = render_samples(cfg.tag, cfg.train_samples, size, cfg.workers)
    held = render_samples(cfg.heldout_tag, cfg.heldout_samples, size, cfg.workers)
    x_train, x_held = embed_arrays(clip, train.images), embed_arrays(clip, held.images)
    log(f"embedded {len(x_train)}+{len(x_held)} samples in {time.perf_counter() - started:.0f} s")
    dim = x_train.shape[1]
    report: dict = {"clip_model_id": clip.model_id, "config": asdict(cfg)}
    info = {"clip_model_id": clip.model_id, "input_size": dim}
    for kind, labels, held_labels in (
        ("punsafe", train.unsafe, held.unsafe),
        ("pwatermark", train.watermark, held.watermark),
    ):
        head = EmbeddingMLP(dim, cfg.tag_hidden, relu=True, dropout=0.2, sigmoid=True)
        fit(head, x_train, labels, cfg, "bce")
        with torch.inference_mode():
            pred = head(torch.from_numpy(x_held)).numpy()
        report[f"{kind}_auc"] = float(roc_auc_score(held_labels, pred))
        report[f"{kind}_positives_heldout"] = int(held_labels.sum())
        save_head(head, out / f"{kind}.safetensors", {**info, "kind": kind})
        log(f"{kind}: held-out ROC AUC {report[f'{kind}_auc']:.3f}")
    head = aesthetic_mlp(dim)
    fit(head, x_train, train.aesthetic, cfg, "mse")
    with torch.inference_mode():
        pred = head(torch.from_numpy(x_held)).numpy()
    report["aesthetic_mae"] = float(np.abs(pred - held.aesthetic).mean())
    report["aesthetic_pearson"] = float(pearsonr(pred, held.aesthetic).statistic)
    save_head(head, out / "aesthetic.safetensors", {**info, "kind": "aesthetic"})
    log(f"aesthetic: MAE {report['aesthetic_mae']:.2f}, r {report['aesthetic_pearson']:.3f}")
    report["seconds"] = round(time.perf_counter() - started, 1)
    (out / "heads_report.json").write_text(json.dumps(report, indent=2))
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default="pipeline/models/tiny-clip")
    parser.add_argument("--out", default="pipeline/models/heads")
    parser.add_argument("--train-samples", type=int, default=HeadsTrainConfig.train_samples)
    parser.add_argument("--epochs", type=int, default=HeadsTrainConfig.epochs)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    cfg = HeadsTrainConfig(train_samples=args.train_samples, epochs=args.epochs)
    train_heads(args.clip, args.out, cfg)


if __name__ == "__main__":
    main()
