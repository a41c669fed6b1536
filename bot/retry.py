"""Retries around every Bot API call: honour 429 retry_after, back off on timeouts and 5xx."""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import random
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

log = logging.getLogger(__name__)


class Retrier(BaseRateLimiter[None]):
    """python-telegram-bot's hook around each request (getUpdates excepted: the Updater retries it)."""

    def __init__(self, attempts: int = 4, backoff: float = 0.5, max_retry_after: float = 120.0):
        self.attempts = attempts
        self.backoff = backoff
        self.max_retry_after = max_retry_after

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        for attempt in range(1, self.attempts + 1):
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                with warnings.catch_warnings():  # int today, timedelta in PTB 23: both handled
                    warnings.simplefilter("ignore", PTBDeprecationWarning)
                    wait = exc.retry_after
                delay = wait.total_seconds() if isinstance(wait, dtm.timedelta) else float(wait)
                if attempt == self.attempts or delay > self.max_retry_after:
                    raise
                log.warning("%s: flood control, retrying in %.1f s", endpoint, delay)
            except BadRequest:
                raise  # our request is wrong; sending it again won't help
            except NetworkError as exc:  # timeouts, 5xx, dropped connections
                if attempt == self.attempts:
                    raise
                delay = self.backoff * 2 ** (attempt - 1) * (1 + random.random() / 2)
                log.warning("%s failed (%s), retry %d in %.1f s", endpoint, exc, attempt, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")
