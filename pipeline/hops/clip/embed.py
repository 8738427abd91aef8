"""CLIP models through open_clip: load by config, embed images and texts in batches.

A model is named the way open_clip names it: ``ViT-B-32`` with a pretrained tag
(``openai``, LAION-5B's filter model; needs the hub) or a checkpoint path, or
``local-dir:/path`` (``open_clip_config.json`` plus ``open_clip_model.safetensors``), which is
how the project's own small default model ships (see :data:`DEFAULT_CLIP_DIR`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pipeline.models import MODELS_DIR

DEFAULT_CLIP_DIR = MODELS_DIR / "tiny-clip"
DEFAULT_CLIP_MODEL = f"local-dir:{DEFAULT_CLIP_DIR}"


def pick_device(device: str = "auto") -> str:
    """``cuda`` when available (or asked for), else ``cpu``."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ClipSpec:
    """Which CLIP to load and how to run it."""

    model: str = DEFAULT_CLIP_MODEL
    pretrained: str | None = None
    """A pretrained tag (``openai``) or a checkpoint file; ignored for ``local-dir:``."""
    device: str = "auto"
    precision: str = "auto"
    """``auto``: fp16 on CUDA, fp32 on CPU."""
    batch_size: int = 256

    def weights_path(self) -> Path | None:
        if self.model.startswith("local-dir:"):
            folder = Path(self.model.removeprefix("local-dir:"))
            found = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
            return found[0] if found else None
        if self.pretrained and Path(self.pretrained).is_file():
            return Path(self.pretrained)
        return None


class ClipModel:
    """An open_clip model with its preprocessing and tokenizer, in eval mode."""

    def __init__(self, spec: ClipSpec) -> None:
        import open_clip

        self.spec = spec
        self.device = pick_device(spec.device)
        precision = spec.precision
        if precision == "auto":
            precision = "fp16" if self.device == "cuda" else "fp32"
        self.precision = precision
        model, _, preprocess = open_clip.create_model_and_transforms(
            spec.model, pretrained=spec.pretrained, device=self.device, precision=precision
        )
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(spec.model)
        self.embed_dim = int(self.model.text_projection.shape[1])

    @cached_property
    def model_id(self) -> str:
        """Names the weights: the model name plus the sha256 of its weight file or tag."""
        weights = self.spec.weights_path()
        tag = file_sha256(weights)[:16] if weights else (self.spec.pretrained or "random")
        name = "local-dir" if self.spec.model.startswith("local-dir:") else self.spec.model
        if name == "local-dir":
            name = Path(self.spec.model.removeprefix("local-dir:")).name
        return f"{name}@{tag}"

    @torch.inference_mode()
    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """L2-normalized image embeddings, float32, one row per image."""
        out = np.zeros((len(images), self.embed_dim), dtype=np.float32)
        step = self.spec.batch_size
        for start in range(0, len(images), step):
            batch = torch.stack([self.preprocess(im) for im in images[start : start + step]])
            batch = batch.to(self.device, dtype=self._dtype)
            feats = self.model.encode_image(batch, normalize=True)
            out[start : start + len(feats)] = feats.float().cpu().numpy()
        return out

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalized text embeddings, float32, one row per text."""
        out = np.zeros((len(texts), self.embed_dim), dtype=np.float32)
        step = self.spec.batch_size
        for start in range(0, len(texts), step):
            tokens = self.tokenizer(list(texts[start : start + step])).to(self.device)
            feats = self.model.encode_text(tokens, normalize=True)
            out[start : start + len(feats)] = feats.float().cpu().numpy()
        return out

    @property
    def _dtype(self) -> torch.dtype:
        return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision, torch.float32)


def cosine(images: np.ndarray, texts: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of normalized embeddings."""
    return np.einsum("ij,ij->i", images, texts).astype(np.float32)
