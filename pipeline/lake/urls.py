"""URL rules for image links: scheme, host safety (no private/metadata hosts), normalization."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import SplitResult, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}

BLOCKED_HOST_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "ip6-localhost",
        "ip6-loopback",
        "metadata",
        "metadata.google.internal",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.com",
    }
)
"""Names that always mean this machine, its network, or a cloud metadata service."""

BLOCKED_HOST_SUFFIXES = (".localhost", ".internal", ".local", ".home.arpa")


def parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address a host string denotes, including decimal/hex IPv4 forms, or None."""
    host = host.strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:
            if host.isdigit():
                ip = ipaddress.ip_address(int(host))
            elif host.lower().startswith("0x"):
                ip = ipaddress.ip_address(int(host, 16))
            else:
                return None
        except ValueError:
            return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _ip_is_blocked(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


@dataclass(frozen=True)
class HostPolicy:
    """Which hosts may be fetched. ``allowlist`` admits hosts (``name``, ``name:port``, an IP,
    or a CIDR such as ``127.0.0.0/8``) that the private-address rule would otherwise drop."""

    allowlist: tuple[str, ...] = ()

    @classmethod
    def from_list(cls, allowlist: Iterable[str]) -> HostPolicy:
        return cls(tuple(a.strip().lower() for a in allowlist if a.strip()))

    def _allowed(self, host: str, port: int | None) -> bool:
        if not self.allowlist:
            return False
        ip = parse_ip(host)
        for entry in self.allowlist:
            if entry in (host, f"{host}:{port}"):
                return True
            if ip is not None and "/" in entry:
                try:
                    if ip in ipaddress.ip_network(entry, strict=False):
                        return True
                except ValueError:
                    continue
        return False

    @lru_cache(maxsize=1 << 16)  # noqa: B019 (policies are few and long-lived)
    def is_blocked(self, host: str, port: int | None = None) -> bool:
        """True if ``host`` is loopback, private, link-local or a metadata name, and not allowed."""
        host = host.lower().rstrip(".")
        ip = parse_ip(host)
        if ip is not None:
            blocked = _ip_is_blocked(ip)
        else:
            blocked = host in BLOCKED_HOST_NAMES or host.endswith(BLOCKED_HOST_SUFFIXES)
        return blocked and not self._allowed(host.strip("[]"), port)


def check_url(url: str | None, policy: HostPolicy) -> tuple[bool, str | None]:
    """``(True, None)`` for a fetchable http(s) URL, else ``(False, reason)``."""
    if not url or not url.strip():
        return False, "bad_url"
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in _DEFAULT_PORTS:
        return False, "not_http" if scheme else "bad_url"
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return False, "bad_url"
    if not host or any(c in host for c in " <>\"'\\"):
        return False, "bad_url"
    if policy.is_blocked(host, port):
        return False, "private_host"
    return True, None


def normalize_url(url: str) -> str:
    """Canonical form for ``url_id``: lower-case scheme and host, no default port, no fragment."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    if parts.username or parts.password:
        userinfo = parts.username or ""
        if parts.password:
            userinfo += f":{parts.password}"
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit(SplitResult(scheme, netloc, parts.path or "/", parts.query, ""))
