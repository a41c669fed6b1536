"""The bot as deployed (`python -m bot`) against the fake Bot API on loopback, with a 44k-product index.

Measures the time from an update being available to its album request arriving, for one user (a
1280x960 flat-lay of three catalogue products; also a 960x1280 packshot, a catalogue model shot standing
in a room, and a 591x1280 screenshot of a shop's page) and for 20 at once (960x1280 flat-lays); the bot
process's memory; the time from start to ready. Also records one conversation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.common import DATASET, RESULTS, ROOT, p, rss_mb, synthetic_index
from indexing import KerasEmbedder, Weights
from indexing.extract.images import encode
from indexing.sources.build import export_extractor
from testbed.composites import flatlay, product_cutout
from testbed.fake_telegram import FakeTelegram


def flatlay_jpeg(size: tuple[int, int], seed: int) -> bytes:
    """Three catalogue products laid on a wooden floor, as a phone JPEG."""

    rng = np.random.default_rng(seed)
    products = []
    for pid in ("15970", "39386", "59263"):
        products.append((pid, product_cutout(DATASET / "images" / f"{pid}.jpg")))
    return encode(flatlay(products, rng, size, surface="wood").image)


def other_photos() -> dict[str, tuple[bytes, tuple[int, int]]]:
    """A packshot as a phone would send it (a catalogue photo enlarged to 960x1280), a model shot standing in
    a room, and a phone screenshot of a shop's product page."""
    from PIL import Image

    from testbed.composites import worn
    from testbed.screenshots import screenshot

    packshot = Image.open(DATASET / "images" / "15970.jpg").convert("RGB").resize((960, 1280), Image.BICUBIC)
    person = worn(("13886", product_cutout(DATASET / "images" / "13886.jpg")), np.random.default_rng(3)).image
    shown = [(pid, Image.open(DATASET / "images" / f"{pid}.jpg").convert("RGB"))
             for pid in ("39386", "15970", "59263", "13886")]
    shot = screenshot(shown, np.random.default_rng(3), "shop", "light").image
    return {"packshot": (encode(packshot), (960, 1280)), "person": (encode(person), (960, 1280)),
            "screenshot": (encode(shot), shot.size)}


