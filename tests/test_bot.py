"""The real bot Application against the fake Bot API on loopback, with the real model (random weights)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from PIL import Image

from bot import fallbacks, guards, photos
from bot.results import EXPIRED
from indexing import Index
from indexing.extract.images import encode, load_image
from testbed.drawing import draw_product
from testbed.fake_telegram import FakeTelegram, Fault

USER = 4242
REPLY = ("sendMessage", "sendPhoto")  # text replies, and the buttons message on the user's outlined photo


def jpeg(image: Image.Image, fmt: str = "JPEG") -> bytes:
    return encode(image, fmt, quality=75)  # Pillow's default quality, which these tests were written with


def user_photo(colour: str = "Blue", shape: str = "Jeans", seed: int = 1) -> bytes:
    """A 'phone photo': bigger than the catalogue's, another aspect ratio, its own noise."""
    return jpeg(draw_product(colour, shape, size=(480, 600), seed=seed))


def expected_ids(index_dir, embedder, photo: bytes, k: int = 5, **search) -> list[str]:
    index = Index.load(index_dir)
    return [h.id for h in index.search(embedder.embed(load_image(photo)[None])[0], k, **search)]


def album_ids(request) -> list[str]:
    return [item["caption"].rsplit("id ", 1)[1] for item in request.album()]


def replies(fake: FakeTelegram, chat: int) -> list[str]:
    return [r.text for r in fake.seen(REPLY, chat)]


def test_photo_gets_an_album_of_five_in_rank_order_then_the_keyboard(fake, bot, exported_index, embedder):
    photo = user_photo()
    fake.send_photo(USER, photo, width=480, height=600)
    album = fake.wait_for("sendMediaGroup", chat_id=USER)[0]
    keyboard = fake.wait_for(REPLY, chat_id=USER)[0]
    methods = [r.method for r in fake.seen() if r.method not in ("getMe", "deleteWebhook")]
    assert sorted(methods[:2]) == ["getFile", "sendChatAction"]  # sent together
    assert methods[2:] == ["download", "sendMediaGroup", "sendPhoto"]
    assert fake.seen("sendChatAction")[0].params["action"] == "upload_photo"

    ids = expected_ids(exported_index, embedder, photo)
    index = Index.load(exported_index)
    items = album.album()
    assert album_ids(album) == ids
    for rank, (item, pid) in enumerate(zip(items, ids, strict=True), 1):
        assert item["upload"] == index.image_path(pid).read_bytes()  # the right photo, in rank order
        meta = index.product(pid)["meta"]
        name, details, score = item["caption"].split("\n")
        assert name == f"#{rank} · {meta['productDisplayName']}"
        assert details == f"{meta['articleType']} · {meta['baseColour']} · {meta['gender']}"
        assert score.startswith("Similarity ") and "%" in score
    buttons = keyboard.params["reply_markup"]["inline_keyboard"]
    assert [b["text"] for b in buttons[0]] == [f"🔎 #{i}" for i in range(1, 6)]
    assert [b["text"] for b in buttons[1]] == [f"♡ #{i}" for i in range(1, 6)]
    assert buttons[2][0]["text"] == "Show 5 more ▶"
    assert [b["text"] for b in buttons[3]] == ["👍 Helpful", "👎 Not helpful"]
    assert keyboard.text.startswith("Top 5 matches")


def test_photo_of_a_catalogue_product_brings_it_back_first(fake, bot, catalogue):
    fake.send_photo(USER, (catalogue[0] / "1013.jpg").read_bytes(), width=60, height=80)
    album = fake.wait_for("sendMediaGroup", chat_id=USER)[0]
    assert album_ids(album)[0] == "1013"


def test_image_document_works_like_a_photo(fake, bot, exported_index, embedder):
    png = jpeg(draw_product("Green", "Watches", size=(500, 500), seed=3), "PNG")
    fake.send_document(USER, png, "watch.png", "image/png")
    album = fake.wait_for("sendMediaGroup", chat_id=USER)[0]
    assert album_ids(album) == expected_ids(exported_index, embedder, png)
    assert fake.wait_for(REPLY, chat_id=USER)[0].params["reply_markup"]


