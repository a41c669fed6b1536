"""Counters for /stats: queries served, latency percentiles, errors and distinct users; in memory for one
bot process, or kept in PostgreSQL (SharedStats) to count every replica."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import numpy as np

from bot.i18n import Language


class Stats:
    def __init__(self, window: int = 2000):
        self.started = time.time()
        self.queries = 0
        self.errors = 0
        self.users: set[int] = set()
        self.latencies: deque[float] = deque(maxlen=window)

    async def served(self, user_id: int | None, seconds: float) -> None:
        self.queries += 1
        self.latencies.append(seconds)
        if user_id is not None:
            self.users.add(user_id)

    async def failed(self) -> None:
        self.errors += 1

    async def report(self, _: Language) -> str:
        p50, p95 = np.percentile(np.array(self.latencies), [50, 95]) if self.latencies else (None, None)
        return describe(_, self.queries, p50, p95, len(self.latencies), self.errors, len(self.users), self.started)


class SharedStats:
    """The same counters in the shared PostgreSQL state (a PostgresStore, through its StateThread)."""

    def __init__(self, state: Any):
        self.state = state
        self.started = time.time()
        self.queries = 0  # this replica's, for /healthz, which must not wait on the state

    async def served(self, user_id: int | None, seconds: float) -> None:
        self.queries += 1
        await self.state.record_served(user_id, seconds)

    async def failed(self) -> None:
        await self.state.record_error()

    async def report(self, _: Language) -> str:
        s = await self.state.stats()
        return describe(_, s["queries"], s["p50"], s["p95"], s["window"], s["errors"], s["users"], self.started,
                        shared=True)


def describe(_: Language, queries: int, p50: float | None, p95: float | None, window: int, errors: int, users: int,
             started: float, shared: bool = False) -> str:
    latency = (_("Latency: p50 {p50} ms, p95 {p95} ms (last {window})", p50=_.number(round(p50 * 1000)),
                 p95=_.number(round(p95 * 1000)), window=_.number(window)) if p50 is not None
               else _("Latency: no queries yet"))
    hours = _.number(round((time.time() - started) / 3600, 1))
    return _.lines(
        (_("Queries served (all replicas): {n}", n=_.number(queries)) if shared
         else _("Queries served: {n}", n=_.number(queries))),
        latency,
        _("Errors: {n}", n=_.number(errors)),
        _("Distinct users: {n}", n=_.number(users)),
        _("Up for {hours} h (this replica)", hours=hours) if shared else _("Up for {hours} h", hours=hours))
