"""The Docker images as the README builds and runs them, on a real daemon (`make test-deploy`): the indexer image builds
an index as its own user, the bot image serves it as another, through the fake Bot API on the host's network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from testbed.docker import BASE, build, daemon_running, docker, ensure_base, health_status, image_size
from testbed.drawing import draw_product
from testbed.fake_telegram import FakeTelegram
from testbed.postgres import free_port
from tests.conftest import ROOT
from tests.test_bot import jpeg

pytestmark = pytest.mark.deploy
BOT, INDEXER = "fashion-bot:test", "fashion-index:test"
TIMINGS = ROOT / "benchmarks" / "results" / "deploy.json"


def record(**figures: float) -> None:
    """The deploy suite's measurements, for the closing note (only when FASHION_RECORD_DEPLOY=1)."""
    if os.environ.get("FASHION_RECORD_DEPLOY") == "1":
        known = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
        TIMINGS.write_text(json.dumps({**known, **figures}, indent=2) + "\n")


@pytest.fixture(scope="module")
def images() -> dict[str, float]:
    if not daemon_running():
        pytest.fail("no Docker daemon: .ci/run installs docker.io and starts dockerd")
    started = time.monotonic()
    base = ensure_base()
    based = time.monotonic()
    build("bot", BOT, ROOT)
    built = time.monotonic()
    build("indexer", INDEXER, ROOT)
    done = time.monotonic()
    timings = {"base_seconds": round(based - started, 1), "bot_build_seconds": round(built - based, 1),
               "indexer_build_seconds": round(done - built, 1), "bot_image_bytes": image_size(BOT),
               "indexer_image_bytes": image_size(INDEXER)}
    record(base=base, **timings)
    return timings


def shared_folder() -> Path:
    """A folder any user may read (a pytest folder is its user's alone): what a container's user sees."""
    folder = Path(tempfile.mkdtemp(prefix="fashion-deploy-"))
    folder.chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def index_volume(images, catalogue):
    """An index built by the indexer image (its own user, uid 10002) into a named volume."""
    source, styles = catalogue
    photos = shared_folder()
    shutil.copytree(source, photos / "images")
    shutil.copyfile(styles, photos / "styles.csv")
    for path in photos.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    volume = f"fashion-index-{os.getpid()}"
    docker("volume", "create", volume)
    started = time.monotonic()
    built = docker("run", "--rm", "--network", "host", "-v", f"{volume}:/data/index", "-v", f"{photos}:/catalogue:ro",
                   INDEXER, "build", "--images", "/catalogue/images", "--metadata", "/catalogue/styles.csv",
                   "--out", "/data/index", "--copy-images", "--weights", "random:0", "--quiet", check=False)
    assert built.returncode == 0, built.stderr
    record(indexer_run_seconds=round(time.monotonic() - started, 1))
    yield volume
    docker("volume", "rm", "-f", volume, check=False)
    shutil.rmtree(photos, ignore_errors=True)


def test_the_bot_image_has_no_tensorflow_and_fits_800_mb(images):
    assert images["bot_image_bytes"] <= 800 * 1000 * 1000, images
    found = docker("run", "--rm", "--entrypoint", "python", BOT, "-c",
                   "import importlib.util as u; print([m for m in ('tensorflow', 'onnx', 'tf2onnx', 'sklearn', "
                   "'keras') if u.find_spec(m)])")
    assert found.stdout.strip() == "[]"
    assert docker("run", "--rm", BOT, "--version").stdout.startswith("fashion-bot ")
    assert docker("run", "--rm", INDEXER, "--version").stdout.startswith("fashion-index ")


def test_check_in_the_image_names_what_is_missing(images):
    done = docker("run", "--rm", "-e", "TELEGRAM_BOT_TOKEN=123456:TEST-token_abcdefghijklmnopqrstuvwxyz", BOT,
                  "--check", check=False)
    assert done.returncode == 2 and done.stderr.strip().startswith("fashion-bot: INDEX_DIR: no index at /data/index")


def run_bot(name: str, fake: FakeTelegram, index_volume: str, state_volume: str, health_port: int) -> None:
    docker("run", "-d", "--name", name, "--network", "host", "-e", f"TELEGRAM_BOT_TOKEN={fake.token}",
           "-e", f"TELEGRAM_API_URL={fake.url}", "-e", f"HEALTH_PORT={health_port}",
           "-v", f"{index_volume}:/data/index:ro", "-v", f"{state_volume}:/data/state", BOT)


