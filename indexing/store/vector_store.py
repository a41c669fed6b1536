"""The one interface to where a catalogue is kept (the index folder's own files, or Milvus): read, search, change."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from indexing.extract.embedder import DIM

# Feeds' spellings of a product that is not for sale now: kept in the index (a restock costs no
# embedding), never shown.
OUT_OF_STOCK = {"out of stock", "out_of_stock"}

# Where each kind of store is implemented: imported only when a catalogue of that kind is opened (Milvus
# needs the 'scale' extra).
KINDS = {"folder": "indexing.store.folder_store:FolderStore", "milvus": "indexing.store.milvus_store:MilvusStore"}


@dataclass(frozen=True)
class Hit:
    """One search result."""

    rank: int
    id: str
    score: float  # cosine similarity of the unit vectors, 1.0 = identical
    distance: float  # Euclidean distance of the unit vectors, 0.0 = identical
    product: Mapping[str, Any] = field(repr=False)

    @property
    def meta(self) -> Mapping[str, str]:
        return self.product.get("meta", {})

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "id": self.id,
            "score": round(self.score, 6),
            "distance": round(self.distance, 6),
            "image": self.product["image"],
            **self.meta,
        }


def hit(rank: int, similarity: float, record: Mapping[str, Any]) -> Hit:
    """A result from its inner product with the query: on unit vectors ||a-b||^2 = 2 - 2 a.b."""
    return Hit(rank, record["id"], similarity, float(np.sqrt(max(0.0, 2.0 - 2.0 * similarity))), record)


@dataclass(frozen=True)
class Change:
    """What one add, remove or sync changes; a store writes these rows and nothing else.

    removed: products whose rows all go (a product re-added with other photos is removed first). added: the
    records of new rows (one per photo, a product's main photo first), with their vectors. updated: a product's
    new attributes, where its photos (and so its vectors) stay.
    """

    removed: frozenset[str] = frozenset()
    added: Sequence[dict[str, Any]] = ()
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, DIM), np.float32))
    updated: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.removed or self.added or self.updated)


class VectorStore(Protocol):
    """A catalogue's rows (a photo each: its product's id, image, photo hash, attributes and unit vector)."""

    count: int  # rows
    product_count: int
    shown_count: int  # products in stock

    def __contains__(self, product_id: object) -> bool: ...
    def product(self, product_id: str) -> dict[str, Any]: ...
    def products_of(self, product_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The records of those of these products that the store holds (in one question to Milvus)."""
        ...

    def vector(self, product_id: str) -> np.ndarray: ...
    def ids_with_photo(self, product_id: str) -> list[str]: ...
    def facets(self) -> dict[str, list[str]]: ...
    def ids(self) -> Sequence[str]: ...
    def records(self) -> Iterator[dict[str, Any]]:
        """Every row's record: in order (a product's main photo first), or each marked "main"."""
        ...
    def photo_vectors(self, photos: Iterable[str]) -> dict[str, np.ndarray]: ...
    def describe(self) -> str: ...

    def search(self, query: np.ndarray, k: int, *, exclude: Iterable[str] = (),
               filters: Mapping[str, Sequence[str]] | None = None, collapse_duplicates: bool = True) -> list[Hit]: ...

    def search_many(self, queries: np.ndarray, k: int, *, excludes: Sequence[Iterable[str]],
                    filters: Sequence[Mapping[str, Sequence[str]] | None], collapse_duplicates: bool = True
                    ) -> list[list[Hit]]: ...

    @staticmethod
    def write_all(directory: Path, generation: int, vectors: np.ndarray, products: Sequence[dict[str, Any]],
                  settings: Mapping[str, Any]) -> dict[str, Any]:
        """Write a whole catalogue as generation (settings: ann, store, extractor, probe); the manifest's fields."""
        ...

    @staticmethod
    def apply(directory: Path, manifest: Mapping[str, Any], change: Change, generation: int) -> dict[str, Any]:
        """Write only the rows that the change touches, as generation; the manifest's fields afterwards."""
        ...

    @staticmethod
    def due_for_compaction(manifest: Mapping[str, Any]) -> bool:
        """Whether the changes committed so far (as the manifest records them) call for a compaction."""
        ...

    def compact(self, generation: int, ann: str) -> dict[str, Any]:
        """Fold the changes written in place into a fresh base, as generation; the manifest's fields."""
        ...


def kind_of(manifest: Mapping[str, Any]) -> str:
    store = manifest.get("store") or {}
    return str(store.get("kind", "milvus")) if store else "folder"


def store_class(kind: str) -> Any:
    module, _, name = KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def open_store(directory: Path, manifest: dict[str, Any], store_uri: str | None = None, *,
               verify: bool = True) -> VectorStore:
    """The store that an index's manifest names. store_uri: where this machine reaches its Milvus. verify: check
    the folder's data files against their checksums (a reader does; a writer that only appends need not)."""
    return store_class(kind_of(manifest)).open(directory, manifest, store_uri, verify=verify)


def in_stock(record: Mapping[str, Any]) -> bool:
    """Whether a product's record may be shown (not out of stock)."""
    return (record.get("meta", {}).get("availability") or "").strip().lower() not in OUT_OF_STOCK


def visible(availability: Iterable[str | None]) -> np.ndarray:
    """Per row: whether it may be shown (not out of stock)."""
    return np.array([(value or "").strip().lower() not in OUT_OF_STOCK for value in availability], dtype=bool)
