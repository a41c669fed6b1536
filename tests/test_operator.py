"""`fashion-bot` as an operator meets it: --help, --version, --check, one-line failures with their exit codes, the
token nowhere, health in polling mode (ok, degraded, ok again), and index files that another user can read."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request

from testbed.drawing import draw_product
from testbed.fake_telegram import FakeTelegram
from testbed.postgres import free_port
from tests.conftest import ROOT, with_models
from tests.test_bot import jpeg
from tests.test_bot_process import bot_env, bot_process, stop

BOT = [sys.executable, "-m", "bot"]


def fashion_bot(*arguments: str, cwd, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*BOT, *arguments], cwd=cwd, env=bot_env(PYTHONPATH=str(ROOT), **env),
                          capture_output=True, text=True, timeout=120)


def health(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for_health(port: int, wanted: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            body = health(port)[1]
            if body.get("status") == wanted:
                return body
        except OSError:
            pass
        assert time.monotonic() < deadline, f"/healthz never said {wanted!r}"
        time.sleep(0.2)


def test_help_and_version_need_no_settings(tmp_path):
    shown = fashion_bot("--help", cwd=tmp_path)
    assert shown.returncode == 0 and "--check" in shown.stdout and "Exit codes" in shown.stdout
    version = fashion_bot("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("fashion-bot ")
    index = subprocess.run([sys.executable, "-m", "indexing", "--version"], capture_output=True, text=True)
    assert index.returncode == 0 and index.stdout.split()[1] == version.stdout.split()[1]


def test_check_names_each_part_and_asks_telegram_online(tmp_path, exported_index, model_cache):
    fake = FakeTelegram().start()
    try:
        env = {"TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_URL": fake.url, "INDEX_DIR": str(exported_index),
               "STATE_DIR": str(with_models(tmp_path / "state", model_cache))}
        local = fashion_bot("--check", cwd=tmp_path, **env)
        assert not fake.requests  # nothing but local checks
        online = fashion_bot("--check", "--online", cwd=tmp_path, **env)
    finally:
        fake.stop()
    assert local.returncode == 0, local.stderr
    lines = local.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "ok  token", "ok  index", "ok  pose models", "ok  state", "ok  translations"]
    assert "24 photos" in lines[1]
    assert online.returncode == 0 and "the token is accepted" in online.stdout.splitlines()[-1]


def test_each_local_failure_is_one_line_with_its_fix_before_telegram_is_asked(tmp_path, exported_index):
    fake = FakeTelegram().start()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    try:
        base = {"TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_URL": fake.url, "INDEX_DIR": str(exported_index)}
        cases = {
            "bad token": ({**base, "TELEGRAM_BOT_TOKEN": "12345"}, "does not look like a bot token"),
            "no index": ({**base, "INDEX_DIR": str(tmp_path / "none")}, "build one with `fashion-index build`"),
            "no models": ({**base, "PEOPLE_MODELS": str(tmp_path / "no-models")}, "fetch-models"),
            "state is a file": ({**base, "STATE_DIR": str(blocker / "state")}, "point STATE_DIR at a folder"),
        }
        done = {name: fashion_bot(cwd=tmp_path, **env) for name, (env, _) in cases.items()}
        asked = list(fake.requests)
    finally:
        fake.stop()
    for name, (_, fix) in cases.items():
        lines = done[name].stderr.strip().splitlines()
        assert done[name].returncode == 2, (name, done[name].stderr)
        assert len(lines) == 1 and lines[0].startswith("fashion-bot: ") and fix in lines[0], (name, lines)
    assert not asked  # none of them reached getMe


def test_a_rejected_token_is_one_line_exit_2_and_never_printed(tmp_path, exported_index, model_cache):
    fake = FakeTelegram().start()
    revoked = "987654:REVOKED-token_abcdefghijklmnopqrstuvwxyz"
    try:
        for level in ("INFO", "DEBUG"):
            done = fashion_bot(cwd=tmp_path, TELEGRAM_BOT_TOKEN=revoked, TELEGRAM_API_URL=fake.url,
                               INDEX_DIR=str(exported_index), LOG_LEVEL=level,
                               STATE_DIR=str(with_models(tmp_path / "state", model_cache)))
            output = done.stdout + done.stderr
            assert done.returncode == 2, output
            assert "fashion-bot: Telegram rejected TELEGRAM_BOT_TOKEN" in done.stderr
            assert revoked not in output and revoked.split(":")[1] not in output
            assert "Traceback" not in done.stderr.splitlines()[-1]
        checked = fashion_bot("--check", "--online", cwd=tmp_path, TELEGRAM_BOT_TOKEN=revoked,
                              TELEGRAM_API_URL=fake.url, INDEX_DIR=str(exported_index),
                              STATE_DIR=str(tmp_path / "state"))
    finally:
        fake.stop()
    assert checked.returncode == 2 and revoked.split(":")[1] not in checked.stdout + checked.stderr


def test_polling_health_turns_degraded_while_the_catalogue_cannot_be_followed_then_recovers(
        tmp_path, exported_index, model_cache):
    index = tmp_path / "idx"
    shutil.copytree(exported_index, index)
    fake = FakeTelegram().start()
    port = free_port()
    env = bot_env(PYTHONPATH=str(ROOT), TELEGRAM_BOT_TOKEN=fake.token, TELEGRAM_API_URL=fake.url,
                  INDEX_DIR=str(index), STATE_DIR=str(with_models(tmp_path / "state", model_cache)),
                  HEALTH_PORT=str(port), INDEX_RELOAD_SECONDS="1")
    try:
        with bot_process(env, tmp_path) as process:
            ok = wait_for_health(port, "ok", timeout=120)
            assert ok["products"] == 24
            checked = subprocess.run([*BOT, "--health"], env={**env, "TELEGRAM_BOT_TOKEN": ""}, capture_output=True,
                                     text=True, timeout=60)
            assert checked.returncode == 0 and json.loads(checked.stdout)["status"] == "ok"

            manifest = (index / "manifest.json").read_bytes()
            (index / "manifest.json").write_text("{ torn")
            degraded = wait_for_health(port, "degraded", timeout=10)
            assert "catalogue" in degraded["reason"] and degraded["products"] == 24
            assert subprocess.run([*BOT, "--health"], env=env, capture_output=True, timeout=60).returncode == 1
            fake.send_photo(41, jpeg(draw_product("Blue", "Jeans", size=(300, 400))))
            assert len(fake.wait_for("sendMediaGroup", chat_id=41, timeout=60)[0].album()) == 5  # still answers

            (index / "manifest.json").write_bytes(manifest)
            wait_for_health(port, "ok", timeout=10)
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            assert "process_resident_memory_bytes" in metrics and 'fashion_build_info{' in metrics
            assert 'runtime="onnxruntime"' in metrics
            log = stop(process)
    finally:
        fake.stop()
    assert process.returncode == 0, log
    assert "degraded: catalogue" in log and "recovered: catalogue" in log


def test_index_files_follow_the_umask(tmp_path, embedder, catalogue):
    from indexing import build_index
    from indexing.sources.options import BuildOptions

    images, styles = catalogue
    previous = os.umask(0o022)
    try:
        build_index([images], tmp_path / "idx", metadata=styles, embedder=embedder,
                    options=BuildOptions(batch_size=8, export=False, progress=False, limit=4))
    finally:
        os.umask(previous)
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in (tmp_path / "idx").iterdir() if path.is_file()}
    assert modes and set(modes.values()) == {0o644}, modes


def test_an_unreachable_postgresql_is_one_line_and_exit_1(tmp_path, exported_index, model_cache):
    fake = FakeTelegram().start()
    try:
        done = fashion_bot(cwd=tmp_path, TELEGRAM_BOT_TOKEN=fake.token, TELEGRAM_API_URL=fake.url,
                           INDEX_DIR=str(exported_index), STATE_DIR=str(with_models(tmp_path / "state", model_cache)),
                           STATE_URL=f"postgresql://fashion:secret@127.0.0.1:{free_port()}/fashion")
    finally:
        fake.stop()
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1, done.stderr  # may pass by itself: systemd and Docker retry, with a pause
    assert last.startswith("fashion-bot: cannot start: cannot connect to STATE_URL's PostgreSQL"), last
    assert "Traceback" not in done.stderr and "secret" not in done.stderr
