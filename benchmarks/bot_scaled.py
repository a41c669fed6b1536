"""One bot replica on Milvus (a Milvus Lite server) and PostgreSQL against today's default (index folder,
SQLite), in the same run: update to album for one user, 44,072 products, through the fake Bot API."""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.bot_latency import album_latency, flatlay_jpeg, start_bot
from benchmarks.common import p, synthetic_index
from indexing import KerasEmbedder, Weights
from indexing.sources.build import export_extractor
from testbed.fake_telegram import FakeTelegram
from testbed.milvus_server import MilvusLiteServer
from testbed.postgres import Postgres, binaries

PRODUCTS = 44_072


def one_user(env: dict[str, str], cwd: str, fake: FakeTelegram, photo: bytes, user: int) -> dict:
    bot, _, ready = start_bot(env, cwd)
    try:
        latencies = [album_latency(fake, user, photo, n) for n in range(25)][5:]  # the first 5 warm up
        status = Path(f"/proc/{bot.pid}/status").read_text()
        peak = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) // 1024
    finally:
        bot.terminate()
        bot.wait(30)
    return {"one_user_p50_ms": round(p(latencies), 1), "one_user_p95_ms": round(p(latencies, 95), 1),
            "bot_peak_rss_mb": peak, "start_to_ready_s": round(ready, 1)}


def bench_bot_scaled() -> dict:
    embedder = KerasEmbedder(Weights("random", 0))
    photo = flatlay_jpeg((1280, 960), seed=1)
    milvus, postgres = MilvusLiteServer().start(), Postgres(binaries()).start()
    fake = FakeTelegram().start()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = synthetic_index(Path(tmp) / "local", PRODUCTS, embedder)
            export_extractor(local.directory, embedder)
            scaled = synthetic_index(Path(tmp) / "scaled", PRODUCTS, embedder, store=milvus.spec)
            export_extractor(scaled.directory, embedder)
            del embedder
            base = {**os.environ, "TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_URL": fake.url,
                    "RATE_LIMIT_PER_MINUTE": "0", "LOG_LEVEL": "INFO"}  # start_bot waits for the INFO ready line
            setups = (("index folder + SQLite (default)", {"INDEX_DIR": str(local.directory)}),
                      ("Milvus Lite server + PostgreSQL", {"INDEX_DIR": str(scaled.directory),
                                                           "STATE_URL": postgres.url}))
            for user, (name, extra) in enumerate(setups, 1):
                env = {**base, **extra, "STATE_DIR": f"{tmp}/state-{user}"}
                rows.append({"setup": name, "products": PRODUCTS, **one_user(env, tmp, fake, photo, user)})
                print(rows[-1], flush=True)
    finally:
        fake.stop()
        milvus.stop()
        postgres.stop()
    return {"rows": rows, "photo": "JPEG 1280x960 flat-lay of 3 catalogue products",
            "note": "Milvus Lite is Milvus's embedded, development form; Milvus standalone was not run here"}


def run(argv: Sequence[str]) -> dict:
    argparse.ArgumentParser(prog="python -m benchmarks bot-scaled", description=__doc__).parse_args(argv)
    return {"bot-scaled": bench_bot_scaled()}
