"""Saved products and their alerts: ♡ and /saved, a price drop or a restock after a sync told once to each user who
saved it, /alerts off, blocked users dropped, and exactly once through 429s, a restart and two replicas."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from bot.album import photo_key
from bot.alerts import transition
from bot.state_sqlite import SqliteStore
from bot.state_users import Saved
from indexing import Index
from indexing.sources.options import BuildOptions
from indexing.sources.sync import build_from_feed, sync_feed
from testbed.fake_telegram import Fault
from testbed.harness import RunningBot, settings_for
from testbed.shop import generated_shop
from tests.conftest import with_models
from tests.test_bot_items import buttons

USER = 4242


def saved(price: str = "1299.00 INR", available: bool = True, alerts: bool = True) -> Saved:
    return Saved(1, USER, "1003", price, available, alerts)


def record(price: str, availability: str = "in stock", sale: str = "") -> dict:
    return {"id": "1003", "meta": {"price": price, "sale_price": sale, "availability": availability}}


def test_which_changes_call_for_an_alert():
    assert transition(saved(), record("1299.00 INR")) is None  # nothing changed
    assert transition(saved(), record("1299.00 INR", sale="999.00 INR")).alert == "price"
    assert transition(saved(), record("1399.00 INR")).alert is None  # dearer: remembered, not told
    assert transition(saved(), record("12.00 USD")).alert is None  # another currency is no drop
    gone = transition(saved(), None)  # out of the catalogue: remembered as unavailable
    assert gone.available is False and gone.alert is None
    assert transition(saved(available=False), record("1299.00 INR")).alert == "stock"
    assert transition(saved(available=False), record("1299.00 INR", "out of stock")) is None
    assert transition(saved(alerts=False), record("1299.00 INR", sale="999.00 INR")).alert is None


@pytest.fixture
def shop(server, embedder, tmp_path, model_cache):
    """A shop's feed and its index, exported as `fashion-index build` leaves it; the bots' state folder."""
    shop = generated_shop(server, 12, extra_every=4)
    build_from_feed(shop.feed(), tmp_path / "idx", embedder=embedder, options=BuildOptions(progress=False))
    with_models(tmp_path / "state", model_cache)
    return shop, tmp_path / "idx"


def start(fake, index_dir, state, **overrides) -> RunningBot:
    return RunningBot(settings_for(fake, index_dir, state_dir=state, reload_seconds=1, **overrides)).start()


def sync(shop, index_dir, embedder, bot: RunningBot | None = None) -> None:
    """Follow the shop's feed, and wait until the bot serves the new generation."""
    sync_feed(index_dir, shop.feed(), embedder=embedder, options=BuildOptions(progress=False))
    generation = Index.load(index_dir).manifest["generation"]
    deadline = time.monotonic() + 20
    while bot and bot.services.index.manifest["generation"] != generation:
        assert time.monotonic() < deadline, "the bot did not follow the sync"
        time.sleep(0.05)


def alerts_to(fake, chat: int) -> list:
    return [r for r in fake.seen("sendPhoto", chat_id=chat) if r.response and "saved it earlier" in r.text]


def said(fake, chat: int, start: str, timeout: float = 20):
    """The first message to chat that starts so, once it is sent."""
    deadline = time.monotonic() + timeout
    while not (found := [r for r in fake.seen("sendMessage", chat_id=chat) if r.text.startswith(start)]):
        assert time.monotonic() < deadline, [r.text for r in fake.seen("sendMessage", chat_id=chat)]
        time.sleep(0.05)
    return found[0]


def wait_for_alerts(fake, chat: int, count: int, timeout: float = 20) -> list:
    deadline = time.monotonic() + timeout
    while len(alerts_to(fake, chat)) < count:
        assert time.monotonic() < deadline, [r.text for r in alerts_to(fake, chat)]
        time.sleep(0.05)
    return alerts_to(fake, chat)


