"""The bot's state about its users: each one's language and alert setting, the products they saved, and the queue
of alerts waiting to be sent (with the lease that lets one replica at a time send them)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Saved:
    """A product a user saved, with what it cost and whether it was in stock when last seen."""

    id: int
    user_id: int
    product: str
    price: str  # as the feed wrote it, "" when it has none
    available: bool
    alerts: bool  # whether the user wants alerts


@dataclass(frozen=True)
class Alert:
    id: int
    saved: int
    user_id: int
    product: str
    kind: str  # "price": it got cheaper; "stock": it is back in stock
    old_price: str
    new_price: str


@dataclass(frozen=True)
class Transition:
    """What a saved product's row becomes, guarded by what it was; alert: the kind to queue, if any."""

    saved: Saved
    price: str
    available: bool
    alert: str | None


class UserState:
    """Mixed into Store, whose execute and transaction it uses."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def transaction(self) -> Any:
        raise NotImplementedError

    # -- language and alert settings ---------------------------------------------------------------------
    def language(self, user_id: int) -> str | None:
        """The language the user chose with /language; None: Telegram's language_code decides."""
        row = self.execute("SELECT language FROM users WHERE id = ?", (user_id,)).fetchone()
        return row[0] if row else None

    def set_language(self, user_id: int, code: str | None) -> None:
        with self.transaction():
            self.execute("INSERT INTO users (id, language) VALUES (?, ?) "
                         "ON CONFLICT (id) DO UPDATE SET language = excluded.language", (user_id, code))

    def remember_telegram_language(self, user_id: int, code: str | None) -> None:
        """Telegram's language_code for the user: what alerts, sent outside any update, are written in."""
        with self.transaction():
            self.execute("INSERT INTO users (id, telegram_language) VALUES (?, ?) "
                         "ON CONFLICT (id) DO UPDATE SET telegram_language = excluded.telegram_language",
                         (user_id, code))

    def alert_language(self, user_id: int) -> str | None:
        row = self.execute("SELECT COALESCE(language, telegram_language) FROM users WHERE id = ?",
                           (user_id,)).fetchone()
        return row[0] if row else None

    def alerts_on(self, user_id: int) -> bool:
        row = self.execute("SELECT alerts FROM users WHERE id = ?", (user_id,)).fetchone()
        return bool(row[0]) if row else True

    def set_alerts(self, user_id: int, on: bool) -> None:
        """Alerts on or off; off also drops the user's alerts still waiting."""
        with self.transaction():
            self.execute("INSERT INTO users (id, alerts) VALUES (?, ?) "
                         "ON CONFLICT (id) DO UPDATE SET alerts = excluded.alerts", (user_id, int(on)))
            if not on:
                self.execute("DELETE FROM alerts WHERE user_id = ? AND sent IS NULL", (user_id,))

    # -- saved products ----------------------------------------------------------------------------------
    def save_product(self, user_id: int, product: str, price: str, available: bool) -> bool:
        """Save a product for the user; False if it was saved already."""
        with self.transaction():
            cursor = self.execute("INSERT INTO saved (user_id, product, price, available, created) "
                                  "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, product) DO NOTHING",
                                  (user_id, product, price, int(available), time.time()))
        return bool(cursor.rowcount)

    def unsave(self, user_id: int, saved_id: int) -> str | None:
        """Remove one of the user's saved products (and its waiting alerts); its product id, or None."""
        with self.transaction():
            row = self.execute("SELECT product FROM saved WHERE id = ? AND user_id = ?", (saved_id, user_id)).fetchone()
            if row is None:
                return None
            self.execute("DELETE FROM alerts WHERE saved = ? AND sent IS NULL", (saved_id,))
            self.execute("DELETE FROM saved WHERE id = ?", (saved_id,))
        return row[0]

    def saved_by(self, user_id: int, offset: int, limit: int) -> tuple[list[tuple[int, str]], int]:
        """A page of the user's saved products, newest first, as (saved id, product id); and how many in all."""
        rows = self.execute("SELECT id, product FROM saved WHERE user_id = ? ORDER BY id DESC LIMIT ? OFFSET ?",
                            (user_id, limit, offset)).fetchall()
        total = self.execute("SELECT count(*) FROM saved WHERE user_id = ?", (user_id,)).fetchone()[0]
        return [(int(i), p) for i, p in rows], int(total)

    def saved_after(self, after: int, limit: int) -> list[Saved]:
        """Every user's saved products in id order, a page at a time (after: the last id of the page before)."""
        rows = self.execute(
            "SELECT s.id, s.user_id, s.product, s.price, s.available, COALESCE(u.alerts, 1) FROM saved s "
            "LEFT JOIN users u ON u.id = s.user_id WHERE s.id > ? ORDER BY s.id LIMIT ?", (after, limit)).fetchall()
        return [Saved(int(i), int(u), p, price, bool(a), bool(on)) for i, u, p, price, a, on in rows]

    def apply_transitions(self, transitions: Sequence[Transition]) -> int:
        """Move saved rows to what their products are now, queueing an alert with each move that calls for one.

        A row moves only from the state it was read in: of two replicas that see the same new catalogue, one
        moves it and queues the alert, the other finds it moved and queues nothing. Returns the alerts queued."""
        queued = 0
        with self.transaction():
            for t in transitions:
                moved = self.execute("UPDATE saved SET price = ?, available = ? WHERE id = ? AND price = ? "
                                     "AND available = ?", (t.price, int(t.available), t.saved.id, t.saved.price,
                                                           int(t.saved.available))).rowcount
                if moved and t.alert:
                    self.execute("INSERT INTO alerts (saved, user_id, product, kind, old_price, new_price, created) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?)", (t.saved.id, t.saved.user_id, t.saved.product,
                                                                  t.alert, t.saved.price, t.price, time.time()))
                    queued += 1
        return queued

    # -- the alert queue ---------------------------------------------------------------------------------
    def waiting_alerts(self, limit: int, owner: str = "", stale: float = 0.0) -> list[Alert]:
        """Unsent alerts, oldest first, but those another sender claimed after `stale` (a time.time())."""
        rows = self.execute("SELECT id, saved, user_id, product, kind, old_price, new_price FROM alerts "
                            "WHERE sent IS NULL AND (claimed_by IS NULL OR claimed_by = ? OR claimed < ?) "
                            "ORDER BY id LIMIT ?", (owner, stale, limit)).fetchall()
        return [Alert(int(r[0]), int(r[1]), int(r[2]), r[3], r[4], r[5], r[6]) for r in rows]

    def claim_alert(self, alert_id: int, owner: str, lease: str, stale: float) -> bool:
        """Take one alert to send now, in one statement that checks everything as it is at this moment: it is
        unsent, nobody else claimed it since `stale`, its product is still saved, its user has not turned alerts
        off, and this owner still holds the sender's lease. False: not to be sent (by this owner, now)."""
        now = time.time()
        with self.transaction():
            claimed = self.execute(
                "UPDATE alerts SET claimed_by = ?, claimed = ? WHERE id = ? AND sent IS NULL "
                "AND (claimed_by IS NULL OR claimed_by = ? OR claimed < ?) "
                "AND EXISTS (SELECT 1 FROM saved s WHERE s.id = alerts.saved) "
                "AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = alerts.user_id AND u.alerts = 0) "
                "AND EXISTS (SELECT 1 FROM leases l WHERE l.name = ? AND l.owner = ? AND l.until > ?)",
                (owner, now, alert_id, owner, stale, lease, owner, now)).rowcount
        return bool(claimed)

    def unclaim(self, alert_id: int, owner: str) -> None:
        """Give back an alert this owner claimed but did not send: the next holder sends it at once."""
        with self.transaction():
            self.execute("UPDATE alerts SET claimed_by = NULL WHERE id = ? AND claimed_by = ? AND sent IS NULL",
                         (alert_id, owner))

    def mark_sent(self, alert_id: int, owner: str) -> bool:
        """Mark an alert this owner claimed, and sent, as sent; False if another sender has claimed it since (this
        owner's claim went stale while it was stopped): that one sends it, and it counts."""
        with self.transaction():
            return bool(self.execute("UPDATE alerts SET sent = ? WHERE id = ? AND claimed_by = ? AND sent IS NULL",
                                     (time.time(), alert_id, owner)).rowcount)

    def alerts_sent(self, since: float = 0.0) -> int:
        return int(self.execute("SELECT count(*) FROM alerts WHERE sent >= ?", (since,)).fetchone()[0])

    def drop_user(self, user_id: int) -> None:
        """A user who blocked the bot: no more alerts, none waiting (they can turn them on again: /alerts on)."""
        self.set_alerts(user_id, False)

    def hold_lease(self, name: str, owner: str, seconds: float) -> bool:
        """Take or renew a lease that one process at a time holds; True while this owner holds it."""
        now = time.time()
        with self.transaction():
            self.execute("INSERT INTO leases (name, owner, until) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
                         "SET owner = excluded.owner, until = excluded.until "
                         "WHERE leases.owner = excluded.owner OR leases.until < ?", (name, owner, now + seconds, now))
            row = self.execute("SELECT owner FROM leases WHERE name = ?", (name,)).fetchone()
        return bool(row and row[0] == owner)

    def release_lease(self, name: str, owner: str) -> None:
        with self.transaction():
            self.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))
