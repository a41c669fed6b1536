"""`make run` on a machine with no index: the time until the first user's photo gets its album.

The build of the full catalogue runs in the background and publishes its products as it goes; the bot starts on
the first ones. Random weights stand in for the cached ImageNet weights (the same model, the same work).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.bot_latency import flatlay_jpeg
from benchmarks.common import DATASET, ROOT
from testbed.fake_telegram import FakeTelegram

ABOUT = {"type": "bot_command", "offset": 0, "length": 6}


def bench_first_run(timeout: float = 420) -> dict:
    fake = FakeTelegram().start()
    photo = flatlay_jpeg((1280, 960), seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_URL": fake.url,
               "STATE_DIR": f"{tmp}/state", "RATE_LIMIT_PER_MINUTE": "0"}
        index = f"{tmp}/index"
        started = time.monotonic()
        make = subprocess.Popen(["make", "run", f"INDEX={index}", "WEIGHTS=random:0", f"DATASET={DATASET}"],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            fake.send_photo(1, photo, width=1280, height=960)  # waits in the update queue, as on Telegram
            fake.wait_for("deleteWebhook", timeout=timeout)  # the bot is up and about to poll
            polling = time.monotonic() - started
            fake.wait_for("sendMediaGroup", chat_id=1, timeout=timeout)
            album = time.monotonic() - started
            fake.message(1, text="/about", entities=[ABOUT])
            about_early = fake.wait_for("sendMessage", chat_id=1, timeout=60)[-1].text
            time.sleep(60)  # the build goes on; the bot follows it
            fake.message(1, text="/about", entities=[ABOUT])
            about_later = fake.wait_for("sendMessage", count=2, chat_id=1, timeout=60)[-1].text
        finally:
            os.killpg(make.pid, signal.SIGTERM)
            output = make.communicate(timeout=60)[0]
            fake.stop()
        resumable = Path(index, ".partial").is_dir()
    return {
        "what": "make run with no index yet (WEIGHTS=random:0, the full 44k catalogue)",
        "make_run_to_bot_polling_s": round(polling, 1),
        "make_run_to_first_album_s": round(album, 1),
        "about_at_first_album": about_early.splitlines()[0],
        "about_a_minute_later": about_later.splitlines()[0],
        "build_left_resumable_after_stop": resumable,
        "make_output_head": output.splitlines()[:3],
    }


def run(argv: Sequence[str]) -> dict:
    argparse.ArgumentParser(prog="python -m benchmarks first-run", description=__doc__).parse_args(argv)
    return {"first-run": bench_first_run()}
