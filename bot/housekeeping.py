"""Keep the bot's memory and state the same size month after month: every hour, delete what has expired from the
state and forget the rate limiter's idle users."""

from __future__ import annotations

import asyncio
import logging

from bot.ratelimit import RateLimiter
from bot.state_thread import StateThread

log = logging.getLogger(__name__)

EVERY = 3600.0  # seconds between clean-ups; the first is at start


async def keep_house(state: StateThread, limiter: RateLimiter, every: float = EVERY) -> None:
    while True:
        try:
            deleted = await state.prune()
            if any(deleted.values()):
                log.info("deleted what expired: %s", ", ".join(f"{n} {kind}" for kind, n in deleted.items() if n))
        except Exception:  # the state is away for a moment: the next hour deletes the same and more
            log.exception("could not delete expired rows from the state")
        limiter.forget_idle()
        await asyncio.sleep(every)
