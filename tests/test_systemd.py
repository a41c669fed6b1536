"""The systemd install as the README gives it (`make test-deploy`, as root): deploy/install-systemd.sh into a root
folder, `systemd-analyze verify` on its units, then the bot unit's own commands run as its user (fashion), with its
environment, on an index that another user (fashion-index) owns."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from indexing import build_index
from indexing.sources.options import BuildOptions
from testbed.drawing import draw_product
from testbed.fake_telegram import FakeTelegram
from testbed.postgres import free_port
from tests.conftest import ROOT
from tests.test_bot import jpeg

pytestmark = pytest.mark.deploy
UNITS = ("fashion-bot.service", "fashion-sync.service", "fashion-sync.timer")


def unit_settings(path: Path) -> dict[str, list[str]]:
    """Each key of a unit file with its values, in order (a key may be given more than once)."""
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if re.match(r"^[A-Za-z]+=", line):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def inside(root: Path, text: str) -> str:
    """The unit's absolute paths, as they are under the install's root folder."""
    return re.sub(r"(?<![\w.])/(opt|var|etc)/", lambda m: f"{root}/{m.group(1)}/", text)


@pytest.fixture(scope="module")
def installed() -> Path:
    if os.geteuid() != 0:
        pytest.skip("the systemd install creates users: run as root (CI does)")
    root = Path(tempfile.mkdtemp(prefix="fashion-systemd-"))
    root.chmod(0o755)
    done = subprocess.run(["sh", "deploy/install-systemd.sh"], cwd=ROOT, env={**os.environ, "ROOT": str(root)},
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_systemd_analyze_verifies_the_installed_units(installed):
    # systemd's own units (sysinit.target, ...) are what the installed ones are checked against.
    shutil.copytree("/lib/systemd/system", installed / "usr/lib/systemd/system", symlinks=True, dirs_exist_ok=True)
    done = subprocess.run(["systemd-analyze", f"--root={installed}", "verify",
                           *[f"etc/systemd/system/{unit}" for unit in UNITS]],
                          cwd=installed, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_the_units_refuse_to_restart_a_configuration_error_and_sync_on_a_timer():
    bot = unit_settings(ROOT / "deploy" / "fashion-bot.service")
    assert bot["RestartPreventExitStatus"] == ["2"] and bot["StateDirectory"] == ["fashion-bot"]
    assert bot["ExecStartPre"] == [f"{bot['ExecStart'][0]} --check"]
    assert "PEOPLE_MODELS=" in bot["Environment"][0] and bot["EnvironmentFile"]
    assert unit_settings(ROOT / "deploy" / "fashion-sync.timer")["OnCalendar"]
    assert " sync " in unit_settings(ROOT / "deploy" / "fashion-sync.service")["ExecStart"][0]


def test_the_bot_unit_runs_as_its_user_on_an_index_another_user_owns(installed, catalogue, embedder):
    unit = unit_settings(installed / "etc/systemd/system/fashion-bot.service")
    user = unit["User"][0]
    environment = dict(part.split("=", 1) for part in inside(installed, unit["Environment"][0]).split())
    index, state = Path(environment["INDEX_DIR"]), Path(environment["STATE_DIR"])
    # Built here (root, umask 022) with its photos inside, as a folder build for a server is (--copy-images): the
    # catalogue folder itself is this user's alone. Then handed to the index's owner, modes as the build wrote them.
    images, styles = catalogue
    build_index([images], index, metadata=styles, embedder=embedder,
                options=BuildOptions(batch_size=8, progress=False, copy_images=True))
    subprocess.run(["chown", "-R", "fashion-index:fashion-index", str(index)], check=True)
    state.mkdir(parents=True, exist_ok=True)  # StateDirectory=: systemd makes it, owned by the unit's user
    subprocess.run(["chown", f"{user}:{user}", str(state)], check=True)
    fake = FakeTelegram().start()
    env_file = Path(inside(installed, unit["EnvironmentFile"][0]))
    env_file.write_text(env_file.read_text().replace("TELEGRAM_BOT_TOKEN=\n", f"TELEGRAM_BOT_TOKEN={fake.token}\n")
                        .replace("TELEGRAM_API_URL=https://api.telegram.org", f"TELEGRAM_API_URL={fake.url}")
                        .replace("HEALTH_PORT=8080", f"HEALTH_PORT={free_port()}"))
    settings = {**environment, **{k: v for k, v in (line.split("=", 1) for line in env_file.read_text().splitlines()
                                                   if re.match(r"^[A-Z_]+=", line))}}
    run = {"user": user, "cwd": inside(installed, unit["WorkingDirectory"][0]), "text": True,
           "env": {"PATH": "/usr/bin:/bin", **settings}}
    try:
        check = subprocess.run(inside(installed, unit["ExecStartPre"][0]).split(), capture_output=True, timeout=120,
                               **run)
        assert check.returncode == 0, check.stdout + check.stderr
        process = subprocess.Popen(inside(installed, unit["ExecStart"][0]).split(), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, **run)
        fake.send_photo(81, jpeg(draw_product("Blue", "Jeans", size=(300, 400))))
        assert len(fake.wait_for("sendMediaGroup", chat_id=81, timeout=120)[0].album()) == 5
        process.send_signal(signal.SIGTERM)
        log = process.communicate(timeout=30)[0]
        assert process.returncode == 0, log
        assert fake.token not in log
    finally:
        fake.stop()
    assert "ok  index: 24 photos" in check.stdout
