"""Two bot processes in webhook mode, one bot: one catalogue in a Milvus Lite server, one PostgreSQL state.

A photo answered by replica A gets its "Show 5 more" answered by replica B, which reuses A's uploads; A is
killed with -9 in between and nothing that B needs is lost. The requests the fake Bot API received are written
to benchmarks/results/replicas-transcript.json when FASHION_RECORD_TRANSCRIPT=1 (a plain run leaves the checkout
as it was).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from indexing import build_index
from indexing.sources.build import export_extractor
from indexing.sources.options import BuildOptions
from testbed.fake_telegram import FakeTelegram
from testbed.postgres import free_port
from tests.conftest import ROOT, with_models
from tests.test_bot import user_photo
from tests.test_bot_process import bot_env, fetch

pytestmark = pytest.mark.slow
SECRET = "replica-secret"


class Replica:
    def __init__(self, name: str, fake: FakeTelegram, index_dir, state_url: str, tmp_path, models):
        self.name, self.port, self.health = name, free_port(), free_port()
        env = bot_env(PYTHONPATH=str(ROOT), TELEGRAM_BOT_TOKEN=fake.token, TELEGRAM_API_URL=fake.url,
                      INDEX_DIR=str(index_dir), STATE_DIR=str(with_models(tmp_path / f"state-{name}", models)),
                      STATE_URL=state_url,
                      MODE="webhook", WEBHOOK_URL="https://bot.example.com/telegram", WEBHOOK_LISTEN="127.0.0.1",
                      WEBHOOK_PORT=str(self.port), HEALTH_PORT=str(self.health), WEBHOOK_SECRET=SECRET,
                      RATE_LIMIT_PER_MINUTE="0")
        self.process = subprocess.Popen([sys.executable, "-m", "bot"], cwd=tmp_path, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fetch(f"http://127.0.0.1:{self.health}/healthz")
                return
            except OSError:
                assert self.process.poll() is None, self.process.communicate()[0]
                assert time.monotonic() < deadline
                time.sleep(0.2)

    def post(self, update: dict) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/telegram", data=json.dumps(update).encode(), method="POST",
            headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate(timeout=30)


def test_replica_b_answers_replica_a_s_buttons_with_its_uploads_after_a_is_killed(
        milvus, postgres_url, catalogue, embedder, tmp_path, model_cache):
    images, styles = catalogue
    index_dir = tmp_path / "idx"
    build_index([images], index_dir, metadata=styles, embedder=embedder,
                options=BuildOptions(export=False, progress=False, store=milvus.spec))
    export_extractor(index_dir, embedder)
    fake = FakeTelegram().start()
    a = Replica("a", fake, index_dir, postgres_url, tmp_path, model_cache)
    b = Replica("b", fake, index_dir, postgres_url, tmp_path, model_cache)
    try:
        a.wait_ready()
        b.wait_ready()
        user = 515
        photo = fake.send_photo(user, user_photo(), width=480, height=600)  # posted to A by the "proxy"
        assert a.post({"update_id": 1, "message": photo}) == 200
        album = fake.wait_for("sendMediaGroup", chat_id=user, timeout=60)[0]
        buttons = fake.wait_for("sendPhoto", chat_id=user, timeout=60)[0]
        assert len(album.files) == 5  # A uploaded the five catalogue photos
        a.process.send_signal(signal.SIGKILL)
        a.process.wait(30)
        killed_at = len(fake.requests)

        rows = buttons.response["reply_markup"]["inline_keyboard"]
        more = next(b_["callback_data"] for row in rows for b_ in row if b_["text"].startswith("Show"))
        callback = {"update_id": 2, "callback_query": {
            "id": "cb-1", "chat_instance": "ci", "data": more, "message": buttons.response,
            "from": {"id": user, "is_bot": False, "first_name": "Shopper"}}}
        assert b.post(callback) == 200
        page2 = fake.wait_for("sendMediaGroup", count=2, chat_id=user, timeout=60)[1]
        assert len(page2.album()) == 5
        first_ids = {item["caption"].rsplit("id ", 1)[1] for item in album.album()}
        assert not first_ids & {item["caption"].rsplit("id ", 1)[1] for item in page2.album()}

        again = fake.send_photo(user + 1, user_photo(), width=480, height=600)
        assert b.post({"update_id": 3, "message": again}) == 200
        reused = fake.wait_for("sendMediaGroup", chat_id=user + 1, timeout=60)[0]
        assert not reused.files  # B sent A's uploads by their file_ids, from the shared state
        metrics = fetch(f"http://127.0.0.1:{b.health}/metrics")
        assert "fashion_products 24.0" in metrics
    finally:
        a.stop()
        b.stop()
        fake.stop()
    transcript = [{"replica": "A" if n < killed_at else "B (A killed with -9)", "method": r.method,
                   "chat_id": r.chat_id, "photos_uploaded": len(r.files)}
                  for n, r in enumerate(fake.requests) if r.method not in ("getMe", "setWebhook", "deleteWebhook")]
    if os.environ.get("FASHION_RECORD_TRANSCRIPT") == "1":
        (ROOT / "benchmarks" / "results" / "replicas-transcript.json").write_text(json.dumps(transcript, indent=1))
