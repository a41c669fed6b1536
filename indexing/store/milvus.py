"""The catalogue's vectors and products in Milvus (standalone, or a Milvus Lite file) instead of the index folder.

The folder keeps the manifest and the exported extractor; each generation is a collection of its own
(`<name>_g<N>`), written whole before the manifest names it, so a reader never sees a half-written catalogue.
The extractor's fingerprint and probe vectors are stored with the collection: a replica elsewhere still
refuses to serve it with another extractor. Needs pymilvus (and milvus-lite for a file): the 'scale' extra.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexing.errors import FashionIndexError, IndexFormatError
from indexing.extract.embedder import DIM

DEFAULT_COLLECTION = "fashion"
INSERT_BATCH = 500
SEARCH_LIMIT = 16_384  # Milvus's own cap on one search's results
KEEP_GENERATIONS = 2  # the one being served and the one before it, for readers that have not switched yet
RETRIES = 5


def parse_store(spec: str) -> dict[str, str]:
    """`milvus://HOST:PORT/COLLECTION`, or a Milvus Lite file (`catalogue.db`, optionally `catalogue.db#name`)."""
    match = re.match(r"^milvus://([^/:]+):(\d+)(?:/([A-Za-z_][A-Za-z0-9_]*))?/?$", spec)
    if match:
        return {"uri": f"http://{match.group(1)}:{match.group(2)}", "collection": match.group(3) or DEFAULT_COLLECTION}
    path, _, name = spec.partition("#")
    if not path.endswith(".db"):
        raise FashionIndexError(f"--store {spec!r}: use milvus://HOST:PORT/COLLECTION or a Milvus Lite file *.db")
    if name and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
        raise FashionIndexError(f"--store {spec!r}: a collection name is letters, digits and _")
    return {"uri": str(Path(path).resolve()), "collection": name or DEFAULT_COLLECTION}


_clients: dict[str, Any] = {}


def client(uri: str) -> Any:
    """One client per Milvus: a Lite file can be opened once per process."""
    if uri not in _clients:
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise FashionIndexError("a Milvus store needs pymilvus: pip install '.[scale]'") from None
        try:
            _clients[uri] = MilvusClient(uri)
        except Exception as exc:  # pymilvus raises its own and grpc's errors
            raise FashionIndexError(f"cannot reach Milvus at {uri}: {exc}") from None
    return _clients[uri]


def retried(call: Any, *args: Any, **kwargs: Any) -> Any:
    """One Milvus call, tried again a few times: calls from shards that run at once (creating, labelling and
    filling one collection) can be refused while another's is in progress. A last refusal is one clear error."""
    for attempt in range(RETRIES - 1):
        try:
            return call(*args, **kwargs)
        except Exception:  # pymilvus's MilvusException, and grpc's errors under it
            time.sleep(0.2 * 2**attempt)
    try:
        return call(*args, **kwargs)
    except Exception as exc:
        raise FashionIndexError(f"Milvus refused {getattr(call, '__name__', 'a call')}: {exc}") from exc


def write_generation(store: Mapping[str, str], generation: int, vectors: np.ndarray,
                     products: Sequence[dict[str, Any]], fingerprint: Mapping[str, Any], probe: np.ndarray) -> str:
    """Write a generation's rows into a new collection; its name. Row number = position, as in the folder."""
    name = f"{store['collection']}_g{generation}"
    if client(store["uri"]).has_collection(name):  # left by a crash before the manifest named it
        client(store["uri"]).drop_collection(name)
    create_generation(store, name, int(vectors.shape[1]), fingerprint, probe)
    upsert_rows(store, name, np.arange(len(products)), vectors, products)
    return name


def create_generation(store: Mapping[str, str], name: str, dim: int, fingerprint: Mapping[str, Any],
                      probe: np.ndarray) -> None:
    """An empty collection for a generation, labelled with the extractor; one that exists is kept (shards)."""
    from pymilvus import DataType, MilvusClient

    milvus = client(store["uri"])
    if not retried(milvus.has_collection, name):
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("row", DataType.INT64, is_primary=True)
        for key in ("id", "image", "photo"):
            schema.add_field(key, DataType.VARCHAR, max_length=4096)
        schema.add_field("meta", DataType.JSON)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        index = milvus.prepare_index_params()
        index.add_index("vector", index_type="FLAT", metric_type="IP")  # exact, like the folder's scan
        try:
            # Strong: a bot that switches to a generation just written must read all of it.
            milvus.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
        except Exception:  # another shard created it a moment ago
            if not retried(milvus.has_collection, name):
                raise
    labels = {"fashion.fingerprint": json.dumps(dict(fingerprint), sort_keys=True),
              "fashion.probe": base64.b64encode(np.asarray(probe, np.float32).tobytes()).decode()}
    current = retried(milvus.describe_collection, name).get("properties", {})
    if current.get("fashion.fingerprint", labels["fashion.fingerprint"]) != labels["fashion.fingerprint"]:
        raise FashionIndexError(f"Milvus collection {name} is being filled by another extractor")
    retried(milvus.alter_collection_properties, name, properties=labels)


def upsert_rows(store: Mapping[str, str], name: str, positions: np.ndarray, vectors: np.ndarray,
                products: Sequence[dict[str, Any]]) -> None:
    """Write rows at these positions (their primary keys); writing a row again replaces it."""
    milvus = client(store["uri"])
    for start in range(0, len(products), INSERT_BATCH):
        retried(milvus.upsert, name, [
            {"row": int(positions[start + i]), "id": p["id"], "image": p.get("image") or "",
             "photo": p.get("photo") or "", "meta": p.get("meta", {}), "vector": vectors[start + i].tolist()}
            for i, p in enumerate(products[start : start + INSERT_BATCH])
        ])
    retried(milvus.flush, name)


