"""Watch what the bot needs: the state answers, the catalogue can be searched (its changes are the follower's to
report), and the inference worker finishes what it starts. Each finding goes to Health, so /healthz says why, and
recovers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.health import Health
from bot.recommender import Recommender
from bot.state_thread import StateThread

EVERY = 10.0  # seconds between looks
STATE_TIMEOUT = 5.0
CATALOGUE_TIMEOUT = 15.0  # a Milvus query; the folder's count is at hand
STUCK_AFTER = 60.0  # a batch of photos takes well under a second on 2 cores


async def look_at_catalogue(count: Callable[[], int], health: Health) -> None:
    """Its product count, asked off the loop: a Milvus server that is down or restarting fails it."""
    try:
        health.products = await asyncio.wait_for(asyncio.to_thread(count), CATALOGUE_TIMEOUT)
        health.passing("search")
    except asyncio.TimeoutError:
        health.failing("search", f"the catalogue's store gave no answer in {CATALOGUE_TIMEOUT:.0f} s")
    except Exception as exc:  # the store's own errors, and its driver's
        health.failing("search", f"the catalogue cannot be searched: {type(exc).__name__}: {str(exc).strip()}")


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


async def watch(state: StateThread, recommender: Recommender, health: Health, count: Callable[[], int],
                every: float = EVERY) -> None:
    """count: the product count of the catalogue being served (the follower may swap it)."""
    while True:
        await look(state, recommender, health)
        await look_at_catalogue(count, health)
        await asyncio.sleep(every)
