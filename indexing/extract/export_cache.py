"""Exports this machine has made, kept by what they reproduce: the next index of these weights needs no TensorFlow."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from indexing.extract import keras_onnx
from indexing.extract.embedder import RECIPE, Weights, sha256_file
from indexing.store.files import atomic_write

log = logging.getLogger(__name__)

TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-intel")


@dataclass(frozen=True)
class CachedExport:
    """An export checked against TensorFlow when it was made, with what TensorFlow said of it: the fingerprint
    and the probe images' vectors that an index built with it records."""

    path: Path
    fingerprint: dict[str, Any]
    probe: np.ndarray
    entry: dict[str, Any]  # the export's manifest entry: name, bytes, sha256, opset, max_relative_difference

    def copy_to(self, target: Path) -> dict[str, Any]:
        """Copy the export to target; returns its manifest entry."""
        copy_whole(self.path, target)
        return {**self.entry, "name": target.name}


def copy_whole(source: Path, target: Path) -> None:
    """Copy so that target is never seen half-written, even by another process using the same cache."""
    with open(source, "rb") as data:
        atomic_write(target, lambda out: shutil.copyfileobj(data, out, 1 << 20))


def cache_dir(environ: dict[str, str] | None = None) -> Path | None:
    """EXPORT_CACHE if set ('off': none), else the user's cache folder."""
    env = os.environ if environ is None else environ
    chosen = env.get("EXPORT_CACHE", "").strip()
    if chosen.lower() == "off":
        return None
    if chosen:
        return Path(chosen).expanduser()
    try:
        base = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:  # no home folder (a bare service account): keep none
        return None
    return base / "fashion-recommender" / "exports"


def export_key(weights: Weights) -> str | None:
    """What an export depends on, hashed: the weights, the recipe, the installed TensorFlow and Keras, and the
    exporter's own code. None where TensorFlow is not installed (nothing could be exported to compare)."""
    versions = {}
    for name in (*TENSORFLOW_DISTRIBUTIONS, "keras"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    if "keras" not in versions or len(versions) < 2:
        return None
    exporter = hashlib.sha256(Path(keras_onnx.__file__).read_bytes()).hexdigest()
    text = json.dumps({"weights": weights.identity(), "recipe": RECIPE, "versions": versions,
                       "opset": keras_onnx.OPSET, "exporter": exporter}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def find_export(weights: Weights) -> CachedExport | None:
    """This machine's export of these weights, if it made one and the file is whole."""
    folder, key = cache_dir(), export_key(weights)
    if folder is None or key is None:
        return None
    path = folder / f"{key}.onnx"
    try:
        text = (folder / f"{key}.json").read_text("utf-8")
    except OSError:  # none kept yet, or a folder this user cannot read: as if none
        return None
    try:
        record = json.loads(text)
        if sha256_file(path) != record["entry"]["sha256"]:
            raise ValueError("checksum")
        fingerprint, probe = dict(record["fingerprint"]), np.asarray(record["probe"], dtype=np.float32)
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("the cached export %s is damaged or incomplete: exporting again", path)
        return None
    if weights.path is not None:  # the file may have moved since: the hash decides, the path is a hint
        fingerprint["weights_file"] = str(weights.path.resolve())
    return CachedExport(path, fingerprint, probe, record["entry"])


def keep_export(path: Path, weights: Weights, fingerprint: dict[str, Any], probe: np.ndarray,
                entry: dict[str, Any]) -> None:
    """Keep a copy of a checked export (entry: its manifest entry, checksum included) for the next index. A cache
    that cannot be written costs only time."""
    folder, key = cache_dir(), export_key(weights)
    if folder is None or key is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        copy_whole(path, folder / f"{key}.onnx")
        record = {"fingerprint": fingerprint, "probe": np.asarray(probe).tolist(), "entry": entry}
        atomic_write(folder / f"{key}.json", json.dumps(record).encode("utf-8"))  # last: it vouches for the file
    except OSError as exc:
        log.warning("could not keep the export in %s (%s): the next index exports it again", folder, exc)