def test_heic_from_an_iphone_sent_as_a_file_gets_its_album(fake, bot, exported_index, embedder):
    heic = jpeg(draw_product("Blue", "Shoes", size=(480, 600), seed=8), "HEIF")
    fake.send_document(USER, heic, "IMG_0042.HEIC", "image/heic")
    album = fake.wait_for("sendMediaGroup", chat_id=USER)[0]
    assert album_ids(album) == expected_ids(exported_index, embedder, heic)


def test_second_album_of_the_same_products_uploads_nothing(fake, bot):
    photo = user_photo("Red", "Shoes")
    fake.send_photo(USER, photo)
    first = fake.wait_for("sendMediaGroup", chat_id=USER)[0]
    fake.send_photo(USER + 1, photo)
    second = fake.wait_for("sendMediaGroup", chat_id=USER + 1)[0]
    assert all(item["upload"] for item in first.album())
    assert not second.files and all(item["file_id"] for item in second.album())
    assert album_ids(first) == album_ids(second)


def keyboard_message(fake, chat, nth=0):
    return fake.wait_for(REPLY, count=nth + 1, chat_id=chat)[nth].response


def said(message) -> str:
    """What a message the bot sent says: its text, or its caption for a photo."""
    return message.get("text") or message.get("caption", "")


SHOW_MORE, FEEDBACK = 2, 3  # rows of the keyboard under an album: 🔎 #n, ♡ #n, "Show 5 more", 👍/👎


def callback_data(message, row, col=0):
    return message["reply_markup"]["inline_keyboard"][row][col]["callback_data"]


def test_more_like_number_three_searches_from_that_product(fake, bot, exported_index):
    fake.send_photo(USER, user_photo())
    first = album_ids(fake.wait_for("sendMediaGroup", chat_id=USER)[0])
    message = keyboard_message(fake, USER)
    fake.press(USER, message, callback_data(message, 0, 2))
    second = fake.wait_for("sendMediaGroup", count=2, chat_id=USER)[1]
    index = Index.load(exported_index)
    source = first[2]
    expected = [h.id for h in index.search(index.vector(source), 5, exclude=index.ids_with_photo(source))]
    assert album_ids(second) == expected and source not in album_ids(second)
    answered = fake.wait_for("answerCallbackQuery")[0]
    assert "more like #3" in answered.text
    assert said(keyboard_message(fake, USER, 1)).startswith("More like #3: ")


def test_show_more_pages_without_repeats(fake, bot):
    fake.send_photo(USER, user_photo())
    fake.wait_for("sendMediaGroup", chat_id=USER)
    message = keyboard_message(fake, USER)
    fake.press(USER, message, callback_data(message, SHOW_MORE))
    fake.wait_for("sendMediaGroup", count=2, chat_id=USER)
    page2 = keyboard_message(fake, USER, 1)
    assert said(page2).startswith("Matches 6–10")
    fake.press(USER, page2, callback_data(page2, SHOW_MORE))
    albums = fake.wait_for("sendMediaGroup", count=3, chat_id=USER)
    pages = [album_ids(a) for a in albums]
    shown = [pid for page in pages for pid in page]
    assert [len(p) for p in pages] == [5, 5, 5] and len(set(shown)) == 15


def test_caption_words_filter_the_results(fake, bot):
    fake.send_photo(USER, user_photo(), caption="something like this for men, in red")
    album = fake.wait_for("sendMediaGroup", chat_id=USER)[0]
    index = Index.load(bot.application.bot_data["settings"].index_dir)
    metas = [index.product(pid)["meta"] for pid in album_ids(album)]
    assert len(metas) == 4  # the catalogue has four red products for men
    assert all(m["gender"] == "Men" and m["baseColour"] == "Red" for m in metas)
    text = said(keyboard_message(fake, USER))
    assert "Filters from your caption: Men, Red." in text


