"""The bot's small persistent state: past queries (for buttons), uploaded file_ids, feedback."""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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
"""


@dataclass
class Query:
    """A search the user can page through: its vector, filters, and every id shown so far, in order."""

    id: str
    vector: np.ndarray
    filters: dict[str, list[str]]
    exclude: list[str]
    shown: list[str]

    def page(self, number: int, size: int) -> list[str]:
        return self.shown[number * size : (number + 1) * size]


class Store:
    """SQLite under STATE_DIR: small, atomic, safe to read (no pickle), survives restarts."""

    def __init__(self, directory: Path, ttl_hours: int = 72):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.ttl = ttl_hours * 3600
        self.db = sqlite3.connect(directory / "state.sqlite3", check_same_thread=False)
        self.db.executescript(SCHEMA)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.feedback_file = directory / "feedback.jsonl"

    def close(self) -> None:
        self.db.close()

    def new_query(self, user_id: int | None, vector: np.ndarray, filters: dict[str, list[str]],
                  exclude: list[str], shown: list[str]) -> Query:
        query = Query(secrets.token_hex(5), np.asarray(vector, dtype=np.float32), filters, exclude, shown)
        with self.db:
            self.db.execute("DELETE FROM queries WHERE created < ?", (time.time() - self.ttl,))
            self.db.execute(
                "INSERT INTO queries VALUES (?, ?, ?, ?, ?, ?, ?)",
                (query.id, user_id, query.vector.tobytes(), json.dumps(filters), json.dumps(exclude),
                 json.dumps(shown), time.time()),
            )
        return query

    def query(self, query_id: str) -> Query | None:
        """The stored query, or None once it has expired (or never existed)."""
        row = self.db.execute(
            "SELECT vector, filters, exclude, shown FROM queries WHERE id = ? AND created >= ?",
            (query_id, time.time() - self.ttl),
        ).fetchone()
        if row is None:
            return None
        vector, filters, exclude, shown = row
        return Query(query_id, np.frombuffer(vector, dtype=np.float32), json.loads(filters),
                     json.loads(exclude), json.loads(shown))

    def extend_shown(self, query: Query, more: list[str]) -> None:
        query.shown += more
        with self.db:
            self.db.execute("UPDATE queries SET shown = ? WHERE id = ?", (json.dumps(query.shown), query.id))

    def file_id(self, photo: str) -> str | None:
        row = self.db.execute("SELECT file_id FROM uploads WHERE photo = ?", (photo,)).fetchone()
        return row[0] if row else None

    def remember_upload(self, photo: str, file_id: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO uploads VALUES (?, ?)", (photo, file_id))

    def forget_uploads(self, photos: list[str]) -> None:
        with self.db:
            self.db.executemany("DELETE FROM uploads WHERE photo = ?", [(p,) for p in photos])

    def record_feedback(self, entry: dict[str, Any]) -> None:
        with open(self.feedback_file, "a", encoding="utf-8") as out:
            out.write(json.dumps({"time": round(time.time(), 3), **entry}, ensure_ascii=False) + "\n")
