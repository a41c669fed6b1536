"""A loaded index: its manifest, the extractor's probe, and the store that holds its catalogue (folder or Milvus)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexing.store.files import checked_file, load_npy, read_manifest
from indexing.store.vector_store import Hit, VectorStore, open_store

__all__ = ["Hit", "Index"]


class Index:
    """What the bot and the CLI search: the catalogue's store, read through one interface, and the index folder
    (manifest, probe, exported extractor, photos)."""

    def __init__(self, directory: Path, manifest: dict[str, Any], store: VectorStore, probe: np.ndarray):
        self.directory = directory
        self.manifest = manifest
        self.store = store
        self.probe = probe

    @classmethod
    def load(cls, directory: str | Path, store_uri: str | None = None) -> Index:
        """The index in directory; store_uri: where this machine reaches the Milvus that the manifest names."""
        directory = Path(directory)
        manifest = read_manifest(directory)
        probe = load_npy(checked_file(directory, manifest, "probe"), mmap=False)
        return cls(directory, manifest, open_store(directory, manifest, store_uri), probe)

    @property
    def count(self) -> int:
        """Rows: photos, one or more per product."""
        return self.store.count

    @property
    def product_count(self) -> int:
        return self.store.product_count

    @property
    def shown_count(self) -> int:
        """Products that can be shown: those in stock."""
        return self.store.shown_count

    @property
    def fingerprint(self) -> dict[str, Any]:
        return self.manifest["extractor"]

    @property
    def ids(self) -> Sequence[str]:
        """Each row's product id."""
        return self.store.ids()

    def __contains__(self, product_id: object) -> bool:
        return product_id in self.store

    def product(self, product_id: str) -> dict[str, Any]:
        return self.store.product(product_id)

    def products_of(self, product_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The records of those of these products that the index holds."""
        return self.store.products_of(product_ids)

    def vector(self, product_id: str) -> np.ndarray:
        return self.store.vector(product_id)

    def same_photo(self, a: str, b: str) -> bool:
        """True for one product, or two that the results show once (a shared photo or item group)."""
        return b in self.store.ids_with_photo(a)

    def ids_with_photo(self, product_id: str) -> list[str]:
        """The product and those shown in its place: see same_photo."""
        return self.store.ids_with_photo(product_id)

    def image_path(self, product_id: str) -> Path:
        """The product's main photo."""
        return self.directory / self.product(product_id)["image"]

    def hit_path(self, hit: Hit) -> Path:
        """The photo that the hit matched by."""
        return self.directory / hit.product["image"]

    def facets(self) -> dict[str, list[str]]:
        """Filterable columns and their values, as spelled in the catalogue."""
        return self.store.facets()

    def search(self, query: np.ndarray, k: int = 5, *, exclude: Iterable[str] = (),
               filters: Mapping[str, Sequence[str]] | None = None, collapse_duplicates: bool = True) -> list[Hit]:
        """The k nearest products to a query vector by Euclidean distance, each by its nearest photo.

        Out-of-stock products are never returned; collapse_duplicates: show a collapse group once.
        """
        return self.store.search(query, k, exclude=exclude, filters=filters, collapse_duplicates=collapse_duplicates)

    def search_many(self, queries: np.ndarray, k: int = 5, *, excludes: Sequence[Iterable[str]] | None = None,
                    filters: Sequence[Mapping[str, Sequence[str]] | None] | None = None,
                    collapse_duplicates: bool = True) -> list[list[Hit]]:
        """search() for several queries at once (the folder serves them all with one pass over the vectors)."""
        queries = np.asarray(queries, dtype=np.float32).reshape(len(queries), -1)
        return self.store.search_many(queries, k, excludes=excludes or [()] * len(queries),
                                      filters=filters or [None] * len(queries), collapse_duplicates=collapse_duplicates)
