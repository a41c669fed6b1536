"""Build an index from a catalogue (resumable), and add or remove products in place."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from indexing.calibrate import record_neighbours
from indexing.errors import BuildError, FashionIndexError, ImageError, IndexExistsError
from indexing.extract.embedder import Embedder, KerasEmbedder
from indexing.extract.exported import (
    INT8_FILE,
    ONNX_FILE,
    export_onnx,
    quantize_int8,
)
from indexing.extract.extractor import open_embedder
from indexing.extract.images import load_image, read_bytes
from indexing.sources.catalogue import Metadata, list_images, product_id, read_metadata, sort_key
from indexing.sources.catalogue_people import measure_people
from indexing.sources.checkpoint import Checkpoint, Embedded
from indexing.sources.options import DEFAULTS, BuildOptions
from indexing.sources.reference import choose_reference, copy_kept_export, export_for_serving
from indexing.store.files import MANIFEST, add_file, atomic_write, change_index, checked_file, write_index
from indexing.store.index import Index
from indexing.store.lock import writing
from indexing.store.milvus import parse_store
from indexing.store.vector_store import Change

log = logging.getLogger(__name__)

REPORT = "build-report.json"
PARTIAL = ".partial"
COPIED_IMAGES = "images"


@dataclass
class Report:
    indexed: int = 0
    added: int = 0
    resumed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    without_metadata: list[str] = field(default_factory=list)
    metadata_without_image: int = 0
    seconds: float = 0.0
    embedding_seconds: float = 0.0  # the rate shown is over this: model loading and export excluded
    exported: str = ""  # why the serving export is missing, if it is
    report_file: Path | None = None

    def summary(self) -> str:
        rate = self.added / self.embedding_seconds if self.embedding_seconds else 0.0
        parts = [f"{self.indexed} products in the index", f"{self.added} embedded ({rate:.1f} images/s)"]
        if self.resumed:
            parts.append(f"{self.resumed} reused from an interrupted run")
        if self.skipped:
            parts.append(f"{len(self.skipped)} unreadable skipped")
        if self.without_metadata:
            parts.append(f"{len(self.without_metadata)} without metadata")
        if self.metadata_without_image:
            parts.append(f"{self.metadata_without_image} metadata rows without an image")
        if self.exported:
            parts.append(self.exported)
        text = ", ".join(parts)
        return f"{text}; details in {self.report_file}" if self.report_file else text

    def write(self, path: Path) -> None:
        self.report_file = path
        body = {
            "indexed": self.indexed,
            "embedded": self.added,
            "reused_from_checkpoint": self.resumed,
            "seconds": round(self.seconds, 1),
            "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
            "images_without_metadata": self.without_metadata,
            "metadata_rows_without_image": self.metadata_without_image,
        }
        atomic_write(path, json.dumps(body, indent=2).encode("utf-8"))


def decode(paths: Sequence[Path]) -> tuple[list[Path], list[str], np.ndarray, list[tuple[str, str]]]:
    ok, photos, pixels, failed = [], [], [], []
    for path in paths:
        try:
            data = read_bytes(path)
            pixels.append(load_image(data))
        except ImageError as exc:
            failed.append((str(path), str(exc)))
            continue
        ok.append(path)
        photos.append(hashlib.sha1(data).hexdigest())
    batch = np.stack(pixels) if pixels else np.zeros((0, 224, 224, 3), np.uint8)
    return ok, photos, batch, failed


def embed_files(
    files: Sequence[Path], embedder: Embedder, batch_size: int, progress: tqdm | None = None
) -> Iterator[Embedded]:
    """Embed files batch by batch; the next batch is decoded while the model runs on this one."""
    batches = [files[i : i + batch_size] for i in range(0, len(files), batch_size)]
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(decode, batches[0]) if batches else None
        for number in range(len(batches)):
            assert pending is not None
            ok, photos, pixels, failed = pending.result()
            if number + 1 < len(batches):
                pending = pool.submit(decode, batches[number + 1])
            out = Embedded(failed=failed)
            if ok:
                out.vectors.append(embedder.embed(pixels))
                out.ids = [product_id(p) for p in ok]
                out.files = [str(p) for p in ok]
                out.photos = photos
            if progress is not None:
                progress.update(len(batches[number]))
            yield out


def progress_bar(total: int, initial: int, desc: str, enabled: bool) -> tqdm:
    return tqdm(total=total, initial=initial, desc=desc, unit="img", disable=not enabled, smoothing=0.1)


def make_products(done: Embedded, metadata: Metadata | None, destination: Path | None) -> list[dict[str, Any]]:
    products = []
    for pid, file, photo in zip(done.ids, done.files, done.photos, strict=False):
        image = str(Path(file).resolve())
        if destination is not None:
            target = destination / COPIED_IMAGES / f"{pid}{Path(file).suffix.lower()}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)
            image = f"{COPIED_IMAGES}/{target.name}"
        meta = metadata.rows.get(pid, {}) if metadata else {}
        products.append({"id": pid, "image": image, "photo": photo, "meta": meta})
    return products


def build_index(sources: Sequence[str | Path], out: str | Path, *, metadata: str | Path | None = None,
                embedder: Embedder | None = None, options: BuildOptions = DEFAULTS) -> Report:
    """Embed a catalogue (folders of <id>.<ext> photos, and a metadata CSV) into a new index at out, resuming
    an interrupted build of the same spec."""
    out = Path(out)
    with writing(out, create=True):
        started = time.monotonic()
        partial = out / PARTIAL
        if (out / MANIFEST).exists() and not partial.exists() and not options.overwrite:
            raise IndexExistsError(f"{out} already holds an index: use `fashion-index add`, or --overwrite")
        files = list_images(sources)[:options.limit]
        if not files:
            raise BuildError(f"no images (.jpg .png .webp .bmp .gif .heic) found in {', '.join(map(str, sources))}")
        table = read_metadata(metadata) if metadata else None
        reference = choose_reference(embedder, options)
        spec = {"extractor": reference.fingerprint, "files": len(files), "first": files[0].name,
                "last": files[-1].name, "copy_images": options.copy_images}
        checkpoint = Checkpoint.open(partial, spec)
        finished = checkpoint.finished_ids()
        todo = [f for f in files if product_id(f) not in finished]
        report = Report(resumed=len(files) - len(todo))
        runner, exported, report.exported = export_for_serving(reference, partial, options.export)
        target = Target(out, table, reference.fingerprint, reference.probe, exported, options.ann or "auto",
                        parse_store(options.store, options.milvus_index) if options.store else None)
        extra = {
            "images_copied": options.copy_images,
            "columns": table.columns if table else [],
            "source": {"images": [str(Path(s).resolve()) for s in sources], "metadata": str(metadata or "")},
        }
        embedding_started = time.monotonic()
        embed_with_checkpoints(todo, runner, checkpoint, target, extra, options, (report.resumed, len(files)))
        report.embedding_seconds = time.monotonic() - embedding_started
        report.added = len(todo)
        if exported:
            shutil.move(partial / ONNX_FILE, out / ONNX_FILE)
        people = measure_people(files)
        if people:
            extra["people"] = people
        done, products = write_checkpoint(target, checkpoint, out if options.copy_images else None, extra)
        record_neighbours(out)
        report.indexed = len(products)
        report.skipped = done.failed
        if table:
            report.without_metadata = [pid for pid in done.ids if pid not in table.rows]
            # Against every photo in the folders: with --limit, the rest are not "missing".
            listed = {product_id(f) for f in list_images(sources)}
            report.metadata_without_image = sum(1 for pid in table.rows if pid not in listed)
        report.seconds = time.monotonic() - started
        report.write(out / REPORT)
        checkpoint.remove()
        return report


@dataclass(frozen=True)
class Target:
    """Where, and as what, embedded products are published: the index folder (or its Milvus store), with the
    metadata, the extractor's fingerprint and probe, its ONNX export entry and the graph setting."""

    out: Path
    table: Metadata | None
    fingerprint: dict[str, Any]
    probe: np.ndarray
    exported: dict[str, Any]
    ann: str
    store: dict[str, str] | None


