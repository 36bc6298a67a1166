"""Checks on what we fetch: URLs (scheme, SSRF) and bodies (is it an image?).

A URL list is untrusted input: without ``--allow-private-network`` every
address a host name resolves to must be public, so that a list cannot make
the build probe an intranet, the cloud metadata service or localhost.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from urllib.parse import urldefrag, urljoin, urlsplit


class UrlRefused(Exception):
    """A URL we will not fetch; ``reason`` is a rejection code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# Longer URLs are refused: servers commonly reject request lines over 8 KiB
# (nginx, Apache), and a URL list is untrusted input whose every URL ends up
# in messages, the cache index and samples.parquet.
MAX_URL_CHARS = 8192
# A URL in a message is cut to this many characters.
SHOWN_URL_CHARS = 200
_BRACKETED = re.compile(r"^\[[^\[\]]+\](:[0-9]*)?$")
_HOST_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


def shown(url: str) -> str:
    """``url`` for a message: control characters escaped, cut when long."""
    text = url if url.isprintable() else url.encode("unicode_escape").decode("ascii")
    return text if len(text) <= SHOWN_URL_CHARS else f"{text[:SHOWN_URL_CHARS]}... ({len(url)} characters)"


def normalize_url(url: str) -> str:
    """Strip whitespace and the fragment (never sent to a server), so that
    URL de-duplication sees one form. Never raises: a URL too malformed to
    split is returned stripped, for ``check_url`` to refuse."""
    text = url.strip()
    try:
        return urldefrag(text)[0]
    except ValueError:
        return text


def join_url(base: str, ref: str) -> str:
    """``ref`` resolved against ``base`` (a link, a Location header). Never
    raises: a reference too malformed to resolve is returned as it is, for
    ``check_url`` to refuse with the reference in its detail."""
    try:
        return urljoin(base, ref)
    except ValueError:
        return ref


def _check_host(url: str, host: str, bracketed: bool) -> str:
    """The host in its lower-case Unicode form, or UrlRefused(bad_url)."""
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UrlRefused("bad_url", f"{shown(url)}: [{shown(host)}] is not an IPv6 address") from None
        return host.lower()
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise UrlRefused("bad_url", f"{shown(url)}: invalid host name {shown(host)!r} ({exc})") from None
    labels = ascii_host[:-1].split(".") if ascii_host.endswith(".") else ascii_host.split(".")
    for label in labels:
        # IDNA leaves ASCII labels alone: check them here, and that an
        # "xn--" label decodes, so that no later layer (DNS, yarl) raises.
        valid = bool(_HOST_LABEL.match(label))
        if valid and label.startswith("xn--"):
            try:
                valid = bool(label[4:]) and bool(label[4:].encode("ascii").decode("punycode"))
            except UnicodeError:
                valid = False
        if not valid:
            raise UrlRefused("bad_url", f"{shown(url)}: invalid host name {shown(host)!r}")
    if len(ascii_host) > 253:
        raise UrlRefused("bad_url", f"{shown(url)}: host name longer than 253 characters")
    return host.lower()


def check_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; UrlRefused(bad_url), its
    detail naming the URL, for anything else: other schemes, no or an
    invalid host, a port outside 1-65535, control characters or whitespace,
    more than MAX_URL_CHARS characters."""
    if len(url) > MAX_URL_CHARS:
        raise UrlRefused("bad_url", f"{shown(url)}: longer than {MAX_URL_CHARS} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        # urlsplit would silently drop tabs and newlines, fetching another URL.
        raise UrlRefused("bad_url", f"{shown(url)}: control characters or whitespace in the URL")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise UrlRefused("bad_url", f"{shown(url)}: not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRefused("bad_url", f"{shown(url)}: only http and https URLs are fetched")
    if not host:
        raise UrlRefused("bad_url", f"{shown(url)}: no host name")
    if port == 0:
        raise UrlRefused("bad_url", f"{shown(url)}: port 0 is not a port a server listens on")
    hostinfo = parts.netloc.rpartition("@")[2]
    bracketed = hostinfo.startswith("[")
    if (bracketed and not _BRACKETED.match(hostinfo)) or (not bracketed and ("[" in hostinfo or "]" in hostinfo)):
        raise UrlRefused("bad_url", f"{shown(url)}: misplaced brackets in the host {shown(hostinfo)!r}")
    host = _check_host(url, host, bracketed)
    return scheme, host, port or (443 if scheme == "https" else 80)


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
