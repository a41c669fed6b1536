"""Milvus Lite (as a server, the way replicas share it) against the local index folder, on the same vectors:
perturbed copies of real catalogue photos' vectors, as in the ann benchmark. Recall@5 against exact search,
time per query, and the memory of the serving process and of the engine."""

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

from benchmarks.ann_scale import MEASURE, QUERIES, exact_top5, nearest_distances, perturbed
from benchmarks.common import ROOT, p, rss_mb
from indexing.store.files import write_index
from indexing.store.index import Index
from testbed.milvus_server import MilvusLiteServer


def measure(index_dir: Path, queries_file: Path, truth: np.ndarray) -> dict:
    # No exact scans: on Milvus one would fetch every vector over the network.
    done = subprocess.run([sys.executable, "-c", MEASURE, str(index_dir), str(queries_file), "0"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    recall = np.mean([len(set(f) & set(t)) / 5 for f, t in zip(result["found"], truth, strict=True)])
    return {"recall@5": round(float(recall), 4), "p50_ms": round(p(result["times"]), 1),
            "p95_ms": round(p(result["times"], 95), 1), "serving_peak_rss_mb": result["peak_mb"],
            "load_s": round(result["load_s"], 1)}


def bench_milvus(real_index: Path, sizes: tuple[int, ...] = (44_072,)) -> dict:
    base = np.asarray(Index.load(real_index).vectors, dtype=np.float32)
    sigma = float(np.sqrt(np.median(np.maximum(nearest_distances(base), 0))) / np.sqrt(base.shape[1]))
    rows = []
    for n in sizes:
        server = MilvusLiteServer().start()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                # On disk, not in this process: at 1M the vectors are 8 GB, and the engine holds its own copy.
                vectors = perturbed(base, n, sigma, seed=n, out=np.lib.format.open_memmap(
                    Path(tmp) / "v.npy", mode="w+", dtype=np.float32, shape=(n, base.shape[1])))
                queries = perturbed(base, QUERIES, sigma, seed=1)
                truth = exact_top5(vectors, queries)
                np.save(Path(tmp) / "q.npy", queries)
                products = [{"id": str(i), "image": f"{i % len(base)}.jpg"} for i in range(n)]
                common = {"vectors": vectors, "products": products, "fingerprint": {"weights": "random:0"},
                          "probe": np.zeros((2, base.shape[1]))}
                write_index(Path(tmp) / "local", **common)
                started = time.perf_counter()
                failed = ""
                try:
                    write_index(Path(tmp) / "milvus", store={"uri": f"http://127.0.0.1:{server.port}",
                                                             "collection": "bench"}, **common)
                except Exception as exc:  # the engine killed for memory, say: a row that says so
                    failed = f"{type(exc).__name__}: {str(exc)[:200]}"
                insert_s = time.perf_counter() - started
                del vectors, products, common
                for store, folder in (("local folder", "local"), ("Milvus Lite server", "milvus")):
                    row: dict = {"products": n, "store": store}
                    if folder == "milvus":
                        assert server.process is not None
                        if failed or server.process.poll() is not None:
                            row["failed"] = failed or f"engine exited with {server.process.returncode}"
                            rows.append(row)
                            print(row, flush=True)
                            continue
                    row.update(measure(Path(tmp) / folder, Path(tmp) / "q.npy", truth))
                    if folder == "milvus":
                        engine = rss_mb(server.process.pid)
                        row.update({"engine_rss_mb": engine["rss_mb"], "engine_peak_rss_mb": engine["peak_rss_mb"],
                                    "write_s": round(insert_s)})
                    rows.append(row)
                    print(row, flush=True)
        finally:
            server.stop()
    return {"rows": rows, "queries": QUERIES, "real_vectors": len(base),
            "note": "Milvus proposes candidates (FLAT, inner product); the index re-ranks them exactly"}


def run(argv: Sequence[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks milvus")
    parser.add_argument("--real-index", required=True, help="an index of real catalogue photos to scale up")
    parser.add_argument("--sizes", default="44072", help="catalogue sizes, comma-separated")
    args = parser.parse_args(argv)
    return {"milvus": bench_milvus(Path(args.real_index), tuple(int(n) for n in args.sizes.split(",")))}
