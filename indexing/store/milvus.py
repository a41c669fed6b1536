"""Talking to Milvus (a server, or a Milvus Lite file): the client, the collections' schema, writing rows, aliases.

A whole build writes a collection of its own (`<name>_g<N>`), then points the alias `<name>` at it in one step;
changes are written in place. The extractor's fingerprint and probe vectors are stored with the collection: a
replica elsewhere still refuses to serve it with another extractor. Needs pymilvus (and milvus-lite for a file):
the 'scale' extra.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexing.errors import FashionIndexError, StoreUnavailableError
from indexing.extract.embedder import DIM
from indexing.store.ann import AUTO_THRESHOLD
from indexing.store.vector_store import visible

DEFAULT_COLLECTION = "fashion"
INSERT_BATCH = 500
SEARCH_LIMIT = 16_384  # Milvus's own cap on one search's results
# Milvus's index types this project offers: build parameters, and default search parameters (recall@5 measured in
# benchmarks/results: "milvus").
INDEXES: dict[str, tuple[dict[str, int], dict[str, int]]] = {
    "FLAT": ({}, {}),
    "HNSW": ({"M": 16, "efConstruction": 200}, {"ef": 128}),
    "IVF_FLAT": ({"nlist": 1024}, {"nprobe": 32}),
    "IVF_SQ8": ({"nlist": 1024}, {"nprobe": 32}),
}
RETRIES = 5


def parse_store(spec: str, index: str | None = None) -> dict[str, str]:
    """`milvus://HOST:PORT/COLLECTION`, or a Milvus Lite file (`catalogue.db`, optionally `catalogue.db#name`).
    index: the vector index to use whatever the catalogue's size (see index_settings); None: chosen by size."""
    if index:
        index_settings(0, index)  # a bad choice is told now, before anything is embedded
    override = {"index_override": index} if index else {}
    match = re.match(r"^milvus://([^/:]+):(\d+)(?:/([A-Za-z_][A-Za-z0-9_]*))?/?$", spec)
    if match:
        return {"uri": f"http://{match.group(1)}:{match.group(2)}",
                "collection": match.group(3) or DEFAULT_COLLECTION, **override}
    path, _, name = spec.partition("#")
    if not path.endswith(".db"):
        raise FashionIndexError(f"--store {spec!r}: use milvus://HOST:PORT/COLLECTION or a Milvus Lite file *.db")
    if name and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
        raise FashionIndexError(f"--store {spec!r}: a collection name is letters, digits and _")
    return {"uri": str(Path(path).resolve()), "collection": name or DEFAULT_COLLECTION, **override}


_clients: dict[str, Any] = {}
CONNECT_TIMEOUT = 10.0  # seconds to reach a Milvus server before it counts as unreachable


def client(uri: str) -> Any:
    """One client per Milvus: a Lite file can be opened once per process."""
    if uri not in _clients:
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise FashionIndexError("a Milvus store needs pymilvus: pip install '.[scale]'") from None
        if not uri.startswith(("http://", "https://")):
            # A Lite file's server runs in this process and lacks AllocTimestamp: pymilvus's query iterator
            # asks for it, logs the server's traceback, then uses the client's clock, as it should.
            logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
        try:
            _clients[uri] = MilvusClient(uri, timeout=CONNECT_TIMEOUT)
        except Exception as exc:  # pymilvus raises its own and grpc's errors
            raise StoreUnavailableError(f"cannot reach Milvus at {uri}: {exc}") from None
    return _clients[uri]


def close_client(uri: str) -> None:
    """Close this process's client of a Milvus: a Lite file can then be opened by another process."""
    found = _clients.pop(uri, None)
    if found is not None:
        found.close()
    if not uri.startswith(("http://", "https://")):  # a Lite file: its server thread holds the file's lock
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(uri)


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
        raise StoreUnavailableError(f"Milvus refused {getattr(call, '__name__', 'a call')}: {exc}") from exc


def index_settings(count: int, override: str | None = None) -> dict[str, Any]:
    """The vector index a collection of count rows gets: exact (FLAT) below AUTO_THRESHOLD, HNSW above.
    override: `TYPE` or `TYPE:KEY=VALUE,...` (search parameters, e.g. `HNSW:ef=256`, `IVF_SQ8:nprobe=32`)."""
    kind, _, params = (override or "auto").partition(":")
    kind = kind.upper()
    if kind == "AUTO":
        kind = "HNSW" if count >= AUTO_THRESHOLD else "FLAT"
    if kind not in INDEXES:
        raise FashionIndexError(f"--milvus-index {override!r}: one of auto, {', '.join(INDEXES)}")
    search = dict(INDEXES[kind][1])
    for pair in filter(None, params.split(",")):
        key, sep, value = pair.partition("=")
        if not sep or not value.isdigit():
            raise FashionIndexError(f"--milvus-index {override!r}: search parameters are KEY=NUMBER, e.g. ef=256")
        search[key.strip()] = int(value)
    return {"type": kind, "search": search}


