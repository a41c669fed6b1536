"""Alerts that respect the user and the lease: two senders whose leases overlap (one paused with SIGSTOP past its
lease, then resumed) send each alert once; /alerts off in the middle of a page stops that user's alerts there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from bot.state_sqlite import SqliteStore
from bot.state_users import Transition
from indexing import Index
from tests.conftest import ROOT, with_models
from tests.test_alerts import alerts_to, said, start

pytestmark = pytest.mark.slow
LEASE, CLAIM = 2.0, 10.0  # seconds: the pause below outlasts the lease, not a claim


def queue_alerts(state: Path, index_dir: Path, users: range, per_user: int = 1) -> None:
    """Each user saved per_user products at 1000 INR; each now costs 900: an alert waits for every one."""
    ids = sorted(record["id"] for record in Index.load(index_dir).store.records())
    store = SqliteStore(state)
    for user in users:
        for n in range(per_user):
            store.save_product(user, ids[(user + n) % len(ids)], "1000.00 INR", True)
    moves = [Transition(row, "900.00 INR", True, "price") for row in store.saved_after(0, 100_000)]
    assert store.apply_transitions(moves) == len(users) * per_user
    store.close()


def sender(state: Path, index_dir: Path, fake) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "testbed.alert_sender", str(state), str(index_dir), fake.url,
                                fake.token, str(LEASE), str(CLAIM)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "started"
    return process


def sent_photos(fake) -> list:
    return [r for r in fake.seen("sendPhoto") if r.response]


def wait_until(done, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_two_senders_one_paused_past_its_lease_send_each_alert_once(fake, exported_index, tmp_path):
    users = range(9000, 9060)
    queue_alerts(tmp_path / "state", exported_index, users)
    first = sender(tmp_path / "state", exported_index, fake)
    second = None
    try:
        wait_until(lambda: len(sent_photos(fake)) >= 8)
        second = sender(tmp_path / "state", exported_index, fake)
        time.sleep(1)
        first.send_signal(signal.SIGSTOP)  # a VM paused, a long GC: it does not know its lease passes
        paused = len(sent_photos(fake))
        wait_until(lambda: len(sent_photos(fake)) >= paused + 10)  # the second took the lease over
        time.sleep(max(0.0, 3 * LEASE - 2))
        first.send_signal(signal.SIGCONT)
        wait_until(lambda: {r.chat_id for r in sent_photos(fake)} >= set(users))
        time.sleep(2 * LEASE)  # nothing more comes after
    finally:
        outputs = []
        for process in (first, second):
            if process is not None:
                os.kill(process.pid, signal.SIGCONT)
                process.terminate()
                outputs.append(process.communicate(timeout=60))
    counts = Counter(r.chat_id for r in sent_photos(fake))
    assert set(counts) == set(users) and set(counts.values()) == {1}, counts.most_common(3)
    marked = [int(out.split()[-1]) for out, _err in outputs]
    assert sum(marked) == len(users) and all(marked), outputs  # each marked sent by the one that sent it
    store = SqliteStore(tmp_path / "state")
    assert store.waiting_alerts(1000) == [] and store.alerts_sent() == len(users)


def test_alerts_off_in_the_middle_of_a_page_stops_them_there(fake, exported_index, tmp_path, model_cache):
    user = 9100
    state = with_models(tmp_path / "state", model_cache)
    queue_alerts(state, exported_index, range(user, user + 1), per_user=20)
    bot = start(fake, exported_index, state, alerts_per_second=4)
    try:
        wait_until(lambda: len(alerts_to(fake, user)) >= 2)
        fake.message(user, text="/alerts off", entities=[{"type": "bot_command", "offset": 0, "length": 7}])
        said(fake, user, "Alerts are off")
        before = len(alerts_to(fake, user))
        time.sleep(3)  # a dozen send slots at 4 a second
        after = len(alerts_to(fake, user))
    finally:
        bot.stop()
    # One claimed before the command may still be on its way; none of the rest of the page goes.
    assert before < 20 and after - before <= 1
    assert SqliteStore(state).waiting_alerts(100) == []
