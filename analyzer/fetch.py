"""Fetching images over http(s) without becoming an SSRF proxy.

Every hop (the first request and each redirect) is resolved once, each resolved address is
checked against private, loopback, link-local and other non-public ranges (IPv4 embedded in
IPv6 included), and the connection is made to that vetted address (TLS still verifies the
hostname), so DNS cannot answer differently between the check and the connect. Size and time
are capped for the whole fetch: each socket read has a timeout, and a watchdog closes the
socket at the overall deadline, so a server dripping a byte a second cannot hold a fetch.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

from clip_arena.core.errors import ImageLoadError
from clip_arena.core.settings import FetchLimits
from clip_arena.core.sizes import human_bytes

REDIRECTS = {301, 302, 303, 307, 308}
USER_AGENT = "clip-arena/1 (+image fetch)"
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# RFC 8215's local-use NAT64 prefix: translates to whatever the local network means, never public.
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def is_url(source: str) -> bool:
    return "://" in source[:16]


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, IPv4-compatible, NAT64, 6to4, Teredo)."""
    out = []
    if ip.ipv4_mapped:
        out.append(ip.ipv4_mapped)
    if ip in IPV4_COMPATIBLE or ip in NAT64:
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour:
        out.append(ip.sixtofour)
    if ip.teredo:
        out.extend(ip.teredo)
    return out


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local or ip in IPV4_COMPATIBLE or ip in NAT64_LOCAL:  # ranges Python may call global
            return False
        embedded = _embedded_ipv4(ip)
        if embedded:
            return all(_public(v4) for v4 in embedded)
    return ip.is_global and not ip.is_multicast


def _getaddrinfo(host: str, port: int):
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def resolve_checked(host: str, port: int, allow_private: bool) -> str:
    """Resolve `host` and return one address that may be contacted."""
    try:
        infos = _getaddrinfo(host, port)
    except socket.gaierror as err:
        raise ImageLoadError("fetch_failed", f"Host {host} could not be resolved ({err.strerror}).") from err
    except (UnicodeError, ValueError, OSError) as err:  # a 64-character label, a NUL byte ...
        raise ImageLoadError("bad_url", f"Host {host[:80]} is not a valid host name.") from err
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise ImageLoadError("fetch_failed", f"Host {host} could not be resolved.")
    if not allow_private:
        blocked = [a for a in addresses if not _public(a)]
        if blocked:  # refuse if any answer is private: an attacker controls the order
            err = ImageLoadError(
                "private_address",
                f"Refused to fetch from {host}: it resolves to a private, loopback or link-local "
                f"address ({blocked[0]}); pass --allow-private-urls to allow it.",
            )
            err.host = host  # for the browser's wording (analyzer.policy), which cannot name the flag as its own
            raise err
    return str(addresses[0])


class _Watchdog:
    """Shuts the fetch's sockets down at the deadline: a blocked read then returns at once."""

    def __init__(self, deadline: float):
        self.sockets: list[socket.socket] = []
        self.fired = False
        self.lock = threading.Lock()
        self.timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self.timer.daemon = True

    def watch(self, sock: socket.socket) -> None:
        with self.lock:
            self.sockets.append(sock)
            if self.fired:
                _shutdown(sock)

    def _fire(self) -> None:
        with self.lock:
            self.fired = True
            for sock in self.sockets:
                _shutdown(sock)

    def __enter__(self):
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _connection_classes(watchdog: _Watchdog):
    class Watched(HTTPConnection):
        def connect(self):
            super().connect()
            watchdog.watch(self.sock)

    class WatchedTLS(HTTPSConnection):
        def connect(self):
            super().connect()
            watchdog.watch(self.sock)

    return Watched, WatchedTLS


def _parse(url: str):
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as err:  # http://[::1, a port of 99999
        raise ImageLoadError("bad_url", f"{url[:200]} is not a valid URL ({err}).") from err
    if parts.scheme not in ("http", "https"):
        raise ImageLoadError("bad_scheme", f"Only http and https URLs are fetched, not "
                                           f"{parts.scheme or 'no'} scheme: {url[:200]}.")
    if not host:
        raise ImageLoadError("bad_url", f"URL {url[:200]} has no host.")
    if any(ord(c) < 33 or c == "\x7f" for c in url):
        raise ImageLoadError("bad_url", f"URL {url[:200]!r} contains spaces or control characters.")
    return parts, host, port or (443 if parts.scheme == "https" else 80)


