"""A guard forward proxy: every request img2dataset's workers make passes hop 3's host rule.

img2dataset fetches with ``urllib.urlopen`` and follows redirects itself, in worker
processes. Pointed at this proxy through ``http_proxy``/``https_proxy``/``ftp_proxy``, each
request of a worker, the first and every redirect, is a request to the proxy, which:

- refuses, with ``403 refused by download guard: <reason> <target>``, a target that fails
  :func:`pipeline.lake.urls.check_url` (private, loopback, link-local, metadata hosts and
  names, non-http schemes), that its owner withdrew (``opted_out:url|domain``, the lake's
  opt-out list) or, without an upstream proxy, whose host resolves to such an address (any
  of its addresses; the checked address is the one connected to, so a second lookup cannot
  rebind it);
- checks ``CONNECT host:port`` (https) the same way before it opens the tunnel;
- otherwise forwards the request, to the checked address or to ``upstream`` (an HTTP proxy
  that reaches the web, e.g. the synthetic web's server), and streams the answer back.

urllib puts the reason phrase into its error (``HTTP Error 403: ...`` or ``Tunnel connection
failed: 403 ...``), so the refusal ends up in img2dataset's ``error_message``.

The proxy serves only its own download: its URL carries a random credential
(``http://guard:TOKEN@127.0.0.1:PORT``, which urllib sends as ``Proxy-Authorization`` with
every request and every ``CONNECT``). Any other client on the machine, such as a stray
retry of an earlier run that reaches a reused port, gets ``407`` and is counted apart
(``unauthorized``), never as a refusal of this download. Its own process is another matter:
the proxy variables are the process's, so any HTTP client in it (a library's background
thread) goes through the guard while a download runs, and its refusals are counted with the
download's; the Ray engine turns off the one such thread it would start
(:data:`pipeline.engine.cluster.QUIET_RAY_ENV`).
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import http.client
import logging
import secrets
import select
import socket
import socketserver
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from pipeline.lake.urls import HostPolicy, check_url

log = logging.getLogger(__name__)

REFUSED = "refused by download guard"
"""Start of the reason phrase of every refusal (and so of img2dataset's error message)."""

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate",
     "te", "trailers", "transfer-encoding", "upgrade"}
)  # fmt: skip
_CHUNK = 1 << 16

Resolver = Callable[[str, int], list[str]]


