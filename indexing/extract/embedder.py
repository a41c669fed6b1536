"""The shared feature extractor: ResNet50 (Keras), global max pooling, L2-normalised 2048-d vectors."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from indexing.errors import FashionIndexError, WeightsError
from indexing.extract.images import SIZE

log = logging.getLogger(__name__)

DIM = 2048
# Keras' preprocess_input in "caffe" mode: RGB->BGR, minus the ImageNet mean (in BGR), no scaling.
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
LAST_CONV = "conv5_block3_out"  # the 7x7x2048 map that the pooling reduces
KERAS_WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"

# What must match, key for key, between the extractor that built an index and the one serving it.
RECIPE: dict[str, Any] = {
    "architecture": "keras.applications.ResNet50",
    "include_top": False,
    "input_shape": [SIZE, SIZE, 3],
    "pooling": "GlobalMaxPooling2D",
    "preprocessing": "caffe: RGB->BGR, ImageNet mean subtracted, no scaling",
    "resize": "pad to a white square, bilinear to 224x224",
    "normalisation": "L2",
    "dim": DIM,
}


class Embedder(Protocol):
    """Anything that turns (n, 224, 224, 3) uint8 RGB batches into (n, 2048) unit vectors."""

    runtime: str
    fingerprint: dict[str, Any]

    def embed(self, images: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Weights:
    """Which weights to load: 'imagenet', 'random' (with a seed) or a local .h5 file."""

    kind: str
    seed: int = 0
    path: Path | None = None

    @classmethod
    def parse(cls, text: str) -> Weights:
        if text == "imagenet":
            return cls("imagenet")
        if text == "random" or text.startswith("random:"):
            _, _, seed = text.partition(":")
            try:
                return cls("random", seed=int(seed or 0))
            except ValueError:
                raise WeightsError(f"bad random seed in {text!r}: use random or random:<int>") from None
        path = Path(text).expanduser()
        if not path.is_file():
            raise WeightsError(f"weights file not found: {path} (use imagenet, random or a .h5 path)")
        return cls("file", path=path)

    def identity(self) -> str:
        if self.kind == "random":
            return f"random:{self.seed}"
        if self.kind == "file":
            assert self.path is not None
            return f"sha256:{sha256_file(self.path)}"
        return "imagenet"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(path: Path) -> dict[str, Any]:
    """How a manifest names a data file: its name, size and checksum."""
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def preprocess(images: np.ndarray) -> np.ndarray:
    """Keras' caffe-mode preprocess_input, in numpy so that serving needs no TensorFlow."""
    batch = np.asarray(images, dtype=np.float32)
    return np.ascontiguousarray(batch[..., ::-1] - CAFFE_MEAN_BGR)


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def probe_images() -> np.ndarray:
    """Two fixed pictures whose vectors identify an extractor: a stored copy proves a match."""
    rng = np.random.default_rng(20240607)
    noise = rng.integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, SIZE, dtype=np.float32)
    gradient = np.stack(np.broadcast_arrays(ramp[:, None], ramp[None, :], 255 - ramp[:, None]), -1)
    return np.stack([noise, gradient.astype(np.uint8)])


class KerasEmbedder:
    """The reference extractor on TensorFlow; it builds indexes and exports the serving model."""

    runtime = "tensorflow"

    def __init__(self, weights: Weights):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            import keras
            import tensorflow as tf
        except ImportError:
            # A serving install (pip install fashion-recommender, the bot's image) has no TensorFlow: it serves
            # the index's ONNX export, and only building or exporting needs the 'index' extra.
            raise FashionIndexError(
                "TensorFlow is not installed here: serve an index built with its ONNX export "
                "(`fashion-index export --index DIR` where TensorFlow is), or pip install 'fashion-recommender[index]'"
            ) from None

        self.weights = weights
        if weights.kind == "random":
            keras.utils.set_random_seed(weights.seed)
        source: str | None = {"imagenet": "imagenet", "random": None}.get(
            weights.kind, str(weights.path)
        )
        try:
            self.model = keras.applications.ResNet50(
                weights=source, include_top=False, input_shape=(SIZE, SIZE, 3), pooling="max"
            )
        except Exception as exc:
            hint = ""
            if weights.kind == "imagenet":
                hint = (
                    f"; offline? copy {KERAS_WEIGHTS_FILE} into ~/.keras/models/ "
                    "or pass a local weights file (see README)"
                )
            raise WeightsError(f"cannot load {weights.identity()} weights: {exc}{hint}") from exc
        # Two outputs from one pass: the pooled features, and the last convolutional map summed over its
        # channels (7x7), which marks the main object for SCDA (indexing/finder/scda.py). The export keeps both.
        both = keras.Model(self.model.input, [self.model.output,
                                              keras.ops.sum(self.model.get_layer(LAST_CONV).output, axis=-1)])
        self._call = tf.function(
            lambda x: both(x, training=False),
            input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32)],
        )
        self.fingerprint = {
            **RECIPE,
            "weights": weights.identity(),
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        }
        if weights.path is not None:  # where to look first on this machine; the hash decides
            self.fingerprint["weights_file"] = str(weights.path.resolve())

    def features(self, images: np.ndarray) -> np.ndarray:
        """Raw pooled activations, before normalisation (the exported model's first output)."""
        return self._call(preprocess(images))[0].numpy()

    def activation_maps(self, images: np.ndarray) -> np.ndarray:
        """The last convolutional map summed over its channels: (n, 7, 7)."""
        return self._call(preprocess(images))[1].numpy()

    def embed(self, images: np.ndarray) -> np.ndarray:
        return l2_normalize(self.features(images))
