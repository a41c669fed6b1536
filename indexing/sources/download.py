"""Images by URL: downloads with retries, timeouts and a size cap, into a cache in the index folder that asks
again only once a photo's freshness has run out (HTTP's rules), with ETag/Last-Modified: a sync fetches what changed."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import ssl
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpcore
import httpx

from indexing.errors import DownloadError, FeedError
from indexing.extract.images import MAX_BYTES, image_type
from indexing.sources.addresses import PublicOnly, allowed_networks
from indexing.sources.freshness import fresh_for

FEED_IMAGES = "feed-images"  # in the index folder: <sha1>.<suffix> files, urls/<sha256 of the URL>.json
TIMEOUT = 15.0  # seconds without a byte; a whole download gets DEADLINE_FACTOR times that
DEADLINE_FACTOR = 4
RETRIES = 3
BACKOFF = 0.5  # seconds, doubled on each retry
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
MAX_REDIRECTS = 5
USER_AGENT = "fashion-index (+https://github.com/fashion-recommender)"


@dataclass(frozen=True)
class Fetched:
    url: str
    file: Path
    sha1: str
    changed: bool  # new bytes: not what the cache held for this URL


class Retry(Exception):
    """A failure worth another try: a timeout, a dropped connection, 429 or 5xx."""


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One for the process: loading the CA bundle takes 20 ms of CPU, and a sync opens a client per download
    thread (thread-safe: OpenSSL shares a context between connections)."""
    return httpx.create_ssl_context()


def http_client(timeout: float = TIMEOUT) -> httpx.Client:
    """A client that connects to public addresses only (sources/addresses.py), for every hop of a redirect; through
    a proxy from the environment (HTTPS_PROXY) where one is set, which then decides where requests may go."""
    transport = None
    if not urllib.request.getproxies():
        transport = httpx.HTTPTransport(verify=tls_context())
        # httpx takes no network backend of its own; the pool under it is httpcore's, which does.
        transport._pool = httpcore.ConnectionPool(ssl_context=tls_context(),
                                                  network_backend=PublicOnly(allowed_networks()))
    return httpx.Client(verify=tls_context(), transport=transport, follow_redirects=True,
                        max_redirects=MAX_REDIRECTS, headers={"User-Agent": USER_AGENT},
                        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))


@dataclass(frozen=True)
class Reply:
    status: int
    headers: httpx.Headers
    body: bytes


def check_url(url: str) -> None:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in ("http", "https"):
        raise DownloadError(f"{url[:200]}: only http(s) URLs are fetched")


def get(client: httpx.Client, url: str, max_bytes: int, headers: dict[str, str] | None = None,
        retries: int = RETRIES) -> Reply:
    """GET with retries and backoff; the body (at most max_bytes) is read. 304 is returned as it is."""
    check_url(url)
    deadline_seconds = (client.timeout.read or TIMEOUT) * DEADLINE_FACTOR
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(BACKOFF * 2 ** (attempt - 1))
        try:
            return get_once(client, url, max_bytes, headers or {}, time.monotonic() + deadline_seconds)
        except httpx.TooManyRedirects:
            raise DownloadError(f"{url}: more than {MAX_REDIRECTS} redirects (a redirect loop?)") from None
        except httpx.UnsupportedProtocol:
            raise DownloadError(f"{url}: redirected to a URL that is not http(s)") from None
        except (httpx.TimeoutException, httpx.TransportError, Retry) as exc:
            last = str(exc) or type(exc).__name__
    raise DownloadError(f"{url}: gave up after {retries + 1} tries ({last})")


def get_once(client: httpx.Client, url: str, max_bytes: int, headers: dict[str, str], deadline: float) -> Reply:
    with client.stream("GET", url, headers=headers) as response:
        if response.status_code in RETRY_STATUSES:
            raise Retry(f"HTTP {response.status_code}")
        if response.status_code == 304:
            return Reply(304, response.headers, b"")
        if response.status_code >= 400:
            raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason_phrase}")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise DownloadError(f"{url}: {int(declared):,} bytes is over the {max_bytes:,}-byte limit")
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise DownloadError(f"{url}: over the {max_bytes:,}-byte limit")
            if time.monotonic() > deadline:
                raise Retry(f"too slow: {len(body):,} bytes in {DEADLINE_FACTOR * TIMEOUT:.0f} s")
        return Reply(response.status_code, response.headers, bytes(body))


