"""What the generator is made of: the UNet, the optional VAE, and how a run is configured.

Pixel mode (the small default) denoises RGB images directly. Latent mode, when a VAE is
configured, denoises ``AutoencoderKL`` latents as Stable Diffusion does; with
``sd_checkpoint`` it fine-tunes a local Stable Diffusion directory (``unet/``, ``vae/``,
``text_encoder/``, ``tokenizer/``) instead of starting from a fresh UNet.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DiffusionTrainConfig:
    """One training run. Defaults: a pixel-space model that trains on 2 CPU cores in minutes."""

    resolution: int = 32
    """Training resolution in pixels (images are resized to it)."""
    vae: str | None = None
    """An ``AutoencoderKL`` directory: latent mode. None: pixel mode."""
    sd_checkpoint: str | None = None
    """A local Stable Diffusion directory to fine-tune (its UNet, VAE and text encoder)."""
    block_out_channels: tuple[int, ...] = (16, 32, 64)
    layers_per_block: int = 1
    attention_head_dim: int = 8
    train_steps: int = 500
    batch_size: int = 16
    learning_rate: float = 1e-3
    warmup_steps: int = 50
    caption_dropout: float = 0.1
    """Share of captions replaced by "" so classifier-free guidance works at sampling time."""
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "sample"
    """What the UNet predicts: ``epsilon`` (DDPM, SD 1.x), ``v_prediction`` (SD 2.x) or
    ``sample`` (x0). A few-minute CPU run only learns the images themselves with ``sample``
    (measured: after 400 steps, epsilon and v still sample noise)."""
    checkpoint_every: int = 250
    mixed_precision: str = "no"
    """accelerate's ``no`` / ``fp16`` / ``bf16`` (use fp16 or bf16 on a GPU)."""
    seed: int = 0

    @property
    def latent(self) -> bool:
        return self.vae is not None or self.sd_checkpoint is not None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DiffusionTrainConfig:
        return cls(**{**values, "block_out_channels": tuple(values["block_out_channels"])})

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["block_out_channels"] = list(self.block_out_channels)
        return out


def noise_scheduler(cfg: DiffusionTrainConfig):
    from diffusers import DDPMScheduler

    if cfg.sd_checkpoint:
        return DDPMScheduler.from_pretrained(cfg.sd_checkpoint, subfolder="scheduler")
    return DDPMScheduler(
        num_train_timesteps=cfg.num_train_timesteps,
        beta_schedule=cfg.beta_schedule,
        prediction_type=cfg.prediction_type,
    )


def load_vae(cfg: DiffusionTrainConfig):
    """The frozen ``AutoencoderKL`` of latent mode (None in pixel mode)."""
    from diffusers import AutoencoderKL

    if cfg.sd_checkpoint:
        vae = AutoencoderKL.from_pretrained(cfg.sd_checkpoint, subfolder="vae")
    elif cfg.vae:
        vae = AutoencoderKL.from_pretrained(cfg.vae)
    else:
        return None
    return vae.eval().requires_grad_(False)


def sample_shape(cfg: DiffusionTrainConfig, vae) -> tuple[int, int]:
    """(channels, side) of what the UNet denoises."""
    if vae is None:
        return 3, cfg.resolution
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    return int(vae.config.latent_channels), cfg.resolution // factor


def build_unet(cfg: DiffusionTrainConfig, cross_attention_dim: int, vae=None):
    """A fresh text-conditional UNet, or the one of ``sd_checkpoint`` to fine-tune."""
    from diffusers import UNet2DConditionModel

    if cfg.sd_checkpoint:
        return UNet2DConditionModel.from_pretrained(cfg.sd_checkpoint, subfolder="unet")
    channels, side = sample_shape(cfg, vae)
    depth = len(cfg.block_out_channels)
    return UNet2DConditionModel(
        sample_size=side,
        in_channels=channels,
        out_channels=channels,
        layers_per_block=cfg.layers_per_block,
        block_out_channels=tuple(cfg.block_out_channels),
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (depth - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (depth - 1) + ("UpBlock2D",),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=cfg.attention_head_dim,
        norm_num_groups=min(32, min(cfg.block_out_channels)),
    )


def text_encoder_for(cfg: DiffusionTrainConfig, clip=None):
    """The SD checkpoint's own text encoder, else the given open_clip model's text tower."""
    from pipeline.hops.training.text import HFClipTextEncoder, OpenClipTextEncoder

    if cfg.sd_checkpoint and (Path(cfg.sd_checkpoint) / "text_encoder").is_dir():
        return HFClipTextEncoder(cfg.sd_checkpoint)
    if clip is None:
        raise ValueError("pixel or VAE-only latent mode needs an open_clip model for the text")
    return OpenClipTextEncoder(clip)
