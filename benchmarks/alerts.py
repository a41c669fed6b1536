"""Alerts at shop scale: saved products, a sync that drops prices, every alert through the fake Bot API.

    python -m benchmarks alerts                 # one bot (SQLite), restarted (SIGTERM) half-way
    python -m benchmarks alerts --replicas 2    # two bots sharing PostgreSQL; the one sending is restarted
    python -m benchmarks alerts --latency 0.15  # each Bot API answer takes 150 ms

10,000 saved products across 2,000 users (5 each, from a pool of 2,000 products), then one change that drops 500
of those products' prices. The fake Bot API answers every 40th sendPhoto with a 429 (retry after 1 s) and 1% of the
users have blocked the bot. Half-way through, the process sending the alerts is stopped and started again. Counts
each (user, product) alert Telegram accepted: every one expected exactly once, none to a blocked user.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.bot_latency import start_bot
from benchmarks.common import DATASET, rss_mb
from indexing import KerasEmbedder, Weights
from indexing.extract.embedder import DIM, l2_normalize, probe_images
from indexing.sources.build import export_extractor
from indexing.store.files import change_index, write_index
from indexing.store.vector_store import Change
from testbed.fake_telegram import FakeTelegram, Fault

PRICE, DROPPED = "1299.00 INR", "999.00 INR"


def shop_index(directory: Path, pool: int, embedder: KerasEmbedder) -> None:
    """pool feed products with prices and links (random vectors: alerts never search)."""
    directory.mkdir(parents=True)
    photo = directory / "photo.jpg"
    photo.write_bytes((DATASET / "images" / "15970.jpg").read_bytes())
    rng = np.random.default_rng(0)
    vectors = l2_normalize(rng.standard_normal((pool, DIM), dtype=np.float32))
    products = [{"id": str(i), "image": photo.name, "photo": f"p{i}",
                 "meta": {"title": f"Shirt {i}", "price": PRICE, "availability": "in stock",
                          "link": f"https://shop.example/p/{i}"}} for i in range(pool)]
    write_index(directory, vectors=vectors, products=products, fingerprint=embedder.fingerprint,
                probe=embedder.embed(probe_images()))
    export_extractor(directory, embedder)


def seed_saved(store, users: int, per_user: int, pool: int) -> dict[int, list[str]]:
    """Each user saves per_user distinct products of the pool (one transaction)."""
    rng = np.random.default_rng(1)
    saved = {user: [str(p) for p in rng.choice(pool, per_user, replace=False)] for user in range(1, users + 1)}
    with store.transaction():
        for user, products in saved.items():
            for pid in products:
                store.execute("INSERT INTO saved (user_id, product, price, available, created) VALUES (?, ?, ?, ?, ?)",
                              (user, pid, PRICE, 1, time.time()))
    return saved


def open_state(kind: str, work: Path):
    """The bot's state: SQLite in a folder, or a PostgreSQL server on loopback; (store, env, server)."""
    if kind == "sqlite":
        from bot.state_sqlite import SqliteStore

        return SqliteStore(work / "state"), {"STATE_DIR": str(work / "state")}, None
    from bot.state_postgres import PostgresStore
    from testbed.postgres import Postgres, binaries

    bin_dir = binaries()
    if bin_dir is None:
        raise SystemExit("--replicas 2 needs PostgreSQL (apt-get install postgresql)")
    server = Postgres(bin_dir).start()
    return PostgresStore(server.url), {"STATE_URL": server.url, "STATE_DIR": str(work / "state")}, server


def sender(logs: list[list[str]]) -> int:
    """Which bot holds the alert lease: the last to log taking it."""
    latest = [(max((i for i, line in enumerate(log) if "now sends the alerts" in line), default=-1), n)
              for n, log in enumerate(logs)]
    return max(latest)[1]


@dataclass
class Scenario:
    """What a run set up: the shop's index, the bots' settings and fake Bot API, what the users saved, the prices
    that drop, the users who blocked the bot, and the alerts each user should get."""

    work: Path
    index_dir: Path
    env: dict[str, str]
    fake: FakeTelegram
    saved: dict[int, list[str]]
    dropped: set[str]
    blocked: set[int]
    expected: Counter


def delivered(fake: FakeTelegram) -> list:
    return [r for r in fake.seen("sendPhoto") if r.response and "Cheaper now" in r.text]


