"""The bot's health, in every mode: GET /healthz answers 200 {"status": "ok", ...} while the bot can do its job,
503 {"status": "degraded", "reason": ...} while something it needs fails (and "ok" again once it passes), 503
{"status": "starting"} before updates can be taken; GET /metrics gives Prometheus metrics (prometheus-client)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Health:
    """What stands between the bot and its job, by part ("state", "catalogue", "worker"): each problem is set
    while it lasts and cleared when it passes, and each change is logged once, not at every look."""

    def __init__(self) -> None:
        self.problems: dict[str, str] = {}
        self.products: int | None = None  # as the catalogue last told the watchdog: /healthz asks no server

    def failing(self, part: str, reason: str) -> None:
        if self.problems.get(part) != reason:
            log.warning("degraded: %s: %s", part, reason)
        self.problems[part] = reason

    def passing(self, part: str) -> None:
        if self.problems.pop(part, None) is not None:
            log.info("recovered: %s", part)

    def answer(self, details: dict) -> tuple[int, dict]:
        if self.problems:
            reason = "; ".join(f"{part}: {why}" for part, why in sorted(self.problems.items()))
            return 503, {"status": "degraded", "reason": reason, **details}
        return 200, {"status": "ok", **details}


def listening(host: str, port: int) -> Callable[[], Awaitable[bool]]:
    """Whether the webhook's listener accepts connections yet. python-telegram-bot sets the webhook and only
    then listens, after the bot has loaded: a proxy that sent traffic on the first "ok" had it refused."""
    seen = False

    async def check() -> bool:
        nonlocal seen
        if not seen:
            try:
                _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=1)
                writer.close()
                seen = True
            except (OSError, asyncio.TimeoutError):
                pass
        return seen

    return check


REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}


async def serve_health(host: str, port: int, status: Callable[[], tuple[int, dict]],
                       metrics: Callable[[], bytes] | None = None,
                       ready: Callable[[], Awaitable[bool]] | None = None) -> asyncio.Server:
    """status: the HTTP code and body of /healthz (Health.answer); ready: whether updates can be taken yet."""
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=5)
            path = request.split(b" ")[1] if request.count(b" ") >= 2 else b""
            kind = "application/json"
            if path in (b"/healthz", b"/health") and ready is not None and not await ready():
                code, body = 503, b'{"status": "starting"}'
            elif path in (b"/healthz", b"/health"):
                code, document = status()
                body = json.dumps(document).encode()
            elif path == b"/metrics" and metrics is not None:
                code, body, kind = 200, metrics(), "text/plain; version=0.0.4; charset=utf-8"
            else:
                code, body = 404, b'{"error": "not found"}'
            writer.write(f"HTTP/1.1 {code} {REASONS[code]}\r\nContent-Type: {kind}\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(answer, host, port)
