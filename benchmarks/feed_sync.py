"""Feeds on loopback: a 2,000-product build from a feed against the same photos in a folder, and a sync of the
unchanged feed. Both builds embed with the same ONNX export, so the difference is the feed's own cost."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.common import DATASET
from indexing import KerasEmbedder, Weights, build_index
from indexing.extract.exported import OnnxEmbedder, export_onnx
from indexing.sources.options import BuildOptions
from indexing.sources.sync import build_from_feed, sync_feed
from testbed.feed_server import FeedServer
from testbed.shop import catalogue_shop


def bench_feed(products: int = 2000) -> dict:
    reference = KerasEmbedder(Weights("random", 0))
    server = FeedServer().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            onnx = Path(tmp) / "extractor.onnx"
            export_onnx(reference, onnx)
            runner = OnnxEmbedder(onnx, reference.fingerprint)
            shop = catalogue_shop(server, DATASET, products, extra_every=products + 1)  # one photo each
            folder = Path(tmp) / "photos"
            folder.mkdir()
            for name, data in server.images.items():
                (folder / name).write_bytes(data)
            runner.embed(np.zeros((8, 224, 224, 3), np.uint8))  # warm up before timing

            started = time.perf_counter()
            built = build_index([folder], Path(tmp) / "from-folder", embedder=runner,
                                options=BuildOptions(export=False, progress=False, publish=False))
            folder_seconds = time.perf_counter() - started

            feed = shop.feed()
            started = time.perf_counter()
            report = build_from_feed(feed, Path(tmp) / "from-feed", embedder=runner,
                                     options=BuildOptions(export=False, progress=False))
            feed_seconds = time.perf_counter() - started
            downloads = server.downloads()

            started = time.perf_counter()
            synced = sync_feed(Path(tmp) / "from-feed", feed, embedder=runner, options=BuildOptions(progress=False))
            sync_seconds = time.perf_counter() - started
    finally:
        server.stop()
    folder_rate = built.indexed / folder_seconds
    feed_rate = report.products / feed_seconds
    return {
        "products": products,
        "photos": downloads,
        "runtime": runner.runtime,
        "folder_build_s": round(folder_seconds, 1),
        "folder_products_per_s": round(folder_rate, 2),
        "feed_build_s": round(feed_seconds, 1),
        "feed_products_per_s": round(feed_rate, 2),
        "feed_rate_vs_folder": round(feed_rate / folder_rate, 3),
        "unchanged_sync_s": round(sync_seconds, 1),
        "unchanged_sync": synced.counts(),
        "image_downloads_during_sync": server.downloads() - downloads,
    }


def run(argv: Sequence[str]) -> dict:
    argparse.ArgumentParser(prog="python -m benchmarks feed", description=__doc__).parse_args(argv)
    return {"feed": bench_feed()}
