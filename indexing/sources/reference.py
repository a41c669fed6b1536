"""The extractor a new index is built with: TensorFlow's ResNet50, or this machine's checked export of the same
weights, which spares a build TensorFlow altogether (its seconds of loading and most of its memory)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexing.errors import ExtractorMismatchError, FashionIndexError
from indexing.extract.embedder import Embedder, KerasEmbedder, file_entry, probe_images
from indexing.extract.export_cache import CachedExport, find_export
from indexing.extract.exported import ONNX_FILE, OnnxEmbedder, export_onnx, onnxruntime_available
from indexing.extract.extractor import PROBE_TOLERANCE, verify_embedder, weights_for
from indexing.sources.options import BuildOptions
from indexing.store.index import Index

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reference:
    """What a new index records of its extractor (the fingerprint, TensorFlow's vectors of the probe images),
    and where its runner comes from: model (the embedder given, or TensorFlow's loaded), or else cached."""

    fingerprint: dict[str, Any]
    probe: np.ndarray
    model: Embedder | None
    cached: CachedExport | None = None


def choose_reference(embedder: Embedder | None, options: BuildOptions) -> Reference:
    """The embedder given; else, for a build that embeds with the export anyway, the one this machine made of
    these weights before; else TensorFlow's ResNet50 with options.weights."""
    if embedder is None and options.export and onnxruntime_available():
        cached = find_export(options.weights)
        if cached is not None:
            log.info("using this machine's export of the %s extractor (%s): TensorFlow is not loaded",
                     options.weights.identity(), cached.path)
            return Reference(cached.fingerprint, cached.probe, None, cached)
    model = embedder or KerasEmbedder(options.weights)
    return Reference(model.fingerprint, model.embed(probe_images()), model)


def copy_kept_export(index: Index, target: Path, weights_path: str | Path | None = None) -> dict[str, Any] | None:
    """This machine's export of the index's weights, copied to target once it reproduces the index's own probe
    vectors (a TensorFlow older or newer than the index's may not); its manifest entry, or None."""
    cached = find_export(weights_for(index.fingerprint, weights_path)) if onnxruntime_available() else None
    if cached is None:
        return None
    tmp = target.with_name(f".{target.name}.kept")
    entry = cached.copy_to(tmp)
    try:
        verify_embedder(OnnxEmbedder(tmp, index.fingerprint), index)
    except ExtractorMismatchError:
        tmp.unlink()
        return None
    os.replace(tmp, target)
    return {**entry, "name": target.name}


def export_for_serving(reference: Reference, folder: Path, wanted: bool) -> tuple[Embedder, dict[str, Any], str]:
    """The extractor to embed with, its export's manifest entry, and what to report: the ONNX export of a
    TensorFlow extractor (made in folder, once), or the extractor itself when no export is wanted or possible."""
    model = reference.model
    if model is not None and (not wanted or not isinstance(model, KerasEmbedder)):
        return model, {}, ""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        runner, entry = serving_export(reference, folder / ONNX_FILE)
    except FashionIndexError as exc:
        if model is None:
            raise FashionIndexError(f"{exc}: set EXPORT_CACHE=off to build with TensorFlow") from exc
        log.warning("no ONNX export, the bot will serve with TensorFlow: %s", exc)
        return model, {}, f"no ONNX export ({exc})"
    return runner, entry, ""


def serving_export(reference: Reference, path: Path) -> tuple[Embedder, dict[str, Any]]:
    """Export first, then embed the catalogue with the export: ONNX Runtime is a third faster than
    TensorFlow here, and the vectors equal TensorFlow's within 1e-4 (checked on export and on resume)."""
    if not onnxruntime_available():
        raise FashionIndexError("onnxruntime is not installed")
    # A resumed build reuses the export that the interrupted run made.
    if path.exists():
        entry = file_entry(path)
    elif reference.cached is not None:
        entry = reference.cached.copy_to(path)
    else:
        assert isinstance(reference.model, KerasEmbedder)
        log.info("exporting the extractor to ONNX for fast embedding and serving (once per machine) ...")
        entry = export_onnx(reference.model, path)
    runner = OnnxEmbedder(path, reference.fingerprint)
    if np.max(np.abs(runner.embed(probe_images()) - reference.probe)) > PROBE_TOLERANCE:
        path.unlink()
        raise FashionIndexError("the ONNX export does not reproduce TensorFlow's vectors")
    return runner, entry
