"""The catalogue in the index folder: a base segment of vectors and products, appended segments, and a change file
(removed rows, new attributes), so that a change writes only its own rows; exact search (or the HNSW graph's
candidates, ranked exactly) over what is left."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexing.errors import FashionIndexError, IndexFormatError
from indexing.extract.embedder import l2_normalize
from indexing.store.ann import CANDIDATES, Graph
from indexing.store.files import ROW_FILES, atomic_write, checked_entry, load_npy, parts_of, read_changes, read_products
from indexing.store.folder_writer import FolderRows, write_base, write_change
from indexing.store.products import ProductTable
from indexing.store.ranking import Ranking
from indexing.store.segments import Segments
from indexing.store.vector_store import Change, Hit

# Compaction folds the segments and the change file back into one base once this share of the rows has been
# removed or appended since (or once there are this many segments): scans and loads stay as fast as a fresh build.
COMPACT_SHARE = 0.25
COMPACT_SEGMENTS = 32


class FolderStore(Ranking):
    """An index folder's catalogue, loaded: vectors memory-mapped, product records in memory."""

    def __init__(self, directory: Path, manifest: Mapping[str, Any], segments: Segments,
                 records: list[dict[str, Any]], graph: Graph | None):
        super().__init__(ProductTable([records[row] for row in segments.row_of(np.arange(len(segments)))]))
        self.directory, self.manifest = directory, manifest
        self.vectors, self.graph = segments, graph
        self.base_rows = len(segments.arrays[0])

    @classmethod
    def open(cls, directory: Path, manifest: Mapping[str, Any], store_uri: str | None = None, *,
             verify: bool = True) -> FolderStore:
        arrays, records = [], []
        for part in parts_of(manifest):
            vectors = load_npy(checked_entry(directory, part.get("vectors"), "vectors", verify), mmap=True)
            products = read_products(checked_entry(directory, part.get("products"), "products", verify), directory)
            if vectors.dtype != np.float32 or vectors.ndim != 2 or len(vectors) != len(products):
                raise IndexFormatError(f"index {directory}: vectors are {vectors.dtype} {vectors.shape}, "
                                       f"for {len(products)} products")
            arrays.append(vectors)
            records += products
        removed, meta = read_changes(directory, manifest, verify)
        for row, attributes in meta.items():
            records[row] = {**records[row], "meta": attributes}
        live = np.setdiff1d(np.arange(len(records)), removed) if len(removed) else None
        if len(records) - len(removed) != manifest["count"] or arrays[0].shape[1] != manifest["dim"]:
            raise IndexFormatError(f"index {directory}: {len(records) - len(removed)} rows of {arrays[0].shape[1]} "
                                   f"dimensions, the manifest says ({manifest['count']}, {manifest['dim']})")
        graph = Graph(checked_entry(directory, manifest["files"]["ann"], "ann", verify)) \
            if "ann" in manifest["files"] else None
        return cls(directory, manifest, Segments(arrays, live, pread=graph is not None), records, graph)

    # reading

    def vector(self, product_id: str) -> np.ndarray:
        return self.vectors.take(np.array([self.position(product_id)]))[0]

    def records(self) -> Iterator[dict[str, Any]]:
        return iter(self.products)

    def photo_vectors(self, photos: Iterable[str]) -> dict[str, np.ndarray]:
        wanted = set(photos)
        rows = [i for i, photo in enumerate(self.products.photos) if photo in wanted]
        found = {}
        for row, vector in zip(rows, self.vectors.take(np.array(rows, np.int64)), strict=True):
            found.setdefault(self.products.photos[row], vector)
        return found

    def describe(self) -> str:
        extra = f", {len(self.vectors.arrays) - 1} segments appended since" if len(self.vectors.arrays) > 1 else ""
        how = "approximate (the HNSW graph's candidates, ranked exactly)" if self.graph else "exact"
        return f"{how}; the index folder{extra}"

    def search(self, query: np.ndarray, k: int = 5, *, exclude: Iterable[str] = (),
               filters: Mapping[str, Sequence[str]] | None = None, collapse_duplicates: bool = True) -> list[Hit]:
        """The k nearest products to a query vector by Euclidean distance, each by its nearest photo.

        Distances are always exact; with the approximate-search graph only the candidates are not.
        """
        if k < 1 or self.count == 0:
            return []
        q = self.checked(query[None])[0]
        allowed = self.filter_mask(filters)
        excluded = self.positions(exclude)
        if self.graph is not None:
            hits = self.rank(self.candidates(q, CANDIDATES + 8 * k + len(excluded)), q, allowed, excluded, k,
                             collapse_duplicates)
            if len(hits) == k:
                return hits
            # Filters or exclusions left too few of the graph's candidates: scan everything.
        return self.rank(None, q, allowed, excluded, k, collapse_duplicates)

    def search_many(self, queries: np.ndarray, k: int, *, excludes: Sequence[Iterable[str]],
                    filters: Sequence[Mapping[str, Sequence[str]] | None], collapse_duplicates: bool = True
                    ) -> list[list[Hit]]:
        if self.graph is not None or len(queries) == 1 or self.count == 0 or k < 1:
            return [self.search(q, k, exclude=e, filters=f, collapse_duplicates=collapse_duplicates)
                    for q, e, f in zip(queries, excludes, filters, strict=True)]
        # The scan is bound by memory bandwidth: a matrix product reads the vectors once for every query.
        sims = self.vectors.scan(self.checked(queries))
        return [self.select(row, None, self.filter_mask(f), self.positions(e), k, collapse_duplicates)
                for row, e, f in zip(sims, excludes, filters, strict=True)]

    def checked(self, queries: np.ndarray) -> np.ndarray:
        queries = np.asarray(queries, dtype=np.float32).reshape(len(queries), -1)
        if queries.shape[1] != self.vectors.dim:
            raise FashionIndexError(f"query has {queries.shape[1]} dimensions, the index {self.vectors.dim}")
        return l2_normalize(queries)

    def candidates(self, q: np.ndarray, n: int) -> np.ndarray:
        """Positions to rank exactly: the graph's nearest base rows that are left, and every appended row."""
        assert self.graph is not None
        found = self.vectors.position_of(self.graph.candidates(q, n))
        appended = self.vectors.position_of(np.arange(self.base_rows, self.vectors.rows))
        return np.union1d(found[found >= 0], appended[appended >= 0])

    def rank(self, positions: np.ndarray | None, q: np.ndarray, allowed: np.ndarray | None,
             excluded: list[int], k: int, collapse: bool) -> list[Hit]:
        """Exact scores for the given rows (all rows if None), then the best k distinct photos."""
        # On unit vectors ||a-b||^2 = 2 - 2 a.b: ranking by the dot product is ranking by distance.
        sims = self.vectors.scan(q) if positions is None else self.vectors.take(positions) @ q
        return self.select(sims, positions, allowed, excluded, k, collapse)

    # changing

    @staticmethod
    def write_all(directory: Path, generation: int, vectors: np.ndarray, products: Sequence[dict[str, Any]],
                  settings: Mapping[str, Any]) -> dict[str, Any]:
        return write_base(directory, generation, vectors, products, settings)

    @staticmethod
    def apply(directory: Path, manifest: Mapping[str, Any], change: Change, generation: int) -> dict[str, Any]:
        """Write the change as generation's files: a segment of the added rows, and the change file (all rows
        removed, all attributes changed, since the base). What the manifest is to name, as {"files", "segments"}."""
        return write_change(FolderRows(directory, manifest), change, generation)

    def compact(self, generation: int, ann: str) -> dict[str, Any]:
        """Fold the segments and the change file into one new base, a chunk of vectors at a time."""
        atomic_write(self.directory / f"vectors-{generation}.npy", self.vectors.npy_writer())
        vectors = load_npy(self.directory / f"vectors-{generation}.npy", mmap=True)
        written = write_base(self.directory, generation, vectors, list(self.products), {"ann": ann})
        kept = {role: entry for role, entry in self.manifest["files"].items() if role not in ROW_FILES}
        return {**written, "files": {**kept, **written["files"]}}

    @staticmethod
    def due_for_compaction(manifest: Mapping[str, Any]) -> bool:
        """Once the rows appended and removed since the base pass COMPACT_SHARE of it (or the segments pass
        COMPACT_SEGMENTS)."""
        segments = manifest.get("segments", [])
        changed = sum(s.get("rows", 0) for s in segments) + manifest.get("removed", 0)
        base = max(manifest.get("base_rows", manifest["count"]), 1)
        return len(segments) > COMPACT_SEGMENTS or changed > COMPACT_SHARE * base
