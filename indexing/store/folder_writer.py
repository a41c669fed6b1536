"""Writing the folder's catalogue: a whole base (a build, a compaction), or one change as a segment of its own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from indexing.extract.embedder import file_entry
from indexing.store.ann import graph_writer
from indexing.store.ann import wanted as wanted_graph
from indexing.store.files import ROW_FILES, atomic_write, json_bytes, load_npy, npy_writer
from indexing.store.vector_store import Change

if TYPE_CHECKING:
    from pathlib import Path

    from indexing.store.folder_store import FolderStore


def write_base(directory: Path, generation: int, vectors: np.ndarray, products: Sequence[dict[str, Any]],
               settings: Mapping[str, Any]) -> dict[str, Any]:
    """Write a whole catalogue as generation's base segment (and its graph, if settings' ann asks for one);
    the manifest fields that name it. vectors may be the base's own file, already written."""
    written = getattr(vectors, "filename", None)
    payloads: dict[str, Any] = {}
    if written is None or str(written) != str(directory / f"vectors-{generation}.npy"):
        payloads["vectors"] = (f"vectors-{generation}.npy", npy_writer(np.asarray(vectors, np.float32)))
    payloads["products"] = (f"products-{generation}.json", json_bytes(products))
    if wanted_graph(settings.get("ann", "auto"), len(products)):
        payloads["ann"] = (f"ann-{generation}.faiss", graph_writer(vectors))
    files = {"vectors": file_entry(directory / f"vectors-{generation}.npy")} if "vectors" not in payloads else {}
    for role, (name, data) in payloads.items():
        atomic_write(directory / name, data)
        files[role] = file_entry(directory / name)
    return {"files": files, "segments": [], "count": len(products), "base_rows": len(products), "removed": 0}


def write_change(store: FolderStore, change: Change, generation: int) -> dict[str, Any]:
    """Write a change as generation's files: a segment of the rows added (if any), and the change file with every
    row removed and every attribute changed since the base. No row already written is written again."""
    directory, segments = store.directory, store.vectors
    gone = segments.row_of(np.array(store.positions(change.removed), np.int64))
    removed = np.union1d(np.setdiff1d(np.arange(segments.rows), segments.row_of(np.arange(len(segments)))), gone)
    dropped = set(gone.tolist())
    meta = {row: attrs for row, attrs in store.meta.items() if row not in dropped}
    for product_id, attributes in change.updated.items():
        for row in segments.row_of(np.array(store.positions([product_id]), np.int64)):
            meta[int(row)] = dict(attributes)
    files = dict(store.manifest["files"])
    appended = list(store.manifest.get("segments", []))
    if change.added:
        vectors, products = f"vectors-{generation}.npy", f"products-{generation}.json"
        atomic_write(directory / vectors, npy_writer(np.asarray(change.vectors, np.float32)))
        atomic_write(directory / products, json_bytes(list(change.added)))
        appended.append({"vectors": file_entry(directory / vectors), "products": file_entry(directory / products),
                         "rows": len(change.added)})
    if len(removed) or meta:
        name = f"changes-{generation}.json"
        atomic_write(directory / name, json_bytes({"removed": removed.tolist(),
                                                   "meta": {str(row): attrs for row, attrs in sorted(meta.items())}}))
        files["changes"] = file_entry(directory / name)
    return {"files": files, "segments": appended, "count": len(segments) - len(gone) + len(change.added),
            "removed": len(removed)}


def write_compacted(store: FolderStore, generation: int, ann: str) -> dict[str, Any]:
    """Fold the segments and the change file into one new base, a chunk of vectors at a time."""
    directory = store.directory
    atomic_write(directory / f"vectors-{generation}.npy", store.vectors.npy_writer())
    vectors = load_npy(directory / f"vectors-{generation}.npy", mmap=True)
    written = write_base(directory, generation, vectors, list(store.products), {"ann": ann})
    kept = {role: entry for role, entry in store.manifest["files"].items() if role not in ROW_FILES}
    return {**written, "files": {**kept, **written["files"]}}
