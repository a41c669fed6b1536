"""Reproduce the extractor that built an index, and prove it is the same before it serves."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from indexing.errors import ExtractorMismatchError, FashionIndexError, WeightsError
from indexing.extract.embedder import RECIPE, Embedder, KerasEmbedder, Weights, probe_images
from indexing.extract.exported import OnnxEmbedder, onnxruntime_available, optimized_path
from indexing.store.files import checked_entry, checked_file
from indexing.store.index import Index

RUNTIMES = ("auto", "onnxruntime", "tensorflow", "onnxruntime-int8")

log = logging.getLogger(__name__)

# Vectors are unit length; two runtimes computing the same model agree far inside this.
PROBE_TOLERANCE = 1e-4


def weights_for(fingerprint: dict[str, Any], weights_path: str | Path | None = None) -> Weights:
    """The weights named by an index's fingerprint, found on this machine."""
    identity = str(fingerprint.get("weights", ""))
    if identity == "imagenet":
        return Weights("imagenet")
    if identity.startswith("random:"):
        return Weights.parse(identity)
    if identity.startswith("sha256:"):
        candidates = [weights_path, fingerprint.get("weights_file")]
        for candidate in filter(None, candidates):
            if Path(candidate).expanduser().is_file():
                weights = Weights.parse(str(candidate))
                if weights.identity() == identity:
                    return weights
        raise WeightsError(
            f"the index was built with a local weights file ({identity[:19]}...); "
            "point WEIGHTS_PATH (or --weights) at that same file"
        )
    raise ExtractorMismatchError(f"unknown weights identity {identity!r} in the index")


def check_recipe(fingerprint: dict[str, Any]) -> None:
    for key, expected in RECIPE.items():
        if fingerprint.get(key) != expected:
            raise ExtractorMismatchError(
                f"the index was built with {key}={fingerprint.get(key)!r}; "
                f"this program computes {key}={expected!r}: rebuild the index"
            )


def verify_embedder(embedder: Embedder, index: Index) -> float:
    """Refuse an extractor whose vectors differ from the builder's; returns the largest difference."""
    built_with = index.fingerprint.get("weights")
    serving = embedder.fingerprint.get("weights")
    if built_with != serving:
        raise ExtractorMismatchError(
            f"the index was built with weights {built_with}, this extractor has {serving}"
        )
    check_recipe(embedder.fingerprint)
    expected = np.asarray(index.probe, dtype=np.float32)
    actual = embedder.embed(probe_images())
    diff = float(np.max(np.abs(actual - expected))) if actual.shape == expected.shape else np.inf
    if not diff <= PROBE_TOLERANCE:
        versions = index.fingerprint.get("versions", {})
        raise ExtractorMismatchError(
            f"this {embedder.runtime} extractor does not reproduce the index's vectors "
            f"(max difference {diff:.2g} > {PROBE_TOLERANCE}); the index was built with {versions}"
        )
    return diff


def open_embedder(index: Index, *, runtime: str = "auto", weights_path: str | Path | None = None,
                  cache_dir: Path | None = None) -> Embedder:
    """The extractor that built this index, verified on the stored probe images.

    auto: the index's ONNX export on ONNX Runtime where both exist (fast start, no TensorFlow),
    else the TensorFlow reference rebuilt from the weights named in the fingerprint.
    cache_dir: where to keep ONNX Runtime's optimised model for this machine (a long-lived server's
    state folder); it saves memory in the serving process.
    """
    if runtime not in RUNTIMES:
        raise FashionIndexError(f"unknown runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
    check_recipe(index.fingerprint)
    exported = "extractor" in index.manifest["files"]
    embedder: Embedder
    if runtime == "onnxruntime-int8":
        if "extractor_int8" not in index.manifest["files"]:
            raise FashionIndexError("this index has no int8 model: run `fashion-index export --int8`")
        # Its vectors differ from fp32 by design, so the probe cannot vouch for it: its checksum,
        # recorded when it was made from this index's own export, does.
        int8 = OnnxEmbedder(checked_file(index.directory, index.manifest, "extractor_int8"), index.fingerprint)
        int8.runtime = "onnxruntime-int8"
        return int8
    if runtime == "onnxruntime" or (runtime == "auto" and exported and onnxruntime_available()):
        if not exported:
            raise FashionIndexError("this index has no exported extractor: run `fashion-index export`")
        entry = index.manifest["files"]["extractor"]
        # The optimised form was made from a checked file, and is named by the checksum that file had: a bot
        # that already has it serves without reading the 94 MB export again.
        optimised = cache_dir is not None and optimized_path(cache_dir, entry["sha256"]).exists()
        path = checked_entry(index.directory, entry, "extractor", verify=not optimised)
        embedder = OnnxEmbedder(path, index.fingerprint, cache_dir=cache_dir, sha256=entry["sha256"])
    else:
        embedder = KerasEmbedder(weights_for(index.fingerprint, weights_path))
    verify_embedder(embedder, index)
    return embedder
