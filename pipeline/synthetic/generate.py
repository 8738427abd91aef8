"""Generate the synthetic web under a root directory (idempotent, atomic, locked)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .artists import artist_roster
from .config import GENERATOR_VERSION, SyntheticWebConfig
from .epoch2 import plan_epoch2
from .files import write_image_files
from .gzmember import gzip_member
from .layout import collinfo, file_start, http_date, warc_relpath, wat_relpath
from .model import PagePlan
from .plan import plan_web
from .routes import write_routes
from .sampling import rng_for
from .truth import CaptureInfo, capture_rows, page_rows, truth_rows, write_table
from .warc import write_warc
from .wat import derive_wat

MANIFEST = "manifest.json"


@dataclass
class WebManifest:
    """What a generated web holds and where (paths relative to `root`)."""

    root: Path
    fingerprint: str
    crawl_ids: tuple[str, ...]
    counts: dict[str, int]
    paths: dict[str, Any]
    generated: bool = False  # False when an existing web was reused
    seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)

    def wat_files(self, crawl_id: str) -> list[Path]:
        """Absolute paths of one crawl's WAT files."""
        return [self.root / p for p in self.paths["wat"][crawl_id]]

    def path(self, name: str) -> Path:
        """Absolute path of a top-level file (collinfo, routes, truth, pages, captures)."""
        return self.root / self.paths[name]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (root as a string)."""
        out = dataclasses.asdict(self)
        out["root"] = str(self.root)
        out["crawl_ids"] = list(self.crawl_ids)
        return out

    @classmethod
    def load(cls, root: Path) -> WebManifest | None:
        """The manifest of a web under `root`, or None."""
        try:
            data = json.loads((root / MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        return cls(
            root=root,
            fingerprint=data["fingerprint"],
            crawl_ids=tuple(data["crawl_ids"]),
            counts=data["counts"],
            paths=data["paths"],
            config=data.get("config", {}),
        )


@contextmanager
def web_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive file lock: one writer of a web at a time (generate, grow)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def generate_web(root: str | Path, config: SyntheticWebConfig | None = None) -> WebManifest:
    """Generate the web under `root`, or return the existing one if its config matches.

    The web is written to a sibling directory and renamed into place, under a file lock,
    so concurrent callers never see a half-written web. A previous synthetic web with a
    different config is replaced; a non-empty directory that is not one is refused.
    """
    config = config if config is not None else SyntheticWebConfig()
    root = Path(root).absolute()
    with web_lock(root.parent / f".{root.name}.lock"):
        existing = WebManifest.load(root)
        if existing is not None and existing.fingerprint == config.fingerprint():
            return existing
        if existing is None and root.exists() and any(root.iterdir()):
            raise FileExistsError(f"{root} is not empty and holds no synthetic web")
        partial = root.parent / f".{root.name}.partial"
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        started = time.perf_counter()
        try:
            manifest = _write_web(partial, config)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        if root.exists():
            shutil.rmtree(root)
        partial.rename(root)
        manifest.root = root
        manifest.generated = True
        manifest.seconds = round(time.perf_counter() - started, 2)
        return manifest


def _gzip_lines(lines: list[str]) -> bytes:
    return gzip_member("".join(f"{line}\n" for line in lines).encode())


@dataclass
class CrawlFiles:
    """The files one crawl was written to (paths relative to the web root)."""

    infos: list[CaptureInfo]
    wat_paths: list[str]
    warc_paths: list[str]
    wat_records: int


def write_crawl(
    root: Path, crawl_id: str, pages: list[PagePlan], files: int, segments: int, seed: int
) -> CrawlFiles:
    """Write one crawl's WARC files (``pages`` in order, cut into ``files``), the WAT files
    derived from them, and its ``wat.paths.gz`` / ``warc.paths.gz``."""
    out = CrawlFiles([], [], [], 0)
    n = len(pages)
    for i in range(files):
        chunk = pages[i * n // files : (i + 1) * n // files]
        warc_rel = warc_relpath(crawl_id, i, files, segments)
        wat_rel = wat_relpath(crawl_id, i, files, segments)
        start = file_start(crawl_id, i)
        captures = write_warc(
            root / warc_rel,
            Path(warc_rel).name,
            crawl_id,
            chunk,
            start,
            rng_for(seed, "warc", crawl_id, i),
        )
        extracted = start + dt.timedelta(days=9, hours=4)
        out.wat_records += derive_wat(
            root / warc_rel, root / wat_rel, extracted, rng_for(seed, "wat", crawl_id, i)
        )
        out.infos += [CaptureInfo(crawl_id, c, warc_rel, wat_rel) for c in captures]
        out.warc_paths.append(warc_rel)
        out.wat_paths.append(wat_rel)
    (root / f"crawl-data/{crawl_id}/wat.paths.gz").write_bytes(_gzip_lines(out.wat_paths))
    (root / f"crawl-data/{crawl_id}/warc.paths.gz").write_bytes(_gzip_lines(out.warc_paths))
    return out


def _write_web(root: Path, cfg: SyntheticWebConfig) -> WebManifest:
    plan = plan_web(cfg)
    n_files = write_image_files(root, plan.images, cfg)
    first = file_start(cfg.crawl_ids[0], 0)
    epoch2 = plan_epoch2(plan.images, cfg)
    n_routes = write_routes(root / "routes.jsonl", plan.images, http_date(first), epoch2)
    infos: list[CaptureInfo] = []
    wat_paths: dict[str, list[str]] = {}
    warc_paths: dict[str, list[str]] = {}
    wat_records = 0
    for crawl in plan.crawls:
        cid = crawl.crawl_id
        written = write_crawl(
            root, cid, crawl.pages, cfg.wat_files_per_crawl, cfg.segments_per_crawl, cfg.seed
        )
        infos += written.infos
        wat_paths[cid], warc_paths[cid] = written.wat_paths, written.warc_paths
        wat_records += written.wat_records
    index = collinfo(cfg.crawl_ids, cfg.wat_files_per_crawl)
    (root / "collinfo.json").write_text(json.dumps(index, indent=1) + "\n")
    truth = truth_rows(plan, cfg.languages, cfg.bomb_side)
    pages = page_rows(plan, infos)
    write_table(root / "truth.parquet", truth)
    write_table(root / "pages.parquet", pages)
    write_table(root / "captures.parquet", capture_rows(infos))
    html_pages = [i for i in infos if i.capture.page.status == 200]
    counts = {
        "crawls": len(cfg.crawl_ids),
        "sites": len(plan.sites),
        "pages": len(html_pages),
        "distinct_pages": len({i.capture.page.uid for i in html_pages}),
        "redirect_captures": len(infos) - len(html_pages),
        "image_links": len(pages),
        "images": len(truth),
        "image_files": n_files,
        "routes": n_routes,
        "epoch2_routes": len(epoch2),
        "warc_files": sum(len(v) for v in warc_paths.values()),
        "wat_files": sum(len(v) for v in wat_paths.values()),
        "wat_records": wat_records,
        "artist_images": sum(1 for row in truth if row["artist"] is not None),
        "artist_credits": sum(1 for row in pages if row["artist_credited"]),
        "planted_terms": sum(1 for row in pages if row["planted_term"] is not None),
    }
    paths = {
        "collinfo": "collinfo.json",
        "routes": "routes.jsonl",
        "truth": "truth.parquet",
        "pages": "pages.parquet",
        "captures": "captures.parquet",
        "sites": "sites",
        "wat_paths": {c: f"crawl-data/{c}/wat.paths.gz" for c in cfg.crawl_ids},
        "warc_paths": {c: f"crawl-data/{c}/warc.paths.gz" for c in cfg.crawl_ids},
        "wat": wat_paths,
        "warc": warc_paths,
    }
    config = json.loads(json.dumps(cfg.content_dict()))
    manifest = {
        "generator": GENERATOR_VERSION,
        "fingerprint": cfg.fingerprint(),
        "crawl_ids": list(cfg.crawl_ids),
        "counts": counts,
        "artists": artist_roster(plan.artist_homes),
        "paths": paths,
        "config": config,
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return WebManifest(root, cfg.fingerprint(), cfg.crawl_ids, counts, paths, config=config)
