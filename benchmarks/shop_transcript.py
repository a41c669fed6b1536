"""One reply of the bot on a shop's feed, as the fake Bot API received it: captions with prices, 🛒 buttons; then
a photo of three of its products laid on a floor, whose outlined photo carries the item buttons.

    python -m benchmarks shop-transcript                 # writes benchmarks/results/shop-transcript.json
    python -m benchmarks shop-transcript --language ar   # the same user with an Arabic Telegram app
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.common import DATASET
from indexing import KerasEmbedder, Weights
from indexing.extract.images import encode
from indexing.sources.options import BuildOptions
from indexing.sources.sync import build_from_feed
from testbed.composites import flatlay, product_cutout
from testbed.fake_telegram import FakeTelegram
from testbed.feed_server import FeedServer
from testbed.harness import RunningBot, settings_for
from testbed.shop import catalogue_shop


def run(argv: Sequence[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks shop-transcript", description=__doc__)
    parser.add_argument("--language", default="en", help="the user's Telegram language_code")
    language = parser.parse_args(argv).language
    server, fake = FeedServer().start(), FakeTelegram().start()
    fake.language_codes[5] = language
    shop = catalogue_shop(server, DATASET, 60, extra_every=3)
    for n, product in enumerate(shop.products.values()):
        product.attributes.update(title=f"Catalogue product {product.id}", brand=("Acme", "Northwind")[n % 2],
                                  color=("Navy", "Red", "Black")[n % 3], price=f"{999 + 100 * n}.00 INR")
        if n % 4 == 0:
            product.attributes["sale_price"] = f"{799 + 100 * n}.00 INR"
    with tempfile.TemporaryDirectory() as tmp:
        build_from_feed(shop.feed(), Path(tmp) / "idx", embedder=KerasEmbedder(Weights("random", 0)),
                        options=BuildOptions(export=False, progress=False))
        bot = RunningBot(settings_for(fake, Path(tmp) / "idx", state_dir=Path(tmp) / "state",
                                      runtime="tensorflow", log_level="WARNING")).start()
        try:
            photo = server.images[next(iter(shop.products.values())).photos[0]]
            fake.send_photo(5, photo, width=60, height=80)
            album = fake.wait_for("sendMediaGroup", chat_id=5)[0]
            buttons = fake.wait_for("sendPhoto", chat_id=5)[0]
            laid = [(p.id, product_cutout(DATASET / "images" / f"{p.id}.jpg"))
                    for p in list(shop.products.values())[1:4]]
            fake.send_photo(5, encode(flatlay(laid, np.random.default_rng(3), surface="wood").image), width=1280,
                            height=960)
            outlined = fake.wait_for("sendPhoto", count=2, chat_id=5)[1]
        finally:
            bot.stop()
            fake.stop()
            server.stop()
    transcript = {
        "album_captions": [item["caption"] for item in album.album()],
        "buttons_caption": buttons.params.get("caption"),
        "keyboard": [[{k: b[k] for k in ("text", "url") if k in b} for b in row]
                     for row in buttons.params["reply_markup"]["inline_keyboard"]],
        "outlined_photo_caption": outlined.params.get("caption"),
        "outlined_photo_keyboard": [[b["text"] for b in row]
                                    for row in outlined.params["reply_markup"]["inline_keyboard"]],
        "note": "random weights: which products match says nothing about quality; the shape of the reply is the point",
    }
    return {"shop-transcript" if language == "en" else f"shop-transcript-{language}": transcript}