def test_save_list_and_get_told_of_a_price_drop_and_a_restock(fake, shop, embedder, server, tmp_path):
    shop_, index_dir = shop
    bot = start(fake, index_dir, tmp_path / "state")
    try:
        fake.send_photo(USER, server.images["1003.jpg"], width=60, height=80)
        outline = fake.wait_for("sendPhoto", chat_id=USER)[0]
        keys = buttons(outline.response)
        assert [f"♡ #{n}" in keys for n in range(1, 6)] == [True] * 5
        fake.press(USER, outline.response, keys["♡ #1"])
        answer = fake.wait_for("answerCallbackQuery")[0]
        assert answer.params["text"].startswith("♡ Saved: Black Tshirts 1003.")

        fake.message(USER, text="/saved", entities=[{"type": "bot_command", "offset": 0, "length": 6}])
        listed = said(fake, USER, "Your saved")
        assert listed.text.startswith("Your saved products 1–1 of 1.") and "✕ #1" in buttons(listed.response)
        photo = [r for r in fake.seen("sendPhoto", chat_id=USER) if "Black Tshirts 1003" in r.text][-1]
        assert "Similarity" not in photo.text  # a saved product is not a search result

        shop_.products["1003"].attributes["sale_price"] = "899.00 INR"
        sync(shop_, index_dir, embedder, bot)
        (alert,) = wait_for_alerts(fake, USER, 1)
        assert alert.text.splitlines()[:2] == ["📉 Cheaper now: Black Tshirts 1003", "₹1,299 → ₹899"]
        row = alert.params["reply_markup"]["inline_keyboard"][0]
        assert row[0] == {"text": "🛒 Buy", "url": "https://shop.example/p/1003"} and row[1]["text"].startswith("✕")

        shop_.products["1003"].attributes["availability"] = "out of stock"
        sync(shop_, index_dir, embedder, bot)
        shop_.products["1003"].attributes["availability"] = "in stock"
        sync(shop_, index_dir, embedder, bot)
        alerts = wait_for_alerts(fake, USER, 2)
        assert alerts[1].text.splitlines()[:2] == ["✅ Back in stock: Black Tshirts 1003", "Price: ₹899"]

        fake.message(USER, text="/alerts off", entities=[{"type": "bot_command", "offset": 0, "length": 7}])
        said(fake, USER, "Alerts are off")
        shop_.products["1003"].attributes["sale_price"] = "799.00 INR"
        sync(shop_, index_dir, embedder, bot)
        time.sleep(2)
        assert len(alerts_to(fake, USER)) == 2  # nothing more once alerts are off

        fake.press(USER, alerts[0].response, alerts[0].params["reply_markup"]["inline_keyboard"][0][1]["callback_data"])
        assert fake.wait_for("answerCallbackQuery", count=2)[1].params["text"].startswith("Removed Black Tshirts 1003")
        assert bot.services.store.saved_by(USER, 0, 10) == ([], 0)
    finally:
        bot.stop()


def saved_state(tmp_path: Path, pid: str, *users: int) -> tuple[Path, SqliteStore]:
    """A bot's state folder in which each user has saved the product at 1299 INR, in stock; its store left open."""
    state = tmp_path / "state"
    store = SqliteStore(state)
    for user in users:
        store.save_product(user, pid, "1299.00 INR", True)
    return state, store


def test_a_user_who_blocked_the_bot_is_dropped(fake, shop, embedder, tmp_path):
    shop_, index_dir = shop
    state, store = saved_state(tmp_path, "1005", USER, USER + 1)
    store.close()
    fake.blocked.add(USER)
    bot = start(fake, index_dir, state)
    try:
        shop_.products["1005"].attributes["sale_price"] = "1000.00 INR"
        sync(shop_, index_dir, embedder, bot)
        wait_for_alerts(fake, USER + 1, 1)
        # The bot marks an alert sent once Telegram has answered, a moment after the fake saw it go out.
        deadline = time.monotonic() + 10
        while bot.services.store.alerts_on(USER) or bot.services.store.waiting_alerts(10):
            assert time.monotonic() < deadline, bot.services.store.waiting_alerts(10)
            time.sleep(0.05)
        assert not alerts_to(fake, USER)
    finally:
        bot.stop()


