"""The download verifies what hop 3 scored: the synthetic web at epoch 2 serves other bytes,
late redirects into private addresses and a bomb; img2dataset runs behind the guard proxy."""

from __future__ import annotations

import io
import socket
import tarfile
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.hops.clip.decode import DecodePolicy, decode_image
from pipeline.hops.clip.fetch import Fetcher, FetchPolicy
from pipeline.hops.download.bombs import BombGuardedResizer
from pipeline.hops.download.guard import GuardProxy
from pipeline.hops.download.shards import ShardSpec, ShardsResult, download_shards
from pipeline.hops.training.data import load_examples
from pipeline.lake.keys import pair_id, url_id
from pipeline.lake.store import Lake
from pipeline.lake.tables import TableName
from pipeline.lake.urls import HostPolicy
from pipeline.synthetic.config import SyntheticWebConfig
from pipeline.synthetic.generate import WebManifest, generate_web
from pipeline.synthetic.server import SyntheticWebServer

CONFIG = SyntheticWebConfig(
    wat_files_per_crawl=2,
    pages_per_crawl=60,
    sites=8,
    epoch2_shares=(("replaced", 0.03), ("late_redirect", 0.05), ("bomb", 0.01)),
)
CRAWL = "SYNTH-2026-10"
HEALTHY = 3
PRIVATE = ("169.254.0.0/16", "127.0.0.0/8", "10.0.0.0/8")


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> WebManifest:
    return generate_web(tmp_path_factory.mktemp("verify") / "web", CONFIG)


@pytest.fixture(scope="module")
def before(web: WebManifest) -> Iterator[SyntheticWebServer]:
    with SyntheticWebServer(web.root, slow_seconds=0.5) as srv:
        yield srv


@pytest.fixture(scope="module")
def after(web: WebManifest) -> Iterator[SyntheticWebServer]:
    with SyntheticWebServer(web.root, slow_seconds=0.5, epoch=2) as srv:
        yield srv


@pytest.fixture(scope="module")
def picked(web: WebManifest) -> list[dict[str, Any]]:
    """Truth rows with their route: every epoch-2 change and a few unchanged images."""
    routes = [orjson.loads(line) for line in web.path("routes").read_bytes().splitlines()]
    by_id = {r["image_id"]: r for r in routes}
    out, healthy = [], 0
    for row in pq.read_table(web.path("truth")).to_pylist():
        route = by_id.get(row["image_id"])
        if route is None or row["role"] not in ("content", "cdn"):
            continue
        kind = (route.get("epoch2") or {}).get("kind")
        plain = kind is None and row["fault"] is None and not row["x_robots_tag"]
        if kind or (plain and row["path_style"] == "plain" and healthy < HEALTHY):
            healthy += kind is None
            out.append({**row, "kind": kind, "route": route})
    kinds = Counter(r["kind"] for r in out)
    assert kinds[None] == HEALTHY and kinds["replaced"] and kinds["bomb"], kinds
    assert kinds["late_redirect"] >= 3, kinds  # 169.254.169.254, 127.0.0.1:8080, https 10/8
    return out


@pytest.fixture(scope="module")
def subset(picked: list[dict[str, Any]], before: SyntheticWebServer) -> pa.Table:
    """The pairs as hop 3 leaves them: the sha256 of the bytes it fetched and decoded at
    epoch 1, with hop 3's own fetcher and decoder."""
    address = before.base_url.removeprefix("http://")
    policy = FetchPolicy(resolve={h: address for h in before.hosts}, resolve_only=True)
    fetcher = Fetcher(policy, 4)
    rows = []
    for row in picked:
        fetched = fetcher.fetch(row["url"])
        decoded = decode_image(fetched.body or b"", DecodePolicy(min_bytes=0))
        assert fetched.ok and decoded.ok, (row["url"], fetched.status, decoded.status)
        url, text = row["url"], row["caption_en"]
        rows.append({"pair_id": pair_id(url, text), "url_id": url_id(url), "URL": url,
                     "TEXT": text, "sha256": decoded.sha256})  # fmt: skip
    return pa.Table.from_pylist(rows)


