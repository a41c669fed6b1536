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
from indexing.store.lock import writing
from indexing.store.vector_store import Change, kind_of, open_store, store_class

FORMAT = "fashion-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# Roles of the files that hold the catalogue's rows (in the folder): a new base replaces them all.
ROW_FILES = ("vectors", "products", "ids", "ann", "changes")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def umask() -> int:
    """The process's umask, read without changing it (os.umask can only be read by setting it, which a thread
    creating a file at that moment would see)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def file_mode() -> int:
    """The mode a plain open() gives a new file: 0644 under the usual umask 022. mkstemp makes its files 0600,
    which left an index that one account built unreadable to the bot's own user (a service or a container)."""
    return 0o666 & ~umask()


def atomic_write(path: Path, data: bytes | Callable[[BinaryIO], None]) -> None:
    """Write a file so that readers see either the old or the new content, never a torn one.

    data: the bytes, or a function that writes them to the open file (for arrays larger than memory).
    """
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(handle, file_mode())
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
    return checked_entry(directory, manifest["files"].get(role), role)


def checked_entry(directory: Path, entry: Any, role: str, verify: bool = True) -> Path:
    """The path of a data file from its manifest entry, after checking its size (and checksum, if verify)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise IndexFormatError(f"index {directory}: the manifest names no {role} file")
    name = entry["name"]
    path = directory / name
    if Path(name).name != name or not path.is_file():
        raise IndexFormatError(f"index {directory}: {role} file {name!r} is missing")
    if path.stat().st_size != entry.get("bytes") or (verify and sha256_file(path) != entry.get("sha256")):
        raise IndexFormatError(
            f"index {directory}: {name} does not match its checksum (corrupt or tampered with)"
        )
    return path


def add_file(directory: Path, role: str, entry: dict[str, Any]) -> None:
    """Name one more data file (already written beside it) in an index's manifest, atomically."""
    with writing(directory):
        manifest = read_manifest(directory)
        manifest["files"][role] = entry
        atomic_write(directory / MANIFEST, json_bytes(manifest, indent=2))


def update_manifest(directory: Path, **fields: Any) -> None:
    """Set top-level manifest fields (not the data files), atomically; the generation stays."""
    with writing(directory):
        manifest = read_manifest(directory)
        manifest.update(fields)
        atomic_write(directory / MANIFEST, json_bytes(manifest, indent=2))


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
    """Commit a whole catalogue as the index's next generation; a crash at any point leaves the old one whole.

    Data files carry the generation in their names and the manifest is replaced last, atomically,
    so readers only ever see a complete set. keep_files: manifest file entries to carry over as is.
    ann: auto|on|off, whether the folder builds the approximate-search graph (auto: for large catalogues).
    store: {"uri", "collection"} of a Milvus that holds the rows (indexing/store/milvus_store.py) instead
    of this folder; a folder whose manifest names one keeps it.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if vectors.shape[0] != len(products):
        raise FashionIndexError("vectors and products differ in length")
    with writing(directory):
        previous, generation = next_generation(directory)
        store = dict(store or previous.get("store") or {})
        settings = {"ann": ann, "store": store, "extractor": dict(fingerprint), "probe": probe}
        written = store_class(kind_of({"store": store})).write_all(directory, generation, vectors, products, settings)
        kept = {role: entry for role, entry in (keep_files or {}).items() if role not in ROW_FILES}
        manifest = {**written, "files": {**kept, **written["files"]}, "ann": ann, "extractor": dict(fingerprint),
                    "dim": int(vectors.shape[1]), **(extra or {})}
        return commit(directory, previous, generation, manifest, probe)


def change_index(directory: Path, change: Change, *, compact: bool = False, **fields: Any) -> dict[str, Any]:
    """Commit a change (rows added, removed, attributes updated) as the next generation, writing only its rows;
    then fold everything into one base if that is due (or compact asks for it). fields: manifest fields to set."""
    directory = Path(directory)
    with writing(directory):
        manifest = read_manifest(directory)
        if change:
            generation = int(manifest.get("generation", 0)) + 1
            written = store_class(kind_of(manifest)).apply(directory, manifest, change, generation)
            manifest = commit(directory, manifest, generation, {**manifest, **written, **fields})
        elif fields:
            update_manifest(directory, **fields)
            manifest = read_manifest(directory)
        if compact or store_class(kind_of(manifest)).due_for_compaction(manifest):
            store = open_store(directory, manifest, verify=False)
            generation = int(manifest.get("generation", 0)) + 1
            manifest = commit(directory, manifest, generation,
                              {**manifest, **store.compact(generation, manifest.get("ann", "auto"))})
        return manifest


def commit(directory: Path, previous: Mapping[str, Any], generation: int, fields: Mapping[str, Any],
           probe: np.ndarray | None = None) -> dict[str, Any]:
    """Replace the manifest (the commit), then delete what no generation being served still needs.

    fields: the new manifest's content; probe: the extractor's probe vectors, written anew (else kept)."""
    files = dict(fields["files"])
    if probe is not None:
        atomic_write(directory / f"probe-{generation}.npy", npy_writer(np.asarray(probe, dtype=np.float32)))
        files["probe"] = file_entry(directory / f"probe-{generation}.npy")
    manifest = {
        **{key: value for key, value in fields.items() if key not in ("files", "segments")},
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generation": generation,
        "dtype": "float32",
        "created": previous.get("created", now()),
        "updated": now(),
        "files": files,
        **({"segments": fields["segments"]} if fields.get("segments") else {}),
    }
    atomic_write(directory / MANIFEST, json_bytes(manifest, indent=2))
    referenced = named_files(manifest)
    for pattern in ("*-*.npy", "products-*.json", "ids-*.json", "changes-*.json", "ann-*.faiss"):
        for stale in directory.glob(pattern):
            if stale.name not in referenced:
                stale.unlink(missing_ok=True)
    return manifest


def named_files(manifest: Mapping[str, Any]) -> set[str]:
    """The names of every data file the manifest names: its own files and each segment's."""
    names = {entry["name"] for entry in manifest["files"].values()}
    for segment in manifest.get("segments", []):
        names |= {entry["name"] for entry in segment.values() if isinstance(entry, dict)}
    return names


def json_bytes(value: Any, indent: int | None = None) -> bytes:
    separators = None if indent else (",", ":")
    return json.dumps(value, ensure_ascii=False, indent=indent, separators=separators).encode("utf-8")


def parts_of(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each segment's file entries (vectors, products, ids): the base first, then those appended since."""
    base = {role: manifest["files"].get(role) for role in ("vectors", "products", "ids")}
    return [base, *manifest.get("segments", [])]


def read_products(path: Path, directory: Path) -> list[dict[str, Any]]:
    try:
        products = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexFormatError(f"index {directory}: products file is not JSON ({exc})") from None
    if not isinstance(products, list) or not all(isinstance(p, dict) and isinstance(p.get("id"), str)
                                                  for p in products):
        raise IndexFormatError(f"index {directory}: products do not match the manifest")
    return products


def read_changes(directory: Path, manifest: Mapping[str, Any], verify: bool) -> tuple[np.ndarray, dict[int, Any]]:
    """The rows removed since the base was written, and rows' attributes changed since."""
    entry = manifest["files"].get("changes")
    if entry is None:
        return np.zeros(0, np.int64), {}
    changes = json.loads(checked_entry(directory, entry, "changes", verify).read_text("utf-8"))
    return np.array(sorted(changes["removed"]), np.int64), {int(row): meta for row, meta in changes["meta"].items()}
