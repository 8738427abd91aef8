"""Draw the planned images and write the files the server serves (sites/<host>/<path>)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .config import SyntheticWebConfig
from .draw import bomb_png, encode, not_image_html, pixel_gif, render
from .model import ImageSpec, Visual

# Faults whose URL has no file behind it.
NO_FILE_FAULTS = frozenset({"not_found", "server_error", "redirect", "redirect_blocked"})


def _draw(job: tuple[Visual, int]) -> bytes:
    visual, quality = job
    return encode(render(visual), visual.format, quality)


def _drawn(jobs: list[tuple[Visual, int]], workers: int) -> Iterator[bytes]:
    """Threads, not processes: PIL and numpy release the GIL in their heavy loops, and
    threads need no `__main__` guard or fork safety from whoever calls the generator."""
    if workers <= 1:
        yield from map(_draw, jobs)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="synthetic-draw") as pool:
        yield from pool.map(_draw, jobs)


def file_relpath(im: ImageSpec) -> str:
    """Where an image's bytes live under the web root."""
    return f"sites/{im.host}{im.path}"


def write_image_files(root: Path, images: list[ImageSpec], cfg: SyntheticWebConfig) -> int:
    """Write every file the routes need; fill in `file`, `n_bytes`, `sha256`. Return the count."""
    special: dict[int, bytes] = {}
    to_draw: list[ImageSpec] = []
    for im in images:
        if im.fault in NO_FILE_FAULTS:
            continue
        if im.role == "pixel":
            special[im.id] = pixel_gif()
        elif im.fault == "not_image":
            special[im.id] = not_image_html(im.host)
        elif im.fault == "oversized" and im.oversized_kind == "bomb":
            special[im.id] = bomb_png(cfg.bomb_side)
        else:
            to_draw.append(im)
    jobs = [(im.visual, cfg.jpeg_quality) for im in to_draw if im.visual is not None]
    drawn = dict(zip((im.id for im in to_draw), _drawn(jobs, cfg.workers), strict=True))
    count = 0
    for im in images:
        data = special.get(im.id, drawn.get(im.id))
        if data is None:
            continue
        rel = file_relpath(im)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        im.file = rel
        im.n_bytes = len(data)
        im.sha256 = hashlib.sha256(data).hexdigest()
        if im.fault == "oversized" and im.oversized_kind == "padded":
            im.n_bytes = max(cfg.oversized_bytes, len(data))
        count += 1
    return count