@pytest.fixture(scope="module")
def kinds(picked: list[dict[str, Any]], subset: pa.Table) -> dict[str, str | None]:
    ids = subset.column("pair_id").to_pylist()
    return dict(zip(ids, [r["kind"] for r in picked], strict=True))


def spec_for(server: SyntheticWebServer, **kw: Any) -> ShardSpec:
    fixed = {"image_size": 32, "samples_per_shard": 32, "thread_count": 4, "timeout": 5}
    via = {"http_proxy": server.proxy_url, "https_as_http": True}
    return ShardSpec(**fixed, retries=0, max_attempts=1, **via, **kw)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return Lake(str(tmp_path_factory.mktemp("lake")))


@pytest.fixture(scope="module")
def guarded(subset: pa.Table, after: SyntheticWebServer, lake: Lake) -> ShardsResult:
    root = lake.partition_uri(TableName.IMAGE_SHARDS, CRAWL)
    result = download_shards(subset, root, spec_for(after))
    lake.write_partition(TableName.DOWNLOAD_RESULTS, result.results, CRAWL)
    return result


def by_kind(result: ShardsResult, kinds: dict[str, str | None]) -> dict[Any, list[dict]]:
    out: dict[Any, list[dict]] = {}
    for row in result.results.to_pylist():
        out.setdefault(kinds[row["pair_id"]], []).append(row)
    return out


# ---------------------------------------------------------------------------------------------


def test_rows_in_equal_rows_out_by_status(guarded, subset, kinds) -> None:
    assert guarded.results.column("pair_id").to_pylist() == subset.column("pair_id").to_pylist()
    want = {"success": HEALTHY, "content_changed": 0, "private_host": 0, "decompression_bomb": 0}
    for kind, status in (("replaced", "content_changed"), ("late_redirect", "private_host"),
                         ("bomb", "decompression_bomb")):  # fmt: skip
        want[status] = sum(k == kind for k in kinds.values())
    assert guarded.status_counts == want
    assert sum(guarded.status_counts.values()) == subset.num_rows
    assert guarded.unverified == 0


def test_changed_bytes_are_content_changed_and_never_trained(
    guarded, kinds, picked, subset, lake, web
) -> None:
    rows = by_kind(guarded, kinds)
    scored = dict(zip(subset.column("pair_id").to_pylist(), subset.column("sha256").to_pylist(),
                      strict=True))  # fmt: skip
    for row in rows[None]:
        assert row["status"] == "success" and row["sha256"] == scored[row["pair_id"]]
    served = {r["route"]["image_id"]: r["route"]["epoch2"] for r in picked if r["kind"]}
    changed = {r["pair_id"] for r in rows["replaced"]}
    for row in rows["replaced"]:
        assert row["status"] == "content_changed" and row["shard"] is None
        assert row["sha256"] != scored[row["pair_id"]]
        assert row["sha256"] in {e.get("sha256") for e in served.values()}  # epoch-2 bytes
        assert scored[row["pair_id"]] in row["error_message"]
    # img2dataset did store the changed image in a tar; training reads successes only.
    members = set()
    for tar in (Path(lake.partition_uri(TableName.IMAGE_SHARDS, CRAWL)) / "batches").rglob("*.tar"):
        with tarfile.open(tar) as handle:
            members |= {m.name.partition(".")[0] for m in handle.getmembers()}
    assert {r["key"] for r in rows["replaced"]} <= members
    examples = load_examples(lake, [CRAWL])
    assert {e.pair_id for e in examples} == {r["pair_id"] for r in rows[None]}
    assert not changed & {e.pair_id for e in examples}


def test_late_redirects_into_private_addresses_are_refused(guarded, kinds, after) -> None:
    rows = by_kind(guarded, kinds)["late_redirect"]
    hosts = set()
    for row in rows:
        assert row["status"] == "private_host" and row["shard"] is None
        assert "refused by download guard: private_host" in row["error_message"]
        hosts.add(urlsplit(row["error_message"].split("private_host ", 1)[1]).hostname)
    assert hosts == {"169.254.169.254", "127.0.0.1", "10.0.0.5"}  # http and https (CONNECT)
    assert guarded.guard_refusals == {"private_host": len(rows)}
    assert not hosts & {host for host, _ in after.requests}  # nothing reached them


