"""`python -m bot` as an operator runs it: configuration errors, the ready line, SIGTERM, no token in logs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from testbed.drawing import draw_product
from testbed.fake_telegram import FakeTelegram, Fault
from testbed.postgres import free_port
from tests.conftest import ROOT, with_models
from tests.test_bot import jpeg


def bot_env(**values: str) -> dict[str, str]:
    """The environment of a bot process: this one's, without its settings, and a health port of its own (bots of
    several test workers run at once)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "INDEX_DIR", "STATE_DIR"))}
    env["HEALTH_PORT"] = str(free_port())
    env.update(values)
    return env


@contextlib.contextmanager
def bot_process(env: dict[str, str], cwd) -> Iterator[subprocess.Popen]:
    """`python -m bot` with its output piped; killed on the way out if the test left it running."""
    process = subprocess.Popen([sys.executable, "-m", "bot"], cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()


def run(env: dict[str, str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_missing_token_points_to_env_example(tmp_path):
    done = run(bot_env(PYTHONPATH=str(ROOT)), tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "fashion-bot: TELEGRAM_BOT_TOKEN is not set: copy .env.example to .env and fill it in"]


def test_invalid_setting_is_one_line(tmp_path):
    done = run(bot_env(PYTHONPATH=str(ROOT), TELEGRAM_BOT_TOKEN="1:x", TOP_K="50"), tmp_path)
    assert done.returncode == 2 and done.stderr.strip() == "fashion-bot: TOP_K=50 is out of range (2-10)"


def test_missing_index_is_refused_with_a_reason(tmp_path):
    fake = FakeTelegram().start()
    try:
        done = run(bot_env(PYTHONPATH=str(ROOT), TELEGRAM_BOT_TOKEN=fake.token, TELEGRAM_API_URL=fake.url,
                           INDEX_DIR=str(tmp_path / "none")), tmp_path)
    finally:
        fake.stop()
    assert done.returncode == 2  # the operator's to fix: systemd does not restart it (RestartPreventExitStatus)
    assert f"fashion-bot: INDEX_DIR: no index at {tmp_path / 'none'}" in done.stderr
    assert "Traceback" not in done.stderr and not fake.requests  # said before Telegram was asked anything


def test_missing_people_models_are_refused_with_the_command_that_fetches_them(tmp_path, exported_index):
    fake = FakeTelegram().start()
    try:
        done = run(bot_env(PYTHONPATH=str(ROOT), TELEGRAM_BOT_TOKEN=fake.token, TELEGRAM_API_URL=fake.url,
                           INDEX_DIR=str(exported_index), STATE_DIR=str(tmp_path / "state"),
                           PEOPLE_MODELS=str(tmp_path / "no-models")), tmp_path)
    finally:
        fake.stop()
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "fashion-bot: PEOPLE_MODELS: " in done.stderr and "run `fashion-index fetch-models`" in done.stderr


def test_env_file_start_ready_answer_and_sigterm(tmp_path, exported_index, model_cache):
    fake = FakeTelegram().start()
    (tmp_path / ".env").write_text(
        f"TELEGRAM_BOT_TOKEN={fake.token}\nTELEGRAM_API_URL={fake.url}\nINDEX_DIR={exported_index}\n"
        f"STATE_DIR={with_models(tmp_path / 'state', model_cache)}\nLOG_LEVEL=DEBUG\n")
    try:
        with bot_process(bot_env(PYTHONPATH=str(ROOT)), tmp_path) as process:
            lines = []
            deadline = time.monotonic() + 120
            while not any(" ready: " in line for line in lines):
                assert time.monotonic() < deadline and process.poll() is None, "".join(lines)
                lines.append(process.stdout.readline())
            ready = next(line for line in lines if " ready: " in line)
            assert "24 products" in ready and "onnxruntime" in ready and "started in" in ready
            fake.send_photo(99, jpeg(draw_product("Blue", "Jeans", size=(300, 400))))
            assert len(fake.wait_for("sendMediaGroup", chat_id=99)[0].album()) == 5
            assert fake.wait_for("sendPhoto", chat_id=99)[0].params.get("reply_markup")  # the buttons
            rest = stop(process)
    finally:
        fake.stop()
    log = "".join(lines) + rest
    assert process.returncode == 0, log
    assert fake.token not in log and fake.token.split(":")[1] not in log
    assert "Traceback" not in log


def wait_ready(process: subprocess.Popen) -> list[str]:
    """The bot's output up to its ready line."""
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while not any(" ready: " in line for line in lines):
        assert time.monotonic() < deadline and process.poll() is None, "".join(lines)
        lines.append(process.stdout.readline())
    return lines


def test_a_photo_being_answered_when_the_bot_is_killed_is_answered_after_its_restart(tmp_path, exported_index,
                                                                                      model_cache):
    fake = FakeTelegram().start()
    env = bot_env(PYTHONPATH=str(ROOT), TELEGRAM_BOT_TOKEN=fake.token, TELEGRAM_API_URL=fake.url,
                  INDEX_DIR=str(exported_index), STATE_DIR=str(with_models(tmp_path / "state", model_cache)))
    try:
        fake.fail("sendMediaGroup", Fault(500, stall=300))  # the album hangs: the bot is killed while sending it
        with bot_process(env, tmp_path) as process:
            wait_ready(process)
            update_id = fake.send_photo(99, jpeg(draw_product("Blue", "Jeans", size=(300, 400))))
            fake.wait_for("sendMediaGroup", chat_id=99)
            assert update_id not in fake.unconfirmed()  # Telegram would never send it again
            process.kill()
            process.wait()
        with bot_process(env, tmp_path) as process:
            lines = wait_ready(process)
            albums = fake.wait_for("sendMediaGroup", count=2, chat_id=99)
            assert len(albums[1].album()) == 5 and fake.wait_for("sendPhoto", chat_id=99)
            log = "".join(lines) + stop(process)
    finally:
        fake.stop()
    assert "answering 1 update(s) left unanswered by a process that stopped" in log and process.returncode == 0
    assert len(fake.seen("sendMediaGroup", chat_id=99)) == 2  # answered once more, not again and again


@pytest.mark.parametrize("value", ["1,2, 3", "1;2;3"])
def test_id_lists_parse(value):
    from bot.config import load_settings

    settings = load_settings({"TELEGRAM_BOT_TOKEN": "1:x", "ALLOWED_USER_IDS": value}, env_file=None)
    assert settings.allowed_user_ids == {1, 2, 3} and "1:x" not in repr(settings)


def fetch(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as answer:
        return answer.read().decode()


def stop(process: subprocess.Popen) -> str:
    """SIGTERM, as systemd or docker stop sends it; the rest of the bot's output."""
    process.send_signal(signal.SIGTERM)
    return process.communicate(timeout=60)[0]


def post(port: int, secret: str, body: dict) -> int:
    """An update POSTed to the bot's webhook as Telegram sends it; the HTTP status."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/telegram", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_webhook_mode_serves_updates_health_and_metrics(tmp_path, exported_index, model_cache):
    import json
    import urllib.request

    fake = FakeTelegram().start()
    port, health = free_port(), free_port()
    env = bot_env(PYTHONPATH=str(ROOT), TELEGRAM_BOT_TOKEN=fake.token, TELEGRAM_API_URL=fake.url,
                  INDEX_DIR=str(exported_index), STATE_DIR=str(with_models(tmp_path / "state", model_cache)),
                  MODE="webhook",
                  WEBHOOK_URL="https://bot.example.com/telegram", WEBHOOK_LISTEN="127.0.0.1",
                  WEBHOOK_PORT=str(port), HEALTH_PORT=str(health), WEBHOOK_SECRET="s3cret-value")
    try:
        with bot_process(env, tmp_path) as process:
            hook = fake.wait_for("setWebhook", timeout=120)[0]
            assert hook.params["url"] == "https://bot.example.com/telegram"
            assert hook.params["secret_token"] == "s3cret-value"
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=5) as answer:
                        status = json.loads(answer.read())
                    break
                except OSError:
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
            assert status["status"] == "ok" and status["products"] == 24

            update = {"update_id": 1, "message": {
                "message_id": 5, "date": int(time.time()), "text": "hello",
                "chat": {"id": 31, "type": "private"}, "from": {"id": 31, "is_bot": False, "first_name": "W"}}}

            assert post(port, "forged", update) == 403
            assert post(port, "s3cret-value", update) == 200
            assert "Send me a photo" in fake.wait_for("sendMessage", chat_id=31)[0].params["text"]

            photo = fake.send_photo(32, jpeg(draw_product("Blue", "Jeans", size=(480, 600), seed=1)), width=480,
                                    height=600)  # queued for polling; a webhook gets it posted
            assert post(port, "s3cret-value", {"update_id": 2, "message": photo}) == 200
            fake.wait_for("sendPhoto", chat_id=32, timeout=60)
            deadline = time.monotonic() + 10
            while "fashion_photos_served_total 1.0" not in (metrics := fetch(f"http://127.0.0.1:{health}/metrics")):
                assert time.monotonic() < deadline, metrics
                time.sleep(0.1)
            assert "fashion_photo_latency_seconds_count 1.0" in metrics and "fashion_products 24.0" in metrics
            assert "fashion_queue_depth 0.0" in metrics and "fashion_index_generation 1.0" in metrics
            log = stop(process)
    finally:
        fake.stop()
    assert process.returncode == 0, log
    assert fake.token not in log