def embed_in_chunks(chunks: Iterable[Embedded], every: int, save: Callable[[Embedded], None]) -> None:
    """Hand what chunks embed to save every `every` photos, and the rest (if any) at the end: the one
    checkpointing loop of every build (a folder, a shard of one, a feed). save never gets an empty part."""
    buffer = Embedded()
    for chunk in chunks:
        buffer.extend(chunk)
        if len(buffer.ids) + len(buffer.failed) >= every:
            save(buffer)
            buffer = Embedded()
    if buffer.ids or buffer.failed:
        save(buffer)


@dataclass
class Doubling:
    """When a build publishes what it has so far: first at next_at photos, then each time the count has doubled,
    so that all the partial generations together cost at most one more full write."""

    next_at: int

    def due(self, count: int) -> bool:
        if count < self.next_at:
            return False
        self.next_at = 2 * count
        return True


def embed_with_checkpoints(todo: list[Path], runner: Embedder, checkpoint: Checkpoint, target: Target,
                           extra: dict[str, Any], options: BuildOptions, counts: tuple[int, int]) -> None:
    """Embed todo, saving a checkpoint every options.checkpoint_every photos. Until the build is done, the
    products embedded so far are published as a generation now and then (Doubling): a bot can serve them.
    counts: (already done, total)."""
    finished, total = counts
    schedule = Doubling(options.checkpoint_every if options.publish and not options.copy_images else total + 1)

    def save(part: Embedded) -> None:
        nonlocal finished
        checkpoint.save(part)
        finished += len(part.ids) + len(part.failed)  # counted as saved, not re-read from every chunk
        if options.on_checkpoint:
            options.on_checkpoint(finished)
        if finished < total and schedule.due(finished):
            if target.exported and not (target.out / ONNX_FILE).exists():
                shutil.copyfile(checkpoint.directory / ONNX_FILE, target.out / ONNX_FILE)
            write_checkpoint(target, checkpoint, None, {**extra, "building": {"done": finished, "total": total}})

    bar = progress_bar(total, finished, "embedding", options.progress)
    embed_in_chunks(embed_files(todo, runner, options.batch_size, bar), options.checkpoint_every, save)
    bar.close()