def create_generation(store: Mapping[str, str], name: str, dim: int, fingerprint: Mapping[str, Any],
                      probe: np.ndarray, index: Mapping[str, Any]) -> None:
    """An empty collection for a generation, labelled with the extractor; one that exists is kept (shards)."""
    from pymilvus import DataType, MilvusClient

    milvus = client(store["uri"])
    if not retried(milvus.has_collection, name):
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
        for key in ("id", "image", "photo"):
            schema.add_field(key, DataType.VARCHAR, max_length=4096)
        schema.add_field("main", DataType.BOOL)  # the product's first photo: counts products, not photos
        schema.add_field("shown", DataType.BOOL)  # in stock (a JSON key that a row lacks matches no comparison)
        schema.add_field("meta", DataType.JSON)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        params = milvus.prepare_index_params()
        params.add_index("vector", index_type=index["type"], metric_type="IP", params=INDEXES[index["type"]][0])
        try:
            # Strong: a bot that switches to a generation just written must read all of it.
            milvus.create_collection(name, schema=schema, index_params=params, consistency_level="Strong")
        except Exception:  # another shard created it a moment ago
            if not retried(milvus.has_collection, name):
                raise
    labels = {"fashion.fingerprint": json.dumps(dict(fingerprint), sort_keys=True),
              "fashion.probe": base64.b64encode(np.asarray(probe, np.float32).tobytes()).decode()}
    current = retried(milvus.describe_collection, name).get("properties", {})
    if current.get("fashion.fingerprint", labels["fashion.fingerprint"]) != labels["fashion.fingerprint"]:
        raise FashionIndexError(f"Milvus collection {name} is being filled by another extractor")
    retried(milvus.alter_collection_properties, name, properties=labels)


def row_key(record: Mapping[str, Any]) -> str:
    """A row's primary key, from its product and photo, so that writing a photo again replaces its row. A digest:
    pymilvus's query iterator writes the last key into a filter unescaped, and an id may hold quotes."""
    photo = record.get("photo") or record.get("image") or ""
    return hashlib.blake2b(f"{record['id']}\0{photo}".encode(), digest_size=16).hexdigest()


def shown(meta: Mapping[str, Any]) -> bool:
    return bool(visible([meta.get("availability")])[0])


def upsert_rows(store: Mapping[str, str], name: str, vectors: np.ndarray, records: Sequence[dict[str, Any]],
                fresh: bool = False) -> None:
    """Write these rows (whole products: a product's first row is its main photo); a row written again replaces it.
    They are durable once written (Milvus's log has them); a whole collection is flushed when it is finished.
    fresh: into a collection just created, which holds none of them: an insert, not an upsert (an upsert also
    records a deletion of every key, which the engine then writes and checks on every search)."""
    milvus = client(store["uri"])
    seen: set[str] = set()
    main = [not (r["id"] in seen or seen.add(r["id"])) for r in records]  # type: ignore[func-returns-value]
    for start in range(0, len(records), INSERT_BATCH):
        retried(milvus.insert if fresh else milvus.upsert, name, [
            {"key": row_key(p), "id": p["id"], "image": p.get("image") or "", "photo": p.get("photo") or "",
             "main": main[start + i], "shown": shown(p.get("meta", {})), "meta": p.get("meta", {}),
             "vector": np.asarray(vectors[start + i]).tolist()}
            for i, p in enumerate(records[start : start + INSERT_BATCH])
        ])


def copy_rows(store: Mapping[str, str], source: str, target: str) -> None:
    """Every row of one collection into another, a batch at a time, as they are."""
    milvus = client(store["uri"])
    iterator = milvus.query_iterator(source, batch_size=INSERT_BATCH, output_fields=["*"])
    try:
        while batch := iterator.next():
            retried(milvus.upsert, target, [dict(row) for row in batch])
    finally:
        iterator.close()


def probe_of(properties: Mapping[str, str]) -> np.ndarray:
    """The probe vectors that a collection is labelled with."""
    return np.frombuffer(base64.b64decode(properties["fashion.probe"]), np.float32).reshape(-1, DIM)


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


def switch_alias(store: Mapping[str, str], name: str) -> None:
    """Point the catalogue's name (an alias) at a generation's collection: readers switch in one step. Older
    generations are dropped, but for the one served before, for readers in the middle of a search."""
    milvus, alias = client(store["uri"]), store["collection"]
    retried(milvus.load_collection, name)
    # has_collection sees aliases too; asking describe_alias about one that does not exist logs an error.
    before = retried(milvus.describe_alias, alias)["collection_name"] if milvus.has_collection(alias) else None
    if before is None:
        retried(milvus.create_alias, name, alias)
    elif before != name:
        retried(milvus.alter_alias, name, alias)
    prefix = f"{alias}_g"
    for old in milvus.list_collections():
        if old.startswith(prefix) and old not in (name, before):
            milvus.drop_collection(old)


def milvus_filter(filters: Mapping[str, Sequence[str]], exclude: Sequence[str]) -> str:
    """A Milvus boolean expression: every filter (values as the catalogue spells them), in stock, and
    none of the excluded products. Strings are written as JSON strings, which Milvus reads the same way.
    (Milvus's `in` takes only a field on its left, not a JSON key: the values are compared one by one.)"""
    def any_of(column: str, values: Sequence[str]) -> str:
        key = f"meta[{json.dumps(column)}]"
        return "(" + " or ".join(f"{key} == {json.dumps(v)}" for v in values) + ")" if values else "(key == \"\")"

    parts = ["shown == true", *(any_of(column, values) for column, values in filters.items())]
    if exclude:
        parts.append(f"not (id in {json.dumps(list(exclude))})")
    return " and ".join(parts)
