"""The bot's state in PostgreSQL (STATE_URL=postgresql://...): one state for any number of bot replicas, so
that any of them answers any button, reuses any upload's file_id, and /stats counts them all."""

from __future__ import annotations

import json
import time
from contextlib import AbstractContextManager
from typing import Any

from bot.state import Store

# Each statement is idempotent: the bot creates and upgrades its schema itself, at every start, and replicas
# starting together do no harm (CREATE ... IF NOT EXISTS, ADD COLUMN IF NOT EXISTS).
SCHEMA = [
    """CREATE TABLE IF NOT EXISTS queries (id TEXT PRIMARY KEY, user_id BIGINT, vector BYTEA NOT NULL,
       filters TEXT NOT NULL, exclude TEXT NOT NULL, shown TEXT NOT NULL, created DOUBLE PRECISION NOT NULL)""",
    "ALTER TABLE queries ADD COLUMN IF NOT EXISTS look TEXT",
    "ALTER TABLE queries ADD COLUMN IF NOT EXISTS item INTEGER",
    "CREATE TABLE IF NOT EXISTS uploads (photo TEXT PRIMARY KEY, file_id TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS looks (id TEXT PRIMARY KEY, file_id TEXT NOT NULL, width INTEGER NOT NULL,
       height INTEGER NOT NULL, boxes TEXT NOT NULL, searched INTEGER, packshot INTEGER NOT NULL,
       filters TEXT NOT NULL, thumbnail BYTEA NOT NULL, created DOUBLE PRECISION NOT NULL)""",
    "ALTER TABLE looks ADD COLUMN IF NOT EXISTS items TEXT",
    """CREATE TABLE IF NOT EXISTS look_vectors (look TEXT NOT NULL, item INTEGER NOT NULL, vector BYTEA NOT NULL,
       PRIMARY KEY (look, item))""",
    "CREATE TABLE IF NOT EXISTS feedback (time DOUBLE PRECISION NOT NULL, entry TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS served (time DOUBLE PRECISION NOT NULL, user_id BIGINT,
       seconds DOUBLE PRECISION NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS errors (time DOUBLE PRECISION NOT NULL)",
    """CREATE TABLE IF NOT EXISTS users (id BIGINT PRIMARY KEY, language TEXT, telegram_language TEXT,
       alerts INTEGER NOT NULL DEFAULT 1)""",
    """CREATE TABLE IF NOT EXISTS saved (id BIGSERIAL PRIMARY KEY, user_id BIGINT NOT NULL, product TEXT NOT NULL,
       price TEXT NOT NULL, available INTEGER NOT NULL, created DOUBLE PRECISION NOT NULL,
       UNIQUE (user_id, product))""",
    """CREATE TABLE IF NOT EXISTS alerts (id BIGSERIAL PRIMARY KEY, saved BIGINT NOT NULL, user_id BIGINT NOT NULL,
       product TEXT NOT NULL, kind TEXT NOT NULL, old_price TEXT NOT NULL, new_price TEXT NOT NULL,
       created DOUBLE PRECISION NOT NULL, sent DOUBLE PRECISION)""",
    "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS claimed_by TEXT",
    "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS claimed DOUBLE PRECISION",
    "CREATE INDEX IF NOT EXISTS alerts_waiting ON alerts (sent, id)",
    "CREATE INDEX IF NOT EXISTS queries_created ON queries (created)",
    "CREATE INDEX IF NOT EXISTS looks_created ON looks (created)",
    "CREATE INDEX IF NOT EXISTS served_time ON served (time)",
    "CREATE INDEX IF NOT EXISTS errors_time ON errors (time)",
    "CREATE INDEX IF NOT EXISTS feedback_time ON feedback (time)",
    """CREATE TABLE IF NOT EXISTS inbox (update_id BIGINT PRIMARY KEY, body TEXT NOT NULL, owner TEXT NOT NULL,
       seen DOUBLE PRECISION NOT NULL, tries INTEGER NOT NULL, answered DOUBLE PRECISION)""",
    "CREATE INDEX IF NOT EXISTS inbox_waiting ON inbox (answered)",
    "CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until DOUBLE PRECISION NOT NULL)",
]
SCHEMA_LOCK = 7_401_042  # an advisory lock: two replicas starting at once create the schema one after the other
CONNECT_TIMEOUT = 10  # seconds
STATEMENT_TIMEOUT = 15  # seconds: the longest statement here is a prune of a busy month's rows
STATS_WINDOW = 2000  # the latest served photos that /stats's percentiles are over


class PostgresStore(Store):
    """A connection that comes back: after a PostgreSQL restart, or a network cut, the next statement reconnects
    (once the server answers again) instead of failing until the bot is restarted. Every statement, and every
    connect, has a time limit: a server that stops answering is an error in seconds, not a hang."""

    def __init__(self, url: str, ttl_hours: int = 72, retention_days: int = 90):
        super().__init__(ttl_hours, retention_days)
        self.url = url
        self.db = self.connect()
        with self.transaction():
            self.db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            for statement in SCHEMA:
                self.db.execute(statement)

    def connect(self) -> Any:
        import psycopg  # the 'scale' extra: the default install has no PostgreSQL client

        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                                   options=f"-c statement_timeout={STATEMENT_TIMEOUT * 1000:.0f}",
                                   keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3)
        except psycopg.Error as exc:
            raise ConnectionError(f"cannot connect to STATE_URL's PostgreSQL: {str(exc).strip()}") from None

    def connection(self) -> Any:
        """The connection, made again if the last one broke (the server restarted, or the network cut it)."""
        if self.db.broken or self.db.closed:
            self.db.close()
            self.db = self.connect()
        return self.db

    def execute(self, sql: str, params: Any = ()) -> Any:
        import psycopg

        in_transaction = self.db.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
        try:
            return self.connection().execute(sql.replace("?", "%s"), params)
        except psycopg.OperationalError:
            if in_transaction or not self.db.broken:
                raise
            return self.connection().execute(sql.replace("?", "%s"), params)  # once more, on a new connection

    def transaction(self) -> AbstractContextManager[Any]:
        return self.connection().transaction()

    def close(self) -> None:
        self.db.close()

    def record_feedback(self, entry: dict[str, Any]) -> None:
        self.execute("INSERT INTO feedback (time, entry) VALUES (?, ?)",
                     (time.time(), json.dumps(entry, ensure_ascii=False)))

    def prune_records(self, before: float) -> dict[str, int]:
        with self.transaction():
            return {table: self.execute(f"DELETE FROM {table} WHERE time < ?", (before,)).rowcount
                    for table in ("served", "errors", "feedback")}

    def feedback(self) -> list[dict[str, Any]]:
        return [{"time": t, **json.loads(e)} for t, e in self.execute("SELECT time, entry FROM feedback ORDER BY time")]

    # -- /stats across replicas ----------------------------------------------------------------------------
    def record_served(self, user_id: int | None, seconds: float) -> None:
        self.execute("INSERT INTO served (time, user_id, seconds) VALUES (?, ?, ?)", (time.time(), user_id, seconds))

    def record_error(self) -> None:
        self.execute("INSERT INTO errors (time) VALUES (?)", (time.time(),))

    def stats(self) -> dict[str, Any]:
        served, users = self.execute("SELECT count(*), count(DISTINCT user_id) FROM served").fetchone()
        p50, p95, window = self.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds), "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds), count(*) "
            "FROM (SELECT seconds FROM served ORDER BY time DESC LIMIT ?) latest", (STATS_WINDOW,)).fetchone()
        errors = self.execute("SELECT count(*) FROM errors").fetchone()[0]
        return {"queries": served, "users": users, "errors": errors, "p50": p50, "p95": p95, "window": window}
