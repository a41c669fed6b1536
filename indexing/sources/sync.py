"""Build or sync an index from a product feed: fetch what changed, embed only photos never seen, commit one
generation. Interrupted (even by kill -9), a rerun reuses the photos already embedded."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from indexing.calibrate import record_neighbours
from indexing.errors import BuildError, DownloadError, ImageError, IndexExistsError
from indexing.extract.embedder import DIM, Embedder
from indexing.extract.exported import ONNX_FILE
from indexing.extract.extractor import open_embedder
from indexing.extract.images import load_image
from indexing.sources.build import Doubling, embed_in_chunks, progress_bar
from indexing.sources.catalogue_people import measure_people
from indexing.sources.checkpoint import Checkpoint, Embedded
from indexing.sources.download import FEED_IMAGES, Fetched, ImageCache
from indexing.sources.feeds import MAX_FEED_BYTES, FeedProduct, read_feed
from indexing.sources.options import DEFAULTS, BuildOptions
from indexing.sources.reference import Reference, choose_reference, export_for_serving
from indexing.store.files import MANIFEST, change_index, now, write_index
from indexing.store.index import Index
from indexing.store.lock import writing
from indexing.store.milvus import parse_store
from indexing.store.vector_store import Change, VectorStore

log = logging.getLogger(__name__)

PARTIAL = ".partial-sync"
REPORT = "sync-report.json"


@dataclass
class SyncReport:
    added: int = 0
    removed: int = 0
    updated: int = 0  # in the feed and the index, with other attributes or photos
    embedded: int = 0  # photos embedded for this sync (also those of an interrupted run of it)
    unchanged: int = 0
    failed: int = 0  # photos that could not be fetched or read
    products: int = 0  # in the index afterwards
    failures: list[tuple[str, str]] = field(default_factory=list)  # (product id, reason)
    without_image: list[str] = field(default_factory=list)  # feed products left out: no usable photo
    seconds: float = 0.0
    embedding_rate: float = 0.0

    def counts(self) -> dict[str, int]:
        keys = ("added", "removed", "updated", "embedded", "unchanged", "failed")
        return {key: getattr(self, key) for key in keys}

    def summary(self) -> str:
        text = ", ".join(f"{value} {key}" for key, value in self.counts().items())
        extra = f"; {len(self.without_image)} products without a usable photo" if self.without_image else ""
        return f"{self.products} products in the index: {text}{extra} ({self.seconds:.1f} s)"

    def write(self, path: Path) -> None:
        body = {**self.counts(), "products": self.products, "seconds": round(self.seconds, 1),
                "failures": [{"id": pid, "reason": reason} for pid, reason in self.failures],
                "products_without_image": self.without_image}
        path.write_text(json.dumps(body, indent=2), "utf-8")


@dataclass
class Outcome:
    """One feed photo after its fetch: the cached file, or why there is none; pixels if it needs embedding."""

    url: str
    fetched: Fetched | None = None
    error: str = ""
    pixels: np.ndarray | None = None


def build_from_feed(feed: str | Path, out: str | Path, *, columns: Mapping[str, str] | None = None,
                    embedder: Embedder | None = None, options: BuildOptions = DEFAULTS,
                    cache: ImageCache | None = None) -> SyncReport:
    """A new index from a feed; an interrupted build of it resumes. cache: where the photos are kept (default:
    in the index folder)."""
    out = Path(out)
    if (out / MANIFEST).exists() and not (out / PARTIAL).exists() and not options.overwrite:
        raise IndexExistsError(f"{out} already holds an index: use `fashion-index sync`, or --overwrite")
    with writing(out, create=True):
        return follow_feed(out, feed, columns, embedder, options, new=True, cache=cache)


def sync_feed(index_dir: str | Path, feed: str | Path, *, columns: Mapping[str, str] | None = None,
              embedder: Embedder | None = None, options: BuildOptions = DEFAULTS,
              cache: ImageCache | None = None) -> SyncReport:
    """Make the index follow the feed: add, remove, re-embed changed photos, update attributes."""
    with writing(index_dir):
        return follow_feed(Path(index_dir), feed, columns, embedder, options, cache=cache)


def photos_in_use(rows: list[dict], before: list[dict]) -> set[str]:
    """The photos of the generation committed and of the one it replaces, which stay one more sync: a bot may
    still be sending them."""
    return {Path(row["image"]).name for row in rows} | {Path(record["image"] or "").name for record in before}


def follow_feed(index_dir: Path, feed: str | Path, columns: Mapping[str, str] | None, embedder: Embedder | None,
                options: BuildOptions, *, new: bool = False, cache: ImageCache | None = None) -> SyncReport:
    """A sync, or (new) the build of a new index: one generation committed from the feed as it is now. A new
    index also gets the products embedded so far, now and then, for a bot to serve while the build goes on."""
    started = time.monotonic()
    products = read_feed(feed, columns, MAX_FEED_BYTES)  # a bad feed stops here, before anything is touched
    old = None if new else Index.load(index_dir)
    # Read once: what the photos need, and what the change is against (over the network, with Milvus).
    before = list(old.store.records()) if old is not None else []
    index_dir.mkdir(parents=True, exist_ok=True)
    # Only now: a bad feed is told before TensorFlow takes its seconds to load.
    reference = choose_reference(embedder, options) if old is None else None
    runner, exported = open_runner(index_dir, old, embedder, reference, options.export)
    if exported:  # beside every generation this build publishes: the bot serves each with it
        shutil.copyfile(index_dir / PARTIAL / ONNX_FILE, index_dir / ONNX_FILE)
    checkpoint = Checkpoint.open(index_dir / PARTIAL, {"extractor": runner.fingerprint, "kind": "feed"})
    vectors, resumed = vectors_by_photo(before, checkpoint)
    cache = cache or ImageCache(index_dir / FEED_IMAGES, recheck=options.recheck)
    outcomes: dict[str, Outcome] = {}
    publisher = None
    if reference is not None:  # a sync commits through the old index, which keeps its probe and export
        publisher = Publisher(index_dir, products, vectors, outcomes, {
            "fingerprint": reference.fingerprint, "probe": reference.probe,
            "keep_files": {"extractor": exported} if exported else None, "ann": options.ann or "auto",
            "store": parse_store(options.store, options.milvus_index) if options.store else None},
            Doubling(options.checkpoint_every))
        if options.publish:
            options = replace(options, on_checkpoint=publisher.after(options.on_checkpoint))
    try:
        embedded = save_in_checkpoints(fetch_and_embed(products, cache, runner, vectors, options, outcomes),
                                       checkpoint, options)
    finally:
        cache.close()
    report = SyncReport(embedded=embedded + resumed)
    rows = assemble(products, outcomes, vectors, report)
    if not rows:  # every photo failed: a server down, not a shop with nothing to sell
        report.write(index_dir / REPORT)
        raise BuildError(f"no product of the feed has a usable photo (details in {index_dir / REPORT}); "
                         "the index is left as it was")
    extra = {"source": {"feed": str(feed), "columns": dict(columns or {})}, "synced": now(),
             "columns": sorted({c for row in rows for c in row["meta"]})}
    in_use = photos_in_use(rows, before)
    if old is not None:
        change = diff(before, rows, report)
        added = list(change.added)
        change_index(index_dir, replace(change, vectors=vectors.matrix(added, old.store)), **extra)
    else:
        assert publisher is not None
        people = measure_people([index_dir / row["image"] for row in rows])
        publisher.commit(rows, vectors.matrix(rows), {**extra, "people": people} if people else extra)
        record_neighbours(index_dir)
        report.added = len({row["id"] for row in rows})
    cache.prune(in_use)
    checkpoint.remove()
    report.products = len({row["id"] for row in rows})
    report.seconds = time.monotonic() - started
    report.write(index_dir / REPORT)
    return report


@dataclass
class PhotoVectors:
    """The photos whose vectors are known, by the sha1 of their bytes: those the index holds (not loaded: a sync
    writes only the rows that change) and those embedded by this run (held)."""

    stored: set[str]
    new: dict[str, np.ndarray]

    def __contains__(self, sha1: object) -> bool:
        return sha1 in self.new or sha1 in self.stored

    def __setitem__(self, sha1: str, vector: np.ndarray) -> None:
        self.new[sha1] = vector

    def matrix(self, rows: Sequence[Mapping[str, Any]], store: VectorStore | None = None) -> np.ndarray:
        """The rows' vectors: those embedded by this run, the rest read from the store in one query."""
        missing = [row["photo"] for row in rows if row["photo"] not in self.new]
        stored = store.photo_vectors(missing) if store is not None and missing else {}
        if not rows:
            return np.zeros((0, DIM), np.float32)
        return np.stack([self.new.get(row["photo"], stored.get(row["photo"])) for row in rows]).astype(np.float32)


