"""Writing the folder's catalogue: a whole base (a build, a compaction), or one change as a segment of its own."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexing.extract.embedder import file_entry
from indexing.store.ann import graph_writer
from indexing.store.ann import wanted as wanted_graph
from indexing.store.files import (
    atomic_write,
    checked_entry,
    json_bytes,
    npy_writer,
    parts_of,
    read_changes,
    read_products,
)
from indexing.store.vector_store import Change


def write_base(directory: Path, generation: int, vectors: np.ndarray, products: Sequence[dict[str, Any]],
               settings: Mapping[str, Any]) -> dict[str, Any]:
    """Write a whole catalogue as generation's base segment (and its graph, if settings' ann asks for one);
    the manifest fields that name it. vectors may be the base's own file, already written."""
    files = write_segment(directory, generation, vectors, products)
    if wanted_graph(settings.get("ann", "auto"), len(products)):
        atomic_write(directory / f"ann-{generation}.faiss", graph_writer(vectors))
        files["ann"] = file_entry(directory / f"ann-{generation}.faiss")
    return {"files": files, "segments": [], "count": len(products), "base_rows": len(products), "removed": 0}


def write_segment(directory: Path, generation: int, vectors: np.ndarray, products: Sequence[dict[str, Any]]
                  ) -> dict[str, Any]:
    """Write a segment's files: its vectors (unless vectors is generation's vector file already), its products, and
    their ids (what a change reads); their manifest entries by role."""
    name = f"vectors-{generation}.npy"
    written = getattr(vectors, "filename", None)
    if written is None or Path(written).resolve() != (directory / name).resolve():
        atomic_write(directory / name, npy_writer(np.asarray(vectors, np.float32)))
    files = {"vectors": file_entry(directory / name)}
    for role, data in (("products", products), ("ids", [p["id"] for p in products])):
        atomic_write(directory / f"{role}-{generation}.json", json_bytes(list(data)))
        files[role] = file_entry(directory / f"{role}-{generation}.json")
    return files


class FolderRows:
    """What a change needs to know of the folder's catalogue: each product's rows, the rows removed, and the
    attributes changed since the base. Read from the small ids files: no vectors, products or graph are loaded
    (at 1M products, loading the store took most of a change's time)."""

    def __init__(self, directory: Path, manifest: Mapping[str, Any]):
        self.directory, self.manifest = directory, manifest
        ids: list[str] = []
        for part in parts_of(manifest):
            if part.get("ids"):
                ids += json.loads(checked_entry(directory, part["ids"], "ids", False).read_text("utf-8"))
            else:  # an index written before the ids files: read them from its products
                ids += [p["id"] for p in read_products(checked_entry(directory, part["products"], "products",
                                                                     False), directory)]
        self.removed, self.meta = read_changes(directory, manifest, False)
        gone = set(self.removed.tolist())
        self.rows: dict[str, list[int]] = {}
        for row, product_id in enumerate(ids):
            if row not in gone:
                self.rows.setdefault(product_id, []).append(row)
        self.total = len(ids)

    def rows_of(self, product_ids: Iterable[str]) -> np.ndarray:
        return np.array([row for pid in product_ids for row in self.rows.get(pid, [])], np.int64)


def write_change(view: FolderRows, change: Change, generation: int) -> dict[str, Any]:
    """Write a change as generation's files: a segment of the rows added (if any), and the change file with every
    row removed and every attribute changed since the base. No row already written is written again."""
    directory = view.directory
    gone = view.rows_of(change.removed)
    removed = np.union1d(view.removed, gone)
    dropped = set(gone.tolist())
    meta = {row: attrs for row, attrs in view.meta.items() if row not in dropped}
    for product_id, attributes in change.updated.items():
        for row in view.rows_of([product_id]):
            meta[int(row)] = dict(attributes)
    files = dict(view.manifest["files"])
    appended = list(view.manifest.get("segments", []))
    if change.added:
        appended.append({**write_segment(directory, generation, change.vectors, change.added),
                         "rows": len(change.added)})
    if len(removed) or meta:
        name = f"changes-{generation}.json"
        atomic_write(directory / name, json_bytes({"removed": removed.tolist(),
                                                   "meta": {str(row): attrs for row, attrs in sorted(meta.items())}}))
        files["changes"] = file_entry(directory / name)
    count = view.total - len(removed) + len(change.added)
    return {"files": files, "segments": appended, "count": count, "removed": len(removed)}