def mark_shard(store: Mapping[str, str], name: str, shard: tuple[int, int]) -> set[int]:
    """Record that shard i of n has written all its rows; the shards (1..n) done so far."""
    milvus = client(store["uri"])
    i, n = shard
    key = f"fashion.shard.{i}.of.{n}"
    for _ in range(RETRIES):  # two shards labelling at once could each overwrite the other's label: check ours
        retried(milvus.alter_collection_properties, name, properties={key: "done"})
        properties = retried(milvus.describe_collection, name).get("properties", {})
        if properties.get(key) == "done":
            break
    else:
        raise FashionIndexError(f"Milvus did not keep shard {i}/{n}'s mark on {name}; run the shard again")
    return {j for j in range(1, n + 1) if properties.get(f"fashion.shard.{j}.of.{n}") == "done"}


def row_count(store: Mapping[str, str], name: str) -> int:
    # A query, not the collection's stats: those count a replaced row twice until compaction.
    return int(retried(client(store["uri"]).query, name, filter="", output_fields=["count(*)"])[0]["count(*)"])


def drop_old_generations(store: Mapping[str, str], generation: int) -> None:
    milvus = client(store["uri"])
    prefix = f"{store['collection']}_g"
    for name in milvus.list_collections():
        number = name[len(prefix):]
        if name.startswith(prefix) and number.isdigit() and int(number) <= generation - KEEP_GENERATIONS:
            milvus.drop_collection(name)


class MilvusRows:
    """A generation's collection read like the folder's vector matrix: by positions, or whole."""

    def __init__(self, store: Mapping[str, str], name: str, keys: np.ndarray, dim: int):
        self.milvus, self.name = client(store["uri"]), name
        self.keys = keys  # position -> primary key, ascending (a sharded build's failed photos leave gaps)
        self.shape = (len(keys), dim)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, positions: Any) -> np.ndarray:
        wanted = np.arange(self.shape[0])[positions]
        return self.fetch(np.atleast_1d(wanted)).reshape((*np.shape(wanted), self.shape[1]))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.fetch(np.arange(self.shape[0]))

    def fetch(self, positions: np.ndarray) -> np.ndarray:
        out = np.empty((len(positions), self.shape[1]), np.float32)
        for start in range(0, len(positions), INSERT_BATCH):
            chunk = [int(k) for k in self.keys[positions[start : start + INSERT_BATCH]]]
            found = {r["row"]: r["vector"] for r in self.milvus.get(self.name, ids=chunk, output_fields=["vector"])}
            out[start : start + len(chunk)] = [found[k] for k in chunk]
        return out

    def candidates(self, query: np.ndarray, n: int) -> np.ndarray:
        return self.scored(query, n)[0]

    def scored(self, query: np.ndarray, n: int, where: str = "") -> tuple[np.ndarray, np.ndarray]:
        """The rows nearest to query (up to SEARCH_LIMIT) that match where, and their inner products (exact:
        a FLAT index)."""
        found = self.milvus.search(self.name, data=[query.tolist()], limit=min(n, SEARCH_LIMIT, self.shape[0]),
                                   filter=where, output_fields=[])[0]
        keys = np.array([hit["row"] for hit in found], dtype=np.int64)
        return np.searchsorted(self.keys, keys), np.array([hit["distance"] for hit in found], dtype=np.float32)


def milvus_filter(filters: Mapping[str, Sequence[str]], hidden: Sequence[str], exclude: Sequence[str]) -> str:
    """A Milvus boolean expression: every filter (values as the catalogue spells them), not out of stock, and
    none of the excluded products. Strings are written as JSON strings, which Milvus reads the same way.
    (Milvus's `in` takes only a field on its left, not a JSON key: the values are compared one by one.)"""
    def any_of(column: str, values: Sequence[str]) -> str:
        key = f"meta[{json.dumps(column)}]"
        return "(" + " or ".join(f"{key} == {json.dumps(v)}" for v in values) + ")" if values else "(row < 0)"

    parts = [any_of(column, values) for column, values in filters.items()]
    if hidden:
        parts.append(f"not {any_of('availability', hidden)}")
    if exclude:
        parts.append(f"not (id in {json.dumps(list(exclude))})")
    return " and ".join(parts)


def read_generation(store: Mapping[str, str], name: str, fingerprint: Mapping[str, Any]
                    ) -> tuple[MilvusRows, list[dict[str, Any]], np.ndarray]:
    """The rows, products and probe of a generation, after checking it was made by this extractor."""
    milvus = client(store["uri"])
    if not milvus.has_collection(name):
        raise IndexFormatError(f"Milvus at {store['uri']} has no collection {name}: the index names a catalogue "
                               "that is not there (another Milvus, or dropped)")
    properties = milvus.describe_collection(name).get("properties", {})
    if json.loads(properties.get("fashion.fingerprint", "{}")) != json.loads(json.dumps(dict(fingerprint))):
        raise IndexFormatError(f"Milvus collection {name} was made by another extractor than this index's")
    probe = np.frombuffer(base64.b64decode(properties["fashion.probe"]), np.float32).reshape(-1, DIM)
    products: list[dict[str, Any]] = []
    iterator = milvus.query_iterator(name, batch_size=4096, output_fields=["row", "id", "image", "photo", "meta"])
    try:
        while batch := iterator.next():
            products += batch
    finally:
        iterator.close()
    products.sort(key=lambda r: r["row"])
    records = [{"id": r["id"], "image": r["image"], "photo": r["photo"] or None, "meta": r["meta"] or {}}
               for r in products]
    keys = np.array([r["row"] for r in products], dtype=np.int64)
    return MilvusRows(store, name, keys, DIM), records, probe