@dataclass
class Publisher:
    """Commits a feed-built index: the products whose photos have all been fetched (and embedded) so far, now
    and then during the build (Doubling), then all of them. outcomes: each photo URL's outcome, filled in as
    the build goes."""

    index_dir: Path
    products: Sequence[FeedProduct]
    vectors: PhotoVectors
    outcomes: Mapping[str, Outcome]
    keep: dict[str, Any]  # write_index's arguments that every generation of this build shares
    schedule: Doubling

    def after(self, then: Callable[[int], None] | None) -> Callable[[int], None]:
        """A checkpoint callback that publishes, then calls then."""
        def on_checkpoint(embedded: int) -> None:
            if self.schedule.due(embedded):
                self.publish_settled()
            if then:
                then(embedded)
        return on_checkpoint

    def publish_settled(self) -> None:
        settled = [p for p in self.products if all(url in self.outcomes for url in p.images)]
        if len(settled) == len(self.products):  # the final commit follows at once
            return
        rows = assemble(settled, self.outcomes, self.vectors, SyncReport())
        if rows:
            progress = {"building": {"done": len(settled), "total": len(self.products)}}
            self.commit(rows, self.vectors.matrix(rows), progress)

    def commit(self, rows: list[dict[str, Any]], matrix: np.ndarray, extra: dict[str, Any]) -> None:
        write_index(self.index_dir, vectors=matrix, products=rows, extra=extra, **self.keep)