def dns_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (TCP), in resolver order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class Refused(Exception):
    """A target the rule refuses: ``reason`` is a hop-2/3 reason such as ``private_host``."""

    def __init__(self, reason: str, target: str) -> None:
        super().__init__(f"{REFUSED}: {reason} {target}")
        self.reason = reason


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, guard: GuardProxy) -> None:
        self.guard = guard
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:  # no getfqdn (slow without DNS)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", int(self.server_address[1])

    def track(self, sock: socket.socket, on: bool) -> None:
        with self.lock:
            (self.sockets.add if on else self.sockets.discard)(sock)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.track(request, True)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.track(request, False)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("guard: connection from %s ended abruptly", client_address, exc_info=True)

    def close_all(self) -> None:
        with self.lock:
            socks = list(self.sockets)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "crawl2diffusion-guard/1.0"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("guard %s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        if self._authorized():
            self._forward()

    def do_HEAD(self) -> None:
        if self._authorized():
            self._forward()

    def do_CONNECT(self) -> None:
        if not self._authorized():
            return
        guard = self.server.guard
        host, _, port_text = self.path.rpartition(":")
        port = int(port_text) if port_text.isdigit() else -1

        def check() -> Any:
            if port < 0:
                raise ValueError(self.path)
            return guard.check(f"https://{host}:{port}/", host.strip("[]"), port)

        admitted, address = self._admitted(check, host)
        if not admitted:
            return
        try:
            upstream = socket.create_connection(
                guard.upstream or (address, port), timeout=guard.timeout_s
            )
        except OSError as exc:
            self._fail(502, f"cannot reach {self.path}: {exc}")
            return
        with upstream:
            self.server.track(upstream, True)
            try:
                if guard.upstream and not self._upstream_connect(upstream):
                    return
                self.send_response(200, "Connection established")
                self.end_headers()
                self._relay(upstream)
            finally:
                self.server.track(upstream, False)
        self.close_connection = True

    # ------------------------------------------------------------------
    def _authorized(self) -> bool:
        """True for a request with this guard's credential; else answers 407."""
        guard = self.server.guard
        given = self.headers.get("Proxy-Authorization", "")
        if hmac.compare_digest(given.encode(), guard.proxy_authorization.encode()):
            return True
        guard.record_unauthorized()
        self.send_response(407, "Proxy Authentication Required")
        self.send_header("Proxy-Authenticate", 'Basic realm="download-guard"')
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        return False

    def _admitted(self, check: Callable[[], Any], host: str | None) -> tuple[bool, Any]:
        """Run the guard's ``check`` of this request: (True, the address to connect to), or
        (False, None) once the refusal (403) or resolution failure (502) is answered."""
        try:
            return True, check()
        except Refused as exc:
            self._refuse(exc)
        except ValueError:
            self._refuse(Refused("bad_url", self.path))
        except OSError as exc:
            self._fail(502, f"cannot resolve {host}: {exc}")
        return False, None

    def _refuse(self, exc: Refused) -> None:
        self.server.guard.record(exc.reason)
        self._fail(403, str(exc))

    def _fail(self, status: int, reason: str) -> None:
        reason = reason.replace("\r", " ").replace("\n", " ")[:300]
        body = f"{status} {reason}\n".encode()
        self.send_response(status, reason)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    def _forward(self) -> None:
        guard = self.server.guard
        self.close_connection = True
        parts = urlsplit(self.path)
        if not parts.scheme:
            self._fail(400, "a proxy needs an absolute URL")
            return

        def check() -> Any:
            address = guard.check(self.path, parts.hostname or "", port)
            if parts.scheme.lower() != "http" and not guard.upstream:
                raise Refused("not_http", f"{parts.scheme}: needs CONNECT")
            return address

        try:
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except ValueError:
            self._refuse(Refused("bad_url", self.path))
            return
        admitted, address = self._admitted(check, parts.hostname)
        if not admitted:
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Connection"] = "close"
        if guard.upstream:
            conn = http.client.HTTPConnection(*guard.upstream, timeout=guard.timeout_s)
            target = self.path
        else:
            conn = http.client.HTTPConnection(address, port, timeout=guard.timeout_s)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request(self.command, target, headers=headers)
            resp = conn.getresponse()
        except OSError as exc:
            conn.close()
            self._fail(502, f"cannot reach {parts.hostname}: {exc}")
            return
        with contextlib.closing(conn), resp:
            self._relay_response(resp)

    def _relay_response(self, resp: http.client.HTTPResponse) -> None:
        self.send_response(resp.status, resp.reason)
        for name, value in resp.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        with contextlib.suppress(OSError, http.client.HTTPException):
            while chunk := resp.read1(_CHUNK):  # a short body stays short for the client
                self.wfile.write(chunk)

    def _upstream_connect(self, upstream: socket.socket) -> bool:
        """Ask the upstream proxy for the tunnel; relay its refusal. True when open."""
        upstream.sendall(f"CONNECT {self.path} HTTP/1.1\r\nHost: {self.path}\r\n\r\n".encode())
        resp = http.client.HTTPResponse(upstream, method="CONNECT")
        resp.begin()
        if resp.status == 200:
            return True
        self._fail(resp.status, f"upstream: {resp.status} {resp.reason}")
        return False

    def _relay(self, upstream: socket.socket) -> None:
        """Copy bytes both ways until one side closes."""
        client = self.connection
        self.wfile.flush()
        pair = {client: upstream, upstream: client}
        while True:
            ready, _, _ = select.select(list(pair), [], [], self.server.guard.timeout_s)
            if not ready:
                return
            for sock in ready:
                try:
                    data = sock.recv(_CHUNK)
                    if not data:
                        return
                    pair[sock].sendall(data)
                except OSError:
                    return


class GuardProxy:
    """The guard on 127.0.0.1 at a free port, served from a daemon thread while entered."""

    def __init__(
        self,
        policy: HostPolicy,
        upstream: str | None = None,
        resolve: Mapping[str, str] | None = None,
        resolver: Resolver = dns_addresses,
        timeout_s: float = 30.0,
        withdrawn: Callable[[str], str | None] | None = None,
    ) -> None:
        """``upstream``: ``http://host:port`` of a proxy to forward to (no DNS then);
        ``resolve``: host -> address pinned before DNS (like ``curl --resolve``);
        ``withdrawn``: URL -> the reason it is withdrawn (``opted_out:domain``...) or None,
        checked for every request, redirects included (a CONNECT target as
        ``https://host:port/``, so only domains are known there)."""
        self.policy = policy
        self.withdrawn = withdrawn
        self.upstream: tuple[str, int] | None = None
        if upstream:
            parts = urlsplit(upstream)
            self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.resolve = dict(resolve or {})
        self.resolver = resolver
        self.timeout_s = timeout_s
        self.refused: Counter[str] = Counter()
        """Refusals by reason, since start."""
        self.unauthorized = 0
        """Requests without this guard's credential (answered 407, not forwarded)."""
        self._token = secrets.token_urlsafe(18)
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://guard:TOKEN@127.0.0.1:PORT`` (while started): the proxy with its credential."""
        if self._server is None:
            raise RuntimeError("the guard proxy is not running")
        return f"http://guard:{self._token}@127.0.0.1:{self._server.server_port}"

    @property
    def proxy_authorization(self) -> str:
        """The ``Proxy-Authorization`` value every request to this guard must carry."""
        return "Basic " + base64.b64encode(f"guard:{self._token}".encode()).decode()

    def record(self, reason: str) -> None:
        with self._lock:
            self.refused[reason] += 1

    def record_unauthorized(self) -> None:
        with self._lock:
            self.unauthorized += 1

    def check(self, url: str, host: str, port: int) -> str:
        """The address to connect to, or :class:`Refused` (``upstream``: the host itself)."""
        ok, reason = check_url(url, self.policy)
        if not ok:
            raise Refused(reason or "bad_url", url)
        withdrawn = self.withdrawn(url) if self.withdrawn else None
        if withdrawn:
            raise Refused(withdrawn, url)
        if self.upstream:
            return host
        pinned = self.resolve.get(host.lower())
        addresses = [pinned] if pinned else self.resolver(host, port)  # OSError: no address
        blocked = [a for a in addresses if self.policy.is_blocked(a, port)]
        if blocked or not addresses:
            raise Refused("private_host", f"{url} ({host} resolves to {', '.join(blocked)})")
        return addresses[0]

    def start(self) -> GuardProxy:
        if self._server is None:
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"download-guard:{self._server.server_port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.close_all()
        server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def __enter__(self) -> GuardProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
