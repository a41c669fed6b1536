"""Milvus (standalone, with the index its size gets) against the index folder, on the same catalogue at each size:
perturbed copies of real catalogue photos' vectors, as in the ann benchmark, with the real catalogue's metadata.

Per store and size: the time and bytes of writing the whole catalogue (bytes the writer, or Milvus's engine, had
written to storage: /proc/PID/io; and the growth of the data on disk); recall@5 against exact search and the time
per query; a replica's memory; the time and bytes of a change to 1% of the products (a quarter each added,
removed, given new photos, given new prices); and one bot replica's update-to-album time and memory.

Milvus 2.3 standalone listens on every interface: run this in a loopback-only network namespace, as the store
suite does (`--engine lite` runs a Milvus Lite server instead):
    unshare -rn sh -c 'ip link set lo up && FASHION_LOOPBACK_ONLY=1 python -m benchmarks milvus --real-index DIR'
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from benchmarks.ann_scale import MEASURE, QUERIES, exact_top5, nearest_distances, perturbed
from benchmarks.bot_latency import flatlay_jpeg
from benchmarks.bot_scaled import one_user
from benchmarks.common import ROOT, p, rss_mb, synthetic_products
from indexing.store.files import change_index, write_index
from indexing.store.index import Index
from indexing.store.milvus import parse_store
from indexing.store.vector_store import Change
from testbed.fake_telegram import FakeTelegram
from testbed.milvus_server import MilvusLiteServer
from testbed.milvus_standalone import MilvusStandalone


def disk_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def written(pid: int) -> int:
    """Bytes the process has had written to storage so far (its own files, its WAL, its metadata store)."""
    os.sync()  # the kernel counts a page when it writes it back: flush what is still dirty first
    return int(next(line.split()[1] for line in Path(f"/proc/{pid}/io").read_text().splitlines()
                    if line.startswith("write_bytes:")))


def measure(index_dir: Path, queries_file: Path, truth: list[list[str]]) -> dict:
    done = subprocess.run([sys.executable, "-c", MEASURE, str(index_dir), str(queries_file), "0"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    recall = np.mean([len(set(f) & set(t)) / 5 for f, t in zip(result["found"], truth, strict=True)])
    return {"recall@5": round(float(recall), 4), "p50_ms": round(p(result["times"]), 1),
            "p95_ms": round(p(result["times"], 95), 1), "replica_search_peak_rss_mb": result["peak_mb"],
            "load_s": round(result["load_s"], 1)}


def one_percent(products: list[dict], vectors: np.ndarray, rng: np.random.Generator) -> Change:
    """A change to 1% of the products: a quarter of it each added, removed, new photos and new prices."""
    n, quarter = len(products), max(1, len(products) // 400)
    chosen = rng.choice(n, size=3 * quarter, replace=False)
    removed, rephotographed, repriced = np.split(chosen, 3)
    fresh = [{**products[i], "id": f"new-{j}", "photo": f"new-{j}"} for j, i in enumerate(rng.choice(n, quarter))]
    again = [{**products[i], "photo": f"{products[i]['photo']}-2"} for i in rephotographed]
    noise = rng.standard_normal((2 * quarter, vectors.shape[1]), dtype=np.float32) * 0.01
    moved = vectors[np.concatenate([rng.choice(n, quarter), rephotographed])] + noise
    return Change(removed=frozenset(products[i]["id"] for i in np.concatenate([removed, rephotographed])),
                  added=fresh + again, vectors=moved / np.linalg.norm(moved, axis=1, keepdims=True),
                  updated={products[i]["id"]: {**products[i]["meta"], "price": "1.00 INR"} for i in repriced})


def bench_store(name: str, directory: Path, spec: str | None, data: Path, setup: dict) -> dict:
    """Write, search, change and serve one store; data: where the store keeps its bytes."""
    writer = setup.get("engine_pid", os.getpid())
    before, bytes_before = disk_bytes(data), written(writer)
    started = time.perf_counter()
    write_index(directory, vectors=setup["vectors"], products=setup["products"], fingerprint=setup["fingerprint"],
                probe=setup["probe"], keep_files=setup["keep"],
                store=parse_store(spec, setup.get("milvus_index")) if spec else None)
    row: dict = {"store": name, "products": len(setup["products"]), "write_s": round(time.perf_counter() - started, 1),
                 "write_mb": round((written(writer) - bytes_before) / 1e6),
                 "disk_growth_mb": round((disk_bytes(data) - before) / 1e6)}
    row.update(measure(directory, setup["queries_file"], setup["truth"]))
    if setup.get("engine_pid"):
        row["engine_rss_mb"] = rss_mb(setup["engine_pid"])["rss_mb"]
    before, bytes_before = disk_bytes(data), written(writer)
    started = time.perf_counter()
    change_index(directory, setup["change"])
    row.update({"change_1pct_s": round(time.perf_counter() - started, 1),
                "change_1pct_write_mb": round((written(writer) - bytes_before) / 1e6, 1),
                "change_1pct_disk_growth_mb": round((disk_bytes(data) - before) / 1e6, 1)})
    row.update(one_user({**setup["bot_env"], "INDEX_DIR": str(directory), "STATE_DIR": str(directory / "state")},
                        str(directory), setup["fake"], setup["photo"], setup["user"]))
    print(row, flush=True)
    return row


def bench_milvus(real_index: Path, sizes: tuple[int, ...], engine: str, stores: Sequence[str],
                 milvus_index: str | None = None, settings: Mapping[str, str] | None = None) -> dict:
    real = Index.load(real_index)
    base = np.asarray(real.store.vectors, dtype=np.float32)
    sigma = float(np.sqrt(np.median(np.maximum(nearest_distances(base), 0))) / np.sqrt(base.shape[1]))
    server = MilvusStandalone(settings).start() if engine == "standalone" else MilvusLiteServer().start()
    engine_pid = server.server.server_proc.pid if engine == "standalone" else server.process.pid
    fake = FakeTelegram().start()
    rows = []
    try:
        for user, n in enumerate(sizes, 1):
            with tempfile.TemporaryDirectory() as tmp:
                vectors = perturbed(base, n, sigma, seed=n, out=np.lib.format.open_memmap(
                    Path(tmp) / "v.npy", mode="w+", dtype=np.float32, shape=(n, base.shape[1])))
                queries = perturbed(base, QUERIES, sigma, seed=1)
                np.save(Path(tmp) / "q.npy", queries)
                products = synthetic_products(n)
                setup = {"milvus_index": milvus_index, "vectors": vectors, "products": products,
                         "fingerprint": real.fingerprint,
                         "probe": real.probe, "keep": {"extractor": real.manifest["files"]["extractor"]},
                         "queries_file": Path(tmp) / "q.npy",
                         "truth": [[products[i]["id"] for i in best] for best in exact_top5(vectors, queries)],
                         "change": one_percent(products, vectors, np.random.default_rng(n)), "fake": fake,
                         "photo": flatlay_jpeg((1280, 960), seed=1),
                         "bot_env": {**os.environ, "TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_URL": fake.url,
                                     "RATE_LIMIT_PER_MINUTE": "0", "LOG_LEVEL": "INFO"}}
                measured = {"folder": ("index folder", None, Path(tmp) / "folder"),
                            "milvus": (f"Milvus {engine}", server.spec.rsplit("/", 1)[0] + f"/n{n}",
                                       Path(server.folder))}
                for kind, spec, data in (measured[store] for store in stores):
                    directory = Path(tmp) / kind.replace(" ", "-")
                    directory.mkdir()
                    shutil.copyfile(real.directory / "extractor.onnx", directory / "extractor.onnx")
                    extra = {"engine_pid": engine_pid} if spec else {}
                    rows.append(bench_store(kind, directory, spec, directory if spec is None else data,
                                            {**setup, **extra, "user": 2 * user + bool(spec)}))
    finally:
        fake.stop()
        server.stop()
    return {"rows": rows, "queries": QUERIES, "real_vectors": len(base), "engine": engine,
            "server_settings": dict(settings or {}),
            "note": "scores from ResNet50 with random weights: recall is against exact search, not quality"}


def run(argv: Sequence[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks milvus", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real-index", required=True, help="an index of real catalogue photos (exported) to scale")
    parser.add_argument("--sizes", default="44072,1000000", help="catalogue sizes, comma-separated")
    parser.add_argument("--engine", choices=("standalone", "lite"), default="standalone")
    parser.add_argument("--stores", default="folder,milvus", help="which to measure: folder, milvus or both")
    parser.add_argument("--milvus-index", help="as fashion-index build --milvus-index (default: chosen by size)")
    parser.add_argument("--server-setting", action="append", default=[], metavar="KEY=VALUE",
                        help="a milvus.yaml setting of the standalone server, e.g. dataCoord.segment.maxSize=4096")
    parser.add_argument("--out", default="milvus", help="the results' name (benchmarks/results/OUT.json)")
    args = parser.parse_args(argv)
    sizes = tuple(int(n) for n in args.sizes.split(","))
    settings = dict(pair.split("=", 1) for pair in args.server_setting)
    return {args.out: bench_milvus(Path(args.real_index), sizes, args.engine, args.stores.split(","),
                                   args.milvus_index, settings)}
