"""The bot on photos of several garments: the first album for the most prominent one, the outlined photo,
and buttons that search another item or the whole photo, also after a restart."""

from __future__ import annotations

import functools
import io
import json
import sqlite3
from pathlib import Path

import numpy as np
from PIL import Image

from indexing import Index, open_embedder
from indexing.extract.images import load_image, open_photo
from indexing.finder.background import BorderFinder
from indexing.finder.items import Item, box_iou, item_pixels
from indexing.finder.scda import ScdaFinder
from indexing.finder.screens import ScreenFinder
from testbed.composites import plain, sample_photo
from testbed.screenshots import screenshot
from tests.test_bot import album_ids, said
from tests.test_items import generated_flatlay, jpeg
from tests.test_screens import products

USER = 5151


@functools.cache
def flatlay_photo() -> bytes:
    return jpeg(generated_flatlay().image)


def expected(index_dir, embedder, data: bytes, item: int | None) -> list[str]:
    """The ids the bot should show first: the search of one item's cut-out (None: of the whole photo)."""
    image, size = open_photo(data)
    finder = BorderFinder()
    finding = finder.find(image, size)
    pixels = load_image(data) if item is None else item_pixels(image, finder.refine(image, finding, item).as_kept(),
                                                               size)
    return search(index_dir, embedder, pixels)


def search(index_dir, embedder, pixels: np.ndarray) -> list[str]:
    return [h.id for h in Index.load(index_dir).search(embedder.embed(pixels[None])[0], 5)]


def outlined(state: Path, data: bytes, n: int) -> np.ndarray:
    """Item n as the outlined photo showed it, cut out of the photo sent: what a tap must search."""
    with sqlite3.connect(state / "state.sqlite3") as db:
        (items,) = db.execute("SELECT items FROM looks ORDER BY created DESC LIMIT 1").fetchone()
    image, size = open_photo(data)
    return item_pixels(image, Item.from_record(json.loads(items)[n]), size)


def buttons(message) -> dict[str, str]:
    return {b["text"]: b.get("callback_data") or b.get("url") for row in message["reply_markup"]["inline_keyboard"]
            for b in row}


def test_flatlay_gets_the_first_item_then_its_outlined_photo_with_item_buttons(fake, bot, exported_index, embedder):
    message = fake.send_photo(USER, flatlay_photo(), width=1280, height=960)
    album = fake.wait_for("sendMediaGroup", chat_id=USER)[0]
    outline = fake.wait_for("sendPhoto", chat_id=USER)[0]
    assert album.at <= outline.at  # the album did not wait for the outlines
    # The smallest size Telegram offered that serves the finder: 800x600, not the 1280x960 original.
    download = fake.seen("download")[0].params["file_id"]
    chosen = next(s for s in message["photo"] if s["file_id"] == download)
    assert (chosen["width"], chosen["height"]) == (800, 600)
    data = fake.files[download]
    assert album_ids(album) == expected(exported_index, embedder, data, 0)
    assert said(outline.response).startswith("Top 5 matches for 1 Item (highlighted)")
    keys = buttons(outline.response)
    assert {"▸ 1 Item", "2 Item", "3 Item", "Whole photo"} <= set(keys) and "Show 5 more ▶" in keys
    picture = Image.open(io.BytesIO(outline.files["photo"]))
    assert picture.format == "JPEG" and max(picture.size) <= 480 and picture.size[0] > picture.size[1]


def test_item_and_whole_photo_buttons_search_that_area_and_paging_works(
        fake, bot, exported_index, embedder, tmp_path):
    fake.send_photo(USER, flatlay_photo(), width=1280, height=960)
    outline = fake.wait_for("sendPhoto", chat_id=USER)[0].response
    data = fake.files[fake.seen("download")[0].params["file_id"]]
    fake.press(USER, outline, buttons(outline)["2 Item"])
    albums = fake.wait_for("sendMediaGroup", count=2, chat_id=USER)
    assert album_ids(albums[1]) == search(exported_index, embedder, outlined(tmp_path / "state", data, 1))
    second = fake.wait_for("sendPhoto", count=2, chat_id=USER)[1].response
    assert said(second).startswith("Top 5 matches for 2 Item") and "▸ 2 Item" in buttons(second)
    fake.press(USER, second, buttons(second)["Show 5 more ▶"])
    albums = fake.wait_for("sendMediaGroup", count=3, chat_id=USER)
    assert not set(album_ids(albums[2])) & set(album_ids(albums[1]))
    fake.press(USER, second, buttons(second)["Whole photo"])
    albums = fake.wait_for("sendMediaGroup", count=4, chat_id=USER)
    assert album_ids(albums[3]) == expected(exported_index, embedder, data, None)
    fake.press(USER, second, buttons(second)["🔎 #1"])
    albums = fake.wait_for("sendMediaGroup", count=5, chat_id=USER)
    assert said(fake.wait_for("sendMessage", chat_id=USER)[0].response).startswith("More like #1")