def test_caption_filters_that_match_nothing_say_so(fake, bot):
    fake.send_photo(USER, user_photo(), caption="women red")  # every red product is for men
    text = fake.wait_for(REPLY, chat_id=USER)[0].text
    assert text.startswith("Nothing in the catalogue matches Women, Red")
    assert not fake.seen("sendMediaGroup")


@pytest.mark.parametrize(
    "send, reply",
    [
        (lambda f: f.message(USER, text="hello, what can you do?"), fallbacks.SEND_A_PHOTO),
        (lambda f: f.message(USER, sticker={"file_id": "st", "file_unique_id": "st", "width": 512, "height": 512,
                                            "is_animated": False, "is_video": False, "type": "regular"}),
         fallbacks.UNSUPPORTED),
        (lambda f: f.message(USER, voice={"file_id": "v", "file_unique_id": "v", "duration": 2}),
         fallbacks.UNSUPPORTED),
        (lambda f: f.message(USER, video={"file_id": "vi", "file_unique_id": "vi", "width": 640, "height": 480,
                                          "duration": 3}), fallbacks.UNSUPPORTED),
        (lambda f: f.send_document(USER, b"%PDF-1.4 ...", "catalogue.pdf", "application/pdf"), fallbacks.NOT_AN_IMAGE),
        (lambda f: f.send_document(USER, b"\xff\xd8", "huge.jpg", "image/jpeg", file_size=25 * 1024 * 1024),
         photos.TOO_BIG),
        (lambda f: f.send_document(USER, b"\xff\xd8", "big.jpg", "image/jpeg", stored_size=21 * 1024 * 1024),
         photos.TOO_BIG),
        (lambda f: f.send_photo(USER, b"\xff\xd8\xff\xe0 this is not really a jpeg"), photos.UNREADABLE),
        (lambda f: f.send_document(USER, b"GIF89a broken", "x.gif", "image/gif"), photos.UNREADABLE),
        (lambda f: f.send_photo(USER, b"\xff\xd8", width=10000, height=9000), photos.TOO_MANY_PIXELS),
        (lambda f: f.send_document(USER, jpeg(Image.new("1", (9000, 9000)), "PNG"), "bomb.png", "image/png"),
         photos.TOO_MANY_PIXELS),
        (lambda f: f.message(USER, text="/frobnicate", entities=[{"type": "bot_command", "offset": 0, "length": 11}]),
         fallbacks.UNKNOWN_COMMAND),
    ],
    ids=["text", "sticker", "voice", "video", "pdf", "over-20MB", "over-20MB-said-by-getFile",
         "corrupt-photo", "corrupt-gif", "huge-photo",
         "pixel-bomb", "unknown-command"],
)
def test_everything_else_gets_one_helpful_reply(fake, bot, send, reply):
    send(fake)
    assert fake.wait_for(REPLY, chat_id=USER)[0].text == reply
    time.sleep(0.3)
    assert replies(fake, USER) == [reply]
    assert not fake.seen("sendMediaGroup")
    if reply in (photos.TOO_BIG,):
        assert not fake.seen("download")


def test_commands(fake, start_bot):
    start_bot(admin_user_ids=frozenset({USER}))
    for answered, command in enumerate(("/start", "/help", "/about", "/stats"), start=1):
        fake.message(USER, text=command, entities=[{"type": "bot_command", "offset": 0, "length": len(command)}])
        fake.wait_for(REPLY, count=answered, chat_id=USER)
    fake.message(USER + 1, text="/stats", entities=[{"type": "bot_command", "offset": 0, "length": 6}])
    texts = [r.text for r in fake.wait_for(REPLY, count=4, chat_id=USER)]
    assert all("Send me a photo" in t for t in texts[:2]) and "women red" in texts[1]
    assert "Catalogue: 24 products" in texts[2] and "random:0" in texts[2] and "onnxruntime" in texts[2]
    assert texts[3].startswith("Queries served: 0")
    assert "for the bot's admins" in fake.wait_for(REPLY, chat_id=USER + 1)[0].text


