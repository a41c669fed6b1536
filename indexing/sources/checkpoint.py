"""Checkpoints of an unfinished build, so that a rerun after a crash or Ctrl-C loses at most one chunk."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexing.errors import BuildError
from indexing.extract.embedder import DIM
from indexing.store.files import atomic_write, load_npy, npy_writer

SPEC = "spec.json"


@dataclass
class Embedded:
    """The outcome of embedding some files: vectors for the readable ones, reasons for the rest."""

    ids: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    photos: list[str] = field(default_factory=list)  # sha1 of the file: byte-identical photos
    vectors: list[np.ndarray] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def matrix(self) -> np.ndarray:
        if len(self.vectors) == 1:  # a loaded checkpoint: no copy
            return self.vectors[0]
        return np.concatenate(self.vectors) if self.vectors else np.zeros((0, DIM), np.float32)

    def extend(self, more: Embedded) -> None:
        self.ids += more.ids
        self.files += more.files
        self.photos += more.photos
        self.vectors += more.vectors
        self.failed += more.failed


class Checkpoint:
    """A folder of numbered chunks: chunk-N.npy (vectors), then chunk-N.json (ids), the commit mark."""

    def __init__(self, directory: Path):
        self.directory = directory

    @classmethod
    def open(cls, directory: Path, spec: dict[str, Any]) -> Checkpoint:
        """Resume the build in directory if it was started with the same spec, else start one."""
        spec_file = directory / SPEC
        if spec_file.exists():
            try:
                previous = json.loads(spec_file.read_text("utf-8"))
            except (OSError, json.JSONDecodeError):
                previous = None
            if previous != json.loads(json.dumps(spec)):
                raise BuildError(
                    f"{directory} holds an interrupted build with other settings "
                    "(weights, images or --limit): rerun it with the same ones, or delete that folder"
                )
        else:
            directory.mkdir(parents=True, exist_ok=True)
            atomic_write(spec_file, json.dumps(spec, indent=2).encode("utf-8"))
        checkpoint = cls(directory)
        checkpoint._drop_torn_chunks()
        return checkpoint

    def _chunks(self) -> list[Path]:
        return sorted(self.directory.glob("chunk-*.json"))

    def _drop_torn_chunks(self) -> None:
        committed = {p.with_suffix(".npy") for p in self._chunks()}
        for vectors in self.directory.glob("chunk-*.npy"):
            if vectors not in committed:
                vectors.unlink()

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            return json.loads(path.read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise BuildError(f"checkpoint {path} is unreadable ({exc}); delete {self.directory}") from None

    def finished_ids(self) -> set[str]:
        """Ids already embedded or found unreadable: neither is done twice."""
        done: set[str] = set()
        for chunk in self._chunks():
            body = self._read(chunk)
            done.update(body["ids"])
            done.update(Path(file).stem for file, _ in body["failed"])
        return done

    def save(self, part: Embedded) -> None:
        if not part.ids and not part.failed:
            return
        number = len(self._chunks()) + 1
        stem = self.directory / f"chunk-{number:06d}"
        atomic_write(stem.with_suffix(".npy"), npy_writer(part.matrix()))
        body = {"ids": part.ids, "files": part.files, "photos": part.photos, "failed": part.failed}
        atomic_write(stem.with_suffix(".json"), json.dumps(body).encode("utf-8"))

    def load(self, key: Callable[[str], Any] | None = None) -> Embedded:
        """Everything embedded so far, its products sorted by key(id) if given, its vectors in one array.

        The array is filled chunk by chunk, each row straight into its sorted place: concatenating, then
        sorting, held three copies of the vectors at once, 1.1 GB at 44k products, at a build's commit.
        """
        bodies = [(chunk, self._read(chunk)) for chunk in self._chunks()]
        ids = [pid for _, body in bodies for pid in body["ids"]]
        order = sorted(range(len(ids)), key=lambda i: key(ids[i])) if key else list(range(len(ids)))
        place = np.empty(len(ids), dtype=np.int64)
        place[order] = np.arange(len(ids))
        matrix = np.empty((len(ids), DIM), dtype=np.float32)
        start = 0
        for chunk, body in bodies:
            vectors = load_npy(chunk.with_suffix(".npy"), mmap=False)
            if vectors.shape[0] != len(body["ids"]):
                raise BuildError(f"checkpoint {chunk} is inconsistent; delete {self.directory}")
            matrix[place[start:start + len(vectors)]] = vectors
            start += len(vectors)
        files = [file for _, body in bodies for file in body["files"]]
        photos = [photo for _, body in bodies for photo in body["photos"]]
        failed = [(str(file), str(reason)) for _, body in bodies for file, reason in body["failed"]]
        return Embedded([ids[i] for i in order], [files[i] for i in order], [photos[i] for i in order],
                        [matrix] if ids else [], failed)

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
