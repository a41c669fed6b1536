"""The bot's state in SQLite under STATE_DIR: the default, for one bot process."""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from bot.state import Store, feedback_line
from indexing.store.files import atomic_write

SCHEMA = """
CREATE TABLE IF NOT EXISTS queries (
    id TEXT PRIMARY KEY,
    user_id INTEGER,
    vector BLOB NOT NULL,
    filters TEXT NOT NULL,
    exclude TEXT NOT NULL,
    shown TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads (
    photo TEXT PRIMARY KEY,
    file_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS looks (
    id TEXT PRIMARY KEY,
    file_id TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    boxes TEXT NOT NULL,
    searched INTEGER,
    packshot INTEGER NOT NULL,
    filters TEXT NOT NULL,
    thumbnail BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS look_vectors (
    look TEXT NOT NULL,
    item INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (look, item)
);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    language TEXT,
    telegram_language TEXT,
    alerts INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS saved (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL,
    product TEXT NOT NULL,
    price TEXT NOT NULL,
    available INTEGER NOT NULL,
    created REAL NOT NULL,
    UNIQUE (user_id, product)
);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    saved INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    product TEXT NOT NULL,
    kind TEXT NOT NULL,
    old_price TEXT NOT NULL,
    new_price TEXT NOT NULL,
    created REAL NOT NULL,
    sent REAL
);
CREATE INDEX IF NOT EXISTS alerts_waiting ON alerts (sent, id);
CREATE INDEX IF NOT EXISTS queries_created ON queries (created);
CREATE INDEX IF NOT EXISTS looks_created ON looks (created);
CREATE TABLE IF NOT EXISTS inbox (
    update_id INTEGER PRIMARY KEY,
    body TEXT NOT NULL,
    owner TEXT NOT NULL,
    seen REAL NOT NULL,
    tries INTEGER NOT NULL,
    answered REAL
);
CREATE INDEX IF NOT EXISTS inbox_waiting ON inbox (answered);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until REAL NOT NULL
);
"""
# Columns added after the first release: a state folder from then is upgraded in place.
UPGRADES = {"queries": {"look": "TEXT", "item": "INTEGER"}, "looks": {"items": "TEXT"},
            "alerts": {"claimed_by": "TEXT", "claimed": "REAL"}}


class SqliteStore(Store):
    """state.sqlite3 and feedback.jsonl in one folder: small, atomic, no pickle, survives restarts."""

    def __init__(self, directory: Path, ttl_hours: int = 72, retention_days: int = 90):
        super().__init__(ttl_hours, retention_days)
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.db = sqlite3.connect(directory / "state.sqlite3", check_same_thread=False)
        self.db.executescript(SCHEMA)
        self.upgrade()
        self.db.execute("PRAGMA journal_mode=WAL")
        # With WAL, NORMAL syncs at checkpoints, not at every commit: still never corrupt; a power cut may forget
        # the last moments' buttons. A busy month's 600,000 commits take a third of the time.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.feedback_file = directory / "feedback.jsonl"

    def upgrade(self) -> None:
        for table, columns in UPGRADES.items():
            present = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            for column, kind in columns.items():
                if column not in present:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        self.db.commit()

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, params)

    def transaction(self) -> AbstractContextManager[Any]:
        return self.db

    def close(self) -> None:
        self.db.close()

    def record_feedback(self, entry: dict[str, Any]) -> None:
        with open(self.feedback_file, "a", encoding="utf-8") as out:
            out.write(feedback_line(entry) + "\n")

    def prune_records(self, before: float) -> dict[str, int]:
        """feedback.jsonl without its lines from before `before` (rewritten only when there are some)."""
        try:
            lines = self.feedback_file.read_text("utf-8").splitlines(keepends=True)
        except FileNotFoundError:
            return {"feedback": 0}
        kept = [line for line in lines if line_time(line) >= before]
        if len(kept) < len(lines):
            atomic_write(self.feedback_file, "".join(kept).encode("utf-8"))
        return {"feedback": len(lines) - len(kept)}


def line_time(line: str) -> float:
    """A feedback line's time; a line that cannot be read is kept (as if written now)."""
    try:
        return float(json.loads(line)["time"])
    except (ValueError, KeyError, TypeError):
        return float("inf")
