"""Index build throughput: TensorFlow and ONNX Runtime at batch 1, 8 and 32, against the tutorial's way
(`model.predict` per image).

    python -m benchmarks build [--images 1000]"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.common import catalogue_files
from indexing import KerasEmbedder, Weights, build_index
from indexing.sources.options import BuildOptions


def bench_build(n: int) -> dict:
    files = catalogue_files(n)
    embedder = KerasEmbedder(Weights("random", 0))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for f in files:
            os.symlink(f, folder / f.name)
        for batch in (1, 8, 32):
            embedder.embed(np.zeros((batch, 224, 224, 3), np.uint8))  # trace this batch shape first
            started = time.perf_counter()
            report = build_index([folder], Path(tmp) / f"idx{batch}", embedder=embedder,
                                 options=BuildOptions(batch_size=batch, export=False, progress=False))
            seconds = time.perf_counter() - started
            rows.append({"runtime": "tensorflow", "batch": batch, "images": report.indexed,
                         "images_per_s": round(report.indexed / seconds, 2)})
            print(rows[-1], flush=True)
        from indexing.extract.exported import OnnxEmbedder, export_onnx

        entry = export_onnx(embedder, Path(tmp) / "x.onnx")
        onnx = OnnxEmbedder(Path(tmp) / entry["name"], embedder.fingerprint)
        for batch in (1, 8, 32):
            started = time.perf_counter()
            report = build_index([folder], Path(tmp) / f"onnx{batch}", embedder=onnx,
                                 options=BuildOptions(batch_size=batch, progress=False))
            seconds = time.perf_counter() - started
            rows.append({"runtime": "onnxruntime", "batch": batch, "images": report.indexed,
                         "images_per_s": round(report.indexed / seconds, 2)})
            print(rows[-1], flush=True)
    # The tutorial: keras.preprocessing.image + model.predict, one image at a time.
    import keras

    model = embedder.model
    started = time.perf_counter()
    for f in files[:100]:
        x = keras.utils.img_to_array(keras.utils.load_img(f, target_size=(224, 224)))[None]
        model.predict(keras.applications.resnet50.preprocess_input(x), verbose=0)
    rows.append({"runtime": "tutorial: model.predict per image", "batch": 1, "images": 100,
                 "images_per_s": round(100 / (time.perf_counter() - started), 2)})
    print(rows[-1], flush=True)
    return {"rows": rows}


def run(argv: Sequence[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks build")
    parser.add_argument("--images", type=int, default=1000)
    return {"build": bench_build(parser.parse_args(argv).images)}