def fetch_feed(url: str, max_bytes: int) -> bytes:
    """A feed by URL (not cached: it is the thing that changes)."""
    try:
        with http_client(timeout=60.0) as client:
            return get(client, url, max_bytes).body
    except DownloadError as exc:
        raise FeedError(f"cannot fetch the feed: {exc}") from None


class ImageCache:
    """Downloaded images, one file per distinct content, and per URL the validators to revalidate it."""

    def __init__(self, directory: Path, *, max_bytes: int = MAX_BYTES, timeout: float = TIMEOUT,
                 retries: int = RETRIES, recheck: bool = False):
        """recheck: ask the server about every photo, even one that its cache headers say is still fresh."""
        self.directory = directory
        (directory / "urls").mkdir(parents=True, exist_ok=True)
        self.max_bytes, self.timeout, self.retries, self.recheck = max_bytes, timeout, retries, recheck
        self._local = threading.local()
        self._clients: list[httpx.Client] = []

    def _client(self) -> httpx.Client:
        # One client per download thread: each keeps its own connections alive.
        if not hasattr(self._local, "client"):
            self._local.client = http_client(self.timeout)
            self._clients.append(self._local.client)
        return self._local.client

    def _entry_path(self, url: str) -> Path:
        return self.directory / "urls" / f"{hashlib.sha256(url.encode('utf-8')).hexdigest()}.json"

    def entry(self, url: str) -> dict[str, Any] | None:
        """What the cache holds for a URL, if its file is still there."""
        try:
            entry = json.loads(self._entry_path(url).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        ok = isinstance(entry, dict) and entry.get("url") == url and (self.directory / str(entry.get("file"))).is_file()
        return entry if ok else None

    def fetch(self, url: str) -> Fetched:
        """The URL's image: the cached copy while it is fresh, else downloaded only if the server says it changed."""
        entry = self.entry(url)
        now = time.time()
        if entry and not self.recheck and now < entry.get("checked", 0) + entry.get("fresh_for", 0):
            return Fetched(url, self.directory / entry["file"], entry["sha1"], changed=False)
        headers = {}
        if entry and entry.get("etag"):
            headers["If-None-Match"] = entry["etag"]
        if entry and entry.get("last_modified"):
            headers["If-Modified-Since"] = entry["last_modified"]
        response = get(self._client(), url, self.max_bytes, headers, self.retries)
        if response.status == 304 and entry:
            validated = {"last-modified": entry.get("last_modified") or "", **response.headers}
            self._remember(url, entry["file"], entry["sha1"], validated, now)
            return Fetched(url, self.directory / entry["file"], entry["sha1"], changed=False)
        body = response.body
        suffix = image_type(body)
        if suffix is None:
            kind = response.headers.get("content-type", "unknown type").split(";")[0]
            raise DownloadError(f"{url}: not an image (the server sent {len(body):,} bytes of {kind})")
        sha1 = hashlib.sha1(body).hexdigest()
        name = f"{sha1}.{suffix}"
        if not (self.directory / name).is_file():
            write_file(self.directory / name, body)
        self._remember(url, name, sha1, response.headers, now)
        return Fetched(url, self.directory / name, sha1, changed=not entry or entry.get("sha1") != sha1)

    def _remember(self, url: str, name: str, sha1: str, headers: Mapping[str, str], now: float) -> None:
        write_file(self._entry_path(url), json.dumps({
            "url": url, "file": name, "sha1": sha1, "etag": headers.get("etag"),
            "last_modified": headers.get("last-modified") or None, "checked": now,
            "fresh_for": fresh_for(url, headers, now),
        }).encode("utf-8"))

    def prune(self, keep: set[str]) -> int:
        """Delete image files whose names are not in keep; the number deleted."""
        deleted = 0
        for path in self.directory.iterdir():
            if path.is_file() and path.name not in keep and not path.name.startswith("."):
                path.unlink(missing_ok=True)
                deleted += 1
        return deleted

    def close(self) -> None:
        for client in self._clients:
            client.close()


def write_file(path: Path, data: bytes) -> None:
    """Replace a cache file in one step. Not fsynced: a cache entry lost in a crash is fetched again."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, tmp.with_name(path.name))
