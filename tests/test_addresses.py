"""Feeds and photos are fetched from public addresses only, after every redirect and for the address connected,
unless FEED_ALLOWED_NETWORKS allows a network deliberately; a refusal is one line, in the sync report too."""

from __future__ import annotations

import urllib.parse

import pytest

from indexing.errors import DownloadError, FeedError
from indexing.sources.addresses import allowed_networks, refusal
from indexing.sources.download import ImageCache
from indexing.sources.feeds import read_feed
from indexing.sources.options import BuildOptions
from indexing.sources.sync import build_from_feed
from testbed.drawing import draw_product
from testbed.shop import Shop, jpeg


@pytest.mark.parametrize("address, why", [
    ("127.0.0.1", "a loopback address"), ("::1", "a loopback address"), ("10.1.2.3", "a private address"),
    ("172.16.0.9", "a private address"), ("192.168.1.1", "a private address"), ("fd12::1", "a private address"),
    ("169.254.169.254", "a cloud metadata address"), ("fe80::1", "a link-local address"),
    ("::ffff:127.0.0.1", "a loopback address"), ("100.64.0.1", "not a public address"),
    ("0.0.0.0", "an unspecified address"), ("224.0.0.1", "a multicast address"), ("8.8.8.8", None),
    ("2606:4700::1111", None)])
def test_which_addresses_are_refused(address, why):
    assert refusal(address) == why


def test_an_allowed_network_is_fetched_from_and_nothing_else_near_it():
    allowed = allowed_networks({"FEED_ALLOWED_NETWORKS": "10.0.0.0/8, 127.0.0.1"})
    assert refusal("10.9.9.9", allowed) is None and refusal("127.0.0.1", allowed) is None
    assert refusal("127.0.0.2", allowed) == "a loopback address"
    with pytest.raises(FeedError, match="not an address or a network"):
        allowed_networks({"FEED_ALLOWED_NETWORKS": "the office"})


def test_a_redirect_or_a_name_to_a_refused_address_is_refused(server, tmp_path, monkeypatch):
    monkeypatch.setenv("FEED_ALLOWED_NETWORKS", "127.0.0.1/32")  # this server only, not the rest of loopback
    server.images["ok.jpg"] = jpeg(draw_product("Red", "Shoes", seed=1))
    cache = ImageCache(tmp_path / "cache", timeout=2, retries=0)
    try:
        assert cache.fetch(server.image_url("ok.jpg")).file.is_file()
        elsewhere = f"http://127.0.0.2:{server.url.rsplit(':', 1)[1]}/img/ok.jpg"
        with pytest.raises(DownloadError, match=r"refused, 127\.0\.0\.2 is a loopback address"):
            cache.fetch(f"{server.url}/away?to={urllib.parse.quote(elsewhere)}")
        monkeypatch.setenv("FEED_ALLOWED_NETWORKS", "")
        fresh = ImageCache(tmp_path / "fresh", timeout=2, retries=0)
        with pytest.raises(DownloadError, match=r"localhost: refused, 127\.0\.0\.1 is a loopback address"):
            fresh.fetch(server.image_url("ok.jpg").replace("127.0.0.1", "localhost"))
        with pytest.raises(FeedError, match=r"cannot fetch the feed: .*refused"):
            read_feed(f"{server.url}/feed.tsv")
        fresh.close()
    finally:
        cache.close()


def test_a_photo_at_the_metadata_address_is_named_in_the_sync_report(server, embedder, tmp_path):
    shop = Shop(server)
    shop.add("1", draw_product("Blue", "Jeans", seed=2))
    shop.add("2", draw_product("Red", "Shoes", seed=3))
    shop.products["2"].photos = ["http://169.254.169.254/latest/meta-data/iam/photo.jpg"]
    report = build_from_feed(shop.feed(), tmp_path / "idx", embedder=embedder,
                             options=BuildOptions(export=False, progress=False))
    assert report.added == 1
    (failure,) = report.failures
    assert failure[0] == "2" and "169.254.169.254 is a cloud metadata address" in failure[1]
