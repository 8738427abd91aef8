"""Hop 3 on Ray Data: fetch, hash, decode and shrink as tasks, CLIP on a service pool.

The same per-URL work as :func:`pipeline.hops.clip.filter.fetch_and_embed`
(:func:`~pipeline.hops.clip.filter.prepare_url` and
:func:`~pipeline.hops.clip.filter.outcome_of`), split in two stages of a streaming Ray Data
pipeline: ``map_batches`` tasks fetch a batch of URLs each (with the fetcher's threads) and
return the outcome columns plus the decoded RGB pixels, shrunk to the model's input size
(:class:`Shrink`); one light client actor per job then hands each fetched block to the least
busy of the cluster's CLIP service actors (:mod:`pipeline.engine.clip_service`:
:class:`ClipEmbedder`s that load the model once per cluster, not per job, ``num_gpus`` each
where the cluster has GPUs), which apply the model's preprocessing to those pixels and embed
them. The fetch tasks never import torch or open_clip (seconds per new worker process, and
600 MB of memory), and the same preprocessing runs on the same pixels as in process. The
driver turns the rows back into :class:`~pipeline.hops.clip.filter.UrlOutcome` objects, so
``score_pairs`` builds the same rows as in process. Must run inside
:func:`pipeline.engine.cluster.connected`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa

from pipeline.engine.clip_service import ServiceClient, ServiceSpec, code_digest, start_services
from pipeline.faults import maybe_kill
from pipeline.hops.clip.decode import DecodePolicy
from pipeline.hops.clip.fetch import Fetcher, FetchPolicy
from pipeline.hops.clip.filter import UrlOutcome, outcome_of, prepare_url
from pipeline.hops.dataset.hash_lists import HashLists
from pipeline.provenance.reader import ProvenancePolicy

if TYPE_CHECKING:
    from pipeline.hops.clip.embed import ClipModel, ClipSpec

OUTCOME_SCHEMA = pa.schema(
    [
        ("url_id", pa.string()),
        ("url", pa.string()),
        ("status", pa.string()),
        ("http_status", pa.int64()),
        ("final_url", pa.string()),
        ("attempts", pa.int64()),
        ("error", pa.string()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("n_bytes", pa.int64()),
        ("sha256", pa.string()),
        ("md5", pa.string()),
        ("pdq", pa.string()),
        ("copy_desc", pa.string()),
        ("provenance", pa.string()),
        ("image_format", pa.string()),
        ("image_bytes", pa.binary()),
        ("pixels", pa.binary()),
        ("pixels_height", pa.int64()),
        ("pixels_width", pa.int64()),
    ]
)
"""A prepared batch: one row per URL, its outcome before embedding (``provenance`` as JSON)
and its decoded image as uint8 RGB rows (``pixels``, height x width x 3), null when it is not
to be embedded."""
_PIXELS = ("pixels", "pixels_height", "pixels_width")
_FIELDS = [name for name in OUTCOME_SCHEMA.names if name not in _PIXELS]


@dataclass(frozen=True)
class RayClipPlan:
    """How hop 3 is laid out on the cluster."""

    fetch_batch: int = 64
    """URLs per fetch task."""
    fetch_cpus: float = 0.5
    """CPUs reserved per fetch task: fetching mostly waits on the network. It must be more
    than the service client's 0, else Ray Data fuses the fetch stage into the client actor
    and fetching no longer runs as tasks of its own."""
    embed_actors: int = 1
    """CLIP service actors in the pool."""
    embed_cpus: float = 1.0
    """CPUs each CLIP service actor holds while it stays on the cluster."""
    embed_gpus: float | None = None
    """GPUs per CLIP actor; None: 1 where the cluster has GPUs, else 0."""
    embed_threads: int | None = None
    """torch threads per CLIP actor on CPU; None: the cluster's CPUs shared among the actors
    (Ray would give an actor one thread per CPU it reserves, and the fetch tasks mostly wait
    on the network)."""
    service_idle_s: float = 600.0
    """Seconds a CLIP service actor stays on the cluster without a batch before it leaves,
    handing back what it reserves (a later hop then loads the model again)."""


@dataclass(frozen=True)
class Shrink:
    """The model preprocessing's first steps, a torchvision ``Resize`` of the short side and a
    ``CenterCrop``, done with PIL alone as torchvision does them on a PIL image: the pixels
    shipped to the actor are the ones its preprocessing would crop, and preprocessing them
    again resizes and crops nothing, so the tensor is the same bit for bit."""

    short_side: int
    resample: int
    """PIL's resampling filter (torchvision's ``pil_modes_mapping``)."""
    crop: tuple[int, int]
    """Height and width."""

    def __call__(self, image: Any) -> Any:
        w, h = image.size
        short, long = (w, h) if w <= h else (h, w)
        new_long = int(self.short_side * long / short)
        size = (self.short_side, new_long) if w <= h else (new_long, self.short_side)
        if size != (w, h):
            image = image.resize(size, self.resample)
        (ch, cw), (w, h) = self.crop, image.size
        if ch > h or cw > w:
            return image  # the actor's CenterCrop pads it
        top, left = round((h - ch) / 2.0), round((w - cw) / 2.0)
        return image.crop((left, top, left + cw, top + ch))


def shrink_of(preprocess: Any) -> Shrink | None:
    """The :class:`Shrink` an open_clip preprocessing starts with, or None when it starts
    otherwise (the fetch tasks then ship the decoded pixels whole)."""
    from torchvision.transforms import CenterCrop, Resize
    from torchvision.transforms.functional import pil_modes_mapping

    steps = list(getattr(preprocess, "transforms", []))[:2]
    if len(steps) < 2 or not isinstance(steps[0], Resize) or not isinstance(steps[1], CenterCrop):
        return None
    resize, crop = steps
    size = [resize.size] if isinstance(resize.size, int) else list(resize.size)
    if len(size) != 1 or resize.max_size is not None:
        return None
    short_side = size[0]
    return Shrink(short_side, pil_modes_mapping[resize.interpolation], tuple(crop.size))


def _rgb_pixels(image: Any, shrink: Shrink | None = None) -> np.ndarray:
    """The fetch task's stand-in for preprocessing: the decoded image as uint8 RGB pixels,
    shrunk to the model's input size when ``shrink`` is given."""
    image = image if image.mode == "RGB" else image.convert("RGB")
    return np.asarray(shrink(image) if shrink else image, dtype=np.uint8)


