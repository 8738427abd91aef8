"""Benchmark the diffusion training step: our loop against a bare diffusers loop.

Run from the repository root::

    .venv/bin/python bench/train_step.py                                # demo config, CPU or GPU
    .venv/bin/python bench/train_step.py --configs latent256 --steps 3 --batch 2   # CPU smoke
    .venv/bin/python bench/train_step.py --configs default,latent256    # on a GPU

Two configurations, trained on drawn images
(``pipeline.models.training.samples.make_sample``, English captions) and conditioned on the
project's text encoder (the tiny CLIP's text tower):

- ``default``: what the demo trains, ``DiffusionModelConfig()``'s defaults (pixel mode, 32 px,
  UNet ``(16, 32, 64)``, batch 16, fp32);
- ``latent256``: 256 px in latent mode, with a randomly initialised ``AutoencoderKL`` of Stable
  Diffusion's architecture (4 levels up to 512 channels, 4 latent channels: 32x32 latents) and
  a larger UNet ``(128, 256, 512)``, 2 layers per block, under ``--mixed-precision``.

For each it prints samples/s of:

- ours, ``pipeline.hops.training.train.train_diffusion``. ``TrainingRun.samples_per_second``
  counts set-up (UNet, text encoding, VAE encoding) and the final checkpoint, so two fresh runs
  of W+1 and W+N+1 steps are timed and N steps are credited with the difference. The same
  figure is also read inside the longer run, from the start of step W to the start of step
  W+N (a wrapper around its per-step ``_step_generators``);
- the peer, a bare loop of the same UNet: data and text states precomputed on the device,
  ``DDPMScheduler.add_noise``, MSE, AdamW, autocast and a GradScaler for fp16; no accelerate,
  gradient clipping, LR schedule, per-step loss sync or checkpoints.

ours/bare is our loop's overhead. On a CPU, latent256 runs only a few steps: its real figure
is for a GPU. On a shared CPU, ``--threads 1`` avoids the thread oversubscription that makes
torch's default (one thread per core) ten times slower whenever another process is busy.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

CONFIGS = ("default", "latent256")


@dataclass
class OursFigures:
    difference: float
    """samples/s from the difference of a (W+1)- and a (W+N+1)-step run."""
    in_loop: float
    """samples/s from step W to step W+N inside the longer run."""
    whole_call: float
    """``TrainingRun.samples_per_second`` of the longer run (set-up and checkpoint included)."""
    short_s: float
    long_s: float


def sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def reset_accelerate() -> None:
    """Forget accelerate's process-wide state, so a run may pick another mixed precision."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def make_examples(n: int) -> list:
    from pipeline.hops.training.train import TrainingExample
    from pipeline.models.training.samples import make_sample

    out = []
    for i in range(n):
        s = make_sample("bench-train-step", i, 0.0, 0.0)
        out.append(TrainingExample(f"pair-{i:05d}", s.captions["en"], s.image))
    return out


def save_sd_vae(folder: Path) -> None:
    """A randomly initialised AutoencoderKL with Stable Diffusion's architecture."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=256,
        scaling_factor=0.18215,
    )
    vae.save_pretrained(folder, safe_serialization=True)


def build_config(name: str, batch: int, mixed_precision: str, vae_dir: Path | None):
    from pipeline.hops.training.model import DiffusionTrainConfig

    if name == "default":
        from assets_defs.assets.diffusion_model import DiffusionModelConfig

        return replace(DiffusionModelConfig().train_config(), batch_size=batch)
    return DiffusionTrainConfig(
        resolution=256,
        vae=str(vae_dir),
        block_out_channels=(128, 256, 512),
        layers_per_block=2,
        attention_head_dim=8,
        batch_size=batch,
        learning_rate=1e-4,
        mixed_precision=mixed_precision,
    )


def time_ours(examples, text_encoder, cfg, warmup: int, steps: int, work: Path) -> OursFigures:
    from pipeline.hops.training import train as train_mod

    cfg = replace(cfg, train_steps=max(cfg.train_steps, warmup + steps + 1))
    original = train_mod._step_generators
    stamps: list[float] = []

    def stamped(seed: int, step: int):
        stamps.append(time.perf_counter())
        return original(seed, step)

    runs = []
    for n in (warmup + 1, warmup + steps + 1):
        reset_accelerate()
        stamps.clear()
        out = work / f"ours-{n}"
        train_mod._step_generators = stamped
        try:
            run = train_mod.train_diffusion(
                examples, text_encoder, cfg, out, log=lambda _m: None, resume=False,
                max_steps_this_call=n,
            )  # fmt: skip
        finally:
            train_mod._step_generators = original
        shutil.rmtree(out, ignore_errors=True)
        runs.append(run)
        free_memory()
    short, long = runs
    samples = steps * cfg.batch_size
    return OursFigures(
        difference=samples / (long.seconds - short.seconds),
        in_loop=samples / (stamps[warmup + steps] - stamps[warmup]),
        whole_call=long.samples_per_second,
        short_s=short.seconds,
        long_s=long.seconds,
    )


def bare_data(examples, text_encoder, cfg, device):
    """(x0, text states, vae) on the device: pixels in [-1, 1] or scaled VAE latents."""
    import torch

    from pipeline.hops.training.model import load_vae
    from pipeline.hops.training.train import images_to_tensor

    x0 = images_to_tensor([e.image for e in examples], cfg.resolution).to(device)
    vae = load_vae(cfg)
    if vae is not None:
        vae = vae.to(device)
        with torch.no_grad():
            x0 = torch.cat(
                [vae.encode(x0[i : i + 8]).latent_dist.sample() for i in range(0, len(x0), 8)]
            )
        x0 = x0 * vae.config.scaling_factor
    cond = text_encoder.encode([e.caption for e in examples]).to(device)
    return x0, cond, vae


def time_bare(cfg, x0, cond, vae, warmup: int, steps: int, device) -> tuple[float, int]:
    """samples/s of a bare diffusers loop, and the UNet's parameter count."""
    import torch
    import torch.nn.functional as F

    from pipeline.hops.training.model import build_unet, noise_scheduler

    torch.manual_seed(cfg.seed)
    unet = build_unet(cfg, int(cond.shape[-1]), vae).to(device).train()
    scheduler = noise_scheduler(cfg)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=cfg.learning_rate, weight_decay=1e-2)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(cfg.mixed_precision)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.mixed_precision == "fp16")
    batch, n, timesteps = cfg.batch_size, len(x0), scheduler.config.num_train_timesteps

    def step() -> None:
        idx = torch.randint(0, n, (batch,), device=device)
        clean = x0[idx]
        noise = torch.randn_like(clean)
        t = torch.randint(0, timesteps, (batch,), device=device)
        noisy = scheduler.add_noise(clean, noise, t)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            pred = unet(noisy, t, encoder_hidden_states=cond[idx]).sample
        loss = F.mse_loss(pred.float(), noise.float())
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup + 1):
        step()
    sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * batch / (time.perf_counter() - started), sum(
        p.numel() for p in unet.parameters()
    )