def write_checkpoint(target: Target, checkpoint: Checkpoint, destination: Path | None, extra: dict[str, Any]
                     ) -> tuple[Embedded, list[dict[str, Any]]]:
    """Commit what the checkpoint holds as the index's next generation, products in id order."""
    done = checkpoint.load(key=sort_key)
    products = make_products(done, target.table, destination)
    write_index(target.out, vectors=done.matrix(), products=products, fingerprint=target.fingerprint,
                probe=target.probe, ann=target.ann, store=target.store, extra=extra,
                keep_files={"extractor": target.exported} if target.exported else None)
    return done, products


def export_int8(index_dir: str | Path, calibration_images: int = 200) -> dict[str, Any]:
    """Quantise the index's ONNX export to int8, calibrated on the index's own catalogue photos."""
    index = Index.load(index_dir)
    if "extractor" not in index.manifest["files"]:
        raise FashionIndexError("export the fp32 extractor first: `fashion-index export --index DIR`")
    source = checked_file(index.directory, index.manifest, "extractor")
    step = max(1, index.count // calibration_images)
    photos = []
    for pid in index.ids[::step][:calibration_images]:
        with contextlib.suppress(ImageError):
            photos.append(load_image(index.image_path(pid)))
    if not photos:
        raise FashionIndexError("no readable catalogue photos to calibrate with")
    entry = quantize_int8(source, index.directory / INT8_FILE, np.stack(photos))
    add_file(index.directory, "extractor_int8", entry)
    return entry


def export_extractor(index_dir: str | Path, embedder: KerasEmbedder | None = None) -> dict[str, Any]:
    """Export the index's extractor to ONNX beside it, for serving without TensorFlow: a copy of the export this
    machine keeps of its weights where that reproduces the index, else made from TensorFlow's model."""
    index = Index.load(index_dir)
    kept = copy_kept_export(index, index.directory / ONNX_FILE) if embedder is None else None
    if kept is not None:
        add_file(index.directory, "extractor", kept)
        return kept
    if embedder is None:
        reference = open_embedder(index, runtime="tensorflow")
        assert isinstance(reference, KerasEmbedder)
        embedder = reference
    entry = export_onnx(embedder, index.directory / ONNX_FILE)
    add_file(index.directory, "extractor", entry)
    return entry


def add_to_index(
    index_dir: str | Path,
    sources: Sequence[str | Path],
    *,
    metadata: str | Path | None = None,
    embedder: Embedder | None = None,
    batch_size: int = 8,
    progress: bool = True,
) -> Report:
    """Embed more products into an existing index; an id already present is replaced."""
    with writing(index_dir):
        started = time.monotonic()
        index = Index.load(index_dir)
        files = list_images(sources)
        if not files:
            raise BuildError(f"no images found in {', '.join(map(str, sources))}")
        table = read_metadata(metadata) if metadata else None
        embedder = embedder or open_embedder(index)
        done = Embedded()
        bar = progress_bar(len(files), 0, "embedding", progress)
        embedding_started = time.monotonic()
        for chunk in embed_files(files, embedder, batch_size, bar):
            done.extend(chunk)
        bar.close()
        embedding_seconds = time.monotonic() - embedding_started
        copied = bool(index.manifest.get("images_copied"))
        fresh = make_products(done, table, index.directory if copied else None)
        replaced = frozenset(pid for pid in done.ids if pid in index)
        manifest = change_index(index.directory, Change(removed=replaced, added=fresh, vectors=done.matrix()))
        report = Report(indexed=manifest["count"], added=len(done.ids), skipped=done.failed,
                        embedding_seconds=embedding_seconds)
        if table:
            report.without_metadata = [pid for pid in done.ids if pid not in table.rows]
        report.seconds = time.monotonic() - started
        return report


def remove_from_index(index_dir: str | Path, ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """Remove products by id; returns (removed, not found)."""
    with writing(index_dir):
        index = Index.load(index_dir)
        doomed = frozenset(pid for pid in ids if pid in index)
        missing = [pid for pid in ids if pid not in index]
        if doomed:
            gone = [index.image_path(pid) for pid in doomed] if index.manifest.get("images_copied") else []
            change_index(index.directory, Change(removed=doomed))
            for path in gone:  # only after the commit: the old generation still needed them
                path.unlink(missing_ok=True)
        return sorted(doomed, key=sort_key), missing