def prepare_batch(
    batch: pa.Table,
    policy: FetchPolicy,
    workers: int,
    decode: DecodePolicy,
    keep_images: bool,
    hash_lists: HashLists | None,
    provenance: ProvenancePolicy | None = None,
    shrink: Shrink | None = None,
) -> pa.Table:
    """A fetch task: fetch, hash, read provenance and decode a batch of (url_id, url) rows,
    each image shrunk to the model's input size when ``shrink`` is given."""
    fetcher = Fetcher(policy, workers)
    items = list(zip(batch.column("url_id").to_pylist(), batch.column("url").to_pylist(),
                     strict=True))  # fmt: skip

    def work(item: tuple[str, str]) -> dict[str, Any]:
        uid, url = item
        prepared = prepare_url(
            fetcher,
            decode,
            lambda im: _rgb_pixels(im, shrink),
            keep_images,
            url,
            hash_lists,
            provenance,
        )
        outcome = outcome_of(uid, url, prepared)
        row = {name: getattr(outcome, name) for name in _FIELDS}
        if outcome.provenance is not None:
            row["provenance"] = orjson.dumps(outcome.provenance).decode()
        pixels = prepared.tensor
        row["pixels"] = None if pixels is None else pixels.tobytes()
        row["pixels_height"], row["pixels_width"] = (
            (None, None) if pixels is None else (pixels.shape[0], pixels.shape[1])
        )
        return row

    with ThreadPoolExecutor(max(1, min(workers, len(items))), thread_name_prefix="fetch") as pool:
        rows = list(pool.map(work, items))
    return pa.Table.from_pylist(rows, schema=OUTCOME_SCHEMA)


