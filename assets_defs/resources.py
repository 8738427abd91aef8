"""Dagster resources: the lake, where crawls come from, and the synthetic web."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from pipeline.engine import Engine
from pipeline.engine.clip import RayClipPlan
from pipeline.lake.ledger import AccessLedger
from pipeline.lake.store import Lake
from pipeline.settings import Settings


class LakeResource(ConfigurableResource):
    """The Delta lake: a local directory or ``s3://bucket/prefix`` (with s3fs options)."""

    root: str
    storage_options: dict[str, Any] = {}
    _ledger: AccessLedger = PrivateAttr(default_factory=AccessLedger)

    def lake(self) -> Lake:
        """The lake; every lake a step opens shares one ledger of the table versions read
        and written, which :func:`assets_defs.factory.table_result` records."""
        return Lake(self.root, self.storage_options, self._ledger)

    @property
    def ledger(self) -> AccessLedger:
        return self._ledger


class CrawlSourceResource(ConfigurableResource):
    """Where WAT files come from: the synthetic web's root, ``https://data.commoncrawl.org``
    or ``s3://commoncrawl`` (``storage_options={"anon": true}`` for anonymous S3)."""

    data_root: str
    collinfo_uri: str
    crawl_ids: list[str] = []
    """Crawls to process; empty means every crawl in the crawl index."""
    storage_options: dict[str, Any] = {}


class SyntheticWebResource(ConfigurableResource):
    """The embedded default web. When enabled, it is generated (once; later runs reuse it)
    and its HTTP server runs on 127.0.0.1 at a free port for the duration of a run."""

    enabled: bool = True
    root: str = "data/web"
    seed: int = 2026
    pages_per_crawl: int = 1100
    wat_files_per_crawl: int = 4
    sites: int = 40
    crawl_ids: list[str] | None = None
    """The synthetic crawls to generate; None: SyntheticWebConfig's (two crawls)."""
    serve: bool = True
    download_epoch: int = 2
    """What the download hop sees: 2, the web after hop 3 scored it (some images replaced,
    some URLs redirected late into private addresses, some bombs); 1, unchanged."""
    _server: Any = PrivateAttr(default=None)
    _later: Any = PrivateAttr(default=None)

    def web_config(self):
        from pipeline.synthetic.config import SyntheticWebConfig

        crawls = {"crawl_ids": tuple(self.crawl_ids)} if self.crawl_ids else {}
        return SyntheticWebConfig(
            seed=self.seed,
            pages_per_crawl=self.pages_per_crawl,
            wat_files_per_crawl=self.wat_files_per_crawl,
            sites=self.sites,
            **crawls,
        )

    @contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator["SyntheticWebResource"]:
        if not self.enabled:
            yield self
            return
        from pipeline.synthetic.generate import generate_web
        from pipeline.synthetic.server import SyntheticWebServer

        generate_web(self.root, self.web_config())
        if not self.serve:
            yield self
            return
        with (
            SyntheticWebServer(self.root) as server,
            SyntheticWebServer(self.root, epoch=self.download_epoch) as later,
        ):
            self._server, self._later = server, later
            context.log.info(
                f"synthetic web serving {self.root} at {server.base_url}; downloads see "
                f"epoch {self.download_epoch} at {later.base_url}"
            )
            try:
                yield self
            finally:
                self._server = self._later = None

    @property
    def proxy_url(self) -> str | None:
        """HTTP proxy URL that reaches every synthetic host, while the server runs."""
        return self._server.proxy_url if self._server is not None else None

    @property
    def download_proxy_url(self) -> str | None:
        """HTTP proxy for the download hop: the web at ``download_epoch``, while serving."""
        return self._later.proxy_url if self._later is not None else None

    def resolve_map(self) -> dict[str, str]:
        """Every synthetic host -> the server's ``ip:port`` (empty when not serving)."""
        server = self._server
        if server is None:
            return {}
        address = server.base_url.removeprefix("http://")
        return {host: address for host in server.hosts}


class ClipModelResource(ConfigurableResource):
    """The CLIP model and the heads over its embeddings.

    ``model``: an open_clip name (``ViT-B-32`` with ``pretrained="openai"``, LAION-5B's filter)
    or ``local-dir:/path``; empty: the project's small default, trained on synthetic images.
    Head paths take LAION's ``.pth`` state dicts; empty: the project's default heads.
    """

    model: str = ""
    pretrained: str | None = None
    device: str = "auto"
    precision: str = "auto"
    batch_size: int = 256
    punsafe_head: str = ""
    pwatermark_head: str = ""
    aesthetic_head: str = ""
    safety_threshold: float = Settings.safety_threshold
    """punsafe at or above which a generated sample is flagged (``samples``)."""
    _clip: Any = PrivateAttr(default=None)

    def spec(self):
        from pipeline.hops.clip.embed import DEFAULT_CLIP_MODEL, ClipSpec

        return ClipSpec(
            model=self.model or DEFAULT_CLIP_MODEL,
            pretrained=self.pretrained,
            device=self.device,
            precision=self.precision,
            batch_size=self.batch_size,
        )

    def clip(self):
        """The loaded model (loaded once per process)."""
        if self._clip is None:
            from pipeline.hops.clip.embed import ClipModel

            self._clip = ClipModel(self.spec())
        return self._clip

    def head(self, kind: str):
        from pipeline.hops.clip.heads import load_head

        path = {"punsafe": self.punsafe_head, "pwatermark": self.pwatermark_head,
                "aesthetic": self.aesthetic_head}[kind]  # fmt: skip
        return load_head(kind, path or None)

    def safety_filter(self):
        """The interface safety filter: the punsafe head at ``safety_threshold``."""
        from pipeline.hops.samples.safety import SafetyFilter

        return SafetyFilter(self.clip(), self.head("punsafe"), self.safety_threshold)


class EngineResource(ConfigurableResource):
    """Where hop 1, hop 3 and the download run (:mod:`pipeline.engine`): ``in_process`` or
    ``ray`` (``ray_address``: a cluster's ``host:port`` or ``ray://host:port``; empty: a local
    cluster per hop). Same rows on both."""

    kind: str = Settings.engine
    ray_address: str = Settings.ray_address
    fetch_batch: int = RayClipPlan.fetch_batch
    """Hop 3 on Ray: URLs per fetch task."""
    fetch_cpus: float = RayClipPlan.fetch_cpus
    embed_actors: int = RayClipPlan.embed_actors
    """Hop 3 on Ray: CLIP actors in the pool."""
    embed_gpus: float | None = RayClipPlan.embed_gpus
    """GPUs per CLIP actor; None: 1 where the cluster has GPUs, else 0."""
    clip_service_idle_s: float = RayClipPlan.service_idle_s
    """Hop 3 on Ray: seconds the CLIP service actors stay loaded without a batch."""

    def engine(self) -> Engine:
        plan = RayClipPlan(self.fetch_batch, self.fetch_cpus, self.embed_actors,
                           embed_gpus=self.embed_gpus,
                           service_idle_s=self.clip_service_idle_s)  # fmt: skip
        return Engine(self.kind, self.ray_address, plan)
