"""A catalogue in a Milvus Lite file, as a shop without a Milvus server runs it: every command and the bot a new
process that opens the file (and finds its collection released: it must load it)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from indexing import Index
from indexing.sources.options import BuildOptions
from indexing.sources.sync import build_from_feed
from indexing.store.milvus import close_client, parse_store
from testbed.drawing import make_catalogue
from testbed.shop import generated_shop
from tests.conftest import ROOT, with_models
from tests.test_bot_process import bot_env, bot_process, stop
from tests.test_stores import store_copy


def command(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "indexing", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def test_query_add_remove_and_the_bot_each_open_the_file_anew(exported_index, catalogue, tmp_path, fake,
                                                              model_cache):
    spec = str(tmp_path / "catalogue.db")
    store_copy(Index.load(exported_index), tmp_path / "idx", spec)
    close_client(parse_store(spec)["uri"])
    index = str(tmp_path / "idx")
    hits = json.loads(command("query", "--index", index, str(catalogue[0] / "1007.jpg"), "--json").stdout)
    assert len(hits) == 5 and hits[0]["id"] == "1007" and hits[0]["score"] > 0.999
    make_catalogue(tmp_path / "more", count=3, start_id=5000)
    command("add", "--index", index, "--images", str(tmp_path / "more"), "--quiet")
    command("remove", "--index", index, "1003")
    info = command("info", "--index", index).stdout
    assert "26 (26 photos, 26 in stock)" in info and "catalogue.db" in info
    hits = json.loads(command("query", "--index", index, str(tmp_path / "more" / "5001.jpg"), "--json").stdout)
    assert hits[0]["id"] == "5001" and "1003" not in [h["id"] for h in hits]

    env = bot_env(PYTHONPATH=str(ROOT), TELEGRAM_BOT_TOKEN=fake.token, TELEGRAM_API_URL=fake.url, INDEX_DIR=index,
                  STATE_DIR=str(with_models(tmp_path / "state", model_cache)))
    with bot_process(env, tmp_path) as bot:
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while not any(" ready: " in line for line in lines):
            assert time.monotonic() < deadline and bot.poll() is None, "".join(lines)
            lines.append(bot.stdout.readline())
        assert "26 products" in "".join(lines)
        fake.send_photo(7, (tmp_path / "more" / "5002.jpg").read_bytes())
        album = fake.wait_for("sendMediaGroup", chat_id=7)[0].album()
        assert len(album) == 5 and "5002" in album[0]["caption"]
        log = "".join(lines) + stop(bot)
    assert bot.returncode == 0 and "Traceback" not in log, log


def test_a_feed_in_a_lite_file_syncs_from_a_new_process(server, embedder, tmp_path):
    shop = generated_shop(server, 8, extra_every=4)
    # Exported, as `fashion-index build` leaves it: the sync's process embeds with ONNX Runtime.
    build_from_feed(shop.feed(), tmp_path / "idx", embedder=embedder,
                    options=BuildOptions(progress=False, store=str(tmp_path / "shop.db")))
    close_client(parse_store(str(tmp_path / "shop.db"))["uri"])
    shop.products["1001"].attributes["price"] = "1.00 INR"
    del shop.products["1007"]
    said = command("sync", "--index", str(tmp_path / "idx"), "--feed", shop.feed(), "--json").stdout
    assert json.loads(said.strip().splitlines()[-1]) == {
        "added": 0, "removed": 1, "updated": 1, "embedded": 0, "unchanged": 6, "failed": 0}
    index = Index.load(tmp_path / "idx")
    assert index.product("1001")["meta"]["price"] == "1.00 INR" and "1007" not in index