def test_the_rule_is_what_stops_them(guarded, subset, kinds, after, tmp_path) -> None:
    """The same URLs behind a guard whose allowlist admits the private ranges: followed."""
    late = [pid for pid, kind in kinds.items() if kind == "late_redirect"]
    only = subset.filter(pa.compute.is_in(subset.column("pair_id"), pa.array(late)))
    spec = spec_for(after, host_policy=HostPolicy.from_list(PRIVATE))
    seen = len(after.requests)
    result = download_shards(only, str(tmp_path / "shards"), spec)
    reached = {host for host, _ in after.requests[seen:]}
    assert {"169.254.169.254", "127.0.0.1", "10.0.0.5"} <= reached
    assert result.status_counts == {"failed_to_download": len(late)}  # the web answers 404/501
    assert result.guard_refusals == {}


def test_decompression_bomb_is_refused_before_decoding(guarded, kinds, web) -> None:
    for row in by_kind(guarded, kinds)["bomb"]:
        assert row["status"] == "decompression_bomb"
        assert row["error_message"].startswith(f"decompression_bomb: {CONFIG.bomb_side}x")
        assert row["original_width"] is None and row["shard"] is None
    from img2dataset.resizer import Resizer

    resizer = BombGuardedResizer(Resizer(32, "center_crop", False), max_pixels=64_000_000)
    image = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(image, "PNG")
    assert resizer(image)[1:5] == (32, 32, 64, 48)  # others pass through to img2dataset


def test_rerun_keeps_refusals(guarded, subset, after, lake) -> None:
    """Refusals are decisions, not faults: a re-run with attempts left redoes none of them."""
    root = lake.partition_uri(TableName.IMAGE_SHARDS, CRAWL)
    spec = replace(spec_for(after), max_attempts=3)
    again = download_shards(subset, root, spec, previous=guarded.results)
    assert (again.batch, again.attempted) == (None, 0)
    assert again.results.to_pylist() == guarded.results.to_pylist()


# ---------------------------------------------------------------------------------------------
# The guard alone


def _healthy_path(picked: list[dict[str, Any]]) -> tuple[str, str]:
    """Path-mode path on the loopback server of an unchanged image, and its file."""
    row = next(r for r in picked if r["kind"] is None)
    return f"/{row['host']}{row['path']}", row["file"]


def _opener(guard: GuardProxy, scheme: str) -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({scheme: guard.url}))


def test_guard_checks_where_a_name_resolves(before, picked) -> None:
    """Without an upstream the guard resolves the name and checks the address."""
    path, file = _healthy_path(picked)
    url = f"http://rebind.example:{before.port}{path}"
    pinned = {"rebind.example": "127.0.0.1"}
    with GuardProxy(HostPolicy(), resolve=pinned) as guard:
        refused = pytest.raises(urllib.error.HTTPError)
        with refused:
            _opener(guard, "http").open(url, timeout=5)
    reason = refused.excinfo.value.reason
    assert refused.excinfo.value.code == 403
    assert "private_host" in reason and "resolves to 127.0.0.1" in reason
    allow = HostPolicy.from_list(["127.0.0.0/8"])
    with GuardProxy(allow, resolve=pinned) as guard:
        body = _opener(guard, "http").open(url, timeout=5).read()
    assert body == (before.root / file).read_bytes()