class ClipEmbedder:
    """What a CLIP service actor runs: loads CLIP once, preprocesses and embeds the pixels of
    each batch it is given."""

    def __init__(self, spec: ClipSpec, threads: int | None = None) -> None:
        import torch

        from pipeline.hops.clip.embed import ClipModel

        if threads:
            torch.set_num_threads(threads)
        self.clip = ClipModel(spec)

    def __call__(self, batch: pa.Table) -> pa.Table:
        import torch
        from PIL import Image

        pixels = batch.column("pixels").to_pylist()
        heights = batch.column("pixels_height").to_pylist()
        widths = batch.column("pixels_width").to_pylist()
        rows = [i for i, p in enumerate(pixels) if p is not None]
        embeddings: list[bytes | None] = [None] * len(pixels)
        if rows:
            step = self.clip.spec.batch_size
            for start in range(0, len(rows), step):
                chunk = rows[start : start + step]
                images = [
                    np.frombuffer(pixels[i], np.uint8).reshape(heights[i], widths[i], 3)
                    for i in chunk
                ]
                stacked = torch.stack([self.clip.preprocess(Image.fromarray(im)) for im in images])
                with torch.inference_mode():
                    x = stacked.to(self.clip.device, dtype=self.clip._dtype)
                    feats = self.clip.model.encode_image(x, normalize=True).float().cpu().numpy()
                for i, emb in zip(chunk, feats, strict=True):
                    embeddings[i] = emb.astype(np.float32).tobytes()
        out = batch.drop_columns(list(_PIXELS))
        return out.append_column("embedding", pa.array(embeddings, pa.binary()))


def service_spec(clip: ClipModel, plan: RayClipPlan) -> ServiceSpec:
    """The CLIP service pool hop 3 uses on the connected cluster under ``plan``."""
    import ray

    resources = ray.cluster_resources()
    gpus = plan.embed_gpus
    if gpus is None:
        gpus = 1.0 if resources.get("GPU", 0) > 0 else 0.0
    threads = plan.embed_threads
    if threads is None and not gpus:
        threads = max(1, int(resources.get("CPU", 1)) // max(1, plan.embed_actors))
    return ServiceSpec(
        clip=dataclasses.asdict(clip.spec),
        model_id=clip.model_id,
        actors=plan.embed_actors,
        cpus=plan.embed_cpus,
        gpus=gpus,
        threads=threads,
        idle_s=plan.service_idle_s,
        code=code_digest(),
    )


def ray_fetch_and_embed(
    urls: dict[str, str],
    clip: ClipModel,
    fetcher: Fetcher,
    decode: DecodePolicy,
    keep_images: bool = False,
    hash_lists: HashLists | None = None,
    provenance: ProvenancePolicy | None = None,
    plan: RayClipPlan = RayClipPlan(),
) -> Iterator[UrlOutcome]:
    """:func:`~pipeline.hops.clip.filter.fetch_and_embed` on the connected Ray cluster."""
    import ray.data
    from ray.data import ActorPoolStrategy

    if not urls:
        return

    service = service_spec(clip, plan)
    start_services(service)  # the model loads while the first fetch tasks run
    items = [{"url_id": uid, "url": url} for uid, url in urls.items()]
    blocks = max(1, -(-len(items) // plan.fetch_batch))
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    prepared = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
        prepare_batch,
        batch_size=plan.fetch_batch,
        batch_format="pyarrow",
        num_cpus=plan.fetch_cpus,
        fn_kwargs=dict(  # keywords, not string keys: one of them names a table
            policy=fetcher.policy,
            workers=fetcher.workers,
            decode=decode,
            keep_images=keep_images,
            hash_lists=hash_lists,
            provenance=provenance,
            shrink=shrink_of(clip.preprocess),
        ),
    )
    embedded = prepared.map_batches(
        ServiceClient,
        fn_constructor_kwargs={"spec": service},
        compute=ActorPoolStrategy(  # two blocks in flight per service actor
            size=1,
            max_tasks_in_flight_per_actor=2 * plan.embed_actors,
            max_concurrent_calls_per_actor=2 * plan.embed_actors,
            enable_true_multi_threading=True,
        ),
        batch_size=None,  # each fetched block as it comes (the service batches for the model)
        batch_format="pyarrow",
        num_cpus=0,  # it waits on the service, which holds the CPUs or GPU
    )
    for batch in embedded.iter_batches(batch_format="pyarrow", batch_size=None):
        for row in batch.to_pylist():
            data = row.pop("embedding")
            found = row.pop("provenance")
            outcome = UrlOutcome(**row, provenance=None if found is None else orjson.loads(found))
            if data is not None:
                outcome.embedding = np.frombuffer(data, dtype=np.float32).copy()
                maybe_kill("clip.embedded")
            yield outcome
