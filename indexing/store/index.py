"""A loaded index (vectors, products, filter columns) and its exact nearest-neighbour search."""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from indexing.errors import FashionIndexError, IndexFormatError
from indexing.extract.embedder import l2_normalize
from indexing.store.ann import CANDIDATES, Graph
from indexing.store.files import checked_file, load_npy, read_manifest
from indexing.store.milvus import milvus_filter
from indexing.store.products import ProductTable
from indexing.store.scan import similarities

# Feeds' spellings of a product that is not for sale now: kept in the index (a restock costs no
# embedding), never shown.
OUT_OF_STOCK = {"out of stock", "out_of_stock"}


class Candidates(Protocol):
    """Proposes the rows nearest a query (the HNSW graph, or Milvus); the index ranks them exactly."""

    def candidates(self, query: np.ndarray, n: int) -> np.ndarray: ...


def groups(products: ProductTable) -> tuple[np.ndarray, np.ndarray]:
    """Per row: its product's number, and its collapse group's number.

    A collapse group is the products that the results show once: those that share a byte-identical
    photo (the Kaggle set lists some products twice) or an item_group_id (one shirt in four colours).
    """
    product = products.ids.codes()
    parent = list(range(int(product.max()) + 1 if len(product) else 0))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for column in (list(products.photos), products.column("item_group_id")):
        first: dict[str, int] = {}
        for row, key in enumerate(column):
            if key:
                a, b = root(int(product[row])), root(first.setdefault(key, int(product[row])))
                parent[max(a, b)] = min(a, b)
    return product, np.array([root(int(p)) for p in product], np.int64)


def visible_rows(products: ProductTable) -> np.ndarray | None:
    """Rows that may be shown (None: all of them)."""
    stock = products.column("availability")
    hidden = np.array([(value or "").strip().lower() in OUT_OF_STOCK for value in stock], dtype=bool)
    return ~hidden if hidden.any() else None


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


