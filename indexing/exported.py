"""The serving runtime: the exact Keras extractor exported to ONNX and run by ONNX Runtime."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from indexing.embedder import KerasEmbedder, l2_normalize, preprocess, probe_images, sha256_file
from indexing.errors import FashionIndexError
from indexing.images import SIZE

log = logging.getLogger(__name__)

ONNX_FILE = "extractor.onnx"
OPSET = 17


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def export_onnx(embedder: KerasEmbedder, out: Path) -> dict[str, Any]:
    """Convert the TensorFlow graph of this extractor to ONNX at out; returns the file's manifest entry.

    tf2onnx.convert.from_keras fails with Keras 3, so the traced inference function is converted.
    The result is checked against TensorFlow on the probe images before it is kept.
    """
    try:
        import tensorflow as tf
        import tf2onnx
    except ImportError as exc:
        raise FashionIndexError(f"exporting needs tf2onnx ({exc}); pip install tf2onnx") from None
    out = Path(out)
    handle, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(handle)
    try:
        tf2onnx.convert.from_function(
            embedder._call,
            input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32)],
            opset=OPSET,
            output_path=tmp,
        )
        exported = OnnxEmbedder(Path(tmp), embedder.fingerprint)
        probes = probe_images()
        reference = embedder.features(probes)
        served = exported.features(probes)
        relative = float(np.max(np.abs(served - reference)) / max(np.max(np.abs(reference)), 1e-12))
        if relative > 1e-4:
            raise FashionIndexError(f"the ONNX export differs from TensorFlow by {relative:.2g} (relative)")
        shutil.move(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return {"name": out.name, "bytes": out.stat().st_size, "sha256": sha256_file(out),
            "opset": OPSET, "max_relative_difference": relative}


class OnnxEmbedder:
    """The exported extractor on ONNX Runtime: no TensorFlow in the serving process."""

    runtime = "onnxruntime"

    def __init__(self, path: Path, fingerprint: dict[str, Any], threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(os.cpu_count() or 1, 4)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.fingerprint = dict(fingerprint)

    def features(self, images: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: preprocess(images)})[0]

    def embed(self, images: np.ndarray) -> np.ndarray:
        return l2_normalize(self.features(images))