def test_stats_count_queries(fake, start_bot):
    start_bot(admin_user_ids=frozenset({USER}))
    fake.send_photo(USER + 7, user_photo())
    fake.wait_for(REPLY, chat_id=USER + 7)
    fake.message(USER, text="/stats", entities=[{"type": "bot_command", "offset": 0, "length": 6}])
    text = fake.wait_for(REPLY, chat_id=USER)[0].text
    assert "Queries served: 1" in text and "Distinct users: 1" in text and "p50" in text


def test_429_is_honoured_then_the_album_arrives(fake, bot):
    fake.fail("sendMediaGroup", Fault(429, retry_after=1))
    fake.send_photo(USER, user_photo())
    tries = fake.wait_for("sendMediaGroup", count=2, chat_id=USER)
    assert tries[1].at - tries[0].at >= 0.95
    assert fake.wait_for(REPLY, chat_id=USER)[0].text.startswith("Top 5")


@pytest.mark.parametrize("fault", [Fault(500), Fault(502), Fault(200, stall=4.0)], ids=["500", "502", "timeout"])
def test_server_errors_and_timeouts_are_retried(fake, bot, fault):
    fake.fail("sendMediaGroup", fault)
    fake.send_photo(USER, user_photo())
    assert len(fake.wait_for("sendMediaGroup", count=2, chat_id=USER)) >= 2
    assert fake.wait_for(REPLY, chat_id=USER)[0].text.startswith("Top 5")
    fake.send_photo(USER + 1, user_photo("Red", "Shoes"))  # and the bot carries on
    assert fake.wait_for(REPLY, chat_id=USER + 1)[0].text.startswith("Top 5")


def test_an_api_that_keeps_failing_ends_in_an_apology_not_a_crash(fake, bot):
    fake.fail("sendMediaGroup", *[Fault(500)] * 4)
    fake.send_photo(USER, user_photo())
    assert fake.wait_for(REPLY, chat_id=USER)[0].text == fallbacks.SORRY
    fake.send_photo(USER, user_photo())
    assert fake.wait_for(REPLY, count=2, chat_id=USER)[1].text.startswith("Top 5")


