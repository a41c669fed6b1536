"""Product records held column by column: a 44k catalogue in ~15 MB instead of ~70 MB of dicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import numpy as np

# Columns with at most this many distinct values are stored as codes and can be search filters.
MAX_FACET_VALUES = 500


class ProductTable(Sequence[dict[str, Any]]):
    """Reads like a list of {"id", "image", "photo", "meta": {...}} records, built anew on access."""

    def __init__(self, records: Sequence[dict[str, Any]]):
        self.ids: list[str] = [r["id"] for r in records]
        self.images: list[str] = [r["image"] for r in records]
        self.photos: list[str] = [r.get("photo") or r["id"] for r in records]
        columns = dict.fromkeys(column for r in records for column in r.get("meta", {}))
        # column -> (values, codes): values[codes[i]] is row i's value, None where a row lacks it
        self.facets: dict[str, tuple[list[str | None], np.ndarray]] = {}
        self.text: dict[str, list[str | None]] = {}
        for column in columns:
            cells = [r.get("meta", {}).get(column) for r in records]
            values: dict[str | None, int] = {}
            codes = [values.setdefault(cell, len(values)) for cell in cells]
            if len(values) <= MAX_FACET_VALUES:
                self.facets[column] = (list(values), np.array(codes, dtype=np.int32))
            else:
                self.text[column] = cells
        self.columns = list(columns)

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        meta = {}
        for column in self.columns:
            if column in self.facets:
                values, codes = self.facets[column]
                value = values[codes[i]]
            else:
                value = self.text[column][i]
            if value is not None:
                meta[column] = value
        return {"id": self.ids[i], "image": self.images[i], "photo": self.photos[i], "meta": meta}

    def filterable(self) -> dict[str, list[str]]:
        return {c: [v for v in values if v is not None] for c, (values, _) in self.facets.items()}
