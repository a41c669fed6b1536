"""Product records held column by column, each column in one buffer: a 44k catalogue in ~10 MB."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, overload

import numpy as np

# Columns with at most this many distinct values are stored as codes and can be search filters.
MAX_FACET_VALUES = 500


class Strings(Sequence["str | None"]):
    """Strings (or None) packed into one UTF-8 buffer, with a hash table to find one.

    44k Python strings would cost more than their bytes, and, made by a JSON parse, they would pin most
    of the memory the parse used: the bot kept ~50 MB of freed parse for the Kaggle set's products.
    """

    def __init__(self, values: Iterable[str | None]):
        cells = list(values)
        encoded = [b"" if v is None else v.encode("utf-8", "surrogatepass") for v in cells]
        self._blob = b"".join(encoded)
        self._ends = np.cumsum([len(e) for e in encoded], dtype=np.int64)
        self._missing = np.array([v is None for v in cells], dtype=bool)
        hashes = np.array([hash(v) for v in cells], dtype=np.int64)  # str hashes are per process: never saved
        self._order = np.argsort(hashes, kind="stable")
        self._hashes = hashes[self._order]

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, i: int) -> str | None: ...
    @overload
    def __getitem__(self, i: slice) -> list[str | None]: ...

    def __getitem__(self, i: int | slice) -> str | list[str | None] | None:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if self._missing[i]:
            return None
        start = int(self._ends[i - 1]) if i else 0
        return self._blob[start:int(self._ends[i])].decode("utf-8", "surrogatepass")

    def position(self, value: object) -> int | None:
        """Where value is (the first place, if it is there more than once), or None."""
        if not isinstance(value, str):
            return None
        key = hash(value)
        start, stop = np.searchsorted(self._hashes, key, "left"), np.searchsorted(self._hashes, key, "right")
        for j in self._order[start:stop]:
            if self[j] == value:
                return int(j)
        return None

    def __contains__(self, value: object) -> bool:
        return self.position(value) is not None

    def codes(self) -> np.ndarray:
        """A number per cell, equal for equal strings: 0, 1, 2 ... in order of first appearance."""
        out = np.empty(len(self), np.int64)
        seen: dict[str | None, int] = {}
        for i in range(len(self)):
            out[i] = seen.setdefault(self[i], len(seen))
        return out


class ProductTable(Sequence[dict[str, Any]]):
    """Reads like a list of {"id", "image", "photo", "meta": {...}} records, built anew on access.

    A record is one photo: a product with several photos has several records, with the same id and meta.
    """

    def __init__(self, records: Sequence[dict[str, Any]]):
        self.ids = Strings(r["id"] for r in records)
        self.images = Strings(r["image"] for r in records)
        self.photos = Strings(r.get("photo") or r["id"] for r in records)
        columns = dict.fromkeys(column for r in records for column in r.get("meta", {}))
        # column -> (values, codes): values[codes[i]] is row i's value, None where a row lacks it
        self.facets: dict[str, tuple[Strings, np.ndarray]] = {}
        self.text: dict[str, Strings] = {}
        for column in columns:
            cells = [r.get("meta", {}).get(column) for r in records]
            values: dict[str | None, int] = {}
            codes = [values.setdefault(cell, len(values)) for cell in cells]
            if len(values) <= MAX_FACET_VALUES:
                self.facets[column] = (Strings(values), np.array(codes, dtype=np.int32))
            else:
                self.text[column] = Strings(cells)
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

    def column(self, name: str) -> list[str | None]:
        """One meta column, a cell per row (None where a row lacks it)."""
        if name in self.facets:
            values, codes = self.facets[name]
            return [values[int(c)] for c in codes]
        return list(self.text[name]) if name in self.text else [None] * len(self)

    def filterable(self) -> dict[str, list[str]]:
        return {c: [v for v in values if v is not None] for c, (values, _) in self.facets.items()}
