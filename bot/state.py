"""The bot's small persistent state: past queries and photos (for buttons), uploaded file_ids, feedback."""

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
"""
# Columns added after the first release: a state folder from then is upgraded in place.
UPGRADES = {"queries": {"look": "TEXT", "item": "INTEGER"}}
WHOLE = -1  # the item number that stands for the whole photo


@dataclass
class Query:
    """A search the user can page through: its vector, filters, and every id shown so far, in order."""

    id: str
    vector: np.ndarray
    filters: dict[str, list[str]]
    exclude: list[str]
    shown: list[str]
    look: str | None = None  # the photo's items, when the query came from a photo
    item: int | None = None  # which of them it searched (WHOLE: the whole photo)

    def page(self, number: int, size: int) -> list[str]:
        return self.shown[number * size : (number + 1) * size]


@dataclass
class Look:
    """What the bot saw in a user's photo: the items' boxes, and a small copy of it to outline them on."""

    id: str
    file_id: str
    size: tuple[int, int]
    boxes: list[list[int]]
    searched: int | None
    packshot: bool
    filters: dict[str, list[str]]
    thumbnail: bytes


class Store:
    """SQLite under STATE_DIR: small, atomic, safe to read (no pickle), survives restarts."""

    def __init__(self, directory: Path, ttl_hours: int = 72):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.ttl = ttl_hours * 3600
        self.db = sqlite3.connect(directory / "state.sqlite3", check_same_thread=False)
        self.db.executescript(SCHEMA)
        self.upgrade()
        self.db.execute("PRAGMA journal_mode=WAL")
        self.feedback_file = directory / "feedback.jsonl"

    def upgrade(self) -> None:
        for table, columns in UPGRADES.items():
            present = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            for column, kind in columns.items():
                if column not in present:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    def new_query(self, user_id: int | None, vector: np.ndarray, filters: dict[str, list[str]],
                  exclude: list[str], shown: list[str], look: str | None = None, item: int | None = None) -> Query:
        query = Query(secrets.token_hex(5), np.asarray(vector, dtype=np.float32), filters, exclude, shown,
                      look, item)
        expired = time.time() - self.ttl
        with self.db:
            self.db.execute("DELETE FROM queries WHERE created < ?", (expired,))
            self.db.execute("DELETE FROM look_vectors WHERE look IN (SELECT id FROM looks WHERE created < ?)",
                            (expired,))
            self.db.execute("DELETE FROM looks WHERE created < ?", (expired,))
            self.db.execute(
                "INSERT INTO queries (id, user_id, vector, filters, exclude, shown, created, look, item) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (query.id, user_id, query.vector.tobytes(), json.dumps(filters), json.dumps(exclude),
                 json.dumps(shown), time.time(), look, item),
            )
        return query

    def query(self, query_id: str) -> Query | None:
        """The stored query, or None once it has expired (or never existed)."""
        row = self.db.execute(
            "SELECT vector, filters, exclude, shown, look, item FROM queries WHERE id = ? AND created >= ?",
            (query_id, time.time() - self.ttl),
        ).fetchone()
        if row is None:
            return None
        vector, filters, exclude, shown, look, item = row
        return Query(query_id, np.frombuffer(vector, dtype=np.float32), json.loads(filters),
                     json.loads(exclude), json.loads(shown), look, item)

    def extend_shown(self, query: Query, more: list[str]) -> None:
        query.shown += more
        with self.db:
            self.db.execute("UPDATE queries SET shown = ? WHERE id = ?", (json.dumps(query.shown), query.id))

    def new_look(self, file_id: str, size: tuple[int, int], boxes: list[list[int]], searched: int | None,
                 packshot: bool, filters: dict[str, list[str]], thumbnail: bytes) -> Look:
        look = Look(secrets.token_hex(5), file_id, size, boxes, searched, packshot, filters, thumbnail)
        with self.db:
            self.db.execute("INSERT INTO looks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (look.id, file_id, size[0], size[1], json.dumps(boxes), searched, int(packshot),
                             json.dumps(filters), thumbnail, time.time()))
        return look

    def look(self, look_id: str | None) -> Look | None:
        """The stored photo, or None once it has expired (or never existed)."""
        row = self.db.execute(
            "SELECT file_id, width, height, boxes, searched, packshot, filters, thumbnail FROM looks "
            "WHERE id = ? AND created >= ?", (look_id, time.time() - self.ttl)).fetchone()
        if row is None:
            return None
        file_id, width, height, boxes, searched, packshot, filters, thumbnail = row
        return Look(look_id or "", file_id, (width, height), json.loads(boxes), searched, bool(packshot),
                    json.loads(filters), thumbnail)

    def remember_vector(self, look_id: str, item: int, vector: np.ndarray) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO look_vectors VALUES (?, ?, ?)",
                            (look_id, item, np.asarray(vector, dtype=np.float32).tobytes()))

    def look_vector(self, look_id: str, item: int) -> np.ndarray | None:
        row = self.db.execute("SELECT vector FROM look_vectors WHERE look = ? AND item = ?",
                              (look_id, item)).fetchone()
        return np.frombuffer(row[0], dtype=np.float32) if row else None

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
