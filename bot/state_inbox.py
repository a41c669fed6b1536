"""The bot's state about the updates it was sent: each one kept from its arrival until answered, with the process
answering it, so that the updates of a process that died are answered by another (at least once)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

KEEP_ANSWERED = 86400.0  # seconds an answered update is remembered: Telegram sending it again is dropped


@dataclass(frozen=True)
class Orphans:
    bodies: list[str]  # the updates claimed, as Telegram sent them (JSON)
    dropped: list[int]  # update ids given up after max_tries processes died on them


class InboxState:
    """Mixed into Store, whose execute and transaction it uses."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def transaction(self) -> Any:
        raise NotImplementedError

    def keep_update(self, update_id: int, body: str, owner: str) -> bool:
        """Record an update as it arrives; False if it is known already (sent again, or being answered)."""
        with self.transaction():
            return self.execute("INSERT INTO inbox (update_id, body, owner, seen, tries) VALUES (?, ?, ?, ?, 1) "
                                "ON CONFLICT (update_id) DO NOTHING", (update_id, body, owner, time.time())
                                ).rowcount > 0

    def mark_answered(self, update_id: int) -> None:
        with self.transaction():
            self.execute("UPDATE inbox SET answered = ? WHERE update_id = ?", (time.time(), update_id))

    def touch_updates(self, owner: str) -> None:
        """Say that this owner is still answering its updates."""
        with self.transaction():
            self.execute("UPDATE inbox SET seen = ? WHERE owner = ? AND answered IS NULL", (time.time(), owner))

    def claim_orphans(self, owner: str, silent_for: float, dead: Callable[[str], bool], max_tries: int,
                      limit: int = 100) -> Orphans:
        """Take over the unanswered updates of owners silent for silent_for seconds, or known dead."""
        now = time.time()
        bodies, dropped = [], []
        with self.transaction():
            rows = self.execute("SELECT update_id, body, owner, seen, tries FROM inbox WHERE answered IS NULL "
                                "AND owner <> ? ORDER BY update_id LIMIT ?", (owner, limit)).fetchall()
            for update_id, body, was, seen, tries in rows:
                if seen > now - silent_for and not dead(was):
                    continue
                if tries >= max_tries:
                    self.execute("UPDATE inbox SET answered = ? WHERE update_id = ?", (now, update_id))
                    dropped.append(update_id)
                    continue
                claimed = self.execute("UPDATE inbox SET owner = ?, seen = ?, tries = tries + 1 "
                                       "WHERE update_id = ? AND owner = ? AND answered IS NULL",
                                       (owner, now, update_id, was)).rowcount
                if claimed:
                    bodies.append(body)
        return Orphans(bodies, dropped)

    def prune_inbox(self, now: float) -> int:
        return self.execute("DELETE FROM inbox WHERE answered < ?", (now - KEEP_ANSWERED,)).rowcount
