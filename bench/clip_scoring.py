"""Benchmark hop 3 (the CLIP filter): fetch, decode and embed against the synthetic web.

Run from the repository root::

    .venv/bin/python bench/clip_scoring.py                  # 1,000 images, CPU or GPU
    .venv/bin/python bench/clip_scoring.py --images 4000 --vit-images 20000   # on a GPU

It serves the default synthetic web (``data/web``, generated when missing) on loopback and
takes its healthy image URLs. It prints images/s for:

- ours, end to end: ``pipeline.hops.clip.filter.fetch_and_embed`` (fetch, decode, preprocess,
  embed with the default CLIP), with the provenance reader on (hop 3's default) and off, in
  turn (``--repeat`` rounds): the ratio is what reading provenance costs hop 3;
- ours, fetch and decode only, and the peer tool, img2dataset, downloading and decoding the
  same URLs (``resize_mode="no"``, same thread count) in the same run: the ratio compares them;
- embedding only (preprocessed tensors already in memory) for the default model and for
  ViT-B/32 with random weights (fp16 and larger batches on CUDA).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def healthy_urls(web_root: Path, n: int) -> list[str]:
    import orjson

    urls = []
    for line in (web_root / "routes.jsonl").read_bytes().splitlines():
        route = orjson.loads(line)
        healthy = (
            route["fault"] is None and route["file"] and "X-Robots-Tag" not in route["headers"]
        )
        if healthy and (web_root / route["file"]).stat().st_size >= 5 * 1024:
            urls.append(f"https://{route['host']}{route['path']}")
    return urls[:n]


def time_ours(urls, clip, fetcher, decode, embed: bool, provenance=None) -> tuple[float, int]:
    from pipeline.hops.clip.filter import fetch_and_embed, prepare_url

    started = time.perf_counter()
    if embed:
        outcomes = fetch_and_embed(dict(enumerate(urls)), clip, fetcher, decode,
                                   provenance=provenance)  # fmt: skip
        ok = sum(o.embedding is not None for o in outcomes)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(fetcher.workers) as pool:
            results = list(pool.map(lambda u: prepare_url(fetcher, decode, lambda im: None,
                                                          False, u), urls))  # fmt: skip
        ok = sum(1 for r in results if r.decoded is not None and r.decoded.ok)
    return time.perf_counter() - started, ok


def time_img2dataset(urls: list[str], server, threads: int) -> tuple[float, int, float]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from img2dataset import download

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "urls.parquet"
        pq.write_table(pa.table({"url": [server.url_for(u) for u in urls]}), src)
        started = time.perf_counter()
        download(
            url_list=str(src),
            input_format="parquet",
            url_col="url",
            output_folder=str(Path(tmp) / "out"),
            output_format="files",
            processes_count=1,
            thread_count=threads,
            resize_mode="no",
            timeout=10,
            retries=0,
            disallowed_header_directives=[],
            verify_hash=None,
            number_sample_per_shard=len(urls),
        )
        seconds = time.perf_counter() - started
        ok = sum(1 for p in (Path(tmp) / "out").rglob("*") if p.suffix in (".jpg", ".png", ".webp"))
        stats = [json.loads(p.read_text()) for p in (Path(tmp) / "out").glob("*_stats.json")]
        inner = sum(s.get("duration", 0.0) for s in stats)
        return seconds, ok, inner


def time_embedding(model, preprocess, n: int, batch: int, device: str, fp16: bool) -> float:
    import torch
    from PIL import Image

    img = Image.new("RGB", (256, 256), (120, 30, 200))
    x = torch.stack([preprocess(img)] * batch).to(device)
    model = model.to(device).eval()
    if fp16:
        model, x = model.half(), x.half()
    with torch.inference_mode():
        model.encode_image(x)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        done = 0
        while done < n:
            model.encode_image(x)
            done += batch
        if device == "cuda":
            torch.cuda.synchronize()
    return done / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--web", default=str(ROOT / "data" / "web"))
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--vit-images", type=int, default=512)
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of reader on / off")
    args = parser.parse_args(argv)

    import open_clip
    import torch

    from pipeline.hops.clip.decode import DecodePolicy
    from pipeline.hops.clip.embed import ClipModel, ClipSpec, pick_device
    from pipeline.hops.clip.fetch import Fetcher, FetchPolicy
    from pipeline.provenance.reader import ProvenancePolicy
    from pipeline.synthetic.generate import generate_web
    from pipeline.synthetic.server import SyntheticWebServer

    web_root = Path(args.web)
    generate_web(web_root)
    urls = healthy_urls(web_root, args.images)
    device = pick_device()
    print(f"device {device}, torch threads {torch.get_num_threads()}, {len(urls)} image URLs")
    clip = ClipModel(ClipSpec(batch_size=256))
    decode = DecodePolicy()
    with SyntheticWebServer(web_root, slow_seconds=0.0) as server:
        address = server.base_url.removeprefix("http://")
        policy = FetchPolicy(resolve=dict.fromkeys(server.hosts, address), resolve_only=True)
        fetcher = Fetcher(policy, args.workers)
        rates: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.repeat):
            for reading in (True, False):
                sec, ok = time_ours(urls, clip, fetcher, decode, embed=True,
                                    provenance=ProvenancePolicy(enabled=reading))  # fmt: skip
                rates[reading].append(ok / sec)
                print(f"ours end to end (fetch+decode+embed, {clip.model_id}, provenance "
                      f"reader {'on' if reading else 'off'}): {ok} images in {sec:.2f} s = "
                      f"{ok / sec:,.0f} images/s")  # fmt: skip
        on, off = max(rates[True]), max(rates[False])
        print(f"ratio reader on/off (best of {args.repeat} each): {on / off:.2f}x")
        sec_fd, ok_fd = time_ours(urls, clip, fetcher, decode, embed=False)
        ours_rate = ok_fd / sec_fd
        print(f"ours fetch+decode: {ok_fd} images in {sec_fd:.2f} s = {ours_rate:,.0f} images/s")
        if not args.skip_peer:
            sec_p, ok_p, inner = time_img2dataset(urls, server, args.workers)
            print(f"img2dataset: {ok_p} images in {sec_p:.2f} s wall = {ok_p / sec_p:,.0f} "
                  f"images/s (with start-up and sharding); its shard took {inner:.2f} s = "
                  f"{ok_p / inner:,.0f} images/s")  # fmt: skip
            print(f"ratio ours/img2dataset (fetch+decode vs its shard time): "
                  f"{ours_rate / (ok_p / inner):.2f}x; against its wall time: "
                  f"{ours_rate / (ok_p / sec_p):.2f}x")  # fmt: skip
    fp16 = device == "cuda"
    rate = time_embedding(clip.model, clip.preprocess, max(1024, args.images), 256, device, fp16)
    print(f"embedding only, default model: {rate:,.0f} images/s")
    vit, _, vit_pre = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    batch = 256 if device == "cuda" else 32
    rate = time_embedding(vit, vit_pre, args.vit_images, batch, device, fp16)
    print(f"embedding only, ViT-B/32 (random weights, batch {batch}, "
          f"{'fp16' if fp16 else 'fp32'}): {rate:,.0f} images/s "
          f"(LAION's A100 figure: 2,500 images/s)")  # fmt: skip


if __name__ == "__main__":
    main()
