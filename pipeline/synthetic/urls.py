"""How pages refer to images: relative, absolute and odd URLs, and their resolution."""

from __future__ import annotations

import posixpath
from urllib.parse import quote, unquote, urljoin, urlsplit

# Hosts that pages link to but no server answers for.
DEAD_HOSTS = ("old-blog.synth.test", "cdn.gone-images.synth.test")
# URLs no crawler-side fetcher should request (loopback, private, link-local metadata).
PRIVATE_IMAGE_URLS = (
    "http://127.0.0.1/admin/banner.png",
    "http://localhost:8080/img/preview.jpg",
    "http://10.0.0.12/photos/team.jpg",
    "http://192.168.1.20/cam/snapshot.jpg",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[::1]/logo.png",
    "http://172.16.5.4/internal/chart.png",
)
BLOCKED_REDIRECTS = (
    "http://169.254.169.254/latest/meta-data/",
    "http://127.0.0.1/admin/secret.png",
    "http://[::1]:8080/internal.jpg",
    "http://10.1.2.3/private.jpg",
)
DATA_URLS = (
    "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQ"
    "DwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E",
)
JAVASCRIPT_URLS = ("javascript:void(0)", "javascript:void(0);", "javascript:;")

_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
_SAFE_QUERY = _SAFE_PATH + "?"


def canonical_url(url: str) -> str:
    """Percent-encode what a client would encode (non-ASCII, spaces) and nothing else."""
    parts = urlsplit(url)
    path = quote(parts.path, safe=_SAFE_PATH)
    query = quote(parts.query, safe=_SAFE_QUERY)
    out = f"{parts.scheme}://{parts.netloc}{path}"
    return f"{out}?{query}" if query else out


def make_src(target: str, page_url: str, base_href: str | None, ref_kind: str) -> tuple[str, str]:
    """The src that refers from a page to `target`, and the kind actually produced.

    Relative forms need the same origin as the reference URL (the <base href> if the page
    has one); otherwise the absolute URL is written.
    """
    ref = urljoin(page_url, base_href) if base_href else page_url
    t, r = urlsplit(target), urlsplit(ref)
    same_origin = (t.scheme, t.netloc) == (r.scheme, r.netloc)
    tail = f"?{t.query}" if t.query else ""
    if ref_kind == "relative" and same_origin:
        start = r.path if r.path.endswith("/") else posixpath.dirname(r.path)
        rel = posixpath.relpath(t.path, start or "/") + tail
        if base_href:
            return rel, "base_relative"
        return rel, "relative_dotdot" if rel.startswith("../") else "relative_plain"
    if ref_kind == "root_relative" and same_origin:
        return t.path + tail, "root_relative"
    if ref_kind == "protocol_relative" and t.scheme == r.scheme:
        return f"//{t.netloc}{t.path}{tail}", "protocol_relative"
    return target, "absolute"


def resolve(page_url: str, base_href: str | None, src: str) -> str:
    """Resolve a src the way a browser does (against <base href> when present)."""
    ref = urljoin(page_url, base_href) if base_href else page_url
    return urljoin(ref, src)


def display_form(url: str) -> str:
    """A URL as authors often write it: percent-escapes of non-ASCII text decoded."""
    parts = urlsplit(url)
    return url.replace(parts.path, unquote(parts.path), 1)
