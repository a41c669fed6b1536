"""Nothing a handler waits on blocks the other users: while one user's /saved waits on a catalogue query that does
not answer (a Milvus stuck on it), another user's photo is answered."""

from __future__ import annotations

import asyncio
import threading

from indexing import Index
from tests.test_bot import USER, user_photo

SAVER, OTHER = USER + 1, USER + 2


def test_a_stuck_catalogue_query_holds_up_no_other_user(fake, start_bot, exported_index, monkeypatch):
    saved = sorted(record["id"] for record in Index.load(exported_index).store.records())[3]
    bot = start_bot()
    # Through the state's own thread: the bot's watchdog uses the same SQLite connection meanwhile.
    asyncio.run_coroutine_threadsafe(bot.services.state.save_product(SAVER, saved, "10.00 INR", True),
                                     bot.loop).result(30)
    answer, asked = threading.Event(), threading.Event()
    products_of = Index.products_of

    def stuck(index, ids):
        if list(ids) == [saved]:  # the saver's /saved, and nothing else
            asked.set()
            assert answer.wait(60)
        return products_of(index, ids)

    monkeypatch.setattr(Index, "products_of", stuck)
    try:
        fake.message(SAVER, text="/saved", entities=[{"type": "bot_command", "offset": 0, "length": 6}])
        assert asked.wait(30)
        fake.send_photo(OTHER, user_photo(seed=3))
        assert len(fake.wait_for("sendMediaGroup", chat_id=OTHER, timeout=60)[0].album()) == 5
        assert not fake.seen(("sendPhoto", "sendMessage"), chat_id=SAVER)  # still waiting, the other answered
    finally:
        answer.set()
    fake.wait_for("sendPhoto", chat_id=SAVER)  # one saved product: a photo, not an album
    assert fake.wait_for("sendMessage", chat_id=SAVER)[0].text.startswith("Your saved products 1–1 of 1.")
