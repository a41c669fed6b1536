"""Faults over time: a shop's bot under steady use while its catalogue syncs and it is killed, its state restarted.

    python -m benchmarks soak [--minutes 60] [--products 44072] [--sync-every 300] [--quiet-minutes 3]
    unshare -n sh -c 'ip link set lo up && FASHION_LOOPBACK_ONLY=1 python -m benchmarks soak --store milvus'

A feed of catalogue products (one photo each, served on loopback) makes the index, synced once so that every photo
is downloaded and cached as a real sync does (its vectors random: this measures faults, not search quality); one bot
(polling, PostgreSQL state, the random-weights extractor's ONNX export) serves it. First a quiet phase: 1-4 users at
a time send photos (packshots, flat-lays, screenshots, people), press "show 5 more" and ♡, and ask /saved. Then the
same traffic while every --sync-every seconds about 1% of the products change (cheaper, out of stock, back in stock)
and `fashion-index sync` runs, with a `fashion-index add` of a new product started alongside every other sync; a
quarter of the way in the bot is killed with -9 and started again, half way PostgreSQL is restarted. One user turns
alerts off along the way. With --store milvus the catalogue is in a Milvus 2.3 standalone server (the `milvus`
package's, which listens on every interface: run it in a loopback-only namespace, as above), restarted three
quarters of the way.

Checked at the end: every photo answered (an album, "busy" or "nothing similar"), every change of every sync and
add in the index, every alert sent once and none to the user after "off"; the bot's memory and the p95 of photo to
album outside the fault windows against the quiet phase's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from benchmarks.bot_latency import flatlay_jpeg, other_photos, start_bot
from benchmarks.common import DATASET, ROOT, p, rss_mb
from benchmarks.soak_traffic import Traffic
from indexing import Index, KerasEmbedder, Weights
from indexing.extract.embedder import DIM, l2_normalize, probe_images
from indexing.sources.build import export_extractor
from indexing.sources.download import FEED_IMAGES
from indexing.sources.feeds import read_feed
from indexing.store.files import write_index
from indexing.store.milvus import parse_store
from testbed.fake_telegram import FakeTelegram
from testbed.feed_server import FeedServer
from testbed.milvus_standalone import MilvusStandalone
from testbed.postgres import Postgres, binaries, free_port
from testbed.shop import Product, Shop

OFF_USER = 999  # saves products, then turns alerts off
AGAIN_AFTER = 30.0  # seconds before a writer that failed is run again
FAULT_WINDOW = 60.0  # seconds after a fault whose photos are left out of the latency comparison


def writer(*argv: str) -> list[str]:
    """A fashion-index command at the priority deploy/fashion-sync.service gives it (Nice=10): the bot comes first."""
    return ["nice", "-n", "10", sys.executable, "-m", "indexing", *argv]


class Catalogue:
    """The shop's feed and the index; each sync changes about 1% of the products, some adds run alongside."""

    def __init__(self, server: FeedServer, count: int, index: Path, store: str | None = None):
        self.shop, self.index, self.store = Shop(server), index, store
        files = sorted((DATASET / "images").glob("*.jpg"), key=lambda f: int(f.stem))
        self.spare = files[count:] or files[:100]  # the whole catalogue in the feed: adds mirror its photos
        self.photos: dict[str, bytes] = {}
        for path in files[:count]:  # the catalogue's own JPEGs, served as they are
            name = f"{path.stem}.jpg"
            server.images[name] = self.photos[path.stem] = path.read_bytes()
            self.shop.products[path.stem] = Product(path.stem, [name], {
                "title": f"Product {path.stem}", "link": f"https://shop.example/p/{path.stem}",
                "price": "1000.00 INR", "availability": "in stock", "brand": "Acme"})
        self.added: list[str] = []
        self.failures: list[str] = []
        self.windows: list[tuple[float, float]] = []  # (start, end) of each sync

    def build(self) -> None:
        """The index as a sync leaves it, with random vectors in place of the embedding of 44k photos (40 minutes
        here; the soak is about faults, not search quality), then a real sync that downloads every photo."""
        embedder = KerasEmbedder(Weights("random", 0))
        feed = self.shop.feed()
        products = read_feed(feed)
        rows = [{"id": product.id, "image": f"{FEED_IMAGES}/{hashlib.sha1(self.photos[product.id]).hexdigest()}.jpg",
                 "photo": hashlib.sha1(self.photos[product.id]).hexdigest(), "meta": product.meta}
                for product in products]
        vectors = l2_normalize(np.random.default_rng(0).standard_normal((len(rows), DIM), dtype=np.float32))
        write_index(self.index, vectors=vectors, products=rows, fingerprint=embedder.fingerprint,
                    probe=embedder.embed(probe_images()), store=parse_store(self.store) if self.store else None,
                    extra={"source": {"feed": feed, "columns": {}}, "columns": sorted({c for r in rows
                                                                                      for c in r["meta"]})})
        export_extractor(self.index, embedder)
        self.sync(with_add=False)

    def change(self, rng: random.Random, saved: list[str]) -> None:
        """About 1% of the products; half of them among those users saved, so that alerts flow."""
        count = max(2, len(self.shop.products) // 100)
        saved = [pid for pid in saved if pid in self.shop.products]  # not those added by hand
        chosen = rng.sample(saved, min(len(saved), count // 2)) if saved else []
        chosen += rng.sample(sorted(set(self.shop.products) - set(chosen)), count - len(chosen))
        for pid in chosen:
            attributes = self.shop.products[pid].attributes
            roll = rng.random()
            if roll < 0.5:
                attributes["sale_price"] = f"{rng.randint(100, 900)}.00 INR"
            elif attributes.get("availability") == "out of stock":
                attributes["availability"] = "in stock"
            else:
                attributes["availability"] = "out of stock"

    def new_product(self) -> Path:
        """A photo for `fashion-index add`: a catalogue photo mirrored, under an id the feed does not have."""
        source = self.spare[len(self.added) % len(self.spare)]
        photo = self.index.parent / "added" / f"9{len(self.added):05d}.jpg"
        photo.parent.mkdir(exist_ok=True)
        with Image.open(source) as image:
            ImageOps.mirror(image.convert("RGB")).save(photo, quality=90)
        return photo

    def sync(self, with_add: bool) -> None:
        """A sync, and an `add` alongside if with_add. A writer that fails (its Milvus restarting) says so in one
        line and exits 1; it is run again after AGAIN_AFTER seconds, as cron's next run or the operator would."""
        pending = {"sync": writer("sync", "--index", str(self.index), "--feed", self.shop.feed(), "--quiet")}
        if with_add:
            photo = self.new_product()
            self.added.append(photo.stem)
            pending["add"] = writer("add", "--index", str(self.index), "--images", str(photo), "--quiet")
        started = time.time()
        for _attempt in range(8):
            runs = {name: subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                           text=True) for name, command in pending.items()}
            for name, run in runs.items():
                err = run.communicate(timeout=3600)[1]
                if run.returncode:
                    self.failures.append(f"{name}: {err.strip()[-300:]}")
                else:
                    del pending[name]
            if not pending:
                self.windows.append((started, time.time()))
                return
            time.sleep(AGAIN_AFTER)
        self.failures.append(f"given up after 8 tries: {sorted(pending)}")

    def missing(self) -> list[str]:
        """Every change of every sync and add that the index does not hold."""
        index = Index.load(self.index)
        wrong = [pid for pid in self.added if pid not in index]
        records = index.products_of(sorted(self.shop.products))
        for pid, product in self.shop.products.items():
            meta = records.get(pid, {}).get("meta", {})
            for key in ("sale_price", "availability"):
                if product.attributes.get(key, "") != meta.get(key, ""):
                    wrong.append(f"{pid}.{key}")
        return wrong


def saved_products(url: str) -> list[str]:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as db:
            return sorted({row[0] for row in db.execute("SELECT product FROM saved")})
    except psycopg.Error:  # restarting: this sync changes other products
        return []


def errors(log: list[str]) -> list[str]:
    """The last line of each traceback in the bot's log (since its last start)."""
    found, inside = [], False
    for line in log:
        if line.startswith("Traceback"):
            inside = True
        elif inside and not line.startswith((" ", "\t")) and line.strip():
            found.append(line.strip()[:200])
            inside = False
    return found


def alerts_check(fake: FakeTelegram, url: str, off_at: float | None) -> dict[str, Any]:
    """The alerts Telegram accepted against the queue's rows: as many as were marked sent (none twice: a product
    that got cheaper twice has two rows), none still waiting, none to OFF_USER after "off"."""
    import psycopg

    sent = [r for r in fake.seen("sendPhoto") if r.response and "saved it earlier" in r.text]
    with psycopg.connect(url, connect_timeout=10) as db:
        marked, waiting = db.execute("SELECT count(*) FILTER (WHERE sent IS NOT NULL), "
                                     "count(*) FILTER (WHERE sent IS NULL) FROM alerts").fetchone()
    after_off = [r for r in sent if r.chat_id == OFF_USER and off_at is not None and r.at > off_at]
    return {"alerts_delivered": len(sent), "alerts_marked_sent": marked, "alerts_waiting": waiting,
            "alerts_delivered_twice": len(sent) - marked, "alerts_after_off": len(after_off)}


def latency_summary(sent: list[dict[str, Any]], quiet_until: float, faults: list[tuple[float, float]],
                    syncs: list[tuple[float, float]]) -> dict[str, Any]:
    """faults: (start, end) of each; photos from its start to FAULT_WINDOW after its end are left out. syncs:
    (start, end) of each sync, to tell the photos answered while one ran from the others."""
    quiet = [r["latency"] for r in sent if r["latency"] is not None and r["at"] < quiet_until]
    answered = [r for r in sent if r["latency"] is not None and r["at"] >= quiet_until
                and not any(start <= r["at"] < end + FAULT_WINDOW for start, end in faults)]
    during = [r["latency"] for r in answered if any(start <= r["at"] < end for start, end in syncs)]
    between = [r["latency"] for r in answered if not any(start <= r["at"] < end for start, end in syncs)]
    steady = [r["latency"] for r in answered]
    return {"steady_p95_during_syncs_s": round(p(during, 95) / 1000, 3) if during else None,
            "steady_p95_between_syncs_s": round(p(between, 95) / 1000, 3) if between else None,
            "share_of_time_syncing": round(sum(end - start for start, end in syncs if start >= quiet_until)
                                           / max(1.0, time.time() - quiet_until), 3),
            "photos": len(sent), "albums": sum(r["latency"] is not None for r in sent),
            "told": Counter(r.get("said", "")[:40] for r in sent if "said" in r),
            "dropped": sum(bool(r.get("dropped")) for r in sent),
            "quiet_p95_s": round(p(quiet, 95) / 1000, 3) if quiet else None,
            "steady_p95_s": round(p(steady, 95) / 1000, 3) if steady else None,
            "steady_over_quiet": round(p(steady, 95) / p(quiet, 95), 3) if quiet and steady else None}


class Faults:
    """The soak's timeline after the quiet phase: syncs (in a thread, so the faults keep their time), the kill,
    the PostgreSQL restart, the Milvus restart (if the catalogue is in Milvus), and the user who turns alerts off."""

    def __init__(self, args: argparse.Namespace, env: dict[str, str], work: Path, bot: subprocess.Popen,
                 milvus: MilvusStandalone | None = None):
        self.args, self.env, self.work, self.bot, self.milvus = args, env, work, bot, milvus
        self.log: list[str] = []
        self.times: list[tuple[float, float]] = []
        self.memory: dict[str, int] = {}
        self.off_at: float | None = None
        self.syncs = 0

    def run(self, catalogue: Catalogue, fake: FakeTelegram, postgres: Postgres, started: float) -> None:
        rng, quiet_until = random.Random(0), time.time()
        end = quiet_until + 60 * self.args.minutes
        plan = {"kill": quiet_until + 0.25 * (end - quiet_until), "off": quiet_until + 0.4 * (end - quiet_until),
                "postgres": quiet_until + 0.5 * (end - quiet_until),
                **({"milvus": quiet_until + 0.75 * (end - quiet_until)} if self.milvus else {})}
        restarts = {"postgres": postgres.restart, **({"milvus": self.milvus.restart} if self.milvus else {})}
        restarted_at, next_sync, syncing = started, time.time(), None
        while time.time() < end:
            now = time.time()
            if now >= next_sync and (syncing is None or not syncing.is_alive()):
                catalogue.change(rng, saved_products(postgres.url))
                syncing = threading.Thread(target=catalogue.sync, args=(self.syncs % 2 == 1,), daemon=True)
                syncing.start()
                self.syncs, next_sync = self.syncs + 1, max(next_sync + self.args.sync_every, now)
            if plan.get("kill", end) <= now:
                plan.pop("kill")
                self.bot.kill()
                self.bot.wait()
                self.bot, self.log, _ = start_bot(self.env, str(self.work))
                restarted_at = time.time()
                self.times.append((now, restarted_at))
            for server, restart in restarts.items():
                if plan.get(server, end) <= now:
                    plan.pop(server)
                    restart()
                    self.times.append((now, time.time()))
            if plan.get("off", end) <= now:
                plan.pop("off")
                fake.message(OFF_USER, text="/alerts off", entities=[{"type": "bot_command", "offset": 0, "length": 7}])
                self.off_at = time.monotonic() + 5  # an alert claimed just before may still be on its way
            if not self.memory and time.time() - restarted_at > 300:
                self.memory = {"after_5_min_mb": rss_mb(self.bot.pid)["rss_mb"]}
            time.sleep(1)
        if syncing is not None:
            syncing.join()


def soak(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    milvus = MilvusStandalone().start() if args.store == "milvus" else None
    # A shop whose photos went up a month ago, served as a web server serves static files (Last-Modified, no
    # max-age): a sync asks about each at most daily, as it would at a real shop.
    server = FeedServer(uploaded=time.time() - 30 * 86400).start()
    postgres, fake = Postgres(binaries()).start(), FakeTelegram().start()
    bot, faults = None, None
    try:
        catalogue = Catalogue(server, args.products, work / "idx", milvus.spec if milvus else None)
        catalogue.build()
        assert not catalogue.failures, catalogue.failures
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_URL": fake.url,
               "PYTHONPATH": str(ROOT), "INDEX_DIR": str(work / "idx"), "STATE_DIR": str(work / "state"),
               "STATE_URL": postgres.url, "RATE_LIMIT_PER_MINUTE": "0", "HEALTH_PORT": str(free_port())}
        bot, log, _ = start_bot(env, str(work))
        photos = [(flatlay_jpeg((1280, 960), seed), (1280, 960)) for seed in range(3)] + list(other_photos().values())
        traffic = Traffic(fake, photos)
        traffic.save_all(OFF_USER)
        started = time.time()
        traffic.run(range(1000, 1000 + args.users_pool))
        time.sleep(60 * args.quiet_minutes)
        quiet_until, faults = time.time(), Faults(args, env, work, bot, milvus)
        faults.log = log
        faults.run(catalogue, fake, postgres, started)
        traffic.stop()
        time.sleep(30)  # the last alerts go out
        faults.memory["end_mb"] = rss_mb(faults.bot.pid)["rss_mb"]
        return {"store": args.store, "minutes": args.minutes, "quiet_minutes": args.quiet_minutes,
                "products": args.products,
                "faults_s": [[round(t - started) for t in window] for window in faults.times],
                "syncs": faults.syncs, "adds": len(catalogue.added), "writer_failures": catalogue.failures,
                "missing_changes": catalogue.missing(), "memory": faults.memory,
                **latency_summary(traffic.sent, quiet_until, faults.times, catalogue.windows),
                "dropped_at_s": [round(r["at"] - started) for r in traffic.sent if r.get("dropped")],
                **alerts_check(fake, postgres.url, faults.off_at),
                "seconds": round(time.time() - started), "bot_errors": errors(faults.log)}
    finally:
        for process in (bot, faults.bot if faults else None):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(60)
        fake.stop()
        server.stop()
        postgres.stop()
        if milvus:
            milvus.stop()


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks soak")
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--quiet-minutes", type=float, default=3)
    parser.add_argument("--products", type=int, default=44_072)
    parser.add_argument("--sync-every", type=float, default=300)
    parser.add_argument("--users-pool", type=int, default=200)
    parser.add_argument("--store", choices=("folder", "milvus"), default="folder")
    parser.add_argument("--out", help="the results' name (benchmarks/results/OUT.json; default soak, soak-milvus)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = soak(args, Path(tmp))
    print(json.dumps(result, indent=2, default=str))
    return {args.out or ("soak" if args.store == "folder" else "soak-milvus"): result}
