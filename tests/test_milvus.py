"""The catalogue in Milvus Lite (the real engine, embedded): same results as the folder, add/remove/sync, safety."""

from __future__ import annotations

import json

import numpy as np
import pytest

from indexing import Index, add_to_index, build_index, remove_from_index
from indexing.errors import FashionIndexError, IndexFormatError
from indexing.sources.options import BuildOptions
from indexing.sources.sync import build_from_feed, sync_feed
from indexing.store.milvus import client, index_settings, parse_store
from testbed.drawing import make_catalogue
from testbed.shop import generated_shop
from tests.test_bot import user_photo
from tests.test_operator import wait_for_health
from tests.test_stores import store_copy


@pytest.fixture
def milvus_index(tmp_path, catalogue, embedder):
    images, styles = catalogue
    build_index([images], tmp_path / "idx", metadata=styles, embedder=embedder,
                options=BuildOptions(export=False, progress=False, store=str(tmp_path / "catalogue.db")))
    return tmp_path / "idx"


def test_a_milvus_catalogue_answers_exactly_like_the_folder(milvus_index, built_index):
    there, here = Index.load(milvus_index), Index.load(built_index)
    assert there.manifest["store"]["collection"] == "fashion" and not list(milvus_index.glob("vectors-*.npy"))
    assert there.count == here.count == 24 and there.facets() == here.facets()
    for pid in ("1000", "1007", "1013"):
        query = here.vector(pid)
        for options in ({}, {"filters": {"gender": ["Men"]}, "exclude": ["1002"]}):
            a = [(h.id, round(h.score, 4)) for h in there.search(query, 5, **options)]
            b = [(h.id, round(h.score, 4)) for h in here.search(query, 5, **options)]
            assert a == b and len(a) == 5
    assert np.allclose(there.vector("1013"), here.vector("1013"))


def test_add_and_remove_change_the_collection_in_place(milvus_index, tmp_path, embedder):
    more = tmp_path / "more"
    make_catalogue(more, count=3, start_id=5000)
    add_to_index(milvus_index, [more], embedder=embedder, progress=False)
    remove_from_index(milvus_index, ["1003"])
    index = Index.load(milvus_index)
    assert index.count == 26 and "5002" in index and "1003" not in index
    assert client(index.manifest["store"]["uri"]).list_collections() == ["fashion_g1"]  # no collection rewritten


def test_a_feed_syncs_into_milvus(server, embedder, tmp_path):
    shop = generated_shop(server, 8, extra_every=4)
    shop.products["1002"].attributes["availability"] = "out_of_stock"
    build_from_feed(shop.feed(), tmp_path / "idx", embedder=embedder,
                    options=BuildOptions(export=False, progress=False, store=str(tmp_path / "shop.db")))
    shop.products["1001"].attributes["price"] = "1.00 INR"
    del shop.products["1007"]
    report = sync_feed(tmp_path / "idx", shop.feed(), embedder=embedder, options=BuildOptions(progress=False))
    assert report.counts() == {"added": 0, "removed": 1, "updated": 1, "embedded": 0, "unchanged": 6, "failed": 0}
    index = Index.load(tmp_path / "idx")
    assert index.product("1001")["meta"]["price"] == "1.00 INR" and index.product_count == 7
    shown = [h.id for h in index.search(index.vector("1002"), 7)]
    assert "1002" in index and "1002" not in shown and len(shown) == 6  # out of stock: kept, never shown
    assert [h.id for h in index.search(index.vector("1004"), 7, filters={"color": ["white"]}, exclude=["1004"])] == []


def test_a_collection_of_another_extractor_is_refused(milvus_index):
    manifest_file = milvus_index / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["extractor"]["weights"] = "random:9"
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="made by another extractor"):
        Index.load(milvus_index)


@pytest.mark.parametrize("spec", ["milvus://host/fashion", "catalogue.sqlite", "x.db#bad-name"])
def test_a_bad_store_is_one_clear_error(spec):
    with pytest.raises(FashionIndexError, match="--store"):
        parse_store(spec)


def test_milvus_gets_the_index_its_size_wants_unless_told():
    assert index_settings(99_999)["type"] == "FLAT" and index_settings(100_000) == {"type": "HNSW",
                                                                                    "search": {"ef": 128}}
    assert index_settings(10, "ivf_sq8:nprobe=16") == {"type": "IVF_SQ8", "search": {"nprobe": 16}}
    for bad in ("ANNOY", "HNSW:ef=lots", "HNSW:ef"):
        with pytest.raises(FashionIndexError, match="--milvus-index"):
            parse_store("catalogue.db", bad)


def test_an_hnsw_catalogue_answers_like_the_folder(tmp_path, catalogue, embedder, built_index):
    images, styles = catalogue
    build_index([images], tmp_path / "idx", metadata=styles, embedder=embedder,
                options=BuildOptions(export=False, progress=False, store=str(tmp_path / "c.db"),
                                     milvus_index="HNSW:ef=64"))
    there, here = Index.load(tmp_path / "idx"), Index.load(built_index)
    assert there.manifest["store"]["index"] == {"type": "HNSW", "search": {"ef": 64}}
    assert "approximate (HNSW, ef=64)" in there.store.describe()
    for pid in ("1001", "1017"):
        assert [h.id for h in there.search(here.vector(pid), 5)] == [h.id for h in here.search(here.vector(pid), 5)]


def test_a_bot_whose_milvus_is_down_says_so_and_answers_again_once_it_is_back(
        milvus, exported_index, start_bot, fake, tmp_path, caplog):
    """The users are told to come back in minutes (not "something went wrong"), the log has one line each, not a
    traceback, /healthz says why; once the server is back, the same bot answers with no restart."""
    stored = store_copy(Index.load(exported_index), tmp_path / "idx", milvus.spec.rsplit("/", 1)[0] + "/tdown")
    bot = start_bot(index_dir=stored)
    port = bot.services.settings.health_port
    assert wait_for_health(port, "ok", timeout=90)["products"] == 24
    milvus.process.terminate()
    milvus.process.wait(30)

    fake.send_photo(701, user_photo(), width=480, height=600)
    told = fake.wait_for("sendMessage", chat_id=701, timeout=120)[0]
    assert told.text == "The catalogue can't be searched right now. Please try again in a few minutes."
    down = wait_for_health(port, "degraded", timeout=90)
    assert "search: the catalogue cannot be searched" in down["reason"] and "Milvus" in down["reason"]
    assert not [r for r in caplog.records if r.name == "bot.fallbacks" and r.exc_info]
    assert any("the catalogue cannot be searched" in r.getMessage() for r in caplog.records
               if r.name == "bot.fallbacks" and r.levelname == "WARNING")

    milvus.start()
    assert wait_for_health(port, "ok", timeout=90)["products"] == 24
    fake.send_photo(702, user_photo(), width=480, height=600)
    assert len(fake.wait_for("sendMediaGroup", chat_id=702, timeout=120)[0].album()) == 5
