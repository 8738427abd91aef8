"""Dagster resources: the lake, where crawls come from, and the synthetic web."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from pipeline.lake import Lake


class LakeResource(ConfigurableResource):
    """The Parquet lake: a local directory or ``s3://bucket/prefix`` (with s3fs options)."""

    root: str
    storage_options: dict[str, Any] = {}

    def lake(self) -> Lake:
        return Lake(self.root, self.storage_options)


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
    serve: bool = True
    _server: Any = PrivateAttr(default=None)

    def web_config(self):
        from pipeline.synthetic.config import SyntheticWebConfig

        return SyntheticWebConfig(
            seed=self.seed,
            pages_per_crawl=self.pages_per_crawl,
            wat_files_per_crawl=self.wat_files_per_crawl,
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
        with SyntheticWebServer(self.root) as server:
            self._server = server
            context.log.info(f"synthetic web serving {self.root} at {server.base_url}")
            try:
                yield self
            finally:
                self._server = None

    @property
    def proxy_url(self) -> str | None:
        """HTTP proxy URL that reaches every synthetic host, while the server runs."""
        return self._server.proxy_url if self._server is not None else None
