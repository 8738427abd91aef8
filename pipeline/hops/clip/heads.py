"""Heads over CLIP image embeddings: punsafe, pwatermark and the aesthetic score.

Architectures follow LAION's published heads, so their weights load by state dict:

- the improved aesthetic predictor (``sac+logos+ava1-l14-linearMSE.pth``): Linear layers
  768→1024→128→64→16→1 with dropout between the first four and no activations;
- the H/14 NSFW detector from clip-retrieval: Linear+ReLU+Dropout blocks
  1024→1024→2048→1024→256→128, then 128→16→1.

Sizes are read from the state dict, so the same code serves the project's small heads, which
are trained over the small default CLIP (``pipeline.models.training.train_heads``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipeline.hops.clip.embed import file_sha256
from pipeline.models import MODELS_DIR

DEFAULT_HEADS_DIR = MODELS_DIR / "heads"
AESTHETIC_HIDDEN = (1024, 128, 64, 16)
AESTHETIC_DROPOUT = (0.2, 0.2, 0.1)
SAFETY_HIDDEN = (1024, 2048, 1024, 256, 128, 16)


class EmbeddingMLP(nn.Module):
    """``layers``: [Linear, (ReLU), Dropout] per hidden size but the last, then two Linears."""

    def __init__(
        self,
        input_size: int,
        hidden: tuple[int, ...],
        relu: bool,
        dropout: tuple[float, ...] | float = 0.2,
        sigmoid: bool = False,
    ) -> None:
        super().__init__()
        self.input_size, self.hidden, self.relu, self.sigmoid = input_size, hidden, relu, sigmoid
        drops = dropout if isinstance(dropout, tuple) else (dropout,) * (len(hidden) - 1)
        modules: list[nn.Module] = []
        width = input_size
        for size, p in zip(hidden[:-1], drops, strict=True):
            modules.append(nn.Linear(width, size))
            if relu:
                modules.append(nn.ReLU())
            modules.append(nn.Dropout(p))
            width = size
        modules += [nn.Linear(width, hidden[-1]), nn.Linear(hidden[-1], 1)]
        self.layers = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(x).squeeze(-1)
        return torch.sigmoid(out) if self.sigmoid else out


def aesthetic_mlp(input_size: int = 768) -> EmbeddingMLP:
    """LAION's improved aesthetic predictor (scores about 1-10)."""
    return EmbeddingMLP(input_size, AESTHETIC_HIDDEN, relu=False, dropout=AESTHETIC_DROPOUT)


def safety_mlp(input_size: int = 1024, hidden: tuple[int, ...] = SAFETY_HIDDEN) -> EmbeddingMLP:
    """LAION's H/14 NSFW detector layout (probability of unsafe)."""
    return EmbeddingMLP(input_size, hidden, relu=True, dropout=0.2, sigmoid=True)


HEAD_KINDS = ("punsafe", "pwatermark", "aesthetic")


def _linear_shapes(state: dict[str, torch.Tensor]) -> list[tuple[int, int]]:
    keys = sorted(
        (k for k in state if k.startswith("layers.") and k.endswith(".weight")),
        key=lambda k: int(k.split(".")[1]),
    )
    return [tuple(state[k].shape) for k in keys]  # type: ignore[misc]


def _read_state(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as fh:
            return {k: fh.get_tensor(k) for k in fh.keys()}, dict(fh.metadata() or {})  # noqa: SIM118
    state = torch.load(path, map_location="cpu", weights_only=True)
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state, {}


def head_from_state(kind: str, state: dict[str, torch.Tensor]) -> EmbeddingMLP:
    """Build the head whose shapes the state dict has, and load it (strictly)."""
    shapes = _linear_shapes(state)
    if len(shapes) < 2:
        raise ValueError(f"{kind} head: expected Linear layers under 'layers.N', got {list(state)}")
    input_size = shapes[0][1]
    hidden = tuple(out for out, _ in shapes[:-1])
    if kind == "aesthetic":
        drops = AESTHETIC_DROPOUT if len(hidden) == 4 else (0.2,) * (len(hidden) - 1)
        model = EmbeddingMLP(input_size, hidden, relu=False, dropout=drops)
    else:
        model = EmbeddingMLP(input_size, hidden, relu=True, dropout=0.2, sigmoid=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


@dataclass
class Head:
    kind: str
    model: EmbeddingMLP
    source: str
    sha256: str | None

    @property
    def input_size(self) -> int:
        return self.model.input_size

    @torch.inference_mode()
    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        if embeddings.shape[-1] != self.input_size:
            raise ValueError(
                f"{self.kind} head ({self.source}) takes {self.input_size}-d embeddings, "
                f"got {embeddings.shape[-1]}-d: pair it with the CLIP model it was trained on"
            )
        x = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32))
        return self.model(x).numpy().astype(np.float32)


def load_head(kind: str, path: str | Path | None = None) -> Head:
    """A head from a ``.pth``/``.safetensors`` state dict; the shipped default when no path."""
    if kind not in HEAD_KINDS:
        raise ValueError(f"unknown head {kind!r}; known: {HEAD_KINDS}")
    file = Path(path) if path else DEFAULT_HEADS_DIR / f"{kind}.safetensors"
    if not file.is_file():
        raise FileNotFoundError(f"{kind} head weights not found: {file}")
    state, _ = _read_state(file)
    return Head(kind, head_from_state(kind, state), str(file), file_sha256(file))


def save_head(head: EmbeddingMLP, path: str | Path, info: dict) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in head.state_dict().items()}
    save_file(state, str(path), metadata={"info": json.dumps(info)})
