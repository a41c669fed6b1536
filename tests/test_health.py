"""The health endpoint says "ok" only once the webhook listener takes updates (a proxy routes on it)."""

from __future__ import annotations

import asyncio
import json

from bot.health import listening, serve_health
from testbed.postgres import free_port


async def get(port: int) -> tuple[int, dict]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = await reader.read()
    writer.close()
    head, body = answer.split(b"\r\n\r\n", 1)
    return int(head.split(b" ")[1]), json.loads(body)


def test_health_answers_starting_until_the_webhook_listens_then_ok():
    async def scenario() -> list[tuple[int, dict]]:
        hook, health_port = free_port(), free_port()
        health = await serve_health("127.0.0.1", health_port, lambda: {"status": "ok", "products": 3},
                                    ready=listening("127.0.0.1", hook))
        before = await get(health_port)
        webhook = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", hook)
        after = await get(health_port)
        webhook.close()
        health.close()
        return [before, after]

    before, after = asyncio.run(scenario())
    assert before == (503, {"status": "starting"})
    assert after == (200, {"status": "ok", "products": 3})
