"""The health endpoint says "ok" only once the webhook listener takes updates (a proxy routes on it)."""

from __future__ import annotations

import asyncio
import json

from bot.health import Health, listening, serve_health
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
        health = await serve_health("127.0.0.1", health_port, lambda: Health().answer({"products": 3}),
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


def test_health_says_why_it_is_degraded_and_recovers_by_itself():
    state = Health()

    async def scenario() -> list[tuple[int, dict]]:
        port = free_port()
        server = await serve_health("127.0.0.1", port, lambda: state.answer({"products": 3}))
        answers = [await get(port)]
        state.failing("state", "OperationalError: connection refused")
        state.failing("worker", "the inference worker has been on one batch for 75 s")
        answers.append(await get(port))
        state.passing("state")
        state.passing("worker")
        answers.append(await get(port))
        server.close()
        return answers

    ok, degraded, recovered = asyncio.run(scenario())
    assert ok == recovered == (200, {"status": "ok", "products": 3})
    assert degraded == (503, {"status": "degraded", "products": 3, "reason": "state: OperationalError: connection "
                              "refused; worker: the inference worker has been on one batch for 75 s"})
