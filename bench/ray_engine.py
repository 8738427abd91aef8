"""Benchmark the Ray engine against in process, on the same machine in the same run.

Run from the repository root (needs the ``ray`` extra)::

    .venv/bin/python bench/ray_engine.py                     # 2,000 URLs, 4 WAT files of 50 MB
    .venv/bin/python bench/ray_engine.py --images 500 --wat-mb 10 --wat-files 2   # quick look

It starts one local Ray cluster (``--cpus`` CPUs, the machine's count by default) and reports
its start-up time apart, and that of Ray Data's helper actors, which a cluster starts once for
all its jobs (``--cold-ray-data`` leaves them to hop 3's job instead). Then:

- hop 3: :func:`pipeline.hops.clip.filter.fetch_and_embed` in process against
  :func:`pipeline.engine.clip.ray_fetch_and_embed` (fetch tasks, the CLIP service actors) on
  the same healthy image URLs of the synthetic web (served on loopback), twice on Ray: the
  first hop, whose job starts the CLIP service (it loads the model once per cluster), and the
  next, which finds it; images/s and the ratio Ray / in process of each, with the Ray job's
  join and worker start-up included; the peak resident memory
  of each Ray worker process, sampled every 0.2 s, by the task or actor it ran;
- hop 1: the engine's link batches of ``--wat-files`` WAT files from ``bench/_watgen.py`` (one
  seed each, or ``--wat-seeds`` distinct files repeated), in process (one file after the
  other, one core) against one Ray task per file; links/s and the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


class WorkerMemory:
    """Samples the resident memory of the cluster's worker processes (``ray::`` titles)."""

    def __init__(self, period_s: float = 0.2) -> None:
        self.period_s = period_s
        self.peak: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            for proc in psutil.process_iter(["pid", "cmdline", "memory_info"]):
                cmd = " ".join(proc.info["cmdline"] or [])
                if not cmd.startswith("ray::") or proc.info["memory_info"] is None:
                    continue
                rss = proc.info["memory_info"].rss / 2**20
                name, best = self.peak.get(proc.info["pid"], (cmd, 0.0))
                if rss > best or cmd != "ray::IDLE":
                    name = cmd if cmd != "ray::IDLE" else name
                self.peak[proc.info["pid"]] = (name, max(best, rss))
            self._stop.wait(self.period_s)

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def by_role(self) -> dict[str, float]:
        """The largest peak per role (the process title without its arguments)."""
        roles: dict[str, float] = defaultdict(float)
        for name, rss in self.peak.values():
            role = name.split(" ")[0]
            roles[role] = max(roles[role], rss)
        return dict(sorted(roles.items()))


def warm_ray_data(address: str) -> float:
    """Start Ray Data's detached helper actors (stats, autoscaling coordinator, actor
    locations) with a do-nothing pipeline in a job of its own: a cluster starts them once for
    all its jobs, so the hops timed after it find them as on a cluster that ran a hop before.
    Returns the seconds it took."""
    from pipeline.engine.cluster import connected
    from pipeline.engine.worker_env import worker_env

    class Same:  # defined here, so that it is pickled by value
        def __call__(self, batch):
            return batch

    started = time.perf_counter()
    with connected(address, worker_env()):
        import ray.data

        ray.data.DataContext.get_current().enable_progress_bars = False
        items = ray.data.from_items([{"i": i} for i in range(4)])
        items.map_batches(Same, compute=ray.data.ActorPoolStrategy(size=1)).materialize()
    return time.perf_counter() - started


