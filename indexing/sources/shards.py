"""One Nth of a catalogue embedded into a shared Milvus collection: N such jobs, on as many machines, build one
index with no merge step. Each is resumable on its own; the one that finds every shard done commits the index."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexing.errors import BuildError, FashionIndexError
from indexing.extract.embedder import Embedder
from indexing.extract.exported import ONNX_FILE
from indexing.sources.build import (
    Report,
    embed_files,
    embed_in_chunks,
    make_products,
    progress_bar,
)
from indexing.sources.catalogue import list_images, product_id, read_metadata
from indexing.sources.checkpoint import Checkpoint, Embedded
from indexing.sources.options import DEFAULTS, BuildOptions
from indexing.sources.reference import choose_reference, export_for_serving
from indexing.store.files import commit, next_generation
from indexing.store.lock import writing
from indexing.store.milvus import (
    create_generation,
    index_settings,
    mark_shard,
    parse_store,
    row_count,
    upsert_rows,
)
from indexing.store.milvus_store import MilvusStore, facets_of, finish_collection


def parse_shard(text: str) -> tuple[int, int]:
    """`2/4` -> (2, 4)."""
    i, sep, n = text.partition("/")
    if not sep or not i.isdigit() or not n.isdigit() or not 1 <= int(i) <= int(n):
        raise FashionIndexError(f"--shard {text!r}: use I/N with 1 <= I <= N, e.g. 2/4")
    return int(i), int(n)


def build_shard(sources: Sequence[str | Path], out: str | Path, shard: tuple[int, int], *,
                metadata: str | Path | None = None, embedder: Embedder | None = None,
                options: BuildOptions = DEFAULTS) -> Report:
    """Embed the photos at positions i-1, i-1+n, ... of the sorted catalogue into generation 1 of store.

    Rows are keyed by product and photo, so N shards write what one build would.
    """
    started = time.monotonic()
    if not options.store:
        raise FashionIndexError("a sharded build needs a Milvus store: the collection the shards fill")
    out, (i, n), milvus = Path(out), shard, parse_store(options.store, options.milvus_index)
    files = list_images(sources)[:options.limit]
    if not files:
        raise BuildError(f"no images found in {', '.join(map(str, sources))}")
    mine = [(position, f) for position, f in enumerate(files) if position % n == i - 1]
    table = read_metadata(metadata) if metadata else None
    reference = choose_reference(embedder, options)
    spec = {"extractor": reference.fingerprint, "files": len(files), "first": files[0].name, "last": files[-1].name,
            "shard": f"{i}/{n}", "store": milvus}
    partial = out / f".partial-shard-{i}-of-{n}"
    checkpoint = Checkpoint.open(partial, spec)
    finished = checkpoint.finished_ids()
    todo = [f for _, f in mine if product_id(f) not in finished]
    runner, exported, _ = export_for_serving(reference, partial, options.export)
    probe = reference.probe
    name = f"{milvus['collection']}_g1"
    create_generation(milvus, name, int(probe.shape[1]), reference.fingerprint, probe,
                      index_settings(len(files), milvus.get("index_override")))

    def commit(part: Embedded) -> None:
        # The rows first, then the checkpoint: a crash between them writes the same rows again, harmlessly.
        if part.ids:
            upsert_rows(milvus, name, part.matrix(), make_products(part, table, None))
        checkpoint.save(part)

    bar = progress_bar(len(mine), len(mine) - len(todo), f"shard {i}/{n}", options.progress)
    embedding_started = time.monotonic()
    embed_in_chunks(embed_files(todo, runner, options.batch_size, bar), options.checkpoint_every, commit)
    bar.close()
    done = checkpoint.load()
    report = Report(added=len(todo), resumed=len(mine) - len(todo), skipped=done.failed,
                    embedding_seconds=time.monotonic() - embedding_started)
    if mark_shard(milvus, name, shard) == set(range(1, n + 1)):
        report.indexed = commit_shards(out, milvus, name, probe, partial, {
            "columns": table.columns if table else [], "images_copied": False, "extractor": reference.fingerprint,
            "files": {"extractor": exported} if exported else {},
            "source": {"images": [str(Path(s).resolve()) for s in sources], "metadata": str(metadata or ""),
                       "shards": n}})
    else:
        report.exported = "other shards are still running: the last one to finish commits the index"
    report.seconds = time.monotonic() - started
    return report


def commit_shards(out: Path, milvus: dict[str, Any], name: str, probe: np.ndarray, partial: Path,
                  fields: dict[str, Any]) -> int:
    """Every shard is in the collection: serve it under the catalogue's name, and name it in this folder's
    manifest, with this shard's extractor export (from partial). fields: the manifest's own (files, extractor)."""
    if "extractor" in fields["files"]:
        shutil.copyfile(partial / ONNX_FILE, out / ONNX_FILE)
    finish_collection(milvus, name, facets_of(MilvusStore(milvus | {"collection": name}).records()))
    count = row_count(milvus, name)
    index = index_settings(count, milvus.get("index_override"))
    with writing(out, create=True):
        previous, generation = next_generation(out)
        commit(out, previous, generation, {**fields, "count": count, "dim": int(probe.shape[1]), "ann": "off",
                                           "store": {**milvus, "kind": "milvus", "index": index}}, probe)
    return count
