"""Writers of one index at once, as cron and a shop owner start them: each takes the index's lock in turn, and
every product of each is there afterwards."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time

import pytest

from indexing import Index
from indexing.sources.options import BuildOptions
from indexing.sources.sync import build_from_feed
from indexing.store.lock import LOCK_FILE, writing
from testbed.drawing import SHAPES, draw_product
from testbed.shop import generated_shop, jpeg
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
ADDERS = 6


def fashion_index(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "indexing", *argv], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture
def feed_index(server, embedder, tmp_path):
    shop = generated_shop(server, 8)
    out = tmp_path / "idx"
    build_from_feed(shop.feed(), out, embedder=embedder, options=BuildOptions(progress=False))
    return shop, out


def test_six_adds_and_a_sync_started_together_all_land_in_every_round(feed_index, tmp_path):
    shop, out = feed_index
    photos = tmp_path / "photos"
    photos.mkdir()
    expected_prices: dict[str, str] = {}
    for round_ in range(10):
        paths = []
        for n in range(ADDERS):
            path = photos / f"hand{round_}x{n}.jpg"
            path.write_bytes(jpeg(draw_product("Blue", SHAPES[0], seed=100 * round_ + n)))
            paths.append(path)
        changed = list(shop.products)[round_ % len(shop.products)]
        shop.products[changed].attributes["price"] = f"{900 - round_}.00 INR"
        expected_prices[changed] = f"{900 - round_}.00 INR"
        feed = shop.feed()
        writers = [fashion_index("add", "--index", str(out), "--images", str(p), "--quiet") for p in paths]
        writers.append(fashion_index("sync", "--index", str(out), "--feed", feed, "--quiet"))
        for writer in writers:
            _, err = writer.communicate(timeout=300)
            assert writer.returncode == 0, err
        index = Index.load(out)  # opens, checksums and all
        missing = [p.stem for p in paths if p.stem not in index]
        assert not missing, f"round {round_}: lost {missing}"
        prices = {pid: index.product(pid)["meta"]["price"] for pid in expected_prices}
        assert prices == expected_prices, f"round {round_}"
    assert Index.load(out).product_count == len(shop.products) + 10 * ADDERS


def test_a_second_writer_says_it_waits_or_fails_at_once_with_no_wait(feed_index):
    _, out = feed_index
    with writing(out):
        refused = fashion_index("remove", "--index", str(out), "--no-wait", "1000")
        _, err = refused.communicate(timeout=120)
        assert refused.returncode == 1
        assert err.count("\n") == 1 and "is being written by pid" in err and "--no-wait" in err
        waiting = fashion_index("remove", "--index", str(out), "1000")
        time.sleep(3)
        assert waiting.poll() is None  # still waiting for the lock this test holds
    out_text, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0 and "removed 1 products" in out_text
    assert "waiting for the index's other writer" in err and err.count("\n") == 1
    assert "1000" not in Index.load(out)


def test_a_writer_killed_with_9_frees_the_lock(feed_index):
    _, out = feed_index
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom indexing.store.lock import writing\n"
                               "with writing(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(600)",
                               str(out)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    fd = os.open(out / LOCK_FILE, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: the kernel let go with the process
    finally:
        os.close(fd)
    removed = fashion_index("remove", "--index", str(out), "--no-wait", "1001")
    assert removed.communicate(timeout=120)[0].startswith("removed 1 products")
