"""Watch what the bot needs besides its catalogue (the follower reports that): the state answers, and the
inference worker finishes what it starts. Each finding goes to Health, so /healthz says why, and recovers."""

from __future__ import annotations

import asyncio

from bot.health import Health
from bot.recommender import Recommender
from bot.state_thread import StateThread

EVERY = 10.0  # seconds between looks
STATE_TIMEOUT = 5.0
STUCK_AFTER = 60.0  # a batch of photos takes well under a second on 2 cores


async def look(state: StateThread, recommender: Recommender, health: Health) -> None:
    try:
        await asyncio.wait_for(state.ping(), STATE_TIMEOUT)
        health.passing("state")
    except asyncio.TimeoutError:
        health.failing("state", f"the state gave no answer in {STATE_TIMEOUT:.0f} s")
    except Exception as exc:  # any failure of the state's driver means the same to the operator
        health.failing("state", f"{type(exc).__name__}: {str(exc).strip()}")
    stuck = recommender.stuck_for()
    if stuck > STUCK_AFTER:
        health.failing("worker", f"the inference worker has been on one batch for {stuck:.0f} s")
    else:
        health.passing("worker")


async def watch(state: StateThread, recommender: Recommender, health: Health, every: float = EVERY) -> None:
    while True:
        await look(state, recommender, health)
        await asyncio.sleep(every)