def open_runner(index_dir: Path, old: Index | None, embedder: Embedder | None, reference: Reference | None,
                export: bool) -> tuple[Embedder, dict[str, Any]]:
    """The extractor to embed with: the old index's; for a new index (reference), its ONNX export where one is
    wanted (made once, kept in the partial folder)."""
    if old is not None:
        return embedder or open_embedder(old), {}
    assert reference is not None
    runner, exported, _ = export_for_serving(reference, index_dir / PARTIAL, export)
    return runner, exported


def vectors_by_photo(before: Iterable[Mapping[str, Any]], checkpoint: Checkpoint) -> tuple[PhotoVectors, int]:
    """The photos that need no embedding (those of the index's records before, and those an interrupted run
    embedded), and how many of them that run embedded."""
    done = checkpoint.load()
    known = PhotoVectors({r["photo"] for r in before if r["photo"]}, dict(zip(done.photos, done.matrix(), strict=True)))
    return known, len(done.photos)


def fetch_and_embed(products: Sequence[FeedProduct], cache: ImageCache, runner: Embedder,
                    vectors: PhotoVectors, options: BuildOptions, outcomes: dict[str, Outcome]
                    ) -> Iterator[Embedded]:
    """Fetch every photo (a few at a time) into outcomes, and embed the new ones while the next are downloading:
    each batch embedded, as it is (its vectors also go into vectors, by the photo's sha1)."""
    urls = list(dict.fromkeys(url for p in products for url in p.images))
    downloads = progress_bar(len(urls), 0, "download", options.progress)
    embedding = progress_bar(0, 0, "embedding", options.progress)
    batch: list[Outcome] = []
    queued: set[str] = set()
    # Downloads wait on the network, decoding takes a core: one photo decoded at a time, as in a folder build,
    # leaves the other core to the model (8 decoding threads beside it made the build 5-10% slower).
    decoding = threading.Semaphore(1)

    def embed() -> Embedded:
        stack = np.stack([o.pixels for o in batch])
        done = Embedded()
        for outcome, vector in zip(batch, runner.embed(stack), strict=True):
            assert outcome.fetched is not None
            vectors[outcome.fetched.sha1] = vector
            done.extend(Embedded([outcome.fetched.sha1], [outcome.url], [outcome.fetched.sha1], [vector[None]]))
            outcome.pixels = None
        embedding.update(len(batch))
        batch.clear()
        return done

    with ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="download") as pool:
        window: deque[Future[Outcome]] = deque()
        for url in [*urls, None]:  # at most 4 per worker in flight: decoded pixels are held until embedded
            if url is not None:
                window.append(pool.submit(fetch_one, cache, url, vectors, decoding))
            while window and (url is None or len(window) >= 4 * options.workers or window[0].done()):
                take(window.popleft().result(), outcomes, queued, batch, embedding, downloads)
                if len(batch) >= options.batch_size:
                    yield embed()
    if batch:
        yield embed()
    downloads.close()
    embedding.close()


def save_in_checkpoints(chunks: Iterable[Embedded], checkpoint: Checkpoint, options: BuildOptions) -> int:
    """Save what chunks embed, every options.checkpoint_every photos; how many were saved."""
    saved = 0

    def save(part: Embedded) -> None:
        nonlocal saved
        checkpoint.save(part)
        saved += len(part.ids) + len(part.failed)
        if options.on_checkpoint:
            options.on_checkpoint(saved)

    embed_in_chunks(chunks, options.checkpoint_every, save)
    return saved