def test_twenty_users_at_once_all_get_their_own_answer(fake, bot, exported_index, embedder):
    sent = {}
    colours, shapes = ["Red", "Blue", "Green", "Black", "Yellow"], ["Tshirts", "Shoes", "Watches", "Jeans"]
    for n in range(20):
        photo = user_photo(colours[n % 5], shapes[n % 4], seed=n)
        sent[1000 + n] = photo
    threads = [threading.Thread(target=fake.send_photo, args=(user, photo)) for user, photo in sent.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for user, photo in sent.items():
        albums = fake.wait_for("sendMediaGroup", chat_id=user, timeout=120)
        assert len(albums) == 1
        # Batched inference differs from a single image's in the last digits: near-ties may swap places.
        expected = expected_ids(exported_index, embedder, photo, k=8)
        assert album_ids(albums[0])[0] == expected[0] and set(album_ids(albums[0])) <= set(expected)
    assert len(fake.seen("sendMediaGroup")) == 20


def test_users_at_once_each_get_the_album_of_their_own_photo(fake, bot, exported_index, embedder):
    # Served together: one pass over the vectors, the model called in smaller batches; none may mix up.
    photos_sent = {user: user_photo(seed=user) for user in range(700, 711)}
    for user, photo in photos_sent.items():
        fake.send_photo(user, photo)
    for user, photo in photos_sent.items():
        album = fake.wait_for("sendMediaGroup", chat_id=user)[0]
        assert album_ids(album) == expected_ids(exported_index, embedder, photo)


def test_a_burst_beyond_the_queue_is_told_to_wait(fake, start_bot):
    start_bot(max_pending=1)
    users = range(500, 506)
    for user in users:
        fake.send_photo(user, user_photo(seed=user))
    answers = [fake.wait_for(REPLY, chat_id=user)[0].text for user in users]
    assert photos.BUSY in answers
    assert any(a.startswith("Top 5") for a in answers)


def test_restart_keeps_uploads_and_buttons(fake, start_bot):
    first = start_bot()
    fake.send_photo(USER, user_photo())
    fake.wait_for("sendMediaGroup", chat_id=USER)
    message = keyboard_message(fake, USER)
    first.stop()

    start_bot()
    fake.press(USER, message, callback_data(message, SHOW_MORE))  # "Show 5 more" from before the restart
    page2 = fake.wait_for("sendMediaGroup", count=2, chat_id=USER)[1]
    assert len(page2.album()) == 5
    fake.send_photo(USER + 1, user_photo())
    again = fake.wait_for("sendMediaGroup", chat_id=USER + 1)[0]
    assert not again.files  # the file_id cache survived the restart


def test_expired_or_unknown_buttons_get_a_polite_answer(fake, bot):
    message = {"message_id": 1, "date": 0, "chat": {"id": USER, "type": "private"}, "text": "old"}
    fake.press(USER, message, "more|0000000000|0")
    fake.press(USER, message, "like|0000000000|0|3")
    answers = fake.wait_for("answerCallbackQuery", count=2)
    assert all(a.text == EXPIRED for a in answers)
    assert not fake.seen(REPLY)


def test_feedback_is_appended_and_the_keyboard_updated(fake, bot, tmp_path):
    fake.send_photo(USER, user_photo())
    fake.wait_for("sendMediaGroup", chat_id=USER)
    message = keyboard_message(fake, USER)
    fake.press(USER, message, callback_data(message, FEEDBACK, 0))
    edit = fake.wait_for("editMessageReplyMarkup")[0]
    assert len(edit.params["reply_markup"]["inline_keyboard"]) == FEEDBACK  # the vote buttons are gone
    assert fake.wait_for("answerCallbackQuery")[0].text == "Thanks for the feedback!"
    lines = (tmp_path / "state" / "feedback.jsonl").read_text().splitlines()
    entry = json.loads(lines[0])
    assert entry["vote"] == "up" and entry["user"] == USER and len(entry["shown"]) == 5


def test_allowlist_is_checked_before_any_download(fake, start_bot):
    start_bot(allowed_user_ids=frozenset({USER}))
    fake.send_photo(USER + 5, user_photo())
    assert fake.wait_for(REPLY, chat_id=USER + 5)[0].text == guards.PRIVATE
    message = fake.send_photo(USER, user_photo())
    fake.wait_for("sendMediaGroup", chat_id=USER)
    fetched = [r.params["file_id"] for r in fake.seen("getFile")]
    assert len(fetched) == 1 and fetched[0] in {size["file_id"] for size in message["photo"]}


def test_rate_limit_answers_politely_once(fake, start_bot):
    start_bot(rate_limit_per_minute=2)
    for seed in range(4):
        fake.send_photo(USER, user_photo(seed=seed))
        time.sleep(0.2)
    fake.wait_for("sendMediaGroup", count=2, chat_id=USER)
    time.sleep(0.5)
    texts = replies(fake, USER)
    assert texts.count(guards.SLOW_DOWN) == 1 and len(fake.seen("getFile")) == 2


def test_an_unexpected_error_is_logged_and_the_user_told(fake, bot, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(bot.services.recommender, "recommend", broken)
    fake.send_photo(USER, user_photo())
    assert fake.wait_for(REPLY, chat_id=USER)[0].text == fallbacks.SORRY
    assert "disk on fire" in caplog.text


def test_a_catalogue_photo_missing_on_disk_is_left_out_and_logged(fake, bot, catalogue, monkeypatch, caplog):
    index = bot.services.recommender.index
    real = index.hit_path
    monkeypatch.setattr(index, "hit_path", lambda hit: catalogue[0] / "gone.jpg" if hit.id == "1013" else real(hit))
    fake.send_photo(USER, (catalogue[0] / "1013.jpg").read_bytes(), width=60, height=80)
    album = fake.wait_for("sendMediaGroup", chat_id=USER)[0]
    assert len(album.album()) == 4 and "1013" not in album_ids(album)
    assert fake.wait_for(REPLY, chat_id=USER)[0].text.startswith("Top 5")
    assert "catalogue photos missing on disk for products ['1013']" in caplog.text
