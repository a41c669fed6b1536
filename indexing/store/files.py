"""The index's files on disk: a manifest naming checksummed data files, one generation at a time,
each written atomically, so that a reader never sees a half-written index."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from indexing.errors import FashionIndexError, IndexFormatError
from indexing.extract.embedder import file_entry, sha256_file
from indexing.store.ann import graph_writer
from indexing.store.ann import wanted as wanted_graph

FORMAT = "fashion-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def atomic_write(path: Path, data: bytes | Callable[[BinaryIO], None]) -> None:
    """Write a file so that readers see either the old or the new content, never a torn one.

    data: the bytes, or a function that writes them to the open file (for arrays larger than memory).
    """
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            if callable(data):
                data(out)
            else:
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


def npy_writer(array: np.ndarray) -> Callable[[BinaryIO], None]:
    return lambda out: np.save(out, np.ascontiguousarray(array), allow_pickle=False)


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


def add_file(directory: Path, role: str, entry: dict[str, Any]) -> None:
    """Name one more data file (already written beside it) in an index's manifest, atomically."""
    manifest = read_manifest(directory)
    manifest["files"][role] = entry
    atomic_write(directory / MANIFEST, json.dumps(manifest, indent=2).encode("utf-8"))


def update_manifest(directory: Path, **fields: Any) -> None:
    """Set top-level manifest fields (not the data files), atomically; the generation stays."""
    manifest = read_manifest(directory)
    manifest.update(fields)
    atomic_write(directory / MANIFEST, json.dumps(manifest, indent=2).encode("utf-8"))


def load_npy(path: Path, *, mmap: bool) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as exc:  # object arrays (pickles) are refused here
        raise IndexFormatError(f"{path} holds no plain numeric array ({exc})") from None
    except OSError as exc:
        raise IndexFormatError(f"{path} is not a readable .npy file ({exc})") from None


def next_generation(directory: Path) -> tuple[dict[str, Any], int]:
    """The manifest being replaced (empty if none can be read) and the generation that replaces it."""
    try:
        previous = read_manifest(directory)
    except IndexFormatError:
        previous = {}
    return previous, int(previous.get("generation", 0)) + 1


def write_index(
    directory: Path,
    *,
    vectors: np.ndarray,
    products: list[dict[str, Any]],
    fingerprint: Mapping[str, Any],
    probe: np.ndarray,
    extra: Mapping[str, Any] | None = None,
    keep_files: Mapping[str, Any] | None = None,
    ann: str = "auto",
    store: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Commit a new generation of the index in place; a crash at any point leaves the old one whole.

    Data files carry the generation in their names and the manifest is replaced last, atomically,
    so readers only ever see a complete set. keep_files: manifest file entries to carry over as is.
    ann: auto|on|off, whether to build the approximate-search graph (auto: for large catalogues).
    store: {"uri", "collection"} of a Milvus that holds the vectors and products (indexing/store/milvus.py) instead
    of this folder; a folder whose manifest names one keeps it.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.shape[0] != len(products):
        raise FashionIndexError("vectors and products differ in length")
    previous, generation = next_generation(directory)
    files = {role: entry for role, entry in (keep_files or {}).items() if role not in ("ann", "vectors", "products")}
    store = dict(store or previous.get("store") or {})
    payloads: dict[str, tuple[str, bytes | Callable[[BinaryIO], None]]] = {
        "probe": (f"probe-{generation}.npy", npy_writer(np.asarray(probe, dtype=np.float32))),
    }
    if store:
        from indexing.store.milvus import write_generation

        store = {"uri": store["uri"], "collection": store["collection"],
                 "current": write_generation(store, generation, vectors, products, fingerprint, probe)}
    else:
        payloads["vectors"] = (f"vectors-{generation}.npy", npy_writer(vectors))
        payloads["products"] = (f"products-{generation}.json",
                                json.dumps(products, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        if wanted_graph(ann, len(products)):
            payloads["ann"] = (f"ann-{generation}.faiss", graph_writer(vectors))
    for role, (name, data) in payloads.items():
        atomic_write(directory / name, data)
        files[role] = file_entry(directory / name)
    return commit_manifest(directory, previous, generation, files, vectors.shape, fingerprint, ann, store, extra)


def name_collection(directory: Path, store: Mapping[str, str], current: str, count: int,
                    fingerprint: Mapping[str, Any], probe: np.ndarray, extra: Mapping[str, Any] | None = None,
                    keep_files: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Commit, as the next generation, a Milvus collection that already holds its rows (a sharded build)."""
    directory.mkdir(parents=True, exist_ok=True)
    previous, generation = next_generation(directory)
    files = dict(keep_files or {})
    atomic_write(directory / f"probe-{generation}.npy", npy_writer(np.asarray(probe, dtype=np.float32)))
    files["probe"] = file_entry(directory / f"probe-{generation}.npy")
    store = {"uri": store["uri"], "collection": store["collection"], "current": current}
    return commit_manifest(directory, previous, generation, files, (count, probe.shape[1]), fingerprint, "off",
                           store, extra)


def commit_manifest(directory: Path, previous: Mapping[str, Any], generation: int, files: dict[str, Any],
                    shape: tuple[int, ...], fingerprint: Mapping[str, Any], ann: str,
                    store: Mapping[str, str] | None, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """Replace the manifest (the commit), then delete what no generation being served still needs."""
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generation": generation,
        "count": int(shape[0]),
        "dim": int(shape[1]) if len(shape) == 2 else 0,
        "dtype": "float32",
        "created": previous.get("created", now()),
        "updated": now(),
        "extractor": dict(fingerprint),
        "files": files,
        "ann": ann,
        **({"store": dict(store)} if store else {}),
        **(extra or {}),
    }
    atomic_write(directory / MANIFEST, json.dumps(manifest, indent=2).encode("utf-8"))
    if store:
        from indexing.store.milvus import drop_old_generations

        drop_old_generations(store, generation)
    referenced = {entry["name"] for entry in files.values()}
    for pattern in ("*-*.npy", "products-*.json", "ann-*.faiss"):
        for stale in directory.glob(pattern):
            if stale.name not in referenced:
                stale.unlink(missing_ok=True)
    return manifest
