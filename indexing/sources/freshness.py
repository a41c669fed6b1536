"""How long a downloaded photo may be used without asking its server again: HTTP's own rules (RFC 9111 4.2)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

HEURISTIC_SHARE = 0.1  # RFC 9111 4.2.2: a tenth of the time since the photo last changed, as browsers and CDNs do
MAX_FRESH = 24 * 3600.0  # whatever a server says, every photo is asked about at least once a day
SPREAD = 0.25  # up to a quarter earlier, by URL: 44k photos fetched in one build do not all expire in one sync


def fresh_for(url: str, headers: Mapping[str, str], now: float) -> float:
    """Seconds from now that the response to url stays fresh. headers: lower-case names, as httpx gives them."""
    directives = cache_directives(headers.get("cache-control", ""))
    if "no-cache" in directives or "no-store" in directives:
        return 0.0
    lifetime = explicit_lifetime(directives, headers)
    if lifetime is None:
        lifetime = heuristic_lifetime(headers, now)
    return min(lifetime, MAX_FRESH) * (1 - SPREAD * url_share(url))


def cache_directives(value: str) -> dict[str, str]:
    directives = {}
    for part in value.split(","):
        name, _sep, argument = part.strip().partition("=")
        if name:
            directives[name.lower()] = argument.strip('"')
    return directives


def explicit_lifetime(directives: Mapping[str, str], headers: Mapping[str, str]) -> float | None:
    """max-age, or Expires less Date; None where the server gave neither."""
    if "max-age" in directives:
        try:
            return max(0.0, float(directives["max-age"]))
        except ValueError:
            return 0.0  # RFC 9111 4.2.1: an invalid lifetime is treated as stale
    expires, date = http_date(headers.get("expires")), http_date(headers.get("date"))
    if "expires" in headers:
        return max(0.0, expires - date) if expires is not None and date is not None else 0.0
    return None


def heuristic_lifetime(headers: Mapping[str, str], now: float) -> float:
    """A tenth of the photo's age by its Last-Modified; nothing without one (asked again at every sync)."""
    modified = http_date(headers.get("last-modified"))
    date = http_date(headers.get("date")) or now
    return max(0.0, (date - modified) * HEURISTIC_SHARE) if modified is not None else 0.0


def http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def url_share(url: str) -> float:
    """A number in [0, 1) fixed by the URL, so that a photo's lifetime is the same at every fetch."""
    return int.from_bytes(hashlib.sha256(url.encode("utf-8")).digest()[:4], "big") / 2**32
