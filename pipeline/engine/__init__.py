"""Where the wide hops run: in this process (the default) or on a Ray cluster.

:class:`Engine` gives hop 1 its link batches (:meth:`Engine.image_link_batches`), hop 3 its
fetch-and-embed function (:meth:`Engine.fetch_and_embed`) and the download hop its
img2dataset distributor and cluster connection (:meth:`Engine.download_cluster`). The rows are
the same on both engines; only where the work runs differs. Ray is an optional dependency
(``pip install 'crawl2diffusion[ray]'``), imported only when the ``ray`` engine is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pipeline.engine.clip import RayClipPlan
from pipeline.engine.worker_env import worker_env
from pipeline.settings import ENGINES, Settings

if TYPE_CHECKING:  # not imported by hop 3's Ray workers, which import this package
    from pipeline.hops.wat.records import ExtractStats

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "")


@dataclass(frozen=True)
class Engine:
    """An engine: ``kind`` (:data:`ENGINES`) and, for Ray, the cluster's ``address`` (GCS
    ``host:port``, ``ray://host:port``, ``auto``; empty: a throwaway local cluster per hop)."""

    kind: str = Settings.engine
    address: str = Settings.ray_address
    clip_plan: RayClipPlan = field(default_factory=RayClipPlan)
    wat_cpus: float = 1.0
    """CPUs reserved per hop-1 task (one task per WAT file)."""

    def __post_init__(self) -> None:
        if self.kind not in ENGINES:
            raise ValueError(f"unknown engine {self.kind!r} (expected one of {list(ENGINES)})")

    @property
    def is_ray(self) -> bool:
        return self.kind == "ray"

    @property
    def local(self) -> bool:
        """The cluster runs on this machine (its workers can import the driver's code)."""
        host = self.address.removeprefix("ray://").rsplit(":", 1)[0]
        return host in LOOPBACK_HOSTS

    def session(
        self,
        storage_options: dict[str, Any] | None = None,
        extra_env: dict[str, str | None] | None = None,
    ) -> AbstractContextManager[Any]:
        """For Ray, joins the cluster for one hop with the workers' environment
        (:func:`pipeline.engine.worker_env.worker_env`); in process, does nothing."""
        if not self.is_ray:
            return nullcontext()
        from pipeline.engine.cluster import connected

        env = worker_env(storage_options, extra_env, local=self.local)
        return connected(self.address, env)

    def image_link_batches(
        self, uris: list[str], crawl_id: str, stats: ExtractStats, **kwargs: Any
    ) -> Iterator[pa.RecordBatch]:
        """Hop 1: the link batches of a slice's WAT files, in order (inside :meth:`session`)."""
        if self.is_ray:
            from pipeline.engine.wat import ray_image_link_batches

            yield from ray_image_link_batches(uris, crawl_id, stats, self.wat_cpus, **kwargs)
            return
        from pipeline.hops.wat.records import iter_image_link_batches

        for uri in uris:
            yield from iter_image_link_batches(uri, crawl_id, stats=stats, **kwargs)

    @property
    def fetch_and_embed(self) -> Callable | None:
        """Hop 3's ``embed`` for :func:`~pipeline.hops.clip.filter.score_pairs` (None: in
        process); the Ray Data pipeline must run inside :meth:`session`."""
        if not self.is_ray:
            return None
        from pipeline.engine.clip import ray_fetch_and_embed

        return partial(ray_fetch_and_embed, plan=self.clip_plan)

    def distributor(self, configured: str) -> str:
        """img2dataset's distributor: ``ray`` on the Ray engine, else the configured one."""
        return "ray" if self.is_ray else configured

    def download_cluster(
        self,
    ) -> Callable[[dict[str, str | None]], AbstractContextManager[Any]] | None:
        """For the download hop on Ray: joins the cluster with img2dataset's environment (its
        guard proxy, S3 variables) as the workers' environment; None in process."""
        if not self.is_ray:
            return None

        @contextmanager
        def join(env: dict[str, str | None]) -> Iterator[Any]:
            with self.session(extra_env=env) as ray:
                yield ray

        return join