def test_guard_checks_connect_targets(before, picked) -> None:
    with GuardProxy(HostPolicy()) as guard:
        with pytest.raises(urllib.error.URLError, match="403 refused by download guard"):
            _opener(guard, "https").open(f"https://127.0.0.1:{before.port}/", timeout=5)
        assert guard.refused == {"private_host": 1}
    # Allowed: the tunnel relays bytes both ways (plain HTTP inside, to show it).
    with GuardProxy(HostPolicy.from_list(["127.0.0.0/8"])) as guard:
        proxy = urlsplit(guard.url)
        with socket.create_connection((proxy.hostname, proxy.port), timeout=5) as sock:
            auth = f"Proxy-Authorization: {guard.proxy_authorization}\r\n"
            sock.sendall(f"CONNECT 127.0.0.1:{before.port} HTTP/1.1\r\n{auth}\r\n".encode())
            assert sock.recv(1024).startswith(b"HTTP/1.1 200")
            path, _ = _healthy_path(picked)
            sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            assert sock.recv(1024).startswith(b"HTTP/1.1 200")


def test_guard_serves_only_its_own_download(before, picked) -> None:
    """A client without the guard's credential (another run's stray retry on a reused port)
    gets 407, is not forwarded, and is not counted as a refusal of this download."""
    path, file = _healthy_path(picked)
    with GuardProxy(HostPolicy.from_list(["127.0.0.0/8"])) as guard:
        bare = f"http://127.0.0.1:{urlsplit(guard.url).port}"
        stranger = urllib.request.build_opener(
            urllib.request.ProxyHandler({"http": bare, "https": bare})
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            stranger.open(f"http://127.0.0.1:{before.port}{path}", timeout=5)
        assert refused.value.code == 407
        with pytest.raises(urllib.error.URLError, match="407"):
            stranger.open(f"https://127.0.0.1:{before.port}/", timeout=5)
        assert (guard.unauthorized, guard.refused) == (2, {})
        # Its own client, which reads the credential from the proxy URL, is served.
        body = _opener(guard, "http").open(f"http://127.0.0.1:{before.port}{path}", timeout=5)
        assert body.read() == (before.root / file).read_bytes()
        assert (guard.unauthorized, guard.refused) == (2, {})


def test_guard_refuses_a_redirect_into_a_withdrawn_domain() -> None:
    """An owner withdrew a domain after the subset was built: the guard refuses the redirect
    into it (img2dataset follows redirects through the guard), and the status says why."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from pipeline.hops.dataset.opt_outs import OptOutList
    from pipeline.hops.download.verify import refined_status

    seen: list[str] = []

    class Redirects(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(f"{self.headers['Host']}{self.path}")
            self.send_response(302)
            self.send_header("Location", f"http://img.withdrawn.example:{port}/a.png")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirects)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    listed = OptOutList(domains=frozenset({"withdrawn.example"}))
    pinned = {"start.example": "127.0.0.1", "img.withdrawn.example": "127.0.0.1"}
    allow = HostPolicy.from_list(["127.0.0.0/8"])
    try:
        with GuardProxy(allow, resolve=pinned, withdrawn=listed.match) as guard:
            refused = pytest.raises(urllib.error.HTTPError)
            with refused:
                _opener(guard, "http").open(f"http://start.example:{port}/start", timeout=5)
            assert guard.refused == {"opted_out:domain": 1}
    finally:
        server.shutdown()
    error = f"HTTP Error 403: {refused.excinfo.value.reason}"
    assert "refused by download guard: opted_out:domain http://img.withdrawn.example" in error
    assert seen == [f"start.example:{port}/start"]  # the withdrawn host was never asked
    assert refined_status("failed_to_download", error) == "opted_out:domain"
    assert refined_status("failed_to_download", "HTTP Error 404: Not Found") == (
        "failed_to_download"
    )


def test_download_results_suite(guarded) -> None:
    """The registry's expectations hold for refusals, and fail without their reasons."""
    from quality.gx_runner import run_suite
    from quality.suites import build_suite

    suite = build_suite(TableName.DOWNLOAD_RESULTS)
    assert run_suite(guarded.results, suite).success
    rows = guarded.results.to_pylist()
    for row in rows:
        if row["status"] in ("private_host", "content_changed"):
            row["error_message"] = None
    broken = pa.Table.from_pylist(rows, schema=guarded.results.schema)
    failures = run_suite(broken, suite).failures
    assert {(f.expectation, f.column) for f in failures} == {
        ("expect_column_values_to_not_be_null", "error_message")
    }
