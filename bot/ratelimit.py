"""A per-user sliding-window rate limit."""

from __future__ import annotations

import time
from collections import defaultdict, deque


class RateLimiter:
    """At most `per_minute` actions per user in any 60 s; 0 turns it off."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self.recent: defaultdict[int, deque[float]] = defaultdict(deque)
        self.warned: dict[int, float] = {}

    def allow(self, user_id: int, now: float | None = None) -> bool:
        if not self.per_minute:
            return True
        now = time.monotonic() if now is None else now
        stamps = self.recent[user_id]
        while stamps and stamps[0] <= now - 60:
            stamps.popleft()
        if len(stamps) >= self.per_minute:
            return False
        stamps.append(now)
        return True

    def should_warn(self, user_id: int, now: float | None = None) -> bool:
        """Say "slow down" once a minute at most, so the warning is no flood of its own."""
        now = time.monotonic() if now is None else now
        if now - self.warned.get(user_id, -1e9) < 60:
            return False
        self.warned[user_id] = now
        return True