def test_an_alert_whose_cached_photo_telegram_refuses_is_sent_with_the_photo_uploaded(fake, shop, embedder, tmp_path):
    shop_, index_dir = shop
    state, store = saved_state(tmp_path, "1006", USER)
    store.remember_upload(photo_key(Index.load(index_dir).product("1006")), "purged-file-id")
    store.close()
    bot = start(fake, index_dir, state)
    try:
        shop_.products["1006"].attributes["sale_price"] = "1000.00 INR"
        sync(shop_, index_dir, embedder, bot)
        (alert,) = wait_for_alerts(fake, USER, 1)
        assert "photo" in alert.files  # uploaded, after the purged file_id was refused
        assert bot.services.store.file_id(photo_key(Index.load(index_dir).product("1006"))) != "purged-file-id"
    finally:
        bot.stop()


def seed(state, index_dir, users: range, per_user: int) -> dict[tuple[int, str], str]:
    """Saved products straight into the bot's state: each user saves per_user of the shop's products."""
    records = Index.load(index_dir).products_of([str(1000 + i) for i in range(12)])
    store = SqliteStore(state)
    chosen = {}
    for user in users:
        for n in range(per_user):
            pid = str(1000 + (user * 7 + n * 5) % 12)
            store.save_product(user, pid, records[pid]["meta"]["price"], True)
            chosen[(user, pid)] = records[pid]["meta"]["title"]
    store.close()
    return chosen


def test_every_alert_is_sent_exactly_once_through_429s_and_a_restart(fake, shop, embedder, tmp_path):
    shop_, index_dir = shop
    state = tmp_path / "state"
    saved_by = seed(state, index_dir, range(5000, 5060), 5)
    dropped = {"1001", "1002", "1004", "1006", "1007", "1009"}
    expected = Counter((user, title) for (user, pid), title in saved_by.items() if pid in dropped)
    fake.fail_every("sendPhoto", 15, Fault(429, retry_after=1))
    bot = start(fake, index_dir, state, alerts_per_second=30)
    for pid in dropped:
        shop_.products[pid].attributes["sale_price"] = "1000.00 INR"
    sync(shop_, index_dir, embedder, bot)
    delivered = lambda: [r for r in fake.seen("sendPhoto") if r.response and "Cheaper now" in r.text]  # noqa: E731
    deadline = time.monotonic() + 30
    while len(delivered()) < len(expected) // 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    bot.stop()  # a restart in the middle of the run
    assert 0 < len(delivered()) < sum(expected.values())
    bot = start(fake, index_dir, state, alerts_per_second=30)
    try:
        deadline = time.monotonic() + 60
        while len(delivered()) < sum(expected.values()):
            assert time.monotonic() < deadline, f"{len(delivered())} of {sum(expected.values())} alerts"
            time.sleep(0.05)
        time.sleep(1.5)  # nothing more comes after
        sent = Counter((r.chat_id, r.text.splitlines()[0].removeprefix("📉 Cheaper now: ")) for r in delivered())
        assert sent == expected
        assert [r for r in fake.seen("sendPhoto") if r.response is None]  # the 429s were there, and retried
    finally:
        bot.stop()


def test_two_replicas_queue_each_alert_once(tmp_path, postgres_url):
    from bot.state_postgres import PostgresStore

    stores = [PostgresStore(postgres_url), PostgresStore(postgres_url)]
    try:
        first = stores[0]
        first.execute("DELETE FROM saved")
        first.execute("DELETE FROM alerts")
        for user in range(100):
            first.save_product(user, "1003", "1299.00 INR", True)
        rows = first.saved_after(0, 1000)
        moves = [transition(row, record("1299.00 INR", sale="999.00 INR")) for row in rows]
        queued = [store.apply_transitions(moves) for store in stores]  # both replicas see the new catalogue
        assert sorted(queued) == [0, 100] and len(first.waiting_alerts(1000)) == 100
    finally:
        for store in stores:
            store.close()
