"""Hop 3's CLIP on Ray as a service: named, detached actors that load the model once per
cluster and embed for every hop-3 job that comes after, until they sit idle.

Each Dagster step joins the cluster as a job of its own, and an actor pool made per job would
load CLIP per partition: on CPU, importing open_clip alone costs seconds of CPU per actor; on a
GPU cluster, loading large weights per partition wastes the GPUs. So the pool is
``embed_actors`` actors named after the model (:meth:`ServiceSpec.names`: the weights' digest,
how they run and the code they run), created by the first job that needs them
(``get_if_exists``) and found by the next. Each leaves the cluster, handing back its CPUs or
GPU, once it has had no batch for ``idle_s`` seconds; :func:`release_clip_services` removes
them at once. A batch whose actor left between lookup and call is sent again to a new one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

NAMESPACE = "crawl2diffusion"
"""The Ray namespace of the service actors (detached actors are looked up by name in it)."""
PREFIX = "clip-"
LOOKUP_ATTEMPTS = 5


@dataclass(frozen=True)
class ServiceSpec:
    """One pool of CLIP service actors: what they load and what each reserves."""

    clip: dict[str, Any]
    """The :class:`~pipeline.hops.clip.embed.ClipSpec`'s fields (a plain dict: the tasks
    that carry it must not import torch to unpickle it)."""
    model_id: str
    """The weights' name and digest (:attr:`~pipeline.hops.clip.embed.ClipModel.model_id`)."""
    actors: int
    cpus: float
    gpus: float
    threads: int | None
    idle_s: float
    code: str
    """The digest of the code the actors run (:func:`code_digest`, taken by the driver)."""

    def names(self) -> list[str]:
        """The actors' names: equal specs share a pool; other weights, settings or code get
        their own (an old pool leaves when idle)."""
        key = "|".join(
            map(str, (self.model_id, self.clip, self.cpus, self.gpus, self.threads, self.code))
        )
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        return [f"{PREFIX}{digest}-{i}" for i in range(self.actors)]


@functools.cache
def code_digest() -> str:
    """sha256 of the sources a service actor runs: this module, the Ray hop 3 module and the
    CLIP model's."""
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in (here / "clip_service.py", here / "clip.py", here.parent / "hops/clip/embed.py"):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


class ClipService:
    """A service actor: a :class:`~pipeline.engine.clip.ClipEmbedder` that also tells who it
    is and leaves the cluster after ``idle_s`` seconds without a batch."""

    def __init__(self, clip: dict[str, Any], threads: int | None, idle_s: float) -> None:
        from pipeline.engine.clip import ClipEmbedder
        from pipeline.hops.clip.embed import ClipSpec

        self.embedder = ClipEmbedder(ClipSpec(**clip), threads)
        self.started = time.time()
        self.batches = 0
        self._last = time.monotonic()
        self._busy = False
        self._idle_s = idle_s
        threading.Thread(target=self._leave_when_idle, name="idle-exit", daemon=True).start()

    def embed(self, batch: pa.Table) -> pa.Table:
        self._busy = True
        try:
            return self.embedder(batch)
        finally:
            self.batches += 1
            self._last = time.monotonic()
            self._busy = False

    def info(self) -> dict[str, Any]:
        """Process id, start time and batches handled so far."""
        return {"pid": os.getpid(), "started": self.started, "batches": self.batches}

    def _leave_when_idle(self) -> None:
        import ray

        while True:
            time.sleep(min(5.0, max(0.1, self._idle_s / 4)))
            if not self._busy and time.monotonic() - self._last > self._idle_s:
                ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
                return


_handles: dict[tuple[str, str], Any] = {}
"""Handles found so far in this process, by job (a handle does not outlive its job's
connection) and name."""


@functools.cache
def _actor_class() -> Any:
    import ray

    return ray.remote(ClipService)


def service_actor(spec: ServiceSpec, name: str, fresh: bool = False) -> Any:
    """The handle of the service actor ``name``, created if the cluster has none (looked up
    again when ``fresh``)."""
    import ray

    key = (ray.get_runtime_context().get_job_id(), name)
    if key in _handles and not fresh:
        return _handles[key]
    _handles[key] = (
        _actor_class()
        .options(
            name=name,
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            num_cpus=spec.cpus,
            num_gpus=spec.gpus,
            max_restarts=0,
        )
        .remote(spec.clip, spec.threads, spec.idle_s)
    )
    return _handles[key]


def start_services(spec: ServiceSpec) -> list[Any]:
    """The pool's handles, creating the actors that are missing (they load the model while
    the first fetch tasks run)."""
    return [service_actor(spec, name) for name in spec.names()]


def embed_on_service(batch: pa.Table, spec: ServiceSpec, name: str) -> pa.Table:
    """Embed one fetched block on the pool's actor ``name``, sending it again to a new actor
    of that name if the one found has left meanwhile."""
    import ray

    for attempt in range(LOOKUP_ATTEMPTS):
        try:
            actor = service_actor(spec, name, fresh=attempt > 0)
            return ray.get(actor.embed.remote(batch))
        except ray.exceptions.RayActorError:
            if attempt == LOOKUP_ATTEMPTS - 1:
                raise
            time.sleep(0.5 * (attempt + 1))  # let the cluster forget the name of the one gone
    raise AssertionError("unreachable")


class ServiceClient:
    """Ray Data's stage in front of the service: one light actor per job (no torch) that
    hands each fetched block to the pool's least busy actor (the next in turn among equals),
    with up to two blocks per service actor in flight, so every actor stays busy."""

    def __init__(self, spec: ServiceSpec) -> None:
        self.spec = spec
        self.names = spec.names()
        self._lock = threading.Lock()
        self._in_flight = [0] * len(self.names)
        self._turn = 0

    def __call__(self, batch: pa.Table) -> pa.Table:
        with self._lock:
            n = len(self.names)
            order = [(self._turn + k) % n for k in range(n)]
            chosen = min(order, key=self._in_flight.__getitem__)
            self._in_flight[chosen] += 1
            self._turn = (chosen + 1) % n
        try:
            return embed_on_service(batch, self.spec, self.names[chosen])
        finally:
            with self._lock:
                self._in_flight[chosen] -= 1


def running_services() -> list[str]:
    """Names of the CLIP service actors alive on the connected cluster."""
    import ray

    return sorted(
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["namespace"] == NAMESPACE and a["name"].startswith(PREFIX)
    )


def release_clip_services() -> list[str]:
    """Remove every CLIP service actor from the connected cluster (their CPUs and GPUs go
    back to it at once); their names."""
    import ray

    names = running_services()
    for name in names:
        with contextlib.suppress(ValueError):  # it left on its own meanwhile
            ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
    return names
