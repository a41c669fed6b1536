"""A month of a busy shop's state: 200,000 photos from 20,000 users, 5,000 saves and 300 syncs, written through the
bot's own Store (SQLite, then PostgreSQL) on a simulated clock, with the hourly clean-up the bot runs.

    python -m benchmarks state-month [--photos 200000] [--days 30] [--engines sqlite,postgresql]

Each photo does to the state what the photo path does: a look with its items' masks (those of 20 real photos),
its vector, a query (and a served row, on PostgreSQL). A third of them are paged ("show 5 more"), a tenth search
another item, 2% are voted on. Each sync changes the price of 1% of the saved products; the alerts it queues are
claimed and marked sent.
Reported per simulated day: the state's size on disk and the time of one photo's state calls, and the last week
against the first. On PostgreSQL the simulated day ends with a VACUUM: a real day gives autovacuum hundreds of
rounds, the simulated one (seconds long) none.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import ROOT, p
from bot.recommender import KEPT_SIDE, reduced
from bot.state import Store
from bot.state_sqlite import SqliteStore
from bot.state_users import Transition
from indexing.finder.finders import open_finder
from indexing.finder.first_cut import find_first

PRODUCTS = 44_000
REAL_PHOTOS = Path(os.environ.get("FASHION_REAL_PHOTOS", ROOT.parent / "shared" / "datasets" / "real-photos"))
ALERTS = "alerts"


class Clock:
    """time.time for the state while the month runs: it starts now and is moved on by the simulation."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def real_looks(count: int = 20) -> list[list[dict[str, Any]]]:
    """The items the bot keeps of real photos, as it keeps them (masks and all): half street photos of people
    (four items each, mostly), half garments at home (one or none)."""
    photos = sorted((REAL_PHOTOS / "people").glob("*.jpg"))[: count // 2]
    photos += sorted((REAL_PHOTOS / "garments").rglob("*.jpg"))[: count // 2]
    if not photos:
        raise SystemExit(f"no real photos at {REAL_PHOTOS}; set FASHION_REAL_PHOTOS")
    finder = open_finder("auto", None, {}, None)
    looks = []
    for path in photos:
        image, _size, finding = find_first(finder, path.read_bytes())
        image = reduced(image, KEPT_SIDE)
        looks.append([finder.refine(image, finding, n).to_record() for n in range(len(finding.items))])
    return looks


def state_size(store: Store, folder: Path) -> int:
    if isinstance(store, SqliteStore):
        return sum(f.stat().st_size for f in folder.glob("state.sqlite3*"))
    return int(store.execute("SELECT pg_database_size(current_database())").fetchone()[0])


def photo(store: Store, user: int, items: list[dict[str, Any]], rng: np.random.Generator) -> None:
    """What one photo, and what its user then taps, does to the state."""
    vector = rng.standard_normal(2048).astype(np.float32)
    look = store.new_look(f"file-{user}-{rng.integers(1 << 30)}", (360, 480), items, 0, False, {})
    query = store.new_query(user, vector, {}, [], [str(i) for i in rng.integers(0, PRODUCTS, 5)], look.id, 0)
    if hasattr(store, "record_served"):
        store.record_served(user, 0.8)
    roll = rng.random()
    if roll < 0.33:
        again = store.query(query.id)
        assert again is not None
        store.extend_shown(again, [str(i) for i in rng.integers(0, PRODUCTS, 5)])
    elif roll < 0.43:
        store.new_query(user, vector[::-1].copy(), {}, [], ["1"], look.id, 1)
    elif roll < 0.45:
        store.record_feedback({"user": user, "query": query.id, "page": 0, "vote": "up"})


def sync(store: Store, rng: np.random.Generator, owner: str) -> int:
    """A sync that makes 1% of the saved products cheaper; its alerts claimed and marked sent."""
    moves, after = [], 0
    while rows := store.saved_after(after, 500):
        after = rows[-1].id
        moves += [Transition(row, f"{rng.integers(100, 999)}.00 INR", True, "price") for row in rows
                  if rng.random() < 0.01]
    store.apply_transitions(moves)
    store.hold_lease(ALERTS, owner, 30)
    sent = 0
    for alert in store.waiting_alerts(10_000, owner, 0.0):
        if store.claim_alert(alert.id, owner, ALERTS, 0.0):
            sent += store.mark_sent(alert.id, owner)
    return sent


def month(store: Store, folder: Path, clock: Clock, photos: int, days: int, users: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    looks = real_looks()
    print(f"items kept per photo: {np.mean([len(json.dumps(look)) for look in looks]) / 1024:.1f} KB on average")
    hours = days * 24
    per_hour = photos // hours
    saves_per_hour, syncs_at = 5000 / hours, set(np.linspace(0, hours - 1, 300).astype(int).tolist())
    owner, rows, times = "bench", [], []
    for hour in range(hours):
        store.prune()  # what the bot's housekeeping does every hour
        for n in range(per_hour):
            clock.now += 3600 / per_hour
            started = time.perf_counter()
            photo(store, int(rng.integers(users)), looks[n % len(looks)], rng)
            times.append(time.perf_counter() - started)
            if rng.random() < saves_per_hour / per_hour:
                store.save_product(int(rng.integers(users)), str(rng.integers(PRODUCTS)), "1000.00 INR", True)
        if hour in syncs_at:
            sync(store, rng, owner)
        if hour % 24 == 23:
            if not isinstance(store, SqliteStore):
                # PostgreSQL's autovacuum reuses deleted rows' space within a minute of real time; a simulated day
                # here lasts seconds, so it is given its chance once a day.
                store.execute("VACUUM")
            rows.append({"day": hour // 24 + 1, "state_mb": round(state_size(store, folder) / 2**20, 1),
                         "photo_state_ms_mean": round(1000 * float(np.mean(times)), 3),
                         "photo_state_ms_p95": round(p(times, 95), 3)})
            print(rows[-1], flush=True)
            times = []
    return rows


def run_engine(engine: str, photos: int, days: int, users: int) -> dict[str, Any]:
    clock = Clock()
    real = time.time
    folder = Path(tempfile.mkdtemp(prefix=f"fashion-month-{engine}-"))
    server = None
    time.time = clock  # the state's own clock: expiry and retention run on simulated time
    try:
        if engine == "sqlite":
            store: Store = SqliteStore(folder)
        else:
            from bot.state_postgres import PostgresStore
            from testbed.postgres import Postgres, binaries

            server = Postgres(binaries()).start()
            store = PostgresStore(server.url)
        started = real()
        rows = month(store, folder, clock, photos, days, users)
        seconds = real() - started
        counts = {table: int(store.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                  for table in ("queries", "looks", "look_vectors", "saved", "alerts")}
        store.close()
    finally:
        time.time = real
        if server is not None:
            server.stop()
    first, last = rows[:7], rows[-7:]
    mean = lambda days_: float(np.mean([r["photo_state_ms_mean"] for r in days_]))  # noqa: E731
    return {"engine": engine, "photos": photos, "users": users, "days": days, "seconds": round(seconds, 1),
            "state_mb_end": rows[-1]["state_mb"], "state_mb_max": max(r["state_mb"] for r in rows),
            "photo_state_ms_first_week": round(mean(first), 3), "photo_state_ms_last_week": round(mean(last), 3),
            "last_week_over_first": round(mean(last) / mean(first), 3), "rows_at_end": counts, "days_": rows}


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks state-month")
    parser.add_argument("--photos", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    return {f"state-month-{engine}": run_engine(engine, args.photos, args.days, args.users)
            for engine in args.engines.split(",")}
