"""The bot on a shop's feed: prices and 🛒 buttons, and a sync picked up while it serves, end to end."""

from __future__ import annotations

import threading
import time

import pytest

from bot.captions import shopper_price
from bot.filter_words import Vocabulary
from bot.i18n import language
from indexing import Index
from indexing.sources.options import BuildOptions
from indexing.sources.sync import build_from_feed, sync_feed
from testbed.drawing import draw_product
from testbed.harness import RunningBot, settings_for
from testbed.shop import generated_shop, jpeg
from tests.conftest import with_models

USER = 77


@pytest.fixture
def shop_index(server, embedder, tmp_path):
    shop = generated_shop(server, 12, extra_every=3)
    shop.products["1003"].attributes["sale_price"] = "999.00 INR"
    shop.products["1004"].attributes["link"] = "javascript:alert(1)"  # never a button
    # Exported, as `fashion-index build` leaves it: the bot serves with ONNX Runtime.
    build_from_feed(shop.feed(), tmp_path / "idx", embedder=embedder, options=BuildOptions(progress=False))
    return shop, tmp_path / "idx"


@pytest.fixture
def shop_bot(fake, shop_index, tmp_path, model_cache):
    state = with_models(tmp_path / "state", model_cache)
    bot = RunningBot(settings_for(fake, shop_index[1], state_dir=state, reload_seconds=1)).start()
    yield bot
    bot.stop()


def captions(album) -> list[str]:
    return [item["caption"] for item in album.album()]


def test_album_shows_title_price_sale_and_brand_and_buttons_open_the_shop(fake, shop_bot, server):
    fake.send_photo(USER, server.images["1003.jpg"], width=60, height=80)
    album = fake.wait_for("sendMediaGroup", chat_id=USER)[0]
    first = captions(album)[0].splitlines()
    assert first[0] == "#1 · Black Tshirts 1003" and first[1] == "₹999 (was ₹1,299)" and first[2] == "Acme · Black"
    assert first[3].startswith("Similarity 100%") and "(was" not in captions(album)[1]
    ids = [c.rsplit("id ", 1)[1] for c in captions(album)]
    assert captions(album)[1].splitlines()[1] == "₹1,299"
    buttons = fake.wait_for("sendPhoto", chat_id=USER)[0].params["reply_markup"]["inline_keyboard"]
    shop_row = next(row for row in buttons if row[0]["text"].startswith("🛒"))
    expected = [(f"🛒 {rank}", f"https://shop.example/p/{pid}") for rank, pid in enumerate(ids, 1) if pid != "1004"]
    assert [(b["text"], b["url"]) for b in shop_row] == expected


def test_a_sync_while_serving_is_picked_up_without_a_restart_and_drops_nothing(fake, shop_bot, shop_index,
                                                                             embedder, server):
    shop, index_dir = shop_index
    newcomer = draw_product("Black", "Jeans", size=(60, 80), seed=4242)
    photo = jpeg(newcomer)
    fake.send_photo(USER, photo, width=60, height=80)
    before = fake.wait_for("sendMediaGroup", chat_id=USER)[0]
    assert "id 5000" not in " ".join(captions(before))

    stop = threading.Event()
    others = []

    def keep_asking() -> None:  # other users' photos while the catalogue changes under them
        user = 1000
        while not stop.is_set():
            user += 1
            fake.send_photo(user, server.images["1001.jpg"], width=60, height=80)
            others.append(user)
            time.sleep(0.2)

    asker = threading.Thread(target=keep_asking)
    asker.start()
    shop.add("5000", newcomer, title="Black jeans 5000", price="2499.00 INR")
    del shop.products["1011"]
    report = sync_feed(index_dir, shop.feed(), embedder=embedder, options=BuildOptions(progress=False))
    assert report.added == 1 and report.removed == 1
    generation = Index.load(index_dir).manifest["generation"]
    deadline = time.monotonic() + 15
    while shop_bot.services.recommender.index.manifest["generation"] != generation:
        assert time.monotonic() < deadline, "the bot did not switch to the synced index"
        time.sleep(0.1)
    stop.set()
    asker.join()

    fake.send_photo(USER, photo, width=60, height=80)
    after = fake.wait_for("sendMediaGroup", count=2, chat_id=USER)[1]
    assert captions(after)[0].startswith("#1 · Black jeans 5000\n₹2,499")
    assert "id 1011" not in " ".join(captions(after))
    for user in others:  # every photo sent during the switch got its album
        fake.wait_for("sendMediaGroup", chat_id=user)

    fake.message(USER, text="/about", entities=[{"type": "bot_command", "offset": 0, "length": 6}])
    about = fake.wait_for("sendMessage", chat_id=USER)[-1].text
    assert about.startswith("Catalogue: 12 products; 20 photos; last synced ")


@pytest.mark.parametrize(("feed", "shown"), [
    ("1299.00 INR", "₹1,299"), ("19.90 EUR", "€19.90"), ("USD 5.5", "$5.50"), ("12000 JPY", "¥12,000"),
    ("15.00 CHF", "CHF\xa015"), ("49.99 PLN", "PLN\xa049.99"), ("ask in store", "ask in store"), ("12.5", "12.5"),
])
def test_prices_read_the_way_shoppers_write_them(feed, shown):
    assert shopper_price(feed, language("en")) == shown


def test_caption_words_filter_a_feed_catalogue_by_its_own_spellings():
    found = Vocabulary({"gender": ["male", "female", "unisex"], "color": ["Red", "Navy Blue"]}).find("ladies navy blue")
    assert found.filters == {"gender": ["female"], "color": ["Navy Blue"]}