def take(outcome: Outcome, outcomes: dict[str, Outcome], queued: set[str], batch: list[Outcome],
         embedding: Any, downloads: Any) -> None:
    outcomes[outcome.url] = outcome
    downloads.update(1)
    if outcome.pixels is not None and outcome.fetched is not None:
        if outcome.fetched.sha1 in queued:  # the same photo behind two URLs: embedded once
            outcome.pixels = None
            return
        queued.add(outcome.fetched.sha1)
        batch.append(outcome)
        embedding.total += 1
        embedding.refresh()


def fetch_one(cache: ImageCache, url: str, vectors: PhotoVectors, decoding: threading.Semaphore
              ) -> Outcome:
    """In a download thread: the photo, decoded too if its vector is not known."""
    try:
        fetched = cache.fetch(url)
    except DownloadError as exc:
        entry = cache.entry(url)
        if entry and entry["sha1"] in vectors:  # what the last sync had is kept: nothing lost to a bad day
            stale = Fetched(url, cache.directory / entry["file"], entry["sha1"], changed=False)
            return Outcome(url, stale, f"{exc}; kept the copy from the last sync")
        return Outcome(url, error=str(exc))
    if fetched.sha1 in vectors:
        return Outcome(url, fetched)
    try:
        with decoding:
            return Outcome(url, fetched, pixels=load_image(fetched.file))
    except ImageError as exc:
        return Outcome(url, error=f"{url}: {exc}")


def assemble(products: Sequence[FeedProduct], outcomes: Mapping[str, Outcome], vectors: PhotoVectors,
             report: SyncReport) -> list[dict[str, Any]]:
    """The index's rows in feed order: a row per usable photo of each product, the main photo first."""
    rows: list[dict[str, Any]] = []
    for product in products:
        photos: dict[str, Fetched] = {}
        for url in product.images:
            outcome = outcomes[url]
            if outcome.error:
                report.failed += 1
                report.failures.append((product.id, outcome.error))
            if outcome.fetched is not None and outcome.fetched.sha1 in vectors:
                photos.setdefault(outcome.fetched.sha1, outcome.fetched)
        if not photos:
            report.without_image.append(product.id)
        for sha1, fetched in photos.items():
            rows.append({"id": product.id, "image": f"{FEED_IMAGES}/{fetched.file.name}", "photo": sha1,
                         "meta": product.meta})
    return rows


def from_feed(record: Mapping[str, Any]) -> bool:
    """Whether a row was written by a sync (its photo is in the feed's cache) rather than by `fashion-index add`."""
    return str(record.get("image") or "").startswith(f"{FEED_IMAGES}/")


def diff(before: Iterable[Mapping[str, Any]], rows: Sequence[dict[str, Any]], report: SyncReport) -> Change:
    """What the index must change to hold rows, and the count of products added, removed, updated (attributes
    or photos) and unchanged. A product whose photos changed has its rows replaced; one whose attributes
    changed only, its attributes: no vector is written again."""
    def products(records: Iterable[Mapping[str, Any]]) -> dict[str, tuple[Mapping[str, Any], list[str]]]:
        """id -> (attributes, photos: the main one first, then the rest in order of their hashes). The main photo is
        a product's first record, or the one marked main (a store that keeps no order)."""
        out: dict[str, tuple[Mapping[str, Any], list[str]]] = {}
        for record in records:
            photos = out.setdefault(record["id"], (record.get("meta", {}), []))[1]
            photos.insert(0 if record.get("main") else len(photos), record.get("photo") or "")
        return {pid: (meta, photos[:1] + sorted(photos[1:])) for pid, (meta, photos) in out.items()}

    # Products added by hand (`fashion-index add`) are not the feed's to remove: a sync leaves them, unless the feed
    # now lists the same id, which then replaces them.
    by_hand = {record["id"] for record in before if not from_feed(record)}
    after, old = products(rows), products(record for record in before if record["id"] not in by_hand)
    new_photos = {pid for pid in after if pid not in old or after[pid][1] != old[pid][1]}
    updated = {pid: meta for pid, (meta, _) in after.items() if pid in old and pid not in new_photos
               and meta != old[pid][0]}
    report.added = sum(1 for pid in after if pid not in old)
    report.removed = sum(1 for pid in old if pid not in after)
    report.updated = len(updated) + len(new_photos) - report.added
    report.unchanged = sum(1 for pid in after if pid in old) - report.updated
    removed = frozenset(pid for pid in old if pid not in after or pid in new_photos) | (by_hand & after.keys())
    return Change(removed=removed, added=[row for row in rows if row["id"] in new_photos], updated=updated)