def test_album_health_clean_stop_and_buttons_after_the_container_is_replaced(images, index_volume):
    fake = FakeTelegram().start()
    name, state = f"fashion-bot-{os.getpid()}", f"fashion-state-{os.getpid()}"
    health_port = free_port()
    user = 61
    try:
        fake.send_photo(user, jpeg(draw_product("Blue", "Jeans", size=(300, 400))))
        started = time.monotonic()
        run_bot(name, fake, index_volume, state, health_port)
        album = fake.wait_for("sendMediaGroup", chat_id=user, timeout=60)[0]
        first_album = time.monotonic() - started
        assert len(album.album()) == 5
        buttons = fake.wait_for("sendPhoto", chat_id=user, timeout=60)[0]
        deadline = time.monotonic() + 90
        while (status := health_status(name)) != "healthy":
            assert status in ("starting", "") and time.monotonic() < deadline, docker("logs", name).stderr
            time.sleep(1)
        healthy = time.monotonic() - started

        stopping = time.monotonic()
        docker("stop", "-t", "10", name)
        stop_seconds = time.monotonic() - stopping
        exit_code = int(docker("inspect", name, "--format", "{{.State.ExitCode}}").stdout)
        logs = docker("logs", name)
        assert exit_code == 0 and stop_seconds < 10, (exit_code, stop_seconds, logs.stderr[-2000:])
        assert fake.token not in logs.stdout + logs.stderr
        docker("rm", name)

        run_bot(name, fake, index_volume, state, health_port)  # a new container on the same state volume
        rows = buttons.response["reply_markup"]["inline_keyboard"]
        more = next(b["callback_data"] for row in rows for b in row if b["text"].startswith("Show"))
        fake.press(user, buttons.response, more)
        assert len(fake.wait_for("sendMediaGroup", count=2, chat_id=user, timeout=90)[1].album()) == 5
        record(first_album_seconds=round(first_album, 1), healthy_seconds=round(healthy, 1),
               stop_seconds=round(stop_seconds, 1))
    finally:
        docker("rm", "-f", name, check=False)
        docker("volume", "rm", "-f", state, check=False)
        fake.stop()


def compose(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["docker-compose", "-p", f"fashiontest{os.getpid()}", "-f", "deploy/compose.yaml",
                           "-f", "tests/compose-host-network.yaml", *arguments], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, **env})


def test_single_bot_compose_file_answers_a_photo(images, index_volume, tmp_path):
    fake = FakeTelegram().start()
    settings = tmp_path / "env"
    settings.write_text(f"TELEGRAM_BOT_TOKEN={fake.token}\nTELEGRAM_API_URL={fake.url}\n"
                        f"HEALTH_PORT={free_port()}\n")
    # The index as a shop keeps it: a folder on the host (copied out of the indexer's volume).
    index = shared_folder()
    docker("run", "--rm", "--user", "0", "-v", f"{index_volume}:/from:ro", "-v", f"{index}:/to", "--entrypoint",
           "sh", BOT, "-c", "cp -a /from/. /to/")
    env = {"ENV_FILE": str(settings), "INDEX": str(index)}
    try:
        docker("tag", BOT, "fashion-bot:latest")
        up = compose("up", "-d", "--no-build", env=env)
        assert up.returncode == 0, up.stderr
        fake.send_photo(71, jpeg(draw_product("Red", "Tshirts", size=(300, 400))))
        assert len(fake.wait_for("sendMediaGroup", chat_id=71, timeout=90)[0].album()) == 5
    finally:
        down = compose("down", "-v", "-t", "10", env=env)
        fake.stop()
        shutil.rmtree(index, ignore_errors=True)
    assert down.returncode == 0, down.stderr


def test_the_scale_compose_file_is_valid_and_keeps_milvus_off_public_interfaces(tmp_path):
    settings = tmp_path / "env"
    settings.write_text("TELEGRAM_BOT_TOKEN=123456:TEST-token_abcdefghijklmnopqrstuvwxyz\n")
    done = subprocess.run(["docker-compose", "-f", "deploy/compose-scale.yaml", "config"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "ENV_FILE": str(settings), "POSTGRES_PASSWORD": "x"})
    assert done.returncode == 0, done.stderr
    assert '"127.0.0.1:19530:19530"' in (ROOT / "deploy" / "compose-scale.yaml").read_text()
    assert "ssl_certificate" in (ROOT / "deploy" / "nginx.conf").read_text()


def test_the_dockerfile_names_the_base_the_stand_in_replaces():
    assert f"PYTHON_IMAGE={BASE}" in (ROOT / "deploy" / "Dockerfile").read_text()
