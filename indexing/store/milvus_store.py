"""The catalogue in Milvus: searched there with its filters, records fetched for the products shown, changes
written in place. A reader holds nothing that grows with the catalogue."""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexing.errors import FashionIndexError, IndexFormatError
from indexing.extract.embedder import l2_normalize
from indexing.store.milvus import (
    INSERT_BATCH,
    SEARCH_LIMIT,
    client,
    copy_rows,
    create_generation,
    index_settings,
    milvus_filter,
    probe_of,
    retried,
    shown,
    switch_alias,
    upsert_rows,
)
from indexing.store.ranking import spell
from indexing.store.vector_store import Change, Hit, hit

log = logging.getLogger(__name__)
INDEXING_TIMEOUT = 4 * 3600.0  # seconds; HNSW over 1M photos on 2 cores takes about an hour

FIELDS = ["id", "image", "photo", "meta"]
# Reads see others' writes within about a second (a writer's commit waits until they are applied: settled_count);
# Strong would wait for the next time tick on every read (~200 ms each on Milvus 2.3 standalone, seconds per album).
READ = {"consistency_level": "Session"}
COUNTS_TTL = 10.0  # seconds a count is reused: /stats and health ask often, the catalogue changes seldom
FACETS = "fashion.facets"
MAX_FACET_VALUES = 500  # as the folder's product table: more distinct values is free text, not a filter


def record(row: Mapping[str, Any]) -> dict[str, Any]:
    entity = row.get("entity", row)
    return {"id": entity["id"], "image": entity["image"], "photo": entity["photo"] or None,
            "meta": entity["meta"] or {}}


def quoted(values: Iterable[str]) -> str:
    return json.dumps(list(values), ensure_ascii=False)


def facets_of(records: Iterable[Mapping[str, Any]], known: Mapping[str, list[str]] | None = None
              ) -> dict[str, list[str]]:
    """Filterable columns and their values (known ones kept): columns with at most MAX_FACET_VALUES values."""
    values: dict[str, dict[str, None]] = {c: dict.fromkeys(v) for c, v in (known or {}).items()}
    for r in records:
        for column, value in (r.get("meta") or {}).items():
            values.setdefault(column, {})[value] = None
    return {c: list(v) for c, v in values.items() if len(v) <= MAX_FACET_VALUES}


