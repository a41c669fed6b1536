"""A tiny HTTP endpoint for webhook mode: GET /healthz answers 200 with the product count once updates can be
taken (503 before), GET /metrics gives Prometheus metrics (when prometheus-client is installed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable


def listening(host: str, port: int) -> Callable[[], Awaitable[bool]]:
    """Whether the webhook's listener accepts connections yet. python-telegram-bot sets the webhook and only
    then listens, after the bot has loaded: a proxy that sent traffic on the first "ok" had it refused."""
    seen = False

    async def check() -> bool:
        nonlocal seen
        if not seen:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=1)
                writer.close()
                seen = True
            except (OSError, asyncio.TimeoutError):
                pass
        return seen

    return check


async def serve_health(host: str, port: int, status: Callable[[], dict], metrics: Callable[[], bytes] | None = None,
                       ready: Callable[[], Awaitable[bool]] | None = None) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=5)
            path = request.split(b" ")[1] if request.count(b" ") >= 2 else b""
            kind = "application/json"
            if path in (b"/healthz", b"/health") and ready is not None and not await ready():
                code, body = "503 Service Unavailable", b'{"status": "starting"}'
            elif path in (b"/healthz", b"/health"):
                code, body = "200 OK", json.dumps(status()).encode()
            elif path == b"/metrics" and metrics is not None:
                code, body, kind = "200 OK", metrics(), "text/plain; version=0.0.4; charset=utf-8"
            else:
                code, body = "404 Not Found", b'{"error": "not found"}'
            writer.write(f"HTTP/1.1 {code}\r\nContent-Type: {kind}\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(answer, host, port)