def bench_hop3(args, address: str) -> None:
    from clip_scoring import healthy_urls

    from pipeline.engine.clip import RayClipPlan, ray_fetch_and_embed
    from pipeline.engine.cluster import connected
    from pipeline.engine.worker_env import worker_env
    from pipeline.hops.clip.decode import DecodePolicy
    from pipeline.hops.clip.embed import ClipModel, ClipSpec
    from pipeline.hops.clip.fetch import Fetcher, FetchPolicy
    from pipeline.hops.clip.filter import fetch_and_embed
    from pipeline.synthetic.config import SyntheticWebConfig
    from pipeline.synthetic.generate import generate_web
    from pipeline.synthetic.server import SyntheticWebServer

    web_root = Path(args.web)
    generate_web(web_root, SyntheticWebConfig(pages_per_crawl=args.pages_per_crawl))
    urls = dict(enumerate(healthy_urls(web_root, args.images)))
    urls = {str(k): v for k, v in urls.items()}
    clip = ClipModel(ClipSpec(device="cpu"))
    decode = DecodePolicy()
    plan = RayClipPlan(fetch_batch=args.fetch_batch, fetch_cpus=args.fetch_cpus)
    print(f"hop 3: {len(urls):,} image URLs, model {clip.model_id}, plan {plan}")
    with SyntheticWebServer(web_root, slow_seconds=0.0) as server:
        address_web = server.base_url.removeprefix("http://")
        policy = FetchPolicy(resolve=dict.fromkeys(server.hosts, address_web), resolve_only=True)
        fetcher = Fetcher(policy, args.workers)
        started = time.perf_counter()
        here = [o for o in fetch_and_embed(urls, clip, fetcher, decode) if o.embedding is not None]
        t_here = time.perf_counter() - started
        print(f"  in process: {len(here):,} embedded in {t_here:.2f} s = "
              f"{len(here) / t_here:,.0f} images/s")  # fmt: skip
        with WorkerMemory() as memory:
            for label in ("first hop, CLIP service starting", "next hop, CLIP service warm"):
                started = time.perf_counter()
                with connected(address, worker_env()):
                    joined = time.perf_counter() - started
                    there = [o for o in ray_fetch_and_embed(urls, clip, fetcher, decode, plan=plan)
                             if o.embedding is not None]  # fmt: skip
                t_there = time.perf_counter() - started
                print(f"  ray, {label}: {len(there):,} embedded in {t_there:.2f} s (joining the "
                      f"cluster {joined:.2f} s) = {len(there) / t_there:,.0f} images/s; "
                      f"ratio ray / in process: {t_here / t_there:.2f}x")  # fmt: skip
                assert len(there) == len(here), "both engines must embed the same images"
        for role, rss in memory.by_role().items():
            print(f"  peak RSS of a Ray worker, {role}: {rss:,.0f} MB")


def bench_hop1(args, address: str) -> None:
    from _watgen import ensure_wat

    from pipeline.engine import Engine
    from pipeline.hops.wat.records import ExtractStats

    seeds = [i % args.wat_seeds for i in range(args.wat_files)]
    files = [ensure_wat(args.wat_mb, seed=seed) for seed in seeds]
    size = sum(f.path.stat().st_size for f in files) / 2**20
    uris = [str(f.path) for f in files]
    print(f"hop 1: {len(files)} WAT files ({len(set(seeds))} distinct), {size:,.0f} MB")
    results = {}
    for engine in (Engine(), Engine("ray", address)):
        stats = ExtractStats()
        started = time.perf_counter()
        with engine.session():
            rows = sum(b.num_rows for b in engine.image_link_batches(uris, "BENCH", stats))
        seconds = time.perf_counter() - started
        results[engine.kind] = (rows, seconds)
        print(f"  {engine.kind}: {rows:,} links in {seconds:.2f} s = {rows / seconds:,.0f} links/s")
    assert results["ray"][0] == results["in_process"][0], "both engines must find the same links"
    print(f"  ratio ray / in process: {results['in_process'][1] / results['ray'][1]:.2f}x")


def main(argv: list[str] | None = None) -> None:
    from pipeline.engine.clip import RayClipPlan

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--web", default=str(ROOT / "data" / "web-bench"))
    parser.add_argument("--pages-per-crawl", type=int, default=1100)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=16, help="fetch threads")
    parser.add_argument("--fetch-batch", type=int, default=RayClipPlan.fetch_batch)
    parser.add_argument("--fetch-cpus", type=float, default=RayClipPlan.fetch_cpus)
    parser.add_argument("--wat-mb", type=int, default=50)
    parser.add_argument("--wat-files", type=int, default=4)
    parser.add_argument("--wat-seeds", type=int, default=4,
                        help="distinct generated files; the others repeat them")  # fmt: skip
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--object-store-mb", type=int, default=1024,
                        help="object store of the cluster (tests use 100 MB)")  # fmt: skip
    parser.add_argument("--cold-ray-data", action="store_true",
                        help="time hop 3 with Ray Data's helper actors still to start")  # fmt: skip
    parser.add_argument("--skip-hop1", action="store_true")
    parser.add_argument("--skip-hop3", action="store_true")
    args = parser.parse_args(argv)

    from pipeline.engine.cluster import LocalRayCluster

    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores, load average {load:.1f} at the start")
    store = args.object_store_mb * 2**20
    with LocalRayCluster(num_cpus=args.cpus, num_gpus=0, object_store_bytes=store) as cluster:
        print(f"local Ray cluster, {args.cpus} CPUs, {args.object_store_mb} MB object store: "
              f"started in {cluster.startup_s:.1f} s")  # fmt: skip
        if not args.cold_ray_data:
            print(f"Ray Data's helper actors (once per cluster): started in "
                  f"{warm_ray_data(cluster.address):.1f} s, apart")  # fmt: skip
        if not args.skip_hop3:
            bench_hop3(args, cluster.address)
        if not args.skip_hop1:
            bench_hop1(args, cluster.address)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
