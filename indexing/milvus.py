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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexing.errors import FashionIndexError, IndexFormatError

DEFAULT_COLLECTION = "fashion"
INSERT_BATCH = 500
SEARCH_LIMIT = 16_384  # Milvus's own cap on one search's results
KEEP_GENERATIONS = 2  # the one being served and the one before it, for readers that have not switched yet


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


def write_generation(store: Mapping[str, str], generation: int, vectors: np.ndarray,
                     products: Sequence[dict[str, Any]], fingerprint: Mapping[str, Any], probe: np.ndarray) -> str:
    """Write a generation's rows into a new collection; its name. Row number = position, as in the folder."""
    from pymilvus import DataType, MilvusClient

    milvus = client(store["uri"])
    name = f"{store['collection']}_g{generation}"
    if milvus.has_collection(name):  # left by a crash before the manifest named it
        milvus.drop_collection(name)
    longest = max([len(str(p.get(key) or "").encode()) for p in products for key in ("id", "image", "photo")] + [1])
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("row", DataType.INT64, is_primary=True)
    for key in ("id", "image", "photo"):
        schema.add_field(key, DataType.VARCHAR, max_length=min(65_535, max(256, 2 * longest)))
    schema.add_field("meta", DataType.JSON)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(vectors.shape[1]))
    index = milvus.prepare_index_params()
    index.add_index("vector", index_type="FLAT", metric_type="IP")  # exact, like the folder's scan
    milvus.create_collection(name, schema=schema, index_params=index)
    for start in range(0, len(products), INSERT_BATCH):
        milvus.insert(name, [
            {"row": start + i, "id": p["id"], "image": p.get("image") or "", "photo": p.get("photo") or "",
             "meta": p.get("meta", {}), "vector": vectors[start + i].tolist()}
            for i, p in enumerate(products[start : start + INSERT_BATCH])
        ])
    milvus.flush(name)
    milvus.alter_collection_properties(name, properties={
        "fashion.fingerprint": json.dumps(dict(fingerprint), sort_keys=True),
        "fashion.probe": base64.b64encode(np.asarray(probe, np.float32).tobytes()).decode(),
        "fashion.count": str(len(products)),
    })
    return name


def drop_old_generations(store: Mapping[str, str], generation: int) -> None:
    milvus = client(store["uri"])
    prefix = f"{store['collection']}_g"
    for name in milvus.list_collections():
        number = name[len(prefix):]
        if name.startswith(prefix) and number.isdigit() and int(number) <= generation - KEEP_GENERATIONS:
            milvus.drop_collection(name)


class MilvusRows:
    """A generation's collection read like the folder's vector matrix: by positions, or whole."""

    def __init__(self, store: Mapping[str, str], name: str, count: int, dim: int):
        self.milvus, self.name = client(store["uri"]), name
        self.shape = (count, dim)
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
            chunk = [int(p) for p in positions[start : start + INSERT_BATCH]]
            found = {r["row"]: r["vector"] for r in self.milvus.get(self.name, ids=chunk, output_fields=["vector"])}
            out[start : start + len(chunk)] = [found[p] for p in chunk]
        return out

    def candidates(self, query: np.ndarray, n: int) -> np.ndarray:
        """The rows nearest to query, as Milvus ranks them (up to SEARCH_LIMIT)."""
        found = self.milvus.search(self.name, data=[query.tolist()], limit=min(n, SEARCH_LIMIT, self.shape[0]),
                                   output_fields=[])
        return np.array([hit["row"] for hit in found[0]], dtype=np.int64)


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
    probe = np.frombuffer(base64.b64decode(properties["fashion.probe"]), np.float32).reshape(-1, 2048)
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
    return MilvusRows(store, name, len(records), 2048), records, probe
