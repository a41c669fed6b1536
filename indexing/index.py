"""The on-disk index (manifest + .npy vectors + JSON products) and exact nearest-neighbour search."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from indexing.embedder import l2_normalize, sha256_file
from indexing.errors import FashionIndexError, IndexFormatError

FORMAT = "fashion-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# Columns with at most this many distinct values can be used as search filters.
MAX_FACET_VALUES = 500


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


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def atomic_write(path: Path, data: bytes) -> None:
    """Write a file so that readers see either the old or the new content, never a torn one."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def read_manifest(directory: Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise IndexFormatError(
            f"no index at {directory} ({MANIFEST} is missing): build one with `fashion-index build`"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexFormatError(f"{path} is corrupt: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexFormatError(f"{path} is not a fashion-index manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexFormatError(
            f"{path} has format version {manifest.get('format_version')!r}; "
            f"this program reads version {FORMAT_VERSION}: rebuild the index"
        )
    for key, kind in (("count", int), ("dim", int), ("files", dict), ("extractor", dict)):
        if not isinstance(manifest.get(key), kind):
            raise IndexFormatError(f"{path} is corrupt: '{key}' is missing or of the wrong type")
    return manifest


def checked_file(directory: Path, manifest: Mapping[str, Any], role: str) -> Path:
    """The path of one data file named by the manifest, after checking its size and checksum."""
    entry = manifest["files"].get(role)
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise IndexFormatError(f"index {directory}: the manifest names no {role} file")
    name = entry["name"]
    path = directory / name
    if Path(name).name != name or not path.is_file():
        raise IndexFormatError(f"index {directory}: {role} file {name!r} is missing")
    if path.stat().st_size != entry.get("bytes") or sha256_file(path) != entry.get("sha256"):
        raise IndexFormatError(
            f"index {directory}: {name} does not match its checksum (corrupt or tampered with)"
        )
    return path


def load_npy(path: Path, *, mmap: bool) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as exc:  # object arrays (pickles) are refused here
        raise IndexFormatError(f"{path} holds no plain numeric array ({exc})") from None
    except OSError as exc:
        raise IndexFormatError(f"{path} is not a readable .npy file ({exc})") from None


class Index:
    """A loaded index: unit vectors (memory-mapped), product records and filter columns."""

    def __init__(self, directory: Path, manifest: dict[str, Any], vectors: np.ndarray,
                 products: list[dict[str, Any]], probe: np.ndarray):
        self.directory = directory
        self.manifest = manifest
        self.vectors = vectors
        self.products = products
        self.probe = probe
        self.ids = [p["id"] for p in products]
        self._position = {pid: i for i, pid in enumerate(self.ids)}
        self._photo_group = self._group_photos(products)
        self._facets = self._build_facets(products)

    @classmethod
    def load(cls, directory: str | Path) -> Index:
        directory = Path(directory)
        manifest = read_manifest(directory)
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
            or len({p["id"] for p in products}) != count
        ):
            raise IndexFormatError(f"index {directory}: products do not match the manifest")
        return cls(directory, manifest, vectors, products, probe)

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def fingerprint(self) -> dict[str, Any]:
        return self.manifest["extractor"]

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._position

    def product(self, product_id: str) -> dict[str, Any]:
        return self.products[self._position[product_id]]

    def vector(self, product_id: str) -> np.ndarray:
        return np.asarray(self.vectors[self._position[product_id]], dtype=np.float32)

    def same_photo(self, a: str, b: str) -> bool:
        """True for one product, or two listings that share a byte-identical photo."""
        return bool(self._photo_group[self._position[a]] == self._photo_group[self._position[b]])

    def ids_with_photo(self, product_id: str) -> list[str]:
        group = self._photo_group[self._position[product_id]]
        return [self.ids[i] for i in np.flatnonzero(self._photo_group == group)]

    def image_path(self, product_id: str) -> Path:
        return self.directory / self.product(product_id)["image"]

    def facets(self) -> dict[str, list[str]]:
        """Filterable columns and their values, as spelled in the catalogue."""
        return {column: list(values) for column, (values, _) in self._facets.items()}

    def search(
        self,
        query: np.ndarray,
        k: int = 5,
        *,
        exclude: Iterable[str] = (),
        filters: Mapping[str, Sequence[str]] | None = None,
        collapse_duplicates: bool = True,
    ) -> list[Hit]:
        """The k nearest products to a query vector by Euclidean distance (exact)."""
        if k < 1 or self.count == 0:
            return []
        q = l2_normalize(np.asarray(query, dtype=np.float32).reshape(-1))
        if q.shape[0] != self.vectors.shape[1]:
            raise FashionIndexError(f"query has {q.shape[0]} dimensions, the index {self.vectors.shape[1]}")
        sims = np.asarray(self.vectors @ q)  # on unit vectors, ||a-b||^2 = 2 - 2 a.b: same order, one pass
        allowed = self.filter_mask(filters)
        if allowed is not None:
            sims[~allowed] = -np.inf
        for product_id in exclude:
            if product_id in self._position:
                sims[self._position[product_id]] = -np.inf
        return self._top(sims, k, collapse_duplicates)

    def _top(self, sims: np.ndarray, k: int, collapse: bool) -> list[Hit]:
        wanted = min(self.count, 4 * k + 16)
        while True:
            best = np.argpartition(-sims, wanted - 1)[:wanted] if wanted < self.count else np.arange(self.count)
            best = best[np.argsort(-sims[best], kind="stable")]
            hits: list[Hit] = []
            seen: set[int] = set()
            for position in best:
                sim = float(sims[position])
                if sim == -np.inf:
                    break
                group = int(self._photo_group[position])
                if collapse and group in seen:
                    continue
                seen.add(group)
                distance = float(np.sqrt(max(0.0, 2.0 - 2.0 * sim)))
                hits.append(Hit(len(hits) + 1, self.ids[position], sim, distance, self.products[position]))
                if len(hits) == k:
                    return hits
            if wanted >= self.count or (len(best) and sims[best[-1]] == -np.inf):
                return hits
            wanted = min(self.count, wanted * 4)

    def filter_mask(self, filters: Mapping[str, Sequence[str]] | None) -> np.ndarray | None:
        """Rows that match every column (any of its values, case-insensitively); None if no filter."""
        if not filters:
            return None
        mask = np.ones(self.count, dtype=bool)
        for column, wanted in filters.items():
            if column not in self._facets:
                raise FashionIndexError(
                    f"cannot filter on {column!r}; filterable columns: {', '.join(sorted(self._facets))}"
                )
            values, codes = self._facets[column]
            lowered = {v.lower() for v in wanted}
            chosen = [i for i, value in enumerate(values) if value.lower() in lowered]
            mask &= np.isin(codes, chosen)
        return mask

    @staticmethod
    def _group_photos(products: list[dict[str, Any]]) -> np.ndarray:
        groups: dict[str, int] = {}
        return np.array(
            [groups.setdefault(p.get("photo") or p["id"], len(groups)) for p in products], dtype=np.int64
        )

    @staticmethod
    def _build_facets(products: list[dict[str, Any]]) -> dict[str, tuple[list[str], np.ndarray]]:
        columns: dict[str, dict[str, int]] = {}
        for p in products:
            for column in p.get("meta", {}):
                columns.setdefault(column, {})
        facets = {}
        for column in columns:
            values: dict[str, int] = {}
            codes = [values.setdefault(str(p.get("meta", {}).get(column, "")), len(values)) for p in products]
            if len(values) <= MAX_FACET_VALUES:
                facets[column] = (list(values), np.array(codes, dtype=np.int32))
        return facets