def run_config(name: str, args: argparse.Namespace, device, text_encoder, tmp: Path) -> None:
    cuda = device.type == "cuda"
    latent = name == "latent256"
    batch = args.batch or (16 if cuda or not latent else 2)
    steps = args.steps or {(False, False): 40, (False, True): 3}.get((cuda, latent), 200)
    warmup = args.warmup if args.warmup is not None else (1 if latent and not cuda else 5)
    vae_dir = None
    if latent:
        vae_dir = tmp / "sd-vae"
        if not vae_dir.exists():
            save_sd_vae(vae_dir)
    cfg = build_config(name, batch, args.mixed_precision, vae_dir)
    examples = make_examples(args.examples or max(8, 4 * batch))
    mode = f"latent ({cfg.resolution // 8}x{cfg.resolution // 8}x4)" if latent else "pixel"
    print(
        f"\n== {name}: {mode}, {cfg.resolution} px, UNet {cfg.block_out_channels} x"
        f"{cfg.layers_per_block}, batch {batch}, mixed precision {cfg.mixed_precision}, "
        f"{len(examples)} examples, warm-up {warmup}+1 steps, {steps} timed steps, "
        f"best of {args.repeat}"
    )
    x0, cond, vae = bare_data(examples, text_encoder, cfg, device)
    best: OursFigures | None = None
    bare = 0.0
    params = 0
    for _ in range(args.repeat):
        ours = time_ours(examples, text_encoder, cfg, warmup, steps, tmp)
        if best is None or ours.difference > best.difference:
            best = ours
        rate, params = time_bare(cfg, x0, cond, vae, warmup, steps, device)
        bare = max(bare, rate)
        free_memory()
    assert best is not None
    del x0, cond, vae
    free_memory()
    print(f"UNet parameters: {params / 1e6:.2f} M")
    print(
        f"ours (train_diffusion): {fmt_rate(best.difference)} samples/s by run difference "
        f"({best.short_s:.2f} s for {warmup + 1} steps, {best.long_s:.2f} s for "
        f"{warmup + steps + 1}); {fmt_rate(best.in_loop)} samples/s timed inside the loop; "
        f"whole call with set-up and checkpoint: {fmt_rate(best.whole_call)} samples/s"
    )
    print(f"bare diffusers loop: {fmt_rate(bare)} samples/s ({1e3 * batch / bare:,.0f} ms/step)")
    print(
        f"ratio ours/bare: {best.difference / bare:.2f} (run difference), "
        f"{best.in_loop / bare:.2f} (inside the loop)"
    )


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="default", help="comma-separated: default,latent256")
    parser.add_argument(
        "--steps", type=int, help="timed steps (default 40 on CPU, 200 on CUDA; latent256: 3/200)"
    )
    parser.add_argument("--warmup", type=int, help="warm-up steps (default 5; latent256 CPU 1)")
    parser.add_argument("--batch", type=int, help="batch size (default: 16; latent256 on CPU: 2)")
    parser.add_argument("--examples", type=int, help="training images (default 4x batch, >= 8)")
    parser.add_argument("--repeat", type=int, default=1, help="best of this many")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--mixed-precision",
        choices=("no", "fp16", "bf16"),
        help="latent256's (default fp16 on CUDA, else no); default keeps the demo's no",
    )
    args = parser.parse_args(argv)
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(args.configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configs {sorted(unknown)}; choose from {CONFIGS}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # accelerate and open_clip pick CUDA when seen

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.mixed_precision is None:
        args.mixed_precision = "fp16" if device.type == "cuda" else "no"

    from pipeline.hops.clip.embed import ClipModel, ClipSpec
    from pipeline.hops.training.text import OpenClipTextEncoder

    text_encoder = OpenClipTextEncoder(ClipModel(ClipSpec()))
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(
        f"device {device} ({name}), torch {torch.__version__}, threads "
        f"{torch.get_num_threads()}, text encoder {text_encoder.source}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-train-step-") as tmp:
        for config in args.configs:
            run_config(config, args, device, text_encoder, Path(tmp))


if __name__ == "__main__":
    main()