class MilvusStore:
    """A catalogue's collection, read through its alias: every question is a query or search in Milvus."""

    def __init__(self, store: Mapping[str, Any]):
        self.store = dict(store)
        self.milvus, self.name = client(store["uri"]), store["collection"]
        self.index = store.get("index") or index_settings(0)
        self._counts: dict[str, tuple[float, int]] = {}
        # A Milvus that restarted, or a Lite file opened by a new process, holds the collection released.
        retried(self.milvus.load_collection, self.name)
        properties = self.properties()
        self.fingerprint = json.loads(properties.get("fashion.fingerprint", "{}"))
        self._facets: dict[str, list[str]] = json.loads(properties.get(FACETS, "{}"))

    @classmethod
    def open(cls, directory: Path, manifest: Mapping[str, Any], store_uri: str | None = None, *,
             verify: bool = True) -> MilvusStore:
        store = {**manifest["store"], **({"uri": store_uri} if store_uri else {})}
        if not retried(client(store["uri"]).has_collection, store["collection"]):
            raise IndexFormatError(f"Milvus at {store['uri']} has no collection {store['collection']}: the index "
                                   "names a catalogue that is not there (another Milvus, or dropped)")
        opened = cls(store)
        if opened.fingerprint != manifest["extractor"]:
            raise IndexFormatError(f"Milvus collection {store['collection']} was made by another extractor than "
                                   "this index's")
        return opened

    def properties(self) -> dict[str, str]:
        return retried(self.milvus.describe_collection, self.name).get("properties", {})

    # reading

    def query(self, where: str, fields: Sequence[str]) -> list[dict[str, Any]]:
        return self.read(self.milvus.query, filter=where, output_fields=list(fields), **READ)

    def rows_of_products(self, product_ids: Sequence[str], fields: Sequence[str]) -> list[dict[str, Any]]:
        """Every row of these products (in one query per 500 of them)."""
        rows, wanted = [], list(dict.fromkeys([*fields, "id", "main"]))
        for start in range(0, len(product_ids), 500):
            rows += self.query(f"id in {quoted(product_ids[start:start + 500])}", wanted)
        return rows

    def counted(self, where: str) -> int:
        cached = self._counts.get(where)
        if cached is None or time.monotonic() - cached[0] > COUNTS_TTL:
            rows = self.query(where, ["count(*)"])
            cached = self._counts[where] = (time.monotonic(), int(rows[0]["count(*)"]))
        return cached[1]

    @property
    def count(self) -> int:
        return self.counted("")

    @property
    def product_count(self) -> int:
        return self.counted("main == true")

    @property
    def shown_count(self) -> int:
        return self.counted("main == true and shown == true")

    def rows_of(self, product_id: str, fields: Sequence[str] = FIELDS) -> list[dict[str, Any]]:
        """A product's rows, its main photo's first."""
        return sorted(self.rows_of_products([product_id], fields), key=lambda r: not r["main"])

    def __contains__(self, product_id: object) -> bool:
        return isinstance(product_id, str) and bool(self.rows_of(product_id, ["id"]))

    def product(self, product_id: str) -> dict[str, Any]:
        rows = self.rows_of(product_id)
        if not rows:
            raise KeyError(product_id)
        return record(rows[0])

    def products_of(self, product_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {r["id"]: record(r) for r in self.rows_of_products(list(product_ids), FIELDS) if r["main"]}

    def vector(self, product_id: str) -> np.ndarray:
        rows = self.rows_of(product_id, ["vector"])
        if not rows:
            raise KeyError(product_id)
        return np.asarray(rows[0]["vector"], np.float32)

    def ids_with_photo(self, product_id: str) -> list[str]:
        rows = self.rows_of(product_id, ["photo", "meta"])
        if not rows:
            raise KeyError(product_id)
        photos = [r["photo"] for r in rows if r["photo"]]
        parts = [f"photo in {quoted(photos)}"] if photos else []
        if group := (rows[0]["meta"] or {}).get("item_group_id"):
            parts.append(f'meta["item_group_id"] == {json.dumps(group)}')
        found = self.query(" or ".join(parts), ["id"]) if parts else []
        return list(dict.fromkeys([product_id, *(r["id"] for r in found)]))

    def facets(self) -> dict[str, list[str]]:
        return {column: list(values) for column, values in self._facets.items()}

    def ids(self) -> Sequence[str]:
        return [r["id"] for r in self.records()]

    def records(self) -> Iterator[dict[str, Any]]:
        """Every row's record, in no order: each marked main or not."""
        iterator = self.milvus.query_iterator(self.name, batch_size=4096, output_fields=[*FIELDS, "main"], **READ)
        try:
            while batch := iterator.next():
                yield from ({**record(r), "main": r["main"]} for r in batch)
        finally:
            iterator.close()

    def photo_vectors(self, photos: Iterable[str]) -> dict[str, np.ndarray]:
        wanted, found = list(dict.fromkeys(photos)), {}
        for start in range(0, len(wanted), 500):
            rows = self.query(f"photo in {quoted(wanted[start:start + 500])}", ["photo", "vector"])
            found.update((r["photo"], np.asarray(r["vector"], np.float32)) for r in rows)
        return found

    def describe(self) -> str:
        search = ", ".join(f"{k}={v}" for k, v in self.index["search"].items())
        kind = self.index["type"]
        how = "exact" if kind == "FLAT" else f"approximate ({kind}{', ' + search if search else ''})"
        return f"{how}; Milvus at {self.store['uri']}, collection {self.name}"

    def where(self, filters: Mapping[str, Sequence[str]], exclude: Iterable[str]) -> str:
        return milvus_filter(spell(self._facets, filters), list(exclude))

    def read(self, call: Callable[..., Any], **kwargs: Any) -> Any:
        """A query or search of the collection. One that still fails after its retries is tried once more after
        loading the collection again: a Milvus that restarted holds it released, and a bot holding this store
        would otherwise fail every search until its restart."""
        try:
            return retried(call, self.name, **kwargs)
        except FashionIndexError:
            retried(self.milvus.load_collection, self.name)
            return retried(call, self.name, **kwargs)

    def search(self, query: np.ndarray, k: int = 5, *, exclude: Iterable[str] = (),
               filters: Mapping[str, Sequence[str]] | None = None, collapse_duplicates: bool = True) -> list[Hit]:
        """The k nearest products, each by its nearest photo; filters, stock and exclusions are Milvus's filter.
        Scores are exact inner products (HNSW and IVF_FLAT keep the vectors whole); only the candidates of an
        approximate index are not."""
        if k < 1:
            return []
        q = l2_normalize(np.asarray(query, dtype=np.float32).reshape(-1))
        where = self.where(filters or {}, exclude)
        n = 4 * k + 16  # its time grows with n: ask for few first
        while True:
            limit = min(n, SEARCH_LIMIT)
            params = {key: max(value, limit) if key == "ef" else value for key, value in self.index["search"].items()}
            found = self.read(self.milvus.search, data=[q.tolist()], limit=limit, filter=where,
                            output_fields=FIELDS, search_params={"params": params}, **READ)[0]
            hits = self.distinct(found, k, collapse_duplicates)
            if len(hits) == k or len(found) < limit or limit == SEARCH_LIMIT:
                return hits
            n *= 4

    @staticmethod
    def distinct(found: Sequence[Mapping[str, Any]], k: int, collapse: bool) -> list[Hit]:
        """The first k results, one per product; with collapse, none that shares a photo or item group with one
        before it."""
        hits: list[Hit] = []
        seen: set[tuple[str, str]] = set()
        for row in found:
            product = record(row)
            keys = {("id", product["id"])}
            if collapse:
                keys |= {("photo", product["photo"] or ""), ("group", product["meta"].get("item_group_id", ""))}
                keys -= {("photo", ""), ("group", "")}
            if keys & seen:
                continue
            seen |= keys
            hits.append(hit(len(hits) + 1, float(row["distance"]), product))
            if len(hits) == k:
                break
        return hits

    def search_many(self, queries: np.ndarray, k: int, *, excludes: Sequence[Iterable[str]],
                    filters: Sequence[Mapping[str, Sequence[str]] | None], collapse_duplicates: bool = True
                    ) -> list[list[Hit]]:
        return [self.search(q, k, exclude=e, filters=f, collapse_duplicates=collapse_duplicates)
                for q, e, f in zip(queries, excludes, filters, strict=True)]

    # writing

    @staticmethod
    def write_all(directory: Path, generation: int, vectors: np.ndarray, products: Sequence[dict[str, Any]],
                  settings: Mapping[str, Any]) -> dict[str, Any]:
        """A whole catalogue into a new collection, then the alias switched to it; the manifest's fields."""
        store = settings["store"]
        index = index_settings(len(products), store.get("index_override"))
        name = f"{store['collection']}_g{generation}"
        milvus = client(store["uri"])
        if milvus.has_collection(name):  # left by a crash before the alias named it
            milvus.drop_collection(name)
        create_generation(store, name, int(vectors.shape[1]), settings["extractor"], settings["probe"], index)
        upsert_rows(store, name, vectors, products, fresh=True)
        finish_collection(store, name, facets_of(products))
        return {"files": {}, "count": len(products), "store": {**store, "kind": "milvus", "index": index}}

    @classmethod
    def apply(cls, directory: Path, manifest: Mapping[str, Any], change: Change, generation: int) -> dict[str, Any]:
        return cls.open(directory, manifest).write_change(change)

    def write_change(self, change: Change) -> dict[str, Any]:
        """Delete, upsert and update only the rows that changed, in the collection being served."""
        if change.removed:
            gone = sorted(change.removed)
            for start in range(0, len(gone), 500):
                retried(self.milvus.delete, self.name, filter=f"id in {quoted(gone[start:start + 500])}")
        if change.added:
            upsert_rows(self.store, self.name, change.vectors, list(change.added))
        if change.updated:
            self.update_meta(change.updated)
        # No flush: it would seal the few rows written as a segment of their own, which Milvus then merges into
        # a large one, rewriting it (a third of the catalogue's bytes for a 1% change at 44k products).
        facets = facets_of([*change.added, *({"meta": m} for m in change.updated.values())], self._facets)
        retried(self.milvus.alter_collection_properties, self.name, properties={FACETS: json.dumps(facets)})
        self._counts.clear()
        return {"count": self.settled_count()}

    def settled_count(self) -> int:
        """The row count once the server has applied every write made so far. A Strong read waits for that, and
        from then on every reader's reads include them: without it, a Milvus 2.3 that is settling after a restart
        showed a product deleted a moment before to the very process that deleted it (a Session read)."""
        return int(self.read(self.milvus.query, filter="", output_fields=["count(*)"],
                             consistency_level="Strong")[0]["count(*)"])

    @functools.cached_property
    def partial_updates(self) -> bool:
        return partial_updates(retried(self.milvus.get_server_version))

    def update_meta(self, updated: Mapping[str, Mapping[str, str]]) -> None:
        """New attributes for products' rows: their vectors are not written (a partial upsert), where this
        Milvus can; a server before 2.6 takes each row whole, its vector as it was."""
        fields = ["key"] if self.partial_updates else ["key", "image", "photo", "vector"]
        rows = [{**{f: r[f] for f in ("id", "main", *fields)}, "meta": dict(updated[r["id"]]),
                 "shown": shown(updated[r["id"]])} for r in self.rows_of_products(list(updated), fields)]
        for start in range(0, len(rows), INSERT_BATCH):
            retried(self.milvus.upsert, self.name, rows[start:start + INSERT_BATCH],
                    **({"partial_update": True} if self.partial_updates else {}))

    @staticmethod
    def due_for_compaction(manifest: Mapping[str, Any]) -> bool:
        """When the catalogue has grown (or shrunk) past the size that wants another kind of index."""
        store = manifest["store"]
        return not store.get("index_override") and index_settings(manifest["count"])["type"] != store["index"]["type"]

    def compact(self, generation: int, ann: str) -> dict[str, Any]:
        """Into a new collection with the index that the catalogue's size now wants (switched to by its alias);
        else Milvus's own compaction, which folds the rows deleted in place."""
        index = index_settings(self.count, self.store.get("index_override"))
        if index["type"] == self.index["type"]:
            retried(self.milvus.compact, self.name)
            return {}
        target = f"{self.name}_g{generation}"
        probe = probe_of(self.properties())
        create_generation(self.store, target, int(probe.shape[1]), self.fingerprint, probe, index)
        copy_rows(self.store, self.name, target)
        finish_collection(self.store, target, self._facets)
        return {"store": {**self.store, "index": index}}


def partial_updates(version: str) -> bool:
    """Whether a Milvus of this version (`v2.6.1`, `milvus_lite-3.2.2`) updates some fields of a row alone."""
    found = re.search(r"(\d+)\.(\d+)", version)
    major_minor = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
    return version.startswith("milvus_lite") or major_minor >= (2, 6)


def finish_collection(store: Mapping[str, Any], name: str, facets: Mapping[str, list[str]]) -> None:
    """Flush a filled collection (sealed, it gets its vector index), label it with its filters' values, and serve
    it under the catalogue's name."""
    retried(client(store["uri"]).flush, name)
    wait_for_index(store, name)
    retried(client(store["uri"]).alter_collection_properties, name, properties={FACETS: json.dumps(facets)})
    switch_alias(store, name)


def wait_for_index(store: Mapping[str, Any], name: str, every: float = 2.0, timeout: float = INDEXING_TIMEOUT
                   ) -> None:
    """Until Milvus has built the vector index over every sealed row. Milvus builds it in the background after
    the flush, and searches the rows not yet indexed by brute force meanwhile: a catalogue switched to before
    then answers slowly (at 1M photos on 2 cores, while the build also takes the cores). A Milvus that has not
    finished after timeout seconds is an error, not a wait without end (the rows stay; a rerun resumes)."""
    milvus = client(store["uri"])
    said = started = time.monotonic()
    while True:
        if time.monotonic() - started > timeout:
            raise FashionIndexError(f"Milvus has not finished indexing {name} after {timeout:.0f} s; the previous "
                                    "catalogue is still served: run the command again once Milvus is idle")
        states = [retried(milvus.describe_index, name, index) for index in retried(milvus.list_indexes, name)]
        failed = [s for s in states if s.get("state") == "Failed"]
        if failed:
            raise FashionIndexError(f"Milvus could not build the index of {name}: {failed[0].get('fail_reason', '?')}")
        left = sum(int(s.get("pending_index_rows", 0)) for s in states)
        if not left and all(s.get("state", "Finished") in ("Finished", "") for s in states):
            return
        if time.monotonic() - said > 30:
            log.info("Milvus is indexing %s: %d rows of %d to go", name, left,
                     max(int(s.get("total_rows", 0)) for s in states))
            said = time.monotonic()
        time.sleep(every)
