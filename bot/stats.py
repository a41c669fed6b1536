"""Counters for /stats: queries served, latency percentiles, errors and distinct users."""

from __future__ import annotations

import time
from collections import deque

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
        if self.latencies:
            p50, p95 = np.percentile(np.array(self.latencies), [50, 95])
            latency = f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms (last {len(self.latencies)})"
        else:
            latency = "no queries yet"
        hours = (time.time() - self.started) / 3600
        return (f"Queries served: {self.queries}\nLatency: {latency}\nErrors: {self.errors}\n"
                f"Distinct users: {len(self.users)}\nUp for {hours:.1f} h")
