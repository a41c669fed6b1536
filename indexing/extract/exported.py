"""The serving runtime: the exact Keras extractor exported to ONNX and run by ONNX Runtime."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from indexing.errors import FashionIndexError
from indexing.extract.embedder import LAST_CONV, KerasEmbedder, file_entry, l2_normalize, preprocess, probe_images
from indexing.extract.export_cache import find_export, keep_export
from indexing.extract.keras_onnx import OPSET, resnet_onnx
from indexing.store.files import file_mode

log = logging.getLogger(__name__)

ONNX_FILE = "extractor.onnx"
INT8_FILE = "extractor-int8.onnx"


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def export_onnx(embedder: KerasEmbedder, out: Path) -> dict[str, Any]:
    """Write this extractor as ONNX at out (indexing/extract/keras_onnx.py); returns the file's manifest entry.

    The result is checked against TensorFlow on the probe images before it is kept, here and in this machine's
    export cache (indexing/extract/export_cache.py), from which the next export of the same weights is copied.
    """
    out = Path(out)
    cached = find_export(embedder.weights)
    if cached is not None:
        return cached.copy_to(out)
    import onnx

    handle, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(handle)
    try:
        onnx.save(resnet_onnx(embedder.model, LAST_CONV), tmp)
        exported = OnnxEmbedder(Path(tmp), embedder.fingerprint)
        probes = probe_images()
        reference = embedder.features(probes)
        served = exported.features(probes)
        relative = float(np.max(np.abs(served - reference)) / max(np.max(np.abs(reference)), 1e-12))
        maps = exported.activation_maps(probes), embedder.activation_maps(probes)
        relative = max(relative, float(np.max(np.abs(maps[0] - maps[1])) / max(np.max(np.abs(maps[1])), 1e-12)))
        if relative > 1e-4:
            raise FashionIndexError(f"the ONNX export differs from TensorFlow by {relative:.2g} (relative)")
        del exported
        os.chmod(tmp, file_mode())
        shutil.move(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    entry = {**file_entry(out), "opset": OPSET, "max_relative_difference": relative}
    keep_export(out, embedder.weights, embedder.fingerprint, l2_normalize(reference), entry)
    return entry


def quantize_int8(source: Path, target: Path, calibration: np.ndarray) -> dict[str, Any]:
    """Static int8 quantisation (QDQ, per-channel weights) calibrated on catalogue photos.

    Opt-in only: how far its rankings drift from fp32 can only be judged with the real ImageNet
    weights (`fashion-index eval --runtime onnxruntime-int8` reports the top-5 overlap).
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    class Photos(CalibrationDataReader):
        def __init__(self, name: str):
            self.batches = iter([{name: preprocess(calibration[i : i + 8])} for i in range(0, len(calibration), 8)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        import onnxruntime as ort

        name = ort.InferenceSession(str(prepared), providers=["CPUExecutionProvider"]).get_inputs()[0].name
        quantize_static(str(prepared), str(Path(tmp) / "int8.onnx"), Photos(name), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
        shutil.move(Path(tmp) / "int8.onnx", target)
    return {**file_entry(target), "calibration_images": len(calibration)}


def machine_tag() -> str:
    """This CPU's instruction set: ONNX Runtime's fully optimised graphs are specific to it."""
    import onnxruntime as ort

    flags = platform.machine()
    with contextlib.suppress(OSError):
        flags += next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    return hashlib.sha256(f"{ort.__version__} {flags}".encode()).hexdigest()[:12]


def optimized_path(cache_dir: Path, sha256: str) -> Path:
    """Where optimized_model keeps its form of the model whose checksum is sha256, for this machine."""
    return cache_dir / f"extractor-{sha256[:16]}-{machine_tag()}.ort"


def optimized_model(path: Path, cache_dir: Path, sha256: str) -> Path:
    """ONNX Runtime's optimised form of the model, made once per machine and kept in cache_dir.

    Loading it skips the optimiser, which otherwise holds a second copy of the weights: the serving
    process needs about 100 MB less. It is made in a child process so that the optimiser's peak
    memory is not left behind in the bot's heap.
    """
    target = optimized_path(cache_dir, sha256)
    if not target.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run([sys.executable, "-m", "indexing.extract.exported", str(path), str(tmp)], check=True,
                       capture_output=True)
        os.replace(tmp, target)
    return target


def optimize(source: str, target: str) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = target
    options.add_session_config_entry("session.save_model_format", "ORT")
    options.log_severity_level = 3  # its warning is that the result is machine-specific: we know
    ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


class OnnxEmbedder:
    """The exported extractor on ONNX Runtime: no TensorFlow in the serving process."""

    runtime = "onnxruntime"

    def __init__(self, path: Path, fingerprint: dict[str, Any], threads: int | None = None,
                 cache_dir: Path | None = None, sha256: str = ""):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(os.cpu_count() or 1, 4)
        options.inter_op_num_threads = 1
        # Idle workers would spin for a while after each run, holding both cores of a small server while the
        # next photo is decoded and its items found; they sleep instead (bursts of users: see benchmarks).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # The arena would keep a batch's peak activations for good; a few ms per batch buy ~80 MB.
        options.enable_cpu_mem_arena = False
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if cache_dir is not None and sha256:
            path = optimized_model(path, cache_dir, sha256)
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.outputs = [output.name for output in self.session.get_outputs()]
        self.fingerprint = dict(fingerprint)

    def features(self, images: np.ndarray) -> np.ndarray:
        return self.session.run(self.outputs[:1], {self.input: preprocess(images)})[0]

    def activation_maps(self, images: np.ndarray) -> np.ndarray:
        """The last convolutional map summed over its channels, (n, 7, 7): the export's second output."""
        if len(self.outputs) < 2:
            raise FashionIndexError("this index's extractor was exported without its activation map (before "
                                    "SCDA existed): run `fashion-index export` again")
        return self.session.run(self.outputs[1:2], {self.input: preprocess(images)})[0]

    def embed(self, images: np.ndarray) -> np.ndarray:
        return l2_normalize(self.features(images))


if __name__ == "__main__":  # python -m indexing.extract.exported MODEL.onnx OUT.ort (see optimized_model)
    optimize(sys.argv[1], sys.argv[2])