def start_bot(env: dict[str, str], cwd: str) -> tuple[subprocess.Popen, list[str], float]:
    """Start `python -m bot`; return it, its log so far and the seconds until its ready line."""
    spawned = time.monotonic()
    bot = subprocess.Popen([sys.executable, "-m", "bot"], cwd=cwd, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    log: list[str] = []
    while not any(" ready: " in line for line in log):
        line = bot.stdout.readline()
        if not line and bot.poll() is not None:
            raise RuntimeError("".join(log))
        log.append(line)
    seconds = time.monotonic() - spawned
    threading.Thread(target=lambda: [log.append(x) for x in bot.stdout], daemon=True).start()
    return bot, log, seconds


def album_latency(fake: FakeTelegram, user: int, photo: bytes, pushed_before: int,
                  size: tuple[int, int] = (1280, 960)) -> float:
    message = fake.send_photo(user, photo, width=size[0], height=size[1])
    pushed = time.monotonic()
    album = fake.wait_for("sendMediaGroup", count=pushed_before + 1, chat_id=user, timeout=120)[-1]
    assert message
    return album.at - pushed


def simultaneous(fake: FakeTelegram, users: range, photo: bytes) -> list[float]:
    """Every user sends a photo at the same moment; the latency of each one's album."""
    results: dict[int, float] = {}

    def one(user: int) -> None:
        results[user] = album_latency(fake, user, photo, 0, size=(960, 1280))

    threads = [threading.Thread(target=one, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == len(users)
    return list(results.values())


def transcript(fake: FakeTelegram, user: int, photo: bytes) -> list[dict]:
    fake.message(user, text="/start", entities=[{"type": "bot_command", "offset": 0, "length": 6}])
    fake.wait_for("sendMessage", chat_id=user)
    fake.send_photo(user, photo, caption="women", width=1280, height=960)
    keyboard = fake.wait_for("sendPhoto", count=1, chat_id=user)[0].response
    rows = keyboard["reply_markup"]["inline_keyboard"]
    buttons = {b["text"].removeprefix("▸ "): b.get("callback_data") for row in rows for b in row}
    fake.press(user, keyboard, next(data for text, data in buttons.items() if text.startswith("2 ")))  # item 2
    fake.wait_for("sendPhoto", count=2, chat_id=user)
    fake.press(user, keyboard, buttons["🔎 #2"])  # more like #2
    fake.wait_for("sendMessage", count=2, chat_id=user)
    fake.press(user, keyboard, buttons["Show 5 more ▶"])
    fake.wait_for("sendPhoto", count=3, chat_id=user)
    fake.press(user, keyboard, buttons["👍 Helpful"])
    fake.wait_for("editMessageReplyMarkup")
    time.sleep(0.5)
    start = next(i for i, r in enumerate(fake.requests) if r.chat_id == user)
    for old in RESULTS.glob("outline-*.jpg"):  # this run's outline photos replace the last run's
        old.unlink()
    lines = []
    for r in fake.requests[start:]:
        if r.chat_id not in (user, None):  # the burst's last buttons messages, still arriving
            continue
        entry = {"method": r.method}
        for key in ("chat_id", "action", "file_id", "text", "caption", "callback_query_id"):
            if key in r.params:
                entry[key] = r.params[key]
        if r.method == "sendMediaGroup":
            entry["media"] = [{"caption": i["caption"], "upload_bytes": len(i["upload"]) if i["upload"] else 0,
                               "file_id": i["file_id"]} for i in r.album()]
        if r.method == "sendPhoto" and "photo" in r.files and r.chat_id == user:
            entry["photo_upload_bytes"] = len(r.files["photo"])
            (RESULTS / f"outline-{len(lines)}.jpg").write_bytes(r.files["photo"])
        if "reply_markup" in r.params:
            entry["buttons"] = [[b["text"] for b in row] for row in r.params["reply_markup"]["inline_keyboard"]]
        lines.append(entry)
    return lines


def bench_bot(dataset: Path, code: Path = ROOT) -> dict:
    """code: the checkout whose bot is measured; the conversation is recorded for this one's only."""
    embedder = KerasEmbedder(Weights("random", 0))
    photo = flatlay_jpeg((1280, 960), seed=1)
    burst_photo = flatlay_jpeg((960, 1280), seed=2)
    with tempfile.TemporaryDirectory() as tmp:
        index = synthetic_index(Path(tmp) / "idx", 44_072, embedder)
        export_extractor(index.directory, embedder)
        del embedder
        fake = FakeTelegram().start()
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_URL": fake.url,
               "INDEX_DIR": str(index.directory), "STATE_DIR": f"{tmp}/state", "RATE_LIMIT_PER_MINUTE": "0",
               "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO"), "PYTHONPATH": str(code)}
        # The first start also makes ONNX Runtime's optimised model for this machine (kept in
        # STATE_DIR); later starts load it. Both are timed; the measurements use the second.
        first, _, first_start = start_bot(env, tmp)
        first.terminate()
        first.wait(30)
        bot, log, ready_wall = start_bot(env, tmp)
        try:
            ready_line = next(line for line in log if " ready: " in line)
            one_user = [album_latency(fake, 1, photo, n) for n in range(25)][5:]  # first 5 warm up
            by_kind = {}
            for user, (kind, (data, size)) in enumerate(other_photos().items(), start=2):
                by_kind[kind] = [album_latency(fake, user, data, n, size) for n in range(20)][5:]
            burst = []
            for round_ in range(3):
                burst += simultaneous(fake, range(100 + 20 * round_, 120 + 20 * round_), burst_photo)
            memory = rss_mb(bot.pid)
            conversation = transcript(fake, 7, photo) if code == ROOT else None
        finally:
            bot.terminate()
            bot.wait(30)
            fake.stop()
    if conversation is not None:
        (RESULTS / "bot-transcript.json").write_text(json.dumps(conversation, indent=2, ensure_ascii=False))
    return {
        "code": "this checkout" if code == ROOT else str(code),
        "products": 44_072,
        "photo": "JPEG 1280x960 flat-lay of 3 catalogue products (burst: 960x1280)",
        "one_user_p50_ms": round(p(one_user), 1),
        "one_user_p95_ms": round(p(one_user, 95), 1),
        **{f"one_user_{kind}_p50_ms": round(p(times), 1) for kind, times in by_kind.items()},
        "twenty_users_p50_ms": round(p(burst), 1),
        "twenty_users_p95_ms": round(p(burst, 95), 1),
        "twenty_users_max_ms": round(float(np.max(burst)) * 1000, 1),
        "answered": f"{len(burst)}/{len(burst)}",
        "start_to_ready_s": round(ready_wall, 2),
        "first_start_to_ready_s": round(first_start, 2),
        "ready_line": ready_line.strip(),
        **memory,
        "exit_code_after_sigterm": bot.returncode,
    }


def run(argv: Sequence[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks bot")
    parser.add_argument("--bot-code", help="run the bot from this checkout (e.g. an older commit, for before/after "
                                           "figures); results go to bot-<name>.json")
    args = parser.parse_args(argv)
    code = Path(args.bot_code) if args.bot_code else ROOT
    return {"bot" if code == ROOT else f"bot-{code.resolve().name}": bench_bot(DATASET, code)}
