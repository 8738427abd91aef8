"""A deterministic synthetic web: the project's embedded default dataset.

`generate_web(root, config)` writes Common-Crawl-like crawls (WARC, WAT, paths files,
collinfo.json), the image files, a route table and truth tables; `SyntheticWebServer`
serves the images on loopback with realistic faults.
"""

from .config import SyntheticWebConfig
from .generate import WebManifest, generate_web
from .server import SyntheticWebServer, serve_forever

__all__ = [
    "SyntheticWebConfig",
    "SyntheticWebServer",
    "WebManifest",
    "generate_web",
    "serve_forever",
]
