"""Fetch images robustly, with one status per URL.

Timeouts, bounded retries with exponential backoff, a byte cap, ``X-Robots-Tag`` opt-outs,
and every redirect re-checked against the private-address rule before it is followed. A URL
on the owners' opt-out list (itself or its domain) is never requested: neither as given nor as
a redirect's target (``opted_out:url`` or ``opted_out:domain``, with no request made).
``resolve`` maps host names to ``ip:port`` (like ``curl --resolve``): the synthetic web's
virtual hosts all live on one loopback server, which is reached that way with the real
``Host`` header, so the URLs that are checked and recorded are the real ones.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
import urllib3

from pipeline.hops.dataset.opt_outs import OptOutList
from pipeline.lake.urls import HostPolicy, check_url


@dataclass(frozen=True)
class FetchPolicy:
    """How images are fetched. All limits are per URL."""

    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    retries: int = 2
    """Extra attempts after a timeout, connection error, 429 or 5xx."""
    backoff_s: float = 0.2
    """First retry waits this long; each later one twice as long."""
    max_bytes: int = 10_000_000
    max_redirects: int = 3
    disallowed_directives: tuple[str, ...] = ("noai", "noimageai")
    """``X-Robots-Tag`` directives that forbid use for AI training (as img2dataset)."""
    user_agent: str = "crawl2diffusion/0.1 (+https://github.com/crawl2diffusion)"
    host_policy: HostPolicy = field(default_factory=HostPolicy)
    resolve: dict[str, str] = field(default_factory=dict)
    """Host name -> ``ip:port`` to connect to instead of resolving the name."""
    resolve_only: bool = False
    """Refuse hosts missing from ``resolve`` (offline runs) instead of using DNS."""
    opt_outs: OptOutList = field(default_factory=OptOutList)
    """Owners' withdrawals: URLs and domains never requested, first or after a redirect."""


@dataclass
class FetchResult:
    url: str
    status: str
    body: bytes | None = None
    http_status: int | None = None
    final_url: str | None = None
    attempts: int = 0
    redirects: int = 0
    error: str | None = None
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class _Retryable(Exception):
    def __init__(self, status: str, error: str, http_status: int | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.http_status = status, error, http_status


class _Final(Exception):
    def __init__(self, status: str, error: str, http_status: int | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.http_status = status, error, http_status


def _robots_forbid(header: str | None, disallowed: tuple[str, ...]) -> bool:
    """True when ``X-Robots-Tag`` carries a disallowed directive for every user agent."""
    if not header:
        return False
    for part in header.split(","):
        token = part.strip().lower()
        if ":" in token:  # "otherbot: noai" names one agent; only bare directives apply
            continue
        if token in disallowed:
            return True
    return False


class Fetcher:
    """Fetch URLs (from any number of threads), one :class:`FetchResult` per URL."""

    def __init__(self, policy: FetchPolicy, workers: int = 16) -> None:
        self.policy = policy
        self.workers = workers
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxies or netrc from the environment
            session.headers["User-Agent"] = self.policy.user_agent
            self._local.session = session
        return session

    def _target(self, url: str) -> tuple[str, dict[str, str]]:
        """The URL to connect to and the headers that name the real host."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        address = self.policy.resolve.get(host)
        if address is None:
            if self.policy.resolve_only:
                raise _Final("download_failed:dns", f"{host} is not in the resolve map")
            return url, {}
        host_header = host if parts.port is None else f"{host}:{parts.port}"
        return urlunsplit(("http", address, parts.path or "/", parts.query, "")), {
            "Host": host_header
        }

    def _attempt(self, url: str) -> tuple[int, str | None, bytes | None, str | None]:
        """One request: (http status, Location, body, X-Robots-Tag)."""
        policy = self.policy
        target, headers = self._target(url)
        try:
            with self._session().get(
                target,
                headers=headers,
                timeout=(policy.connect_timeout_s, policy.read_timeout_s),
                allow_redirects=False,
                stream=True,
            ) as resp:
                code = resp.status_code
                robots = resp.headers.get("X-Robots-Tag")
                if 300 <= code < 400:
                    return code, resp.headers.get("Location"), None, robots
                if code == 429 or code >= 500:
                    raise _Retryable("download_failed:http_5xx", f"HTTP {code}", code)
                if code >= 400:
                    raise _Final("download_failed:http_4xx", f"HTTP {code}", code)
                if _robots_forbid(robots, policy.disallowed_directives):
                    return code, None, None, robots
                length = resp.headers.get("Content-Length")
                if length and length.isdigit() and int(length) > policy.max_bytes:
                    raise _Final("download_failed:too_large", f"Content-Length {length}", code)
                chunks, size = [], 0
                for chunk in resp.iter_content(1 << 16):
                    size += len(chunk)
                    if size > policy.max_bytes:
                        raise _Final(
                            "download_failed:too_large", f"over {policy.max_bytes} B", code
                        )
                    chunks.append(chunk)
                return code, None, b"".join(chunks), robots
        except (requests.Timeout, urllib3.exceptions.TimeoutError) as exc:
            raise _Retryable("download_failed:timeout", type(exc).__name__) from exc
        except requests.exceptions.ChunkedEncodingError as exc:
            raise _Retryable("download_failed:truncated", str(exc)[:200]) from exc
        except requests.ConnectionError as exc:
            text = str(exc)
            if "NameResolutionError" in text or "Name or service not known" in text:
                raise _Final("download_failed:dns", text[:200]) from exc
            raise _Retryable("download_failed:connection_error", text[:200]) from exc
        except (requests.RequestException, ValueError) as exc:
            raise _Final("download_failed:connection_error", str(exc)[:200]) from exc

    def fetch(self, url: str) -> FetchResult:
        """Fetch one URL, following (re-checked) redirects and retrying transient faults."""
        policy = self.policy
        started = time.perf_counter()
        result = FetchResult(url=url, status="download_failed:connection_error")
        current = url
        try:
            if withdrawn := policy.opt_outs.match(url):
                raise _Final(withdrawn, f"{url} is on the opt-out list")
            while True:
                for attempt in range(policy.retries + 1):
                    result.attempts += 1
                    try:
                        code, location, body, robots = self._attempt(current)
                        break
                    except _Retryable as exc:
                        if attempt == policy.retries:
                            raise _Final(exc.status, exc.error, exc.http_status) from exc
                        time.sleep(policy.backoff_s * (2**attempt))
                result.http_status = code
                if location is None:
                    break
                result.redirects += 1
                if result.redirects > policy.max_redirects:
                    raise _Final("download_failed:too_many_redirects", current, code)
                nxt = urljoin(current, location)
                ok, reason = check_url(nxt, policy.host_policy)
                if not ok:
                    status = (
                        "download_failed:redirect_blocked"
                        if reason == "private_host"
                        else "download_failed:bad_redirect"
                    )
                    raise _Final(status, f"redirect to {nxt} ({reason})", code)
                if withdrawn := policy.opt_outs.match(nxt):
                    raise _Final(withdrawn, f"redirect to {nxt} (on the opt-out list)", code)
                current = nxt
            result.final_url = current
            if body is None:
                result.status, result.error = "header_noai", f"X-Robots-Tag: {robots}"
            else:
                result.status, result.body = "ok", body
        except _Final as exc:
            result.status, result.error = exc.status, exc.error
            result.http_status = exc.http_status or result.http_status
        result.elapsed_s = time.perf_counter() - started
        return result
