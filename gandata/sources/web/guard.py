"""Checks on what we fetch: URLs (scheme, SSRF) and bodies (is it an image?).

A URL list is untrusted input: without ``--allow-private-network`` every
address a host name resolves to must be public, so that a list cannot make
the build probe an intranet, the cloud metadata service or localhost.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urldefrag, urlsplit


class UrlRefused(Exception):
    """A URL we will not fetch; ``reason`` is a rejection code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def normalize_url(url: str) -> str:
    """Strip whitespace and the fragment (never sent to a server), so that
    URL de-duplication sees one form."""
    return urldefrag(url.strip())[0]


def check_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; UrlRefused(bad_url) otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused("bad_url", f"{url}: not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRefused("bad_url", f"{url}: only http and https URLs are fetched")
    if not parts.hostname:
        raise UrlRefused("bad_url", f"{url}: no host name")
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def is_public(address: str) -> bool:
    """False for private, loopback, link-local, multicast, reserved and
    unspecified addresses (IPv4-mapped IPv6 checked as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                or ip.is_reserved or ip.is_unspecified or not ip.is_global)


async def check_address(host: str, port: int, allow_private: bool, cache: dict[str, str | None]) -> None:
    """Raise UrlRefused(private_address) when ``host`` resolves to a
    non-public address (unless allowed), download_failed when it does not
    resolve. Results are cached per host for the client's lifetime."""
    if host in cache:
        problem = cache[host]
    else:
        problem = None
        if not allow_private:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                cache[host] = f"dns:{host}: cannot resolve ({exc})"
                raise UrlRefused("download_failed", cache[host][4:]) from None
            for info in infos:
                address = str(info[4][0])
                if not is_public(address):
                    problem = f"private:{host} resolves to {address}, a private/loopback/link-local address (pass --allow-private-network to allow)"
                    break
        cache[host] = problem
    if problem:
        kind, _, detail = problem.partition(":")
        raise UrlRefused("private_address" if kind == "private" else "download_failed", detail)


# Leading bytes of the formats the decoder reads.
_MAGIC = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a", b"GIF89a",
    b"BM",
    b"II*\x00", b"MM\x00*",  # TIFF
    b"\x00\x00\x01\x00",  # ICO
)


def sniff_image(data: bytes, content_type: str | None) -> str | None:
    """None when ``data`` may be an image; otherwise why it is not (for a
    ``not_image`` rejection). Magic bytes decide; the Content-Type only
    refuses what declares itself text/HTML/JSON."""
    head = data[:64]
    if head.startswith(_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP") or head[4:8] == b"ftyp":
        return None
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith((b"<", b"{", b"[")):
        kind = "HTML" if b"html" in data[:512].lower() else "markup/JSON text"
        return f"body is {kind}, not an image (Content-Type {ctype or 'missing'})"
    if ctype.startswith("text/") or ctype in ("application/json", "application/xhtml+xml", "application/xml"):
        return f"Content-Type {ctype} is not an image"
    if not data:
        return "empty body"
    return None
