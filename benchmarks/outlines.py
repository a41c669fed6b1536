"""Example outline replies: the bot (`python -m bot`, fake Bot API on loopback) answers a flat-lay, a person and
a screenshot; each outlined photo it sends is saved as benchmarks/results/example-outline-<kind>.jpg, and what
it said (caption and buttons) to example-outlines.json.

    python -m benchmarks outlines --index DIR   # an index with its ONNX export (the items bench builds one)

Random weights: the albums say nothing of recommendation quality; the outlines and buttons are the point.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.bot_latency import flatlay_jpeg, other_photos, start_bot
from benchmarks.common import RESULTS, ROOT
from testbed.fake_telegram import FakeTelegram


def run(argv: Sequence[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks outlines", description=__doc__.split("\n")[0])
    parser.add_argument("--index", required=True)
    args = parser.parse_args(argv)
    photos = {"flatlay": (flatlay_jpeg((1280, 960), seed=1), (1280, 960)), **other_photos()}
    replies = {}
    with tempfile.TemporaryDirectory() as tmp:
        fake = FakeTelegram().start()
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_URL": fake.url,
               "INDEX_DIR": str(Path(args.index).resolve()), "STATE_DIR": f"{tmp}/state",
               "RATE_LIMIT_PER_MINUTE": "0", "PYTHONPATH": str(ROOT)}
        bot, _, _ = start_bot(env, tmp)
        try:
            for user, (kind, (data, size)) in enumerate(photos.items(), start=1):
                fake.send_photo(user, data, width=size[0], height=size[1])
                reply = fake.wait_for("sendPhoto", chat_id=user, timeout=120)[0]
                (RESULTS / f"example-outline-{kind}.jpg").write_bytes(reply.files["photo"])
                markup = reply.params["reply_markup"]["inline_keyboard"]
                replies[kind] = {"caption": reply.params["caption"],
                                 "buttons": [[b["text"] for b in row] for row in markup]}
        finally:
            bot.terminate()
            bot.wait(30)
            fake.stop()
    return {"example-outlines": replies}

