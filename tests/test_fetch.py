"""Fetching and decoding images: every fault kind of the synthetic server gets its status."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import orjson
import pyarrow as pa
import pytest

from pipeline.hops.clip.decode import DecodePolicy, decode_image
from pipeline.hops.clip.fetch import Fetcher, FetchPolicy
from pipeline.hops.dataset.opt_outs import OptOutList
from pipeline.lake.tables import FETCH_STATUSES
from pipeline.lake.urls import HostPolicy
from pipeline.synthetic.config import SyntheticWebConfig
from pipeline.synthetic.generate import WebManifest, generate_web
from pipeline.synthetic.server import SyntheticWebServer

SMALL = SyntheticWebConfig(wat_files_per_crawl=2, pages_per_crawl=60, sites=8)
SLOW = 0.6


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> WebManifest:
    return generate_web(tmp_path_factory.mktemp("fetch") / "web", SMALL)


@pytest.fixture(scope="module")
def routes(web: WebManifest) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in web.path("routes").read_bytes().splitlines()]


@pytest.fixture(scope="module")
def server(web: WebManifest) -> Iterator[SyntheticWebServer]:
    with SyntheticWebServer(web.root, slow_seconds=SLOW) as srv:
        yield srv


def fetcher(server: SyntheticWebServer, **policy: Any) -> Fetcher:
    address = server.base_url.removeprefix("http://")
    resolve = {host: address for host in server.hosts}
    defaults: dict[str, Any] = {"retries": 1, "backoff_s": 0.01, "read_timeout_s": 5.0}
    return Fetcher(FetchPolicy(resolve=resolve, resolve_only=True, **{**defaults, **policy}), 4)


def url_of(routes: list[dict[str, Any]], fault: str | None, **want: Any) -> str:
    for r in routes:
        if r["fault"] == fault and all(r.get(k) == v for k, v in want.items()):
            if fault is None and "X-Robots-Tag" in r["headers"]:
                continue
            return f"https://{r['host']}{r['path']}"
    raise LookupError(fault)


def test_healthy_image_is_fetched_and_decoded(server, routes) -> None:
    big = next(
        r for r in routes
        if r["fault"] is None and r["file"] and "X-Robots-Tag" not in r["headers"]
        and (server.root / r["file"]).stat().st_size > 8000
    )  # fmt: skip
    result = fetcher(server).fetch(f"https://{big['host']}{big['path']}")
    assert result.status == "ok" and result.http_status == 200 and result.attempts == 1
    assert result.body == (server.root / big["file"]).read_bytes()
    decoded = decode_image(result.body, DecodePolicy())
    assert decoded.ok and decoded.width and decoded.height and len(decoded.sha256 or "") == 64


@pytest.mark.parametrize(
    ("fault", "want", "policy"),
    [
        ("not_found", "download_failed:http_4xx", {}),
        ("server_error", "download_failed:http_5xx", {}),
        ("slow", "download_failed:timeout", {"read_timeout_s": SLOW / 3}),
        ("slow", "ok", {"read_timeout_s": SLOW * 4}),
        ("truncated", "download_failed:truncated", {}),
        ("redirect_blocked", "download_failed:redirect_blocked", {}),
        ("redirect", "ok", {}),
        ("redirect", "download_failed:too_many_redirects", {"max_redirects": 0}),
        ("wrong_content_type", "ok", {}),
        ("not_image", "ok", {}),
    ],
)
def test_fault_statuses(server, routes, fault: str, want: str, policy: dict) -> None:
    result = fetcher(server, **policy).fetch(url_of(routes, fault))
    assert result.status == want, result
    assert result.status in FETCH_STATUSES


def test_transient_faults_are_retried_with_backoff(server, routes) -> None:
    result = fetcher(server, retries=2).fetch(url_of(routes, "server_error"))
    assert result.attempts == 3 and result.http_status == 500
    result = fetcher(server, retries=0).fetch(url_of(routes, "not_found"))
    assert result.attempts == 1  # a 404 is final


def test_redirect_is_followed_and_recorded(server, routes) -> None:
    route = next(r for r in routes if r["fault"] == "redirect")
    result = fetcher(server).fetch(f"http://{route['host']}{route['path']}")
    assert result.redirects == 1 and result.final_url.endswith(route["location"].split("/")[-1])


def test_redirect_to_allowlisted_private_host_is_followed(server, routes) -> None:
    route = next(r for r in routes if r["fault"] == "redirect_blocked")
    host = urlsplit(route["location"]).hostname
    result = fetcher(server, host_policy=HostPolicy.from_list([host])).fetch(
        f"http://{route['host']}{route['path']}"
    )
    assert result.status != "download_failed:redirect_blocked"


def test_robots_header_opt_out(server, routes) -> None:
    tagged = {r["headers"]["X-Robots-Tag"]: r for r in routes if "X-Robots-Tag" in r["headers"]}
    assert "noai" in tagged
    for tag, route in tagged.items():
        result = fetcher(server).fetch(f"http://{route['host']}{route['path']}")
        forbidden = "noai" in tag or "noimageai" in tag
        assert (result.status == "header_noai") is forbidden, (tag, result)
    route = tagged["noai"]
    allowed = fetcher(server, disallowed_directives=()).fetch(
        f"http://{route['host']}{route['path']}"
    )
    assert allowed.status != "header_noai"


def test_size_cap_and_decompression_bomb(server, routes) -> None:
    padded = next(r for r in routes if r["fault"] == "oversized" and r.get("pad_to"))
    bomb = next(r for r in routes if r["fault"] == "oversized" and not r.get("pad_to"))
    capped = fetcher(server, max_bytes=2_000_000).fetch(f"http://{padded['host']}{padded['path']}")
    assert capped.status == "download_failed:too_large"
    fetched = fetcher(server).fetch(f"http://{bomb['host']}{bomb['path']}")
    assert fetched.ok
    decoded = decode_image(fetched.body, DecodePolicy(min_bytes=0))
    assert decoded.status == "decode_failed:decompression_bomb" and decoded.image is None


def test_decode_statuses(server, routes) -> None:
    not_image = fetcher(server).fetch(url_of(routes, "not_image"))
    assert decode_image(not_image.body, DecodePolicy(min_bytes=0)).status == (
        "decode_failed:not_image"
    )
    wrong_type = fetcher(server).fetch(url_of(routes, "wrong_content_type"))
    assert decode_image(wrong_type.body, DecodePolicy(min_bytes=0)).ok
    assert decode_image(b"\x89PNG\r\n\x1a\n" + b"\0" * 6000, DecodePolicy()).status.startswith(
        "decode_failed:"
    )
    assert decode_image(b"tiny", DecodePolicy()).status == "too_small"


def test_unknown_host_fails_offline_without_network(server) -> None:
    result = fetcher(server).fetch("https://dead-host.example.invalid/x.png")
    assert result.status == "download_failed:dns" and result.attempts == 1


def _requests_since(server: SyntheticWebServer, before: int) -> list[tuple[str, str]]:
    return server.requests[before:]


def test_opted_out_url_and_domain_are_never_requested(server, routes) -> None:
    """An opted-out URL (or any URL of an opted-out domain) fails without a request."""
    route = next(r for r in routes if r["fault"] is None and r["file"])
    url = f"http://{route['host']}{route['path']}"
    for kind, value in (("url", url), ("domain", route["host"])):
        listed = OptOutList.from_table(pa.table({"kind": [kind], "value": [value]}))
        before = len(server.requests)
        result = fetcher(server, opt_outs=listed).fetch(url)
        assert result.status == f"opted_out:{kind}" and result.attempts == 0, result
        assert _requests_since(server, before) == []
    before = len(server.requests)
    assert fetcher(server).fetch(url).status == "ok"  # the same fetch without the list asks
    assert _requests_since(server, before) == [(route["host"], route["path"])]


def test_redirect_into_an_opted_out_domain_is_refused_before_it_is_followed(server, routes) -> None:
    """The first request is made; the redirect's target, in an opted-out domain, is not."""
    route = next(
        r for r in routes
        if r["fault"] == "redirect"
        and not r["host"].endswith(urlsplit(r["location"]).hostname or r["host"])
    )  # fmt: skip
    target = urlsplit(route["location"])
    listed = OptOutList.from_table(pa.table({"kind": ["domain"], "value": [target.hostname]}))
    before = len(server.requests)
    result = fetcher(server, opt_outs=listed).fetch(f"http://{route['host']}{route['path']}")
    assert result.status == "opted_out:domain", result
    assert result.http_status == 302 and result.redirects == 1 and result.final_url is None
    asked = _requests_since(server, before)
    assert asked == [(route["host"], route["path"])]  # one request, none into the domain
    assert all(host != target.hostname for host, _ in asked)
    before = len(server.requests)
    followed = fetcher(server).fetch(f"http://{route['host']}{route['path']}")
    assert followed.redirects == 1 and (target.hostname, target.path) in _requests_since(
        server, before
    )
