"""A loopback HTTP server for the synthetic web, with realistic faults.

Three ways to address an image (all plain HTTP; the server never speaks TLS):

- as an HTTP proxy: clients set `http_proxy=server.proxy_url` and request
  `GET http://host/path HTTP/1.1` (absolute-form target);
- by virtual host: `GET /path` with `Host: lumen-gallery.synth.test`;
- by path: `GET /lumen-gallery.synth.test/path` on `server.base_url` (`url_for(url)` builds
  it; this is the way for `https://` URLs, which a proxy could only tunnel with CONNECT).

Routes come from `routes.jsonl`; unknown hosts and paths get 404. Faults: `not_found` (404),
`server_error` (500), `slow` (answers after `slow_seconds`), `truncated` (Content-Length
larger than what is sent, then the connection closes), `wrong_content_type` (image sent as
text/html), `not_image` (HTML sent as image/jpeg), `redirect` (302 to another image; in path
mode the Location is rewritten to path form), `redirect_blocked` (302 to a metadata or
loopback address), `oversized` (a decompression-bomb PNG or a body padded to `pad_to` bytes).

`epoch`: 1 serves the web as generated; 2 serves it as it is after hop 3 scored it (each
route's `epoch2` answer: other bytes, a late redirect into a private address, a bomb; see
`epoch2.py`). `requests` lists the last 100,000 (host, path) asked for, in order (path
`CONNECT` for a refused tunnel).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import socket
import socketserver
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .routes import load_routes

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_LOG_SIZE = 100_000


class _Web:
    """Routes and files of one generated web, shared by all handler threads."""

    def __init__(self, root: Path, slow_seconds: float, epoch: int) -> None:
        self.root = root
        self.routes = load_routes(root / "routes.jsonl", epoch)
        self.hosts = frozenset(host for host, _ in self.routes)
        self.slow_seconds = slow_seconds
        self.stopping = threading.Event()
        self.requests: deque[tuple[str, str]] = deque(maxlen=_LOG_SIZE)
        self.lock = threading.Lock()

    def log(self, host: str, path: str) -> None:
        with self.lock:
            self.requests.append((host, path))

    def lookup(self, host: str, path: str, query: str) -> dict[str, Any] | None:
        if query:
            route = self.routes.get((host, f"{path}?{query}"))
            if route is not None:
                return route
        return self.routes.get((host, path))

    def body(self, route: dict[str, Any]) -> bytes:
        return (self.root / route["file"]).read_bytes() if route.get("file") else b""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], web: _Web, family: int) -> None:
        self.address_family = family
        self.web = web
        self.connections: set[socket.socket] = set()
        self.lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn): slow without DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (truncated bodies, aborted downloads) are not server errors.
        log.debug("connection from %s ended abruptly", client_address, exc_info=True)

    def close_connections(self) -> None:
        with self.lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SyntheticWeb/1.0"
    timeout = 30
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_CONNECT(self) -> None:
        self.server.web.log(self.path.rpartition(":")[0].strip("[]"), "CONNECT")
        self._simple(
            501, "CONNECT is not supported: request http:// URLs or base_url/<host>/<path>"
        )

    # ------------------------------------------------------------------
    def _target(self) -> tuple[str, str, str, str]:
        """(host, decoded path, query, mode) of the request."""
        web = self.server.web
        if self.path.startswith(("http://", "https://")):
            parts = urlsplit(self.path)
            return (parts.hostname or "", unquote(parts.path or "/"), parts.query, "proxy")
        parts = urlsplit(self.path)
        host_header = urlsplit("//" + self.headers.get("Host", "")).hostname or ""
        if host_header in web.hosts:
            return host_header, unquote(parts.path), parts.query, "host"
        first, _, rest = parts.path.lstrip("/").partition("/")
        if first in web.hosts:
            return first, unquote("/" + rest), parts.query, "path"
        return host_header, unquote(parts.path), parts.query, "host"

    def _headers(self, status: int, content_type: str, length: int, extra: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()

    def _simple(self, status: int, message: str, extra: dict[str, str] | None = None) -> None:
        body = f"<html><body><h1>{status}</h1><p>{message}</p></body></html>\n".encode()
        self._headers(status, "text/html; charset=utf-8", len(body), extra or {})
        if self.command != "HEAD":
            self.wfile.write(body)

    def _serve(self, send_body: bool) -> None:
        web = self.server.web
        host, path, query, mode = self._target()
        web.log(host, path)
        route = web.lookup(host, path, query)
        if route is None:
            self._simple(404, "Not Found")
            return
        fault, headers = route.get("fault"), dict(route.get("headers") or {})
        status = int(route["status"])
        if fault == "slow" and web.stopping.wait(web.slow_seconds):
            self.close_connection = True
            return
        if status in (301, 302, 303, 307, 308):
            headers["Location"] = self._location(route["location"], mode)
            self._simple(status, "Found", headers)
            return
        if status != 200:
            self._simple(status, "Not Found" if status == 404 else "Internal Server Error", headers)
            return
        body = web.body(route)
        if fault == "truncated":
            self.close_connection = True
            headers["Connection"] = "close"
            self._headers(200, route["content_type"], len(body), headers)
            if send_body:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
            return
        total = max(int(route.get("pad_to") or 0), len(body))
        self._headers(200, route["content_type"], total, headers)
        if not send_body:
            return
        try:
            self.wfile.write(body)
            left = total - len(body)
            zeros = bytes(min(_CHUNK, left))
            while left > 0 and not web.stopping.is_set():
                n = min(left, len(zeros))
                self.wfile.write(zeros[:n])
                left -= n
            if left:
                self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _location(self, location: str, mode: str) -> str:
        parts = urlsplit(location)
        if mode == "path" and parts.hostname in self.server.web.hosts:
            query = f"?{parts.query}" if parts.query else ""
            return f"/{parts.hostname}{parts.path}{query}"
        return location


def _check_loopback(host: str) -> int:
    """The address family for `host`; anything but loopback is refused."""
    if host == "localhost":
        return socket.AF_INET
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError as exc:
        raise ValueError(f"not a loopback address: {host!r}") from exc
    if not addr.is_loopback:
        raise ValueError(f"the synthetic web only listens on loopback, not {host!r}")
    return socket.AF_INET6 if addr.version == 6 else socket.AF_INET


class SyntheticWebServer:
    """Serve a generated synthetic web on loopback in a background thread."""

    def __init__(
        self,
        root: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        slow_seconds: float = 3.0,
        epoch: int = 1,
    ) -> None:
        if epoch not in (1, 2):
            raise ValueError(f"epoch must be 1 (as generated) or 2 (after hop 3), not {epoch}")
        self.root = Path(root)
        self.host = host
        self.port = port
        self.slow_seconds = slow_seconds
        self.epoch = epoch
        self._family = _check_loopback(host)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT"""
        host = f"[{self.host.strip('[]')}]" if self._family == socket.AF_INET6 else self.host
        return f"http://{host}:{self.port}"

    @property
    def proxy_url(self) -> str:
        """The same address, for `http_proxy` / `proxies={"http": ...}`."""
        return self.base_url

    @property
    def hosts(self) -> frozenset[str]:
        """The virtual hosts served (empty before start)."""
        return self._httpd.web.hosts if self._httpd else frozenset()

    @property
    def requests(self) -> list[tuple[str, str]]:
        """Every (host, decoded path) requested so far (empty before start)."""
        if self._httpd is None:
            return []
        with self._httpd.web.lock:
            return list(self._httpd.web.requests)

    def url_for(self, url: str) -> str:
        """Path-mode URL on this server for a synthetic URL (works for https:// too)."""
        parts = urlsplit(url)
        query = f"?{parts.query}" if parts.query else ""
        return f"{self.base_url}/{parts.hostname}{parts.path or '/'}{query}"

    def start(self) -> SyntheticWebServer:
        """Bind and serve in a daemon thread (no-op when already running)."""
        if self._httpd is not None:
            return self
        web = _Web(self.root, self.slow_seconds, self.epoch)
        self._httpd = _HTTPServer((self.host.strip("[]"), self.port), web, self._family)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"synthetic-web:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and join the thread (idempotent)."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._httpd = self._thread = None
        httpd.web.stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def __enter__(self) -> SyntheticWebServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(
    root: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    slow_seconds: float = 3.0,
    epoch: int = 1,
) -> None:
    """Serve until Ctrl-C (for the CLI)."""
    with SyntheticWebServer(root, host, port, slow_seconds, epoch) as server:
        print(
            f"serving synthetic web {root} (epoch {epoch}) at {server.base_url} "
            f"(proxy: {server.proxy_url})"
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping")


def main(argv: list[str] | None = None) -> None:
    """python -m pipeline.synthetic.server ROOT [--host 127.0.0.1] [--port 8000]"""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--slow-seconds", type=float, default=3.0)
    parser.add_argument("--epoch", type=int, default=1, choices=(1, 2))
    args = parser.parse_args(argv)
    serve_forever(args.root, args.host, args.port, args.slow_seconds, args.epoch)


if __name__ == "__main__":
    main()