def write_index(
    directory: Path,
    *,
    vectors: np.ndarray,
    products: list[dict[str, Any]],
    fingerprint: Mapping[str, Any],
    probe: np.ndarray,
    extra: Mapping[str, Any] | None = None,
    keep_files: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Commit a new generation of the index in place; a crash at any point leaves the old one whole.

    Data files carry the generation in their names and the manifest is replaced last, atomically,
    so readers only ever see a complete set. keep_files: manifest file entries to carry over as is.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.shape[0] != len(products):
        raise FashionIndexError("vectors and products differ in length")
    try:
        previous = read_manifest(directory)
    except IndexFormatError:
        previous = {}
    generation = int(previous.get("generation", 0)) + 1
    files = dict(keep_files or {})
    payloads = {
        "vectors": (f"vectors-{generation}.npy", npy_bytes(vectors)),
        "probe": (f"probe-{generation}.npy", npy_bytes(np.asarray(probe, dtype=np.float32))),
        "products": (
            f"products-{generation}.json",
            json.dumps(products, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        ),
    }
    for role, (name, data) in payloads.items():
        atomic_write(directory / name, data)
        files[role] = {"name": name, "bytes": len(data), "sha256": sha256_file(directory / name)}
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generation": generation,
        "count": int(vectors.shape[0]),
        "dim": int(vectors.shape[1]) if vectors.ndim == 2 else 0,
        "dtype": "float32",
        "created": previous.get("created", now()),
        "updated": now(),
        "extractor": dict(fingerprint),
        "files": files,
        **(extra or {}),
    }
    atomic_write(directory / MANIFEST, json.dumps(manifest, indent=2).encode("utf-8"))
    referenced = {entry["name"] for entry in files.values()}
    for stale in directory.glob("*-*.npy"):
        if stale.name not in referenced:
            stale.unlink(missing_ok=True)
    for stale in directory.glob("products-*.json"):
        if stale.name not in referenced:
            stale.unlink(missing_ok=True)
    return manifest