class Index:
    """A loaded index: unit vectors (memory-mapped), product records and filter columns."""

    def __init__(self, directory: Path, manifest: dict[str, Any], vectors: np.ndarray,
                 products: list[dict[str, Any]], probe: np.ndarray, graph: Candidates | None = None):
        self.directory = directory
        self.graph = graph
        self._file: int | None = None
        if graph is not None and isinstance(vectors, np.memmap) and vectors.filename:
            # Scattered rows are read with pread: touching them through the memory map makes the
            # kernel map whole page-cache folios, and RSS grew to the whole file (8 GB at 1M products).
            self._file = os.open(vectors.filename, os.O_RDONLY)
            weakref.finalize(self, os.close, self._file)
        self.manifest = manifest
        self.vectors = vectors
        self.products = ProductTable(products)
        self.probe = probe
        self.ids = self.products.ids
        self._product, self._group = groups(self.products)
        self._visible = visible_rows(self.products)

    @classmethod
    def load(cls, directory: str | Path, store_uri: str | None = None) -> Index:
        """The index in directory; store_uri: where this machine reaches the Milvus that the manifest names."""
        directory = Path(directory)
        manifest = read_manifest(directory)
        if manifest.get("store"):
            return cls.load_milvus(directory, manifest, store_uri)
        count, dim = manifest["count"], manifest["dim"]
        vectors = load_npy(checked_file(directory, manifest, "vectors"), mmap=True)
        if vectors.dtype != np.float32 or vectors.shape != (count, dim):
            raise IndexFormatError(
                f"index {directory}: vectors are {vectors.dtype} {vectors.shape}, "
                f"the manifest says float32 ({count}, {dim})"
            )
        probe = load_npy(checked_file(directory, manifest, "probe"), mmap=False)
        try:
            products = json.loads(checked_file(directory, manifest, "products").read_text("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexFormatError(f"index {directory}: products file is not JSON ({exc})") from None
        if (
            not isinstance(products, list)
            or len(products) != count
            or not all(isinstance(p, dict) and isinstance(p.get("id"), str) for p in products)
            or len({(p["id"], p.get("image")) for p in products}) != count
        ):
            raise IndexFormatError(f"index {directory}: products do not match the manifest")
        graph = None
        if "ann" in manifest["files"]:
            graph = Graph(checked_file(directory, manifest, "ann"))
        return cls(directory, manifest, vectors, products, probe, graph)

    @classmethod
    def load_milvus(cls, directory: Path, manifest: dict[str, Any], store_uri: str | None) -> Index:
        from indexing.store.milvus import read_generation

        store = {**manifest["store"], **({"uri": store_uri} if store_uri else {})}
        rows, products, probe = read_generation(store, store["current"], manifest["extractor"])
        if len(products) != manifest["count"]:
            raise IndexFormatError(f"index {directory}: Milvus holds {len(products)} rows, the manifest says "
                                   f"{manifest['count']}")
        # Milvus proposes the candidates (as the HNSW graph does for a large folder); distances stay exact.
        return cls(directory, manifest, rows, products, probe, graph=rows)

    @property
    def count(self) -> int:
        """Rows: photos, one or more per product."""
        return len(self.ids)

    @property
    def product_count(self) -> int:
        return int(self._product.max()) + 1 if self.count else 0

    @property
    def shown_count(self) -> int:
        """Products that can be shown: those in stock."""
        if self._visible is None:
            return self.product_count
        return len(np.unique(self._product[self._visible]))

    @property
    def fingerprint(self) -> dict[str, Any]:
        return self.manifest["extractor"]

    def __contains__(self, product_id: object) -> bool:
        return product_id in self.ids

    def position(self, product_id: str) -> int:
        """The row of a product's main photo."""
        found = self.ids.position(product_id)
        if found is None:
            raise KeyError(product_id)
        return found

    def positions(self, product_ids: Iterable[str]) -> list[int]:
        """Every row of these products, leaving out any the index does not hold."""
        found = [self.ids.position(pid) for pid in product_ids]
        codes = [self._product[p] for p in found if p is not None]
        return np.flatnonzero(np.isin(self._product, codes)).tolist() if codes else []

    def product(self, product_id: str) -> dict[str, Any]:
        return self.products[self.position(product_id)]

    def vector(self, product_id: str) -> np.ndarray:
        return self.rows(np.array([self.position(product_id)]))[0]

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """The vectors at these positions, as a new array."""
        if self._file is None:
            return np.asarray(self.vectors[positions], dtype=np.float32)
        assert isinstance(self.vectors, np.memmap)
        out = np.empty((len(positions), self.vectors.shape[1]), dtype=np.float32)
        size = out.shape[1] * 4
        for i, position in enumerate(positions):
            os.preadv(self._file, [memoryview(out[i]).cast("B")], self.vectors.offset + int(position) * size)
        return out

    def same_photo(self, a: str, b: str) -> bool:
        """True for one product, or two that the results show once (a shared photo or item group)."""
        return bool(self._group[self.position(a)] == self._group[self.position(b)])

    def ids_with_photo(self, product_id: str) -> list[str]:
        """The product and those shown in its place: see same_photo."""
        group = self._group[self.position(product_id)]
        return list(dict.fromkeys(self.ids[i] for i in np.flatnonzero(self._group == group)))

    def image_path(self, product_id: str) -> Path:
        """The product's main photo."""
        return self.directory / self.product(product_id)["image"]

    def hit_path(self, hit: Hit) -> Path:
        """The photo that the hit matched by."""
        return self.directory / hit.product["image"]

    def facets(self) -> dict[str, list[str]]:
        """Filterable columns and their values, as spelled in the catalogue."""
        return self.products.filterable()

    def search(
        self,
        query: np.ndarray,
        k: int = 5,
        *,
        exclude: Iterable[str] = (),
        filters: Mapping[str, Sequence[str]] | None = None,
        collapse_duplicates: bool = True,
    ) -> list[Hit]:
        """The k nearest products to a query vector by Euclidean distance, each by its nearest photo.

        Distances are always exact; with an approximate-search graph only the candidates are not.
        Out-of-stock products are never returned; collapse_duplicates: show a collapse group once.
        """
        if k < 1 or self.count == 0:
            return []
        q = l2_normalize(np.asarray(query, dtype=np.float32).reshape(-1))
        if q.shape[0] != self.vectors.shape[1]:
            raise FashionIndexError(f"query has {q.shape[0]} dimensions, the index {self.vectors.shape[1]}")
        allowed = self.filter_mask(filters)
        excluded = self.positions(exclude)
        wanted = CANDIDATES + 8 * k + len(excluded)
        scored = getattr(self.graph, "scored", None)
        if scored is not None:
            # Milvus scores exactly (FLAT): its candidates need no re-ranking, and fetching their vectors
            # would cost more than the search. Too few left by filters: ask for as many as it gives.
            # Filters, stock and exclusions go to Milvus too, so that its candidates are ones we can show.
            where = milvus_filter(self.spelled(filters or {}), self.hidden_spellings(), list(exclude))
            for n in (4 * k + 16, self.count):  # its time grows with n: ask for few first
                positions, sims = scored(q, n, where)
                hits = self._select(sims, positions, allowed, excluded, k, collapse_duplicates)
                if len(hits) == k or len(positions) < n:
                    return hits
            return hits
        if self.graph is not None:
            candidates = np.sort(self.graph.candidates(q, wanted))
            hits = self._rank(candidates, q, allowed, excluded, k, collapse_duplicates)
            if len(hits) == k:
                return hits
            # Filters or exclusions left too few of the graph's candidates: scan everything.
        return self._rank(None, q, allowed, excluded, k, collapse_duplicates)

    def search_many(
        self,
        queries: np.ndarray,
        k: int = 5,
        *,
        excludes: Sequence[Iterable[str]] | None = None,
        filters: Sequence[Mapping[str, Sequence[str]] | None] | None = None,
        collapse_duplicates: bool = True,
    ) -> list[list[Hit]]:
        """search() for several queries at once: one pass over the vectors serves them all."""
        queries = np.asarray(queries, dtype=np.float32).reshape(len(queries), -1)
        excludes = excludes or [()] * len(queries)
        filters = filters or [None] * len(queries)
        if self.graph is not None or len(queries) == 1 or self.count == 0 or k < 1:
            return [self.search(q, k, exclude=e, filters=f, collapse_duplicates=collapse_duplicates)
                    for q, e, f in zip(queries, excludes, filters, strict=True)]
        if queries.shape[1] != self.vectors.shape[1]:
            raise FashionIndexError(f"queries have {queries.shape[1]} dimensions, the index {self.vectors.shape[1]}")
        # The scan is bound by memory bandwidth: a matrix product reads the vectors once for every query.
        sims = similarities(self.vectors, l2_normalize(queries))
        return [
            self._select(row, None, self.filter_mask(f), self.positions(e),
                         k, collapse_duplicates)
            for row, e, f in zip(sims, excludes, filters, strict=True)
        ]

    def _rank(self, positions: np.ndarray | None, q: np.ndarray, allowed: np.ndarray | None,
              excluded: list[int], k: int, collapse: bool) -> list[Hit]:
        """Exact scores for the given rows (all rows if None), then the best k distinct photos."""
        # On unit vectors ||a-b||^2 = 2 - 2 a.b: ranking by the dot product is ranking by distance.
        sims = similarities(self.vectors, q) if positions is None else self.rows(positions) @ q
        return self._select(sims, positions, allowed, excluded, k, collapse)

    def _select(self, sims: np.ndarray, positions: np.ndarray | None, allowed: np.ndarray | None,
                excluded: list[int], k: int, collapse: bool) -> list[Hit]:
        """Drop filtered-out and excluded rows from sims (in place), then take the top k."""
        if positions is None:
            if allowed is not None:
                sims[~allowed] = -np.inf
            sims[excluded] = -np.inf
        else:
            if allowed is not None:
                sims[~allowed[positions]] = -np.inf
            sims[np.isin(positions, excluded)] = -np.inf
        return self._top(sims, positions, k, collapse)

    def _top(self, sims: np.ndarray, positions: np.ndarray | None, k: int, collapse: bool) -> list[Hit]:
        """The k best rows of sims (rows are index positions, or positions[row]), one per product
        (or per collapse group)."""
        n = len(sims)
        wanted = min(n, 4 * k + 16)
        while True:
            best = np.argpartition(-sims, wanted - 1)[:wanted] if wanted < n else np.arange(n)
            best = best[np.argsort(-sims[best], kind="stable")]
            hits: list[Hit] = []
            seen: set[int] = set()
            for row in best:
                sim = float(sims[row])
                position = int(row if positions is None else positions[row])
                if sim == -np.inf:
                    break
                group = int((self._group if collapse else self._product)[position])
                if group in seen:
                    continue
                seen.add(group)
                distance = float(np.sqrt(max(0.0, 2.0 - 2.0 * sim)))
                hits.append(Hit(len(hits) + 1, self.ids[position], sim, distance, self.products[position]))
                if len(hits) == k:
                    return hits
            if wanted >= n or (len(best) and sims[best[-1]] == -np.inf):
                return hits
            wanted = min(n, wanted * 4)

    def filter_mask(self, filters: Mapping[str, Sequence[str]] | None) -> np.ndarray | None:
        """Rows that may be shown and match every column (any of its values, case-insensitively);
        None if that is every row."""
        if not filters:
            return self._visible
        mask = np.ones(self.count, dtype=bool) if self._visible is None else self._visible.copy()
        for column, chosen in self.spelled(filters).items():
            values, codes = self.products.facets[column]
            mask &= np.isin(codes, [i for i, value in enumerate(values) if value in chosen])
        return mask

    def spelled(self, filters: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
        """Each filter's values as the catalogue spells them (filters match case-insensitively)."""
        out = {}
        for column, wanted in filters.items():
            if column not in self.products.facets:
                raise FashionIndexError(
                    f"cannot filter on {column!r}; filterable columns: {', '.join(sorted(self.products.facets))}"
                )
            lowered = {v.lower() for v in wanted}
            out[column] = [v for v in self.products.facets[column][0] if v is not None and v.lower() in lowered]
        return out

    def hidden_spellings(self) -> list[str]:
        """The catalogue's spellings of out-of-stock, which are never shown."""
        values = self.products.facets.get("availability", ((), None))[0]
        return [v for v in values if v is not None and v.strip().lower() in OUT_OF_STOCK]
