"""The state as handlers and background tasks use it: each call awaited, run on the state's own thread, so the event
loop never waits on PostgreSQL or the disk. One thread, because one connection serves one statement at a time: a
slow statement delays the state calls queued behind it (on PostgreSQL for STATEMENT_TIMEOUT at most), never the
loop, /healthz, or a photo's search."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bot.state import Store


class StateThread:
    """`await state.query(id)` runs `store.query(id)` on the state's thread; every Store method is there."""

    def __init__(self, store: Store):
        self.store = store
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="state")

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self.store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.get_running_loop().run_in_executor(
                self._thread, functools.partial(method, *args, **kwargs))

        return call

    def close(self) -> None:
        """Let the statement in progress finish, then close the connection."""
        self._thread.shutdown(wait=True)
        self.store.close()
