"""Benchmarks on the real catalogue: build throughput, query latency by stage, search, memory, the bot.

Runs the tutorial's way (model.predict per image, NearestNeighbors fitted per query) in the same run as
the baseline. Writes benchmarks/results/<section>.json and benchmarks/results/README.md.
Random weights throughout: timings and memory are real, no figure here measures recommendation quality.

    python benchmarks/run.py                 # everything (about 20 minutes on 2 cores)
    python benchmarks/run.py --only latency  # one section: build, latency, search, memory, bot
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
DATASET = Path(os.environ.get("FASHION_DATASET", ROOT.parent / "shared" / "datasets" / "fashion-small"))

from indexing import KerasEmbedder, Weights, build_index, load_image  # noqa: E402
from indexing.catalogue import read_metadata  # noqa: E402
from indexing.embedder import l2_normalize, probe_images  # noqa: E402
from indexing.files import write_index  # noqa: E402
from indexing.images import encode  # noqa: E402
from indexing.index import Index  # noqa: E402
from indexing.milvus import parse_store  # noqa: E402


def p(values, q=50) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def catalogue_files(n: int) -> list[Path]:
    ids = sorted(int(f.stem) for f in (DATASET / "images").glob("*.jpg"))[:n]
    return [DATASET / "images" / f"{i}.jpg" for i in ids]


def big_jpeg(size: tuple[int, int]) -> bytes:
    """A catalogue photo upscaled to a phone-sized JPEG (real content, real JPEG entropy)."""
    source = Image.open(DATASET / "images" / "15970.jpg").convert("RGB")
    return encode(source.resize(size, Image.Resampling.BICUBIC))


def machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": sys.version.split()[0]}


# -- build throughput -----------------------------------------------------------------------------------
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
            report = build_index([folder], Path(tmp) / f"idx{batch}", embedder=embedder, batch_size=batch,
                                 export=False, progress=False)
            seconds = time.perf_counter() - started
            rows.append({"runtime": "tensorflow", "batch": batch, "images": report.indexed,
                         "images_per_s": round(report.indexed / seconds, 2)})
            print(rows[-1], flush=True)
        from indexing.exported import OnnxEmbedder, export_onnx

        entry = export_onnx(embedder, Path(tmp) / "x.onnx")
        onnx = OnnxEmbedder(Path(tmp) / entry["name"], embedder.fingerprint)
        for batch in (1, 8, 32):
            started = time.perf_counter()
            report = build_index([folder], Path(tmp) / f"onnx{batch}", embedder=onnx, batch_size=batch,
                                 progress=False)
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


# -- latency by stage -----------------------------------------------------------------------------------
def synthetic_index(directory: Path, n: int, embedder, seed: int = 0, store: str | None = None) -> Index:
    """n products with the real catalogue's metadata and photos, and random unit vectors.

    Search time and memory depend only on n and the dimension, so random vectors give true timings.
    """
    table = read_metadata(DATASET / "styles.csv")
    ids = sorted(int(f.stem) for f in (DATASET / "images").glob("*.jpg"))
    rng = np.random.default_rng(seed)
    vectors = np.empty((n, 2048), np.float32)
    for start in range(0, n, 50_000):
        stop = min(n, start + 50_000)
        vectors[start:stop] = l2_normalize(rng.standard_normal((stop - start, 2048), dtype=np.float32))
    products = []
    for i in range(n):
        pid = str(ids[i % len(ids)])
        key = pid if i < len(ids) else f"{pid}-{i}"
        products.append({"id": key, "image": str(DATASET / "images" / f"{pid}.jpg"), "photo": key,
                         "meta": table.rows.get(pid, {})})
    write_index(directory, vectors=vectors, products=products, fingerprint=embedder.fingerprint,
                probe=embedder.embed(probe_images()), store=parse_store(store) if store else None)
    return Index.load(directory)


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
    from indexing.build import export_extractor

    embedder = KerasEmbedder(Weights("random", 0))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        index = synthetic_index(Path(tmp) / "idx", 44_072, embedder)
        export_extractor(index.directory, embedder)
        for name, size in PHOTOS.items():
            photo = Path(tmp) / f"{name.replace(' ', '-')}.jpg"
            photo.write_bytes(big_jpeg(size) if size else (DATASET / "images" / "15970.jpg").read_bytes())
            for path in ("onnxruntime", "tensorflow", "tutorial"):
                done = subprocess.run([sys.executable, __file__, "--stage-timing", path, str(index.directory),
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
        from indexing.extractor import open_embedder

        runtime = open_embedder(index, runtime=path)
        runtime.embed(load_image(photo)[None])
        return time_stages(runtime, index, photo, repeat)
    # The tutorial: keras load_img (squashes to 224x224), model.predict, NearestNeighbors fitted per query.
    import keras
    from sklearn.neighbors import NearestNeighbors

    model = KerasEmbedder(Weights("random", 0)).model
    matrix = np.asarray(index.vectors)
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


# -- search alone -------------------------------------------------------------------------------------
def bench_search(sizes: list[int]) -> dict:
    rows = []
    embedder = type("Fake", (), {"fingerprint": {"weights": "random:0"},
                                 "embed": staticmethod(lambda x: np.zeros((len(x), 2048), np.float32))})()
    rng = np.random.default_rng(1)
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            index = synthetic_index(Path(tmp) / "idx", n, embedder)
            queries = l2_normalize(rng.standard_normal((30, 2048), dtype=np.float32))
            index.search(queries[0], 5)
            times = []
            for q in queries:
                started = time.perf_counter()
                index.search(q, 5)
                times.append(time.perf_counter() - started)
            filtered = []
            for q in queries[:10]:
                started = time.perf_counter()
                index.search(q, 5, filters={"gender": ["Women"], "articleType": ["Tops", "Tshirts"]})
                filtered.append(time.perf_counter() - started)
            row = {"vectors": n, "exact_p50_ms": round(p(times), 1), "exact_p95_ms": round(p(times, 95), 1),
                   "filtered_p50_ms": round(p(filtered), 1)}
            if n <= 100_000:
                from sklearn.neighbors import NearestNeighbors

                matrix = np.asarray(index.vectors)
                sk = []
                for q in queries[:5]:
                    started = time.perf_counter()
                    NearestNeighbors(n_neighbors=5, algorithm="brute").fit(matrix).kneighbors(q[None])
                    sk.append(time.perf_counter() - started)
                row["tutorial_sklearn_fit_per_query_p50_ms"] = round(p(sk), 1)
            rows.append(row)
            print(row, flush=True)
            del index
    return {"rows": rows}


# -- memory and start-up of a serving process --------------------------------------------------------
SERVE_PROBE = """
import re, sys, time, json
from pathlib import Path
t0 = time.perf_counter()
from indexing import Index, load_image, open_embedder
index = Index.load(sys.argv[1])
embedder = open_embedder(index, runtime=sys.argv[2], cache_dir=Path(sys.argv[4]))  # as the bot does
ready = time.perf_counter() - t0
photo = open(sys.argv[3], "rb").read()
for _ in range(5):
    index.search(embedder.embed(load_image(photo)[None])[0], 5)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
