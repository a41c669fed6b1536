"""Example outline replies: the bot (`python -m bot`, fake Bot API on loopback) answers a flat-lay, a person and
a screenshot; each outlined photo it sends is saved as benchmarks/results/example-outline-<kind>.jpg, and what
it said (caption and buttons) to example-outlines.json.

    python benchmarks/outlines.py --index DIR   # an index with its ONNX export (benchmarks/items.py builds one)

Random weights: the albums say nothing of recommendation quality; the outlines and buttons are the point.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bot_latency import flatlay_jpeg, other_photos, start_bot  # noqa: E402
from benchmarks.run import RESULTS  # noqa: E402
from tests.fake_telegram import FakeTelegram  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", required=True)
    args = parser.parse_args()
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
    (RESULTS / "example-outlines.json").write_text(json.dumps(replies, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(replies, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
