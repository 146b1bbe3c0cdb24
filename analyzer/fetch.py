"""Fetching images over http(s) without becoming an SSRF proxy.

Every hop (the first request and each redirect) is resolved once, each resolved address is
checked against private, loopback, link-local and other non-public ranges, and the connection
is made to that vetted address (TLS still verifies the hostname), so DNS cannot answer
differently between the check and the connect. Size and time are capped for the whole fetch.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from urllib.parse import urljoin, urlsplit

import urllib3

from core.errors import ImageLoadError
from core.settings import FetchLimits

REDIRECTS = {301, 302, 303, 307, 308}
USER_AGENT = "clip-arena/1 (+image fetch)"


def is_url(source: str) -> bool:
    return "://" in source[:16]


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve_checked(host: str, port: int, allow_private: bool) -> str:
    """Resolve `host` and return one address that may be contacted."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise ImageLoadError("fetch_failed", f"Host {host} could not be resolved ({err.strerror}).") from err
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not allow_private:
        blocked = [a for a in addresses if not _public(a)]
        if blocked:  # refuse if any answer is private: an attacker controls the order
            raise ImageLoadError(
                "private_address",
                f"Refused to fetch from {host}: it resolves to a private, loopback or link-local "
                f"address ({blocked[0]}); pass --allow-private-urls to allow it.",
            )
    return str(addresses[0])


def _open(url: str, limits: FetchLimits, deadline: float) -> urllib3.BaseHTTPResponse:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ImageLoadError("bad_scheme", f"Only http and https URLs are fetched, not {parts.scheme or 'no'} scheme: {url}.")
    if not parts.hostname:
        raise ImageLoadError("bad_url", f"URL {url} has no host.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = resolve_checked(parts.hostname, port, limits.allow_private_urls)
    remaining = max(0.1, deadline - time.monotonic())
    timeout = urllib3.Timeout(connect=min(remaining, limits.timeout_s), read=min(remaining, limits.timeout_s))
    if parts.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(address, port, timeout=timeout, retries=False,
                                           server_hostname=parts.hostname, assert_hostname=parts.hostname)
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    return pool.urlopen("GET", target, headers={"Host": host_header, "User-Agent": USER_AGENT},
                        redirect=False, preload_content=False, retries=False)


def fetch_bytes(url: str, limits: FetchLimits) -> bytes:
    """GET `url` following at most limits.max_redirects checked redirects; return the body."""
    deadline = time.monotonic() + limits.timeout_s
    try:
        for _ in range(limits.max_redirects + 1):
            response = _open(url, limits, deadline)
            if response.status in REDIRECTS:
                location = response.headers.get("Location")
                response.release_conn()
                if not location:
                    raise ImageLoadError("http_error", f"Redirect without a Location from {url}.")
                url = urljoin(url, location)
                continue
            if response.status != 200:
                response.release_conn()
                raise ImageLoadError("http_error", f"HTTP {response.status} fetching {url}.")
            return _read_capped(response, url, limits, deadline)
        raise ImageLoadError("http_error", f"More than {limits.max_redirects} redirects fetching {url}.")
    except (urllib3.exceptions.TimeoutError, TimeoutError) as err:
        raise ImageLoadError("timeout", f"Timed out after {limits.timeout_s:g} s fetching {url}.") from err
    except urllib3.exceptions.HTTPError as err:
        raise ImageLoadError("fetch_failed", f"Could not fetch {url}: {err}.") from err


def _read_capped(response, url: str, limits: FetchLimits, deadline: float) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limits.max_bytes:
        response.release_conn()
        raise ImageLoadError("too_large", f"{url} is {int(declared):,} bytes, over the {limits.max_bytes:,}-byte cap.")
    chunks, total = [], 0
    for chunk in response.stream(64 * 1024):
        total += len(chunk)
        if total > limits.max_bytes:
            response.release_conn()
            raise ImageLoadError("too_large", f"{url} is over the {limits.max_bytes:,}-byte cap.")
        if time.monotonic() > deadline:
            response.release_conn()
            raise ImageLoadError("timeout", f"Timed out after {limits.timeout_s:g} s fetching {url}.")
        chunks.append(chunk)
    response.release_conn()
    return b"".join(chunks)