def _open(url: str, limits: FetchLimits, deadline: float, watchdog: _Watchdog) -> urllib3.BaseHTTPResponse:
    parts, host, port = _parse(url)
    trusted = host.lower() in limits.trusted_hosts or f"{host.lower()}:{port}" in limits.trusted_hosts
    address = resolve_checked(host, port, limits.allow_private_urls or trusted)
    remaining = max(0.05, deadline - time.monotonic())
    timeout = urllib3.Timeout(connect=remaining, read=remaining)
    plain, tls = _connection_classes(watchdog)
    if parts.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(address, port, timeout=timeout, retries=False,
                                           server_hostname=host, assert_hostname=host)
        pool.ConnectionCls = tls
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
        pool.ConnectionCls = plain
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    if ":" in host:
        host_header = f"[{host}]" if parts.port is None else f"[{host}]:{parts.port}"
    return pool.urlopen("GET", target, headers={"Host": host_header, "User-Agent": USER_AGENT},
                        redirect=False, preload_content=False, retries=False)


def fetch_bytes(url: str, limits: FetchLimits) -> bytes:
    """GET `url` following at most limits.max_redirects checked redirects; return the body."""
    deadline = time.monotonic() + limits.timeout_s
    too_slow = f"Timed out after {limits.timeout_s:g} s fetching {url[:200]}."
    with _Watchdog(deadline) as watchdog:
        try:
            for _ in range(limits.max_redirects + 1):
                response = _open(url, limits, deadline, watchdog)
                if response.status in REDIRECTS:
                    location = response.headers.get("Location")
                    response.release_conn()
                    if not location:
                        raise ImageLoadError("http_error", f"Redirect without a Location from {url[:200]}.")
                    url = urljoin(url, location)
                    continue
                if response.status != 200:
                    response.release_conn()
                    raise ImageLoadError("http_error", f"HTTP {response.status} fetching {url[:200]}.")
                return _read_capped(response, url, limits, lambda: watchdog.fired or time.monotonic() >= deadline)
            raise ImageLoadError("http_error", f"More than {limits.max_redirects} redirects fetching {url[:200]}.")
        except ImageLoadError:
            raise
        except urllib3.exceptions.NewConnectionError as err:  # before TimeoutError: it subclasses it
            reason = _connect_reason(err)
            raise ImageLoadError("connection_failed", f"Could not connect to fetch {url[:200]} ({reason}).") from err
        except (urllib3.exceptions.TimeoutError, TimeoutError) as err:
            raise ImageLoadError("timeout", too_slow) from err
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as err:
            if watchdog.fired or time.monotonic() >= deadline:
                raise ImageLoadError("timeout", too_slow) from err
            raise ImageLoadError("fetch_failed", f"Could not fetch {url[:200]}: {type(err).__name__}.") from err


def _connect_reason(err: Exception) -> str:
    text = str(err).lower()
    if "refused" in text:
        return "connection refused"
    if "unreachable" in text:
        return "network unreachable"
    if "timed out" in text:
        return "connection timed out"
    return "connection failed"


def _read_capped(response, url: str, limits: FetchLimits, expired) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limits.max_bytes:
        response.release_conn()
        raise ImageLoadError("too_large", f"{url[:200]} is {human_bytes(int(declared))}, over the "
                                          f"{human_bytes(limits.max_bytes)} cap.")
    chunks, total = [], 0
    while True:
        if expired():
            response.release_conn()
            raise ImageLoadError("timeout", f"Timed out after {limits.timeout_s:g} s fetching {url[:200]}.")
        chunk = response.read1(64 * 1024)  # what one socket read gave: the deadline is checked often
        if not chunk:
            break
        total += len(chunk)
        if total > limits.max_bytes:
            response.release_conn()
            raise ImageLoadError("too_large", f"{url[:200]} is over the {human_bytes(limits.max_bytes)} cap.")
        chunks.append(chunk)
    if expired():
        raise ImageLoadError("timeout", f"Timed out after {limits.timeout_s:g} s fetching {url[:200]}.")
    response.release_conn()
    return b"".join(chunks)
