"""Photo to top-5 ids, by stage (decode, embed, search), over 44,072 products: ONNX Runtime, TensorFlow, and
the tutorial's way, each in a fresh process.

    python -m benchmarks latency [--repeat 30]"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.common import DATASET, ROOT, big_jpeg, p, synthetic_index
from indexing import KerasEmbedder, Weights, load_image
from indexing.store.index import Index


def time_stages(embedder, index: Index, photo: bytes, repeat: int) -> dict:
    decode, embed, search = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        pixels = load_image(photo)
        t1 = time.perf_counter()
        vector = embedder.embed(pixels[None])[0]
        t2 = time.perf_counter()
        index.search(vector, 5)
        t3 = time.perf_counter()
        decode.append(t1 - t0)
        embed.append(t2 - t1)
        search.append(t3 - t2)
    return summarise(decode, embed, search)


def bench_latency(repeat: int) -> dict:
    """Each path in a fresh process of its own: TensorFlow's idle threads slow ONNX Runtime down by half
    when both live in one process, and the bot never holds both."""
    from indexing.sources.build import export_extractor

    embedder = KerasEmbedder(Weights("random", 0))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        index = synthetic_index(Path(tmp) / "idx", 44_072, embedder)
        export_extractor(index.directory, embedder)
        for name, size in PHOTOS.items():
            photo = Path(tmp) / f"{name.replace(' ', '-')}.jpg"
            photo.write_bytes(big_jpeg(size) if size else (DATASET / "images" / "15970.jpg").read_bytes())
            for path in ("onnxruntime", "tensorflow", "tutorial"):
                done = subprocess.run([sys.executable, "-m", "benchmarks.latency", path, str(index.directory),
                                       str(photo), str(repeat)], cwd=ROOT, capture_output=True, text=True)
                if done.returncode:
                    raise RuntimeError(done.stderr[-3000:])
                rows.append({"photo": name, "path": path, **json.loads(done.stdout.strip().splitlines()[-1])})
                print(rows[-1], flush=True)
    return {"rows": rows, "repeat": repeat}


PHOTOS = {"catalogue 60x80": None, "JPEG 1280x960": (1280, 960), "JPEG 1800x2400": (1800, 2400)}


def stage_timing(path: str, index_dir: str, photo_file: str, repeat: int) -> dict:
    """Time decode / embed / search for one photo on one path, in this (fresh) process."""
    from threadpoolctl import threadpool_limits

    index = Index.load(index_dir)
    photo = Path(photo_file).read_bytes()
    if path != "tutorial":
        threadpool_limits(1, user_api="blas")  # as the bot does (bot/recommender.py)
        from indexing.extract.extractor import open_embedder

        runtime = open_embedder(index, runtime=path)
        runtime.embed(load_image(photo)[None])
        return time_stages(runtime, index, photo, repeat)
    # The tutorial: keras load_img (squashes to 224x224), model.predict, NearestNeighbors fitted per query.
    import keras
    from sklearn.neighbors import NearestNeighbors

    model = KerasEmbedder(Weights("random", 0)).model
    matrix = np.asarray(index.store.vectors)
    decode, embed, search = [], [], []
    for _ in range(max(5, repeat // 3)):
        t0 = time.perf_counter()
        x = keras.utils.img_to_array(keras.utils.load_img(photo_file, target_size=(224, 224)))[None]
        x = keras.applications.resnet50.preprocess_input(x)
        t1 = time.perf_counter()
        vector = model.predict(x, verbose=0)[0]
        t2 = time.perf_counter()
        NearestNeighbors(n_neighbors=5, algorithm="brute", metric="euclidean").fit(matrix).kneighbors(vector[None])
        t3 = time.perf_counter()
        decode.append(t1 - t0)
        embed.append(t2 - t1)
        search.append(t3 - t2)
    return summarise(decode, embed, search)


def summarise(decode: list[float], embed: list[float], search: list[float]) -> dict:
    total = np.array(decode) + np.array(embed) + np.array(search)
    return {"decode_ms": round(p(decode), 1), "embed_ms": round(p(embed), 1), "search_ms": round(p(search), 1),
            "total_p50_ms": round(p(total), 1), "total_p95_ms": round(p(total, 95), 1), "runs": len(total)}


def run(argv: Sequence[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks latency")
    parser.add_argument("--repeat", type=int, default=30)
    return {"latency": bench_latency(parser.parse_args(argv).repeat)}


if __name__ == "__main__":  # python -m benchmarks.latency PATH INDEX PHOTO REPEAT: one path, in a fresh process
    print(json.dumps(stage_timing(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))))
