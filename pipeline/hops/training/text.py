"""Frozen text encoders that condition the UNet: per-token hidden states, as Stable Diffusion.

- :class:`OpenClipTextEncoder`: the text tower of an open_clip model (the project's CLIP
  filter model by default, so the same model filters the data and conditions the generator).
- :class:`HFClipTextEncoder`: a ``transformers`` ``CLIPTextModel`` with its tokenizer, as a
  Stable Diffusion checkpoint directory ships them (``text_encoder/`` and ``tokenizer/``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import torch


class TextEncoder(Protocol):
    hidden_size: int
    source: str
    """Names the weights (model id with a hash), for the training manifest."""

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """``[len(texts), tokens, hidden_size]`` float32 hidden states on the CPU."""
        ...


class OpenClipTextEncoder:
    """Per-token outputs of an open_clip text transformer (after ``ln_final``, before pooling)."""

    def __init__(self, clip) -> None:  # pipeline.hops.clip.embed.ClipModel
        self.clip = clip
        tower = getattr(clip.model, "text", clip.model)
        self._tower = tower
        self.hidden_size = int(tower.ln_final.weight.shape[0])
        self.source = clip.model_id

    @torch.inference_mode()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        tower = self._tower
        tokens = self.clip.tokenizer(list(texts)).to(self.clip.device)
        cast = tower.transformer.get_cast_dtype()
        x = tower.token_embedding(tokens).to(cast) + tower.positional_embedding.to(cast)
        x = tower.transformer(x, attn_mask=tower.attn_mask)
        return tower.ln_final(x).float().cpu()


class HFClipTextEncoder:
    """``CLIPTextModel`` + ``CLIPTokenizer`` from a Stable Diffusion checkpoint directory."""

    def __init__(self, checkpoint_dir: str | Path, device: str = "cpu") -> None:
        from transformers import CLIPTextModel, CLIPTokenizer

        from pipeline.hops.clip.embed import file_sha256

        root = Path(checkpoint_dir)
        self.tokenizer = CLIPTokenizer.from_pretrained(str(root / "tokenizer"))
        self.model = CLIPTextModel.from_pretrained(str(root / "text_encoder")).to(device).eval()
        self.device = device
        self.hidden_size = int(self.model.config.hidden_size)
        weights = sorted((root / "text_encoder").glob("*.safetensors"))
        tag = file_sha256(weights[0])[:16] if weights else "unknown"
        self.source = f"{root.name}/text_encoder@{tag}"

    @torch.inference_mode()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        batch = self.tokenizer(
            list(texts),
            padding="max_length",
            max_length=min(
                self.tokenizer.model_max_length, self.model.config.max_position_embeddings
            ),
            truncation=True,
            return_tensors="pt",
        )
        out = self.model(batch.input_ids.to(self.device))
        return out.last_hidden_state.float().cpu()
