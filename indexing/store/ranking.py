"""Products held in memory, and the ranking of scored rows over them: filters, stock, exclusions, and each
product (or group of products that share a photo) shown once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from indexing.errors import FashionIndexError
from indexing.store.products import ProductTable
from indexing.store.vector_store import Hit, hit, visible


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


def spell(facets: Mapping[str, Sequence[str | None]], filters: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Each filter's values as the catalogue spells them (filters match case-insensitively)."""
    out = {}
    for column, wanted in filters.items():
        if column not in facets:
            raise FashionIndexError(
                f"cannot filter on {column!r}; filterable columns: {', '.join(sorted(facets))}"
            )
        lowered = {v.lower() for v in wanted}
        out[column] = [v for v in facets[column] if v is not None and v.lower() in lowered]
    return out


class Ranking:
    """A catalogue's product records, by position, and the choice of the k results among scored positions."""

    def __init__(self, products: ProductTable):
        self.products = products
        self._product, self._group = groups(products)
        shown = visible(products.column("availability"))
        self._visible = None if shown.all() else shown

    @property
    def count(self) -> int:
        return len(self.products)

    @property
    def product_count(self) -> int:
        return int(self._product.max()) + 1 if self.count else 0

    @property
    def shown_count(self) -> int:
        if self._visible is None:
            return self.product_count
        return len(np.unique(self._product[self._visible]))

    def ids(self) -> Sequence[str]:
        return self.products.ids  # type: ignore[return-value]

    def __contains__(self, product_id: object) -> bool:
        return product_id in self.products.ids

    def position(self, product_id: str) -> int:
        """The row of a product's main photo."""
        found = self.products.ids.position(product_id)
        if found is None:
            raise KeyError(product_id)
        return found

    def positions(self, product_ids: Iterable[str]) -> list[int]:
        """Every row of these products, leaving out any the index does not hold."""
        found = [self.products.ids.position(pid) for pid in product_ids]
        codes = [self._product[p] for p in found if p is not None]
        return np.flatnonzero(np.isin(self._product, codes)).tolist() if codes else []

    def product(self, product_id: str) -> dict[str, Any]:
        return self.products[self.position(product_id)]

    def products_of(self, product_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {pid: self.product(pid) for pid in product_ids if pid in self}

    def ids_with_photo(self, product_id: str) -> list[str]:
        """The product and those shown in its place: those that share a photo or an item group."""
        group = self._group[self.position(product_id)]
        return list(dict.fromkeys(self.products.ids[i] for i in np.flatnonzero(self._group == group)))

    def facets(self) -> dict[str, list[str]]:
        return self.products.filterable()

    def filter_mask(self, filters: Mapping[str, Sequence[str]] | None) -> np.ndarray | None:
        """Rows that may be shown and match every column (any of its values, case-insensitively);
        None if that is every row."""
        if not filters:
            return self._visible
        mask = np.ones(self.count, dtype=bool) if self._visible is None else self._visible.copy()
        facets = {column: list(values) for column, (values, _) in self.products.facets.items()}
        for column, chosen in spell(facets, filters).items():
            values, codes = self.products.facets[column]
            mask &= np.isin(codes, [i for i, value in enumerate(values) if value in chosen])
        return mask

    def select(self, sims: np.ndarray, positions: np.ndarray | None, allowed: np.ndarray | None,
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
        return self.top(sims, positions, k, collapse)

    def top(self, sims: np.ndarray, positions: np.ndarray | None, k: int, collapse: bool) -> list[Hit]:
        """The k best rows of sims (rows are positions, or positions[row]), one per product (or collapse group)."""
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
                hits.append(hit(len(hits) + 1, sim, self.products[position]))
                if len(hits) == k:
                    return hits
            if wanted >= n or (len(best) and sims[best[-1]] == -np.inf):
                return hits
            wanted = min(n, wanted * 4)