def drop_prices_and_restart_the_sender(scenario: Scenario, bots: list, logs: list) -> dict:
    """Commit the price drops, SIGTERM the process sending the alerts halfway and start it again, and wait for
    every alert; the timings, the peak memory and the log of the process stopped."""
    fake, total = scenario.fake, sum(scenario.expected.values())
    time.sleep(2)  # every replica has compared the saved products with the catalogue as it is
    committed = time.monotonic()
    change_index(scenario.index_dir, Change(updated={
        pid: {"title": f"Shirt {pid}", "price": PRICE, "sale_price": DROPPED, "availability": "in stock",
              "link": f"https://shop.example/p/{pid}"} for pid in scenario.dropped}))
    deadline = committed + 2 * total / 25 + 180
    while len(delivered(fake)) < total // 2:
        assert time.monotonic() < deadline, f"only {len(delivered(fake))} of {total} alerts"
        time.sleep(0.1)
    peaks = [rss_mb(b.pid)["peak_rss_mb"] for b in bots]
    victim = sender(logs)
    bots[victim].send_signal(signal.SIGTERM)  # a restart of the process that sends, in the middle
    stopped = time.monotonic()
    bots[victim].wait(60)
    stopped_log = logs[victim]
    bots[victim], logs[victim], _ready = start_bot(scenario.env, str(scenario.work))
    restart_seconds = time.monotonic() - stopped
    while len(delivered(fake)) < total and time.monotonic() < deadline:
        time.sleep(0.1)
    finished = time.monotonic()
    time.sleep(5)  # anything sent twice would come now
    peaks += [rss_mb(b.pid)["peak_rss_mb"] for b in bots]
    return {"committed": committed, "finished": finished, "restart_seconds": restart_seconds, "peak": max(peaks),
            "stopped_log": stopped_log}


def report(args: argparse.Namespace, scenario: Scenario, logs: list, timings: dict) -> dict:
    fake, blocked, expected = scenario.fake, scenario.blocked, scenario.expected
    sent = delivered(fake)
    got = Counter((r.chat_id, r.text.splitlines()[0].removeprefix("📉 Cheaper now: ")) for r in sent)
    stamps = sorted(r.at for r in sent)
    busiest = max(sum(1 for t in stamps[i:i + 200] if t - stamp < 1.0) for i, stamp in enumerate(stamps))
    queued = [int(m.group(1)) for log in [*logs, timings["stopped_log"]] for line in log
              if (m := re.search(r"queued (\d+) alerts", line))]
    throttled = [r for r in fake.seen("sendPhoto") if r.response is None and r.chat_id not in blocked]
    seconds = timings["finished"] - timings["committed"]
    return {
        "replicas": args.replicas, "state": "SQLite" if args.replicas == 1 else "PostgreSQL",
        "bot_api_latency_ms": int(args.latency * 1000),
        "saved_products": sum(len(p) for p in scenario.saved.values()), "users": args.users,
        "price_drops": args.drops, "alerts_expected": sum(expected.values()), "alerts_delivered": len(sent),
        "sent_twice": sum(n - 1 for n in got.values() if n > 1), "missing": sum((expected - got).values()),
        "unexpected": sum((got - expected).values()), "to_blocked_users": sum(1 for r in sent if r.chat_id in blocked),
        "blocked_users": len(blocked), "429s_answered": len(throttled), "queued_by_log": sum(queued),
        "restart_seconds": round(timings["restart_seconds"], 1), "seconds_commit_to_last_alert": round(seconds, 1),
        "alerts_per_second_overall": round(len(sent) / seconds, 1),
        "most_in_any_second": busiest, "bot_peak_rss_mb": timings["peak"],
    }


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks alerts")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--per-user", type=int, default=5)
    parser.add_argument("--pool", type=int, default=2000, help="products the users save from")
    parser.add_argument("--drops", type=int, default=500)
    parser.add_argument("--replicas", type=int, choices=(1, 2), default=1)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds each Bot API answer takes")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fashion-alerts-"))
    embedder = KerasEmbedder(Weights("random", 0))
    index_dir = work / "index"
    shop_index(index_dir, args.pool, embedder)
    del embedder
    store, state_env, server = open_state("sqlite" if args.replicas == 1 else "postgres", work)
    saved = seed_saved(store, args.users, args.per_user, args.pool)
    rng = np.random.default_rng(2)
    dropped = {str(p) for p in rng.choice(args.pool, args.drops, replace=False)}
    blocked = {int(u) for u in rng.choice(np.arange(1, args.users + 1), args.users // 100, replace=False)}
    expected = Counter((user, f"Shirt {pid}") for user, pids in saved.items() for pid in pids
                       if pid in dropped and user not in blocked)
    fake = FakeTelegram().start()
    fake.blocked |= blocked
    fake.fail_every("sendPhoto", 40, Fault(429, retry_after=1))
    fake.latency = args.latency
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_URL": fake.url, "INDEX_DIR": str(index_dir),
           "INDEX_RELOAD_SECONDS": "1", "ALERTS_PER_SECOND": "25", "LOG_LEVEL": "INFO", **state_env}
    scenario = Scenario(work, index_dir, env, fake, saved, dropped, blocked, expected)
    bots, logs = [], []
    try:
        for _ in range(args.replicas):
            bot, log, _ready = start_bot(env, str(work))
            bots.append(bot)
            logs.append(log)
        timings = drop_prices_and_restart_the_sender(scenario, bots, logs)
    finally:
        for bot in bots:
            bot.send_signal(signal.SIGTERM)
            bot.wait(60)
        fake.stop()
        store.close()
        if server:
            server.stop()
    stem = "alerts" if args.replicas == 1 else "alerts-replicas"
    return {stem + (f"-latency-{int(args.latency * 1000)}ms" if args.latency else ""):
            report(args, scenario, logs, timings)}
