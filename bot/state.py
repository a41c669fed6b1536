"""The bot's small persistent state: past queries and photos (for buttons), uploaded file_ids, feedback, and
(state_users) its users' languages, saved products and alerts.

Store holds the SQL, written once for both engines; SqliteStore (one process, the default) and PostgresStore
(shared by any number of replicas) give it a connection and their few differences.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.i18n import N_, Language
from bot.state_inbox import InboxState
from bot.state_users import UserState

KIND_NAMES = {"item": N_("Item"), "outfit": N_("Outfit"), "top": N_("Top"), "bottom": N_("Bottom"),
              "shoes": N_("Shoes"), "photo": N_("Photo")}


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
    """What the bot saw in a user's photo: its file_id, and the items' boxes and masks."""

    id: str
    file_id: str
    size: tuple[int, int]
    boxes: list[list[int]]
    searched: int | None
    packshot: bool
    filters: dict[str, list[str]]
    thumbnail: bytes  # the small copy, in a look stored before copies moved out of the state (bot/pictures.py)
    # Each item as Item.to_record() gives it, mask included: a tap, a restart or another replica cuts out
    # exactly the pixels that were outlined. Empty for a look stored before items were kept.
    items: list[dict[str, Any]] = field(default_factory=list)

    def label(self, n: int, _: Language) -> str:
        """What the user calls item n: its number on the outlined photo, and what it is."""
        kind = self.items[n]["kind"] if n < len(self.items) else "item"
        return f"{n + 1} {_(KIND_NAMES.get(kind, KIND_NAMES['item']))}"


class Store(UserState, InboxState):
    """Queries, photos, uploads and feedback over a DB-API connection; subclasses connect and set the dialect."""

    def __init__(self, ttl_hours: int = 72, retention_days: int = 90):
        self.ttl = ttl_hours * 3600
        self.retention = retention_days * 86400

    # -- what each engine provides ----------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement (placeholders written as ?); returns a cursor."""
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def ping(self) -> None:
        """Raise if the state cannot be read (a PostgreSQL server gone, a damaged file); blocking."""
        self.execute("SELECT 1").fetchall()

    def record_feedback(self, entry: dict[str, Any]) -> None:
        raise NotImplementedError

    def prune(self, now: float | None = None) -> dict[str, int]:
        """Delete what has expired: queries and photos past the buttons' TTL, and what the bot recorded of its use
        (alerts sent; in subclasses, served photos, errors, feedback) past the retention. Rows deleted, by table."""
        now = time.time() if now is None else now
        expired, retired = now - self.ttl, now - self.retention
        deleted = {}
        with self.transaction():
            deleted["queries"] = self.execute("DELETE FROM queries WHERE created < ?", (expired,)).rowcount
            self.execute("DELETE FROM look_vectors WHERE look IN (SELECT id FROM looks WHERE created < ?)",
                         (expired,))
            deleted["looks"] = self.execute("DELETE FROM looks WHERE created < ?", (expired,)).rowcount
            deleted["alerts"] = self.execute("DELETE FROM alerts WHERE sent < ?", (retired,)).rowcount
            deleted["updates"] = self.prune_inbox(now)
        return {**deleted, **self.prune_records(retired)}

    def prune_records(self, before: float) -> dict[str, int]:
        """Delete the engine's own records of use older than before; rows deleted, by kind."""
        return {}

    # -- the state ---------------------------------------------------------------------------------------
    def new_query(self, user_id: int | None, vector: np.ndarray, filters: dict[str, list[str]],
                  exclude: list[str], shown: list[str], look: str | None = None, item: int | None = None) -> Query:
        """A query to page through; one from an item of a look keeps its vector once, as that item's."""
        query = Query(secrets.token_hex(5), np.asarray(vector, dtype=np.float32), filters, exclude, shown,
                      look, item)
        own = look is None or item is None
        with self.transaction():
            if not own:
                self.execute("INSERT INTO look_vectors (look, item, vector) VALUES (?, ?, ?) "
                             "ON CONFLICT (look, item) DO NOTHING", (look, item, vector_bytes(vector)))
            self.execute(
                "INSERT INTO queries (id, user_id, vector, filters, exclude, shown, created, look, item) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (query.id, user_id, vector_bytes(vector) if own else b"", json.dumps(filters), json.dumps(exclude),
                 json.dumps(shown), time.time(), look, item),
            )
        return query

    def query(self, query_id: str) -> Query | None:
        """The stored query, or None once it has expired (or never existed)."""
        row = self.execute(
            "SELECT q.vector, q.filters, q.exclude, q.shown, q.look, q.item, v.vector FROM queries q "
            "LEFT JOIN look_vectors v ON v.look = q.look AND v.item = q.item WHERE q.id = ? AND q.created >= ?",
            (query_id, time.time() - self.ttl),
        ).fetchone()
        if row is None:
            return None
        vector, filters, exclude, shown, look, item, items_vector = row
        if not len(vector) and items_vector is None:  # its look's vectors are gone: as good as expired
            return None
        return Query(query_id, vector_of(vector if len(vector) else items_vector), json.loads(filters),
                     json.loads(exclude), json.loads(shown), look, item)

    def extend_shown(self, query: Query, more: list[str]) -> None:
        query.shown += more
        with self.transaction():
            self.execute("UPDATE queries SET shown = ? WHERE id = ?", (json.dumps(query.shown), query.id))

    def new_look(self, file_id: str, size: tuple[int, int], items: list[dict[str, Any]], searched: int | None,
                 packshot: bool, filters: dict[str, list[str]]) -> Look:
        """A user's photo as the bot saw it; its picture is not kept here (bot/pictures.py), only its file_id."""
        boxes = [list(item["box"]) for item in items]
        look = Look(secrets.token_hex(5), file_id, size, boxes, searched, packshot, filters, b"", items)
        with self.transaction():
            self.execute("INSERT INTO looks (id, file_id, width, height, boxes, searched, packshot, filters, "
                         "thumbnail, created, items) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (look.id, file_id, size[0], size[1], json.dumps(boxes), searched, int(packshot),
                          json.dumps(filters), look.thumbnail, time.time(), json.dumps(items)))
        return look

    def look(self, look_id: str | None) -> Look | None:
        """The stored photo, or None once it has expired (or never existed)."""
        row = self.execute(
            "SELECT file_id, width, height, boxes, searched, packshot, filters, thumbnail, items FROM looks "
            "WHERE id = ? AND created >= ?", (look_id, time.time() - self.ttl)).fetchone()
        if row is None:
            return None
        file_id, width, height, boxes, searched, packshot, filters, thumbnail, items = row
        return Look(look_id or "", file_id, (width, height), json.loads(boxes), searched, bool(packshot),
                    json.loads(filters), bytes(thumbnail), json.loads(items or "[]"))

    def remember_vector(self, look_id: str, item: int, vector: np.ndarray) -> None:
        with self.transaction():
            self.execute("INSERT INTO look_vectors (look, item, vector) VALUES (?, ?, ?) "
                         "ON CONFLICT (look, item) DO UPDATE SET vector = excluded.vector",
                         (look_id, item, vector_bytes(vector)))

    def look_vector(self, look_id: str, item: int) -> np.ndarray | None:
        row = self.execute("SELECT vector FROM look_vectors WHERE look = ? AND item = ?", (look_id, item)).fetchone()
        return vector_of(row[0]) if row else None

    def file_id(self, photo: str) -> str | None:
        return self.file_ids([photo]).get(photo)

    def file_ids(self, photos: Sequence[str]) -> dict[str, str]:
        """The file_ids Telegram gave these photos' uploads, by photo (those never uploaded are left out)."""
        found = {}
        for photo in dict.fromkeys(photos):
            row = self.execute("SELECT file_id FROM uploads WHERE photo = ?", (photo,)).fetchone()
            if row:
                found[photo] = row[0]
        return found

    def remember_upload(self, photo: str, file_id: str) -> None:
        self.remember_uploads({photo: file_id})

    def remember_uploads(self, file_ids: dict[str, str]) -> None:
        with self.transaction():
            for photo, file_id in file_ids.items():
                self.execute("INSERT INTO uploads (photo, file_id) VALUES (?, ?) "
                             "ON CONFLICT (photo) DO UPDATE SET file_id = excluded.file_id", (photo, file_id))

    def forget_uploads(self, photos: list[str]) -> None:
        with self.transaction():
            for photo in photos:
                self.execute("DELETE FROM uploads WHERE photo = ?", (photo,))


HALF = b"\x10"  # marks a half-precision vector: its blob's length is odd, a float32 blob's a multiple of 4


def vector_bytes(vector: np.ndarray) -> bytes:
    """A vector as the state keeps it: in half precision, half the space of a month's queries. Distances from it
    differ by about 1e-3, which reorders near ties at most."""
    return HALF + np.asarray(vector, dtype=np.float16).tobytes()


def vector_of(blob: bytes | memoryview) -> np.ndarray:
    """The float32 vector of a blob written by vector_bytes, or by a bot from before it (plain float32)."""
    data = bytes(blob)
    if len(data) % 4 == 1 and data[:1] == HALF:
        return np.frombuffer(data[1:], dtype=np.float16).astype(np.float32)
    return np.frombuffer(data, dtype=np.float32)


def feedback_line(entry: dict[str, Any]) -> str:
    return json.dumps({"time": round(time.time(), 3), **entry}, ensure_ascii=False)
