"""The loopback server of the synthetic web: addressing modes, every fault, clean stop."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.client
import io
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
import requests
from PIL import Image

from pipeline.synthetic.config import SyntheticWebConfig
from pipeline.synthetic.generate import WebManifest, generate_web
from pipeline.synthetic.server import SyntheticWebServer

SMALL = SyntheticWebConfig(wat_files_per_crawl=2, pages_per_crawl=60, sites=8)
SLOW = 0.4


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> WebManifest:
    return generate_web(tmp_path_factory.mktemp("synthetic") / "web", SMALL)


@pytest.fixture(scope="module")
def routes(web: WebManifest) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in web.path("routes").read_bytes().splitlines()]


@pytest.fixture(scope="module")
def server(web: WebManifest) -> Iterator[SyntheticWebServer]:
    with SyntheticWebServer(web.root, slow_seconds=SLOW) as srv:
        yield srv


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False
        yield s


def _route(routes: list[dict[str, Any]], fault: str | None, **want: Any) -> dict[str, Any]:
    for r in routes:
        if r["fault"] == fault and all(r.get(k) == v for k, v in want.items()):
            return r
    raise LookupError(fault)


def _url(route: dict[str, Any]) -> str:
    return f"http://{route['host']}{route['path']}"


def _get(session: requests.Session, srv: SyntheticWebServer, url: str, **kw: Any) -> Any:
    kw.setdefault("allow_redirects", False)
    return session.get(url, proxies={"http": srv.proxy_url}, timeout=10, **kw)


def _is_private(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "localhost" or ipaddress.ip_address(host).is_private


def test_addresses(server: SyntheticWebServer) -> None:
    assert server.port > 0
    assert server.base_url == f"http://127.0.0.1:{server.port}" == server.proxy_url
    assert "static.pixelcdn.synth.test" in server.hosts


def test_healthy_image_in_three_modes(
    server: SyntheticWebServer, routes: list[dict[str, Any]], session: requests.Session
) -> None:
    route = _route(routes, None, content_type="image/png")
    proxied = _get(session, server, _url(route))
    by_host = session.get(
        server.base_url + route["path"], headers={"Host": route["host"]}, timeout=10
    )
    by_path = session.get(server.url_for(_url(route)), timeout=10)
    for resp in (proxied, by_host, by_path):
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == "image/png"
        assert Image.open(io.BytesIO(resp.content)).format == "PNG"
    assert proxied.content == by_host.content == by_path.content
    https = server.url_for(f"https://{route['host']}{route['path']}")
    assert session.get(https, timeout=10).content == proxied.content


def test_head(server: SyntheticWebServer, routes: list[dict[str, Any]], session) -> None:
    route = _route(routes, None)
    resp = session.head(server.url_for(_url(route)), timeout=10)
    assert resp.status_code == 200 and resp.content == b""
    assert int(resp.headers["Content-Length"]) > 0


def test_unknown_hosts_and_paths_are_404(
    server: SyntheticWebServer, routes: list[dict[str, Any]], session: requests.Session
) -> None:
    assert _get(session, server, "http://nowhere.synth.test/a.png").status_code == 404
    assert _get(session, server, "http://127.0.0.1/admin/banner.png").status_code == 404
    assert _get(session, server, f"http://{routes[0]['host']}/missing.png").status_code == 404
    assert session.get(server.base_url + "/", timeout=10).status_code == 404


def test_not_found_and_server_error(server, routes, session) -> None:
    assert _get(session, server, _url(_route(routes, "not_found"))).status_code == 404
    assert _get(session, server, _url(_route(routes, "server_error"))).status_code == 500


def test_slow(server, routes, session) -> None:
    started = time.perf_counter()
    resp = _get(session, server, _url(_route(routes, "slow")))
    assert resp.status_code == 200 and time.perf_counter() - started >= SLOW * 0.9


def test_truncated(server: SyntheticWebServer, routes: list[dict[str, Any]]) -> None:
    route = _route(routes, "truncated")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", _url(route))
    resp = conn.getresponse()
    declared = int(resp.getheader("Content-Length"))
    with pytest.raises(http.client.IncompleteRead) as err:
        resp.read()
    assert len(err.value.partial) < declared
    conn.close()


def test_wrong_content_type_and_not_image(server, routes, session) -> None:
    wrong = _get(session, server, _url(_route(routes, "wrong_content_type")))
    assert wrong.headers["Content-Type"].startswith("text/html")
    Image.open(io.BytesIO(wrong.content)).verify()
    fake = _get(session, server, _url(_route(routes, "not_image")))
    assert fake.headers["Content-Type"] == "image/jpeg"
    with pytest.raises(Image.UnidentifiedImageError):
        Image.open(io.BytesIO(fake.content))


def test_redirects(server, routes, session) -> None:
    route = _route(routes, "redirect")
    resp = _get(session, server, _url(route))
    assert resp.status_code == 302 and resp.headers["Location"] == route["location"]
    target = urlsplit(route["location"])
    followed = session.get(server.url_for(_url(route)), timeout=10)  # path mode follows on-site
    assert followed.status_code == 200 and followed.history[0].status_code == 302
    assert followed.history[0].headers["Location"] == f"/{target.hostname}{target.path}" + (
        f"?{target.query}" if target.query else ""
    )
    Image.open(io.BytesIO(followed.content)).verify()
    blocked = _get(session, server, _url(_route(routes, "redirect_blocked")))
    assert blocked.status_code == 302 and _is_private(blocked.headers["Location"])


def test_oversized(server, routes, session) -> None:
    padded = next(r for r in routes if r["fault"] == "oversized" and r.get("pad_to"))
    with _get(session, server, _url(padded), stream=True) as resp:
        assert int(resp.headers["Content-Length"]) == padded["pad_to"] >= 20_000_000
        assert len(next(resp.iter_content(65536))) > 0
    bomb = next(r for r in routes if r["fault"] == "oversized" and not r.get("pad_to"))
    data = _get(session, server, _url(bomb)).content
    assert len(data) < 1_000_000
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(data))


def test_robots_headers(server, routes, session) -> None:
    tagged = [r for r in routes if "X-Robots-Tag" in r["headers"] and r["status"] == 200]
    assert {"noai", "noimageai"} & {
        t.strip() for r in tagged for t in r["headers"]["X-Robots-Tag"].split(",")
    }
    for route in tagged[:5]:
        resp = _get(session, server, _url(route))
        assert resp.headers["X-Robots-Tag"] == route["headers"]["X-Robots-Tag"]


def test_pixel_with_query(server, routes, session) -> None:
    pixel = next(r for r in routes if r["path"] == "/px.gif")
    resp = _get(session, server, _url(pixel) + "?e=pv&pid=abc&sid=1")
    assert resp.status_code == 200 and Image.open(io.BytesIO(resp.content)).size == (1, 1)


def test_connect_is_refused(server: SyntheticWebServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("CONNECT", "lumen-gallery.synth.test:443")
    assert conn.getresponse().status == 501
    conn.close()


def test_only_loopback(web: WebManifest) -> None:
    with pytest.raises(ValueError):
        SyntheticWebServer(web.root, host="0.0.0.0")
    with pytest.raises(ValueError):
        SyntheticWebServer(web.root, host="example.test")


def test_stop_is_clean_and_idempotent(web: WebManifest, routes: list[dict[str, Any]]) -> None:
    srv = SyntheticWebServer(web.root, slow_seconds=30).start()
    port, before = srv.port, threading.active_count()
    slow = _url(_route(routes, "slow"))
    worker = threading.Thread(target=lambda: _swallow(srv, slow), daemon=True)
    worker.start()
    time.sleep(0.3)  # the request is now waiting in the slow handler
    started = time.perf_counter()
    srv.stop()
    srv.stop()
    assert time.perf_counter() - started < 5
    worker.join(5)
    assert not worker.is_alive() and threading.active_count() <= before
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def _swallow(srv: SyntheticWebServer, url: str) -> None:
    with contextlib.suppress(requests.RequestException):
        requests.get(url, proxies={"http": srv.proxy_url}, timeout=20)


# ---------------------------------------------------------------------------------------------
# Epoch 2: what some URLs answer after hop 3 scored them


def test_epoch2_changes_only_its_routes(web: WebManifest, routes, server, session) -> None:
    later = {r["epoch2"]["kind"]: r for r in routes if "epoch2" in r}
    assert set(later) == {"replaced", "late_redirect", "bomb"}
    unchanged = _route(routes, None, content_type="image/png")
    with SyntheticWebServer(web.root, epoch=2) as after:
        for route in [unchanged, *later.values()]:
            then, now = _get(session, server, _url(route)), _get(session, after, _url(route))
            assert then.status_code == 200
            assert hashlib.sha256(then.content).hexdigest() == route.get("sha256", _sha(web, route))
            change = route.get("epoch2", {})
            if change.get("kind") == "late_redirect":
                assert now.status_code == 302 and _is_private(now.headers["Location"])
            elif change:
                assert now.status_code == 200 and now.content != then.content
                assert hashlib.sha256(now.content).hexdigest() == change["sha256"]
            else:
                assert now.content == then.content
        assert after.requests == [(r["host"], r["path"]) for r in [unchanged, *later.values()]]
    with pytest.raises(ValueError, match="epoch"):
        SyntheticWebServer(web.root, epoch=3)


def _sha(web: WebManifest, route: dict[str, Any]) -> str:
    return hashlib.sha256((web.root / route["file"]).read_bytes()).hexdigest()


def test_epoch1_answers_are_those_of_a_web_without_epoch2(web: WebManifest, tmp_path) -> None:
    plain = generate_web(tmp_path / "web", dataclasses.replace(SMALL, epoch2_shares=()))
    files = {p.relative_to(plain.root) for p in plain.root.rglob("*") if p.is_file()}
    assert files == {p.relative_to(web.root) for p in web.root.rglob("*") if p.is_file()}
    for rel in files - {Path("routes.jsonl"), Path("manifest.json")}:
        assert (plain.root / rel).read_bytes() == (web.root / rel).read_bytes(), rel
    ours = [orjson.loads(line) for line in web.path("routes").read_bytes().splitlines()]
    for route in ours:
        route.pop("epoch2", None)
    theirs = [orjson.loads(line) for line in plain.path("routes").read_bytes().splitlines()]
    assert ours == theirs and web.counts["epoch2_routes"] > 0 == plain.counts["epoch2_routes"]
