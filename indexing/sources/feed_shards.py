"""One Nth of a product feed embedded into a shared Milvus collection, as indexing/sources/shards.py does for a
folder: N jobs each fetch and embed the photos of every Nth product; the last to finish commits the index.

The photos are kept in `OUT/feed-images`: give the jobs one `--out` on shared storage (or gather the folders
before serving), as a folder's shards need the same photos at serving time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from indexing.errors import BuildError, FashionIndexError
from indexing.extract.embedder import Embedder
from indexing.sources.build import Report
from indexing.sources.checkpoint import Checkpoint
from indexing.sources.download import FEED_IMAGES, ImageCache
from indexing.sources.feeds import MAX_FEED_BYTES, FeedProduct, read_feed
from indexing.sources.options import DEFAULTS, BuildOptions
from indexing.sources.reference import choose_reference, export_for_serving
from indexing.sources.shards import commit_shards
from indexing.sources.sync import (
    Outcome,
    PhotoVectors,
    SyncReport,
    assemble,
    fetch_and_embed,
    save_in_checkpoints,
    vectors_by_photo,
)
from indexing.store.files import now
from indexing.store.milvus import create_generation, index_settings, mark_shard, parse_store, upsert_rows


def build_feed_shard(feed: str | Path, out: str | Path, shard: tuple[int, int], *,
                     columns: Mapping[str, str] | None = None, embedder: Embedder | None = None,
                     options: BuildOptions = DEFAULTS) -> Report:
    """Fetch and embed the photos of the products at positions i-1, i-1+n, ... of the feed into generation 1
    of options.store; the job that finds every shard done commits the index at out."""
    started = time.monotonic()
    if not options.store:
        raise FashionIndexError("a sharded build needs a Milvus store: the collection the shards fill")
    out, (i, n), milvus = Path(out), shard, parse_store(options.store, options.milvus_index)
    products = read_feed(feed, columns, MAX_FEED_BYTES)
    mine = [(position, p) for position, p in enumerate(products) if position % n == i - 1]
    reference = choose_reference(embedder, options)
    partial = out / f".partial-shard-{i}-of-{n}"
    checkpoint = Checkpoint.open(partial, {"extractor": reference.fingerprint, "kind": "feed", "feed": str(feed),
                                           "shard": f"{i}/{n}", "store": milvus})
    runner, exported, _ = export_for_serving(reference, partial, options.export)
    probe = reference.probe
    name = f"{milvus['collection']}_g1"
    create_generation(milvus, name, int(probe.shape[1]), reference.fingerprint, probe,
                      index_settings(len(products), milvus.get("index_override")))
    vectors, resumed = vectors_by_photo([], checkpoint)
    outcomes: dict[str, Outcome] = {}
    cache = ImageCache(out / FEED_IMAGES)
    embedding_started = time.monotonic()
    try:
        chunks = fetch_and_embed([p for _, p in mine], cache, runner, vectors, options, outcomes)
        embedded = save_in_checkpoints(chunks, checkpoint, options)
    finally:
        cache.close()
    fetched = SyncReport()
    if not write_rows(milvus, name, mine, outcomes, vectors, fetched) and mine:
        raise BuildError(f"no product of shard {i}/{n} has a usable photo; see the feed's links")
    report = Report(added=embedded, resumed=resumed, skipped=fetched.failures,
                    embedding_seconds=time.monotonic() - embedding_started)
    if mark_shard(milvus, name, shard) == set(range(1, n + 1)):
        fields = {"source": {"feed": str(feed), "columns": dict(columns or {}), "shards": n}, "synced": now(),
                  "columns": sorted({c for _, p in mine for c in p.meta}), "extractor": reference.fingerprint,
                  "files": {"extractor": exported} if exported else {}}
        report.indexed = commit_shards(out, milvus, name, probe, partial, fields)
    else:
        report.exported = "other shards are still running: the last one to finish commits the index"
    report.seconds = time.monotonic() - started
    return report


def write_rows(milvus: dict[str, str], name: str, mine: list[tuple[int, FeedProduct]],
               outcomes: Mapping[str, Outcome], vectors: PhotoVectors, fetched: SyncReport) -> int:
    """This shard's products as rows of the collection; how many."""
    rows = assemble([product for _, product in mine], outcomes, vectors, fetched)
    if rows:
        upsert_rows(milvus, name, vectors.matrix(rows), rows)
    return len(rows)
