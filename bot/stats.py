"""Counters for /stats: queries served, latency percentiles, errors and distinct users; in memory for one
bot process, or kept in PostgreSQL (SharedStats) to count every replica."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import numpy as np


class Stats:
    def __init__(self, window: int = 2000):
        self.started = time.time()
        self.queries = 0
        self.errors = 0
        self.users: set[int] = set()
        self.latencies: deque[float] = deque(maxlen=window)

    def served(self, user_id: int | None, seconds: float) -> None:
        self.queries += 1
        self.latencies.append(seconds)
        if user_id is not None:
            self.users.add(user_id)

    def failed(self) -> None:
        self.errors += 1

    def report(self) -> str:
        p50, p95 = np.percentile(np.array(self.latencies), [50, 95]) if self.latencies else (None, None)
        return describe(self.queries, p50, p95, len(self.latencies), self.errors, len(self.users), self.started)


class SharedStats:
    """The same counters in the shared PostgreSQL state (a PostgresStore)."""

    def __init__(self, store: Any):
        self.store = store
        self.started = time.time()

    def served(self, user_id: int | None, seconds: float) -> None:
        self.store.record_served(user_id, seconds)

    def failed(self) -> None:
        self.store.record_error()

    @property
    def queries(self) -> int:
        return int(self.store.stats()["queries"])

    def report(self) -> str:
        s = self.store.stats()
        return describe(s["queries"], s["p50"], s["p95"], s["window"], s["errors"], s["users"], self.started,
                        " (all replicas)")


def describe(queries: int, p50: float | None, p95: float | None, window: int, errors: int, users: int,
             started: float, scope: str = "") -> str:
    latency = (f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms (last {window})" if p50 is not None
               else "no queries yet")
    hours = (time.time() - started) / 3600
    up = f"Up for {hours:.1f} h" + (" (this replica)" if scope else "")
    return f"Queries served{scope}: {queries}\nLatency: {latency}\nErrors: {errors}\nDistinct users: {users}\n{up}"
