"""Generate images from a trained checkpoint: DDIM (or DDPM) with classifier-free guidance."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pipeline.hops.clip.embed import file_sha256, pick_device
from pipeline.hops.training.model import DiffusionTrainConfig, load_vae, sample_shape

SCHEDULERS = ("ddim", "ddpm", "dpm")


@dataclass(frozen=True)
class SampleSpec:
    steps: int = 40
    guidance_scale: float = 3.0
    scheduler: str = "ddim"
    """``ddim``, ``ddpm`` or ``dpm`` (DPMSolver++), built from the training scheduler's config."""
    device: str = "auto"


class Generator:
    """A trained checkpoint with what it needs to sample: its UNet, VAE and text encoder."""

    def __init__(self, checkpoint_dir: str | Path, text_encoder, device: str = "auto") -> None:
        from diffusers import UNet2DConditionModel

        self.checkpoint_dir = Path(checkpoint_dir)
        info = self.training_info(self.checkpoint_dir)
        self.config = DiffusionTrainConfig.from_dict(info["config"])
        if info["text_encoder"] != text_encoder.source:
            raise ValueError(
                f"checkpoint was trained with text encoder {info['text_encoder']}, "
                f"not {text_encoder.source}"
            )
        self.device = pick_device(device)
        self.unet = UNet2DConditionModel.from_pretrained(self.checkpoint_dir / "unet")
        self.unet = self.unet.to(self.device).eval()
        self.vae = load_vae(self.config)
        if self.vae is not None:
            self.vae = self.vae.to(self.device)
        self.text_encoder = text_encoder
        self.scheduler_config = info["noise_scheduler"]
        self.sha256 = file_sha256(
            self.checkpoint_dir / "unet" / "diffusion_pytorch_model.safetensors"
        )

    @staticmethod
    def training_info(checkpoint_dir: str | Path) -> dict:
        """The run's ``training.json`` (config, text encoder, noise scheduler)."""
        return json.loads((Path(checkpoint_dir).parent.parent / "training.json").read_text())

    def scheduler(self, name: str):
        from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

        classes = {"ddim": DDIMScheduler, "ddpm": DDPMScheduler, "dpm": DPMSolverMultistepScheduler}
        if name not in classes:
            raise ValueError(f"scheduler must be one of {SCHEDULERS}, not {name!r}")
        return classes[name].from_config(self.scheduler_config)

    @torch.inference_mode()
    def generate(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        spec: SampleSpec = SampleSpec(),
        batch: int = 32,
    ) -> list[Image.Image]:
        """One image per (prompt, seed); the same pair always gives the same image."""
        if len(prompts) != len(seeds):
            raise ValueError("one seed per prompt")
        images: list[Image.Image] = []
        for start in range(0, len(prompts), batch):
            images += self._batch(
                list(prompts[start : start + batch]), list(seeds[start : start + batch]), spec
            )
        return images

    def _batch(self, prompts: list[str], seeds: list[int], spec: SampleSpec) -> list[Image.Image]:
        channels, side = sample_shape(self.config, self.vae)
        noise = torch.stack(
            [
                torch.randn((channels, side, side), generator=torch.Generator().manual_seed(s))
                for s in seeds
            ]
        ).to(self.device)
        cond = self.text_encoder.encode(prompts).to(self.device)
        uncond = self.text_encoder.encode([""] * len(prompts)).to(self.device)
        scheduler = self.scheduler(spec.scheduler)
        scheduler.set_timesteps(spec.steps)
        x = noise * scheduler.init_noise_sigma
        guided = spec.guidance_scale != 1.0
        for t in scheduler.timesteps:
            model_in = scheduler.scale_model_input(torch.cat([x, x]) if guided else x, t)
            hidden = torch.cat([uncond, cond]) if guided else cond
            pred = self.unet(model_in, t, encoder_hidden_states=hidden).sample
            if guided:
                pred_uncond, pred_cond = pred.chunk(2)
                pred = pred_uncond + spec.guidance_scale * (pred_cond - pred_uncond)
            x = scheduler.step(pred, t, x).prev_sample
        if self.vae is not None:
            x = self.vae.decode(x / self.vae.config.scaling_factor).sample
        arr = ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        return [Image.fromarray(np.ascontiguousarray(a)) for a in arr]


@dataclass(frozen=True)
class PromptAlignment:
    own: np.ndarray
    """Each image's CLIP similarity to its own prompt."""
    others: np.ndarray
    """Each image's mean CLIP similarity to the other prompts."""
    top1: float
    """Share of images whose most similar prompt is their own."""


def prompt_alignment(
    clip, images: Sequence[Image.Image], prompts: Sequence[str], per_prompt: int
) -> PromptAlignment:
    """How well ``images`` (``per_prompt`` consecutive images per prompt) follow their prompts,
    by ``clip`` (a ``pipeline.hops.clip.embed.ClipModel``)."""
    sims = clip.embed_images(list(images)) @ clip.embed_texts(list(prompts)).T
    own_col = np.repeat(np.arange(len(prompts)), per_prompt)
    own = sims[np.arange(len(images)), own_col]
    others = (sims.sum(axis=1) - own) / max(1, len(prompts) - 1)
    return PromptAlignment(own, others, float((sims.argmax(axis=1) == own_col).mean()))
