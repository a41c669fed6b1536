"""A per-user sliding-window rate limit, which remembers only the users of the last minute."""

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

    def forget_idle(self, now: float | None = None) -> None:
        """Drop the users with nothing in the last minute: memory for the active users only, not every one seen."""
        now = time.monotonic() if now is None else now
        for user_id in [u for u, stamps in self.recent.items() if not stamps or stamps[-1] <= now - 60]:
            del self.recent[user_id]
        for user_id in [u for u, warned in self.warned.items() if warned <= now - 60]:
            del self.warned[user_id]

    def should_warn(self, user_id: int, now: float | None = None) -> bool:
        """Say "slow down" once a minute at most, so the warning is no flood of its own."""
        now = time.monotonic() if now is None else now
        if now - self.warned.get(user_id, -1e9) < 60:
            return False
        self.warned[user_id] = now
        return True