status = open("/proc/self/status").read()
peak, now = (int(re.search(key + r":\\s+(\\d+)", status).group(1)) // 1024 for key in ("VmHWM", "VmRSS"))
print(json.dumps({"ready_s": round(ready, 2), "peak_rss_mb": peak, "rss_after_mb": now}))
"""


def bench_memory() -> dict:
    from indexing.build import export_extractor
    from indexing.extractor import open_embedder

    embedder = KerasEmbedder(Weights("random", 0))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        index = synthetic_index(Path(tmp) / "idx", 44_072, embedder)
        export_extractor(index.directory, embedder)
        index = Index.load(index.directory)
        photo = Path(tmp) / "photo.jpg"
        photo.write_bytes(big_jpeg((1280, 960)))
        for runtime in ("onnxruntime", "tensorflow"):
            cache = Path(tmp) / "models"
            if runtime == "onnxruntime":  # the optimised model is made once per machine: not timed here
                open_embedder(index, runtime=runtime, cache_dir=cache)
            done = subprocess.run([sys.executable, "-c", SERVE_PROBE, str(index.directory), runtime, str(photo),
                                   str(cache)],
                                  cwd=ROOT, capture_output=True, text=True, check=True)
            rows.append({"runtime": runtime, "products": 44_072, **json.loads(done.stdout.strip().splitlines()[-1])})
            print(rows[-1], flush=True)
    return {"rows": rows}


SECTIONS = {
    "build": lambda a: bench_build(a.build_images),
    "latency": lambda a: bench_latency(a.repeat),
    "search": lambda a: bench_search([44_072, 1_000_000]),
    "memory": lambda a: bench_memory(),
}


def main() -> None:
    if sys.argv[1:2] == ["--stage-timing"]:
        print(json.dumps(stage_timing(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated sections: " + ", ".join([*SECTIONS, "bot", "ann", "feed",
                                                                                    "first-run", "milvus", "commands",
                                                                                    "bot-scaled"]))
    parser.add_argument("--build-images", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--real-index", help="for --only ann/milvus: an index of real catalogue photos to scale up")
    parser.add_argument("--sizes", default="44072", help="for --only milvus: catalogue sizes, comma-separated")
    parser.add_argument("--bot-code", help="for --only bot: run the bot from this checkout (e.g. an older commit, "
                                           "for before/after figures); results go to bot-<name>.json")
    args = parser.parse_args()
    if not (DATASET / "images").is_dir():
        sys.exit(f"the catalogue is not at {DATASET}; set FASHION_DATASET")
    RESULTS.mkdir(parents=True, exist_ok=True)
    chosen = args.only.split(",") if args.only else [*SECTIONS, "bot"]
    for name in chosen:
        print(f"== {name}", flush=True)
        if name == "bot":
            from benchmarks.bot_latency import bench_bot

            result = bench_bot(DATASET, Path(args.bot_code) if args.bot_code else ROOT)
        elif name == "feed":
            from benchmarks.feed_sync import bench_feed

            result = bench_feed()
        elif name == "commands":
            from benchmarks.commands import bench_commands

            result = bench_commands()
        elif name == "first-run":
            from benchmarks.first_run import bench_first_run

            result = bench_first_run()
        elif name == "bot-scaled":
            from benchmarks.bot_scaled import bench_bot_scaled

            result = bench_bot_scaled()
        elif name == "milvus":
            from benchmarks.milvus_scale import bench_milvus

            if not args.real_index:
                sys.exit("--only milvus needs --real-index DIR: an index built on catalogue photos")
            result = bench_milvus(Path(args.real_index), tuple(int(n) for n in args.sizes.split(",")))
        elif name == "ann":
            from benchmarks.ann_scale import bench_ann

            if not args.real_index:
                sys.exit("--only ann needs --real-index DIR: an index built on catalogue photos")
            result = bench_ann(Path(args.real_index))
        else:
            result = SECTIONS[name](args)
        command = f"python benchmarks/run.py --only {name}"
        if name in ("ann", "milvus"):
            command += f" --real-index {args.real_index}"
        if name == "milvus":
            command += f" --sizes {args.sizes}"
        target = f"{name}.json"
        if name == "bot" and args.bot_code:
            command += f" --bot-code {args.bot_code}"
            target = f"bot-{Path(args.bot_code).resolve().name}.json"
        result.update({"machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M:%S"), "command": command})
        (RESULTS / target).write_text(json.dumps(result, indent=2))
    from benchmarks.report import write_report

    write_report(RESULTS)
    print(f"peak RSS of this benchmark process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")


if __name__ == "__main__":
    main()