def test_item_buttons_keep_working_after_a_restart_even_before_the_items_were_embedded(
        fake, start_bot, exported_index, embedder, tmp_path):
    first = start_bot()
    fake.send_photo(USER, flatlay_photo(), width=1280, height=960)
    outline = fake.wait_for("sendPhoto", chat_id=USER)[0].response
    data = fake.files[fake.seen("download")[0].params["file_id"]]
    first.stop()
    with sqlite3.connect(tmp_path / "state" / "state.sqlite3") as db:  # as if the bot died at once
        db.execute("DELETE FROM look_vectors")
    start_bot()
    fake.press(USER, outline, buttons(outline)["3 Item"])
    albums = fake.wait_for("sendMediaGroup", count=2, chat_id=USER)
    assert album_ids(albums[1]) == search(exported_index, embedder, outlined(tmp_path / "state", data, 2))
    assert len(fake.seen("getFile")) == 2  # the photo was fetched again from Telegram


def test_photo_where_nothing_stands_out_is_searched_whole_and_says_so(fake, bot, exported_index, embedder):
    empty = Image.fromarray(plain((1280, 960), np.random.default_rng(1)).clip(0, 255).astype(np.uint8))
    fake.send_photo(USER, jpeg(empty), width=1280, height=960)
    album = fake.wait_for("sendMediaGroup", chat_id=USER)[0]
    data = fake.files[fake.seen("download")[0].params["file_id"]]
    assert album_ids(album) == expected(exported_index, embedder, data, None)
    text = said(fake.wait_for("sendPhoto", chat_id=USER)[0].response)
    assert text.startswith("Top 5 matches for the whole photo") and "cropped to one garment" in text


def test_with_item_finder_scda_the_models_own_map_picks_the_item_searched_first(
        fake, start_bot, exported_index, embedder):
    start_bot(item_finder="scda")
    fake.send_photo(USER, flatlay_photo(), width=1280, height=960)
    album = fake.wait_for("sendMediaGroup", chat_id=USER)[0]
    data = fake.files[fake.seen("download")[0].params["file_id"]]
    image, size = open_photo(data)
    finder = ScdaFinder(open_embedder(Index.load(exported_index)))
    finding = finder.find(image, size, busy_cues=False)
    first = item_pixels(image, finder.refine(image, finding, 0).as_kept(), size)
    assert album_ids(album) == [h.id for h in Index.load(exported_index).search(embedder.embed(first[None])[0], 5)]
    outline = fake.wait_for("sendPhoto", chat_id=USER)[0].response
    assert said(outline).startswith("Top 5 matches for 1 Item (highlighted)") and "2 Item" in buttons(outline)
    fake.press(USER, outline, buttons(outline)["2 Item"])
    assert len(fake.wait_for("sendMediaGroup", count=2, chat_id=USER)) == 2


def test_a_person_gets_the_garment_searched_and_buttons_named_after_what_they_hold(
        fake, bot, exported_index, embedder, tmp_path):
    astronaut = sample_photo("astronaut").resize((960, 960))
    fake.send_photo(USER, jpeg(astronaut), width=960, height=960)
    album = fake.wait_for("sendMediaGroup", chat_id=USER)[0]
    data = fake.files[fake.seen("download")[0].params["file_id"]]
    outline = fake.wait_for("sendPhoto", chat_id=USER)[0].response
    # The test catalogue is drawn packshots, not model shots: her top is searched first, not the whole outfit.
    assert said(outline).startswith("Top 5 matches for 2 Top (highlighted)")
    keys = buttons(outline)
    assert {"1 Outfit", "▸ 2 Top", "Whole photo"} <= set(keys)
    assert album_ids(album) == search(exported_index, embedder, outlined(tmp_path / "state", data, 1))
    fake.press(USER, outline, keys["1 Outfit"])
    albums = fake.wait_for("sendMediaGroup", count=2, chat_id=USER)
    assert album_ids(albums[1]) == search(exported_index, embedder, outlined(tmp_path / "state", data, 0))


def test_a_screenshot_gets_its_product_photo_searched_as_cut_from_the_screen(
        fake, bot, exported_index, embedder):
    shot = screenshot(products(1), np.random.default_rng(1), "shop", "light")
    fake.send_photo(USER, jpeg(shot.image), width=591, height=1280)
    album = fake.wait_for("sendMediaGroup", chat_id=USER)[0]
    data = fake.files[fake.seen("download")[0].params["file_id"]]
    image, size = open_photo(data)
    finding = ScreenFinder(BorderFinder()).find(image, size)
    assert box_iou(finding.items[0].box, shot.box) >= 0.5
    assert album_ids(album) == search(exported_index, embedder, item_pixels(image, finding.items[0], size))
    keys = buttons(fake.wait_for("sendPhoto", chat_id=USER)[0].response)
    assert "▸ 1 Photo" in keys and "2 Photo" in keys  # the row of other products, offered after it
