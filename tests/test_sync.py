"""Indexes built from a feed served on loopback: several photos per product, stock, variants, bad links, sync."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from indexing import Index, load_image
from indexing.sources.download import ImageCache
from indexing.sources.options import BuildOptions
from indexing.sources.sync import build_from_feed, sync_feed
from testbed.drawing import draw_product
from testbed.feed_server import FeedServer
from testbed.shop import generated_shop, jpeg


def quick_cache(folder) -> ImageCache:
    """Short timeouts, one retry: the failure cases take seconds, not minutes."""
    return ImageCache(folder / "feed-images", timeout=1.0, retries=1)


def build(shop, out, embedder, overwrite=False):
    return build_from_feed(shop.feed(), out, embedder=embedder,
                           options=BuildOptions(export=False, progress=False, overwrite=overwrite))


def test_every_photo_is_embedded_and_results_are_products_shown_by_the_photo_that_matched(server, embedder,
                                                                                         tmp_path):
    shop = generated_shop(server, 12, extra_every=3)  # products 1000, 1003, 1006, 1009 have 3 photos
    report = build(shop, tmp_path / "idx", embedder)
    index = Index.load(tmp_path / "idx")
    assert report.counts()["added"] == 12 and report.embedded == 12 + 4 * 2
    assert index.product_count == 12 and index.count == 20
    mirrored = server.images["1003-2.jpg"]  # the second photo of product 1003
    hits = index.search(embedder.embed(load_image(mirrored)[None])[0], 5)
    assert [h.id for h in hits].count("1003") == 1 and hits[0].id == "1003"
    assert index.hit_path(hits[0]).read_bytes() == mirrored
    assert hits[0].meta["price"] == "1299.00 INR" and hits[0].meta["link"] == "https://shop.example/p/1003"


def test_out_of_stock_products_are_never_shown_and_a_restock_embeds_nothing(server, embedder, tmp_path):
    shop = generated_shop(server, 8)
    shop.products["1002"].attributes["availability"] = "out_of_stock"
    build(shop, tmp_path / "idx", embedder)
    index = Index.load(tmp_path / "idx")
    query = index.vector("1002")
    assert "1002" in index and "1002" not in [h.id for h in index.search(query, 8)]
    shop.products["1002"].attributes["availability"] = "in stock"
    report = sync_feed(tmp_path / "idx", shop.feed(), embedder=embedder, options=BuildOptions(progress=False))
    assert report.counts() == {"added": 0, "removed": 0, "updated": 1, "embedded": 0, "unchanged": 7, "failed": 0}
    assert Index.load(tmp_path / "idx").search(query, 1)[0].id == "1002"


def test_variants_of_one_item_group_collapse_to_the_best(server, embedder, tmp_path):
    shop = generated_shop(server, 6)
    for pid in ("1000", "1001", "1002"):
        shop.products[pid].attributes["item_group_id"] = "SHIRT"
    build(shop, tmp_path / "idx", embedder)
    index = Index.load(tmp_path / "idx")
    hits = index.search(index.vector("1001"), 6)
    assert hits[0].id == "1001" and not {"1000", "1002"} & {h.id for h in hits}
    assert len(hits) == 4  # 6 products, 3 of them one group


def test_bad_links_are_reported_and_skipped_and_the_rest_is_indexed(server, embedder, tmp_path):
    shop = generated_shop(server, 4, extra_every=99)
    server.images["flaky"] = jpeg(draw_product("Green", "Jeans", seed=9))
    bad = {"2001": "/broken", "2002": "/slow", "2003": "/html", "2004": "/huge", "2005": "/loop",
           "2006": "/flaky", "2007": "file:///etc/passwd"}
    for pid, path in bad.items():
        shop.add(pid, draw_product("Red", "Shoes", seed=int(pid))).photos = [path if ":" in path else server.url + path]
    report = build_from_feed(shop.feed(), tmp_path / "idx", embedder=embedder, cache=quick_cache(tmp_path / "idx"),
                             options=BuildOptions(export=False, progress=False))
    reasons = dict(report.failures)
    assert sorted(report.without_image) == ["2001", "2002", "2003", "2004", "2005", "2007"]
    assert "HTTP 404" in reasons["2001"] and "gave up after 2 tries" in reasons["2002"]
    assert "not an image" in reasons["2003"] and "text/html" not in reasons["2003"]  # sniffed, not trusted
    assert "over the" in reasons["2004"] and "redirect" in reasons["2005"] and "only http" in reasons["2007"]
    index = Index.load(tmp_path / "idx")
    assert sorted(set(index.ids)) == ["1000", "1001", "1002", "1003", "2006"]  # flaky: retried, then fine
    assert report.failed == 6 and not list((tmp_path / "idx").glob("../*.tmp"))


def test_one_sync_applies_exactly_what_changed_in_the_feed(server, embedder, tmp_path):
    shop = generated_shop(server, 30, extra_every=4)
    build(shop, tmp_path / "idx", embedder)
    before = server.downloads()
    for pid in [str(1000 + i) for i in range(5)]:
        del shop.products[pid]
    for i in range(5):
        shop.add(str(3000 + i), draw_product("Black", "Shoes", seed=3000 + i))
    changed = [str(1005 + i) for i in range(3)]
    for i, pid in enumerate(changed):
        shop.replace_photo(pid, draw_product("Yellow", "Watches", seed=500 + i))
    for pid in [str(1010 + i) for i in range(10)]:
        shop.products[pid].attributes["price"] = "999.00 INR"
    report = sync_feed(tmp_path / "idx", shop.feed(), embedder=embedder, options=BuildOptions(progress=False))
    assert report.counts() == {"added": 5, "removed": 5, "updated": 13, "embedded": 8, "unchanged": 12,
                               "failed": 0}
    assert server.downloads() - before == 8  # the rest answered 304 Not Modified
    index = Index.load(tmp_path / "idx")
    assert index.product_count == 30 and "1000" not in index and "3004" in index
    assert index.product("1015")["meta"]["price"] == "999.00 INR"
    new_photo = embedder.embed(load_image(server.images["1006.jpg"])[None])[0]
    assert index.search(new_photo, 1)[0].id == "1006"
    assert np.allclose(index.vector("1006"), new_photo, atol=1e-5)


def test_a_feed_that_turns_bad_loses_nothing(server, embedder, tmp_path):
    shop = generated_shop(server, 6)
    build(shop, tmp_path / "idx", embedder)
    manifest = (tmp_path / "idx" / "manifest.json").read_bytes()
    photo = server.image_url("1000.jpg")  # never fetched: the feed is refused first
    server.feeds["tsv"] = f"id\ttitle\timage_link\n1000\tShirt\t{photo}\n1000\tCoat\t{photo}\n".encode()
    with pytest.raises(Exception, match="row 3: duplicate id '1000'"):
        sync_feed(tmp_path / "idx", f"{server.url}/feed.tsv", embedder=embedder, options=BuildOptions(progress=False))
    assert (tmp_path / "idx" / "manifest.json").read_bytes() == manifest
    assert Index.load(tmp_path / "idx").product_count == 6


def test_query_json_hits_carry_the_feed_attributes(server, embedder, tmp_path, capsys):
    from indexing.cli import main

    shop = generated_shop(server, 6)
    build_from_feed(shop.feed(), tmp_path / "idx", embedder=embedder, options=BuildOptions(progress=False))
    (tmp_path / "photo.jpg").write_bytes(server.images["1002.jpg"])
    assert main(["query", "--index", str(tmp_path / "idx"), str(tmp_path / "photo.jpg"), "--json", "-k", "2"]) == 0
    first = json.loads(capsys.readouterr().out)[0]
    assert first["id"] == "1002" and first["price"] == "1299.00 INR" and first["title"] == "Green Tshirts 1002"
    assert first["link"] == "https://shop.example/p/1002" and first["image"].startswith("feed-images/")


def test_nothing_is_written_outside_the_index_folder_whatever_ids_and_urls_hold(server, embedder, tmp_path):
    shop = generated_shop(server, 3)
    evil = shop.add("../../../escaped", draw_product("Red", "Shoes", seed=3))
    server.images["evil.jpg"] = server.images.pop(evil.photos[0])
    evil.photos = [f"{server.url}/img/evil.jpg?save-as=../../../etc/passwd"]
    (tmp_path / "idx").mkdir()
    before = {p for p in tmp_path.rglob("*")}
    build(shop, tmp_path / "idx", embedder, overwrite=True)
    written = {p for p in tmp_path.rglob("*")} - before
    assert written and all((tmp_path / "idx") in p.parents for p in written)
    assert "../../../escaped" in Index.load(tmp_path / "idx")


def test_a_feed_build_publishes_the_products_fetched_so_far_for_a_bot_to_serve(server, embedder, tmp_path):
    shop = generated_shop(server, 30, extra_every=99)  # 1000 has three photos, the others one: 32 photos
    seen = []

    def look(done: int) -> None:
        if (tmp_path / "idx" / "manifest.json").exists():
            index = Index.load(tmp_path / "idx")
            seen.append((index.product_count, index.manifest.get("building")))

    options = BuildOptions(batch_size=4, checkpoint_every=4, export=False, progress=False, workers=1,
                           on_checkpoint=look)
    build_from_feed(shop.feed(), tmp_path / "idx", embedder=embedder, options=options)
    # Published at 4, 8 and 16 photos embedded (doubling): the products whose photos are all in, each
    # generation whole and searchable, while the build goes on.
    assert [count for count, _ in seen] == [2, 6, 6, 14, 14, 14, 14, 14]
    assert seen[-1][1] == {"done": 14, "total": 30}
    final = Index.load(tmp_path / "idx")
    assert final.product_count == 30 and "building" not in final.manifest
    vector = embedder.embed(load_image(shop.server.images[shop.products["1007"].photos[0]])[None])[0]
    assert final.search(vector, 1)[0].id == "1007"


def test_a_sync_asks_only_about_photos_whose_freshness_ran_out_and_recheck_asks_about_all(embedder, tmp_path):
    # Photos put up a month ago and served with no max-age, as a web server serves static files: fresh for a day.
    server = FeedServer(uploaded=time.time() - 30 * 86400).start()
    try:
        shop = generated_shop(server, 10)
        build(shop, tmp_path / "idx", embedder)
        asked = server.image_requests()
        shop.replace_photo("1004", draw_product("Yellow", "Watches", seed=77))
        shop.add("3000", draw_product("Black", "Shoes", seed=3000))
        report = sync_feed(tmp_path / "idx", shop.feed(), embedder=embedder, options=BuildOptions(progress=False))
        assert server.image_requests() - asked == 1  # the new product's photo only
        assert report.counts()["added"] == 1 and report.counts()["embedded"] == 1
        replaced = embedder.embed(load_image(server.images["1004.jpg"])[None])[0]
        assert Index.load(tmp_path / "idx").search(replaced, 1)[0].id != "1004"  # not seen yet: still fresh

        asked, downloaded = server.image_requests(), server.downloads()
        report = sync_feed(tmp_path / "idx", shop.feed(), embedder=embedder,
                           options=BuildOptions(progress=False, recheck=True))
        photos = sum(len(product.photos) for product in shop.products.values())
        assert server.image_requests() - asked == photos and server.downloads() - downloaded == 1  # the rest: 304
        assert report.counts()["updated"] == 1 and report.counts()["embedded"] == 1
        assert Index.load(tmp_path / "idx").search(replaced, 1)[0].id == "1004"
    finally:
        server.stop()
